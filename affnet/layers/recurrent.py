"""The stacked recurrent part shared by every affnet sequence model.

[AW] Table 8 (AffWildNet): ... -> RNN layer 1 (128) -> dropout -> RNN layer 2
(128) -> ...; [AW2] Sec. III-B: 2 hidden layers of 128 GRU, LSTM or IndRNN
units, optionally with an attention layer of length 32 "on top of the GRU".
The authors' TF1 code builds this as one `dynamic_rnn` over
`MultiRNNCell([DropoutWrapper(cell, output_keep_prob), ..., cell])`, wrapped
in `AttentionCellWrapper` for the attention models. `build_rnn_stack` builds
the same structure as ONE `keras.layers.RNN` (named `name`) over a
`keras.layers.StackedRNNCells`, so a TF1 checkpoint maps onto its weights by
name through `tf1_weight_names`:

    <scope>/multi_rnn_cell/cell_{k}/gru_cell/{gates,candidate}/{kernel,bias}
    <scope>/attention_cell_wrapper/multi_rnn_cell/cell_{k}/...      (attention)

where `<scope>` is everything TF1 put in front of `multi_rnn_cell`: for
dkollias/Aff-Wild-models `affwildnet/vggface_gru.py` (variable scope `rnn_1`,
then `dynamic_rnn`'s own `rnn`) it is "rnn_1/rnn"; for `affwildnet/resnet-gru`
it is "rnn/rnn".

The RNN layer is an `InputProjectedRNN`: the input half of the first cell's
`[x_t, state] @ kernel` (the attention wrapper's, or the first GRU / LSTM /
IndRNN layer's) runs as one GEMM over all frames before the time loop; the
outputs are the same function of the same variables.
"""

import keras
from keras import ops

from data_pipeline.base import checks
from affnet.layers.attention import TF1AttentionCellWrapper
from affnet.layers.cell_base import WrapsCell
from affnet.layers.indrnn import IndRNNCell
from affnet.layers.peephole_lstm import PeepholeLSTMCell
from affnet.layers.tf1_gru import TF1GRUCell

RNN_CELLS = {"gru": TF1GRUCell, "lstm": PeepholeLSTMCell, "indrnn": IndRNNCell}
RNNS = tuple(RNN_CELLS)  # The `rnn` names every model family accepts.
ATTENTION_PLACEMENTS = ("stack", "top")


@keras.saving.register_keras_serializable(package="affnet")
class OutputDropoutCell(WrapsCell, keras.layers.Layer):
    """TF1 `DropoutWrapper(cell, output_keep_prob=1 - rate)` as a Keras RNN cell.

    Drops the cell's output (what the next stacked layer sees) with a fresh
    mask at every time step, in training only; the recurrent state passes
    untouched. TF1's wrapper adds no variable scope, so TF1 names are the
    wrapped cell's. `rate` is a Keras drop rate: TF1 `keep_prob` 0.8 is 0.2.
    """

    def __init__(self, cell, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"OutputDropoutCell rate must be in [0, 1), got {rate!r}")
        self.cell = cell
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name=f"{self.name}_seed")
        self.state_size = cell.state_size
        self.output_size = cell.output_size

    def build(self, input_shape):
        if not self.cell.built:  # already built when restored from a .keras file
            self.cell.build(input_shape)

    def get_initial_state(self, batch_size=None):
        get_initial_state = getattr(self.cell, "get_initial_state", None)
        if get_initial_state is not None:
            return get_initial_state(batch_size=batch_size)
        sizes = self.state_size if isinstance(self.state_size, (list, tuple)) else [self.state_size]
        return [ops.zeros((batch_size, d), dtype=self.compute_dtype) for d in sizes]

    def call(self, inputs, states, training=False):
        kwargs = {"training": training} if getattr(self.cell, "_call_has_training_arg", False) else {}
        output, new_states = self.cell(inputs, states, **kwargs)
        if training and self.rate > 0.0:
            output = keras.random.dropout(output, self.rate, seed=self.seed_generator)
        return output, new_states

    def tf1_variables(self, resolve):
        return list(resolve(self.cell))

    def get_config(self):
        config = super().get_config()
        config.update(
            cell=keras.saving.serialize_keras_object(self.cell), rate=self.rate, seed=self.seed
        )
        return config


def _entry_cell(cell):
    """The cell that reads the RNN's input sequence: through stacks and dropout wrappers."""
    if isinstance(cell, keras.layers.StackedRNNCells):
        return _entry_cell(cell.cells[0])
    if isinstance(cell, OutputDropoutCell):
        return _entry_cell(cell.cell)
    return cell


@keras.saving.register_keras_serializable(package="affnet")
class InputProjectedRNN(keras.layers.RNN):
    """`keras.layers.RNN` that applies its entry cell's input projection to the whole sequence.

    The entry cell (see `_entry_cell`) must have `project_inputs` (`ProjectsInputs`); it is
    switched to take projected inputs, and `call` feeds it `project_inputs(sequences)`,
    (B, T, P), instead of the sequence. Weights, their names and order, and the config
    are `keras.layers.RNN`'s.
    """

    def __init__(self, cell, **kwargs):
        super().__init__(cell, **kwargs)
        entry = _entry_cell(self.cell)
        if not hasattr(entry, "project_inputs"):
            raise ValueError(f"InputProjectedRNN needs an entry cell with project_inputs, got {entry!r}")
        entry.inputs_projected = True

    def call(self, sequences, initial_state=None, mask=None, training=False):
        return super().call(
            _entry_cell(self.cell).project_inputs(sequences), initial_state=initial_state, mask=mask, training=training
        )


def _tf1_variables(cell):
    """`[(TF1 name relative to the scope enclosing `cell`, variable)]`, recursively."""
    if isinstance(cell, keras.layers.StackedRNNCells):
        return [
            (f"multi_rnn_cell/cell_{k}/{name}", w)
            for k, sub in enumerate(cell.cells)
            for name, w in _tf1_variables(sub)
        ]
    if hasattr(cell, "tf1_variables"):
        return cell.tf1_variables(_tf1_variables)
    raise ValueError(f"No TF1 variable layout is known for cell {cell!r} ({type(cell).__name__})")


def tf1_weight_names(rnn_layer, scope):
    """TF1 variable names of `rnn_layer.weights`, in that order.

    Args:
        rnn_layer: a built `keras.layers.RNN` from `build_rnn_stack` (or any RNN
            over TF1GRUCell / PeepholeLSTMCell / IndRNNCell, StackedRNNCells,
            OutputDropoutCell and TF1AttentionCellWrapper).
        scope: the TF1 prefix in front of the cell's own scope, e.g. "rnn_1/rnn"
            for the released VGG-Face-GRU AffWildNet; "" for none.

    Returns:
        list of str, one per weight, without the ":0" suffix.
    """
    if not isinstance(rnn_layer, keras.layers.RNN):
        raise ValueError(f"tf1_weight_names needs a keras.layers.RNN, got {rnn_layer!r}")
    if not rnn_layer.built:
        raise ValueError(f"tf1_weight_names needs a built layer; {rnn_layer.name!r} is not built")
    prefix = f"{scope.rstrip('/')}/" if scope else ""
    by_id = {id(w): f"{prefix}{name}" for name, w in _tf1_variables(rnn_layer.cell)}
    names = []
    for w in rnn_layer.weights:
        if id(w) not in by_id:
            raise ValueError(f"Weight {w.path} of {rnn_layer.name!r} has no TF1 counterpart")
        names.append(by_id[id(w)])
    return names


def _make_cell(rnn, units, name):
    return RNN_CELLS[rnn](units, name=name)


def build_rnn_stack(
    x,
    *,
    rnn="gru",
    layers=2,
    units=128,
    dropout=0.0,
    attention_length=0,
    attention_placement="stack",
    attention_input_size=None,
    name="rnn",
):
    """Stacked RNN over a sequence, the TF1 `dynamic_rnn(MultiRNNCell)` of the papers.

    Args:
        x: Keras tensor (B, T, F), T may be None.
        rnn: "gru" (TF1 GRUCell, [AW] best), "lstm" (TF1 peephole LSTM, [AW]),
            "indrnn" ([AW2] Sec. III-B).
        layers: number of stacked layers (2 in [AW] Table 8 / [AW2]).
        units: units per layer (128).
        dropout: Keras drop rate on the output of every layer but the last,
            like TF1 `DropoutWrapper(output_keep_prob=1 - dropout)` ([AW] Table 8
            "RNN layer 1 -> dropout -> RNN layer 2"); active in training only.
        attention_length: 0 for none, else TF1 `AttentionCellWrapper`
            attn_length (32 in [AW2] Sec. III-B.3).
        attention_placement: "stack" wraps the whole stacked cell (our reading
            of [AW2], what TF1's attn_length implies); "top" wraps only the
            last layer.
        attention_input_size: depth of the attention wrapper's input
            projection `[x, attns] -> x~`; None keeps TF1's default, the input
            depth F (for a 4096-d VGG-Face fc1 that projection alone has
            (4096 + 128) * 4096 + 4096 = 17.3M weights; [AW2] does not say).
        name: the RNN layer's name; sub-cells are named `<name>_<rnn><k>`,
            `<name>_dropout<k>`, `<name>_cells`, `<name>_attention`.

    Returns:
        Keras tensor (B, T, units), or (B, T, attn_size = units) with attention.
    """
    checks.check_choice(rnn, "rnn", RNN_CELLS)
    if not isinstance(layers, int) or isinstance(layers, bool) or layers < 1:
        raise ValueError(f"layers must be a positive int, got {layers!r}")
    if not isinstance(units, int) or isinstance(units, bool) or units < 1:
        raise ValueError(f"units must be a positive int, got {units!r}")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be a drop rate in [0, 1), got {dropout!r}")
    checks.check_int(attention_length, "attention_length", minimum=0)
    checks.check_choice(attention_placement, "attention_placement", ATTENTION_PLACEMENTS)
    if len(x.shape) != 3 or x.shape[-1] is None:
        raise ValueError(f"build_rnn_stack needs a (B, T, F) tensor with static F, got {x.shape}")

    cells = []
    for k in range(layers):
        cell = _make_cell(rnn, units, f"{name}_{rnn}{k}")
        if attention_length and attention_placement == "top" and k == layers - 1:
            cell = TF1AttentionCellWrapper(
                cell,
                attn_length=attention_length,
                input_size=attention_input_size,
                name=f"{name}_attention",
            )
        if dropout and k < layers - 1:
            cell = OutputDropoutCell(cell, dropout, name=f"{name}_dropout{k}")
        cells.append(cell)
    cell = keras.layers.StackedRNNCells(cells, name=f"{name}_cells")
    if attention_length and attention_placement == "stack":
        cell = TF1AttentionCellWrapper(
            cell, attn_length=attention_length, input_size=attention_input_size, name=f"{name}_attention"
        )
    return InputProjectedRNN(cell, return_sequences=True, name=name)(x)

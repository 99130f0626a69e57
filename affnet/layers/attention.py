"""TF1 `tf.contrib.rnn.AttentionCellWrapper` (state_is_tuple=True) as a Keras 3 RNN cell.

[AW2] Sec. III-B.3: the best Aff-Wild2 model, VGGFACE1-GRU-attention, has "an
attention layer on top of the GRU" with "attention length 32"; nothing more is
said. "Attention length" is the `attn_length` argument of TF1's
`AttentionCellWrapper`, the attention cell of the authors' TF1 code base, so
this reproduces that wrapper (Bahdanau-style attention over a sliding window of
the wrapper's own last `attn_length` outputs, Cheng et al. 2016 "LSTMN").
Our reading: the wrapper goes around the whole 2-layer GRU stack (TF1's usual
`AttentionCellWrapper(MultiRNNCell(...))`); `build_rnn_stack(...,
attention_placement="top")` offers the alternative, around the top layer only.

One step, with A = attn_size (default: the wrapped cell's output size),
V = attn_vec_size (default A), L = attn_length:

    x~          = [x, attns] @ kernel + bias                 (depth: input_size)
    out, s'     = cell(x~, s)
    q           = concat(flatten(s'))                        (all layers' states)
    e_l         = attn_v . tanh(window_l @ attn_w + q @ attention/kernel + attention/bias)
    attns'      = sum_l softmax(e)_l * window_l
    output      = [out, attns'] @ attn_output_projection/kernel + .../bias   (depth A)
    window'     = window[1:] + [output]       (oldest leaves, newest enters)

The state is (cell state..., attns [A], window flattened [L * A]), all zeros
at the start, as TF1's `zero_state`; the zero slots of a young window take
part in the softmax, as in TF1. Variable names mirror the TF1 scopes under
`attention_cell_wrapper/` (`kernel`, `bias`, `attention/attn_w` [1, 1, A, V],
`attention/attn_v` [V], `attention/kernel`, `attention/bias`,
`attn_output_projection/kernel`, `attn_output_projection/bias`), then the
wrapped cell's names (e.g. `multi_rnn_cell/cell_0/gru_cell/...`); see
`tf1_variables`. Bias initial values are zeros, kernels glorot uniform (TF1
defaults). Under `InputProjectedRNN`, `x @ kernel[:in] + bias` (a 4096 x 4096
GEMM per frame for VGG-Face fc1 features) runs once over the whole sequence
before the time loop, and each step adds `attns @ kernel[in:]` only.
"""

import keras
from keras import ops
from keras import tree

from affnet.layers.cell_base import ProjectsInputs, WrapsCell


@keras.saving.register_keras_serializable(package="affnet")
class TF1AttentionCellWrapper(ProjectsInputs, WrapsCell, keras.layers.Layer):
    """Window attention around an RNN cell; see the module docstring.

    Args:
        cell: the wrapped Keras RNN cell (a `TF1GRUCell`, a
            `keras.layers.StackedRNNCells`, ...). Its state may be nested; this
            wrapper keeps a flat state list (cell states flattened, then attns,
            then the window) so that `keras.layers.RNN` can carry it.
        attn_length: L, the number of past outputs attended (32 in [AW2]).
        attn_size: A; defaults to the wrapped cell's output size.
        attn_vec_size: V; defaults to A.
        input_size: depth of the projected input; defaults to the input depth.
        kernel_initializer: initializer of all kernels, attn_w and attn_v.
    """

    tf1_scope = "attention_cell_wrapper"

    def __init__(
        self,
        cell,
        attn_length=32,
        attn_size=None,
        attn_vec_size=None,
        input_size=None,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(attn_length, int) or isinstance(attn_length, bool) or attn_length <= 0:
            raise ValueError(f"attn_length must be a positive int, got {attn_length!r}")
        for arg_name, value in (
            ("attn_size", attn_size),
            ("attn_vec_size", attn_vec_size),
            ("input_size", input_size),
        ):
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"{arg_name} must be None or a positive int, got {value!r}")
        if not hasattr(cell, "state_size"):
            raise ValueError(f"TF1AttentionCellWrapper needs an RNN cell with `state_size`, got {cell!r}")
        self.cell = cell
        self.attn_length = attn_length
        cell_output_size = getattr(cell, "output_size", None)
        if attn_size is None and not isinstance(cell_output_size, int):
            raise ValueError(
                f"attn_size is None and the cell's output_size is not an int: {cell_output_size!r}"
            )
        self.attn_size = attn_size or cell_output_size
        self.attn_vec_size = attn_vec_size or self.attn_size
        self.input_size = input_size
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        inner = cell.state_size
        self._cell_state_structure = list(inner) if isinstance(inner, (list, tuple)) else [inner]
        self._cell_state_sizes = tree.flatten(self._cell_state_structure)
        self.state_size = self._cell_state_sizes + [
            self.attn_size,
            self.attn_size * self.attn_length,
        ]
        self.output_size = self.attn_size

    def build(self, input_shape):
        input_depth = input_shape[-1]
        if input_depth is None:
            raise ValueError(
                f"TF1AttentionCellWrapper needs a static input depth, got input shape {input_shape}"
            )
        projected = self.input_size or input_depth
        a, v = self.attn_size, self.attn_vec_size
        init = self.kernel_initializer
        self.input_kernel = self.add_weight(
            name="kernel", shape=(input_depth + a, projected), initializer=init
        )
        self.input_bias = self.add_weight(name="bias", shape=(projected,), initializer="zeros")
        if not self.cell.built:  # already built when restored from a .keras file
            self.cell.build((input_shape[0], projected))
        query_depth = sum(self._cell_state_sizes)
        self.attn_w = self.add_weight(name="attention_attn_w", shape=(1, 1, a, v), initializer=init)
        self.attn_v = self.add_weight(name="attention_attn_v", shape=(v,), initializer=init)
        self.query_kernel = self.add_weight(
            name="attention_kernel", shape=(query_depth, v), initializer=init
        )
        self.query_bias = self.add_weight(name="attention_bias", shape=(v,), initializer="zeros")
        self.output_kernel = self.add_weight(
            name="attn_output_projection_kernel",
            shape=(self.cell.output_size + a, a),
            initializer=init,
        )
        self.output_bias = self.add_weight(
            name="attn_output_projection_bias", shape=(a,), initializer="zeros"
        )

    def get_initial_state(self, batch_size=None):
        # TF1 zero_state: every part of the (nested) state starts at zero.
        return [ops.zeros((batch_size, d), dtype=self.compute_dtype) for d in self.state_size]

    def _attend(self, query, window):
        """`(B, Q), (B, L, A) -> (B, A)`: TF1 `AttentionCellWrapper._attention`."""
        a, v = self.attn_size, self.attn_vec_size
        # attn_w is TF1's 1x1 conv over the window: a matmul on the last axis.
        features = ops.matmul(window, ops.reshape(self.attn_w, (a, v)))
        y = ops.matmul(query, self.query_kernel) + self.query_bias
        scores = ops.sum(self.attn_v * ops.tanh(features + y[:, None, :]), axis=-1)
        weights = ops.softmax(scores, axis=-1)
        return ops.sum(weights[:, :, None] * window, axis=1)

    def project_inputs(self, inputs):
        self._state_kernels = self.input_kernel[inputs.shape[-1]:]
        return ops.matmul(inputs, self.input_kernel[: inputs.shape[-1]]) + self.input_bias

    def call(self, inputs, states, training=False):
        states = list(states)
        n_cell = len(self._cell_state_sizes)
        cell_states = tree.pack_sequence_as(self._cell_state_structure, states[:n_cell])
        attns, flat_window = states[n_cell], states[n_cell + 1]
        window = ops.reshape(flat_window, (-1, self.attn_length, self.attn_size))

        if self.inputs_projected:
            projected = inputs + ops.matmul(attns, self._state_kernels)
        else:
            projected = (
                ops.matmul(ops.concatenate([inputs, attns], axis=-1), self.input_kernel) + self.input_bias
            )
        kwargs = {"training": training} if getattr(self.cell, "_call_has_training_arg", False) else {}
        cell_output, new_cell_states = self.cell(projected, cell_states, **kwargs)
        new_cell_flat = tree.flatten(new_cell_states)
        query = ops.concatenate(new_cell_flat, axis=-1) if len(new_cell_flat) > 1 else new_cell_flat[0]

        new_attns = self._attend(query, window)
        output = (
            ops.matmul(ops.concatenate([cell_output, new_attns], axis=-1), self.output_kernel)
            + self.output_bias
        )
        new_window = ops.concatenate([window[:, 1:, :], output[:, None, :]], axis=1)
        new_flat_window = ops.reshape(new_window, (-1, self.attn_length * self.attn_size))
        return output, list(new_cell_flat) + [new_attns, new_flat_window]

    def tf1_variables(self, resolve):
        """`[(TF1 name relative to the enclosing scope, variable)]`.

        `resolve(cell)` names the wrapped cell's variables (relative to this
        wrapper's scope), which may be a Keras `StackedRNNCells`.
        """
        prefix = self.tf1_scope
        own = [
            ("kernel", self.input_kernel),
            ("bias", self.input_bias),
            ("attention/attn_w", self.attn_w),
            ("attention/attn_v", self.attn_v),
            ("attention/kernel", self.query_kernel),
            ("attention/bias", self.query_bias),
            ("attn_output_projection/kernel", self.output_kernel),
            ("attn_output_projection/bias", self.output_bias),
        ]
        return [(f"{prefix}/{n}", w) for n, w in own + list(resolve(self.cell))]

    def get_config(self):
        config = super().get_config()
        config.update(
            cell=keras.saving.serialize_keras_object(self.cell),
            attn_length=self.attn_length,
            attn_size=self.attn_size,
            attn_vec_size=self.attn_vec_size,
            input_size=self.input_size,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config

"""The GRU cell of TensorFlow 1 (`tf.nn.rnn_cell.GRUCell`), as a Keras 3 RNN cell.

The released AffWildNet models ([AW] Table 8, dkollias/Aff-Wild-models
`affwildnet/vggface_gru.py`) stack two TF1 `GRUCell(128)`. Keras' own `GRU`
with `reset_after=False` computes the same function, but orders the gates
(update, reset) and splits the kernels differently, so TF1 checkpoints do not
map onto it by name. This cell keeps the TF1 variables, shapes, initial values
and gate order, so the checkpoint tensors load unchanged:

    gates/kernel     [in + units, 2 * units]   glorot uniform (TF1 default)
    gates/bias       [2 * units]               1.0 (TF1: "start not resetting")
    candidate/kernel [in + units, units]       glorot uniform
    candidate/bias   [units]                   0.0

    r, u = split(sigmoid([x, h] @ gates/kernel + gates/bias))   # reset first
    c    = tanh([x, r * h] @ candidate/kernel + candidate/bias)
    h'   = u * h + (1 - u) * c

Under `InputProjectedRNN` the input rows of both kernels are applied to the
whole sequence at once (`project_inputs`, width 3 * units: reset, update,
candidate) and each step adds the `h` rows only.
"""

import keras
from keras import ops

from affnet.layers.cell_base import TF1LeafCell


def _single_state(states):
    """Keras passes a cell's single state either bare or in a one-item list."""
    if isinstance(states, (list, tuple)):
        return states[0]
    return states


@keras.saving.register_keras_serializable(package="affnet")
class TF1GRUCell(TF1LeafCell):
    """TF1 `GRUCell(units)` with TF1 variable layout; see the module docstring.

    Args:
        units: number of hidden units (128 in [AW] Table 8 and [AW2] Sec. III-B).
        activation: candidate activation, TF1 default "tanh".
        kernel_initializer: initializer of both kernels; TF1 leaves it to the
            variable scope, whose default is glorot uniform.
    """

    tf1_scope = "gru_cell"

    TF1_VARIABLES = (("gates/kernel", "gates_kernel"), ("gates/bias", "gates_bias"),
                     ("candidate/kernel", "candidate_kernel"), ("candidate/bias", "candidate_bias"))

    def __init__(self, units, activation="tanh", kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"TF1GRUCell units must be a positive int, got {units!r}")
        self.units = units
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        input_depth = self._input_depth(input_shape)
        rows = input_depth + self.units
        self.gates_kernel = self.add_weight(
            name="gates_kernel", shape=(rows, 2 * self.units), initializer=self.kernel_initializer
        )
        self.gates_bias = self.add_weight(
            name="gates_bias", shape=(2 * self.units,), initializer=keras.initializers.Constant(1.0)
        )
        self.candidate_kernel = self.add_weight(
            name="candidate_kernel", shape=(rows, self.units), initializer=self.kernel_initializer
        )
        self.candidate_bias = self.add_weight(
            name="candidate_bias", shape=(self.units,), initializer="zeros"
        )

    def project_inputs(self, inputs):
        depth = inputs.shape[-1]
        self._state_kernels = (self.gates_kernel[depth:], self.candidate_kernel[depth:])
        kernel = ops.concatenate([self.gates_kernel[:depth], self.candidate_kernel[:depth]], axis=-1)
        return ops.matmul(inputs, kernel) + ops.concatenate([self.gates_bias, self.candidate_bias], axis=-1)

    def call(self, inputs, states):
        h = _single_state(states)
        if self.inputs_projected:
            x_gates, x_candidate = inputs[..., : 2 * self.units], inputs[..., 2 * self.units:]
            gates_h, candidate_h = self._state_kernels
            r, u = ops.split(ops.sigmoid(x_gates + ops.matmul(h, gates_h)), 2, axis=-1)
            candidate = self.activation(x_candidate + ops.matmul(r * h, candidate_h))
            new_h = u * h + (1.0 - u) * candidate
            return new_h, [new_h]
        gates = ops.sigmoid(
            ops.matmul(ops.concatenate([inputs, h], axis=-1), self.gates_kernel) + self.gates_bias
        )
        r, u = ops.split(gates, 2, axis=-1)
        candidate = self.activation(
            ops.matmul(ops.concatenate([inputs, r * h], axis=-1), self.candidate_kernel)
            + self.candidate_bias
        )
        new_h = u * h + (1.0 - u) * candidate
        return new_h, [new_h]

"""The peephole LSTM cell of TensorFlow 1 (`tf.nn.rnn_cell.LSTMCell(use_peepholes=True)`).

[AW] Sec. 4 (AffWildNet) compares GRU with LSTM units "allowing peephole
connections"; the authors' code base is TF1, so this cell reproduces TF1's
`LSTMCell` with `use_peepholes=True`, no projection, no cell clipping, and its
variable layout (scope `lstm_cell`):

    kernel   [in + units, 4 * units]  gate order i, j, f, o   glorot uniform
    bias     [4 * units]                                      0.0
    w_f_diag, w_i_diag, w_o_diag [units]                      glorot uniform

    i, j, f, o = split([x, h] @ kernel + bias)
    c' = sigmoid(f + forget_bias + w_f_diag * c) * c + sigmoid(i + w_i_diag * c) * tanh(j)
    h' = sigmoid(o + w_o_diag * c') * tanh(c')

The state is the pair (c, h), like TF1's `LSTMStateTuple(c, h)`; the output is h.
Under `InputProjectedRNN`, `x @ kernel[:in] + bias` is computed for the whole
sequence before the time loop (`project_inputs`).
"""

import keras
from keras import ops

from affnet.layers.cell_base import TF1LeafCell


@keras.saving.register_keras_serializable(package="affnet")
class PeepholeLSTMCell(TF1LeafCell):
    """TF1 `LSTMCell(units, use_peepholes=True)`; see the module docstring.

    Args:
        units: number of hidden units.
        forget_bias: added to the forget gate pre-activation (TF1 default 1.0);
            not a variable, so it is not in checkpoints.
        activation: activation of the candidate and of the cell output (TF1 tanh).
        kernel_initializer: initializer of the kernel and the peephole weights
            (TF1 variable-scope default: glorot uniform).
    """

    tf1_scope = "lstm_cell"

    TF1_VARIABLES = (("kernel", "kernel"), ("bias", "bias"), ("w_f_diag", "w_f_diag"), ("w_i_diag", "w_i_diag"),
                     ("w_o_diag", "w_o_diag"))

    def _extra_config(self):
        return {"forget_bias": self.forget_bias}

    def __init__(
        self, units, forget_bias=1.0, activation="tanh", kernel_initializer="glorot_uniform", **kwargs
    ):
        super().__init__(**kwargs)
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"PeepholeLSTMCell units must be a positive int, got {units!r}")
        self.units = units
        self.forget_bias = float(forget_bias)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.state_size = [units, units]  # (c, h), TF1 LSTMStateTuple order
        self.output_size = units

    def build(self, input_shape):
        input_depth = self._input_depth(input_shape)
        self.kernel = self.add_weight(
            name="kernel",
            shape=(input_depth + self.units, 4 * self.units),
            initializer=self.kernel_initializer,
        )
        self.bias = self.add_weight(name="bias", shape=(4 * self.units,), initializer="zeros")
        self.w_f_diag = self.add_weight(
            name="w_f_diag", shape=(self.units,), initializer=self.kernel_initializer
        )
        self.w_i_diag = self.add_weight(
            name="w_i_diag", shape=(self.units,), initializer=self.kernel_initializer
        )
        self.w_o_diag = self.add_weight(
            name="w_o_diag", shape=(self.units,), initializer=self.kernel_initializer
        )

    def get_initial_state(self, batch_size=None):
        # A two-part state needs its own zeros: Keras only builds flat ones.
        return [
            ops.zeros((batch_size, self.units), dtype=self.compute_dtype),
            ops.zeros((batch_size, self.units), dtype=self.compute_dtype),
        ]

    def project_inputs(self, inputs):
        self._state_kernels = self.kernel[inputs.shape[-1]:]
        return ops.matmul(inputs, self.kernel[: inputs.shape[-1]]) + self.bias

    def call(self, inputs, states):
        c_prev, h_prev = states[0], states[1]
        if self.inputs_projected:
            z = inputs + ops.matmul(h_prev, self._state_kernels)
        else:
            z = ops.matmul(ops.concatenate([inputs, h_prev], axis=-1), self.kernel) + self.bias
        i, j, f, o = ops.split(z, 4, axis=-1)
        c = (
            ops.sigmoid(f + self.forget_bias + self.w_f_diag * c_prev) * c_prev
            + ops.sigmoid(i + self.w_i_diag * c_prev) * self.activation(j)
        )
        h = ops.sigmoid(o + self.w_o_diag * c) * self.activation(c)
        return h, [c, h]

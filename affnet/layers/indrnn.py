"""Independently recurrent cell (Li et al., CVPR 2018, "Independently Recurrent
Neural Network (IndRNN)"), one of the three RNNs compared in [AW2] Sec. III-B.

    h_t = act(W x_t + u * h_{t-1} + b)

`u` is a vector: each unit sees only its own past, which lets ReLU units be
stacked deep without exploding gradients when |u| is bounded (Li et al. Sec. 3:
|u| <= 2^(1/T) keeps the gradient over T steps bounded). The bound is optional
here (`recurrent_clip`) and applied as a weight constraint after each update.

Variable layout follows TF1 `tf.contrib.rnn.IndRNNCell` (scope `ind_rnn_cell`:
`kernel_w` [in, units], `kernel_u` [1, units], `bias` [units]) since [AW2]'s
code base is TF1; its default `u` initializer, uniform(-1, 1), is kept. Under `InputProjectedRNN`,
`W x + b` is computed for the whole sequence before the time loop.
"""

import keras
from keras import ops

from affnet.layers.cell_base import TF1LeafCell


@keras.saving.register_keras_serializable(package="affnet")
class AbsClip(keras.constraints.Constraint):
    """Clips every weight into [-limit, limit] (IndRNN recurrent-weight bound)."""

    def __init__(self, limit):
        if limit is None or float(limit) <= 0:
            raise ValueError(f"AbsClip limit must be a positive number, got {limit!r}")
        self.limit = float(limit)

    def __call__(self, w):
        return ops.clip(w, -self.limit, self.limit)

    def get_config(self):
        return {"limit": self.limit}


@keras.saving.register_keras_serializable(package="affnet")
class IndRNNCell(TF1LeafCell):
    """IndRNN cell; see the module docstring.

    Args:
        units: number of hidden units.
        activation: ReLU by default (Li et al. use ReLU).
        recurrent_clip: None (no bound, TF1 contrib behaviour) or a positive
            float L enforcing |u| <= L as a constraint, e.g. 2 ** (1 / T).
        kernel_initializer: initializer of W (glorot uniform, TF1 default).
        recurrent_initializer: initializer of u (uniform(-1, 1), TF1 contrib default).
    """

    tf1_scope = "ind_rnn_cell"

    TF1_VARIABLES = (("kernel_w", "kernel_w"), ("kernel_u", "kernel_u"), ("bias", "bias"))

    def _extra_config(self):
        return {"recurrent_clip": self.recurrent_clip,
                "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer)}

    def __init__(
        self,
        units,
        activation="relu",
        recurrent_clip=None,
        kernel_initializer="glorot_uniform",
        recurrent_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"IndRNNCell units must be a positive int, got {units!r}")
        if recurrent_clip is not None and not float(recurrent_clip) > 0:
            raise ValueError(f"IndRNNCell recurrent_clip must be None or > 0, got {recurrent_clip!r}")
        self.units = units
        self.activation = keras.activations.get(activation)
        self.recurrent_clip = None if recurrent_clip is None else float(recurrent_clip)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(
            recurrent_initializer
            or keras.initializers.RandomUniform(minval=-1.0, maxval=1.0)
        )
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        input_depth = self._input_depth(input_shape)
        self.kernel_w = self.add_weight(
            name="kernel_w", shape=(input_depth, self.units), initializer=self.kernel_initializer
        )
        self.kernel_u = self.add_weight(
            name="kernel_u",
            shape=(1, self.units),
            initializer=self.recurrent_initializer,
            constraint=None if self.recurrent_clip is None else AbsClip(self.recurrent_clip),
        )
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def project_inputs(self, inputs):
        return ops.matmul(inputs, self.kernel_w) + self.bias

    def call(self, inputs, states):
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        if self.inputs_projected:
            h = self.activation(inputs + self.kernel_u * h_prev)
        else:
            h = self.activation(ops.matmul(inputs, self.kernel_w) + self.kernel_u * h_prev + self.bias)
        return h, [h]

"""What the TF1-exact recurrent cells and cell wrappers share: their TF1 variable
names, their Keras config, and the split of a step into an input projection and
a recurrent part.

Every TF1 cell here multiplies `[x_t, state]` by one kernel whose first rows
belong to `x_t`. `[x, s] @ K = x @ K[:F] + s @ K[F:]`, so the `x` half of all T
steps is one (B*T) x F GEMM before the time loop (`InputProjectedRNN`), and the
loop keeps only the small state matmuls. The variables stay whole, with their
TF1 names and shapes, so checkpoints map unchanged.
"""

import keras


class ProjectsInputs:
    """Mixin for a cell whose step starts with `[x_t, state] @ kernel`.

    `project_inputs(x)` returns the part of the step's pre-activations that
    depends on the input alone (biases included), for any leading axes; a cell
    whose `inputs_projected` is True takes that projection as its `inputs`
    instead of `x_t`. `InputProjectedRNN` sets the flag on the first cell of
    its stack (from its constructor, so it is not part of the cell's config).
    """

    inputs_projected = False

    def project_inputs(self, inputs):
        """Also keeps the state rows of the kernels as `_state_kernels`, sliced once per
        sequence: a slice taken inside the loop would give every step a gradient the size
        of the whole kernel."""
        raise NotImplementedError


class TF1LeafCell(ProjectsInputs, keras.layers.Layer):
    """A cell without nested cells (GRU, peephole LSTM, IndRNN).

    `TF1_VARIABLES` lists (TF1 name under the cell's scope, attribute) in TF1 creation
    order, which `tf1_variables` reports for checkpoint mapping; `get_config` stores
    `units`, `activation`, `kernel_initializer` and whatever `_extra_config` adds.
    """

    TF1_VARIABLES = ()

    def tf1_variables(self, resolve=None):
        """`[(TF1 name relative to the enclosing scope, variable)]` in TF1 creation order."""
        del resolve  # a leaf cell has no nested cells
        return [(f"{self.tf1_scope}/{name}", getattr(self, attribute)) for name, attribute in self.TF1_VARIABLES]

    def _input_depth(self, input_shape):
        """The static last axis of the cell's input (TF1 sizes its kernels from it)."""
        if input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} needs a static input depth, got input shape {input_shape}")
        return input_shape[-1]

    def _extra_config(self):
        return {}

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, activation=keras.activations.serialize(self.activation),
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
                      **self._extra_config())
        return config


class WrapsCell:
    """Mixin for a layer around another RNN cell stored in its config as `cell`."""

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        return cls(**config)

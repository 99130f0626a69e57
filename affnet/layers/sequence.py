"""Folding the time axis into the batch axis, so frame CNNs run on sequences.

Keras 3.15's `TimeDistributed` maps over the batch axis once traced with an
unknown time dimension (SavedModel export and reload), so sequence models fold
`(B, T, ...)` into `(B*T, ...)`, run the frame network, and unfold again. Both
layers keep `T` dynamic.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="affnet")
class FoldTime(keras.layers.Layer):
    """`(B, T, *rest) -> (B*T, *rest)`."""

    def call(self, x):
        rest = tuple(x.shape[2:])
        if any(d is None for d in rest):
            raise ValueError(f"FoldTime needs static trailing dimensions, got shape {x.shape}")
        return ops.reshape(x, (-1,) + rest)

    def compute_output_shape(self, input_shape):
        b, t = input_shape[0], input_shape[1]
        folded = b * t if (b is not None and t is not None) else None
        return (folded,) + tuple(input_shape[2:])


@keras.saving.register_keras_serializable(package="affnet")
class UnfoldTime(keras.layers.Layer):
    """`[(B*T, *rest), reference (B, T, ...)] -> (B, T, *rest)`.

    The reference tensor (usually the sequence input) supplies B and T at run
    time, which keeps both dynamic in exported graphs.
    """

    def call(self, inputs):
        flat, reference = inputs
        shape = ops.shape(reference)
        rest = tuple(flat.shape[1:])
        return ops.reshape(flat, (shape[0], shape[1]) + rest)

    def compute_output_shape(self, input_shapes):
        flat_shape, reference_shape = input_shapes
        return (reference_shape[0], reference_shape[1]) + tuple(flat_shape[1:])

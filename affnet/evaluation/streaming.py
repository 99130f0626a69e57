"""Streaming Keras metrics of the set-level VA measures: CCC ([AW2] eq. 1), Pearson CC and MSE.

They give the numbers of the numpy set functions in `affnet.evaluation.metrics` batch by batch,
because they accumulate the additive moment statistics of `affnet.objectives.ccc` (never an average
of per-batch values, which is not the set's CCC: the authors' code scores the whole evaluated set
at once). Conventions (NaN = unlabelled, constant series, no NaN results) are those of `metrics`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from affnet.evaluation.metrics import DEFAULT_VA_NAMES
from affnet.objectives import ccc as moment_core

__all__ = ["StreamingCCC", "StreamingMSE", "StreamingPearson"]

_POS_INF = keras.initializers.Constant(float("inf"))
_NEG_INF = keras.initializers.Constant(float("-inf"))


class _MomentMetric(keras.metrics.Metric):
    """Accumulates the additive moment statistics of `affnet.objectives.ccc` (centred per
    batch, combined stably across batches) and the min / max of x and y (to recognise
    constant series exactly) per dimension.

    These sufficient statistics make a set's CCC / Pearson / MSE exact however the set
    is split into batches (the authors' code scores the whole evaluated set at once).
    Accumulators are float64 by default (a million frames' sums); pass
    ``accumulator_dtype="float32"`` where float64 is unavailable (TPU).

    ``update_state(y_true, y_pred, sample_weight=None)`` takes (..., D) tensors; NaN in
    ``y_true`` marks an unlabelled value, and ``sample_weight`` of shape (...,) or
    (..., D) weights frames (0/1 = mask). Predictions are cast to float32 first, so
    bfloat16 outputs are fine.
    """

    def __init__(self, dim_names=DEFAULT_VA_NAMES, accumulator_dtype="float64", name=None,
                 dtype=None):
        dim_names = tuple(dim_names)
        if not dim_names or not all(isinstance(n, str) for n in dim_names):
            raise ValueError(f"dim_names must be a non-empty tuple of str; received {dim_names!r}.")
        if accumulator_dtype not in ("float64", "float32"):
            raise ValueError(
                f"accumulator_dtype must be 'float64' or 'float32'; received {accumulator_dtype!r}."
            )
        super().__init__(name=name, dtype=dtype or "float32")
        self.dim_names = dim_names
        self.accumulator_dtype = accumulator_dtype
        depth = len(dim_names)
        self._sums = self.add_weight(
            shape=(moment_core.ROWS, depth), initializer="zeros", dtype=accumulator_dtype, name="moment_sums"
        )
        # Running extremes decide constancy exactly (see ``ccc``).
        self._extremes = {
            key: self.add_weight(
                shape=(depth,), initializer=init, dtype=accumulator_dtype, name=key
            )
            for key, init in (
                ("min_x", _POS_INF), ("max_x", _NEG_INF), ("min_y", _POS_INF), ("max_y", _NEG_INF)
            )
        }

    def update_state(self, y_true, y_pred, sample_weight=None):
        depth = len(self.dim_names)
        y_true = tf.cast(tf.convert_to_tensor(y_true), tf.float32)
        y_pred = tf.cast(tf.convert_to_tensor(y_pred), tf.float32)
        if y_true.shape[-1] is not None and y_true.shape[-1] != depth:
            raise ValueError(
                f"{self.name}: expected {depth} dims {self.dim_names}; received y_true "
                f"shape {y_true.shape}."
            )
        weights = tf.cast(tf.math.is_finite(y_true), tf.float32)
        if sample_weight is not None:
            sample_weight = tf.cast(tf.convert_to_tensor(sample_weight), tf.float32)
            while sample_weight.shape.rank < weights.shape.rank:
                sample_weight = sample_weight[..., None]
            weights = weights * sample_weight
        keep = weights > 0
        acc = self.accumulator_dtype
        x = tf.cast(tf.reshape(tf.where(keep, y_true, 0.0), [-1, depth]), acc)
        y = tf.cast(tf.reshape(tf.where(keep, y_pred, 0.0), [-1, depth]), acc)
        w = tf.cast(tf.reshape(weights, [-1, depth]), acc)
        self._sums.assign_add(moment_core.moment_sums(x, y, w))
        keep = tf.reshape(keep, [-1, depth])
        inf = tf.constant(float("inf"), acc)
        for axis, values in (("x", x), ("y", y)):
            low = tf.reduce_min(tf.where(keep, values, inf), axis=0)
            high = tf.reduce_max(tf.where(keep, values, -inf), axis=0)
            self._extremes[f"min_{axis}"].assign(tf.minimum(self._extremes[f"min_{axis}"], low))
            self._extremes[f"max_{axis}"].assign(tf.maximum(self._extremes[f"max_{axis}"], high))

    def _constant(self):
        """Per dimension: is the true series constant, is the predicted one (no frame
        counts as constant)."""
        return (
            self._extremes["min_x"] >= self._extremes["max_x"],
            self._extremes["min_y"] >= self._extremes["max_y"],
        )

    def _per_dimension(self):
        raise NotImplementedError

    def result(self):
        """``{f"{name}_{dim}": value, ..., f"{name}_mean": mean over dims}`` (float32).

        Keras flattens dict results into the training logs.
        """
        values = tf.cast(self._per_dimension(), self.dtype)
        result = {f"{self.name}_{dim}": values[i] for i, dim in enumerate(self.dim_names)}
        result[f"{self.name}_mean"] = tf.reduce_mean(values)
        return result

    def reset_state(self):
        self._sums.assign(tf.zeros_like(self._sums))
        for key, variable in self._extremes.items():
            sign = 1.0 if key.startswith("min") else -1.0
            variable.assign(tf.fill(tf.shape(variable), tf.constant(sign * float("inf"),
                                                                    variable.dtype)))

    def get_config(self):
        return {
            "name": self.name,
            "dtype": self.dtype,
            "dim_names": list(self.dim_names),
            "accumulator_dtype": self.accumulator_dtype,
        }


@keras.saving.register_keras_serializable(package="affnet")
class StreamingCCC(_MomentMetric):
    """Set-level CCC per dimension and its mean, [AW2] eq. 1, exact across batches.

    Same conventions as :func:`affnet.evaluation.metrics.ccc`: identical constants give 1, a zero denominator
    without any frame gives 0; never NaN.
    """

    def __init__(self, dim_names=DEFAULT_VA_NAMES, accumulator_dtype="float64", name="ccc",
                 dtype=None):
        super().__init__(dim_names, accumulator_dtype, name, dtype)

    def _per_dimension(self):
        sums = tf.convert_to_tensor(self._sums)
        n = sums[0]
        x_const, y_const = self._constant()
        equal = tf.equal(self._extremes["min_x"], self._extremes["min_y"])
        # Constancy decided exactly by the extremes, not by rounded variances.
        defined = ~x_const & ~y_const
        both = x_const & y_const & equal & (n > 0)
        return tf.where(defined, moment_core.ccc_from_sums(sums), tf.where(both, tf.ones_like(n), tf.zeros_like(n)))


@keras.saving.register_keras_serializable(package="affnet")
class StreamingPearson(_MomentMetric):
    """Set-level Pearson CC per dimension and its mean ([AW] Table 12); 0 when a series
    is constant, as :func:`affnet.evaluation.metrics.pcc`."""

    def __init__(self, dim_names=DEFAULT_VA_NAMES, accumulator_dtype="float64", name="pcc",
                 dtype=None):
        super().__init__(dim_names, accumulator_dtype, name, dtype)

    def _per_dimension(self):
        x_const, y_const = self._constant()
        value = moment_core.pearson_from_sums(tf.convert_to_tensor(self._sums))
        return tf.where(~x_const & ~y_const, value, tf.zeros_like(value))


@keras.saving.register_keras_serializable(package="affnet")
class StreamingMSE(_MomentMetric):
    """Set-level MSE per dimension and its mean ([AW] Table 10); 0 with no frame.

    Uses ``E[(x - y)^2] = var_x + var_y - 2 cov + (mean_x - mean_y)^2`` of the shared statistics.
    """

    def __init__(self, dim_names=DEFAULT_VA_NAMES, accumulator_dtype="float64", name="mse",
                 dtype=None):
        super().__init__(dim_names, accumulator_dtype, name, dtype)

    def _per_dimension(self):
        return moment_core.mse_from_sums(tf.convert_to_tensor(self._sums))

"""Concordance (CCC) and MSE training losses for valence-arousal regression.

The papers train every VA network with ``L = 1 - (rho_v + rho_a) / 2`` where
``rho_c = 2 s_xy / (s_x^2 + s_y^2 + (mean_x - mean_y)^2)`` ([AW2] eq. 1-2, [AW] Sec. 5,
[FBN] L_VA). During training the CCC is taken over all B*T frames of a batch
(:func:`ccc_loss`) or, for utterance-level labels, over the B per-sequence mean or
median predictions (:func:`sequence_ccc_loss`, [MC] Sec. 3, [OMG]). The CNN-M
baseline of [AW] Table 4 uses MSE (:func:`mse_loss`).

Conventions shared by every function here:

* Tensors are ``(B, T, D)`` or ``(N, D)`` with ``D`` affect dimensions ordered
  (valence, arousal); any ``D >= 1`` works.
* ``mask`` is optional, shaped like the tensors without their last axis (``(B, T)`` /
  ``(N,)``, shared by all dimensions) or exactly like them (``(B, T, D)``, per
  dimension). It may be boolean or a non-negative float weight; frames with weight 0
  do not count and their ``y_true`` may be NaN.
* Moments come from the one moment core `affnet.objectives.ccc` (centred, two-pass:
  raw moments ``E[x^2] - E[x]^2`` cancel badly in float32 when labels sit far from
  zero, e.g. OMG arousal in [0, 1]); population (biased) estimates, as numpy's and the
  authors' TF1 code's ``tf.nn.moments``; always float32 whatever the input dtype
  (bfloat16 moments lose the 1 - CCC signal), so the losses are mixed_bfloat16 clean.
* No NaN and no infinite gradient: when ``s_x^2 + s_y^2 + (mean_x - mean_y)^2 == 0``
  with at least one weighted frame, both series are the same constant and the CCC is 1;
  with no weighted frame at all the CCC is 0 (so the loss is 1 with zero gradient).
* Every function is XLA-compilable (static shapes only enter through ``tf.shape``).

The Keras wrappers :class:`CCCLoss` / :class:`SequenceCCCLoss` / :class:`MSELoss`
read NaN in ``y_true`` as "unlabelled" and fold ``sample_weight`` into the frame
weights, for ``model.fit`` users.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from affnet.objectives import ccc
from data_pipeline.base import checks

__all__ = [
    "concordance_cc",
    "ccc_loss",
    "ccc_loss_xla",
    "sequence_ccc_loss",
    "sequence_values",
    "mse_loss",
    "CCCLoss",
    "SequenceCCCLoss",
    "MSELoss",
]

_REDUCES = ("mean", "median")


def _as_float32(y_true, y_pred):
    y_true = tf.cast(tf.convert_to_tensor(y_true), tf.float32)
    y_pred = tf.cast(tf.convert_to_tensor(y_pred), tf.float32)
    if y_true.shape.rank is not None and y_true.shape.rank < 2:
        raise ValueError(
            f"y_true must be (B, T, D) or (N, D); received shape {y_true.shape}."
        )
    if y_pred.shape.rank is not None and y_pred.shape.rank < 2:
        raise ValueError(
            f"y_pred must be (B, T, D) or (N, D); received shape {y_pred.shape}."
        )
    return y_true, y_pred


def _frame_weights(y_true, mask):
    """Float32 weights shaped like ``y_true``; unweighted frames get exactly 0."""
    if mask is None:
        return tf.ones_like(y_true)
    weights = tf.cast(tf.convert_to_tensor(mask), tf.float32)
    received = weights.shape
    if received.rank is not None and y_true.shape.rank is not None:
        if received.rank == y_true.shape.rank - 1:
            weights = weights[..., None]
        frame_shape = y_true.shape[:-1].concatenate([None])
        if weights.shape.rank != y_true.shape.rank or not weights.shape.is_compatible_with(
            frame_shape
        ):
            raise ValueError(
                f"mask must have shape {y_true.shape[:-1]} or {y_true.shape}; "
                f"received shape {received}."
            )
    return tf.broadcast_to(weights, tf.shape(y_true))


def _flatten(y_true, y_pred, weights):
    depth = tf.shape(y_true)[-1]
    return (
        tf.reshape(y_true, [-1, depth]),
        tf.reshape(y_pred, [-1, depth]),
        tf.reshape(weights, [-1, depth]),
    )


def concordance_cc(y_true, y_pred, mask=None):
    """Per-dimension CCC over all (masked) frames, [AW2] eq. 1.

    Args:
      y_true: (B, T, D) or (N, D) labels; NaN allowed where ``mask`` is 0.
      y_pred: predictions, same shape.
      mask: optional 0/1 (or weight) tensor of shape (B, T) / (N,) or the full shape.

    Returns:
      float32 tensor (D,), e.g. [rho_valence, rho_arousal].
    """
    y_true, y_pred = _as_float32(y_true, y_pred)
    weights = _frame_weights(y_true, mask)
    return ccc.concordance(*_flatten(y_true, y_pred, weights))


def ccc_loss(y_true, y_pred, mask=None):
    """``1 - mean_d rho_d`` with the CCC over all B*T frames ([AW2] eq. 2, [FBN] L_VA).

    For D = 2 this is exactly ``1 - (rho_v + rho_a) / 2``. Returns a float32 scalar.
    """
    return 1.0 - tf.reduce_mean(concordance_cc(y_true, y_pred, mask))


ccc_loss_xla = tf.function(ccc_loss, jit_compile=True)
ccc_loss_xla.__doc__ = "XLA-compiled :func:`ccc_loss` (``tf.function(jit_compile=True)``)."


def _masked_mean(values, weights):
    """(B, T, D) -> (B, D) weighted mean over T; 0 where a sequence has no weight."""
    values = tf.where(weights > 0, values, 0.0)
    return tf.math.divide_no_nan(
        tf.reduce_sum(weights * values, axis=1), tf.reduce_sum(weights, axis=1)
    )


def _masked_median(values, weights):
    """(B, T, D) -> (B, D) median over T of the frames with weight > 0.

    Sort-and-gather keeps a gradient to the one (odd count) or two (even count, their
    average, as ``numpy.median``) middle frames, and XLA compiles the sort. Frame
    weights only select frames here: a weighted median is not what [MC] describes.
    """
    keep = tf.transpose(weights > 0, [0, 2, 1])  # (B, D, T)
    values = tf.transpose(values, [0, 2, 1])
    # Excluded frames sort last; ``float32.max`` stays finite so no inf reaches a sum.
    padded = tf.where(keep, values, tf.float32.max)
    order = tf.argsort(tf.stop_gradient(padded), axis=-1)
    ordered = tf.gather(padded, order, batch_dims=2)
    count = tf.reduce_sum(tf.cast(keep, tf.int32), axis=-1)  # (B, D)
    low = tf.maximum((count - 1) // 2, 0)
    high = tf.maximum(count // 2, 0)
    lower = tf.gather(ordered, low[..., None], batch_dims=2)[..., 0]
    upper = tf.gather(ordered, high[..., None], batch_dims=2)[..., 0]
    has_frames = count > 0
    lower = tf.where(has_frames, lower, 0.0)
    upper = tf.where(has_frames, upper, 0.0)
    return 0.5 * (lower + upper)


def sequence_values(y, mask=None, reduce="mean"):
    """Per-sequence value f(x) of [MC] Sec. 3: mean or median over the (masked) frames.

    Args:
      y: (B, T, D) per-frame values.
      mask: optional (B, T) or (B, T, D) weights; 0 excludes a frame.
      reduce: "mean" or "median" (both in [MC]; the median has sub-gradients).

    Returns:
      (values (B, D), weights (B, D)) with weight 1 where the sequence has at least one
      frame and 0 otherwise, float32.
    """
    checks.check_choice(reduce, "reduce", _REDUCES)
    y = tf.cast(tf.convert_to_tensor(y), tf.float32)
    if y.shape.rank is not None and y.shape.rank != 3:
        raise ValueError(f"sequence values need (B, T, D) tensors; received shape {y.shape}.")
    weights = _frame_weights(y, mask)
    reducer = _masked_mean if reduce == "mean" else _masked_median
    present = tf.cast(tf.reduce_any(weights > 0, axis=1), tf.float32)
    return reducer(y, weights), present


def sequence_ccc_loss(y_true, y_pred, mask=None, reduce="mean"):
    """Utterance-level CCC loss of [MC] Sec. 3 / [OMG]: CCC across the batch's sequences.

    Each of the B sequences is summarised by f(x) = mean or median of its (masked)
    per-frame predictions; the CCC is computed across those B values against the
    sequences' labels, and the loss is ``1 - mean_d rho_d``.

    Args:
      y_true: (B, D) one label per sequence, or (B, T, D) per-frame labels (then reduced
        with the same ``reduce``; with the [MC] practice of copying the utterance label
        to every frame, mean and median both give that label back).
      y_pred: (B, T, D) per-frame predictions.
      mask: optional (B, T) or (B, T, D) frame weights; a sequence with no frame left
        is left out of the CCC.
      reduce: "mean" or "median".
    """
    y_true, y_pred = _as_float32(y_true, y_pred)
    pred_values, present = sequence_values(y_pred, mask, reduce)
    if y_true.shape.rank == 2:
        true_values = y_true
        labelled = tf.cast(tf.math.is_finite(y_true), tf.float32)
    else:
        true_values, labelled = sequence_values(y_true, mask, reduce)
    return 1.0 - tf.reduce_mean(ccc.concordance(true_values, pred_values, present * labelled))


def mse_loss(y_true, y_pred, mask=None):
    """Mean squared error over all (masked) frames and dimensions ([AW] Table 4, CNN-M).

    Returns a float32 scalar; 0 when no frame is weighted.
    """
    y_true, y_pred = _as_float32(y_true, y_pred)
    weights = _frame_weights(y_true, mask)
    error = tf.where(weights > 0, y_pred - y_true, 0.0)
    return tf.math.divide_no_nan(
        tf.reduce_sum(weights * tf.square(error)), tf.reduce_sum(weights)
    )


class _MaskedBatchLoss(keras.losses.Loss):
    """Base for losses that are batch statistics rather than means of per-sample terms.

    ``keras.losses.Loss.__call__`` multiplies per-sample losses by ``sample_weight``;
    a CCC has no per-sample terms, so here NaN labels, ``sample_weight`` and a Keras
    mask on ``y_pred`` become frame weights inside the statistic instead.
    """

    def __init__(self, name, dtype=None):
        # float32 compute even under mixed_bfloat16: see the module docstring.
        super().__init__(name=name, reduction="none", dtype=dtype or "float32")

    def _statistic(self, y_true, y_pred, label_weights, frame_mask):
        raise NotImplementedError

    def __call__(self, y_true, y_pred, sample_weight=None):
        frame_mask = _keras_mask(y_pred)
        with tf.name_scope(self.name):
            y_true = tf.cast(tf.convert_to_tensor(y_true), tf.float32)
            y_pred = tf.cast(tf.convert_to_tensor(y_pred), tf.float32)
            weights = tf.cast(tf.math.is_finite(y_true), tf.float32)
            if sample_weight is not None:
                weights = weights * _expand_to(sample_weight, weights.shape.rank)
            if frame_mask is not None:
                frame_mask = tf.cast(frame_mask, tf.float32)
            return self._statistic(y_true, y_pred, weights, frame_mask)

    def call(self, y_true, y_pred):
        return self(y_true, y_pred)

    def get_config(self):
        return {"name": self.name}


def _keras_mask(tensor):
    try:  # Keras 3 keeps masks outside the tensor for some backends.
        from keras.src.backend import get_keras_mask
    except ImportError:  # pragma: no cover - older/newer Keras layouts
        return getattr(tensor, "_keras_mask", None)
    return get_keras_mask(tensor)


def _expand_to(weights, rank):
    weights = tf.cast(tf.convert_to_tensor(weights), tf.float32)
    while weights.shape.rank < rank:
        weights = weights[..., None]
    return weights


class _FrameBatchLoss(_MaskedBatchLoss):
    """A statistic over all labelled frames: Keras' frame mask joins the label weights."""

    def _statistic(self, y_true, y_pred, label_weights, frame_mask):
        if frame_mask is not None:
            label_weights = label_weights * _expand_to(frame_mask, label_weights.shape.rank)
        return self._frame_statistic(y_true, y_pred, label_weights)


@keras.saving.register_keras_serializable(package="affnet")
class CCCLoss(_FrameBatchLoss):
    """Keras loss ``1 - mean_d CCC_d`` over all B*T frames ([AW2] eq. 2).

    NaN in ``y_true`` marks unlabelled values (the schema's convention); they, frames
    with ``sample_weight`` 0 and frames masked by Keras are left out of the moments;
    non-binary sample weights weight the moments.
    """

    def __init__(self, name="ccc_loss", dtype=None):
        super().__init__(name=name, dtype=dtype)

    _frame_statistic = staticmethod(ccc_loss)


@keras.saving.register_keras_serializable(package="affnet")
class SequenceCCCLoss(_MaskedBatchLoss):
    """Keras loss for utterance-level labels ([MC] Sec. 3): CCC across sequence values.

    ``y_true`` is (B, D) (one label per sequence, NaN = unlabelled) or (B, T, D);
    ``y_pred`` is (B, T, D). ``sample_weight`` of shape (B,) selects sequences (0 drops
    one; other values do not re-weight the CCC across sequences), of shape (B, T)
    selects frames.

    Args:
      reduce: "mean" or "median" per-sequence summary f(x) of the predictions.
    """

    def __init__(self, reduce="mean", name="sequence_ccc_loss", dtype=None):
        checks.check_choice(reduce, "reduce", _REDUCES)
        super().__init__(name=name, dtype=dtype)
        self.reduce = reduce

    def _statistic(self, y_true, y_pred, label_weights, frame_mask):
        if y_true.shape.rank == 2:
            # Label weights live on sequences: spread them over every frame.
            frames = tf.ones_like(y_pred) * label_weights[:, None, :]
        else:
            frames = label_weights
        if frame_mask is not None:
            frames = frames * _expand_to(frame_mask, 3)
        return sequence_ccc_loss(y_true, y_pred, frames, self.reduce)

    def get_config(self):
        return {"name": self.name, "reduce": self.reduce}


@keras.saving.register_keras_serializable(package="affnet")
class MSELoss(_FrameBatchLoss):
    """Keras MSE over labelled frames (NaN labels ignored), [AW] CNN-M baseline."""

    def __init__(self, name="mse_loss", dtype=None):
        super().__init__(name=name, dtype=dtype)

    _frame_statistic = staticmethod(mse_loss)

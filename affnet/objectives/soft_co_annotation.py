"""[FBN] Sec. VI-B 3) soft co-annotation: soft emotion labels for AU-labelled samples (per
emotion, the weighted share of its Table V AUs that are present, softmax over emotions) and the
cross-entropy of p(emo|x) with them, as additive statistics (sum, count). The readings of the
paper (`neutral_score`, `missing`, `temperature`, weighted or not) are explained with
`CouplingConfig` in `affnet.objectives.couplings`.
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from affnet.objectives import multitask as mtl
from affnet.objectives.co_annotation import per_emotion
from data_pipeline.base import checks

__all__ = ["soft_co_annotation_targets", "soft_co_annotation_sums", "soft_co_annotation_loss"]

SOFT_MISSING = ("ignore", "absent")


def soft_co_annotation_targets(au, au_mask, matrix, neutral_score: Optional[float] = 0.0,
                               missing: str = "ignore", temperature: float = 1.0):
    """Soft emotion labels from AU labels, [FBN] Sec. VI-B 3).

    score_emo = sum_i w_i y_i / sum_i w_i over the emotion's AUs (`matrix` row: the
    weights, or 1/0 without re-weighting), softmax over the emotions.

    Args:
      au: (..., K) AU targets in [0, 1]; au_mask: (..., K) annotation mask.
      matrix: (7, K) weighted (or indicator) relatedness.
      neutral_score, missing, temperature: see `affnet.objectives.couplings`.

    Returns:
      (targets (..., 7) float32 summing to 1, has_target (...,) float32: 1 where at
      least one AU is annotated).
    """
    checks.check_choice(missing, "missing", SOFT_MISSING)
    matrix = mtl.f32(matrix)
    annotated = tf.cast(mtl.f32(au_mask) > 0, tf.float32)
    au = tf.where(annotated > 0, mtl.f32(au), 0.0)
    numerator = per_emotion(au * annotated, matrix)
    if missing == "ignore":
        denominator = per_emotion(annotated, matrix)
    else:
        denominator = tf.reduce_sum(matrix, -1) + tf.zeros_like(numerator)
    scores = tf.math.divide_no_nan(numerator, denominator)
    has_aus = tf.reduce_sum(matrix, -1) > 0  # (7,): False for neutral
    if neutral_score is not None:
        scores = tf.where(has_aus, scores, float(neutral_score))
        included = tf.ones_like(has_aus)
    else:
        included = has_aus
    logits = tf.where(included, scores / temperature, -1e9)
    targets = tf.nn.softmax(logits, -1)
    return targets, tf.cast(tf.reduce_any(annotated > 0, -1), tf.float32)


def soft_co_annotation_sums(labels, expression_logits, matrix, sample_mask=None, **options):
    """Additive statistics (2,) [sum of -sum_emo t_emo log p(emo|x), count] over AU-labelled samples.

    `sample_mask` (...,) further selects samples (e.g. 1 - au_coannotated).
    """
    targets, has = soft_co_annotation_targets(labels["au"], labels["au_mask"], matrix, **options)
    weights = has if sample_mask is None else has * mtl.f32(sample_mask)
    logits = mtl.f32(expression_logits)
    depth = tf.shape(logits)[-1]
    ce = tf.nn.softmax_cross_entropy_with_logits(labels=tf.reshape(targets, [-1, depth]),
                                                 logits=tf.reshape(logits, [-1, depth]))
    weights = tf.reshape(weights, [-1])
    ce = tf.where(weights > 0, ce, 0.0)
    return tf.stack([tf.reduce_sum(weights * ce), tf.reduce_sum(weights)])


def soft_co_annotation_loss(labels, expression_logits, matrix, sample_mask=None, **options):
    """Soft co-annotation cross-entropy averaged over AU-labelled samples; 0 without any."""
    total, count = tf.unstack(soft_co_annotation_sums(labels, expression_logits, matrix, sample_mask, **options))
    return tf.math.divide_no_nan(total, count)

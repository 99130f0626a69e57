"""[FBN] Sec. VI-B 2) distribution matching, eq. 8-9: the AU posteriors implied by the
expression posteriors through Table V,
    q(au_i|x) = sum_emo p(emo|x) p(au_i|emo),  L_DM = E_x sum_i -p(au_i|x) log q(au_i|x),
as additive statistics (sum, count) that a distributed caller can all-reduce. The readings of
the paper (`form`, `stop_gradient`, `related_only`) are explained with `CouplingConfig` in
`affnet.objectives.couplings`.
"""

from __future__ import annotations

import tensorflow as tf

from affnet.objectives import multitask as mtl
from data_pipeline.base import checks

__all__ = ["distribution_matching_sums", "distribution_matching_loss"]

DM_FORMS = ("positive", "binary")
DM_STOP_GRADIENTS = ("none", "au", "expression")
EPS = 1e-7  # Lower clip of q (and 1 - q) inside the logarithms.


def distribution_matching_sums(expression_logits, au_logits, matrix, mask=None, form: str = "positive",
                               stop_gradient: str = "none", related_only: bool = True, eps: float = EPS):
    """Additive statistics of L_DM, [FBN] eq. 8-9: (2,) [sum over samples, sum of weights].

    Args:
      expression_logits: (..., 7) logits; p(emo|x) = softmax.
      au_logits: (..., K) logits; p(au_i|x) = sigmoid.
      matrix: (7, K) p(au_i|emo) (`affnet.objectives.relatedness.relatedness_matrix`).
      mask: optional (...,) sample weights (padding frames 0); default every sample.
      form, stop_gradient, related_only: see `affnet.objectives.couplings`.
    """
    checks.check_choice(form, "form", DM_FORMS)
    checks.check_choice(stop_gradient, "stop_gradient", DM_STOP_GRADIENTS)
    matrix = mtl.f32(matrix)
    num_emotions, num_aus = matrix.shape
    p_emotion = tf.nn.softmax(tf.reshape(mtl.f32(expression_logits), [-1, num_emotions]), -1)
    p_au = tf.sigmoid(tf.reshape(mtl.f32(au_logits), [-1, num_aus]))
    if stop_gradient == "au":
        p_au = tf.stop_gradient(p_au)
    elif stop_gradient == "expression":
        p_emotion = tf.stop_gradient(p_emotion)
    q = tf.matmul(p_emotion, matrix)  # eq. 8; <= 1 since the rows of p(emo|x) sum to 1
    term = -p_au * tf.math.log(tf.clip_by_value(q, eps, 1.0))
    if form == "binary":
        term += -(1.0 - p_au) * tf.math.log(tf.clip_by_value(1.0 - q, eps, 1.0))
    if related_only:
        term *= tf.cast(tf.reduce_sum(matrix, 0) > 0, tf.float32)
    per_sample = tf.reduce_sum(term, -1)
    weights = tf.ones_like(per_sample) if mask is None else tf.reshape(mtl.f32(mask), [-1])
    keep = weights > 0
    per_sample = tf.where(keep, per_sample, 0.0)
    weights = tf.where(keep, weights, 0.0)
    return tf.stack([tf.reduce_sum(weights * per_sample), tf.reduce_sum(weights)])


def distribution_matching_loss(expression_logits, au_logits, matrix, mask=None, **options):
    """L_DM of eq. 9 averaged over the (weighted) samples; 0 without samples."""
    total, count = tf.unstack(distribution_matching_sums(expression_logits, au_logits, matrix, mask, **options))
    return tf.math.divide_no_nan(total, count)

"""Masked multi-task losses of [FBN] eq. 4-7 (MT-VGG(-GRU), FaceBehaviorNet).

* expressions: categorical cross-entropy over the 7 logits, eq. 4 / L_Emo of eq. 7,
  averaged over the samples that carry an expression label;
* AUs: binary cross-entropy over the logits, eq. 5 / L_AU of eq. 7, masked to the
  annotated AUs (delta_i) and normalised by their count;
* valence-arousal: the CCC loss 1 - 0.5 (rho_a + rho_v), eq. 6, over all labelled
  frames (`affnet.objectives.losses`).

Label dict conventions (`data_pipeline.reader.transforms.window_labels`): "expression"
int (...,) + "expression_mask" (...,); "au" float (..., K) targets in [0, 1]
(soft targets from co-annotation allowed) + "au_mask" (..., K); "va" (..., 2) +
"va_mask" (...,) or (..., 2); optional "valid" (...,) multiplies every mask. A mask
may be a non-negative float weight; a missing mask key means "all labelled".
Outputs dict: "expression" (..., 7) logits, "au" (..., K) logits, "va" (..., 2).
Any leading shape works ((B,), (B, T), ...): everything is flattened to samples.

Distribution: a mean over labelled samples of one replica is not the mean over the
global batch. Every term is therefore also given as additive statistics
(`*_sums` -> (sum of losses, count), the CCC as moment sums), which the caller
all-reduces (e.g. with `affnet.training.objective.global_sum`) before dividing:
pass `all_reduce=` to `multitask_loss`. The plain functions are
`divide_no_nan(sum, count)` of the local statistics. All functions are XLA
compilable and compute in float32 whatever the output dtype.
"""

from __future__ import annotations

from typing import Callable, Dict, Mapping, Optional, Tuple

import tensorflow as tf

from affnet.models.multitask import TASKS
from affnet.objectives import ccc
from data_pipeline.base import checks

__all__ = [
    "TASKS",
    "AU_NORMALIZATIONS",
    "expression_ce_sums",
    "expression_ce",
    "au_bce_sums",
    "au_bce",
    "va_ccc_sums",
    "va_ccc_from_sums",
    "va_ccc",
    "label_weights",
    "multitask_statistics",
    "reduce_statistics",
    "multitask_loss_from_statistics",
    "multitask_loss",
]

# "sample": eq. 7, per-sample mean over the annotated AUs, then mean over samples;
# "global": sum over all annotated (sample, AU) pairs / their number.
AU_NORMALIZATIONS = ("sample", "global")

AllReduce = Optional[Callable[[tf.Tensor], tf.Tensor]]


def f32(x):
    """`x` as a float32 tensor (labels, masks and outputs arrive as numpy, ints or bfloat16)."""
    return tf.cast(tf.convert_to_tensor(x), tf.float32)


def _flat(x, depth=None):
    """(..., depth) -> (N, depth), or (...,) -> (N,)."""
    if depth is None:
        return tf.reshape(x, [-1])
    return tf.reshape(x, [-1, depth])


def _weights_like(mask, reference):
    """Float32 weights broadcast to `reference`'s shape (1 where `mask` is None)."""
    if mask is None:
        return tf.ones_like(reference, tf.float32)
    return tf.broadcast_to(f32(mask), tf.shape(reference))


def _pair(total, count):
    return tf.stack([total, count])


def expression_ce_sums(labels, logits, mask=None):
    """(sum of -log softmax(logits)[label] over weighted samples, sum of weights), [FBN] eq. 4.

    Args:
      labels: (...,) int class in `EXPRESSIONS` order; any value where `mask` is 0.
      logits: (..., C) expression logits.
      mask: optional (...,) 0/1 or float weights.

    Returns:
      float32 (2,) [sum, count].
    """
    logits = f32(logits)
    depth = tf.shape(logits)[-1]
    labels = tf.cast(labels, tf.int32)
    weights = _flat(_weights_like(mask, labels))
    logits = _flat(logits, depth)
    labels = _flat(labels)
    keep = weights > 0
    # An unlabelled sample may hold -1 (or anything): keep the gather in range.
    safe = tf.where(keep & (labels >= 0) & (labels < depth), labels, 0)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=logits)
    ce = tf.where(keep, ce, 0.0)
    return _pair(tf.reduce_sum(weights * ce), tf.reduce_sum(tf.where(keep, weights, 0.0)))


def expression_ce(labels, logits, mask=None):
    """Masked mean categorical cross-entropy (L_Emo); 0 without labelled samples."""
    total, count = tf.unstack(expression_ce_sums(labels, logits, mask))
    return tf.math.divide_no_nan(total, count)


def au_bce_sums(targets, logits, mask=None, normalize="sample"):
    """Additive statistics of the masked AU binary cross-entropy, [FBN] eq. 5 / L_AU of eq. 7.

    Args:
      targets: (..., K) in [0, 1] (0/1 labels or soft co-annotation targets);
        anything (NaN included) where `mask` is 0.
      logits: (..., K) AU logits.
      mask: optional (..., K) (or (...,), shared by all AUs) 0/1 or float weights delta_i.
      normalize: "sample" (eq. 7: each sample's BCE summed over its annotated AUs and
        divided by their number, then averaged over the samples with at least one
        annotated AU) or "global" (all annotated (sample, AU) pairs pooled).

    Returns:
      float32 (2,) [sum, count].
    """
    checks.check_choice(normalize, "normalize", AU_NORMALIZATIONS)
    logits = f32(logits)
    targets = f32(targets)
    if mask is not None:
        mask = f32(mask)
        if mask.shape.rank is not None and logits.shape.rank is not None \
                and mask.shape.rank == logits.shape.rank - 1:
            mask = mask[..., None]  # one weight per sample, shared by its AUs
        mask = tf.broadcast_to(mask, tf.shape(logits))
    depth = tf.shape(logits)[-1]
    weights = _flat(_weights_like(mask, logits), depth)
    logits = _flat(logits, depth)
    targets = _flat(targets, depth)
    keep = weights > 0
    targets = tf.where(keep, targets, 0.0)
    bce = tf.where(keep, tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=logits), 0.0)
    weights = tf.where(keep, weights, 0.0)
    if normalize == "global":
        return _pair(tf.reduce_sum(weights * bce), tf.reduce_sum(weights))
    per_sample_weight = tf.reduce_sum(weights, -1)
    per_sample = tf.math.divide_no_nan(tf.reduce_sum(weights * bce, -1), per_sample_weight)
    annotated = tf.cast(per_sample_weight > 0, tf.float32)
    return _pair(tf.reduce_sum(per_sample), tf.reduce_sum(annotated))


def au_bce(targets, logits, mask=None, normalize="sample"):
    """Masked AU binary cross-entropy (L_AU); 0 without annotated AUs."""
    total, count = tf.unstack(au_bce_sums(targets, logits, mask, normalize))
    return tf.math.divide_no_nan(total, count)


def _va_weights(va, mask):
    """(N, D) float32 frame weights from a (...,) or (..., D) mask; 0 where `va` is NaN."""
    finite = tf.cast(tf.math.is_finite(va), tf.float32)
    if mask is None:
        return finite
    mask = f32(mask)
    if mask.shape.rank is not None and va.shape.rank is not None and mask.shape.rank == va.shape.rank - 1:
        mask = mask[..., None]
    return finite * tf.broadcast_to(mask, tf.shape(va))


def va_ccc_sums(va, predictions, mask=None):
    """(9, D) additive moment statistics of labels x and predictions y (`affnet.objectives.ccc`).

    Summed over replicas they give the global-batch CCC via `va_ccc_from_sums`.
    """
    va = f32(va)
    depth = tf.shape(va)[-1]
    return ccc.moment_sums(_flat(va, depth), _flat(f32(predictions), depth), _flat(_va_weights(va, mask), depth))


def va_ccc_from_sums(sums):
    """1 - mean_d CCC_d from moment statistics (eq. 6); 0 when no frame is labelled."""
    loss = 1.0 - tf.reduce_mean(ccc.ccc_from_sums(sums))
    return tf.where(tf.reduce_sum(sums[0]) > 0, loss, 0.0)


def va_ccc(va, predictions, mask=None):
    """L_VA = 1 - 0.5 (rho_a + rho_v) over the labelled frames; 0, with zero gradient,
    when no frame is labelled."""
    return va_ccc_from_sums(va_ccc_sums(va, predictions, mask))


def label_weights(labels, key):
    """`labels[key]` times `labels["valid"]` (when present), float32; None if `key` is absent
    and there is no "valid" either."""
    mask = labels.get(key)
    valid = labels.get("valid")
    if mask is None and valid is None:
        return None
    if mask is None:
        return f32(valid)
    mask = f32(mask)
    if valid is None:
        return mask
    valid = f32(valid)
    while valid.shape.rank is not None and mask.shape.rank is not None and valid.shape.rank < mask.shape.rank:
        valid = valid[..., None]
    return mask * valid


def _expression_weights(labels):
    return label_weights(labels, "expression_mask")


def _au_weights(labels):
    return label_weights(labels, "au_mask")


def multitask_statistics(labels, outputs, au_normalize="sample") -> Dict[str, tf.Tensor]:
    """{task: additive statistics} for every task present in both `outputs` and `labels`.

    "expression", "au": (2,) [sum, count]; "va": (9, 2) moment statistics.
    """
    stats = {}
    if "expression" in outputs and "expression" in labels:
        stats["expression"] = expression_ce_sums(labels["expression"], outputs["expression"],
                                                 _expression_weights(labels))
    if "au" in outputs and "au" in labels:
        stats["au"] = au_bce_sums(labels["au"], outputs["au"], _au_weights(labels), au_normalize)
    if "va" in outputs and "va" in labels:
        stats["va"] = va_ccc_sums(labels["va"], outputs["va"], label_weights(labels, "va_mask"))
    return stats


def reduce_statistics(stats: Mapping[str, tf.Tensor], all_reduce: AllReduce) -> Dict[str, tf.Tensor]:
    """Apply `all_reduce` once to all statistics (packed into one float32 vector)."""
    if all_reduce is None or not stats:
        return dict(stats)
    names = sorted(stats)
    flat = [tf.reshape(f32(stats[name]), [-1]) for name in names]
    sizes = [int(f.shape[0]) for f in flat]
    reduced = tf.split(all_reduce(tf.concat(flat, 0)), sizes)
    return {name: tf.reshape(part, tf.shape(stats[name])) for name, part in zip(names, reduced)}


def _ratio(pair):
    return tf.math.divide_no_nan(pair[0], pair[1])


def weighted_total(components, weights=None):
    """sum_name weights[name] * components[name], weight 1 where absent (float32)."""
    weights = dict(weights or {})
    total = tf.constant(0.0, tf.float32)
    for name, value in components.items():
        total += float(weights.get(name, 1.0)) * value
    return total


def multitask_loss_from_statistics(stats: Mapping[str, tf.Tensor], weights=None):
    """(total, {task: loss}) from (globally summed) `multitask_statistics`; absent tasks give 0."""
    zero = tf.constant(0.0, tf.float32)
    components = {
        "expression": _ratio(stats["expression"]) if "expression" in stats else zero,
        "au": _ratio(stats["au"]) if "au" in stats else zero,
        "va": va_ccc_from_sums(stats["va"]) if "va" in stats else zero,
    }
    return weighted_total(components, weights), components


def multitask_loss(labels, outputs, weights: Optional[Mapping[str, float]] = None,
                   au_normalize: str = "sample", all_reduce: AllReduce = None
                   ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
    """[FBN] eq. 7 L_MT = L_Emo + l1 L_AU + l2 L_VA (eq. 4-6 summed for MT-VGG).

    Args:
      labels: label dict (module docstring).
      outputs: {"va", "expression", "au"} model outputs; a task missing here, in
        `labels`, or with no labelled sample in the batch contributes 0.
      weights: {task: weight} for "expression", "au" (l1), "va" (l2); 1 where absent.
      au_normalize: see `au_bce_sums`.
      all_reduce: None for the local batch; else a function summing a float32
        vector over replicas (`affnet.training.objective.global_sum`), applied once
        to all statistics so every replica gets the global-batch loss.

    Returns:
      (total float32 scalar, {"expression", "au", "va": unweighted float32 scalars}).
    """
    # One implementation: the local batch is the statistics path without the all-reduce.
    stats = reduce_statistics(multitask_statistics(labels, outputs, au_normalize), all_reduce)
    return multitask_loss_from_statistics(stats, weights)

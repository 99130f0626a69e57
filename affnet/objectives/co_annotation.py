"""[FBN] Sec. VI-B 1) co-annotation: a label transform through the expression-AU relatedness
of Table V (`affnet.objectives.relatedness`).

An expression-labelled sample without AU labels gets its emotion's prototypical and
observational AUs as AU labels; an AU-labelled sample without an expression label gets the
emotion all of whose prototypical+observational AUs are present (the one with the largest
requirement when several are). The readings of the paper this needs (`observational`,
`absent_aus`, `scope`, `requirement`, `au_threshold`) are explained with `CouplingConfig` in
`affnet.objectives.couplings`, which also maps a config onto `co_annotate` for `Dataset.map`.
"""

from __future__ import annotations

from typing import Dict, Mapping, Sequence

import tensorflow as tf

from affnet.objectives import multitask as mtl
from affnet.objectives import relatedness as rel
from data_pipeline.base import checks
from data_pipeline.records.schema import AUS_FBN_17, EXPRESSIONS

__all__ = ["co_annotate", "per_emotion"]

OBSERVATIONAL = ("target", "weight", "none")
REQUIREMENTS = ("count", "weight")
SCOPES = ("sample", "au")
NEUTRAL = EXPRESSIONS.index("neutral")


def per_emotion(x, matrix):
    """(..., K) per-AU values x (E, K) relatedness -> (..., E): sum_k x[..., k] matrix[e, k]."""
    return tf.einsum("...k,ek->...e", x, matrix)


def _matrices(table, au_names):
    related = rel.relatedness(table, au_names)
    return tf.constant(related.indicator), tf.constant(related.weighted)


def co_annotate(labels: Mapping[str, tf.Tensor], table="cognitive", au_names: Sequence[str] = AUS_FBN_17,
                emotion_to_au: bool = True, au_to_emotion: bool = True, observational: str = "target",
                absent_aus: bool = False, scope: str = "sample", requirement: str = "count",
                au_threshold: float = 0.5) -> Dict[str, tf.Tensor]:
    """[FBN] Sec. VI-B 1): co-annotate expression and AU labels through Table V.

    Args:
      labels: dict with "expression" (...,) int, "expression_mask" (...,), "au"
        (..., K), "au_mask" (..., K) (`window_labels` conventions; a missing or
        zero-width "au" means no AU labels). Any leading shape; eager or in tf.data.
      table, au_names: relatedness table (`affnet.objectives.relatedness`) and the AU columns.
      emotion_to_au: expression-labelled samples get AU labels.
      au_to_emotion: AU-labelled samples without an expression label get one.
      observational, absent_aus, scope, requirement, au_threshold: see `affnet.objectives.couplings`.

    Returns:
      a new dict: the input entries, updated "expression", "expression_mask", "au",
      "au_mask" (float32), plus "expression_coannotated" and "au_coannotated"
      (...,) float32 flags of the samples whose labels were added here (soft
      co-annotation skips the latter: their AUs are not ground truth).
    """
    checks.check_choice(observational, "observational", OBSERVATIONAL)
    checks.check_choice(scope, "scope", SCOPES)
    checks.check_choice(requirement, "requirement", REQUIREMENTS)
    indicator, weighted = _matrices(table, au_names)
    num_aus = len(au_names)

    expression = tf.convert_to_tensor(labels["expression"])
    out_dtype = expression.dtype
    expression = tf.cast(expression, tf.int32)
    emask = mtl.f32(labels["expression_mask"]) if "expression_mask" in labels else tf.ones(tf.shape(expression))
    leading = tf.shape(expression)
    au = labels.get("au")
    if au is None or tf.convert_to_tensor(au).shape[-1] == 0:
        au = tf.zeros(tf.concat([leading, [num_aus]], 0))
        amask = tf.zeros_like(au)
    else:
        au = mtl.f32(au)
        amask = mtl.f32(labels["au_mask"]) if "au_mask" in labels else tf.ones_like(au)
    if au.shape[-1] is not None and au.shape[-1] != num_aus:
        raise ValueError(f"labels['au'] has {au.shape[-1]} AUs but au_names has {num_aus}: {tuple(au_names)}.")

    has_expression = emask > 0
    has_au = tf.reduce_any(amask > 0, -1)
    new_au, new_amask = au, amask
    au_added = tf.zeros_like(has_au)
    if emotion_to_au:
        valid_class = has_expression & (expression >= 0) & (expression < len(EXPRESSIONS))
        safe = tf.where(valid_class, expression, NEUTRAL)
        row_indicator = tf.gather(indicator, safe)
        row_weighted = tf.gather(weighted, safe)
        if observational == "target":
            target, weight = row_weighted, row_indicator
        elif observational == "weight":
            target, weight = row_indicator, row_weighted
        else:
            target, weight = row_indicator, row_indicator
        if absent_aus:
            weight = tf.ones_like(weight)
        weight = weight * emask[..., None]
        if scope == "sample":
            fill = (valid_class & ~has_au)[..., None] & tf.ones_like(amask, tf.bool)
        else:
            fill = valid_class[..., None] & (amask <= 0)
        fill = fill & (weight > 0)
        new_au = tf.where(fill, target, au)
        new_amask = tf.where(fill, weight, amask)
        au_added = tf.reduce_any(fill, -1)

    new_expression, new_emask = expression, emask
    expression_added = tf.zeros_like(has_expression)
    if au_to_emotion:
        present = tf.cast((amask > 0) & (au >= au_threshold), tf.float32)
        missing = per_emotion(1.0 - present, indicator)  # required AUs not present, per emotion
        has_requirement = tf.reduce_sum(indicator, -1) > 0
        satisfied = (missing < 0.5) & has_requirement
        size = tf.reduce_sum(indicator if requirement == "count" else weighted, -1)
        best = tf.argmax(tf.where(satisfied, size, -1.0), axis=-1, output_type=tf.int32)
        expression_added = tf.reduce_any(satisfied, -1) & ~has_expression & has_au
        new_expression = tf.where(expression_added, best, expression)
        new_emask = tf.where(expression_added, 1.0, emask)

    result = dict(labels)
    result.update({
        "expression": tf.cast(new_expression, out_dtype),
        "expression_mask": new_emask,
        "au": new_au,
        "au_mask": new_amask,
        "expression_coannotated": tf.cast(expression_added, tf.float32),
        "au_coannotated": tf.cast(au_added, tf.float32),
    })
    return result

"""FaceBehaviorNet task couplings of [FBN] Sec. VI-B, each switchable.

(a) co-annotation (`co_annotate`): a label transform. An expression-labelled
    sample without AU labels gets its emotion's prototypical and observational
    AUs (Table V) as AU labels; an AU-labelled sample without an expression label
    gets the emotion all of whose prototypical+observational AUs are present (the
    one with the largest requirement when several are). Use it inside
    `tf.data.Dataset.map` (`co_annotation_fn`) or let `facebehaviornet_loss` apply it.
(b) distribution matching (`distribution_matching_sums`, eq. 8-9):
    q(au_i|x) = sum_emo p(emo|x) p(au_i|emo), L_DM = E_x sum_i -p(au_i|x) log q(au_i|x).
(c) soft co-annotation (`soft_co_annotation_targets` / `_sums`): for AU-labelled
    samples, per-emotion score = weighted share of its AUs that are present,
    softmax over emotions, cross-entropy with p(emo|x).

`facebehaviornet_loss` = L_Emo + l1 L_AU + l2 L_VA (eq. 7) + the enabled coupling
terms with their weights. Every loss is also available as additive statistics
(sum, count) so a distributed caller can all-reduce them (`all_reduce=`), as in
`affnet.objectives.multitask`.

Every reading of the paper we had to choose is an argument of `CouplingConfig`
(defaults = our best reading; the README lists them):

* `observational`: how co-annotation "re-weights the contributions of the
  observational AUs with the annotators' agreement score": "target" (default,
  BCE target w), "weight" (target 1, loss weight w), "none" (target 1, weight 1).
* `absent_aus`: False (default; footnote 2: a co-annotated y_au "only contains
  prototypical/observational AUs", the others stay unlabelled) or True (the other
  AUs are labelled 0; a neutral sample then has every AU off).
* `scope`: "sample" (default: only samples with no AU label at all are
  co-annotated with AUs) or "au" (any unannotated AU of an expression-labelled
  sample is filled).
* `requirement`: "count" (default: "largest requirement" = most required AUs)
  or "weight" (largest sum of weights); ties go to the first emotion in
  `EXPRESSIONS` order.
* AUs of Table V outside the model's AU list are dropped from every
  requirement (AU11 of sadness for the 17 AUs); an AU counts as present when
  annotated with target >= `au_threshold` (0.5); an unannotated AU is not present.
* `dm_weighted`: False (eq. 8, p(au|emo) = 1/0) or True (footnote 3, w).
* `dm_form`: "positive" (default, eq. 9 literally: only -p log q per AU) or
  "binary" (per-AU Bernoulli cross-entropy, -p log q - (1-p) log(1-q)).
* `dm_stop_gradient`: "none" (default; both heads receive the gradient, as
  eq. 9 is written), "au" (p(au|x) is a fixed soft target, the distillation /
  KL(p||q) reading of footnote 4: only the expression head learns), or
  "expression" (q is fixed: only the AU head learns).
* `dm_related_only`: True (default) sums eq. 9 over the AUs that at least one
  emotion relates to; q is identically 0 for the others (AU14 in the cognitive
  table) and -p log q would be unbounded. False keeps them with q clipped at eps.
  L_DM averages over all samples of the batch ("all available training samples
  are used"), padding frames (`valid` = 0) excepted.
* `soft_weighted`: True (default, the paper's example (y12 + y25 + 0.51 y6) / 2.51)
  or False (all weights 1).
* `soft_neutral_score`: neutral has no AUs; 0.0 (default: neutral takes part in
  the softmax with score 0) or None (neutral is left out: target probability 0).
* `soft_missing`: "ignore" (default: an unannotated AU leaves numerator and
  denominator) or "absent" (it counts as inactive).
* `soft_temperature`: softmax temperature over the scores (1, the paper's plain softmax).

The paper does not give l1, l2 or the coupling weights: all default to 1.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

import tensorflow as tf

from affnet.names import COUPLINGS  # The `--couplings` values, defined once in names.
from affnet.objectives import multitask as mtl
from affnet.objectives import relatedness as rel
from data_pipeline.records.schema import AUS_FBN_17, EXPRESSIONS

__all__ = [
    "COUPLINGS",
    "CouplingConfig",
    "co_annotate",
    "co_annotation_fn",
    "distribution_matching_sums",
    "distribution_matching_loss",
    "soft_co_annotation_targets",
    "soft_co_annotation_sums",
    "soft_co_annotation_loss",
    "facebehaviornet_statistics",
    "facebehaviornet_loss_from_statistics",
    "facebehaviornet_loss",
]

OBSERVATIONAL = ("target", "weight", "none")
REQUIREMENTS = ("count", "weight")
SCOPES = ("sample", "au")
DM_FORMS = ("positive", "binary")
DM_STOP_GRADIENTS = ("none", "au", "expression")
SOFT_MISSING = ("ignore", "absent")
NEUTRAL = EXPRESSIONS.index("neutral")
_EPS = 1e-7


def _choose(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; received {name}={value!r}.")


@dataclasses.dataclass(frozen=True)
class CouplingConfig:
    """Which couplings are on and every reading of [FBN] Sec. VI-B (module docstring)."""

    co_annotation: bool = False
    distribution_matching: bool = False
    soft_co_annotation: bool = False
    table: Union[str, Mapping[str, rel.EmotionAUs]] = "cognitive"
    au_names: Tuple[str, ...] = AUS_FBN_17
    au_normalize: str = "sample"
    # (a) co-annotation
    observational: str = "target"
    absent_aus: bool = False
    scope: str = "sample"
    requirement: str = "count"
    au_threshold: float = 0.5
    # (b) distribution matching
    dm_weighted: bool = False
    dm_form: str = "positive"
    dm_stop_gradient: str = "none"
    dm_related_only: bool = True
    # (c) soft co-annotation
    soft_weighted: bool = True
    soft_neutral_score: Optional[float] = 0.0
    soft_missing: str = "ignore"
    soft_temperature: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "au_names", tuple(self.au_names))
        _choose("au_normalize", self.au_normalize, mtl.AU_NORMALIZATIONS)
        _choose("observational", self.observational, OBSERVATIONAL)
        _choose("scope", self.scope, SCOPES)
        _choose("requirement", self.requirement, REQUIREMENTS)
        _choose("dm_form", self.dm_form, DM_FORMS)
        _choose("dm_stop_gradient", self.dm_stop_gradient, DM_STOP_GRADIENTS)
        _choose("soft_missing", self.soft_missing, SOFT_MISSING)
        if not self.soft_temperature > 0:
            raise ValueError(f"soft_temperature must be > 0; received {self.soft_temperature!r}.")
        rel.relatedness(self.table, self.au_names)  # validates table and AU names

    @classmethod
    def from_names(cls, names: Iterable[str] = (), **options) -> "CouplingConfig":
        """`("distribution_matching", "soft_co_annotation")` -> config with those on."""
        names = tuple(names)
        for name in names:
            _choose("coupling", name, COUPLINGS)
        return cls(**{name: True for name in names}, **options)

    @property
    def enabled(self) -> Tuple[str, ...]:
        return tuple(name for name in COUPLINGS if getattr(self, name))

    def relatedness(self) -> rel.Relatedness:
        return rel.relatedness(self.table, self.au_names)


def _f32(x):
    return tf.cast(tf.convert_to_tensor(x), tf.float32)


def _matrices(table, au_names):
    related = rel.relatedness(table, au_names)
    return tf.constant(related.indicator), tf.constant(related.weighted)


def _rowwise(x, matrix):
    """(..., K) x (E, K) -> (..., E): sum_k x[..., k] matrix[e, k]."""
    return tf.einsum("...k,ek->...e", x, matrix)


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
      observational, absent_aus, scope, requirement, au_threshold: see module docstring.

    Returns:
      a new dict: the input entries, updated "expression", "expression_mask", "au",
      "au_mask" (float32), plus "expression_coannotated" and "au_coannotated"
      (...,) float32 flags of the samples whose labels were added here (soft
      co-annotation skips the latter: their AUs are not ground truth).
    """
    _choose("observational", observational, OBSERVATIONAL)
    _choose("scope", scope, SCOPES)
    _choose("requirement", requirement, REQUIREMENTS)
    indicator, weighted = _matrices(table, au_names)
    num_aus = len(au_names)

    expression = tf.convert_to_tensor(labels["expression"])
    out_dtype = expression.dtype
    expression = tf.cast(expression, tf.int32)
    emask = _f32(labels["expression_mask"]) if "expression_mask" in labels else tf.ones(tf.shape(expression))
    leading = tf.shape(expression)
    au = labels.get("au")
    if au is None or tf.convert_to_tensor(au).shape[-1] == 0:
        au = tf.zeros(tf.concat([leading, [num_aus]], 0))
        amask = tf.zeros_like(au)
    else:
        au = _f32(au)
        amask = _f32(labels["au_mask"]) if "au_mask" in labels else tf.ones_like(au)
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
        missing = _rowwise(1.0 - present, indicator)  # required AUs not present, per emotion
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


def co_annotation_fn(config: CouplingConfig):
    """`labels -> co_annotate(labels, ...)` with `config`'s readings, for `Dataset.map`."""
    return functools.partial(co_annotate, table=config.table, au_names=config.au_names,
                             observational=config.observational, absent_aus=config.absent_aus,
                             scope=config.scope, requirement=config.requirement,
                             au_threshold=config.au_threshold)


def distribution_matching_sums(expression_logits, au_logits, matrix, mask=None, form: str = "positive",
                               stop_gradient: str = "none", related_only: bool = True, eps: float = _EPS):
    """Additive statistics of L_DM, [FBN] eq. 8-9: (2,) [sum over samples, sum of weights].

    Args:
      expression_logits: (..., 7) logits; p(emo|x) = softmax.
      au_logits: (..., K) logits; p(au_i|x) = sigmoid.
      matrix: (7, K) p(au_i|emo) (`affnet.objectives.relatedness.relatedness_matrix`).
      mask: optional (...,) sample weights (padding frames 0); default every sample.
      form, stop_gradient, related_only: see module docstring.
    """
    _choose("form", form, DM_FORMS)
    _choose("stop_gradient", stop_gradient, DM_STOP_GRADIENTS)
    matrix = _f32(matrix)
    num_emotions, num_aus = matrix.shape
    p_emotion = tf.nn.softmax(tf.reshape(_f32(expression_logits), [-1, num_emotions]), -1)
    p_au = tf.sigmoid(tf.reshape(_f32(au_logits), [-1, num_aus]))
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
    weights = tf.ones_like(per_sample) if mask is None else tf.reshape(_f32(mask), [-1])
    keep = weights > 0
    per_sample = tf.where(keep, per_sample, 0.0)
    weights = tf.where(keep, weights, 0.0)
    return tf.stack([tf.reduce_sum(weights * per_sample), tf.reduce_sum(weights)])


def distribution_matching_loss(expression_logits, au_logits, matrix, mask=None, **options):
    """L_DM of eq. 9 averaged over the (weighted) samples; 0 without samples."""
    total, count = tf.unstack(distribution_matching_sums(expression_logits, au_logits, matrix, mask, **options))
    return tf.math.divide_no_nan(total, count)


def soft_co_annotation_targets(au, au_mask, matrix, neutral_score: Optional[float] = 0.0,
                               missing: str = "ignore", temperature: float = 1.0):
    """Soft emotion labels from AU labels, [FBN] Sec. VI-B 3).

    score_emo = sum_i w_i y_i / sum_i w_i over the emotion's AUs (`matrix` row: the
    weights, or 1/0 without re-weighting), softmax over the emotions.

    Args:
      au: (..., K) AU targets in [0, 1]; au_mask: (..., K) annotation mask.
      matrix: (7, K) weighted (or indicator) relatedness.
      neutral_score, missing, temperature: see module docstring.

    Returns:
      (targets (..., 7) float32 summing to 1, has_target (...,) float32: 1 where at
      least one AU is annotated).
    """
    _choose("missing", missing, SOFT_MISSING)
    matrix = _f32(matrix)
    annotated = tf.cast(_f32(au_mask) > 0, tf.float32)
    au = tf.where(annotated > 0, _f32(au), 0.0)
    numerator = _rowwise(au * annotated, matrix)
    if missing == "ignore":
        denominator = _rowwise(annotated, matrix)
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
    weights = has if sample_mask is None else has * _f32(sample_mask)
    logits = _f32(expression_logits)
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


def _config(couplings) -> CouplingConfig:
    if isinstance(couplings, CouplingConfig):
        return couplings
    if isinstance(couplings, str):
        couplings = [c for c in couplings.split(",") if c.strip()]
    return CouplingConfig.from_names([c.strip() for c in couplings])


def _prepare_labels(labels, config: CouplingConfig):
    if config.co_annotation and "au_coannotated" not in labels:
        return co_annotation_fn(config)(labels)  # not already applied in tf.data
    return labels


def _coupling_statistics(labels, outputs, config: CouplingConfig) -> Dict[str, tf.Tensor]:
    stats = {}
    related = config.relatedness()
    has_outputs = "expression" in outputs and "au" in outputs
    if config.distribution_matching and has_outputs:
        stats["distribution_matching"] = distribution_matching_sums(
            outputs["expression"], outputs["au"], related.matrix(config.dm_weighted),
            mask=labels.get("valid"), form=config.dm_form, stop_gradient=config.dm_stop_gradient,
            related_only=config.dm_related_only)
    if config.soft_co_annotation and "expression" in outputs and "au" in labels \
            and tf.convert_to_tensor(labels["au"]).shape[-1] != 0:
        au_mask = mtl.label_weights(labels, "au_mask")
        if au_mask is None:
            au_mask = tf.ones_like(_f32(labels["au"]))
        sample_mask = None
        if "au_coannotated" in labels:
            sample_mask = 1.0 - _f32(labels["au_coannotated"])
        stats["soft_co_annotation"] = soft_co_annotation_sums(
            {"au": labels["au"], "au_mask": au_mask}, outputs["expression"],
            related.matrix(config.soft_weighted), sample_mask,
            neutral_score=config.soft_neutral_score, missing=config.soft_missing,
            temperature=config.soft_temperature)
    return stats


def facebehaviornet_statistics(labels, outputs, couplings=()) -> Dict[str, tf.Tensor]:
    """This replica's additive statistics of every term of `facebehaviornet_loss`."""
    config = _config(couplings)
    labels = _prepare_labels(labels, config)
    stats = mtl.multitask_statistics(labels, outputs, config.au_normalize)
    stats.update(_coupling_statistics(labels, outputs, config))
    return stats


def facebehaviornet_loss_from_statistics(stats: Mapping[str, tf.Tensor], couplings=(),
                                         lambdas: Optional[Mapping[str, float]] = None
                                         ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
    """(total, components) from (globally summed) `facebehaviornet_statistics`."""
    config = _config(couplings)
    task_stats = {name: value for name, value in stats.items() if name in mtl.TASKS}
    _, components = mtl.multitask_loss_from_statistics(task_stats)
    for name in ("distribution_matching", "soft_co_annotation"):
        if getattr(config, name):
            pair = stats.get(name)
            components[name] = tf.constant(0.0) if pair is None else tf.math.divide_no_nan(pair[0], pair[1])
    return mtl.weighted_total(components, lambdas), components


def facebehaviornet_loss(labels, outputs, couplings: Union[CouplingConfig, Iterable[str]] = (),
                         lambdas: Optional[Mapping[str, float]] = None, all_reduce=None
                         ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
    """[FBN] eq. 7 L_MT = L_Emo + l1 L_AU + l2 L_VA, plus the enabled coupling terms.

    Args:
      labels: label dict (`affnet.objectives.multitask`); co-annotated here when
        co-annotation is on and the labels do not carry "au_coannotated" yet.
      outputs: {"va", "expression", "au"} model outputs (logits for the last two).
      couplings: a `CouplingConfig`, or names from `COUPLINGS` (defaults otherwise).
      lambdas: {"expression", "au", "va", "distribution_matching",
        "soft_co_annotation": weight}, 1 where absent ("co_annotation" has no term).
      all_reduce: None (local batch) or a function summing a float32 vector over
        replicas (`affnet.training.objective.global_sum`), applied once.

    Returns:
      (total, {"expression", "au", "va", and each enabled loss coupling: unweighted value}).
    """
    # One implementation: the local batch is the statistics path without the all-reduce.
    config = _config(couplings)
    stats = mtl.reduce_statistics(facebehaviornet_statistics(labels, outputs, config), all_reduce)
    return facebehaviornet_loss_from_statistics(stats, config, lambdas)

"""FaceBehaviorNet task couplings of [FBN] Sec. VI-B, each switchable.

(a) co-annotation (`affnet.objectives.co_annotation`): a label transform. An expression-labelled
    sample without AU labels gets its emotion's prototypical and observational
    AUs (Table V) as AU labels; an AU-labelled sample without an expression label
    gets the emotion all of whose prototypical+observational AUs are present (the
    one with the largest requirement when several are). Use it inside
    `tf.data.Dataset.map` (`co_annotation_fn`) or let `facebehaviornet_loss` apply it.
(b) distribution matching (`affnet.objectives.distribution_matching`, eq. 8-9):
    q(au_i|x) = sum_emo p(emo|x) p(au_i|emo), L_DM = E_x sum_i -p(au_i|x) log q(au_i|x).
(c) soft co-annotation (`affnet.objectives.soft_co_annotation`): for AU-labelled
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
from typing import Dict, Iterable, Mapping, Optional, Tuple, Union

import tensorflow as tf

from affnet.names import COUPLINGS  # The `--couplings` values, defined once in names.
from affnet.objectives import multitask as mtl
from affnet.objectives import relatedness as rel
from affnet.objectives.co_annotation import OBSERVATIONAL, REQUIREMENTS, SCOPES, co_annotate
from affnet.objectives.distribution_matching import DM_FORMS, DM_STOP_GRADIENTS, distribution_matching_sums
from affnet.objectives.soft_co_annotation import SOFT_MISSING, soft_co_annotation_sums
from data_pipeline.base import checks
from data_pipeline.records.schema import AUS_FBN_17

__all__ = [
    "COUPLINGS",
    "CouplingConfig",
    "co_annotation_fn",
    "facebehaviornet_statistics",
    "facebehaviornet_loss_from_statistics",
    "facebehaviornet_loss",
]


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
        checks.check_choice(self.au_normalize, "au_normalize", mtl.AU_NORMALIZATIONS)
        checks.check_choice(self.observational, "observational", OBSERVATIONAL)
        checks.check_choice(self.scope, "scope", SCOPES)
        checks.check_choice(self.requirement, "requirement", REQUIREMENTS)
        checks.check_choice(self.dm_form, "dm_form", DM_FORMS)
        checks.check_choice(self.dm_stop_gradient, "dm_stop_gradient", DM_STOP_GRADIENTS)
        checks.check_choice(self.soft_missing, "soft_missing", SOFT_MISSING)
        if not self.soft_temperature > 0:
            raise ValueError(f"soft_temperature must be > 0; received {self.soft_temperature!r}.")
        rel.relatedness(self.table, self.au_names)  # validates table and AU names

    @classmethod
    def from_names(cls, names: Iterable[str] = (), **options) -> "CouplingConfig":
        """`("distribution_matching", "soft_co_annotation")` -> config with those on."""
        names = tuple(names)
        for name in names:
            checks.check_choice(name, "coupling", COUPLINGS)
        return cls(**{name: True for name in names}, **options)

    @property
    def enabled(self) -> Tuple[str, ...]:
        return tuple(name for name in COUPLINGS if getattr(self, name))

    def relatedness(self) -> rel.Relatedness:
        return rel.relatedness(self.table, self.au_names)


def co_annotation_fn(config: CouplingConfig):
    """`labels -> co_annotate(labels, ...)` with `config`'s readings, for `Dataset.map`."""
    return functools.partial(co_annotate, table=config.table, au_names=config.au_names,
                             observational=config.observational, absent_aus=config.absent_aus,
                             scope=config.scope, requirement=config.requirement,
                             au_threshold=config.au_threshold)


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
            au_mask = tf.ones_like(mtl.f32(labels["au"]))
        sample_mask = None
        if "au_coannotated" in labels:
            sample_mask = 1.0 - mtl.f32(labels["au_coannotated"])
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

"""Emotion-AU relatedness of [FBN] Table V, as data and as (7, K) matrices p(au | emo).

[FBN] Table V holds two tables for the six basic emotions:

* "cognitive": the cognitive-psychological study of Du et al. [38] (PNAS 2014).
  Each emotion has *prototypical* AUs (active for all annotators) and
  *observational* AUs with a weight w = the fraction of annotators that observed
  the AU ([FBN] Sec. VI-B, "Inferring Task-Relatedness").
* "empirical": inferred from Aff-Wild2 by an AU detector run over the
  expression-annotated videos; every AU carries w = the fraction of the images
  of that expression in which the AU was active. There is no prototypical /
  observational split in this table: every entry is weighted.

Neutral has no row in either table: its p(au | neutral) row is all zeros, so in
the mixture of eq. 8 neutral contributes to no AU.

Matrices (float32, rows in `data_pipeline.records.schema.EXPRESSIONS` order, columns in
the order of the given AU name list):

* indicator: 1 for every prototypical/observational (or listed empirical) AU,
  0 otherwise (eq. 8, "equal to 1 for prototypical/observational action units").
* weighted: prototypical 1, observational w (footnote 3 of [FBN] eq. 8, the
  co-annotation re-weighting and the soft co-annotation score); for the
  empirical table every AU gets its w.

AUs of the table that are not in the AU list are dropped (AU11, observational
for sadness in [38], is not among FaceBehaviorNet's 17 AUs); AUs of the list
that no emotion mentions get a zero column (AU14 in the cognitive table).

Reconstruction of the PDF text (see the comments on each row): every number of
the cognitive table is legible and agrees with Du et al. [38] Table 1; in the
empirical table the first AU of the sadness row lost its number in the
extraction ("(0.53), 15 (0.42), ..."), read here as AU4 (prototypical for
sadness in [38] and otherwise absent from that row) -- unverified.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Dict, Mapping, Sequence, Tuple, Union

import numpy as np

from data_pipeline.records.schema import AUS_FBN_17, EXPRESSIONS

__all__ = [
    "COGNITIVE",
    "EMPIRICAL",
    "TABLES",
    "EmotionAUs",
    "Relatedness",
    "au_number",
    "relatedness",
    "relatedness_matrix",
]


@dataclasses.dataclass(frozen=True)
class EmotionAUs:
    """One row of a relatedness table.

    prototypical: AU numbers with p(au | emo) = 1 in both matrices.
    observational: {AU number: w}, 1 in the indicator matrix, w in the weighted one.
    """

    prototypical: Tuple[int, ...] = ()
    observational: Mapping[int, float] = dataclasses.field(default_factory=dict)

    def weights(self) -> Dict[int, float]:
        """{AU number: weight}, prototypical AUs at 1."""
        return {**{au: 1.0 for au in self.prototypical}, **dict(self.observational)}


# [FBN] Table V (i), "Cognitive-Psychological Study [38]": prototypical AUs and
# observational AUs (with weights w).
COGNITIVE: Dict[str, EmotionAUs] = {
    # row "happiness": prototypical 12, 25; observational 6 (0.51).
    "happiness": EmotionAUs((12, 25), {6: 0.51}),
    # row "sadness": prototypical 4, 15; observational 1 (0.6), 6 (0.5), 11 (0.26), 17 (0.67).
    "sadness": EmotionAUs((4, 15), {1: 0.60, 6: 0.50, 11: 0.26, 17: 0.67}),
    # row "fear": prototypical 1, 4, 20, 25; observational 2 (0.57), 5 (0.63), 26 (0.33).
    "fear": EmotionAUs((1, 4, 20, 25), {2: 0.57, 5: 0.63, 26: 0.33}),
    # row "anger": prototypical 4, 7, 24; observational 10 (0.26), 17 (0.52), 23 (0.29).
    "anger": EmotionAUs((4, 7, 24), {10: 0.26, 17: 0.52, 23: 0.29}),
    # row "surprise": prototypical 1, 2, 25, 26; observational 5 (0.66).
    "surprise": EmotionAUs((1, 2, 25, 26), {5: 0.66}),
    # row "disgust": prototypical 9, 10, 17; observational 4 (0.31), 24 (0.26).
    "disgust": EmotionAUs((9, 10, 17), {4: 0.31, 24: 0.26}),
}

# [FBN] Table V (ii), "Empirical Evidences, Aff-Wild2": AUs (with weights w).
EMPIRICAL: Dict[str, EmotionAUs] = {
    # row "happiness": 12 (0.82), 25 (0.7), 6 (0.57), 7 (0.83), 10 (0.63).
    "happiness": EmotionAUs((), {12: 0.82, 25: 0.70, 6: 0.57, 7: 0.83, 10: 0.63}),
    # row "sadness": "? (0.53), 15 (0.42), 1 (0.31), 7 (0.13), 17 (0.1)"; the first AU
    # number is lost in the PDF text. AU4 is our reading (UNVERIFIED, see module doc).
    "sadness": EmotionAUs((), {4: 0.53, 15: 0.42, 1: 0.31, 7: 0.13, 17: 0.10}),
    # row "fear": 1 (0.52), 4 (0.4), 25 (0.85), 5 (0.38), 7 (0.57), 10 (0.57).
    "fear": EmotionAUs((), {1: 0.52, 4: 0.40, 25: 0.85, 5: 0.38, 7: 0.57, 10: 0.57}),
    # row "anger": 4 (0.65), 7 (0.45), 25 (0.4), 10 (0.33), 9 (0.15).
    "anger": EmotionAUs((), {4: 0.65, 7: 0.45, 25: 0.40, 10: 0.33, 9: 0.15}),
    # row "surprise": 1 (0.38), 2 (0.37), 25 (0.85), 26 (0.3), 5 (0.5), 7 (0.2).
    "surprise": EmotionAUs((), {1: 0.38, 2: 0.37, 25: 0.85, 26: 0.30, 5: 0.50, 7: 0.20}),
    # row "disgust": 9 (0.21), 10 (0.85), 17 (0.23), 4 (0.6), 7 (0.75), 25 (0.8).
    "disgust": EmotionAUs((), {9: 0.21, 10: 0.85, 17: 0.23, 4: 0.60, 7: 0.75, 25: 0.80}),
}

# Names as in `affnet.training.config.RELATEDNESS`.
TABLES: Dict[str, Dict[str, EmotionAUs]] = {"cognitive": COGNITIVE, "empirical": EMPIRICAL}

TableLike = Union[str, Mapping[str, EmotionAUs]]


def au_number(name: Union[str, int]) -> int:
    """"AU12" / "au12" / "12" / 12 -> 12."""
    if isinstance(name, (int, np.integer)):
        return int(name)
    match = re.fullmatch(r"\s*(?:AU)?\s*(\d+)\s*", str(name), flags=re.IGNORECASE)
    if not match:
        raise ValueError(f"cannot read an AU number from {name!r}; expected e.g. 'AU12'.")
    return int(match.group(1))


def _table(table: TableLike) -> Mapping[str, EmotionAUs]:
    if isinstance(table, str):
        if table not in TABLES:
            raise ValueError(f"table must be one of {tuple(TABLES)} or a mapping; received {table!r}.")
        return TABLES[table]
    unknown = set(table) - set(EXPRESSIONS)
    if unknown:
        raise ValueError(f"table rows must be emotions of {EXPRESSIONS}; received {sorted(unknown)}.")
    return table


@dataclasses.dataclass(frozen=True)
class Relatedness:
    """A relatedness table laid out for one AU list.

    indicator, weighted: (7, K) float32 p(au | emo), rows in EXPRESSIONS order.
    dropped: {emotion: AU numbers of the table that are not in `au_names`}.
    """

    au_names: Tuple[str, ...]
    indicator: np.ndarray
    weighted: np.ndarray
    dropped: Mapping[str, Tuple[int, ...]]

    def matrix(self, weighted: bool = False) -> np.ndarray:
        return self.weighted if weighted else self.indicator


def relatedness(table: TableLike = "cognitive", au_names: Sequence[str] = AUS_FBN_17) -> Relatedness:
    """Table V (`"cognitive"`, `"empirical"` or a custom {emotion: EmotionAUs}) for `au_names`."""
    rows = _table(table)
    numbers = [au_number(name) for name in au_names]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"au_names must not repeat an AU; received {tuple(au_names)}.")
    column = {number: k for k, number in enumerate(numbers)}
    indicator = np.zeros((len(EXPRESSIONS), len(numbers)), np.float32)
    weighted = np.zeros_like(indicator)
    dropped = {}
    for emotion, entry in rows.items():
        e = EXPRESSIONS.index(emotion)
        for au, w in entry.weights().items():
            if not 0.0 < w <= 1.0:
                raise ValueError(f"weight of AU{au} for {emotion} must be in (0, 1]; received {w}.")
            if au not in column:
                dropped.setdefault(emotion, []).append(au)
                continue
            indicator[e, column[au]] = 1.0
            weighted[e, column[au]] = w
    return Relatedness(tuple(au_names), indicator, weighted,
                       {emotion: tuple(aus) for emotion, aus in dropped.items()})


def relatedness_matrix(au_names: Sequence[str] = AUS_FBN_17, table: TableLike = "cognitive",
                       weighted: bool = False) -> np.ndarray:
    """(7, K) float32 p(au | emo) of [FBN] eq. 8: indicator (1/0) or weighted (w)."""
    return relatedness(table, au_names).matrix(weighted)

"""Zero-shot compound expressions from FaceBehaviorNet's predictions, [FBN] Sec. VI-B eq. 10.

For each compound class c = "<emo1>-ly <emo2>" ([FBN]: "if the compound class is
happily surprised then emo1 is happy and emo2 is surprised"), the candidate score

  Cs(c) = sum_k p(au_k|x) p(au_k|c) / sum_k p(au_k|c)           (AU evidence)
          + p(emo1|x) + p(emo2|x)                                 (basic expressions)
          + 0.5 (v / |v| + 1)   only for happily surprised / happily disgusted

with p(au_k|c) = 1 for the AUs that Du et al. [38] associate with c (0 otherwise);
the prediction is argmax_c Cs(c).

Readings we chose (arguments of `compound_scores`; listed in the README):

* The PDF text of eq. 10 prints the two sums of the first term in the order
  "sum p(au|c)" then "sum p(au|x) p(au|c)". We read the fraction as
  (sum p(au|x) p(au|c)) / (sum p(au|c)), the mean predicted probability of the
  compound's AUs: the text calls it "FaceBehaviorNet's predictions of only the
  prototypical (and observational) AUs ... every AU acts as an indicator"; the
  inverse ratio would decrease with AU evidence.
* "prototypical (and observational)": only the prototypical AUs of [38] are
  tabulated here (`DU2014_PROTOTYPICAL`); [FBN] does not reproduce the compound rows
  of [38] Table 1 and we could not verify their observational AUs and weights.
  `rules=` takes any {compound: {AU number: weight}} to add them.
* The valence term is "either 0 or 1 depending on whether FaceBehaviorNet's
  valence prediction is negative or positive" and undefined at v = 0: we give it
  `valence_at_zero` (default 0.5, i.e. 0.5 (sign(0) + 1)). Without a valence
  prediction (`valence=None`) the term is left out for every class.
* p(emo1|x), p(emo2|x) are the softmax expression probabilities; without them
  (`expression_probs=None`) only the AU term (and valence term) is used.

Few-shot ([FBN] Sec. VI-B, RAF-DB): fine-tune FaceBehaviorNet (trained with the
soft co-annotation and distribution-matching couplings) on RAF-DB's compound
training set. Not implemented here; it needs (i) a RAF-DB compound adapter writing
one label per image in `RAFDB_COMPOUNDS` order, (ii) a new C-way softmax head on
the shared feature layer (the penultimate FC of MT-VGG), the rest initialised from
the FaceBehaviorNet checkpoint, (iii) the masked `expression_ce` of
`affnet.objectives.multitask` with C classes, and (iv) evaluation by the mean diagonal
of the confusion matrix ("Diag." in [FBN] Table VI). The paper gives no
learning rate or epochs for this step.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from affnet.objectives.relatedness import au_number
from data_pipeline.records.schema import AUS_FBN_17, EXPRESSIONS

__all__ = [
    "DU2014_PROTOTYPICAL",
    "COMPOUND_EMOTIONS",
    "RAFDB_COMPOUNDS",
    "DU2014_COMPOUNDS",
    "VALENCE_COMPOUNDS",
    "compound_rule_matrix",
    "compound_scores",
    "predict_compound",
]

# Du et al. [38] (PNAS 2014) Table 1, prototypical AUs of the compound emotions
# (those active in > 70% of the subjects). Transcribed from [38]; the six basic
# rows of the same table agree with [FBN] Table V.
DU2014_PROTOTYPICAL: Dict[str, Tuple[int, ...]] = {
    "happily_surprised": (1, 2, 12, 25),
    "happily_disgusted": (10, 12, 25),
    "sadly_fearful": (1, 4, 15, 25),
    "sadly_angry": (4, 7, 15),
    "sadly_surprised": (1, 4, 25, 26),
    "sadly_disgusted": (4, 10),
    "fearfully_angry": (4, 20, 25),
    "fearfully_surprised": (1, 2, 5, 20, 25),
    "fearfully_disgusted": (1, 4, 10, 20, 25),
    "angrily_surprised": (4, 25, 26),
    "angrily_disgusted": (4, 10, 17),
    "disgustedly_surprised": (1, 2, 5, 10),
}

# The two basic expressions mixed in each compound ([FBN]: emo1, emo2).
COMPOUND_EMOTIONS: Dict[str, Tuple[str, str]] = {
    "happily_surprised": ("happiness", "surprise"),
    "happily_disgusted": ("happiness", "disgust"),
    "sadly_fearful": ("sadness", "fear"),
    "sadly_angry": ("sadness", "anger"),
    "sadly_surprised": ("sadness", "surprise"),
    "sadly_disgusted": ("sadness", "disgust"),
    "fearfully_angry": ("fear", "anger"),
    "fearfully_surprised": ("fear", "surprise"),
    "fearfully_disgusted": ("fear", "disgust"),
    "angrily_surprised": ("anger", "surprise"),
    "angrily_disgusted": ("anger", "disgust"),
    "disgustedly_surprised": ("disgust", "surprise"),
}

# RAF-DB's 11 compound categories in its label order (1..11 in the release).
RAFDB_COMPOUNDS = (
    "happily_surprised", "happily_disgusted", "sadly_fearful", "sadly_angry", "sadly_surprised",
    "sadly_disgusted", "fearfully_angry", "fearfully_surprised", "angrily_surprised",
    "angrily_disgusted", "disgustedly_surprised",
)
# The 12 compounds of [38] that mix two basic expressions (awed, appalled and hatred
# are left out: [FBN] gives no emo1/emo2 for them).
DU2014_COMPOUNDS = tuple(DU2014_PROTOTYPICAL)
# Classes that receive the valence term of eq. 10.
VALENCE_COMPOUNDS = ("happily_surprised", "happily_disgusted")


def compound_rule_matrix(compounds: Sequence[str] = RAFDB_COMPOUNDS, au_names: Sequence[str] = AUS_FBN_17,
                         rules: Optional[Mapping[str, Mapping[int, float]]] = None) -> np.ndarray:
    """(C, K) float32 p(au_k | compound): 1 for the prototypical AUs of [38] (or `rules` weights).

    Raises if a rule AU is not in `au_names` (the score would silently lose evidence).
    """
    column = {au_number(name): k for k, name in enumerate(au_names)}
    matrix = np.zeros((len(compounds), len(au_names)), np.float32)
    for c, name in enumerate(compounds):
        if rules is not None and name in rules:
            row = dict(rules[name])
        elif name in DU2014_PROTOTYPICAL:
            row = {au: 1.0 for au in DU2014_PROTOTYPICAL[name]}
        else:
            raise ValueError(f"no AU rule for compound {name!r}; known: {tuple(DU2014_PROTOTYPICAL)}.")
        for au, weight in row.items():
            if au not in column:
                raise ValueError(f"AU{au} of compound {name!r} is not in au_names {tuple(au_names)}.")
            matrix[c, column[au]] = weight
    return matrix


def _emotion_pairs(compounds):
    pairs = np.zeros((len(compounds), len(EXPRESSIONS)), np.float32)
    for c, name in enumerate(compounds):
        if name not in COMPOUND_EMOTIONS:
            raise ValueError(f"no basic-expression pair for compound {name!r}; known: {tuple(COMPOUND_EMOTIONS)}.")
        for emotion in COMPOUND_EMOTIONS[name]:
            pairs[c, EXPRESSIONS.index(emotion)] = 1.0
    return pairs


def compound_scores(au_probs, expression_probs=None, valence=None,
                    compounds: Sequence[str] = RAFDB_COMPOUNDS, au_names: Sequence[str] = AUS_FBN_17,
                    rules: Optional[Mapping[str, Mapping[int, float]]] = None,
                    valence_compounds: Sequence[str] = VALENCE_COMPOUNDS,
                    valence_at_zero: float = 0.5):
    """Candidate scores Cs of [FBN] eq. 10.

    Args:
      au_probs: (N, K) sigmoid AU probabilities in `au_names` order.
      expression_probs: optional (N, 7) softmax probabilities in `EXPRESSIONS` order.
      valence: optional (N,) predicted valence.
      compounds: class names (keys of `COMPOUND_EMOTIONS`), the score columns.
      rules, valence_compounds, valence_at_zero: see module docstring.

    Returns:
      float32 (N, C) scores.
    """
    au_probs = tf.cast(tf.convert_to_tensor(au_probs), tf.float32)
    rule = tf.constant(compound_rule_matrix(compounds, au_names, rules))
    scores = tf.math.divide_no_nan(tf.matmul(au_probs, rule, transpose_b=True), tf.reduce_sum(rule, -1))
    if expression_probs is not None:
        pairs = tf.constant(_emotion_pairs(compounds))
        scores += tf.matmul(tf.cast(tf.convert_to_tensor(expression_probs), tf.float32), pairs, transpose_b=True)
    if valence is not None:
        valence = tf.reshape(tf.cast(tf.convert_to_tensor(valence), tf.float32), [-1, 1])
        positive = tf.where(valence > 0, 1.0, tf.where(valence < 0, 0.0, float(valence_at_zero)))
        gets = tf.constant([[1.0 if name in valence_compounds else 0.0 for name in compounds]])
        scores += positive * gets
    return scores


def predict_compound(au_probs, expression_probs=None, valence=None, **options):
    """(scores (N, C), class index (N,) int32 = argmax of the candidate score)."""
    scores = compound_scores(au_probs, expression_probs, valence, **options)
    return scores, tf.argmax(scores, -1, output_type=tf.int32)

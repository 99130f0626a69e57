"""Zero-shot compound expressions, [FBN] eq. 10, on hand-made AU vectors."""

import numpy as np
import pytest
import tensorflow as tf

from affnet.evaluation import compound
from data_pipeline.records.schema import AUS_FBN_17, EXPRESSIONS

K = len(AUS_FBN_17)


def aus(*numbers, low=0.05, high=0.95):
    vector = np.full(K, low, np.float32)
    for n in numbers:
        vector[AUS_FBN_17.index(f"AU{n}")] = high
    return vector


def name_of(index, compounds=compound.RAFDB_COMPOUNDS):
    return compounds[int(index)]


@pytest.mark.parametrize("active, expected", [
    ((1, 2, 12, 25), "happily_surprised"),
    ((10, 12, 25), "happily_disgusted"),
    ((1, 4, 15, 25), "sadly_fearful"),
    ((4, 7, 15), "sadly_angry"),
    ((4, 10), "sadly_disgusted"),
    ((4, 20, 25), "fearfully_angry"),
    ((1, 2, 5, 20, 25), "fearfully_surprised"),
    ((4, 25, 26), "angrily_surprised"),
    ((1, 2, 5, 10), "disgustedly_surprised"),
])
def test_au_evidence_alone_picks_the_compound(active, expected):
    scores, predicted = compound.predict_compound(aus(*active)[None])
    assert name_of(predicted[0]) == expected
    ordered = np.sort(scores.numpy()[0])
    assert ordered[-1] - ordered[-2] > 0.1  # a clear winner, not an index-order tie


@pytest.mark.parametrize("active, expected, rival, emotion", [
    ((4, 10, 17), "angrily_disgusted", "sadly_disgusted", "anger"),
    ((1, 4, 25, 26), "sadly_surprised", "angrily_surprised", "sadness"),
])
def test_subset_rules_tie_on_aus_and_expressions_decide(active, expected, rival, emotion):
    """The AU term is a mean: a compound whose AU set contains another's ties with it."""
    scores = compound.compound_scores(aus(*active)[None]).numpy()[0]
    index = compound.RAFDB_COMPOUNDS.index
    assert scores[index(expected)] == pytest.approx(scores[index(rival)])
    expression = np.full((1, 7), 0.1, np.float32)
    expression[0, EXPRESSIONS.index(emotion)] = 0.4
    _, predicted = compound.predict_compound(aus(*active)[None], expression)
    assert name_of(predicted[0]) == expected


def test_basic_expressions_and_valence_break_ties():
    # AUs 10, 12, 25 fit happily disgusted; AUs 4, 10 fit sadly disgusted: both fully on.
    both = aus(4, 10, 12, 25)[None]
    expression = np.zeros((1, 7), np.float32)
    expression[0, EXPRESSIONS.index("sadness")] = 0.6
    expression[0, EXPRESSIONS.index("disgust")] = 0.4
    _, predicted = compound.predict_compound(both, expression)
    assert name_of(predicted[0]) == "sadly_disgusted"
    # A positive valence adds 1 to happily surprised / disgusted only.
    _, predicted = compound.predict_compound(both, expression, valence=[0.3])
    assert name_of(predicted[0]) == "happily_disgusted"
    scores_neg = compound.compound_scores(both, expression, valence=[-0.3]).numpy()
    scores_zero = compound.compound_scores(both, expression, valence=[0.0]).numpy()
    scores_none = compound.compound_scores(both, expression).numpy()
    np.testing.assert_allclose(scores_neg, scores_none)
    h = compound.RAFDB_COMPOUNDS.index("happily_disgusted")
    assert scores_zero[0, h] - scores_none[0, h] == pytest.approx(0.5)


def np_candidate_scores(au_probs, expr_probs, valence, compounds):
    """eq. 10 transcribed: mean p(au|x) over the compound's AUs + p(emo1) + p(emo2)
    + 0.5 (v/|v| + 1) for happily surprised / disgusted."""
    out = np.zeros((len(au_probs), len(compounds)))
    emotion_of = {"happily": "happiness", "sadly": "sadness", "fearfully": "fear", "angrily": "anger",
                  "disgustedly": "disgust", "surprised": "surprise", "fearful": "fear", "angry": "anger",
                  "disgusted": "disgust"}
    for c, name in enumerate(compounds):
        idx = [AUS_FBN_17.index(f"AU{n}") for n in compound.DU2014_PROTOTYPICAL[name]]
        first, second = name.split("_")
        e1, e2 = EXPRESSIONS.index(emotion_of[first]), EXPRESSIONS.index(emotion_of[second])
        for n in range(len(au_probs)):
            out[n, c] = au_probs[n, idx].mean() + expr_probs[n, e1] + expr_probs[n, e2]
            if name in ("happily_surprised", "happily_disgusted"):
                out[n, c] += 0.5 * (np.sign(valence[n]) + 1)
    return out


def test_scores_match_numpy_transcription():
    rng = np.random.default_rng(0)
    au_probs = rng.uniform(size=(6, K)).astype(np.float32)
    logits = rng.normal(size=(6, 7))
    expr = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    valence = rng.uniform(-1, 1, 6).astype(np.float32)
    for compounds in (compound.RAFDB_COMPOUNDS, compound.DU2014_COMPOUNDS):
        got = compound.compound_scores(au_probs, expr, valence, compounds=compounds).numpy()
        np.testing.assert_allclose(got, np_candidate_scores(au_probs, expr, valence, compounds), rtol=1e-5)
    scores, predicted = compound.predict_compound(au_probs, expr, valence)
    np.testing.assert_array_equal(predicted.numpy(), np.argmax(scores.numpy(), 1))


def test_rules_override_unknown_names_and_xla():
    rules = {"happily_surprised": {12: 1.0, 5: 0.5}}
    matrix = compound.compound_rule_matrix(("happily_surprised",), AUS_FBN_17, rules)
    assert matrix[0, AUS_FBN_17.index("AU5")] == 0.5 and matrix.sum() == pytest.approx(1.5)
    with pytest.raises(ValueError, match="no AU rule"):
        compound.compound_rule_matrix(("awed",))
    with pytest.raises(ValueError, match="not in au_names"):
        compound.compound_rule_matrix(("happily_surprised",), ("AU12", "AU25"))
    assert len(compound.RAFDB_COMPOUNDS) == 11
    au_probs = tf.constant(np.random.default_rng(1).uniform(size=(4, K)).astype(np.float32))
    eager = compound.compound_scores(au_probs)
    compiled = tf.function(compound.compound_scores, jit_compile=True)(au_probs)
    np.testing.assert_allclose(compiled.numpy(), eager.numpy(), rtol=1e-6)

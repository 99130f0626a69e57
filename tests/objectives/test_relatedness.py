"""[FBN] Table V as matrices: spot checks against specific table entries."""

import numpy as np
import pytest

from affnet.objectives import relatedness
from data_pipeline.records.schema import AUS_AFFWILD2_8, AUS_FBN_17, EXPRESSIONS


def entry(matrix, emotion, au, au_names=AUS_FBN_17):
    return float(matrix[EXPRESSIONS.index(emotion), list(au_names).index(au)])


def assert_entries(matrix, expected):
    """Each {(emotion, AU): value} of `expected` is `matrix`'s entry; 0 and 1 exactly."""
    for (emotion, au), value in expected.items():
        got = entry(matrix, emotion, au)
        assert got == (value if value in (0.0, 1.0) else pytest.approx(value)), (emotion, au, got)


def test_cognitive_happiness_row():
    indicator = relatedness.relatedness_matrix(AUS_FBN_17, "cognitive")
    weighted = relatedness.relatedness_matrix(AUS_FBN_17, "cognitive", weighted=True)
    assert indicator.shape == (7, 17) and indicator.dtype == np.float32
    # Table V: happiness prototypical 12, 25; observational 6 (0.51).
    for au in ("AU12", "AU25", "AU6"):
        assert entry(indicator, "happiness", au) == 1.0
    assert entry(weighted, "happiness", "AU12") == 1.0
    assert entry(weighted, "happiness", "AU6") == pytest.approx(0.51)
    happy = indicator[EXPRESSIONS.index("happiness")]
    assert {AUS_FBN_17[k] for k in np.flatnonzero(happy)} == {"AU6", "AU12", "AU25"}


def test_cognitive_spot_entries():
    weighted = relatedness.relatedness_matrix(AUS_FBN_17, "cognitive", weighted=True)
    # [FBN] eq. 8 example: AU2 prototypical for surprise, observational for fear.
    assert_entries(weighted, {("surprise", "AU2"): 1.0, ("fear", "AU2"): 0.57, ("sadness", "AU17"): 0.67,
                              ("anger", "AU23"): 0.29, ("disgust", "AU24"): 0.26, ("surprise", "AU5"): 0.66,
                              ("anger", "AU12"): 0.0})
    # Neutral has no row; AU14 is related to no emotion.
    assert not weighted[EXPRESSIONS.index("neutral")].any()
    assert not weighted[:, AUS_FBN_17.index("AU14")].any()
    # Row sizes in EXPRESSIONS order (AU11 of sadness is not among the 17 AUs).
    np.testing.assert_array_equal(
        relatedness.relatedness_matrix().sum(1), [0, 6, 5, 7, 3, 5, 5])


def test_au_outside_the_list_is_dropped_and_reported():
    table = relatedness.relatedness("cognitive", AUS_FBN_17)
    assert table.dropped == {"sadness": (11,)}
    with_11 = relatedness.relatedness("cognitive", ("AU11", "AU4"))
    assert entry(with_11.weighted, "sadness", "AU11", ("AU11", "AU4")) == pytest.approx(0.26)
    assert entry(with_11.weighted, "disgust", "AU4", ("AU11", "AU4")) == pytest.approx(0.31)


def test_empirical_table_entries():
    weighted = relatedness.relatedness_matrix(AUS_FBN_17, "empirical", weighted=True)
    indicator = relatedness.relatedness_matrix(AUS_FBN_17, "empirical")
    assert_entries(weighted, {("happiness", "AU12"): 0.82, ("happiness", "AU7"): 0.83, ("disgust", "AU10"): 0.85,
                              ("fear", "AU25"): 0.85, ("anger", "AU9"): 0.15, ("sadness", "AU15"): 0.42})
    assert entry(indicator, "surprise", "AU26") == 1.0
    np.testing.assert_array_equal(indicator.sum(1), [0, 5, 6, 6, 5, 5, 6])


def test_other_au_lists_and_custom_tables():
    eight = relatedness.relatedness_matrix(AUS_AFFWILD2_8, "cognitive")
    assert eight.shape == (7, 8)
    assert entry(eight, "happiness", "AU6", AUS_AFFWILD2_8) == 1.0
    custom = {"happiness": relatedness.EmotionAUs((12,), {6: 0.5})}
    matrix = relatedness.relatedness_matrix(("AU6", "AU12"), custom, weighted=True)
    np.testing.assert_allclose(matrix[EXPRESSIONS.index("happiness")], [0.5, 1.0])
    assert matrix.sum() == pytest.approx(1.5)


def test_arguments_are_checked():
    assert relatedness.au_number("AU12") == relatedness.au_number("au12") == relatedness.au_number(12) == 12
    with pytest.raises(ValueError, match="table"):
        relatedness.relatedness("nonexistent")
    with pytest.raises(ValueError, match="repeat"):
        relatedness.relatedness("cognitive", ("AU1", "AU1"))
    with pytest.raises(ValueError, match="AU number"):
        relatedness.au_number("brow")
    with pytest.raises(ValueError, match="emotions"):
        relatedness.relatedness({"joy": relatedness.EmotionAUs((12,))})

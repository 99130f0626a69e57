"""[FBN] Table V as matrices: spot checks against specific table entries."""

import numpy as np
import pytest

from affnet.objectives import relatedness
from data_pipeline.records.schema import AUS_AFFWILD2_8, AUS_FBN_17, EXPRESSIONS


def entry(matrix, emotion, au, au_names=AUS_FBN_17):
    return float(matrix[EXPRESSIONS.index(emotion), list(au_names).index(au)])


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
    assert entry(weighted, "surprise", "AU2") == 1.0
    assert entry(weighted, "fear", "AU2") == pytest.approx(0.57)
    assert entry(weighted, "sadness", "AU17") == pytest.approx(0.67)
    assert entry(weighted, "anger", "AU23") == pytest.approx(0.29)
    assert entry(weighted, "disgust", "AU24") == pytest.approx(0.26)
    assert entry(weighted, "surprise", "AU5") == pytest.approx(0.66)
    assert entry(weighted, "anger", "AU12") == 0.0
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
    assert entry(weighted, "happiness", "AU12") == pytest.approx(0.82)
    assert entry(weighted, "happiness", "AU7") == pytest.approx(0.83)
    assert entry(weighted, "disgust", "AU10") == pytest.approx(0.85)
    assert entry(weighted, "fear", "AU25") == pytest.approx(0.85)
    assert entry(weighted, "anger", "AU9") == pytest.approx(0.15)
    assert entry(weighted, "sadness", "AU15") == pytest.approx(0.42)
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

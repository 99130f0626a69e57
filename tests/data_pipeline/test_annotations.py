"""FrameLabels, [AW] Sec. 3.3 time-stamp matching and [AW2] Sec. II-D annotator fusion."""

import numpy as np
import pytest

from data_pipeline.records import annotations
from data_pipeline.records.annotations import FrameLabels


def test_take_marks_out_of_range_rows_unlabelled():
    labels = FrameLabels(valence=[0.1, 0.2, 0.3], arousal=[0.4, 0.5, 0.6], expression=[0, 4, -1],
                         au=[[1, 0], [0, 1], [-1, -1]], au_names=["AU1", "AU2"])
    rows = labels.take([2, 0, 3, -1])
    np.testing.assert_allclose(rows.valence[:2], [0.3, 0.1], rtol=1e-6)
    assert np.isnan(rows.valence[2:]).all() and np.isnan(rows.arousal[2:]).all()
    np.testing.assert_array_equal(rows.expression, [-1, 0, -1, -1])
    np.testing.assert_array_equal(rows.au, [[-1, -1], [1, 0], [-1, -1], [-1, -1]])
    assert rows.au_names == ("AU1", "AU2")


def test_merge_pads_to_the_longer_and_refuses_duplicates():
    va = FrameLabels(valence=[0.5, 0.5], arousal=[0.1, 0.1])
    expr = FrameLabels(expression=[1, 2, 3])
    merged = va.merge(expr)
    assert merged.num_frames == 3
    assert np.isnan(merged.valence[2]) and merged.expression[2] == 3
    assert merged.counts() == {"va": 2, "expression": 3}
    with pytest.raises(ValueError, match="both FrameLabels define expression"):
        merged.merge(expr)


@pytest.mark.parametrize("kwargs, message", [
    (dict(valence=[0.1, 0.2], arousal=[0.3]), "differ in length"),
    (dict(expression=[7]), "expression must be in"),
    (dict(au=[[2]], au_names=["AU1"]), "au must be -1, 0 or 1"),
    (dict(au=[[1, 0]], au_names=["AU1"]), "1 au_names"),
    (dict(au=[[1]]), "without au_names"),
])
def test_bad_labels_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FrameLabels(**kwargs)


def test_match_to_frames_nearest_and_tie_average():
    times = np.array([0.0, 0.1, 0.2, 0.3])
    values = np.array([1.0, 2.0, 3.0, 4.0])
    # 0.04 -> 0.0; 0.05 tie between 0.0 and 0.1 -> 1.5; 0.26 -> 0.3; 5.0 past the end -> last.
    out = annotations.match_to_frames([0.04, 0.05, 0.26, 5.0], times, values)
    np.testing.assert_allclose(out, [1.0, 1.5, 4.0, 4.0])


def test_match_to_frames_ties_skip_missing_neighbour_and_max_distance():
    out = annotations.match_to_frames([0.5, 0.5, 9.0], [0.0, 1.0], [np.nan, 2.0], max_distance=1.0)
    np.testing.assert_allclose(out[:2], [2.0, 2.0])
    assert np.isnan(out[2])
    two_d = annotations.match_to_frames([0.5], [0.0, 1.0], [[0.0, 10.0], [1.0, 20.0]])
    np.testing.assert_allclose(two_d, [[0.5, 15.0]])


def test_match_to_frames_25fps_annotations_to_30fps_frames_against_brute_force():
    rng = np.random.default_rng(1)
    times = np.arange(250) * 0.04
    values = rng.normal(size=250)
    frames = np.arange(300) / 30.0
    out = annotations.match_to_frames(frames, times, values)
    for t, got in zip(frames, out):
        d = np.abs(times - t)
        nearest = np.flatnonzero(np.isclose(d, d.min(), rtol=0, atol=1e-9))
        assert got == pytest.approx(values[nearest].mean())


def test_match_to_frames_rejects_unsorted_times():
    with pytest.raises(ValueError, match="strictly increasing"):
        annotations.match_to_frames([0.0], [0.1, 0.0], [1.0, 2.0])


def _annotators(rng, frames=600, noise=(0.2, 0.3, 0.4, 1.5)):
    truth = np.cumsum(rng.normal(size=frames)) * 0.05
    return np.stack([truth + rng.normal(scale=s, size=frames) for s in noise])


def test_maic_matches_a_hand_computation():
    rng = np.random.default_rng(0)
    traces = _annotators(rng)
    a = len(traces)
    by_hand = []
    for i in range(a):
        others = [np.corrcoef(traces[i], traces[j])[0, 1] for j in range(a) if j != i]
        by_hand.append(np.mean(others))
    assert annotations.maic(traces) == pytest.approx(np.mean(by_hand))
    # Over several videos [AW2] correlates the concatenated traces.
    halves = [traces[:, :300], traces[:, 300:]]
    assert annotations.maic(halves) == pytest.approx(annotations.maic(traces))


def test_median_filter_then_mean_and_mean():
    traces = np.array([[0.0, 0.0, 9.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_allclose(annotations.fuse_mean(traces), [0.5, 0.5, 5.0, 0.5, 0.5])
    # A 3-frame median removes the one-frame spike of annotator 0.
    np.testing.assert_allclose(annotations.fuse_median_filtered(traces, 3), [0.5] * 5)
    with pytest.raises(ValueError, match="positive integer"):
        annotations.median_filter(traces, 0)


def test_choose_fusion_prefers_filtering_of_spiky_annotators():
    rng = np.random.default_rng(0)
    truth = np.sin(np.linspace(0, 12, 900))
    traces = np.stack([truth + rng.normal(scale=0.6, size=900) for _ in range(4)])
    choice = annotations.choose_fusion(traces)
    assert set(choice.maic) == {"mean", "median5", "median15", "median30"}
    # Independent white noise: longer median windows correlate the annotators more.
    assert choice.maic["median30"] > choice.maic["median5"] > choice.maic["mean"]
    assert choice.method == "median30"
    np.testing.assert_allclose(choice.fused, annotations.fuse_median_filtered(traces, 30))


def test_choose_fusion_keeps_mean_when_filtering_does_not_help():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=400)  # White "truth": filtering removes the shared signal.
    traces = np.stack([shared + rng.normal(scale=0.1, size=400) for _ in range(3)])
    choice = annotations.choose_fusion(traces)
    assert choice.method == "mean"
    assert choice.maic["mean"] == max(choice.maic.values())


def test_most_correlated_drops_the_noisy_annotator():
    rng = np.random.default_rng(0)
    traces = _annotators(rng)  # Annotator 3 is the noisiest.
    np.testing.assert_allclose(annotations.fuse_most_correlated(traces, 3), traces[:3].mean(axis=0))
    choice = annotations.choose_fusion(traces, windows=(), top_k=(3,))
    assert choice.method == "top3" and choice.maic["top3"] > choice.maic["mean"]


def test_fusion_errors_name_the_problem():
    with pytest.raises(ValueError, match="constant"):
        annotations.maic(np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 2.0]]))
    with pytest.raises(ValueError, match="NaN"):
        annotations.fuse_mean(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="'median<window>'"):
        annotations.fuse(np.zeros((2, 3)), "median")
    with pytest.raises(ValueError, match="different numbers of annotators"):
        annotations.fuse_mean([np.zeros((2, 3)), np.zeros((3, 3))])

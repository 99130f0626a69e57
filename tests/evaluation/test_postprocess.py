"""[MC] Sec. 6.3 / [OMG] III-E post-processing chain: median filter, utterance
estimate, utterance smoothing, each kept only if it raises validation CCC."""

import numpy as np
import pytest

from affnet.evaluation import metrics, postprocess
from affnet.evaluation.scoring import VideoPredictions


def video(labels, predictions):
    labels, predictions = np.asarray(labels, float), np.asarray(predictions, float)
    return VideoPredictions(frame_index=np.arange(len(labels)), labels=labels, predictions=predictions)


def test_utterance_estimate_is_the_mean_of_sequence_medians():
    preds = np.array([[0.1, 0.0], [0.5, 1.0], [0.2, 0.4], [0.9, 0.2], [0.3, 0.7]])
    chain = postprocess.ChainConfig("utterance", seq_len=2, median_windows=(1, 1), smoothing=(0.0, 0.0))
    out = postprocess.apply_chain(chain, {"v/u1": video(np.full((5, 2), 0.25), preds)})
    # Sequences [0:2], [2:4], [4:5]; their medians averaged ([MC] Sec. 3).
    expected = np.mean([[0.3, 0.5], [0.55, 0.3], [0.3, 0.7]], axis=0)
    np.testing.assert_allclose(out["v/u1"].predictions, [expected])
    np.testing.assert_allclose(out["v/u1"].labels, [[0.25, 0.25]])


def test_smoothing_formula_by_hand():
    estimates = {"v/utterance_1": np.array([0.0, 1.0]), "v/utterance_2": np.array([1.0, 0.0]),
                 "v/utterance_10": np.array([0.5, 0.5]), "w/utterance_1": np.array([0.9, 0.9])}
    counts = {"v/utterance_1": 10, "v/utterance_2": 30, "v/utterance_10": 90, "w/utterance_1": 5}
    out = postprocess.smooth_utterances(estimates, counts, strength=[30.0, 0.0])
    # Order in v: 1, 2, 10 (natural). utterance_2's neighbours: 1 and 10, mean (0.25, 0.75).
    np.testing.assert_allclose(out["v/utterance_2"], [(30 * 1.0 + 30 * 0.25) / 60, 0.0])
    np.testing.assert_allclose(out["v/utterance_1"], [(10 * 0.0 + 30 * 1.0) / 40, 1.0])
    np.testing.assert_allclose(out["v/utterance_10"], [(90 * 0.5 + 30 * 1.0) / 120, 0.5])
    np.testing.assert_allclose(out["w/utterance_1"], [0.9, 0.9])  # No neighbour: unchanged.
    # Radius 2 reaches utterance_10 from utterance_1.
    wide = postprocess.smooth_utterances(estimates, counts, strength=30.0, radius=2)
    np.testing.assert_allclose(wide["v/utterance_1"][0], (10 * 0.0 + 30 * 0.75) / 40)


def _frame_set(seed, spikes):
    """Smooth valence with impulse errors (a median filter removes them);
    arousal alternating frame to frame and predicted exactly (any filter hurts)."""
    rng = np.random.default_rng(seed)
    out = {}
    for v in range(4):
        n = 200
        t = np.arange(n)
        valence = np.sin(2 * np.pi * t / 120 + v)
        arousal = 0.5 * (-1.0) ** t * rng.uniform(0.5, 1, n)
        predictions = np.stack([valence.copy(), arousal.copy()], axis=1)
        hits = rng.random(n) < spikes
        predictions[hits, 0] += rng.choice([-2.0, 2.0], hits.sum())
        out[f"video{v}"] = video(np.stack([valence, arousal], axis=1), predictions)
    return out


def _ccc(videos, d):
    labels = np.concatenate([v.labels[:, d] for v in videos.values()])
    return metrics.ccc(labels, np.concatenate([v.predictions[:, d] for v in videos.values()]))


def test_median_windows_kept_only_when_they_help():
    validation, test = _frame_set(0, 0.1), _frame_set(1, 0.1)
    chain = postprocess.choose_chain(validation, level="frame", windows=(3, 5, 9, 15))
    assert chain.median_windows[0] > 1 and chain.median_windows[1] == 1
    table = chain.scores["median_window"]["valence"]
    assert table[chain.median_windows[0]] > table[1]
    assert chain.smoothing == (0.0, 0.0)
    after = postprocess.apply_chain(chain, test)
    assert _ccc(after, 0) > _ccc(test, 0) + 0.1  # Chosen on validation, helps on test.
    assert _ccc(after, 1) == pytest.approx(_ccc(test, 1))


def _utterance_set(seed, videos=30, per_video=6):
    """Labels drift slowly across a video's utterances; short utterances carry noisy predictions."""
    rng = np.random.default_rng(seed)
    out = {}
    for v in range(videos):
        base = rng.uniform(-0.8, 0.8, 2)
        for u in range(1, per_video + 1):
            label = np.clip(base + rng.normal(0, 0.05, 2), -1, 1)
            n = int(rng.choice([4, 8, 160]))
            noise = 0.8 if n < 80 else 0.02
            frames = label + rng.normal(0, 0.05, (n, 2)) + rng.normal(0, noise, 2)
            out[f"video{v}/utterance_{u}"] = video(np.tile(label, (n, 1)), frames)
    return out


def test_utterance_smoothing_chosen_on_validation_helps_on_test():
    validation, test = _utterance_set(0), _utterance_set(1)
    chain = postprocess.choose_chain(validation, level="utterance", seq_len=80, windows=(1,))
    assert all(k > 0 for k in chain.smoothing)
    raw = postprocess.ChainConfig("utterance", 80, (1, 1), (0.0, 0.0))
    before, after = postprocess.apply_chain(raw, test), postprocess.apply_chain(chain, test)
    for d in (0, 1):
        assert _ccc(after, d) > _ccc(before, d)
        table = chain.scores["smoothing"]["valence" if d == 0 else "arousal"]
        assert table[chain.smoothing[d]] > table[0.0]


def test_perfect_predictions_keep_the_identity_chain():
    exact = {name: video(v.labels, v.labels) for name, v in _utterance_set(2, videos=5).items()}
    chain = postprocess.choose_chain(exact, level="utterance", seq_len=80, windows=(3, 9))
    assert chain.median_windows == (1, 1) and chain.smoothing == (0.0, 0.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(level="video"), "video"),
    (dict(seq_len=0), "0"),
    (dict(windows=(4,)), "4"),
])
def test_bad_chain_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        postprocess.choose_chain(_frame_set(0, 0.0), **kwargs)


def test_bad_smoothing_arguments():
    with pytest.raises(ValueError, match="-1"):
        postprocess.smooth_utterances({"a/u1": np.zeros(2)}, {"a/u1": 3}, strength=-1)
    with pytest.raises(ValueError, match="radius"):
        postprocess.smooth_utterances({"a/u1": np.zeros(2)}, {"a/u1": 3}, strength=1, radius=0)


def test_steps_report_what_was_kept_with_validation_ccc():
    validation = _utterance_set(0)
    chain = postprocess.choose_chain(validation, level="utterance", seq_len=80, windows=(3,))
    steps = chain.steps()
    assert set(steps) == {"median_filter", "smoothing"}
    for d, name in enumerate(("valence", "arousal")):
        median, smoothing = steps["median_filter"][name], steps["smoothing"][name]
        assert median["value"] == chain.median_windows[d] and smoothing["value"] == chain.smoothing[d]
        assert smoothing["kept"] and smoothing["validation_ccc_with"] > smoothing["validation_ccc_without"]
        # "Without" smoothing is the chain after the median-filter step.
        assert smoothing["validation_ccc_without"] == median["validation_ccc_with"]
        after = postprocess.apply_chain(chain, validation)
        assert smoothing["validation_ccc_with"] == pytest.approx(_ccc(after, d))
        raw = postprocess.apply_chain(postprocess.ChainConfig("utterance", 80, (1, 1), (0.0, 0.0)), validation)
        assert median["validation_ccc_without"] == pytest.approx(_ccc(raw, d))
        assert median["kept"] == (median["value"] != 1)
    frame = postprocess.choose_chain(_frame_set(0, 0.1), level="frame", windows=(3, 5))
    assert set(frame.steps()) == {"median_filter"}
    assert frame.steps()["median_filter"]["valence"]["kept"]
    assert not frame.steps()["median_filter"]["arousal"]["kept"]
    assert postprocess.ChainConfig("frame", 80, (1, 1), (0.0, 0.0)).steps() == {}

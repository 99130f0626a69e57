"""Decision-level fusion, formula (1) of [MC] Sec. 5.4.2, prediction files and `launch/fuse.py`."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from affnet.evaluation import decision_fusion, metrics
from affnet.evaluation.scoring import VideoPredictions

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_formula_one_by_hand():
    # Two networks, three utterances, (valence, arousal).
    o1 = np.array([[0.2, 0.5], [-0.4, 0.1], [0.6, 0.9]])
    o2 = np.array([[0.4, 0.3], [0.0, 0.5], [0.2, 0.1]])
    t = np.array([[0.45, 0.30],   # network 1: validation CCC valence, arousal
                  [0.15, 0.10]])  # network 2
    fused = decision_fusion.fuse_decisions([o1, o2], t)
    # Valence: (0.45 o1 + 0.15 o2) / 0.6 = 0.75 o1 + 0.25 o2; arousal: (0.3 o1 + 0.1 o2) / 0.4 likewise.
    expected = np.array([[0.75 * 0.2 + 0.25 * 0.4, 0.75 * 0.5 + 0.25 * 0.3],
                         [0.75 * -0.4 + 0.25 * 0.0, 0.75 * 0.1 + 0.25 * 0.5],
                         [0.75 * 0.6 + 0.25 * 0.2, 0.75 * 0.9 + 0.25 * 0.1]])
    np.testing.assert_allclose(fused, expected, rtol=1e-12)
    # Unequal weights per dimension.
    t2 = np.array([[0.3, 0.1], [0.1, 0.3]])
    np.testing.assert_allclose(decision_fusion.fuse_decisions([o1, o2], t2)[0], [0.75 * 0.2 + 0.25 * 0.4,
                                                                        0.25 * 0.5 + 0.75 * 0.3])


def test_fusion_of_equal_networks_is_identity_and_weights_are_scale_free():
    rng = np.random.default_rng(0)
    o = rng.normal(size=(4, 7, 2))
    np.testing.assert_allclose(decision_fusion.fuse_decisions([o, o, o], [[0.1, 0.2], [0.5, 0.3], [0.2, 0.9]]), o)
    a, b = rng.normal(size=(2, 10, 2))
    np.testing.assert_allclose(decision_fusion.fuse_decisions([a, b], [[0.2, 0.4], [0.6, 0.2]]),
                               decision_fusion.fuse_decisions([a, b], [[2.0, 4.0], [6.0, 2.0]]))


def test_negative_validation_ccc():
    a, b = np.ones((3, 2)), np.zeros((3, 2))
    with pytest.raises(ValueError, match="sum to"):
        decision_fusion.fuse_decisions([a, b], [[-0.2, 0.1], [0.1, 0.1]])
    # clip_negative drops the worse-than-chance network on that dimension.
    np.testing.assert_allclose(decision_fusion.fuse_decisions([a, b], [[-0.2, 0.1], [0.1, 0.1]], clip_negative=True),
                               np.tile([0.0, 0.5], (3, 1)))


@pytest.mark.parametrize("predictions, ccc, message", [
    ([np.zeros((3, 2))], [[0.1, 0.2], [0.3, 0.4]], "1 prediction arrays but 2"),
    ([np.zeros((3, 2)), np.zeros((4, 2))], [[0.1, 0.2], [0.3, 0.4]], "shape"),
    ([np.zeros((3, 2))], [[np.nan, 0.2]], "nan"),
])
def test_bad_inputs(predictions, ccc, message):
    with pytest.raises(ValueError, match=message):
        decision_fusion.fuse_decisions(predictions, ccc)


def _videos(seed, noise, labels=None):
    rng = np.random.default_rng(seed)
    out = {}
    for v, n in (("clip/utterance_1", 30), ("clip/utterance_2", 25), ("other/utterance_1", 40)):
        truth = labels[v].labels if labels else rng.uniform(-1, 1, (n, 2))
        frames = np.arange(n) * 2  # Non-contiguous frame indices survive the round trip.
        out[v] = VideoPredictions(frame_index=frames, labels=truth,
                                  predictions=truth + rng.normal(0, noise, truth.shape))
    return out


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_prediction_file_round_trip(tmp_path, suffix):
    videos = _videos(0, 0.3)
    videos["clip/utterance_2"].labels[3, 1] = np.nan
    path = decision_fusion.write_predictions(tmp_path / f"p{suffix}", videos)
    read = decision_fusion.read_predictions(path)
    assert set(read) == set(videos)
    for name, video in videos.items():
        np.testing.assert_array_equal(read[name].frame_index, video.frame_index)
        np.testing.assert_allclose(read[name].predictions, video.predictions)
        np.testing.assert_allclose(read[name].labels, video.labels)


def test_predict_csv_reads_per_face(tmp_path):
    path = tmp_path / "predict.csv"
    path.write_text("frame_index,timestamp,face_id,valence,arousal\n0,0.0,0,0.1,0.2\n1,0.03,0,,\n"
                    "1,0.03,1,0.3,0.4\n2,0.07,0,0.5,0.6\n")
    read = decision_fusion.read_predictions(path)
    assert set(read) == {"face0", "face1"}
    np.testing.assert_array_equal(read["face0"].frame_index, [0, 2])
    assert np.isnan(read["face0"].labels).all()


def test_bad_prediction_files(tmp_path):
    (tmp_path / "a.csv").write_text("frame,valence\n1,0.2\n")
    with pytest.raises(ValueError, match="a.csv.*columns"):
        decision_fusion.read_predictions(tmp_path / "a.csv")
    with pytest.raises(ValueError, match="does not exist"):
        decision_fusion.read_predictions(tmp_path / "missing.npz")
    np.savez(tmp_path / "b.npz", video_id=np.array(["v"]), frame_index=np.array([0]))
    with pytest.raises(ValueError, match="b.npz.*predictions"):
        decision_fusion.read_predictions(tmp_path / "b.npz")


def test_fuse_videos_checks_alignment():
    a = _videos(0, 0.2)
    b = {k: v for k, v in _videos(1, 0.2, a).items() if k != "other/utterance_1"}
    with pytest.raises(ValueError, match="other videos"):
        decision_fusion.fuse_videos([a, b], [[0.5, 0.5], [0.5, 0.5]])


def test_fuse_tool_end_to_end(tmp_path):
    """`launch/fuse.py` on two networks' files: weights from their eval.json, utterance level."""
    good = _videos(1, 0.2)
    bad = _videos(2, 1.0, good)
    paths = []
    for name, videos in (("good", good), ("bad", bad)):
        run = tmp_path / name
        run.mkdir()
        decision_fusion.write_predictions(run / "predictions.npz", videos)
        labels = np.concatenate([v.labels for v in videos.values()])
        preds = np.concatenate([v.predictions for v in videos.values()])
        (run / "eval.json").write_text(json.dumps({"ccc_valence": metrics.ccc(labels[:, 0], preds[:, 0]),
                                                   "ccc_arousal": metrics.ccc(labels[:, 1], preds[:, 1])}))
        paths.append(run)
    output = tmp_path / "fused.csv"
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "launch", "fuse.py"),
         f"--predictions={paths[0] / 'predictions.npz'},{paths[1] / 'predictions.npz'}",
         f"--validation_eval={paths[0] / 'eval.json'},{paths[1] / 'eval.json'}",
         "--level=frame", f"--output={output}"],
        capture_output=True, text=True, cwd=str(tmp_path), timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr
    fused = decision_fusion.read_predictions(output)
    weights = [[json.loads((p / "eval.json").read_text())[f"ccc_{d}"] for d in ("valence", "arousal")]
               for p in paths]
    for name in good:
        np.testing.assert_allclose(fused[name].predictions,
                                   decision_fusion.fuse_decisions([good[name].predictions, bad[name].predictions], weights),
                                   rtol=1e-9)
    report = json.loads((tmp_path / "fused.json").read_text())
    assert report["weights"] == weights and "ccc_valence" in report["fused"]


def _fuse(tmp_path, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "launch", "fuse.py"), *args], capture_output=True,
                          text=True, cwd=str(tmp_path), timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""})


def test_fuse_tool_reads_validation_eval_at_the_utterance_level_and_refuses_other_splits(tmp_path):
    """An utterance-level validation JSON of `launch/evaluate.py` weights by its
    `utterance_level` CCC at --level=utterance; a test-split JSON is refused."""
    good = _videos(1, 0.2)
    bad = _videos(2, 1.0, good)
    files, reports = [], []
    for name, videos, utterance_ccc in (("good", good, [0.6, 0.2]), ("bad", bad, [0.2, 0.6])):
        files.append(str(decision_fusion.write_predictions(tmp_path / f"{name}.npz", videos)))
        report = {"split": "validation", "ccc_valence": -0.5, "ccc_arousal": -0.5,
                  "postprocess": {"level": "utterance", "chosen_on": "validation"},
                  "utterance_level": {"ccc_valence": utterance_ccc[0], "ccc_arousal": utterance_ccc[1]}}
        reports.append(tmp_path / f"{name}_validation.json")
        reports[-1].write_text(json.dumps(report))
    output = tmp_path / "fused.npz"
    result = _fuse(tmp_path, f"--predictions={','.join(files)}", f"--validation_eval={reports[0]},{reports[1]}",
                   "--level=utterance", "--seq_len=10", f"--output={output}")
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "fused.json").read_text())["weights"] == [[0.6, 0.2], [0.2, 0.6]]
    fused = decision_fusion.read_predictions(output)
    name = "clip/utterance_1"
    estimates = [np.mean([np.median(v[name].predictions[i:i + 10], 0) for i in range(0, 30, 10)], 0)
                 for v in (good, bad)]
    np.testing.assert_allclose(fused[name].predictions[0], [(0.6 * estimates[0][0] + 0.2 * estimates[1][0]) / 0.8,
                                                            (0.2 * estimates[0][1] + 0.6 * estimates[1][1]) / 0.8])

    test_report = json.loads(reports[1].read_text())
    test_report["split"] = "test"
    reports[1].write_text(json.dumps(test_report))
    refused = _fuse(tmp_path, f"--predictions={','.join(files)}", f"--validation_eval={reports[0]},{reports[1]}",
                    "--level=utterance", f"--output={tmp_path / 'refused.npz'}")
    assert refused.returncode != 0 and "not the validation split 'validation'" in refused.stderr
    assert not (tmp_path / "refused.npz").exists()

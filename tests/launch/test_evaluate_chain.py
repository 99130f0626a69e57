"""`evaluate_run` with the [MC] / [OMG] post-processing chain, its prediction files, and
decision-level fusion of two checkpoints of one tiny utterance-level run through
`launch/evaluate.py` and `launch/fuse.py`, as the omg_fusion.flags header runs them.

The run trains on the synthetic validation split: formula (1) of [MC] needs validation
CCC weights with a positive sum, which a few hundred steps on held-out subjects do not
guarantee, and this module tests the plumbing, not generalisation."""

import json
import os
import shutil

import numpy as np
import pytest
from scipy import ndimage

from test_demo import TINY, _launch  # noqa: E402

from affnet.evaluation import decision_fusion, metrics, postprocess  # noqa: E402
from affnet.evaluation import scoring  # noqa: E402

STEPS = (80, 160)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """An utterance-level run (checkpoints at STEPS) on a synthetic set of 4 validation utterances."""
    from data_pipeline.synthetic import dataset as synthetic

    root = tmp_path_factory.mktemp("chain")
    data = str(root / "data")
    synthetic.generate(data, synthetic.SyntheticConfig(subjects=6, videos_per_subject=2, frames_per_video=40,
                                                       crop_size=32, split_fractions=(1 / 3, 1 / 3, 1 / 3)))
    workdir = str(root / "run")
    tiny = [flag for flag in TINY if not flag.startswith("--synthetic")]
    _launch("train.py", "--flagfile=demo.flags", f"--data={data}", f"--workdir={workdir}", *tiny,
            "--batch_size=4", "--learning_rate=3e-3", "--lr_decay_steps=0", "--loss=ccc", "--utterance_level=true",
            "--train_split=validation", f"--train_steps={STEPS[1]}", f"--eval_every={STEPS[0]}",
            f"--checkpoint_every={STEPS[0]}", "--log_every=80")
    return root, workdir


def _read(path):
    with open(path) as handle:
        return json.load(handle)


def _all(videos):
    names = sorted(videos)
    return (np.concatenate([videos[n].labels for n in names]), np.concatenate([videos[n].predictions for n in names]))


def _ccc(videos):
    labels, predictions = _all(videos)
    return [metrics.ccc(labels[:, d], predictions[:, d]) for d in (0, 1)]


def _chain(report):
    steps = report["postprocess"]["steps"]
    smoothing = tuple(steps["smoothing"][d]["value"] for d in ("valence", "arousal"))
    windows = tuple(steps["median_filter"][d]["value"] for d in ("valence", "arousal"))
    return postprocess.ChainConfig("utterance", report["postprocess"]["seq_len"], windows, smoothing)


@pytest.mark.slow
def test_utterance_chain_prediction_files_and_decision_fusion(run, tmp_path):
    from affnet.training.evaluate import evaluate_run

    _, workdir = run
    # Network 1: the first checkpoint, scored in-process beside its own --output.
    first = str(tmp_path / "first")
    ckpt = os.path.join(workdir, "checkpoints", f"ckpt-{STEPS[0]}")
    for split, name in (("validation", "eval_validation.json"), ("test", "eval.json")):
        evaluate_run(workdir, split, ckpt, output=os.path.join(first, name), plot=False, log=lambda m: None)
    # Network 2: the best checkpoint, default outputs in the workdir; validation through the entry point.
    _launch("evaluate.py", f"--workdir={workdir}", "--split=validation")
    evaluate_run(workdir, "test", plot=False, log=lambda m: None)

    for directory in (first, workdir):
        validation = _read(os.path.join(directory, "eval_validation.json"))
        test = _read(os.path.join(directory, "eval.json"))
        assert (validation["split"], test["split"]) == ("validation", "test")
        # One chain, chosen on validation at the utterance level, applied unchanged to test.
        chain = _chain(test)
        assert _chain(validation) == chain
        assert test["postprocess"]["level"] == "utterance" and chain.seq_len == 8
        steps = test["postprocess"]["steps"]
        for step, identity in (("median_filter", 1), ("smoothing", 0.0)):
            for entry in steps[step].values():
                assert entry["kept"] == (entry["value"] != identity)
                if entry["kept"]:
                    assert entry["validation_ccc_with"] > entry["validation_ccc_without"]
                else:
                    assert entry["validation_ccc_with"] == entry["validation_ccc_without"]
        assert [test["median_windows"][d] for d in ("valence", "arousal")] == list(chain.median_windows)
        # The chain's last step is the validation utterance CCC.
        assert [validation["utterance_level"][f"ccc_{d}"] for d in ("valence", "arousal")] == pytest.approx(
            [steps["smoothing"][d]["validation_ccc_with"] for d in ("valence", "arousal")])

        files = {split: {kind: decision_fusion.read_predictions(path) for kind, path in report["predictions"].items()}
                 for split, report in (("validation", validation), ("test", test))}
        for split, report in (("validation", validation), ("test", test)):
            raw = files[split]["raw"]
            filtered = scoring.median_filter(raw, list(chain.median_windows))
            for name, video in files[split]["post_processed"].items():
                np.testing.assert_allclose(video.predictions, filtered[name].predictions, rtol=1e-12)
            final = postprocess.apply_chain(chain, raw)
            assert set(files[split]["utterance"]) == set(raw)
            for name, video in files[split]["utterance"].items():
                np.testing.assert_allclose(video.predictions, final[name].predictions, rtol=1e-12)
            assert _ccc(files[split]["utterance"]) == pytest.approx(
                [report["utterance_level"][f"ccc_{d}"] for d in ("valence", "arousal")])
            assert _ccc(raw) == pytest.approx([report["raw"][f"ccc_{d}"] for d in ("valence", "arousal")])
            assert _ccc(files[split]["post_processed"]) == pytest.approx(
                [report[f"ccc_{d}"] for d in ("valence", "arousal")])

    # Decision-level fusion of the two networks' final utterance estimates, weights from validation.
    networks = (first, workdir)
    output = str(tmp_path / "fusion" / "predictions_test.csv")
    _launch("fuse.py", "--level=utterance",
            "--predictions=" + ",".join(os.path.join(n, "predictions_test_utterance.npz") for n in networks),
            "--validation_predictions=" + ",".join(os.path.join(n, "predictions_validation_utterance.npz")
                                                   for n in networks),
            f"--output={output}")
    weights = np.array([_ccc(decision_fusion.read_predictions(os.path.join(n, "predictions_validation_utterance.npz")))
                        for n in networks])
    assert weights.sum(0).min() > 0, weights
    np.testing.assert_allclose(weights, [[_read(os.path.join(n, "eval_validation.json"))["utterance_level"][
        f"ccc_{d}"] for d in ("valence", "arousal")] for n in networks])
    tests = [decision_fusion.read_predictions(os.path.join(n, "predictions_test_utterance.npz")) for n in networks]
    fused = decision_fusion.read_predictions(output)
    assert set(fused) == set(tests[0])
    by_hand = {}
    for name in tests[0]:
        o1, o2 = tests[0][name].predictions[0], tests[1][name].predictions[0]
        by_hand[name] = [(weights[0, d] * o1[d] + weights[1, d] * o2[d]) / (weights[0, d] + weights[1, d])
                         for d in (0, 1)]
        np.testing.assert_allclose(fused[name].predictions[0], by_hand[name], rtol=1e-9)
    labels = np.array([tests[0][name].labels[0] for name in sorted(by_hand)])
    expected = [metrics.ccc(labels[:, d], np.array([by_hand[n][d] for n in sorted(by_hand)])) for d in (0, 1)]
    report = _read(os.path.join(tmp_path, "fusion", "predictions_test.json"))
    assert [report["fused"][f"ccc_{d}"] for d in ("valence", "arousal")] == pytest.approx(expected, rel=1e-9)
    np.testing.assert_allclose(report["weights"], weights, rtol=1e-12)


@pytest.mark.slow
def test_frame_level_run_keeps_the_median_filter_report(run, tmp_path):
    """The same weights scored as a frame-level run: windows chosen on frame CCC, no smoothing."""
    from affnet.training.evaluate import evaluate_run

    _, workdir = run
    frame_run = str(tmp_path / "frame_run")
    shutil.copytree(workdir, frame_run, ignore=shutil.ignore_patterns("eval*", "predictions_*"))
    flags = _read(os.path.join(frame_run, "flags.json"))
    flags["data"]["utterance_level"], flags["runtime"]["workdir"] = "false", frame_run
    with open(os.path.join(frame_run, "flags.json"), "w") as handle:
        json.dump(flags, handle)
    validation = evaluate_run(frame_run, "validation", plot=False, log=lambda m: None)
    result = evaluate_run(frame_run, "test", log=lambda m: None)
    assert os.path.exists(os.path.join(frame_run, "eval_validation.json"))
    assert _read(os.path.join(frame_run, "eval.json"))["split"] == "test"
    for key in ("ccc_valence", "ccc_arousal", "raw", "median_windows", "per_video", "postprocess", "predictions"):
        assert key in result, key
    assert "utterance_level" not in result and "utterance" not in result["predictions"]
    assert result["postprocess"] == {"level": "frame", "chosen_on": "validation",
                                     "steps": {"median_filter": result["postprocess"]["steps"]["median_filter"]}}
    # Windows chosen on validation frame CCC (scipy's median filter by hand), 1 winning ties.
    raw = decision_fusion.read_predictions(validation["predictions"]["raw"])
    labels, _ = _all(raw)
    for d, dim in enumerate(("valence", "arousal")):
        table = {int(w): c for w, c in result["median_windows"]["validation_ccc"][dim].items()}
        assert set(table) == set(scoring.MEDIAN_WINDOWS)
        for window in (1, result["median_windows"][dim]):
            smoothed = np.concatenate([ndimage.median_filter(raw[n].predictions[:, d], size=window, mode="nearest")
                                       for n in sorted(raw)])
            assert table[window] == pytest.approx(metrics.ccc(labels[:, d], smoothed))
        assert result["median_windows"][dim] == max(table, key=lambda w: (table[w], -w))
        step = result["postprocess"]["steps"]["median_filter"][dim]
        assert step["validation_ccc_without"] == pytest.approx(table[1])
    test_raw = decision_fusion.read_predictions(result["predictions"]["raw"])
    assert _ccc(test_raw) == pytest.approx([result["raw"]["ccc_valence"], result["raw"]["ccc_arousal"]])
    assert _ccc(decision_fusion.read_predictions(result["predictions"]["post_processed"])) == pytest.approx(
        [result["ccc_valence"], result["ccc_arousal"]])
    assert os.path.exists(result["plot"])

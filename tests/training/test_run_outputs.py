"""What a short run leaves for a person: train and evaluate print their own lines only (no TensorFlow or
absl INFO lines), TensorBoard holds the run's HParams, an input-crop grid and validation traces, and
`launch/evaluate.py --write_predictions` writes challenge files the Aff-Wild2 adapter reads back."""

import os
import re

import numpy as np
import pytest

from helpers import launch_script

TINY = ["--flagfile=demo.flags", "--model_overrides=width=0.0625,input_size=32,fc_units=16,rnn_units=8",
        "--seq_len=8", "--batch_size=2", "--train_steps=2", "--eval_every=2", "--checkpoint_every=2",
        "--log_every=1"]
# absl / TensorFlow Python log lines ("I1206 03:55:05.68 ... functional_saver.py:440] Sharding callback")
# and C++ ones ("I0000 00:00:... port.cc:153]"), and TFLite's "INFO: Created ... delegate".
INFO_LINE = re.compile(r"^(I\d{4} \d\d:\d\d:\d\d|INFO[: ])", re.MULTILINE)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from data_pipeline.synthetic import dataset as synthetic

    root = tmp_path_factory.mktemp("run_outputs")
    data = str(root / "data")
    synthetic.generate(data, synthetic.SyntheticConfig(subjects=3, videos_per_subject=1, frames_per_video=24,
                                                       crop_size=32, split_fractions=(1 / 3, 1 / 3, 1 / 3)))
    workdir = str(root / "run")
    output = launch_script("train.py", *TINY, f"--data={data}", f"--workdir={workdir}", with_stderr=True,
                           fresh=True)
    return root, workdir, output


def _events(directory):
    import tensorflow as tf

    found = {}
    for name in sorted(os.listdir(directory)):
        if name.startswith("events"):
            for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
                for value in event.summary.value:
                    found.setdefault(value.tag, []).append(value)
    return found


@pytest.mark.slow
def test_train_prints_no_info_lines(run):
    _, _, output = run
    assert "step 2/2" in output and "validation CCC" in output
    assert not INFO_LINE.search(output), INFO_LINE.findall(output)


@pytest.mark.slow
def test_tensorboard_holds_hparams_input_crops_and_traces(run):
    import tensorflow as tf
    from tensorboard.plugins.hparams import plugin_data_pb2

    _, workdir, _ = run
    root = _events(workdir)
    session = plugin_data_pb2.HParamsPluginData.FromString(
        root["_hparams_/session_start_info"][0].metadata.plugin_data.content).session_start_info
    assert session.hparams["seq_len"].number_value == 8
    assert session.hparams["model"].string_value == "affwildnet_vggface"
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        root["_hparams_/experiment"][0].metadata.plugin_data.content).experiment
    assert {m.name.tag for m in experiment.metric_infos} >= {"best_ccc_mean", "best_mse_mean"}

    train = _events(os.path.join(workdir, "train"))
    crops = tf.image.decode_png(tf.make_tensor_proto(train["input_crops"][0].tensor).string_val[2], channels=3).numpy()
    # 2 sequences (batch 2) x 6 frames of 32 px crops shown 3x (96 px) with 2 px gutters.
    assert crops.shape == (2 * 98, 6 * 98, 3)
    green = (crops[..., 1] == 255) & (crops[..., 0] == 0) & (crops[..., 2] == 0)
    assert green.sum() > 2 * 6 * 68, "the landmarks are drawn"

    val = _events(os.path.join(workdir, "val"))
    assert "va_traces" in val and "va_scatter" in val
    best = tf.make_ndarray(val["best_ccc_mean"][-1].tensor)
    assert np.isclose(best, tf.make_ndarray(val["ccc_mean"][-1].tensor))


@pytest.mark.slow
def test_evaluate_writes_challenge_files_the_adapter_reads(run):
    from affnet.evaluation import decision_fusion
    from data_pipeline.adapters import affwild2

    root, workdir, _ = run
    submission = str(root / "submission")
    output = launch_script("evaluate.py", f"--workdir={workdir}", "--split=test", f"--write_predictions={submission}",
                           with_stderr=True, fresh=True)
    assert not INFO_LINE.search(output), INFO_LINE.findall(output)
    videos = decision_fusion.read_predictions(os.path.join(workdir, "predictions_test.npz"))
    assert sorted(os.listdir(submission)) == sorted(f"{name}.txt" for name in videos)
    for name, video in videos.items():
        labels = affwild2.read_va(os.path.join(submission, f"{name}.txt"))
        assert len(labels.valence) == video.frame_index.max() + 1
        expected = np.clip(video.predictions, -1, 1)
        np.testing.assert_allclose(labels.valence[video.frame_index], expected[:, 0], atol=1e-6)
        np.testing.assert_allclose(labels.arousal[video.frame_index], expected[:, 1], atol=1e-6)

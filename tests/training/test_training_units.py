"""Fast checks of affnet.training: config, schedules, objective, evaluation, data messages."""

import json

import numpy as np
import pytest
import tensorflow as tf

from affnet.evaluation import metrics, postprocess, scoring
from affnet.objectives import losses
from affnet.training import config as config_lib
from affnet.training import data, objective, schedules
from affnet.training.config import TrainConfig


def test_parse_overrides_literals_and_strings():
    parsed = config_lib.parse_overrides("width=0.125, rnn_units=64,landmarks=False,backbone=resnet50")
    assert parsed == {"width": 0.125, "rnn_units": 64, "landmarks": False, "backbone": "resnet50"}
    assert config_lib.parse_overrides("") == {}
    assert config_lib.parse_overrides("fc_units=(128, 64),taps=['pool2', 'fc'],dropout=0.2") == {
        "fc_units": (128, 64), "taps": ["pool2", "fc"], "dropout": 0.2}
    with pytest.raises(ValueError, match="rnn_units"):
        config_lib.parse_overrides("rnn_units")


@pytest.mark.parametrize("changes, message", [
    ({"optimizer": "adagrad"}, "adagrad"), ({"batch_size": 0}, "batch_size"),
    ({"strategy": "iii"}, "init_rnn_from"), ({"loss": "l1"}, "l1"), ({"lr_decay_rate": 1.5}, "1.5"),
    ({"init_rnn_from": "runs/x"}, "strategy"),
])
def test_config_rejects_bad_values(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_flat(changes)


def test_config_round_trip_and_strategy_freezes(tmp_path):
    config = TrainConfig.from_flat(model_overrides={"width": 0.125}, strategy="i", workdir=str(tmp_path), seq_len=20)
    assert config.build_overrides == {"width": 0.125, "freeze_backbone": True}
    config_lib.save(config)
    loaded = config_lib.load(str(tmp_path))
    assert loaded == config
    assert json.load(open(tmp_path / "flags.json"))["model"]["overrides"] == {"width": 0.125}
    assert config_lib.differences(loaded, config.replace(train_steps=5)) == {}
    assert "seq_len" in config_lib.differences(loaded, config.replace(seq_len=40))
    with pytest.raises(ValueError, match="flags.json"):
        config_lib.load(str(tmp_path / "missing"))


def test_staircase_decay_as_aw2():
    schedule = schedules.learning_rate(TrainConfig.from_flat(learning_rate=1e-3, lr_decay_steps=400,
                                                             lr_decay_rate=0.97))
    assert float(schedule(399)) == pytest.approx(1e-3)
    assert float(schedule(400)) == pytest.approx(0.97e-3)
    assert float(schedule(1200)) == pytest.approx(1e-3 * 0.97 ** 3)
    assert schedules.learning_rate(TrainConfig.from_flat(lr_decay_steps=0)) == pytest.approx(1e-3)


def _batch(seed=0, b=3, t=7):
    rng = np.random.default_rng(seed)
    va = rng.uniform(-1, 1, (b, t, 2)).astype(np.float32)
    pred = (0.5 * va + 0.3 * rng.normal(size=va.shape)).astype(np.float32)
    mask = np.ones((b, t), np.float32)
    mask[0, :2] = 0
    va[0, :2] = np.nan
    return va, pred, mask


@pytest.mark.parametrize("name", ["ccc", "sequence_ccc_mean", "sequence_ccc_median", "mse"])
def test_global_loss_matches_affnet_losses_on_one_device(name):
    va, pred, mask = _batch()
    labels = {"va": tf.constant(va), "va_mask": tf.constant(mask), "valid": tf.ones_like(mask)}
    got = float(objective.global_loss(name, labels, tf.constant(pred)))
    clean = np.where(np.isfinite(va), va, 0.0)
    if name == "ccc":
        expected = losses.ccc_loss(clean, pred, mask)
    elif name == "mse":
        expected = losses.mse_loss(clean, pred, mask)
    else:
        expected = losses.sequence_ccc_loss(clean, pred, mask, reduce=name.rsplit("_", 1)[-1])
    assert got == pytest.approx(float(expected), abs=1e-5)
    assert 0 < got < 2


def _video(frames, labels, predictions):
    return scoring.VideoPredictions(np.asarray(frames), np.asarray(labels, float),
                                       np.asarray(predictions, float))


def test_collect_keeps_each_frame_once_and_skips_padding():
    def batch(ids, frames, valid):
        b, t = np.shape(frames)
        labels = {"va": np.full((b, t, 2), 0.5, np.float32), "va_mask": np.asarray(valid, np.float32),
                  "valid": np.asarray(valid, np.float32), "frame_index": np.asarray(frames),
                  "video_id": np.array(ids)}
        return {"x": np.asarray(frames, np.float32)}, labels

    predict = lambda f: np.stack([f["x"], -f["x"]], -1)  # noqa: E731
    batches = [batch([b"a", b"b"], [[0, 1, 2], [0, 1, -1]], [[1, 1, 1], [1, 1, 0]]),
               batch([b"a"], [[3, 4, 2]], [[1, 1, 1]])]
    videos = scoring.collect(predict, batches)
    assert sorted(videos) == ["a", "b"]
    np.testing.assert_array_equal(videos["a"].frame_index, [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(videos["b"].frame_index, [0, 1])
    np.testing.assert_allclose(videos["a"].predictions[:, 1], [0, -1, -2, -3, -4])


def test_median_window_chosen_on_validation_improves_noisy_predictions():
    rng = np.random.default_rng(0)
    t = np.arange(600)
    truth = np.stack([np.sin(t / 40), np.cos(t / 55)], 1)
    noisy = truth + np.stack([rng.normal(0, 0.6, 600), rng.normal(0, 0.02, 600)], 1)
    videos = {"v": _video(t, truth, noisy)}
    windows, table = postprocess.choose_median_windows(videos)
    assert windows[0] > 1  # The noisy dimension gets smoothed.
    assert table["valence"][windows[0]] > table["valence"][1]
    filtered = scoring.scores(scoring.median_filter(videos, windows))
    assert filtered["ccc_valence"] > scoring.scores(videos)["ccc_valence"]
    with pytest.raises(ValueError, match="odd"):
        scoring.median_filter(videos, [4, 1])


def test_utterance_estimate_is_mean_of_sequence_medians():
    predictions = np.concatenate([np.full((4, 2), 0.2), np.full((4, 2), 0.6), [[1.0, 1.0]]])
    videos = {"u": _video(np.arange(9), np.full((9, 2), 0.3), predictions)}
    utterance = scoring.utterances(videos, seq_len=4)["u"]
    np.testing.assert_allclose(utterance.predictions[0], [(0.2 + 0.6 + 1.0) / 3] * 2)
    np.testing.assert_allclose(utterance.labels[0], [0.3, 0.3])


def test_missing_data_message_names_place_and_preparation(tmp_path):
    config = TrainConfig.from_flat(data=str(tmp_path / "affwild2"))
    with pytest.raises(FileNotFoundError) as error:
        data.check_data(config)
    message = str(error.value)
    assert str(tmp_path / "affwild2" / "train") in message
    assert "python -m data_pipeline.preprocess" in message and "End User License" in message
    assert "data_pipeline.synthetic" in data.missing_data_message(str(tmp_path / "demo" / "data"), "train")


def test_checkpoint_round_trip_restores_every_weight(tmp_path):
    import affnet.models

    from affnet.training import checkpointing

    overrides = dict(width=0.0625, input_size=32, fc_units=16, rnn_units=8)
    model = affnet.models.build("affwildnet_vggface", **overrides)
    optimizer = schedules.make_optimizer(TrainConfig())
    optimizer.build(model.trainable_variables)
    step = tf.Variable(7, dtype=tf.int64)
    checkpointing.RunCheckpoints(model, optimizer, step, str(tmp_path), str(tmp_path)).save_latest()

    fresh = affnet.models.build("affwildnet_vggface", **overrides)
    assert not all(np.array_equal(a, b) for a, b in zip(model.get_weights(), fresh.get_weights()))
    fresh_optimizer = schedules.make_optimizer(TrainConfig())
    fresh_optimizer.build(fresh.trainable_variables)
    fresh_step = tf.Variable(0, dtype=tf.int64)
    restored = checkpointing.RunCheckpoints(fresh, fresh_optimizer, fresh_step, str(tmp_path), str(tmp_path))
    assert restored.restore_latest().endswith("ckpt-7")
    assert int(fresh_step.numpy()) == 7
    for a, b in zip(model.weights, fresh.weights):  # The RNN cells included.
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_monitor_values_match_numpy_ccc_and_mse_on_labelled_frames():
    va, pred, mask = _batch(seed=3)
    labels = {"va": tf.constant(np.where(np.isfinite(va), va, 0.0)), "va_mask": tf.constant(mask)}
    values = objective.monitor_values(objective.monitor_statistics(labels, tf.constant(pred)))
    keep = mask.reshape(-1) > 0
    for d, name in enumerate(("valence", "arousal")):
        truth, guess = va.reshape(-1, 2)[keep, d], pred.reshape(-1, 2)[keep, d]
        assert float(values[f"ccc_{name}"]) == pytest.approx(metrics.ccc(truth, guess), abs=1e-5)
        assert float(values[f"mse_{name}"]) == pytest.approx(np.mean((truth - guess) ** 2), abs=1e-5)
    assert objective.monitor_statistics(labels, {"expression": tf.zeros([3, 7, 7])}) is None


def test_multitask_config_needs_the_multitask_loss_and_known_tasks():
    with pytest.raises(ValueError, match="multitask"):
        TrainConfig.from_flat(couplings="distribution_matching")
    with pytest.raises(ValueError, match="couplings"):
        TrainConfig.from_flat(loss="multitask", couplings="telepathy")
    with pytest.raises(ValueError, match="task_batch_sizes"):
        TrainConfig.from_flat(loss="multitask", task_data={"va": "data/a"})
    config = TrainConfig.from_flat(loss="multitask", task_weights={"au": 0.5}, couplings="soft_co_annotation",
                                   task_batch_sizes={"va": 4, "au": 2})
    assert config.multitask.task_weight["au"] == 0.5 and config.multitask.task_weight["va"] == 1.0
    assert TrainConfig.from_dict(json.loads(config.to_json())) == config

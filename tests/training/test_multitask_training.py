"""Multi-task runs through the Trainer on a tiny synthetic set ([FBN] Sec. VI):
MT-VGG-GRU with the summed task losses, FaceBehaviorNet with per-task batches
and both loss couplings, [AW] Sec. 5.2 categorical fine-tuning from a VA run,
then evaluation (expression / AU measures) and export (probability outputs)."""

import json

import numpy as np
import pytest
import tensorflow as tf

from affnet.training import config as config_lib
from affnet.training import evaluate, export, loop

TINY = dict(width=0.125, input_size=32, dropout=0.0)


def _config(workdir, data, **changes):
    values = dict(data=data, workdir=str(workdir), loss="multitask", seq_len=6, batch_size=2, train_steps=3,
                  log_every=1, eval_every=3, checkpoint_every=3, learning_rate=3e-3, lr_decay_steps=0,
                  eval_batch_size=4)
    values.update(changes)
    return config_lib.TrainConfig.from_flat(values)


def _train(config):
    lines = []
    trainer = loop.Trainer(config, log=lines.append)
    result = trainer.train()
    return trainer, result, lines


@pytest.mark.slow
def test_mt_vgg_gru_trains_evaluates_and_exports(tmp_path, synthetic_data):
    config = _config(tmp_path / "run", synthetic_data, model="mt_vgg_gru",
                     model_overrides=dict(TINY, fc_units=16, rnn_units=8), task_weights={"au": 0.5})
    trainer, result, lines = _train(config)
    assert trainer.multitask and trainer.selection_key == "multitask_score"
    history = [json.loads(line) for line in open(tmp_path / "run" / loop.EVAL_HISTORY)]
    for key in ("ccc_valence", "expression_total", "expression_f1", "au_total", "multitask_score"):
        assert np.isfinite(history[-1][key]), key
    assert 0.0 <= history[-1]["au_total"] <= 1.0
    assert np.isclose(history[-1]["multitask_score"], np.mean(
        [history[-1]["ccc_mean"], history[-1]["expression_total"], history[-1]["au_total"]]))
    assert json.load(open(tmp_path / "run" / "best.json"))["multitask_score"] == pytest.approx(
        history[-1]["multitask_score"])

    scored = evaluate.evaluate_run(str(tmp_path / "run"), "test", log=lambda m: None)
    assert {"ccc_valence", "expression_total", "expression_video_accuracy", "au_total"} <= set(scored)

    info = export.export_run(str(tmp_path / "run"), str(tmp_path / "export"))
    assert info["outputs"] == ["au_probabilities", "expression_probabilities", "valence_arousal"]
    assert len(info["au_names"]) == 8
    serve, _ = export.load_serving(str(tmp_path / "export"))
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(-1, 1, (1, 5, 96, 96, 3)), tf.float32)
    out = serve(images=images, landmarks=tf.zeros([1, 5, 136]))
    assert out["expression_probabilities"].shape == (1, 5, 7)
    np.testing.assert_allclose(out["expression_probabilities"].numpy().sum(-1), 1.0, rtol=1e-5)
    assert out["au_probabilities"].shape == (1, 5, 8) and out["valence_arousal"].shape == (1, 5, 2)

    # [FBN] A/V-MT-VGG-GRU: the visual stream starts from this single-stream run.
    av_config = _config(tmp_path / "av", synthetic_data, model="av_mt_vgg_gru",
                        model_overrides=dict(TINY, fc_units=16, rnn_units=8),
                        init_streams={"visual": str(tmp_path / "run")})
    av = loop.Trainer(av_config, train_dataset_fn=lambda context: None, log=lambda m: None).model
    donor = export.load_run_model(str(tmp_path / "run"))[1]
    for name in ("vggface", "fc1", "rnn"):
        for got, want in zip(av.stream("visual").get_layer(name).get_weights(), donor.get_layer(name).get_weights()):
            np.testing.assert_array_equal(got, want)


@pytest.mark.slow
def test_facebehaviornet_task_batches_and_couplings(tmp_path, synthetic_data):
    config = _config(tmp_path / "fbn", synthetic_data, model="facebehaviornet", seq_len=1,
                     model_overrides=dict(TINY, fc_units=(16, 16)),
                     couplings="distribution_matching,soft_co_annotation,co_annotation",
                     task_batch_sizes={"va": 8, "au": 4, "expression": 4}, eval_batch_size=64)
    trainer, result, _ = _train(config)
    features, labels = next(iter(trainer.train_dataset_fn(None)))
    assert features["images"].shape[:2] == (16, 1)
    # Tasks in name order: rows 0-3 from the AU set, 4-7 the expression set, 8-15 the VA set, each
    # keeping only its own labels ([FBN] Sec. VI-B).
    mask_sum = lambda key, rows: float(tf.reduce_sum(labels[key][rows]))  # noqa: E731
    assert mask_sum("au_mask", slice(0, 4)) > 0 and mask_sum("au_mask", slice(4, 16)) == 0
    assert mask_sum("expression_mask", slice(4, 8)) == 4 and mask_sum("expression_mask", slice(0, 4)) == 0
    assert mask_sum("expression_mask", slice(8, 16)) == 0
    assert mask_sum("va_mask", slice(8, 16)) == 8 and mask_sum("va_mask", slice(0, 8)) == 0
    terms = trainer._train_step(iter(trainer.strategy.distribute_datasets_from_function(trainer.train_dataset_fn)))
    for name in ("loss", "loss_va", "loss_expression", "loss_au", "loss_distribution_matching",
                 "loss_soft_co_annotation"):
        assert np.isfinite(float(terms[name])), name
    assert float(terms["loss_distribution_matching"]) > 0
    assert np.isfinite(result["last_eval"]["au_total"])


@pytest.mark.slow
def test_categorical_fine_tuning_from_a_va_run(tmp_path, synthetic_data, tiny_run):
    # The VA run: the session's 2-step AffWildNet-VGGFace-GRU run (tests/conftest.py), read only.
    va_config = config_lib.load(tiny_run)
    base = dict(model=va_config.model.name, model_overrides=dict(va_config.model.overrides))
    cat_config = _config(tmp_path / "cat", synthetic_data, categorical=True, init_weights=tiny_run,
                         train_steps=1, **base)
    cat_trainer = loop.Trainer(cat_config, log=lambda m: None)
    # Every layer but the new output layer starts from the VA run ([AW] Sec. 5.2).
    donor = export.load_run_model(tiny_run)[1]
    np.testing.assert_array_equal(cat_trainer.model.get_layer("fc1").get_weights()[0],
                                  donor.get_layer("fc1").get_weights()[0])
    assert "va_output" not in [layer.name for layer in cat_trainer.model.layers]
    cat_trainer.train()
    scored = evaluate.evaluate_run(str(tmp_path / "cat"), "test", log=lambda m: None)
    assert "ccc_valence" not in scored and 0.0 <= scored["expression_video_accuracy"] <= 1.0
    assert export.export_run(str(tmp_path / "cat"), str(tmp_path / "cat_export"))["outputs"] == [
        "expression_probabilities"]


def test_few_shot_compound_head_on_facebehaviornet():
    """[FBN] Sec. VI-B few-shot path: a C-way head on FaceBehaviorNet's shared feature."""
    from affnet.training import modeling

    config = config_lib.TrainConfig.from_flat(model="facebehaviornet", model_overrides=dict(TINY, fc_units=(16, 16)),
                                              loss="multitask", categorical=True, categorical_classes=11)
    model = modeling.build_model(config)
    out = model({"images": tf.zeros([2, 32, 32, 3])})
    assert list(out) == ["expression"] and out["expression"].shape == (2, 11)
    assert model.get_layer("expression_output").kernel.shape == (16, 11)


def test_multitask_model_needs_the_multitask_loss(tmp_path):
    with pytest.raises(ValueError, match="--loss=multitask"):
        loop.Trainer(config_lib.TrainConfig.from_flat(model="mt_vgg", model_overrides=TINY, workdir=str(tmp_path)),
                     train_dataset_fn=lambda ctx: None, log=lambda m: None)


@pytest.mark.slow
def test_mt_vgg_and_av_mt_vgg_gru_train_on_the_synthetic_set_with_audio(tmp_path):
    """The frame model MT-VGG and the audio-visual model train through the Trainer on
    the synthetic set rendered with its arousal-driven voice (spectrogram patches)."""
    from data_pipeline.synthetic import dataset as synthetic

    data = str(tmp_path / "audio_set")
    synthetic.generate(data, synthetic.SyntheticConfig(
        subjects=3, videos_per_subject=1, frames_per_video=12, crop_size=32, frame_size=96, audio=True,
        audio_context=4, audio_bins=8), seed=0)
    for name, overrides, seq_len in (
            ("mt_vgg", dict(TINY, fc_units=(16, 16)), 1),
            ("av_mt_vgg_gru", dict(TINY, fc_units=16, rnn_units=8, spectrogram_shape=(4, 8)), 6)):
        config = _config(tmp_path / name, data, model=name, model_overrides=overrides, seq_len=seq_len,
                         train_steps=2, eval_every=2, checkpoint_every=2, eval_batch_size=8)
        trainer, result, _ = _train(config)
        features, _ = next(iter(trainer.train_dataset_fn(None)))
        if name == "av_mt_vgg_gru":
            assert features["spectrogram"].shape == (2, 6, 32)
        assert [step for step, _ in trainer.history] == [1, 2]
        assert all(np.isfinite(loss) for _, loss in trainer.history)
        assert np.isfinite(result["last_eval"]["multitask_score"])

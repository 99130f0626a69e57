"""Export of a training run (issue 12.3): export.json carries the median
windows `evaluate` chose on validation; an audio-visual export carries the
spectrogram settings of its training data and the expression names."""

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from affnet import models
from affnet.training import evaluate, export
from data_pipeline.records.schema import EXPRESSIONS


@pytest.mark.slow
def test_run_export_copies_the_postprocess_chosen_on_validation(tiny_run, tmp_path):
    workdir = str(tmp_path / "run")
    shutil.copytree(tiny_run, workdir)  # The session's 2-step run (tests/conftest.py); evaluated here.
    logged = []
    before = export.export_run(workdir, str(tmp_path / "before"), log=logged.append)
    assert before["postprocess"] == export.no_postprocess() and "no evaluation" in " ".join(logged)

    scored = evaluate.evaluate_run(workdir, "test", plot=False, log=lambda _: None)
    info = export.export_run(workdir, str(tmp_path / "export"), log=logged.append)
    windows = scored["median_windows"]
    assert info["postprocess"] == {"median_windows": {"valence": windows["valence"], "arousal": windows["arousal"]},
                                   "chosen_on": "validation", "source": "eval.json"}
    assert info["source"] == "run" and info["seq_len"] == 8 and info["input_normalization"] == "symmetric"
    assert info["alignment"] == "similarity"  # The synthetic set's manifest.json (its crops' alignment).
    assert not any("alignment" in line for line in logged)
    assert json.load(open(tmp_path / "export" / "export.json")) == info


def test_audio_visual_export_records_spectrogram_settings_and_expressions(tmp_path):
    model = models.build("av_mt_vgg_gru", input_size=32, width=0.0625, fc_units=16, rnn_units=8,
                         spectrogram_shape=(4, 8))
    data = tmp_path / "data"
    data.mkdir()
    # As data_pipeline.synthetic writes it (manifest "config"; audio fields only with audio).
    (data / "manifest.json").write_text(json.dumps({"name": "synthetic", "config": {
        "audio": True, "audio_context": 4, "audio_bins": 8}, "spectrogram_shape": [4, 8]}))
    settings = export.training_audio(str(data), "train", 32, log=lambda _: None)
    info = export.export_model(model, str(tmp_path / "export"), {"model": "av_mt_vgg_gru", "seq_len": 90},
                               audio_settings=settings, log=lambda _: None)
    assert info["audio"]["context"] == 4 and info["audio"]["bins"] == 8 and info["audio"]["scale"] == "mel"
    assert info["expressions"] == list(EXPRESSIONS) and len(info["au_names"]) == model.output["au"].shape[-1]
    assert info["outputs"] == ["au_probabilities", "expression_probabilities", "valence_arousal"]
    serve, _ = export.load_serving(str(tmp_path / "export"))
    rng = np.random.default_rng(0)
    out = serve(images=tf.constant(rng.uniform(-1, 1, (1, 3, 96, 96, 3)), tf.float32),
                landmarks=tf.zeros((1, 3, 136)),
                spectrogram=tf.constant(rng.uniform(-1, 1, (1, 3, 32)), tf.float32))
    np.testing.assert_allclose(out["expression_probabilities"].numpy().sum(-1), 1.0, rtol=1e-5)

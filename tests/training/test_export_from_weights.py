"""Export from a weights file through `launch/export.py --weights` (issue 10.2):
random weights saved as `.weights.h5` for `affwildnet_vggface_gru_released` ->
an export whose SavedModel, loaded by a fresh interpreter that imports only
TensorFlow, gives the in-memory model's outputs, and that `launch/predict.py`
runs on a video. Also the export.json fields a run adds (post-processing
chosen on validation, audio settings) and the CLI's one-line errors."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import random_weights, serve_in_fresh_python

from affnet import models
from affnet.training import export

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# 96x96 input (no resize in the signature), 1/16 width: a few seconds per export.
TINY = dict(width=0.0625, fc_units=16, rnn_units=8)


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONPATH=ROOT)
    env.pop("TF_CONFIG", None)
    return env


def _run(*args, timeout=600):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def _launch(script, *args):
    done = _run(os.path.join(ROOT, "launch", script), *args)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    return done


@pytest.mark.slow
def test_weights_export_loads_without_affnet_and_predicts(released_export, tmp_path):
    model, out, done = released_export  # Random weights, `launch/export.py --weights` (tests/conftest.py).
    assert "no filtering" in done.stderr  # No evaluation behind weights: said in the log.
    info = json.load(open(os.path.join(out, "export.json")))
    assert info == {**info, "source": "weights", "model": "affwildnet_vggface_gru_released", "seq_len": 80,
                    "input_normalization": "tf1", "landmarks": False, "outputs": ["valence_arousal"],
                    "formats": {"saved_model": "saved_model"}, "model_overrides": TINY,
                    "postprocess": {"median_windows": {"valence": 1, "arousal": 1}, "chosen_on": None}}
    assert json.loads(done.stdout) == info
    assert os.path.exists(info["keras"]) and "expressions" not in info and "audio" not in info

    rng = np.random.default_rng(1)
    images = rng.uniform(-1, 1, (2, 6, 96, 96, 3)).astype(np.float32)
    landmarks = rng.uniform(-1, 1, (2, 6, 136)).astype(np.float32)
    served, imported = serve_in_fresh_python(os.path.join(out, "saved_model"), images, landmarks, tmp_path)
    assert imported == "[]"  # No affnet code was imported.
    expected = np.asarray(model({"images": images}, training=False))
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(expected).max() > 1e-3  # Not a constant model.

    # The export predicts on a video (dlib finds the rendered face).
    from data_pipeline.synthetic.dataset import render_video_file

    video = str(tmp_path / "clip.mp4")
    render_video_file(video, num_frames=12, width=320, height=240)
    _launch("predict.py", f"--input={video}", f"--model={out}", f"--output={tmp_path / 'pred'}")
    rows = list(csv.DictReader(open(tmp_path / "pred" / "clip.csv")))
    assert len(rows) == 12
    with_face = [r for r in rows if r["face_id"] != ""]
    assert len(with_face) >= 9
    assert all(np.isfinite(float(r["valence"])) and np.isfinite(float(r["arousal"])) for r in with_face)


def test_keras_file_exports_the_same_model(tmp_path):
    model = random_weights(models.build("vggface_4096x2000x2", width=0.0625, fc_units=(16, 8)))
    model.save(str(tmp_path / "cnn.keras"))
    logged = []
    info = export.export_weights(None, str(tmp_path / "cnn.keras"), str(tmp_path / "export"), seq_len=40,
                                 log=logged.append)
    assert info["model"] == model.name and info["seq_len"] == 40 and info["input_normalization"] == "tf1"
    assert any("no filtering" in line for line in logged)
    serve, read = export.load_serving(str(tmp_path / "export"))
    assert read["source"] == "weights"
    images = np.random.default_rng(0).uniform(-1, 1, (1, 3, 96, 96, 3)).astype("float32")
    got = serve(images=images, landmarks=np.zeros((1, 3, 136), "float32"))["valence_arousal"].numpy()
    np.testing.assert_allclose(got[0], np.asarray(model({"images": images[0]})), rtol=1e-5, atol=1e-6)


def test_input_normalization_follows_the_weights():
    assert export.input_normalization(models.build("vggface_gru", width=0.0625, fc_units=8, rnn_units=4)) \
        == "vggface1"
    assert export.input_normalization(models.build("affwildnet_vggface", width=0.0625, fc_units=8,
                                                   rnn_units=4)) == "symmetric"
    assert export.input_normalization(models.build("affwildnet_resnet_gru_released", width=0.0625, input_size=32,
                                                   rnn_units=4)) == "tf1"


def test_postprocess_comes_from_the_evaluation(tmp_path):
    logged = []
    assert export.chosen_postprocess(str(tmp_path), "validation", logged.append) == export.no_postprocess()
    assert "no evaluation" in logged[-1]
    # What affnet.training.evaluate writes (keys used here only).
    result = {"split": "test", "median_windows": {"valence": 31, "arousal": 15, "chosen_on": "validation",
                                                  "validation_ccc": {}}}
    (tmp_path / "eval_validation.json").write_text(json.dumps({**result, "median_windows": {
        **result["median_windows"], "valence": 7}}))
    assert export.chosen_postprocess(str(tmp_path), "validation", logged.append)["median_windows"] == {
        "valence": 7, "arousal": 15}
    (tmp_path / "eval.json").write_text(json.dumps(result))
    chosen = export.chosen_postprocess(str(tmp_path), "validation", logged.append)
    assert chosen == {"median_windows": {"valence": 31, "arousal": 15}, "chosen_on": "validation",
                      "source": "eval.json"}
    assert "valence 31, arousal 15" in logged[-1]


def test_audio_settings_come_from_the_training_data(tmp_path):
    from data_pipeline.media import audio

    train = tmp_path / "data" / "train"
    train.mkdir(parents=True)
    (train / "report.json").write_text(json.dumps({"options": {"audio": True, "audio_context": 8, "audio_bins": 32,
                                                               "audio_scale": "mel", "audio_normalization": "fixed"}}))
    settings = export.training_audio(str(tmp_path / "data"), "train", 8 * 32, print)
    assert settings == {**settings, "context": 8, "bins": 32, "sample_rate": audio.SAMPLE_RATE}
    assert audio.SpectrogramConfig(**{**settings, "db_range": tuple(settings["db_range"])}).dim == 256
    with pytest.raises(ValueError, match="give 256 values per frame, the model takes 1024"):
        export.training_audio(str(tmp_path / "data"), "train", 1024, print)
    logged = []
    assert export.training_audio(None, None, audio.SpectrogramConfig().dim, logged.append)["context"] == \
        audio.SpectrogramConfig().context
    assert "defaults" in logged[-1]


def test_alignment_comes_from_the_training_data(tmp_path):
    # Preprocessing records its options in report.json, as the adapters do in manifest.json.
    import real_videos
    from data_pipeline.faces.options import PreprocessOptions
    from data_pipeline.jobs import preprocess
    from data_pipeline.media import decode

    (tmp_path / "videos").mkdir()
    decode.write_video(str(tmp_path / "videos" / "talk.mp4"), real_videos.moving_face_frames(4), fps=25)
    preprocess.preprocess(str(tmp_path / "videos"), str(tmp_path / "data"), PreprocessOptions(alignment="affine"),
                          workers=1, show_progress=False)
    assert export.training_alignment(str(tmp_path / "data"), "train", print) == "affine"
    logged = []
    assert export.training_alignment(str(tmp_path / "none"), "train", logged.append) == "similarity"
    assert "alignment: not recorded" in logged[-1]


@pytest.mark.parametrize("args, message", [
    ([], "give exactly one of --workdir"),
    (["--weights={h5}", "--output={out}", "--model=affwildnet_vggface_gru_released"], "does not fit"),
])
def test_cli_mistakes_are_one_line_errors(tmp_path, args, message):
    h5 = tmp_path / "w.weights.h5"
    models.build("affwildnet_vggface_gru_released", **TINY).save_weights(str(h5))
    args = [a.format(h5=h5, out=tmp_path / "out") for a in args]
    done = _run(os.path.join(ROOT, "launch", "export.py"), *args, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last and "Traceback" not in done.stderr


def test_weights_mistakes_name_the_file(tmp_path):
    h5 = tmp_path / "w.weights.h5"
    models.build("affwildnet_vggface_gru_released", **TINY).save_weights(str(h5))
    with pytest.raises(FileNotFoundError, match="missing.weights.h5: no such weights file"):
        export.export_weights("affwildnet_vggface_gru_released", str(tmp_path / "missing.weights.h5"), "o")
    with pytest.raises(ValueError, match=r"w.weights.h5: a .weights.h5 file needs --model"):
        export.export_weights(None, str(h5), "o")
    with pytest.raises(ValueError, match=r"w.weights.h5: does not fit affwildnet_vggface_gru_released with "
                                         r"overrides \{'width': 0.125\}"):
        export.export_weights("affwildnet_vggface_gru_released", str(h5), "o", dict(width=0.125))
    with pytest.raises(ValueError, match="weights must end in '.weights.h5' or '.keras'"):
        export.export_weights("affwildnet_vggface_gru_released", str(tmp_path), "o")
    with pytest.raises(ValueError, match="seq_len must be a positive int, got 0"):
        export.export_weights("affwildnet_vggface_gru_released", str(h5), "o", seq_len=0)
    assert not os.path.exists("o")

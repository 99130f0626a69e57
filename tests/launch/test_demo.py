"""A shortened demo end to end, as a user runs it from the installed package:
the wheel built from this checkout is installed into a fresh environment, and
`affnet-demo` runs in an empty folder (its configuration ships in the wheel):
synthesise -> train -> checkpoint -> resume (the step continues) -> evaluate ->
export (SavedModel loaded by a fresh Python that imports only tensorflow gives
the in-memory model's outputs) -> predict on a synthetic video (dlib detects
the rendered faces). `affnet-train --flagfile=affwild2.flags` from that folder
finds the shipped configuration and stops at its "where is the data" message."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from helpers import ROOT
from helpers import launch_script as _launch
from helpers import serve_in_fresh_python
from helpers import subprocess_env as _env

TINY = ["--synthetic_subjects=3", "--synthetic_videos_per_subject=1", "--synthetic_frames=40",
        "--model_overrides=width=0.0625,input_size=32,fc_units=16,rnn_units=8", "--seq_len=8",
        "--batch_size=2", "--eval_every=2", "--checkpoint_every=2", "--log_every=1"]


def _summary_tags(directory):
    import tensorflow as tf

    tags = set()
    for name in os.listdir(directory):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(directory, name)):
            tags.update(value.tag for value in event.summary.value)
    return tags


def _install_wheel(tmp_path):
    """A fresh virtual environment holding the wheel of this checkout (no editable
    install, no repository on the path); the test environment's site-packages give it
    TensorFlow and the other requirements without a second download. The wheel is
    built from a copy of the sources, so the build leaves nothing in the checkout."""
    import shutil
    import site
    import sysconfig

    env = _env()
    env.pop("PYTHONPATH", None)
    source = tmp_path / "source"
    for name in ("affnet", "data_pipeline", "launch"):
        shutil.copytree(os.path.join(ROOT, name), source / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("setup.py", "README.md"):
        shutil.copy(os.path.join(ROOT, name), source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True, timeout=300, env=env)
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=300, env=env)
    python = str(env_dir / "bin" / "python")
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True, env=env).stdout.strip()
    with open(os.path.join(purelib, "test_requirements.pth"), "w") as f:
        f.write("\n".join(site.getsitepackages() + [sysconfig.get_paths()["purelib"]]) + "\n")
    wheel = [str(p) for p in (tmp_path / "dist").iterdir() if p.name.endswith(".whl")]
    # --ignore-installed: the test environment's own (editable) affnet, visible through the .pth, is not this wheel.
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", *wheel],
                   check=True, capture_output=True, timeout=300, env=env)
    return env_dir / "bin"


def _installed(bin_dir, cwd, command, *args):
    """Run an installed console script in `cwd` (not the repository); the CompletedProcess."""
    env = _env()
    env.pop("PYTHONPATH", None)
    return subprocess.run([str(bin_dir / command), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.slow
def test_short_demo_train_resume_evaluate_export_predict(tmp_path):
    bin_dir = _install_wheel(tmp_path)
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    where = subprocess.run([str(bin_dir / "python"), "-c", "import affnet.configs; print(affnet.configs.__file__)"],
                           cwd=empty, capture_output=True, text=True, env=dict(_env(), PYTHONPATH=""))
    assert where.returncode == 0 and not where.stdout.startswith(ROOT), where  # The wheel, not this checkout.
    train = _installed(bin_dir, empty, "affnet-train", "--flagfile=affwild2.flags")
    assert train.returncode == 2 and os.path.join(str(empty), "data", "affwild2", "train") in train.stderr, train

    workdir = str(tmp_path / "demo")
    done = _installed(bin_dir, empty, "affnet-demo", f"--workdir={workdir}", "--train_steps=2", *TINY)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    first = done.stdout
    assert "generating the synthetic set" in first
    predicted = json.load(open(os.path.join(workdir, "demo.json")))["predict"]
    assert predicted["frames"] == 90 and predicted["face_rows"] >= 80, predicted  # The astronaut is found.
    for key in ("table", "plot", "histogram", "annotated_video"):
        assert os.path.getsize(predicted[key]) > 1000, key
    assert os.path.exists(os.path.join(workdir, "data", "test"))
    assert os.path.exists(os.path.join(workdir, "checkpoints", "ckpt-2.index"))
    first_eval = json.load(open(os.path.join(workdir, "eval.json")))
    for key in ("ccc_valence", "ccc_arousal", "mse_valence", "pcc_arousal", "per_video", "median_windows"):
        assert key in first_eval
    assert -1 <= first_eval["ccc_valence"] <= 1

    second = _launch("demo.py", f"--workdir={workdir}", "--train_steps=4", *TINY)
    assert "(present)" in second and f"at step 2" in second
    assert "step 3/4" in second and "step 1/" not in second
    assert os.path.exists(os.path.join(workdir, "checkpoints", "ckpt-4.index"))
    history = [json.loads(line)["step"] for line in open(os.path.join(workdir, "eval_history.json"))]
    assert history == [2, 4]
    assert os.path.exists(os.path.join(workdir, "eval_test_videos.png"))
    assert json.load(open(os.path.join(workdir, "flags.json")))["optimisation"]["train_steps"] == 4
    for sub, expected in (("train", {"loss", "learning_rate", "steps_per_second", "frames_per_second",
                                     "ccc_valence", "ccc_arousal", "mse_valence", "mse_arousal"}),
                          ("val", {"ccc_valence", "ccc_arousal", "mse_valence", "loss", "va_scatter"})):
        assert expected <= _summary_tags(os.path.join(workdir, sub)), sub

    # Export: a fresh interpreter with tensorflow only reproduces the in-memory model.
    export_dir = os.path.join(workdir, "export")
    info = json.load(open(os.path.join(export_dir, "export.json")))
    assert os.path.exists(info["keras"])
    rng = np.random.default_rng(1)
    images = rng.uniform(-1, 1, (2, 5, 96, 96, 3)).astype(np.float32)
    landmarks = rng.uniform(-1, 1, (2, 5, 136)).astype(np.float32)
    served, imported = serve_in_fresh_python(info["saved_model"], images, landmarks, tmp_path)
    assert imported == "[]"  # No affnet code was needed (tensorflow itself imports keras).
    import tensorflow as tf

    from affnet.training.export import load_run_model

    _, model, _ = load_run_model(workdir, "best")
    expected = model({"images": tf.image.resize(images.reshape(-1, 96, 96, 3), [32, 32]).numpy().reshape(
        2, 5, 32, 32, 3), "landmarks": landmarks}, training=False)
    np.testing.assert_allclose(served, np.asarray(expected), rtol=1e-4, atol=1e-5)

    # Predict on a rendered video.
    from data_pipeline.synthetic.dataset import render_video_file

    video = str(tmp_path / "clip.mp4")
    render_video_file(video, num_frames=20, width=320, height=240)
    _launch("predict.py", f"--input={video}", f"--model={export_dir}", f"--output={tmp_path / 'pred'}")
    rows = list(csv.DictReader(open(tmp_path / "pred" / "clip.csv")))
    assert len(rows) == 20
    assert list(rows[0]) == ["frame_index", "timestamp", "face_id", "success", "confidence", "face_x", "face_y",
                             "face_w", "face_h", "valence", "arousal"]
    with_face = [r for r in rows if r["face_id"] != ""]
    assert len(with_face) >= 15, "dlib should find the rendered face in most frames"
    assert all(-5 < float(r["valence"]) < 5 for r in with_face)
    for png in ("clip_va.png", "clip_va_hist.png"):
        assert os.path.getsize(tmp_path / "pred" / png) > 1000

"""The real-data path end to end, each stage through its command line as the README writes it.

Real photographs (skimage's astronaut) become short videos written with PyAV: a face that moves and
changes size, a frame without a face, two people in one video. A miniature Aff-Wild2 in the published
ABAW layout attaches labels. Then:
  (1) adapter -> launch/train.py -> launch/evaluate.py -> launch/export.py -> launch/predict.py -> CSV;
  (2) random weights of the released AffWildNet-VGGFace-GRU saved as `.weights.h5`
      -> launch/export.py --weights -> launch/predict.py -> CSV;
  (3) as (1) with the adapter's `--alignment=affine`: export.json records it for predict.
The data directory also holds what real directories hold beside the shards (the adapters' reports,
a report of the layout affnet 0.1 wrote, `<video>.tfrecord.json`, and notes), which a reader that
globbed `*.tfrecord*` opened as TFRecords and died on.
"""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from real_videos import FRAMES, write_abaw_release

from affnet.export_format import ExportInfo
from data_pipeline.records import schema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_MODEL = "width=0.0625,input_size=32,fc_units=16,rnn_units=8"


@pytest.fixture(scope="module")
def abaw(tmp_path_factory):
    return write_abaw_release(tmp_path_factory.mktemp("affwild2"))


def _run(*command, timeout=900):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    done = subprocess.run([sys.executable, *command], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-4000:])
    return done.stdout


def _launch(script, *args):
    return _run(os.path.join("launch", script), *args)


def _predictions(csv_path):
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    values = np.array([[float(r["valence"]), float(r["arousal"])] for r in rows if r["valence"] not in ("", "nan")])
    return rows, values


def _check_prediction(output_dir, video, expected_frames):
    name = os.path.splitext(os.path.basename(video))[0]
    rows, values = _predictions(os.path.join(output_dir, f"{name}.csv"))
    assert len(rows) == expected_frames  # One row per decoded frame (one face per frame here).
    # Every frame with the face has values; the frame without a face has none.
    assert len(values) == expected_frames - 1
    assert np.isfinite(values).all() and np.abs(values).max() < 10


@pytest.mark.slow
def test_adapter_train_evaluate_export_predict(abaw, tmp_path):
    data = tmp_path / "data" / "affwild2"
    _run("-m", "data_pipeline.adapters", "affwild2", "--root", str(abaw), "--output", str(data))
    shards = {split: schema.list_shards(str(data / split)) for split in ("train", "validation")}
    assert [len(shards["train"]), len(shards["validation"])] == [2, 1]
    reports = [schema.side_report_path(s) for s in shards["train"] + shards["validation"]]
    assert all(os.path.exists(r) for r in reports)
    written = {json.load(open(r))["video_id"]: json.load(open(r))["frames_written"] for r in reports}
    # The frame without a face is dropped ([AW]); the two-person video keeps one track (the largest).
    assert written == {"vid_train_a": FRAMES - 1, "vid_train_b": FRAMES, "vid_val": FRAMES - 1}
    # What else real data directories hold: a report in the layout affnet 0.1 wrote, and notes.
    (data / "train" / "vid_train_a.tfrecord.json").write_text(json.dumps({"status": "ok"}))
    (data / "train" / "README.txt").write_text("downloaded 2026-12-01")

    workdir = tmp_path / "run"
    _launch("train.py", "--model=affwildnet_vggface", f"--model_overrides={TINY_MODEL}", f"--data={data}",
            f"--workdir={workdir}", "--seq_len=8", "--batch_size=2", "--train_steps=4", "--eval_every=2",
            "--checkpoint_every=2", "--log_every=1")
    assert json.load(open(workdir / "best.json"))["step"] in (2, 4)
    _launch("evaluate.py", f"--workdir={workdir}", "--split=validation")
    evaluation = json.load(open(workdir / "eval_validation.json"))
    assert list(evaluation["per_video"]) == ["vid_val"] and np.isfinite(evaluation["ccc_valence"])
    # Every frame with a face is predicted once; frame 5 had none, frame 3 is unannotated (NaN label).
    scored = np.load(workdir / "predictions_validation_raw.npz")
    assert sorted(scored["frame_index"]) == [k for k in range(FRAMES) if k != 5]
    assert np.isnan(scored["labels"][list(scored["frame_index"]).index(3)]).all()

    export = tmp_path / "export"
    _launch("export.py", f"--workdir={workdir}", f"--output={export}")
    assert (export / "saved_model" / "saved_model.pb").exists()
    assert json.load(open(export / "export.json"))["alignment"] == "similarity"  # The adapter's default, recorded.
    predictions = tmp_path / "predictions"
    video = str(abaw / "batch1" / "vid_val.mp4")
    _launch("predict.py", f"--input={video}", f"--model={export}", f"--output={predictions}")
    _check_prediction(str(predictions), video, FRAMES)


@pytest.mark.slow
def test_released_weights_export_and_predict(abaw, released_export, tmp_path):
    """A `.weights.h5` as `affnet.weights.convert` writes it, for the released AffWildNet-VGGFace-GRU,
    exported by `launch/export.py --weights` (the session's `released_export`, tests/conftest.py)."""
    _, export, _ = released_export
    info = json.load(open(os.path.join(export, "export.json")))
    assert info["model"] == "affwildnet_vggface_gru_released" and info["input_normalization"] == "tf1"
    predictions = tmp_path / "predictions"
    video = str(abaw / "batch1" / "vid_train_a.mp4")
    _launch("predict.py", f"--input={video}", f"--model={export}", f"--output={predictions}")
    _check_prediction(str(predictions), video, FRAMES)


@pytest.mark.slow
def test_affine_crops_train_export_and_predict_affine(abaw, tmp_path):
    """[FBN]'s affine alignment chosen at the adapter reaches predict through the command line: the
    adapter records it in manifest.json, launch/export.py copies it into export.json, predict follows it."""
    data = tmp_path / "data"
    _run("-m", "data_pipeline.adapters", "affwild2", "--root", str(abaw), "--output", str(data), "--alignment=affine")
    workdir, export = tmp_path / "run", tmp_path / "export"
    _launch("train.py", "--model=affwildnet_vggface", f"--model_overrides={TINY_MODEL}", f"--data={data}",
            f"--workdir={workdir}", "--seq_len=8", "--batch_size=2", "--train_steps=2", "--eval_every=2",
            "--checkpoint_every=2")
    _launch("export.py", f"--workdir={workdir}", f"--output={export}")
    assert json.load(open(export / "export.json"))["alignment"] == "affine"
    assert ExportInfo.read(str(export)).alignment == "affine"  # What predict's Predictor aligns by.
    predictions = tmp_path / "predictions"
    video = str(abaw / "batch1" / "vid_val.mp4")
    _launch("predict.py", f"--input={video}", f"--model={export}", f"--output={predictions}")
    _check_prediction(str(predictions), video, FRAMES)

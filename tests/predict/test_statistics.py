"""Per-input statistics of predict's table against numpy by hand, index.csv, and the ABAW layout read back
by the Aff-Wild2 adapter's own parser."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from affnet.predict import outputs, runtime, statistics
from data_pipeline.adapters import affwild2

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLUMNS = outputs.prediction_columns(("valence_arousal", "expression_probabilities", "au_probabilities"),
                                     ("neutral", "happiness", "sadness"), ("AU1", "AU12"))


def _table():
    """20 frames: face 0 on frames 0..15, face 1 on 10..19, no face on none; one repeated frame (resampling)."""
    rng = np.random.default_rng(3)
    rows, predictions = [], {"valence_arousal": {}, "expression_probabilities": {}, "au_probabilities": {}}
    for k in range(20):
        faces = [f for f, (lo, hi) in enumerate(((0, 16), (10, 20))) if lo <= k < hi]
        for face in faces:
            row = len(rows)
            rows.append((k, k / 30, face, 1, 0.9, 10.0 + 50 * face, 20.0, 40.0 + 20 * face, 40.0))
            predictions["valence_arousal"][row] = rng.uniform(-1, 1, 2).astype(np.float32)
            logits = rng.normal(size=3)
            predictions["expression_probabilities"][row] = (np.exp(logits) / np.exp(logits).sum()).astype(np.float32)
            predictions["au_probabilities"][row] = rng.uniform(0, 1, 2).astype(np.float32)
    rows.append((20, 20 / 30, None, 0) + (np.nan,) * 5)  # A frame without a face.
    return outputs.table(rows, predictions, COLUMNS)


def test_statistics_equal_numpy_by_hand():
    table = _table()
    result = statistics.compute(table, COLUMNS)
    assert result["frames"] == 21 and result["face_share"] == pytest.approx(20 / 21)
    assert [face["face_id"] for face in result["faces"]] == [0, 1]
    face = table[(table.face_id == 0) & (table.success == 1)]
    stats = result["faces"][0]
    assert stats["frames"] == 16 and stats["coverage"] == pytest.approx(16 / 21)
    valence, arousal = face.valence.to_numpy(np.float64), face.arousal.to_numpy(np.float64)
    assert stats["valence"]["mean"] == pytest.approx(np.mean(valence), abs=1e-6)
    assert stats["valence"]["std"] == pytest.approx(np.sqrt(np.mean((valence - valence.mean()) ** 2)), abs=1e-6)
    ordered = np.sort(arousal)
    # q25 of 16 values by linear interpolation: position 0.25 * 15 = 3.75.
    assert stats["arousal"]["q25"] == pytest.approx(ordered[3] + 0.75 * (ordered[4] - ordered[3]), abs=1e-6)
    assert stats["arousal"]["q50"] == pytest.approx((ordered[7] + ordered[8]) / 2, abs=1e-6)
    assert stats["quadrants"]["v+a+"] == pytest.approx(np.mean((valence >= 0) & (arousal >= 0)))
    assert stats["quadrants"]["v-a+"] == pytest.approx(np.mean((valence < 0) & (arousal >= 0)))
    assert sum(stats["quadrants"].values()) == pytest.approx(1.0)
    winners = np.argmax(face[["expression_neutral", "expression_happiness", "expression_sadness"]].to_numpy(), 1)
    assert stats["expressions"]["happiness"] == pytest.approx(np.mean(winners == 1))
    assert sum(stats["expressions"].values()) == pytest.approx(1.0)
    assert stats["aus"]["AU12"] == pytest.approx(np.mean(face.AU12.to_numpy() >= 0.5))


def test_an_input_without_faces_and_a_va_only_export():
    rows = [(k, k / 30, None, 0) + (np.nan,) * 5 for k in range(4)]
    columns = outputs.prediction_columns(("valence_arousal",), (), ())
    result = statistics.compute(outputs.table(rows, {}, columns), columns)
    assert result == {"frames": 4, "face_share": 0.0, "faces": []}


def test_index_csv_has_a_row_per_input_and_face(tmp_path):
    entries = [{"input": "a.mp4", "status": "skipped", "previous_status": "ok", "table": str(tmp_path / "a.csv"),
                "statistics": statistics.compute(_table(), COLUMNS)},
               {"input": "b.mp4", "status": "failed", "error": "cannot decode"}]
    statistics.write_index(entries, str(tmp_path / "index.csv"))
    with open(tmp_path / "index.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["input"], r["face_id"]) for r in rows] == [("a.mp4", "0"), ("a.mp4", "1"), ("b.mp4", "")]
    first = entries[0]["statistics"]["faces"][0]
    assert float(rows[0]["valence_q95"]) == pytest.approx(first["valence"]["q95"])
    assert float(rows[1]["quadrant_v-a-"]) == pytest.approx(entries[0]["statistics"]["faces"][1]["quadrants"]["v-a-"])
    assert rows[0]["au_AU1"] != "" and rows[2]["status"] == "failed" and rows[2]["valence_mean"] == ""
    # What the outputs are, not what this run did: a resumed run's skipped input is "ok"; tables relative to OUT.
    assert (rows[0]["status"], rows[0]["table"]) == ("ok", "a.csv")


def test_abaw_file_reads_back_through_the_adapter(tmp_path):
    table = _table()
    values = outputs.abaw_values(table)
    assert values.shape == (21, 2) and np.isnan(values[20]).all()
    # Frames 10..15 have two faces: the larger (face 1, 60 px wide) counts.
    both = table[(table.frame_index == 12) & (table.face_id == 1)]
    np.testing.assert_allclose(values[12], both[["valence", "arousal"]].to_numpy()[0], atol=1e-6)
    path = str(tmp_path / "video.txt")
    outputs.write_table(table, path, "abaw")
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines[0] == "valence,arousal" and len(lines) == 22 and lines[-1] == "-5,-5"
    labels = affwild2.read_va(path)
    np.testing.assert_allclose(labels.valence, values[:, 0], atol=1e-6)
    np.testing.assert_allclose(labels.arousal, values[:, 1], atol=1e-6)


def test_abaw_holds_source_frames_resampling_skipped():
    columns = outputs.prediction_columns(("valence_arousal",), (), ())
    # A 60 fps source at 30 fps: source frames 0, 2, 4 shown; 1 and 3 never.
    rows = [(k, k / 60, 0, 1, 0.9, 0.0, 0.0, 10.0, 10.0) for k in (0, 2, 4)]
    va = {r: np.array([0.1 * r, -0.2 * r], np.float32) for r in range(3)}
    values = outputs.abaw_values(outputs.table(rows, {"valence_arousal": va}, columns))
    np.testing.assert_allclose(values, [[0, 0], [0, 0], [0.1, -0.2], [0.1, -0.2], [0.2, -0.4]], atol=1e-6)


def test_abaw_writer_clips_and_marks_missing(tmp_path):
    path = str(tmp_path / "v.txt")
    affwild2.write_va(path, np.array([[1.2, -0.5], [np.nan, 0.1], [0.25, -1.0]]))
    labels = affwild2.read_va(path)
    np.testing.assert_allclose(labels.valence, [1.0, np.nan, 0.25])
    np.testing.assert_allclose(labels.arousal, [-0.5, np.nan, -1.0])


def test_predict_cli_writes_statistics_index_and_abaw_at_auto_precision(exports, media, tmp_path, monkeypatch):
    """The CLI as a user runs it: --precision left at auto (not pinned), --output_format=abaw, --fps=0."""
    monkeypatch.delenv(runtime.AUTO_PRECISION_ENV, raising=False)
    env = dict(os.environ)
    done = subprocess.run([sys.executable, os.path.join(ROOT, "launch", "predict.py"),
                           f"--input={media / 'sub' / 'talk.mp4'}", f"--input={media / 'empty.mp4'}",
                           f"--model={exports['va']}", f"--output={tmp_path}", "--output_format=abaw", "--fps=0",
                           "--noplots"], capture_output=True, text=True, env=dict(env, PYTHONPATH=ROOT), timeout=600)
    assert done.returncode == 0, done.stderr
    used, why = runtime.choose_precision("auto", "saved_model", runtime.cpu_flags())
    assert f"precision: {used} ({why})" in done.stderr.splitlines()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["precision"] == {"used": used, "why": why} and summary["options"]["precision"] == "auto"
    talk, empty = summary["inputs"]
    assert talk["table"] == str(tmp_path / "talk.txt")
    labels = affwild2.read_va(talk["table"])  # 12 source frames at --fps=0, one line each.
    assert len(labels.valence) == 12 and np.isfinite(labels.valence).sum() == talk["face_rows"]
    assert talk["statistics"]["frames"] == 12 and talk["statistics"]["faces"][0]["frames"] == talk["face_rows"]
    assert talk["statistics"]["faces"][0]["valence"]["mean"] == pytest.approx(np.nanmean(labels.valence), abs=1e-5)
    assert np.isnan(affwild2.read_va(empty["table"]).valence).all() and empty["statistics"]["face_share"] == 0.0
    with open(tmp_path / "index.csv") as f:
        assert [r["input"] for r in csv.DictReader(f)] == [talk["input"], empty["input"]]


def test_auto_precision_follows_the_device(monkeypatch):
    monkeypatch.delenv(runtime.AUTO_PRECISION_ENV, raising=False)
    cpu = {"gpus": 0}
    assert runtime.choose_precision("auto", "saved_model", frozenset({"avx2", "avx512_bf16"}), **cpu)[0] == "bfloat16"
    assert runtime.choose_precision("auto", "saved_model", frozenset({"amx_bf16", "amx_tile"}), **cpu)[0] == "bfloat16"
    assert runtime.choose_precision("auto", "saved_model", frozenset({"avx2", "avx512f"}), **cpu)[0] == "float32"
    # A GPU takes TensorFlow's CUDA rewrite (float16), whatever the host CPU has; ONNX / TFLite stay float32.
    assert runtime.choose_precision("auto", "saved_model", frozenset({"avx512_bf16"}), gpus=1)[0] == "float16"
    assert runtime.choose_precision("auto", "saved_model", frozenset(), gpus=8)[0] == "float16"
    assert runtime.choose_precision("auto", "onnx", frozenset({"avx512_bf16"}), gpus=1)[0] == "float32"
    assert runtime.choose_precision("float32", "saved_model", frozenset({"avx512_bf16"}), gpus=1) == ("float32",
                                                                                                        "requested")
    # Without a GPU the CUDA rewrite would do nothing: a requested float16 is refused naming the export.
    assert runtime.gpu_count() == 0
    with pytest.raises(ValueError, match=r"model_dir: precision 'float16' needs a GPU"):
        runtime.SavedModelRuntime("model_dir", "float16")
    monkeypatch.setenv(runtime.AUTO_PRECISION_ENV, "float32")
    assert runtime.choose_precision("auto", "saved_model", frozenset({"avx512_bf16"}), gpus=1)[0] == "float32"
    monkeypatch.setenv(runtime.AUTO_PRECISION_ENV, "float61")
    with pytest.raises(ValueError, match=r"AFFNET_AUTO_PRECISION must be one of .*did you mean 'float16'"):
        runtime.choose_precision("auto", "saved_model", frozenset(), gpus=0)
    cpuinfo = "processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 sse\n"
    path = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")  # A file without a flags line.
    assert runtime.cpu_flags(path) == frozenset() and runtime.cpu_flags("/nonexistent") == frozenset()
    monkeypatch.setattr("builtins.open", lambda *a, **k: __import__("io").StringIO(cpuinfo))
    assert "avx512_bf16" in runtime.cpu_flags()


def test_float16_rewrite_of_an_export_on_a_virtual_gpu(exports):
    """What auto precision runs on a GPU, computed on the CPU (bench/float16_rewrite.py): TensorFlow's CUDA
    float16 pass turns the convolutions, matmuls and recurrent cells of the export's serving graph float16,
    and every output stays finite and within 0.01 of float32."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "float16_rewrite.py"),
                           f"--export={exports['multitask']}", "--seq_len=6"],
                          capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["casts_added"] > 0 and report["all_finite"], report
    assert {"Conv2D", "MatMul", "Sigmoid", "Tanh"} <= set(report["float16_ops"]), report["float16_ops"]
    differences = report["max_abs_difference"]
    assert set(differences) == {"valence_arousal", "expression_probabilities", "au_probabilities"}
    # Not float32 again: rounding to float16 moves valence/arousal a little (measured 2.8e-6 on this export).
    assert 0 < differences["valence_arousal"] <= 0.01 and max(differences.values()) <= 0.01, differences


def test_float16_turns_on_the_cuda_rewrite_where_a_gpu_is_seen(exports, monkeypatch):
    """The runtime's side of the GPU path: with a GPU seen, precision float16 loads the SavedModel with
    TensorFlow's CUDA auto-mixed-precision pass on (which leaves this CPU's nodes float32)."""
    import tensorflow as tf

    monkeypatch.setattr(runtime, "gpu_count", lambda: 1)
    before = tf.config.optimizer.get_experimental_options().get("auto_mixed_precision", False)
    try:
        model, info = runtime.load(exports["va"], "float16")
        assert tf.config.optimizer.get_experimental_options()["auto_mixed_precision"] is True
        assert model.precision == "float16"
        images = np.zeros((1, 3, info.crop_size, info.crop_size, 3), np.float32)
        out = model(images=images, landmarks=np.zeros((1, 3, 136), np.float32))
        assert out["valence_arousal"].shape == (1, 3, 2) and np.isfinite(out["valence_arousal"]).all()
    finally:
        tf.config.optimizer.set_experimental_options({"auto_mixed_precision": before})

"""launch/predict.py over a folder: one table per video and image, the documented columns, the
Python API returning the CSV's values, the median filter of export.json, and one-line user errors."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from affnet.predict import outputs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = ["frame_index", "timestamp", "face_id", "success", "confidence", "face_x", "face_y", "face_w", "face_h"]


def _predict(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, os.path.join(ROOT, "launch", "predict.py"), *args],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def folder_run(exports, media, tmp_path_factory):
    out = tmp_path_factory.mktemp("predicted")
    result = _predict(f"--input={media}", f"--model={exports['va']}", f"--output={out}", "--landmarks",
                      "--annotated_video", "--batch_size=3")
    assert result.returncode == 0, result.stderr
    return out


def test_folder_writes_one_csv_per_video_and_image(folder_run, media):
    for name, frames in (("sub/talk", 15), ("still", 1), ("empty", 5)):  # 0.48 s at 25 fps -> 15 at 30.
        table = pd.read_csv(folder_run / f"{name}.csv")
        assert list(table.columns[:11]) == BASE + ["valence", "arousal"]
        assert list(table.columns[11:]) == list(outputs.LANDMARK_COLUMNS)
        assert table.frame_index.nunique() <= frames and len(table.drop_duplicates(["timestamp"])) == frames
    talk = pd.read_csv(folder_run / "sub" / "talk.csv")
    assert talk.success.sum() >= 12, "dlib should find the astronaut in (almost) every frame"
    found = talk[talk.success == 1]
    assert found.valence.between(-1, 1).all() and found.arousal.between(-1, 1).all()
    # The box holds the face: the astronaut's crop is pasted at x = 10 + 6k (k the source frame), y 20..220.
    centre_x = found.face_x + found.face_w / 2
    assert np.all(np.abs(centre_x - (10 + 6 * found.frame_index + 95)) < 40)
    assert np.all((found.y_30 > 20) & (found.y_30 < 220))  # Nose tip inside the pasted photo.
    empty = pd.read_csv(folder_run / "empty.csv")
    assert (empty.success == 0).all() and empty.face_id.isna().all() and empty.valence.isna().all()
    summary = json.loads((folder_run / "summary.json").read_text())
    assert summary["totals"]["inputs"] == 3 and summary["totals"]["ok"] == 3
    assert os.path.getsize(folder_run / "sub" / "talk_annotated.mp4") > 1000
    assert os.path.getsize(folder_run / "sub" / "talk_va.png") > 1000


def test_python_api_returns_the_csv_values(folder_run, exports, media):
    import affnet

    predictor = affnet.Predictor(exports["va"], landmarks=True, batch_size=1, progress=False)
    table = predictor.predict(str(media / "sub" / "talk.mp4"))
    written = outputs.read_table(str(folder_run / "sub" / "talk.csv"))
    assert list(table.columns) == list(written.columns)
    np.testing.assert_array_equal(table.face_id.isna(), written.face_id.isna())
    for column in ("timestamp", "face_x", "valence", "arousal", "x_0", "y_67"):
        np.testing.assert_allclose(table[column], written[column], rtol=1e-5, atol=1e-6)


def test_batched_windows_equal_one_window_per_call(exports):
    """batch_size 8 over two faces and ragged last windows gives the values of batch_size 1."""
    import affnet
    from predict_fakes import moving_face_frames

    frames = moving_face_frames(count=13, size=(240, 520), faces=2)
    one = affnet.Predictor(exports["va"], batch_size=1, track="all", progress=False).predict(frames)
    many = affnet.Predictor(exports["va"], batch_size=8, track="all", progress=False).predict(frames)
    assert set(one.face_id.dropna()) == {0, 1}
    np.testing.assert_allclose(many[["valence", "arousal"]], one[["valence", "arousal"]], atol=1e-5)


def test_median_filter_of_export_json_unless_postprocess_none(exports, tmp_path):
    import affnet
    from affnet.evaluation import smoothing
    from predict_fakes import moving_face_frames

    export = tmp_path / "export"
    shutil.copytree(exports["va"], export)
    info = json.loads((export / "export.json").read_text())
    info["postprocess"] = {"median_windows": {"valence": 5, "arousal": 1}, "chosen_on": "validation"}
    (export / "export.json").write_text(json.dumps(info))
    frames = moving_face_frames(count=12)
    raw = affnet.Predictor(str(export), postprocess="none", progress=False).predict(frames)
    filtered = affnet.Predictor(str(export), progress=False).predict(frames)
    face = raw.success == 1
    expected = smoothing.median_filter(raw.loc[face, ["valence", "arousal"]].to_numpy(), (5, 1))
    np.testing.assert_allclose(filtered.loc[face, ["valence", "arousal"]], expected, atol=1e-6)
    assert not np.allclose(raw.loc[face, "valence"], filtered.loc[face, "valence"])


@pytest.mark.parametrize("args, message", [
    (["--input=/nonexistent/clip.mp4"], "/nonexistent/clip.mp4: no such file"),
    (["--seq_len=-3"], "--seq_len must be positive"),
    (["--model=/nonexistent/export"], "/nonexistent/export: no such export directory"),
])
def test_user_mistakes_are_one_line_and_exit_2(args, message, exports, media, tmp_path):
    defaults = {"input": f"--input={media / 'still.png'}", "model": f"--model={exports['va']}"}
    for arg in args:
        defaults[arg[2:].split("=")[0]] = arg
    result = _predict(*defaults.values(), f"--output={tmp_path}", *[a for a in args if a.startswith("--seq")])
    assert result.returncode == 2
    # TensorFlow's own start-up lines (oneDNN, absl) may precede it; ours is one line, no traceback.
    ours = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(ours) == 1 and message in ours[0] and "Traceback" not in result.stderr, result.stderr


def test_parquet_output(exports, media, tmp_path):
    result = _predict(f"--input={media / 'still.png'}", f"--model={exports['multitask']}", f"--output={tmp_path}",
                      "--output_format=parquet", "--noprogress")
    assert result.returncode == 0, result.stderr
    table = pd.read_parquet(tmp_path / "still.parquet")
    assert "expression_happiness" in table and "AU12" in table and table.success.iloc[0] == 1

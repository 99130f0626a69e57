"""`python -m data_pipeline.adapters`, the shared writer and its subject-independence guard."""

import json
import subprocess
import sys

import numpy as np
import pytest
from adapter_fakes import afew_clip

from data_pipeline.records import annotations
from data_pipeline.adapters import discovery
from data_pipeline.adapters import common, get, main


@pytest.fixture
def afew(tmp_path):
    root = tmp_path / "AFEW-VA"
    for k, actor in enumerate(["Ann", "Bob", "Cid"]):
        afew_clip(root, f"{k + 1:03d}", actor, frames=2)
    return root


def test_main_writes_folds_and_a_manifest(afew, tmp_path):
    out = tmp_path / "out"
    code = main(["afewva", "--root", str(afew), "--output", str(out), "--folds", "3", "--landmarks", "none",
                 "--crop_size", "64", "--image_format", "png"])
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dataset"] == "afewva" and manifest["options"]["crop_size"] == 64
    assert sorted(manifest["subjects"]) == ["fold0", "fold1", "fold2"]
    assert all((out / e["output"]).is_file() for e in manifest["videos"])


def test_main_reports_layout_errors(tmp_path, capsys):
    # main raises the user's mistake; `cli.run` (the module entry) prints it as one line, exit 2.
    with pytest.raises(FileNotFoundError, match="no such folder"):
        main(["omg", "--root", str(tmp_path / "missing"), "--output", str(tmp_path / "o")])
    with pytest.raises(SystemExit):
        main(["nosuchset", "--root", "r", "--output", "o"])


@pytest.mark.slow
def test_module_entry_point_runs(afew, tmp_path):
    result = subprocess.run([sys.executable, "-m", "data_pipeline.adapters", "afewva", "--root", str(afew),
                             "--output", str(tmp_path / "o"), "--folds", "3", "--landmarks", "none"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert '"ok": 3' in result.stderr


def test_writer_refuses_a_subject_in_two_splits(tmp_path):
    files = [str(tmp_path / "0.png")]
    items = [discovery.VideoItem("a", "train", "s1", frame_files=files),
             discovery.VideoItem("b", "test", "s1", frame_files=files)]
    with pytest.raises(ValueError, match=r"subject 's1' is in more than one split: test \(b\), train \(a\)"):
        common.write_items(items, str(tmp_path / "out"), progress=None)
    assert not (tmp_path / "out").exists()


def test_unreadable_frames_and_videos_are_reported_not_raised(tmp_path):
    (tmp_path / "clip.mp4").write_text("not a video")
    (tmp_path / "0.png").write_text("not an image")
    items = [discovery.VideoItem("v", "train", "s1", video_path=str(tmp_path / "clip.mp4")),
             discovery.VideoItem("f", "train", "s2", frame_files=[str(tmp_path / "0.png")], frames_aligned=True,
                              labels=annotations.FrameLabels(valence=[0.5]))]
    manifest = common.write_items(items, str(tmp_path / "out"), progress=None)
    video, frames = manifest["videos"]
    assert video["status"] == "failed" and "clip.mp4" in video["error"]
    assert frames["status"] == "empty" and frames["dropped"] == {"unreadable": 1}


def test_get_and_item_checks():
    assert get("afewva", folds=3).folds == 3
    with pytest.raises(ValueError, match="unknown dataset 'x'"):
        get("x")
    with pytest.raises(ValueError, match="exactly one of video_path or frame_files"):
        discovery.VideoItem("v", "train", "s")
    with pytest.raises(ValueError, match=r"frame_landmarks must be \(1, 68, 2\)"):
        discovery.VideoItem("v", "train", "s", frame_files=["a.png"], frame_landmarks=np.zeros((1, 5, 2)))


@pytest.mark.slow
def test_two_workers_write_the_same_bytes(afew, tmp_path):
    one = tmp_path / "one"
    two = tmp_path / "two"
    args = ["afewva", "--root", str(afew), "--folds", "3", "--landmarks", "none"]
    assert main(args + ["--output", str(one)]) == 0
    assert main(args + ["--output", str(two), "--workers", "2"]) == 0
    for entry in json.loads((one / "manifest.json").read_text())["videos"]:
        assert (one / entry["output"]).read_bytes() == (two / entry["output"]).read_bytes()

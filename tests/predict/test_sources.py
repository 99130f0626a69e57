"""Predict inputs: folders, globs, files, live specs, and the bounded live reader."""

import cv2
import numpy as np
import pytest
from predict_fakes import face, moving_face_frames

from affnet.predict import sources
from data_pipeline.media import decode


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "sub").mkdir()
    decode.write_video(str(tmp_path / "sub" / "a.mp4"), moving_face_frames(count=3), fps=25)
    decode.write_video(str(tmp_path / "b.mp4"), moving_face_frames(count=3), fps=25)
    cv2.imwrite(str(tmp_path / "b.png"), cv2.cvtColor(face(), cv2.COLOR_RGB2BGR))
    (tmp_path / "notes.txt").write_text("not media")
    return tmp_path


def test_folder_glob_file_and_live_specs(tree):
    found = sources.expand([str(tree)])
    assert [s.location for s in found] == [str(tree / "b.mp4"), str(tree / "b.png"), str(tree / "sub" / "a.mp4")]
    assert [s.name for s in found] == ["b.mp4", "b.png", "sub/a"]  # Same stem: extensions kept.
    assert [s.name for s in sources.expand([str(tree / "**" / "*.mp4")])] == ["b", "a"]
    assert sources.expand([str(tree / "b.png")])[0].is_image
    camera, stream = sources.expand(["0", "rtsp://example.org/live"])
    assert camera.live and camera.name == "camera0" and stream.live and not stream.is_image
    with pytest.raises(FileNotFoundError, match="missing.mp4: no such file"):
        sources.expand([str(tree / "missing.mp4")])
    with pytest.raises(FileNotFoundError, match="no video or image file matches"):
        sources.expand([str(tree / "*.avi")])


def test_live_reader_keeps_order_and_stops_at_max_frames(tree):
    """The threaded live reader (here on a file PyAV opens like a stream) yields frames in order."""
    frames = list(sources._live_frames(str(tree / "b.mp4"), max_frames=2))
    assert [f.source_index for f in frames] == [0, 1]
    assert frames[0].image.shape == (240, 320, 3) and frames[1].time == pytest.approx(0.04)
    expected = [f.image for f in decode.decode(str(tree / "b.mp4"), fps=0)][:2]
    for got, want in zip(frames, expected):
        np.testing.assert_array_equal(got.image, want)

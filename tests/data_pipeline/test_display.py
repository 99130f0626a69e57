"""Frames as players show them: display matrices, sample aspect ratios, interlacing, resolution changes.

Clips of a real face (skimage's astronaut) are stored as phones store portrait
video (frames turned, a display matrix saying how to turn them back) and as
anamorphic cameras do (width halved, sample aspect ratio 2:1), written with
PyAV's own display-matrix support; decoding and the whole preprocessing
command must give the plain clip's frames and crops.
"""

import fractions
import json
import os
import subprocess
import sys
import types

import cv2
import numpy as np
import pytest
import real_videos

from data_pipeline.media import decode

from data_pipeline.media import display as display_lib

STORED = {"plain": {}, "rot90": {"rotation": 90}, "rot180": {"rotation": 180}, "rot270": {"rotation": 270},
          "anamorphic": {"sample_aspect_ratio": 2}}


def _face_frames(count=12):
    return real_videos.moving_face_frames(count)  # 240x320, the astronaut drifting right.


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


@pytest.mark.parametrize("rotation,flip,sar", [(90, False, 1), (180, False, 1), (270, False, 1), (0, True, 1),
                                               (90, True, 1), (0, False, 2), (270, False, 2)])
def test_stored_turned_or_anamorphic_frames_decode_as_displayed(tmp_path, rotation, flip, sar):
    frames = _face_frames(3)
    path = str(tmp_path / "clip.mp4")
    decode.write_video(path, frames, fps=25, rotation=rotation, flip=flip, sample_aspect_ratio=sar)
    decoded = list(decode.decode(path, fps=0))
    assert len(decoded) == 3
    for frame, truth in zip(decoded, frames):
        assert frame.image.shape == truth.shape
        assert _ncc(frame.image, truth) > 0.97
        assert (frame.display.rotation, frame.display.flip, frame.display.sample_aspect_ratio) == (rotation, flip, sar)
    stored_width = 320 // sar if rotation in (0, 180) else 240 // sar
    assert decoded[0].display.stored_size == ((stored_width, 240) if rotation in (0, 180) else (stored_width, 320))
    log = display_lib.DisplayLog()
    for frame in decoded:
        log.add(frame)
    assert log.report() == {"rotation": rotation, "flip": flip, "sample_aspect_ratio": f"{sar}:1",
                            "stored_size": list(decoded[0].display.stored_size), "frames": 3,
                            "corrected_frames": 3}


def test_opencv_fallback_turns_and_widens(tmp_path):
    """OpenCV turns by the display matrix itself; the sample aspect ratio is ours to apply."""
    truth = _face_frames(1)[0]
    path = str(tmp_path / "clip.mp4")
    decode.write_video(path, [truth] * 2, fps=25, rotation=90, sample_aspect_ratio=2)
    (image, display), _, _ = next(decode._opencv_frames(path))
    assert image.shape == truth.shape and _ncc(image, truth) > 0.97
    assert (display.rotation, display.sample_aspect_ratio) == (90, 2)


def test_interlaced_frames_are_deinterlaced_and_reported(tmp_path):
    frames = _face_frames(3)
    path = str(tmp_path / "clip.mp4")
    decode.write_video(path, frames, fps=25, interlaced=True)
    decoded = list(decode.decode(path, fps=0))
    assert all(f.display.deinterlaced for f in decoded)
    assert all(_ncc(f.image, t) > 0.97 for f, t in zip(decoded, frames))
    log = display_lib.DisplayLog()
    for frame in decoded:
        log.add(frame)
    assert log.report()["deinterlaced_frames"] == 3


def test_resolution_change_is_fitted_into_the_first_size():
    """A stream that switches resolution keeps one pixel space: later frames are scaled (aspect kept)
    and padded into the first frame's displayed size, and counted."""
    displayer = display_lib.Displayer()
    first, display = displayer(np.full((90, 160, 3), 50, np.uint8))
    assert display is None and first.shape == (90, 160, 3)
    smaller, display = displayer(np.full((60, 60, 3), 200, np.uint8))
    assert smaller.shape == (90, 160, 3) and display.fitted and display.stored_size == (60, 60)
    assert smaller[:, 35:125].min() == 200 and smaller[:, :35].max() == 0  # Centred, black bars.
    # A time chunk's displayer learns the size from the first frame it skips (decoded, not converted).
    chunk = display_lib.Displayer()
    stored = types.SimpleNamespace(width=80, height=90, side_data={})
    chunk.skip(stored, types.SimpleNamespace(sample_aspect_ratio=fractions.Fraction(2), codec_context=None))
    assert chunk.size == (160, 90)
    log = display_lib.DisplayLog()
    log.add(decode.Frame(first, 0, 0.0, 0.0))
    log.add(decode.Frame(smaller, 1, 0.04, 0.04, display))
    assert log.report()["fitted_frames"] == 1 and log.report()["stored_sizes"] == [[60, 60]]


def test_orientation_of_display_matrices():
    """FFmpeg's matrix (16.16 fixed point, x' = a x + c y, y' = b x + d y, y down): a clockwise turn
    takes the right (1, 0) to down (0, 1), as the mp4 `rotate` tag 90 of a portrait phone clip."""
    one = 65536
    assert display_lib.orientation([0, one, 0, -one, 0, 0, 0, 0, 1 << 30]) == (90, False)
    assert display_lib.orientation([0, -one, 0, one, 0, 0, 0, 0, 1 << 30]) == (270, False)
    assert display_lib.orientation([-one, 0, 0, 0, -one, 0, 0, 0, 1 << 30]) == (180, False)
    assert display_lib.orientation([-one, 0, 0, 0, one, 0, 0, 0, 1 << 30]) == (0, True)
    assert display_lib.orientation([one, 0, 0, 0, one, 0, 0, 0, 1 << 30]) == (0, False)


@pytest.fixture(scope="module")
def displayed_run(tmp_path_factory):
    """`python -m data_pipeline.preprocess` (two workers) over the same real-face clip stored five ways."""
    root = tmp_path_factory.mktemp("display")
    clips = root / "clips"
    clips.mkdir()
    frames = _face_frames()
    for name, stored in STORED.items():
        decode.write_video(str(clips / f"{name}.mp4"), frames, fps=30, **stored)
    out = root / "out"
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="2", AFFNET_TEST_FRESH_PYTHON="1")  # No warning, start-up included.
    done = subprocess.run([sys.executable, "-m", "data_pipeline.preprocess", "--input", str(clips), "--output",
                           str(out), "--workers", "2", "--noprogress"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return out, done.stderr


def _written(out, name):
    from data_pipeline.records import schema

    (context, sequence), = schema.read_videos(str(out / f"{name}.mp4.tfrecord"))
    crops = [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b in sequence[schema.IMAGE].numpy()]
    report = json.loads((out / f"{name}.mp4.report.json").read_text())
    return context, sequence, crops, report


@pytest.mark.parametrize("name", [n for n in STORED if n != "plain"])
def test_preprocess_writes_the_plain_clips_crops_for_turned_and_anamorphic_clips(displayed_run, name):
    from data_pipeline.records import schema

    out, _ = displayed_run
    plain_context, plain_sequence, plain_crops, _ = _written(out, "plain")
    context, sequence, crops, report = _written(out, name)
    assert (int(context[schema.FRAME_WIDTH]), int(context[schema.FRAME_HEIGHT])) == (320, 240)
    assert abs(len(crops) - len(plain_crops)) < 0.05 * len(plain_crops)
    by_index = dict(zip(plain_sequence[schema.FRAME_INDEX].numpy().tolist(), plain_crops))
    matched = [(crop, by_index[i]) for crop, i in zip(crops, sequence[schema.FRAME_INDEX].numpy().tolist())
               if i in by_index]
    assert len(matched) >= 0.95 * len(plain_crops)
    assert min(_ncc(a, b) for a, b in matched) >= 0.9
    expected = {**STORED[name]}
    assert report["display"]["rotation"] == expected.get("rotation", 0)
    assert report["display"]["sample_aspect_ratio"] == f"{expected.get('sample_aspect_ratio', 1)}:1"


def test_plain_clip_reports_no_correction_and_the_run_prints_no_warning(displayed_run):
    out, stderr = displayed_run
    assert "display" not in _written(out, "plain")[3]
    assert "warning" not in stderr.lower(), stderr

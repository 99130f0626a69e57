"""One video in time chunks on several processes: same frames, same persons as one pass."""

import subprocess
import sys

import cv2
import numpy as np
import pytest

from data_pipeline.faces import chunks, identity
from data_pipeline.media import decode
from data_pipeline.synthetic import face_scenes
from data_pipeline.jobs import preprocess


@pytest.fixture(scope="module")
def talk(tmp_path_factory):
    """4 s of 176x144 at 25 fps (resampled to 30), a real 55 px face swaying and rotating."""
    frames, truths = face_scenes.talking_head(100, size=(144, 176), face_px=55, angle_sweep=20, seed=3)
    path = str(tmp_path_factory.mktemp("chunks") / "talk.mp4")
    decode.write_video(path, frames, fps=25)
    return path, truths


def test_spans_partition_the_frames_of_a_whole_decode(talk):
    path, _ = talk
    spans = chunks.plan(path, cores=3, min_seconds=1.0)
    assert len(spans) == 3 and spans[0][0] == 0.0 and spans[-1][1] is None
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    whole = [(f.source_index, f.time) for f in decode.decode(path, 30)]
    parts = [(f.source_index, f.time) for start, stop in spans for f in decode.decode(path, 30, start, stop)]
    assert parts == whole and len(whole) == 120
    last = list(decode.decode(path, 30, spans[-1][0]))
    assert np.array_equal(last[0].image, next(f.image for f in decode.decode(path, 30) if f.time == last[0].time))


def test_short_videos_images_and_one_core_are_not_split(talk, tmp_path):
    path, _ = talk
    assert chunks.plan(path, cores=2) == [(0.0, None)]  # 4 s < 2 x MIN_CHUNK_SECONDS.
    assert chunks.plan(path, cores=1, min_seconds=1.0) == [(0.0, None)]
    image = str(tmp_path / "a.png")
    assert cv2.imwrite(image, np.zeros((8, 8, 3), np.uint8))
    assert chunks.plan(image, cores=4, min_seconds=0.1) == [(0.0, None)]


def test_chunked_video_writes_the_frames_one_pass_writes(talk, monkeypatch):
    path, _ = talk
    single, one = preprocess.process_video(path)
    monkeypatch.setattr(chunks, "MIN_CHUNK_SECONDS", 1.5)
    split, two = preprocess.process_video(path, cores=2)
    assert one["chunks"] == 1 and two["chunks"] == 2
    assert two["frames_decoded"] == one["frames_decoded"] == 120
    assert len(split) == len(single) == 1
    assert np.array_equal(split[0].frame_index, single[0].frame_index)
    assert np.array_equal(split[0].timestamp, single[0].timestamp)
    assert two["detections_run"] >= one["detections_run"]  # Each chunk starts with a detection.
    points = [r.landmarks.reshape(-1, 68, 2) for r in (single[0], split[0])]
    moved = np.abs(points[0] - points[1]).mean(axis=(1, 2))  # Crop pixels (96x96 crops).
    assert np.median(moved) < 0.05 and moved.max() < 3.0, moved.max()


def test_absorb_matches_a_later_chunks_persons_by_descriptor():
    bank = identity.IdentityBank(max_distance=0.6)
    a, b, c = np.eye(3)[0] * 1.0, np.eye(3)[1] * 1.0, np.eye(3)[2] * 1.0
    assert bank.absorb([a * 2, b], [2, 1]) == [0, 1]  # Empty bank: ids in order.
    # The later chunk saw b first, then a new person c, then a.
    assert bank.absorb([b + 0.1, c, a * 3], [1, 1, 3]) == [1, 2, 0]
    assert bank.persons == 3
    sums, counts = bank.state()
    assert counts == [5, 2, 1] and np.allclose(sums[0] / counts[0], a)


# A fresh interpreter: this test process may already run a forkserver (started
# by earlier tests without the preload), and a started server ignores it.
_CHECK_PRELOAD = """
import multiprocessing

def loaded_at_start():
    from data_pipeline.faces import frontend
    model = frontend._MODELS.get("landmarks")
    return model is not None and model._model is not None

if __name__ == "__main__":
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["data_pipeline.faces.landmark_preload"])
    with context.Pool(1) as pool:
        print(pool.apply(loaded_at_start))
"""


def test_chunk_processes_fork_with_the_shape_predictor_already_loaded(tmp_path):
    script = tmp_path / "check_preload.py"
    script.write_text(_CHECK_PRELOAD)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "True"

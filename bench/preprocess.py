"""Throughput of offline preprocessing (decode + detect + landmarks + align + write).

Makes 640x360 videos at 25 fps (a real face, scikit-image's bundled
astronaut.png, pasted and moving; resampled to 30 fps by the pipeline), then
prints JSON: frames/s for one worker and for all workers, wall clock and
inside the workers (without pool start-up). Parallelism is across inputs, so
the bench writes 2 videos per worker.

  python bench/preprocess.py [--frames 60] [--workers N] [--detector hog]
"""

import argparse
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from data_pipeline import decode, preprocess  # noqa: E402


def make_video(path: str, frames: int, seed: int) -> None:
    from skimage import data

    face = data.astronaut()[40:240, 130:320]
    rng = np.random.default_rng(seed)
    background = rng.integers(60, 120, size=(360, 640, 3), dtype=np.uint8)
    video = []
    for k in range(frames):
        frame = background.copy()
        x = 40 + (7 * k) % 400
        y = 60 + int(20 * np.sin(k / 8))
        frame[y:y + 200, x:x + 190] = face
        video.append(frame)
    decode.write_video(path, video, fps=25)


def timed_run(inputs: str, workers: int, options) -> dict:
    out = tempfile.mkdtemp(prefix="bench_out_")
    try:
        start = time.perf_counter()
        report = preprocess.preprocess(inputs, out, options, workers=workers, progress=None)
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(out)
    totals = report["totals"]
    busy = sum(e["seconds"] for e in report["inputs"])  # Time inside process_video, all workers.
    return {"workers": workers, "videos": totals["inputs"], "frames": totals["frames_decoded"],
            "frames_written": totals["frames_written"], "seconds": round(seconds, 2),
            "frames_per_second": round(totals["frames_decoded"] / seconds, 1),
            # Excludes pool start-up (TensorFlow import, dlib model load: ~10 s per run),
            # which long real inputs amortise.
            "frames_per_second_in_workers": round(totals["frames_decoded"] * workers / busy, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=60, help="source frames per video (25 fps)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--detector", default="hog", choices=("hog", "cnn"))
    args = parser.parse_args()
    options = preprocess.PreprocessOptions(detector=args.detector)
    root = tempfile.mkdtemp(prefix="bench_in_")
    try:
        for i in range(2 * args.workers):
            make_video(os.path.join(root, f"video{i}.mp4"), args.frames, seed=i)
        # Warm-up: load dlib models in this process so the one-worker number is steady state.
        preprocess.process_video(os.path.join(root, "video0.mp4"), options)
        single = preprocess.process_video(os.path.join(root, "video0.mp4"), options)[1]
        results = {
            "video": "640x360, 25 fps source -> 30 fps",
            "detector": args.detector,
            "cpu_count": os.cpu_count(),
            "in_process": {"frames": single["frames_decoded"], "seconds": single["seconds"],
                           "frames_per_second": round(single["frames_decoded"] / single["seconds"], 1)},
            "one_worker": timed_run(root, 1, options),
            "all_workers": timed_run(root, args.workers, options),
        }
    finally:
        shutil.rmtree(root)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

"""Throughput of the Beam preprocessing pipeline against the local tool, in the same run.

Same inputs as bench/preprocess.py (640x360 videos at 25 fps, a real face
pasted and moving, resampled to 30 fps). Runs the local tool
(`preprocess.preprocess`, process pool) and the Beam pipeline
(`beam_pipeline.beam_preprocess`, DirectRunner multi-processing) with 1 and
2 workers each into fresh output folders, and prints JSON: wall-clock
frames/s (everything: pool or Beam worker start-up, TF import, dlib model
loading) and frames/s inside the per-video function.

  python bench/beam_preprocess.py [--videos 4] [--frames 60] [--workers 1,2]
"""

import argparse
import json
import os
import shutil
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import preprocess as preprocess_bench  # noqa: E402  bench/preprocess.py: the same test videos.

from data_pipeline.jobs import beam_pipeline  # noqa: E402
from data_pipeline.jobs import preprocess


def timed_run(engine: str, inputs: str, workers: int, options) -> dict:
    out = tempfile.mkdtemp(prefix="bench_out_")
    try:
        start = time.perf_counter()
        if engine == "local":
            report = preprocess.preprocess(inputs, out, options, workers=workers, progress=None)
        else:
            report = beam_pipeline.beam_preprocess(inputs, out, options, workers=workers, progress=None)
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(out)
    totals = report["totals"]
    assert totals["ok"] == totals["inputs"], totals
    busy = sum(e["seconds"] for e in report["inputs"])  # Time inside process_video, all workers.
    return {"engine": engine, "workers": workers, "videos": totals["inputs"], "frames": totals["frames_decoded"],
            "frames_written": totals["frames_written"], "seconds": round(seconds, 2),
            "frames_per_second": round(totals["frames_decoded"] / seconds, 1),
            "frames_per_second_in_workers": round(totals["frames_decoded"] * workers / busy, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=60, help="source frames per video (25 fps)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--detector", default="hog", choices=("hog", "cnn"))
    args = parser.parse_args()
    options = preprocess.PreprocessOptions(detector=args.detector)
    root = tempfile.mkdtemp(prefix="bench_in_")
    try:
        for i in range(args.videos):
            preprocess_bench.make_video(os.path.join(root, f"video{i}.mp4"), args.frames, seed=i)
        runs = [timed_run(engine, root, int(w), options)
                for w in args.workers.split(",") for engine in ("local", "beam")]
    finally:
        shutil.rmtree(root)
    print(json.dumps({"video": "640x360, 25 fps source -> 30 fps", "detector": args.detector,
                      "cpu_count": os.cpu_count(), "load_average": os.getloadavg(), "runs": runs}, indent=1))


if __name__ == "__main__":
    main()

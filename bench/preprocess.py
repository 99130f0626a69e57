"""Throughput and accuracy of offline preprocessing, new front-end against per-frame HOG, same run.

Makes `--seconds` of 640x360 25 fps talking-head video per input (a real
face, scikit-image's astronaut, pasted with `data_pipeline.synthetic.face_scenes`:
swaying, nodding, rotating +-15 degrees and turning +-25 degrees, over a real
background), resampled to 30 fps by the pipeline. For each configuration it
runs the whole CLI (`python -m data_pipeline.preprocess`: decode,
detect/track, 68 landmarks, alignment, JPEG, TFRecord) in a subprocess and
prints JSON: frames/s wall clock (with start-up: Python, imports, model
loads) and inside the workers (report.json's per-input seconds), frames
per CPU-second of the whole CLI (the figure that does not depend on other
jobs sharing the machine; one-worker runs only), the
recall (frames written whose landmarks lie on the true face) and the landmark
error against the ground truth (mean point error / inter-ocular distance).

With one input and the CLI's default --workers (every core), the video is
cut into time chunks processed in parallel (`data_pipeline.faces.chunks`); the
"--workers 1" row is the same front-end in one process.

  python bench/preprocess.py [--seconds 60] [--inputs 1] [--workers N]
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import machine  # noqa: E402
from data_pipeline.faces import align
from data_pipeline.media import decode
from data_pipeline.synthetic import face_scenes
from data_pipeline.records import schema  # noqa: E402

CONFIGS = {
    "default (blazeface, detect every 10, track by landmarks)": [],
    "default in one process (--workers 1: no time chunks)": ["--workers", "1"],
    "per-frame HOG, upsample 0 (before)": ["--detector", "hog", "--upsample", "0", "--detect_every", "1"],
}


def make_video(path: str, seconds: float, seed: int):
    """Writes the video; returns the true (68, 2) landmarks of each source frame."""
    frames, truths = face_scenes.talking_head(int(25 * seconds), size=(360, 640), face_px=120,
                                              angle_sweep=15, yaw_sweep=25, seed=seed)
    decode.write_video(path, frames, fps=25)
    return truths


def accuracy(record_path: str, truths) -> dict:
    """Recall and landmark error of the written frames against the ground truth."""
    errors = []
    for _, sequence in schema.read_videos(record_path):
        index = sequence[schema.FRAME_INDEX].numpy()
        landmarks = sequence[schema.LANDMARKS].numpy().reshape(-1, 68, 2)
        matrices = sequence[schema.ALIGNMENT].numpy().reshape(-1, 2, 3)
        for k, points, matrix in zip(index, landmarks, matrices):
            inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]
            errors.append(face_scenes.landmark_error(align.apply_transform(inverse, points), truths[k]))
    errors = np.array(errors)
    on_face = errors < 0.3  # Landmarks on the true face (not a false detection elsewhere).
    return {"written": int(len(errors)), "on_true_face": int(on_face.sum()),
            "mean_landmark_error": round(float(errors[on_face].mean()), 4) if on_face.any() else None,
            "p95_landmark_error": round(float(np.percentile(errors[on_face], 95)), 4) if on_face.any() else None}


def run_cli(inputs: str, workers: int, flags) -> dict:
    """Runs the CLI into a new folder -> (timings, {input name: record path}, folder)."""
    out = tempfile.mkdtemp(prefix="bench_out_")
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "data_pipeline.preprocess", "--input", inputs, "--output", out,
                    "--workers", str(workers), *flags], check=True, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    with open(os.path.join(out, "report.json")) as f:
        report = json.load(f)
    records = {os.path.basename(e["input"]): e["output"] for e in report["inputs"]}
    totals = report["totals"]
    busy = sum(e["seconds"] for e in report["inputs"])
    result = {"frames": totals["frames_decoded"], "frames_written": totals["frames_written"],
              "seconds_wall": round(seconds, 2),
              "frames_per_second_wall": round(totals["frames_decoded"] / seconds, 1),
              "frames_per_second_in_workers": round(totals["frames_decoded"] * min(workers, len(records)) / busy, 1),
              # CPU time of the whole CLI (all threads and workers, start-up included): the
              # figure that does not depend on what else shares the machine.
              # (Pool workers are children of the forkserver, which getrusage does not
              # count: only a one-worker run has this figure.)
              "cpu_seconds": round(cpu, 2) if workers == 1 else None,
              "frames_per_cpu_second": round(totals["frames_decoded"] / cpu, 1) if workers == 1 else None,
              "detections_run": sum(e.get("detections_run", 0) for e in report["inputs"])}
    return result, records, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="video length per input")
    parser.add_argument("--inputs", type=int, default=1)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="as the CLI's default: one input is cut into this many time chunks")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="bench_in_")
    truths = {}
    try:
        for i in range(args.inputs):
            truths[f"talk{i}.mp4"] = make_video(os.path.join(root, f"talk{i}.mp4"), args.seconds, seed=i)
        results = {"video": f"{args.inputs} x {args.seconds:g} s, 640x360, 25 fps source -> 30 fps",
                   "machine_before": machine.describe(), "configs": {}}
        for name, flags in CONFIGS.items():
            result, copies, out = run_cli(root, args.workers, flags)
            try:
                per_input = [accuracy(copies[video], truths[video]) for video in truths]
            finally:
                shutil.rmtree(out)
            written = sum(p["on_true_face"] for p in per_input)
            result["recall"] = round(written / result["frames"], 4)  # Output (30 fps) frames.
            result["mean_landmark_error"] = round(float(np.mean(
                [p["mean_landmark_error"] for p in per_input if p["mean_landmark_error"] is not None])), 4)
            result["p95_landmark_error"] = max(p["p95_landmark_error"] or 0 for p in per_input)
            result["written_on_true_face"] = written
            results["configs"][name] = result
            print(name, json.dumps(result), file=sys.stderr, flush=True)
        results["machine_after"] = machine.describe()
    finally:
        shutil.rmtree(root)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

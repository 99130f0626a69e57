"""Recall and speed of the face detectors on the real-face scene set (`data_pipeline.synthetic.face_scenes`).

Recall: both people at face sizes 30-80 px in 176x144 and 640x360 frames,
frontal, rotated +-30 and 45 degrees in plane, turned +-40 and 60 degrees
(perspective), over a real-photo background; a face counts as found when a detection's centre lies
within 0.35 box sides of the true face's and its size is within 2x. Speed:
wall and CPU ms/frame at 176x144 and 640x360 (a 50 px and a 100 px face),
median of `--repeats` runs after a warm-up, one thread. Prints JSON.

  python bench/detectors.py [--detectors blazeface,hog,...] [--repeats 20]
"""

import argparse
import itertools
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import machine  # noqa: E402
from data_pipeline.faces import detect
from data_pipeline.synthetic import face_scenes  # noqa: E402

SIZES = (30, 40, 50, 60, 80)
POSES = ((0, 0), (30, 0), (-30, 0), (0, 40), (0, -40), (45, 0), (0, 60))  # (in-plane angle, yaw), degrees.
FRAMES = ((144, 176), (360, 640))  # (height, width)


def found(detections, truth) -> bool:
    x0, y0, x1, y1 = detect.box_from_landmarks(truth)
    side, centre = x1 - x0, np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    for d in detections:
        b = d.box
        width = b[2] - b[0]
        if (np.linalg.norm(np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2]) - centre) < 0.35 * side
                and 0.5 < width / side < 2.0):
            return True
    return False


def scene_set():
    """(tag, frame, truth) for every frame size, person, face size and pose."""
    scenes = []
    for k, ((height, width), person, size, (angle, yaw)) in enumerate(
            itertools.product(FRAMES, face_scenes.PEOPLE, SIZES, POSES)):
        base = face_scenes.background(height, width, seed=k)
        centre = (width * (0.3 + 0.4 * (k % 3) / 2), height / 2)
        frame, (truth,) = face_scenes.compose(base, [face_scenes.Placement(person, centre, size, angle, yaw)])
        scenes.append(((width, size, angle, yaw), frame, truth))
    return scenes


def speed(detector, frame, repeats: int) -> dict:
    """Median wall and CPU milliseconds per call (CPU time does not grow when other jobs share the machine)."""
    detector(frame)
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        detector(frame)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"wall_ms": round(1000 * float(np.median(wall)), 2), "cpu_ms": round(1000 * float(np.median(cpu)), 2)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--detectors", default="blazeface,blazeface_short,mtcnn,hog,hog_up0,cnn")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    scenes = scene_set()
    small = face_scenes.compose(face_scenes.background(144, 176), [face_scenes.Placement("astronaut", (88, 72), 50)])[0]
    large = face_scenes.compose(face_scenes.background(360, 640), [face_scenes.Placement("astronaut", (320, 180), 100)])[0]
    results = {"machine": machine.describe(), "scenes": len(scenes), "detectors": {}}
    for name in args.detectors.split(","):
        kind, upsample = ("hog", 0) if name == "hog_up0" else (name, detect.AUTO_UPSAMPLE)
        detector = detect.FaceDetector(kind, upsample)
        hits = {"all": [], "frontal": [], "rotated_30": [], "turned_40": [], "rotated_45": [], "turned_60": [],
                "176x144": [], "640x360": []}
        by_size = {s: [] for s in SIZES}
        for (width, size, angle, yaw), frame, truth in scenes:
            ok = found(detector(frame), truth)
            hits["all"].append(ok)
            hits["176x144" if width == 176 else "640x360"].append(ok)
            hits[f"rotated_{abs(angle)}" if angle else f"turned_{abs(yaw)}" if yaw else "frontal"].append(ok)
            by_size[size].append(ok)
        repeats = max(2, args.repeats // 10) if kind == "cnn" else args.repeats
        results["detectors"][name] = {
            "recall": {k: round(float(np.mean(v)), 3) for k, v in hits.items()},
            "recall_by_face_px": {str(k): round(float(np.mean(v)), 3) for k, v in by_size.items()},
            "per_frame_176x144": speed(detector, small, repeats),
            "per_frame_640x360": speed(detector, large, repeats),
        }
        print(name, json.dumps(results["detectors"][name]), flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

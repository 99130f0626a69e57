"""68-point landmark accuracy per yaw and detector path, next to plain dlib (`data_pipeline.synthetic.landmark_accuracy`).

Both real photographs (astronaut, Grace Hopper) turned 0, 15, 30, 45 degrees
(both ways) at face sizes 60, 90, 120 px in 640x360 frames; references are
dlib HOG + shape predictor on the original photos, warped with the face. Per
yaw and path: mean NME (mean point error / outer-eye-corner distance), its
maximum, faces missed, and the spread (RMS, crop pixels) of the true eye centres
in the aligned 96x96 crop (similarity-aligned as [MC], the default; and
affine-aligned as [FBN], `--alignment affine`); "dlib_best" is plain dlib's better detector (HOG or
MMOD) per face, and "minus_dlib_best_same_faces" the mean NME difference to it
on the faces both found. Also the cost of the pipeline's landmark work (CPU ms per
detected face and per tracked frame; detector excluded, median and mean) and the
share of detections whose fit was rechecked from shifted starts. Prints JSON.

  python bench/landmarks.py [--detectors blazeface,blazeface_short,mtcnn,hog,cnn] [--angles 0]
"""

import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import machine  # noqa: E402
from data_pipeline.faces import detect  # noqa: E402
from data_pipeline.synthetic import landmark_accuracy  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--detectors", default=",".join(detect.DETECTORS))
    parser.add_argument("--angles", default="0", help="in-plane rotations (degrees, comma-separated)")
    parser.add_argument("--face_px", default=",".join(str(s) for s in landmark_accuracy.FACE_PX))
    parser.add_argument("--plain", default=",".join(landmark_accuracy.PLAIN), help="plain dlib paths to run beside")
    parser.add_argument("--refits", type=int, default=None, help="track.FaceFollower refits (default: its own)")
    parser.add_argument("--mirror_from_stretch", type=float, default=None,
                        help="track.FaceFollower mirror_from_stretch (default: its own; 1 always, 9 never)")
    parser.add_argument("--recheck_disagreement", type=float, default=None,
                        help="track.FaceFollower recheck_disagreement (default: its own; inf never rechecks)")
    args = parser.parse_args()
    options = {k: v for k, v in (("refits", args.refits), ("mirror_from_stretch", args.mirror_from_stretch),
                                 ("recheck_disagreement", args.recheck_disagreement)) if v is not None}
    cv2.setNumThreads(1)
    before = machine.describe()
    scenes = landmark_accuracy.scenes(face_px=[float(s) for s in args.face_px.split(",")],
                                      angles=[float(a) for a in args.angles.split(",")])
    timing = {}
    rows = landmark_accuracy.evaluate(scenes, args.detectors.split(","), timing=timing,
                                     plain=[p for p in args.plain.split(",") if p], **options)
    table = landmark_accuracy.summarise(rows)
    # [FBN]'s affine alignment (`--alignment affine`) of the same fits: only the crop's eye centres change.
    affine = {yaw: {path: entry[path]["eye_spread_px"] for path in entry}
              for yaw, entry in landmark_accuracy.summarise(rows, "affine").items()}
    paths = [p for p in rows[0]["nme"] if "/" in p]
    costs = {k: v for k, v in timing.items() if k.startswith("per_")}
    results = {
        "machine": before, "load_average_after": machine.describe()["load_average"],
        "follower_options": options, "scenes": len(scenes),
        "nme_by_yaw": table,
        "eye_spread_px_affine_by_yaw": affine,
        "worst_minus_dlib_best": {p: round(landmark_accuracy.worst_against_plain(rows, p)[0], 4) for p in paths},
        "landmark_cpu_ms": {k: round(1000 * float(np.median(v)), 2) for k, v in costs.items()},
        "landmark_cpu_ms_mean": {k: round(1000 * float(np.mean(v)), 2) for k, v in costs.items()},
        "rechecked_detections": round(float(np.mean(np.asarray(timing["rechecked"]) > 0)), 3),
    }
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

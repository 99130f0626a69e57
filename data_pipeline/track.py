"""Detect rarely, track always: faces followed by their 68 landmarks between detections.

As in OpenFace and most face trackers, the previous frame's 68 points give
the next frame's face box (`detect.box_from_landmarks`), and dlib's shape
predictor fits the points in it, so a detector runs only every
`detect_every` frames, on a scene cut (the frame's 16x16 grey thumbnail
changes by more than `cut_threshold` grey levels on average), when no face is
followed, or when a face's fit degrades (its shape moved by more than
`max_shape_change` inter-ocular distances after removing a similarity
transform, or its box left the frame). `detect_every=1` is per-frame
detection: landmarks on every detector box, as before tracking existed.

Detector boxes other than dlib HOG's are converted to the box the shape
predictor was trained on by a second fit (`detect.box_from_landmarks` of the
first fit's points), so landmarks do not depend on the detector.

Each followed face carries a person id from `identity.IdentityBank` (dlib's
ResNet face descriptor, computed at detections) when one is given, so a
person keeps one id across occlusions, gaps and shot cuts; otherwise ids
number the face's appearances.
"""

import dataclasses
from typing import List, Optional

import cv2
import numpy as np

from data_pipeline import align, detect


@dataclasses.dataclass
class TrackedFace:
    """One face in one frame: its person id, dlib-style box and (68, 2) landmarks."""

    person: int
    box: tuple
    points: np.ndarray
    detected: bool  # True on frames where the detector (not tracking) found it.


def _shape_change(previous: np.ndarray, current: np.ndarray) -> float:
    """Residual of `current` against `previous` after the best similarity map, in inter-ocular units."""
    matrix = align.similarity_transform(previous, current)
    residual = np.linalg.norm(align.apply_transform(matrix, previous) - current, axis=1).mean()
    return float(residual / max(1e-6, np.linalg.norm(current[36] - current[45])))


def _thumbnail(image: np.ndarray) -> np.ndarray:
    return cv2.resize(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32)


class FaceFollower:
    """Per frame: the faces, by detection every `detect_every` frames and landmark tracking in between."""

    def __init__(self, detector: detect.FaceDetector, landmarker: detect.LandmarkDetector,
                 detect_every: int = 10, identities=None, cut_threshold: float = 20.0,
                 max_shape_change: float = 0.12, match_iou: float = 0.3):
        if int(detect_every) != detect_every or detect_every < 1:
            raise ValueError(f"detect_every must be a positive integer, got {detect_every!r}")
        self.detector = detector
        self.landmarker = landmarker
        self.detect_every = int(detect_every)
        self.identities = identities
        self.cut_threshold = cut_threshold
        self.max_shape_change = max_shape_change
        self.match_iou = match_iou
        self._faces: List[TrackedFace] = []
        self._since_detection = 0
        self._previous_thumbnail: Optional[np.ndarray] = None
        self._next_anonymous = 0
        self.detections_run = 0
        self.scene_cuts = 0

    def _fit(self, image: np.ndarray, box) -> Optional[np.ndarray]:
        try:
            points = self.landmarker(image, box)
        except ValueError:  # Empty box.
            return None
        return points if np.all(np.isfinite(points)) else None

    def _detect(self, image: np.ndarray, cut: bool) -> List[TrackedFace]:
        self.detections_run += 1
        self._since_detection = 0
        faces = []
        for detection in self.detector(image):
            points = self._fit(image, detection.box)
            if points is not None and self.detector.kind != "hog":
                refined = self._fit(image, detect.box_from_landmarks(points))
                points = refined if refined is not None else points
            if points is None:
                continue
            box = detect.box_from_landmarks(points) if self.detector.kind != "hog" else detection.box
            faces.append(TrackedFace(-1, tuple(box), points, True))
        # Keep a followed face's person across re-detections (unless the shot changed).
        previous = [] if cut else list(self._faces)
        for face in sorted(faces, key=lambda f: -detect.Detection(f.box, 0).area):
            match = max(previous, key=lambda p: detect.iou(p.box, face.box), default=None)
            if match is not None and detect.iou(match.box, face.box) >= self.match_iou:
                previous.remove(match)
                face.person = match.person
                if self.identities is not None:
                    self.identities.observe(image, face.points, face.person)
            elif self.identities is not None:
                taken = {f.person for f in faces if f.person >= 0}
                face.person = self.identities.identify(image, face.points, exclude=taken)
            else:
                face.person = self._next_anonymous
                self._next_anonymous += 1
        return faces

    def _follow(self, image: np.ndarray) -> Optional[List[TrackedFace]]:
        """Every followed face in this frame, or None when one was lost (re-detect)."""
        height, width = image.shape[:2]
        followed = []
        for face in self._faces:
            points = self._fit(image, detect.box_from_landmarks(face.points))
            if points is None or _shape_change(face.points, points) > self.max_shape_change:
                return None
            box = detect.box_from_landmarks(points)
            centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            if not (0 <= centre_x < width and 0 <= centre_y < height):
                return None
            followed.append(TrackedFace(face.person, box, points, False))
        return followed

    def __call__(self, image: np.ndarray) -> List[TrackedFace]:
        thumbnail = _thumbnail(image)
        cut = (self._previous_thumbnail is not None
               and float(np.abs(thumbnail - self._previous_thumbnail).mean()) > self.cut_threshold)
        self.scene_cuts += int(cut)
        self._previous_thumbnail = thumbnail
        self._since_detection += 1
        faces = None
        if self._faces and not cut and self._since_detection < self.detect_every:
            faces = self._follow(image)
        if faces is None:
            faces = self._detect(image, cut)
        self._faces = faces
        return faces

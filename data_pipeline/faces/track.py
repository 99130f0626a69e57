"""Detect rarely, track always: faces followed by their 68 landmarks between detections.

As in OpenFace and most face trackers, the previous frame's 68 points give
the next frame's face box (`detect.box_from_landmarks`), and dlib's shape
predictor fits the points in it, so a detector runs only every
`detect_every` frames, on a scene cut (the frame's 16x16 grey thumbnail
changes by more than `cut_threshold` grey levels on average), when no face is
followed, or when a face's fit degrades (its shape moved by more than
`max_shape_change` inter-ocular distances after removing a similarity
transform, or its box left the frame), or when the face's own 8x8 thumbnail
changes by more than `max_appearance_change` (another face in its place: a
cut that leaves the background alone). `detect_every=1` is per-frame
detection: landmarks on every detector box, as before tracking existed.

Every detector's box is converted to the box the shape predictor was
trained on by refitting (`refits` times, `detect.box_from_landmarks` of the
previous fit's points), so landmarks do not depend on the detector. Each
refit, and each tracked frame, fits the face turned upright and frontal
(`upright_map`: rolled faces rotated, faces turned in yaw stretched back to a
frontal width) and averages the fits of the crop and of its mirror image
(`detect.LandmarkDetector` `mirror`). On real photos turned 0-45 degrees
(`landmark_accuracy`, README) this brings the error at 45 degrees from 0.076
to 0.057 inter-ocular, below plain dlib's 0.065-0.072. A detection whose
direct and mirror-image fits disagree (a box far from the predictor's, where
refits keep a wrong shape) is refitted from shifted starts and the most
self-consistent fit kept (`RECHECK_DISAGREEMENT`); tracked frames are not.
A detection whose eye keypoints (BlazeFace, MTCNN) are rolled is also fitted
in its box turned upright by them (`ROLL_FROM_DEGREES`): the fit in the
axis-aligned box of a face rolled by 30 degrees is far off.

Each followed face carries a person id from `identity.IdentityBank` (dlib's
ResNet face descriptor, computed at detections) when one is given, so a
person keeps one id across occlusions, gaps and shot cuts (a re-detected face
keeps its followed person only if the descriptor agrees); otherwise ids
number the face's appearances.
"""

import dataclasses
from typing import List, Optional

import cv2
import numpy as np

from data_pipeline.faces import detect


UPRIGHT_SIDE = 100.0  # Pixels: face box side in the crop the landmarks are fitted in.
# Width over height (root-mean-square spreads, eye line horizontal) of dlib's
# 68 points on a frontal face: 0.928 on the astronaut photo (Grace Hopper's,
# 0.937, is left for testing). `frontal_stretch` widens narrower faces to it.
FRONTAL_ASPECT = 0.93
DETECTION_REFITS = 2
# Tracked faces are fitted mirror-averaged (twice the landmark cost) when their
# `frontal_stretch` is at least this. 1.0, always: tracked points then match
# plain dlib's best on frontal faces (single fits: +0.003 NME) and beat it by
# 0.011 at 45 degrees (README). 1.15 mirrors only faces turned by about 30
# degrees or more, for about the single fit's cost on mostly frontal video.
MIRROR_FROM_STRETCH = 1.0
MAX_STRETCH = 1.5  # A face turned by about 48 degrees; beyond, the predictor's frontal prior is lost anyway.
# A detection's fit is checked against itself: its direct and mirror-image fits
# (`detect.mirror_disagreement`, in box sides) agree to a median 0.011 on the
# real photos turned 0-45 degrees of `landmark_accuracy`, and to 0.042-0.058
# where the detector's box was far off and the refits kept a wrong shape. Above
# RECHECK_DISAGREEMENT (a quarter of the detections there) the fit is redone
# from its points moved by a sixth of their box side (RECHECK_SHIFTS; 2 refits
# each) and the candidate whose fits agree best replaces it if they disagree
# under RECHECK_GAIN times as much as the first fit's (at 1.0, swaps on noise
# alone raised `hog` at 45 degrees from 0.056 to 0.068 in a trial). A fit in
# the wrong place that both fits agree on (0.018: a box a sixth of its side
# off, on a face turned 45 degrees) is caught this way too: its shifted
# candidate's fits disagree by 0.008.
RECHECK_DISAGREEMENT = 0.014
RECHECK_SHIFTS = ((1 / 6, 0.0), (-1 / 6, 0.0), (0.0, 1 / 6), (0.0, -1 / 6))
RECHECK_GAIN = 0.7
# A re-detected followed face is rechecked only if its fit disagrees by over
# RECHECK_REPEAT times its last detection's (after any recheck): a face whose
# fits always disagree a little (glasses) is not redone at every detection.
RECHECK_REPEAT = 1.5
# The first fit at a detection starts from the predictor's upright mean face in
# the detector's box, far off on a face rolled by 30 degrees; its eye line,
# which turns the refits upright, is then wrong too and the refits keep the
# error. Where the detector's eye keypoints (BlazeFace, MTCNN) are rolled by
# over ROLL_FROM_DEGREES, a fit in the box turned by their roll is refined too
# and kept on the recheck's terms (`FaceFollower._fit_detection`). Below,
# nothing changes: the short-range BlazeFace's keypoints are rolled by up to
# 10 degrees on upright faces. (Turning HOG's box by its first fit's eye line,
# up to twice, moved its NME on faces rolled 30 degrees by -0.004 to +0.008.)
ROLL_FROM_DEGREES = 12.0


@dataclasses.dataclass
class TrackedFace:
    """One face in one frame: its person id, dlib-style box and (68, 2) landmarks."""

    person: int
    box: tuple
    points: np.ndarray
    detected: bool  # True on frames where the detector (not tracking) found it.
    appearance: Optional[np.ndarray] = None  # `_face_thumbnail`, to notice a different face in its place.
    score: float = 1.0  # The detector's score of the detection this face was last found by.
    disagreement: Optional[float] = None  # `detect.mirror_disagreement` of its last detection's fit.


def _shape_change(previous: np.ndarray, current: np.ndarray) -> float:
    """Residual of `current` against `previous` after the best similarity map, in inter-ocular units.

    Closed form with complex numbers (z' = a z + b, a = scale and rotation):
    per frame this runs for every face, and an SVD (`align.similarity_transform`)
    cost more than the landmark fit's overhead.
    """
    p = previous[:, 0] + 1j * previous[:, 1]
    q = current[:, 0] + 1j * current[:, 1]
    p, q = p - p.mean(), q - q.mean()
    a = np.vdot(p, q) / max(1e-12, np.vdot(p, p).real)
    residual = np.abs(a * p - q).mean()
    return float(residual / max(1e-6, np.linalg.norm(current[36] - current[45])))


def _face_thumbnail(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """An 8x8 grey thumbnail of the face's box, normalised for brightness and contrast."""
    x0, y0, x1, y1 = (int(round(v)) for v in detect.box_from_landmarks(points))
    height, width = image.shape[:2]
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.zeros((8, 8), np.float32)
    grey = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (8, 8), interpolation=cv2.INTER_AREA).astype(np.float32)
    return (small - small.mean()) / max(1.0, small.std()) * 32.0  # Grey levels of a std-32 face.


def _thumbnail(image: np.ndarray) -> np.ndarray:
    """A 16x16 grey thumbnail (every 4th pixel first: this runs on every frame)."""
    grey = cv2.cvtColor(np.ascontiguousarray(image[::4, ::4]), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32)


def _eye_line_rotation(left, right) -> np.ndarray:
    """2x2 rotation taking the line from the image-left eye to the image-right eye to horizontal (y down)."""
    eyes = np.asarray(right, np.float64) - np.asarray(left, np.float64)
    roll = np.arctan2(eyes[1], eyes[0])
    return np.array([[np.cos(roll), np.sin(roll)], [-np.sin(roll), np.cos(roll)]])


def _roll_rotation(points: np.ndarray) -> np.ndarray:
    """2x2 rotation taking the eye line of (68, 2) points to horizontal."""
    return _eye_line_rotation(points[36:42].mean(0), points[42:48].mean(0))


def _rotated_box_map(box, rotation: np.ndarray):
    """(2x3 affine map from frame to crop pixels, crop side, the box in the crop) of `box` turned by the 2x2
    `rotation` about its centre: the crop holds 2 box sides, scaled to a box side of at most UPRIGHT_SIDE."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(1e-6, x1 - x0, y1 - y0)
    scale = min(1.0, UPRIGHT_SIDE / side)
    linear = scale * rotation
    size = int(np.ceil(2 * scale * side))
    shift = size / 2 - linear @ np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    half_w, half_h = scale * (x1 - x0) / 2, scale * (y1 - y0) / 2
    return np.hstack([linear, shift[:, None]]), size, (size / 2 - half_w, size / 2 - half_h,
                                                       size / 2 + half_w, size / 2 + half_h)


def frontal_stretch(points: np.ndarray) -> float:
    """Horizontal stretch (1 to MAX_STRETCH) giving (68, 2) points a frontal face's width.

    Width over height of the points, eye line horizontal (root-mean-square
    spreads about their mean), against FRONTAL_ASPECT: a face turned by yaw
    is foreshortened across (about cos(yaw)), not up and down.
    """
    upright = (points - points.mean(0)) @ _roll_rotation(points).T
    aspect = np.sqrt((upright[:, 0] ** 2).mean() / max(1e-12, (upright[:, 1] ** 2).mean()))
    return float(np.clip(FRONTAL_ASPECT / max(aspect, 1e-6), 1.0, MAX_STRETCH))


def upright_map(guess: np.ndarray):
    """(2x3 affine map from frame to crop pixels, crop side) for fitting near (68, 2) `guess`.

    Rotation by the eye line, then the frontal stretch across, then a scale
    bringing the dlib-style box side to at most UPRIGHT_SIDE (the predictor's
    features need no more, and the warp's cost grows with the crop); the box
    centre lands in the middle of a crop of 2 box sides.
    """
    linear = np.diag([frontal_stretch(guess), 1.0]) @ _roll_rotation(guess)
    centre = guess.mean(0)
    x0, y0, x1, y1 = detect.box_from_landmarks((guess - centre) @ linear.T)
    scale = min(1.0, UPRIGHT_SIDE / max(1e-6, x1 - x0))
    size = int(np.ceil(2 * scale * (x1 - x0)))
    linear = scale * linear
    shift = size / 2 - scale * np.array([(x0 + x1) / 2, (y0 + y1) / 2]) - linear @ centre
    return np.hstack([linear, shift[:, None]]), size


def _map_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(68, 2) points through a 2x3 affine map, as float32."""
    return (np.hstack([points, np.ones((len(points), 1), np.float32)]) @ matrix.T).astype(np.float32)


class FaceFollower:
    """Per frame: the faces, by detection every `detect_every` frames and landmark tracking in between."""

    def __init__(self, detector: detect.FaceDetector, landmarker: detect.LandmarkDetector,
                 detect_every: int = 10, identities=None, cut_threshold: float = 20.0,
                 max_shape_change: float = 0.12, max_appearance_change: float = 16.0, match_iou: float = 0.3,
                 refits: int = DETECTION_REFITS, mirror_from_stretch: float = MIRROR_FROM_STRETCH,
                 recheck_disagreement: float = RECHECK_DISAGREEMENT, recheck_gain: float = RECHECK_GAIN):
        if int(detect_every) != detect_every or detect_every < 1:
            raise ValueError(f"detect_every must be a positive integer, got {detect_every!r}")
        self.detector = detector
        self.landmarker = landmarker
        self.detect_every = int(detect_every)
        self.identities = identities
        self.cut_threshold = cut_threshold
        self.max_shape_change = max_shape_change
        self.max_appearance_change = max_appearance_change
        self.match_iou = match_iou
        self.refits = int(refits)
        self.mirror_from_stretch = float(mirror_from_stretch)
        self.recheck_disagreement = float(recheck_disagreement)
        self.recheck_gain = float(recheck_gain)
        self._faces: List[TrackedFace] = []
        self._since_detection = 0
        self._previous_thumbnail: Optional[np.ndarray] = None
        self._next_anonymous = 0
        self.detections_run = 0
        self.scene_cuts = 0
        self.rechecks = 0  # Detections whose fit was redone from shifted starts (`_fit_detection`).

    def _fit_pair(self, image: np.ndarray, box, mirror: bool):
        """`detect.LandmarkDetector.fit_pair` in `box`; None where the box is empty or a fit is not finite."""
        try:
            direct, mirrored = self.landmarker.fit_pair(image, box, mirror)
        except ValueError:  # Empty box.
            return None
        if not (np.all(np.isfinite(direct)) and (mirrored is None or np.all(np.isfinite(mirrored)))):
            return None
        return direct, mirrored

    def _fit(self, image: np.ndarray, box) -> Optional[np.ndarray]:
        """Landmarks in `box` (one fit, no mirror); None where it failed."""
        fits = self._fit_pair(image, box, mirror=False)
        return None if fits is None else fits[0]

    def _rolled_fit(self, image: np.ndarray, detection: detect.Detection) -> Optional[np.ndarray]:
        """Landmarks in the detector's box turned by its eye keypoints' roll (`_rotated_box_map`), where that
        roll exceeds ROLL_FROM_DEGREES; else (or where the fit failed) None."""
        if detection.eyes is None:
            return None
        rotation = _eye_line_rotation(*detection.eyes)
        if abs(np.degrees(np.arctan2(rotation[0, 1], rotation[0, 0]))) <= ROLL_FROM_DEGREES:
            return None
        matrix, size, crop_box = _rotated_box_map(detection.box, rotation)
        crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        points = self._fit(crop, crop_box)
        return None if points is None else _map_points(points, cv2.invertAffineTransform(matrix))

    def _fit_upright(self, image: np.ndarray, guess: np.ndarray, mirror: bool) -> Optional[np.ndarray]:
        """Landmarks near `guess` (68, 2), fitted on the face turned upright and frontal.

        dlib's shape predictor starts from an upright, frontal mean face in
        its box, so a face rolled by 30 degrees or turned in yaw fits poorly
        and the error feeds the next frame's box. The region around the guess
        is mapped into a small crop (2 box sides; only that crop is warped) by
        the affine map `upright_map`: rotated by the guess's eye line and, for
        a face narrower than a frontal one (turned), stretched across to a
        frontal width; the points are fitted there in the dlib-style box and
        mapped back. Landmarks are returned in frame pixels (float32).
        """
        fits = self._upright_fits(image, guess, mirror)
        if fits is None:
            return None
        direct, mirrored, inverse = fits
        return _map_points(direct if mirrored is None else (direct + mirrored) / 2, inverse)

    def _upright_fits(self, image: np.ndarray, guess: np.ndarray, mirror: bool):
        """(direct fit, mirror-image fit or None) in the upright crop of `upright_map`, and the map back to
        the frame; None where a fit failed."""
        matrix, size = upright_map(guess)
        crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        upright = np.hstack([guess, np.ones((68, 1))]) @ matrix.T
        fits = self._fit_pair(crop, detect.box_from_landmarks(upright), mirror)
        return None if fits is None else (*fits, cv2.invertAffineTransform(matrix))

    def _refine(self, image: np.ndarray, points: np.ndarray):
        """(points, disagreement) after `refits` mirrored upright fits from `points` (disagreement None if none ran)."""
        disagreement = None
        for _ in range(self.refits):
            fits = self._upright_fits(image, points, mirror=True)
            if fits is None:
                break
            direct, mirrored, inverse = fits
            points = _map_points((direct + mirrored) / 2, inverse)
            disagreement = detect.mirror_disagreement(direct, mirrored)
        return points, disagreement

    def _fit_detection(self, image: np.ndarray, detection: detect.Detection, followed: List[TrackedFace]):
        """(68 points, their fits' disagreement) of a detected face: fitted in the detector's box, refined,
        rechecked; None where the fit failed.

        A box far from the boxes the predictor was trained on can leave the fit
        on a wrong shape that refits keep; its direct and mirror-image fits then
        disagree (RECHECK_DISAGREEMENT), and the fits from shifted starts
        (RECHECK_SHIFTS) are tried, keeping the most self-consistent one. A
        `followed` face in the same place whose last detection's fits disagreed
        nearly as much (RECHECK_REPEAT) is not rechecked again. A face whose
        eye keypoints are rolled (`_rolled_fit`) is also refined from the fit
        in its box turned upright, kept on the same terms (RECHECK_GAIN): on a
        face rolled by 30 degrees the fit in the axis-aligned box is far off
        and the shifted starts do not recover it, but the short-range
        BlazeFace's keypoints can be rolled by 30 degrees on an upright face.
        """
        points = self._fit(image, detection.box)
        if points is None:
            return None
        points, disagreement = self._refine(image, points)
        if disagreement is None:
            return points, disagreement
        starts = []
        rolled = self._rolled_fit(image, detection)
        if rolled is not None:
            starts.append(rolled)
        here = detect.box_from_landmarks(points)
        known = [f.disagreement for f in followed
                 if f.disagreement is not None and detect.iou(f.box, here) >= self.match_iou]
        if disagreement > self.recheck_disagreement and not (known and disagreement <= RECHECK_REPEAT * max(known)):
            self.rechecks += 1
            side = here[2] - here[0]
            starts += [points + np.float32(side) * np.float32(shift) for shift in RECHECK_SHIFTS]
        best, best_disagreement = points, disagreement
        for start in starts:
            candidate, candidate_disagreement = self._refine(image, start)
            if candidate_disagreement is not None and candidate_disagreement < min(
                    best_disagreement, self.recheck_gain * disagreement):
                best, best_disagreement = candidate, candidate_disagreement
        return best, best_disagreement

    def _detect(self, image: np.ndarray, cut: bool) -> List[TrackedFace]:
        self.detections_run += 1
        self._since_detection = 0
        faces = []
        previous = [] if cut else list(self._faces)
        for detection in self.detector(image):
            fitted = self._fit_detection(image, detection, previous)
            if fitted is None:
                continue
            points, disagreement = fitted
            box = detect.box_from_landmarks(points)
            faces.append(TrackedFace(-1, tuple(box), points, True, _face_thumbnail(image, points),
                                     float(detection.score), disagreement))
        # Keep a followed face's person across re-detections (unless the shot changed).
        for face in sorted(faces, key=lambda f: -detect.Detection(f.box, 0).area):
            match = max(previous, key=lambda p: detect.iou(p.box, face.box), default=None)
            if match is not None and detect.iou(match.box, face.box) >= self.match_iou and (
                    self.identities is None or self.identities.verify(image, face.points, match.person)):
                previous.remove(match)
                face.person = match.person
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
            mirror = frontal_stretch(face.points) >= self.mirror_from_stretch
            points = self._fit_upright(image, face.points, mirror)
            if points is None or _shape_change(face.points, points) > self.max_shape_change:
                return None
            appearance = _face_thumbnail(image, points)
            if np.abs(appearance - face.appearance).mean() > self.max_appearance_change:
                return None  # Another face in the same place (a cut the frame thumbnail missed).
            box = detect.box_from_landmarks(points)
            centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            if not (0 <= centre_x < width and 0 <= centre_y < height):
                return None
            followed.append(TrackedFace(face.person, box, points, False, appearance, face.score, face.disagreement))
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

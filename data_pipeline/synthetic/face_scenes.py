"""Hard face-detection scenes made from real photographs shipped in installed packages.

Two people, no download: Eileen Collins (`skimage.data.astronaut`, scikit-image,
a test dependency) and Grace Hopper (`grace_hopper.jpg` in matplotlib's
sample data, an install dependency), both public domain. Each face is pasted
into a frame down-scaled (`face_px`: the side of its dlib-style box), rotated
in plane (`angle`, degrees, counter-clockwise on screen) and turned (`yaw`,
degrees: a horizontal perspective warp of the photo, the face's far side
shrunk as a plane turned about the vertical axis would be; a stand-in for a
real head turn, which no shipped photo shows). The same map carries the
68 landmarks found by dlib on the full-resolution photo, which serve as the
ground truth for recall (was this face found) and landmark accuracy.

Used by the real-face front-end tests and by `bench/detectors.py` and
`bench/preprocess.py`.
"""

import dataclasses
import functools
from typing import List, Sequence, Tuple

import cv2
import numpy as np

from data_pipeline.faces import detect

PEOPLE = ("astronaut", "grace_hopper")


def photo(person: str) -> np.ndarray:
    """The uint8 RGB photograph of one of `PEOPLE`."""
    if person == "astronaut":
        from skimage import data  # Test dependency; only the scenes need it.

        return data.astronaut()
    if person == "grace_hopper":
        from matplotlib import cbook

        path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    raise ValueError(f"person must be one of {PEOPLE}, got {person!r}")


@functools.lru_cache(maxsize=None)
def reference(person: str) -> Tuple[np.ndarray, np.ndarray]:
    """(photo, its (68, 2) landmarks): dlib HOG + shape predictor on the full-size photo."""
    image = photo(person)
    faces = detect.FaceDetector("hog", upsample=0)(image)
    if len(faces) != 1:
        raise RuntimeError(f"{person}: expected one face in the reference photo, found {len(faces)}")
    return image, detect.LandmarkDetector()(image, faces[0].box).astype(np.float64)


@dataclasses.dataclass(frozen=True)
class Placement:
    """One face in a frame: who, where (centre x, y), how large and how posed."""

    person: str
    centre: Tuple[float, float]
    face_px: float
    angle: float = 0.0
    yaw: float = 0.0


def _homography(placement: Placement, points: np.ndarray) -> np.ndarray:
    """3x3 map from photo pixels to frame pixels for one placement."""
    centre = points.mean(0)
    box = detect.box_from_landmarks(points)
    side = box[2] - box[0]
    to_origin = np.array([[1, 0, -centre[0]], [0, 1, -centre[1]], [0, 0, 1]], np.float64)
    # A plane turned by `yaw` about the vertical axis through the face centre,
    # seen by a camera 1.5 face sides away (strong, talking-head perspective).
    focal = 1.5 * side
    yaw = np.deg2rad(placement.yaw)
    turn = np.array([[focal * np.cos(yaw), 0, 0], [0, focal, 0], [np.sin(yaw), 0, focal]], np.float64)
    scale = placement.face_px / side
    angle = np.deg2rad(placement.angle)
    # Counter-clockwise on screen (y down): x' = x cos + y sin, y' = -x sin + y cos.
    rotate = np.array([[scale * np.cos(angle), scale * np.sin(angle), placement.centre[0]],
                       [-scale * np.sin(angle), scale * np.cos(angle), placement.centre[1]],
                       [0, 0, 1]], np.float64)
    return rotate @ turn @ to_origin


def background(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A textured real-photo background without faces (scikit-image's coffee cup, blurred and shifted)."""
    from skimage import data

    rng = np.random.default_rng(seed)
    image = cv2.resize(data.coffee(), (width + 40, height + 40), interpolation=cv2.INTER_AREA)
    dx, dy = rng.integers(0, 40, size=2)
    return np.ascontiguousarray(cv2.GaussianBlur(image[dy:dy + height, dx:dx + width], (0, 0), 2.0))


def compose(frame: np.ndarray, placements: Sequence[Placement]) -> Tuple[np.ndarray, List[np.ndarray]]:
    """Paste each placed face (head and some shoulders, feathered edge) into a copy of `frame`.

    Returns (frame, ground-truth (68, 2) landmarks per placement, in frame pixels).
    Later placements are drawn over earlier ones.
    """
    out = frame.astype(np.float32)
    height, width = frame.shape[:2]
    truths = []
    for placement in placements:
        image, points = reference(placement.person)
        matrix = _homography(placement, points)
        # The pasted region: an ellipse around the head, 1.3 box sides wide, 1.8 tall.
        mask = np.zeros(image.shape[:2], np.float32)
        x0, y0, x1, y1 = detect.box_from_landmarks(points)
        centre = (int((x0 + x1) / 2), int((y0 + y1) / 2 + 0.2 * (y1 - y0)))
        axes = (int(0.65 * (x1 - x0)), int(0.9 * (y1 - y0)))
        cv2.ellipse(mask, centre, axes, 0, 0, 360, 1.0, -1)
        mask = cv2.GaussianBlur(mask, (0, 0), 0.05 * (x1 - x0))
        warped = cv2.warpPerspective(image, matrix, (width, height), flags=cv2.INTER_AREA)
        alpha = cv2.warpPerspective(mask, matrix, (width, height), flags=cv2.INTER_LINEAR)[..., None]
        out = out * (1 - alpha) + warped.astype(np.float32) * alpha
        truths.append(cv2.perspectiveTransform(points[None], matrix)[0])
    return np.clip(np.round(out), 0, 255).astype(np.uint8), truths


def interocular(points: np.ndarray) -> float:
    """Distance between the outer eye corners (points 36 and 45), the 300-W normaliser."""
    return float(np.linalg.norm(points[36] - points[45]))


def landmark_error(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean point-to-point error normalised by the true inter-ocular distance."""
    return float(np.linalg.norm(np.asarray(found) - truth, axis=1).mean() / interocular(truth))


def talking_head(frames: int, size=(144, 176), person: str = "astronaut", face_px: float = 50.0,
                 angle_sweep: float = 0.0, yaw_sweep: float = 0.0, seed: int = 0):
    """A clip of one face moving like a talking head: small sway and nods, optional
    slow in-plane rotation and turn sweeps (+-sweep degrees). Returns (frames, truths)."""
    height, width = size
    base = background(height, width, seed)
    video, truths = [], []
    for k in range(frames):
        phase = 2 * np.pi * k / 90.0  # A 3 s cycle at 30 fps.
        centre = (width / 2 + 0.08 * width * np.sin(phase), height / 2 + 0.04 * height * np.sin(2.3 * phase))
        placement = Placement(person, centre, face_px * (1 + 0.05 * np.sin(0.7 * phase)),
                              angle=angle_sweep * np.sin(phase), yaw=yaw_sweep * np.sin(1.3 * phase))
        frame, (truth,) = compose(base, [placement])
        video.append(frame)
        truths.append(truth)
    return video, truths

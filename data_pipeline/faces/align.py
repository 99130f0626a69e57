"""Face alignment onto a frontal 5-point template ([MC] Sec. 4, [FBN] Sec. IV).

[MC]: the 5 anchors (left eye, right eye, nose, mouth) of each frame are mapped
onto the same points of a prototypical frontal face by a Procrustes transform
(in-plane rotation, isotropic scale, translation); the transform is applied to
the whole frame, which is then cropped to 96x96x3. [FBN] calls the same step an
"affinity transformation": `method="affine"` fits a full 2x3 affine map instead.

Anchors from the dlib 68-point layout (image left/right, i.e. the subject's
right eye is "left"): left-eye centre = mean of points 36-41, right-eye centre
= mean of 42-47, nose tip = 30, mouth corners = 48 and 54. The papers do not
publish their template; ours (`TEMPLATE_96`, pixels of a 96x96 crop, x right,
y down) puts the eyes 34 px apart at y = 34.5 and the mouth 36 px below them,
so the crop spans roughly eyebrows-to-chin with a little margin at the sides;
it scales linearly with `crop_size`.

Warping straight into a small crop from a large face aliases, so when the map
shrinks by more than 2x the frame is first reduced with area averaging; the
stored matrix still maps source-frame pixels to crop pixels.
"""

import cv2
import numpy as np

from data_pipeline.base import checks

METHODS = ("similarity", "affine")
DEFAULT_METHOD = "similarity"  # [MC]'s Procrustes alignment; [FBN]'s affine map on request.

LEFT_EYE = tuple(range(36, 42))
RIGHT_EYE = tuple(range(42, 48))
NOSE_TIP = 30
MOUTH_LEFT = 48
MOUTH_RIGHT = 54

# (x, y) in a 96x96 crop: left eye, right eye, nose tip, left and right mouth corners.
TEMPLATE_96 = np.array([
    [31.0, 34.5],
    [65.0, 34.5],
    [48.0, 53.0],
    [35.5, 70.5],
    [60.5, 70.5],
], np.float64)


def template(crop_size: int = 96) -> np.ndarray:
    """The 5 anchor positions (5, 2) for a crop_size x crop_size crop."""
    if int(crop_size) != crop_size or crop_size < 8:
        raise ValueError(f"crop_size must be an integer >= 8, got {crop_size!r}")
    return TEMPLATE_96 * (crop_size / 96.0)


def anchors(landmarks68) -> np.ndarray:
    """(68, 2) dlib landmarks -> (5, 2) anchors in `TEMPLATE_96` order."""
    points = np.asarray(landmarks68, np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got shape {points.shape}")
    return np.stack([
        points[list(LEFT_EYE)].mean(0),
        points[list(RIGHT_EYE)].mean(0),
        points[NOSE_TIP],
        points[MOUTH_LEFT],
        points[MOUTH_RIGHT],
    ])


def similarity_transform(source, target) -> np.ndarray:
    """Least-squares similarity (Umeyama 1991, no reflection): (N, 2) -> (N, 2); returns 2x3."""
    source = np.asarray(source, np.float64)
    target = np.asarray(target, np.float64)
    source_mean, target_mean = source.mean(0), target.mean(0)
    src, dst = source - source_mean, target - target_mean
    variance = (src ** 2).sum() / len(src)
    if variance <= 1e-12:
        raise ValueError("degenerate anchors: all source points coincide")
    covariance = dst.T @ src / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0  # Forbid a reflection: a mirrored face is not a pose change.
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(singular) @ sign) / variance
    translation = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, translation[:, None]])


def affine_transform(source, target) -> np.ndarray:
    """Least-squares 2x3 affine map from (N, 2) source to (N, 2) target points (N >= 3)."""
    source = np.asarray(source, np.float64)
    target = np.asarray(target, np.float64)
    design = np.hstack([source, np.ones((len(source), 1))])
    solution, _, rank, _ = np.linalg.lstsq(design, target, rcond=None)
    if rank < 3:
        raise ValueError("degenerate anchors: source points are collinear")
    return solution.T


def estimate_transform(source, target, method: str = DEFAULT_METHOD) -> np.ndarray:
    if method == "similarity":
        return similarity_transform(source, target)
    if method == "affine":
        return affine_transform(source, target)
    raise ValueError(f"alignment method must be one of {METHODS}, got {method!r}")


def apply_transform(matrix, points) -> np.ndarray:
    """2x3 matrix applied to (N, 2) points."""
    points = np.asarray(points, np.float64)
    return points @ np.asarray(matrix, np.float64)[:, :2].T + np.asarray(matrix, np.float64)[:, 2]


def warp(frame: np.ndarray, matrix: np.ndarray, crop_size: int) -> np.ndarray:
    """Apply a source->crop 2x3 map to the whole frame; outside pixels are black."""
    matrix = np.asarray(matrix, np.float64)
    shrink = np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    if shrink < 0.5:
        # Pre-reduce so the final warp shrinks by about 2x at most (anti-aliasing).
        factor = 2.0 * shrink
        height, width = frame.shape[:2]
        small = cv2.resize(frame, (max(1, round(width * factor)), max(1, round(height * factor))),
                           interpolation=cv2.INTER_AREA)
        # Pixel centres: small (u + 0.5) = factor * (x + 0.5).
        scale_x = small.shape[1] / width
        scale_y = small.shape[0] / height
        to_small = np.array([[scale_x, 0, 0.5 * scale_x - 0.5], [0, scale_y, 0.5 * scale_y - 0.5], [0, 0, 1]])
        matrix = (np.vstack([matrix, [0, 0, 1]]) @ np.linalg.inv(to_small))[:2]
        frame = small
    return cv2.warpAffine(frame, matrix, (crop_size, crop_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def align_face(frame: np.ndarray, landmarks68, crop_size: int = 96, method: str = DEFAULT_METHOD):
    """Align one face: (frame, (68, 2) landmarks) -> (crop, landmarks in crop, 2x3 matrix).

    `crop` is uint8 (crop_size, crop_size, 3); the matrix (float64, 2x3) maps
    source-frame pixel coordinates to crop pixel coordinates, and
    landmarks_crop = apply_transform(matrix, landmarks68).
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected a uint8 (H, W, 3) frame, got {frame.dtype} {frame.shape}")
    checks.check_choice(method, "alignment method", METHODS)
    points = np.asarray(landmarks68, np.float64)
    if not np.all(np.isfinite(points)):
        raise ValueError("landmarks contain NaN or inf")
    matrix = estimate_transform(anchors(points), template(crop_size), method)
    crop = warp(frame, matrix, int(crop_size))
    return crop, apply_transform(matrix, points), matrix

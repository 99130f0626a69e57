"""Procedural face drawing for the synthetic face-sequence set (OpenCV only): a background
scene and a face of `data_pipeline.synthetic.geometry` (identity, AU intensities, pose) drawn
into a frame, returning its exact 68 landmarks.

The drawing aims at faces that dlib's HOG frontal detector finds: skin tone,
directional light with a soft darkened face border, eye sockets, eye whites
with iris and pupil, a shaded nose, lips and a dark mouth interior.
"""

import dataclasses
from typing import Optional, Sequence

import cv2
import numpy as np

from data_pipeline.synthetic.geometry import Identity, Pose, face_model, intensities, project, rotation

_SHIFT = 4  # Sub-pixel precision of cv2 drawing: coordinates in 1/16 px.
_ONE = 1 << _SHIFT


def background(height: int, width: int, seed: int) -> np.ndarray:
    """A static cluttered scene: gradient plus a few muted shapes (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    top, bottom = rng.uniform(40, 220, 3), rng.uniform(40, 220, 3)
    ramp = np.linspace(0, 1, height)[:, None, None]
    image = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (height, width, 3)).copy()
    for _ in range(rng.integers(3, 8)):
        colour = tuple(float(c) for c in rng.uniform(30, 230, 3))
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        if rng.uniform() < 0.5:
            w, h = rng.uniform(0.05, 0.4) * width, rng.uniform(0.05, 0.5) * height
            cv2.rectangle(image, (int(x0), int(y0)), (int(x0 + w), int(y0 + h)), colour, -1)
        else:
            cv2.circle(image, (int(x0), int(y0)), int(rng.uniform(0.03, 0.2) * width), colour, -1)
    return cv2.GaussianBlur(image, (0, 0), 1.5).astype(np.uint8)


def _pts(points) -> np.ndarray:
    return np.round(np.asarray(points) * _ONE).astype(np.int32).reshape(-1, 1, 2)


def _fill(image, points, colour):
    cv2.fillPoly(image, [_pts(points)], tuple(float(c) for c in colour), cv2.LINE_AA, _SHIFT)


def _line(image, points, colour, thickness, closed=False):
    cv2.polylines(image, [_pts(points)], closed, tuple(float(c) for c in colour),
                  max(1, int(round(thickness))), cv2.LINE_AA, _SHIFT)


def _ellipse(image, centre, axes, angle, colour, thickness=-1):
    cv2.ellipse(image, (int(round(centre[0] * _ONE)), int(round(centre[1] * _ONE))),
                (max(1, int(round(axes[0] * _ONE))), max(1, int(round(axes[1] * _ONE)))),
                float(angle), 0, 360, tuple(float(c) for c in colour), thickness, cv2.LINE_AA, _SHIFT)


def _smooth_curve(points, samples: int = 8) -> np.ndarray:
    """Catmull-Rom through (N, 2) points (closed), for rounder outlines."""
    p1 = np.asarray(points, np.float64)
    p0, p2, p3 = np.roll(p1, 1, 0), np.roll(p1, -1, 0), np.roll(p1, -2, 0)
    t = np.linspace(0, 1, samples, endpoint=False)[None, :, None]
    curve = 0.5 * (2 * p1[:, None] + (-p0 + p2)[:, None] * t + (2 * p0 - 5 * p1 + 4 * p2 - p3)[:, None] * t ** 2
                   + (-p0 + 3 * p1 - 3 * p2 + p3)[:, None] * t ** 3)
    return curve.reshape(-1, 2)


@dataclasses.dataclass
class Occlusion:
    """An object in front of the face: an ellipse in face units (centre x, y; radii) and colour."""

    centre: Sequence[float]
    radii: Sequence[float]
    colour: Sequence[float]


def draw_face(image: np.ndarray, identity: Identity, aus, pose: Pose, arousal: float = 0.0,
              gaze=(0.0, 0.0), occlusion: Optional[Occlusion] = None) -> np.ndarray:
    """Draw one face into `image` (uint8 RGB, modified in place); returns its (68, 2) landmarks in pixels."""
    model = face_model(identity, aus, arousal)
    au = intensities(aus)
    lm3 = model["landmarks"]
    pivot = model["pivot"]
    rot = rotation(pose)
    lm = project(lm3, pose, pivot, rot)
    s = pose.scale
    ident = identity
    skin = np.asarray(ident.skin, np.float64)
    forehead = project(model["forehead"], pose, pivot, rot)
    outline = np.concatenate([lm[:17], forehead])
    outline = _smooth_curve(outline, 4)

    # Neck and shoulders, ears, hair behind the head.
    chin = lm[8]
    neck_w = 0.55 * s
    neck = np.array([[chin[0] - neck_w, chin[1] - 0.6 * s], [chin[0] + neck_w, chin[1] - 0.6 * s],
                     [chin[0] + neck_w, chin[1] + 0.9 * s], [chin[0] - neck_w, chin[1] + 0.9 * s]])
    _fill(image, neck, skin * 0.72)
    shoulders = np.array([[chin[0] - 2.2 * s, image.shape[0] + 10], [chin[0] - 1.6 * s, chin[1] + 0.75 * s],
                          [chin[0] + 1.6 * s, chin[1] + 0.75 * s], [chin[0] + 2.2 * s, image.shape[0] + 10]])
    _fill(image, shoulders, ident.clothes)
    if ident.hair_style == 1:
        back = np.concatenate([forehead, lm[[16, 14]] + [0.25 * s, 0.3 * s], lm[[2, 0]] - [0.25 * s, -0.3 * s]])
        _fill(image, cv2.convexHull(back.astype(np.float32)).reshape(-1, 2), np.asarray(ident.hair) * 0.8)
    for side in (1, 15):
        ear = lm[side] + np.array([(-1 if side == 1 else 1) * 0.06 * s, 0.0])
        _ellipse(image, ear, (0.13 * s, 0.3 * s), pose.roll, skin * 0.8)
    _fill(image, outline, skin)

    # Shading over the face: directional light, darker border, eye sockets,
    # nose side and under-nose shadows; multiplied into the skin.
    x0, y0 = np.floor(outline.min(0)).astype(int) - 2
    x1, y1 = np.ceil(outline.max(0)).astype(int) + 2
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, image.shape[1]), min(y1, image.shape[0])
    if x1 - x0 > 4 and y1 - y0 > 4:
        offset = np.array([x0, y0], np.float64)
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        _fill(mask, outline - offset, (1.0,))
        sigma = 0.12 * s
        soft = cv2.GaussianBlur(mask, (0, 0), sigma)
        shade = np.ones_like(mask)
        centre = lm[30] - offset
        for eye in (lm[36:42], lm[42:48]):
            c = eye.mean(0) - offset + np.array([0, -0.05 * s])
            _ellipse(shade, c, (0.34 * s, 0.2 * s), pose.roll, (0.72,))
        light = np.asarray(ident.light, np.float64)
        nose_side = -1.0 if light[0] > 0 else 1.0
        _line(shade, lm[27:31] - offset + [nose_side * 0.1 * s, 0], (0.68,), 0.09 * s)
        _ellipse(shade, lm[33] - offset + [0, 0.06 * s], (0.22 * s, 0.05 * s), pose.roll, (0.75,))
        _ellipse(shade, lm[57] - offset + [0, 0.08 * s], (0.2 * s, 0.05 * s), pose.roll, (0.85,))
        _ellipse(shade, lm[30] - offset + [-nose_side * 0.03 * s, -0.05 * s], (0.05 * s, 0.1 * s), pose.roll,
                 (1.15,))
        shade = cv2.GaussianBlur(shade, (0, 0), 0.5 * sigma)
        yy, xx = np.mgrid[0:y1 - y0, 0:x1 - x0].astype(np.float32)
        directional = 1 + 0.22 * ((xx - centre[0]) * light[0] + (yy - centre[1]) * light[1]) / (1.3 * s)
        factor = shade * directional * (0.62 + 0.38 * np.clip(soft * 2 - 0.6, 0, 1))
        roi = image[y0:y1, x0:x1].astype(np.float32)
        shaded = np.clip(roi * factor[..., None], 0, 255)
        image[y0:y1, x0:x1] = np.where(mask[..., None] > 0.5, shaded, roi).astype(np.uint8)

    # Hair on the head top (fringe), per style.
    if ident.hair_style != 2:
        fringe_y = 0.78 if ident.hair_style == 0 else 0.68
        top = model["forehead"]
        line = top.copy()
        line[:, 1] = np.maximum(top[:, 1], -fringe_y - 0.2 * np.abs(top[:, 0]) ** 2)
        line[:, 1] = np.minimum(line[:, 1], 0.05)
        cap = np.concatenate([project(top + [0, -0.12, 0], pose, pivot, rot),
                              project(line[::-1], pose, pivot, rot)])
        _fill(image, cap, ident.hair)

    # Wrinkles and folds, drawn as darker skin: glabella (AU4), nose (AU9),
    # nasolabial folds (AU12/AU10), dimples (AU14), chin (AU17).
    def fold(points3, strength, width=0.025):
        if strength > 0.15:
            _line(image, project(points3, pose, pivot, rot), skin * (1 - 0.4 * min(strength, 1)), width * s)

    fold(np.array([[-0.08, -0.3, 0.3], [-0.06, -0.12, 0.3]]), au["AU4"])
    fold(np.array([[0.08, -0.3, 0.3], [0.06, -0.12, 0.3]]), au["AU4"])
    fold(np.array([[-0.12, 0.15, 0.4], [0.12, 0.15, 0.4]]), au["AU9"])
    fold(np.array([[-0.1, 0.25, 0.45], [0.1, 0.25, 0.45]]), au["AU9"])
    for sign in (-1, 1):
        corner = lm3[54 if sign > 0 else 48]
        wing = lm3[35 if sign > 0 else 31]
        fold(np.array([wing + [sign * 0.08, 0, 0], (wing + corner) / 2 + [sign * 0.14, 0, 0],
                       corner + [sign * 0.1, 0.08, 0]]), max(au["AU12"], au["AU10"]) * 0.9)
        fold(np.array([corner + [sign * 0.07, -0.02, 0], corner + [sign * 0.08, 0.03, 0]]), au["AU14"])
    fold(np.array([[-0.12, lm3[8, 1] - 0.2, 0.3], [0.12, lm3[8, 1] - 0.2, 0.3]]), au["AU17"])

    # Brows.
    for brow in (lm[17:22], lm[22:27]):
        taper = np.linspace(0.6, 1.0, 5) if brow[0, 0] < brow[-1, 0] else np.linspace(1.0, 0.6, 5)
        normal = np.array([0.0, ident.brow_thickness * s * 0.5])
        shape = np.concatenate([brow - normal * taper[:, None], (brow + normal * taper[:, None])[::-1]])
        _fill(image, shape, np.asarray(ident.hair) * 0.8)

    # Eyes: white, iris with pupil and highlight clipped to the lids, lid lines.
    iris_centres = project(model["iris"] + [gaze[0] * 0.06, gaze[1] * 0.03, 0], pose, pivot, rot)
    for eye, iris in ((lm[36:42], iris_centres[0]), (lm[42:48], iris_centres[1])):
        contour = _smooth_curve(eye, 4)
        ex0, ey0 = np.floor(contour.min(0)).astype(int) - 2
        ex1, ey1 = np.ceil(contour.max(0)).astype(int) + 3
        if ex0 < 0 or ey0 < 0 or ex1 > image.shape[1] or ey1 > image.shape[0]:
            continue
        patch = image[ey0:ey1, ex0:ex1].copy()
        eye_mask = np.zeros(patch.shape[:2], np.uint8)
        _fill(eye_mask, contour - [ex0, ey0], (255,))
        drawn = patch.copy()
        _fill(drawn, contour - [ex0, ey0], (235, 232, 225))
        _ellipse(drawn, iris - [ex0, ey0], (0.12 * s, 0.12 * s), 0, ident.iris)
        _ellipse(drawn, iris - [ex0, ey0], (0.05 * s, 0.05 * s), 0, (15, 12, 12))
        _ellipse(drawn, iris - [ex0, ey0] + [0.03 * s, -0.03 * s], (0.02 * s, 0.02 * s), 0, (250, 250, 250))
        alpha = (eye_mask.astype(np.float32) / 255.0)[..., None]
        image[ey0:ey1, ex0:ex1] = (drawn * alpha + patch * (1 - alpha)).astype(np.uint8)
        _line(image, eye[[0, 1, 2, 3]], (30, 22, 20), 0.045 * s)
        _line(image, eye[[3, 4, 5, 0]], skin * 0.55, 0.02 * s)

    # Nose: base line and nostrils.
    _line(image, lm[31:36], skin * 0.6, 0.025 * s)
    for nostril in (lm[32], lm[34]):
        _ellipse(image, nostril + [0, -0.02 * s], (0.05 * s, 0.025 * s), pose.roll, skin * 0.35)

    # Mouth: lips, dark interior and upper teeth when open, lip line.
    _fill(image, _smooth_curve(lm[48:60], 3), ident.lips)
    opening = float(model["opening"])
    inner = lm[60:68]
    if opening > 0.02:
        _fill(image, _smooth_curve(inner, 3), (60, 20, 25))
        teeth = np.concatenate([inner[1:4], inner[[3, 2, 1]] + [0, min(opening, 0.07) * s * 0.6]])
        _fill(image, teeth, (235, 230, 220))
    _line(image, np.concatenate([lm[[48]], inner[:5], lm[[54]]]), np.asarray(ident.lips) * 0.45, 0.03 * s)

    if occlusion is not None:
        centre = project(np.array([[occlusion.centre[0], occlusion.centre[1], 0.8]]), pose, pivot, rot)[0]
        _ellipse(image, centre, (occlusion.radii[0] * s, occlusion.radii[1] * s), pose.roll, occlusion.colour)
    return lm

"""Procedural face drawing for the synthetic face-sequence set (OpenCV only).

A face is a rigid 3D point model in face units (inter-ocular distance = 1,
x to the image right, y down, z towards the camera; origin between the eyes),
deformed by facial action unit (AU) intensities and an identity, rotated by a
head pose and projected orthographically into the frame. The 68 landmarks are
points of that model in the iBUG 68-point order (jaw 0-16, brows 17-26, nose
27-35, eyes 36-47, mouth 48-67; "left" is the image left), so the landmarks of
a rendered frame are exact, not detected.

Valence/arousal drive the face through `affect_to_aus`: a soft nearest-
prototype blend of the 7 basic expressions placed on the circumplex (Russell
1980), each carrying its EMFACS prototypical AUs (the prototypical AUs of
[FBN] Table V), plus continuous valence cues (lip corners AU12/AU15, brow
lowering AU4) and arousal cues (lids AU5, lips part AU25) so every point of
the VA plane has its own facial configuration. Expression labels are the
nearest prototype; AU labels are intensities >= `AU_THRESHOLD`.

The drawing aims at faces that dlib's HOG frontal detector finds: skin tone,
directional light with a soft darkened face border, eye sockets, eye whites
with iris and pupil, a shaded nose, lips and a dark mouth interior.
"""

import dataclasses
from typing import Dict, Optional, Sequence

import cv2
import numpy as np

from data_pipeline.records import schema

AU_NAMES = schema.AUS_FBN_17
AU_THRESHOLD = 0.5
_SHIFT = 4  # Sub-pixel precision of cv2 drawing: coordinates in 1/16 px.
_ONE = 1 << _SHIFT

# Expression prototypes on the valence/arousal plane, in schema.EXPRESSIONS
# order. Relaxed/content faces (positive valence, low arousal) fall nearest to
# neutral, as in ABAW annotation practice.
PROTOTYPES_VA = np.array([
    [0.0, 0.0],     # neutral
    [-0.75, 0.5],   # anger
    [-0.8, -0.1],   # disgust
    [-0.3, 0.85],   # fear
    [0.7, 0.25],    # happiness
    [-0.55, -0.6],  # sadness
    [0.35, 0.8],    # surprise
], np.float64)

# EMFACS prototypical AUs per expression (weights = typical intensity).
PROTOTYPE_AUS: Dict[str, Dict[str, float]] = {
    "neutral": {},
    "anger": {"AU4": 1.0, "AU5": 0.4, "AU7": 0.9, "AU23": 0.9, "AU24": 0.6, "AU17": 0.3},
    "disgust": {"AU9": 1.0, "AU10": 0.9, "AU15": 0.5, "AU17": 0.5, "AU4": 0.3},
    "fear": {"AU1": 1.0, "AU2": 0.8, "AU4": 0.7, "AU5": 0.9, "AU7": 0.4, "AU20": 1.0, "AU25": 0.9, "AU26": 0.4},
    "happiness": {"AU6": 0.9, "AU12": 1.0, "AU14": 0.3, "AU25": 0.4},
    "sadness": {"AU1": 0.9, "AU4": 0.8, "AU15": 1.0, "AU17": 0.6},
    "surprise": {"AU1": 1.0, "AU2": 1.0, "AU5": 0.9, "AU25": 1.0, "AU26": 0.9},
}


def affect_to_aus(valence, arousal, temperature: float = 0.05):
    """(T,) valence, arousal in [-1, 1] -> ((T, 17) AU intensities in [0, 1], (T,) expression).

    AU columns follow `AU_NAMES` (`schema.AUS_FBN_17`). Intensities are smooth
    in (v, a); the expression is the nearest prototype in `PROTOTYPES_VA`.
    """
    va = np.stack([np.asarray(valence, np.float64), np.asarray(arousal, np.float64)], -1)
    distance2 = ((va[:, None, :] - PROTOTYPES_VA[None]) ** 2).sum(-1)
    weights = np.exp(-(distance2 - distance2.min(1, keepdims=True)) / temperature)
    weights /= weights.sum(1, keepdims=True)
    strength = np.clip(np.linalg.norm(va, axis=-1) / 0.6, 0.0, 1.0)
    index = {name: i for i, name in enumerate(AU_NAMES)}
    profile = np.zeros((len(schema.EXPRESSIONS), len(AU_NAMES)))
    for e, expression in enumerate(schema.EXPRESSIONS):
        for au, value in PROTOTYPE_AUS[expression].items():
            profile[e, index[au]] = value
    aus = (weights @ profile) * strength[:, None]
    v, a = va[:, 0], va[:, 1]
    # Continuous cues, so faces differ everywhere on the plane, not only by class.
    continuous = {
        "AU12": 1.2 * v - 0.15, "AU15": -1.2 * v - 0.35, "AU4": -1.1 * v - 0.35,
        "AU5": 1.4 * (a - 0.3), "AU25": 1.5 * (a - 0.2),
    }
    for au, value in continuous.items():
        aus[:, index[au]] = np.maximum(aus[:, index[au]], np.clip(value, 0.0, 1.0))
    return np.clip(aus, 0.0, 1.0), distance2.argmin(1)


@dataclasses.dataclass
class Identity:
    """Per-subject appearance; all lengths in face units (inter-ocular distance 1)."""

    face_width: float = 0.95
    jaw_power: float = 1.0
    chin_length: float = 1.55
    eye_width: float = 0.22
    eye_height: float = 0.09
    brow_height: float = 0.3
    brow_thickness: float = 0.07
    nose_length: float = 0.55
    nose_width: float = 0.2
    mouth_width: float = 0.38
    lip_thickness: float = 0.07
    rest_curve: float = 0.0
    skin: Sequence[float] = (200, 160, 135)
    lips: Sequence[float] = (170, 90, 90)
    hair: Sequence[float] = (60, 40, 25)
    iris: Sequence[float] = (70, 50, 30)
    clothes: Sequence[float] = (40, 60, 120)
    hair_style: int = 0
    light: Sequence[float] = (0.5, -0.5)
    background_seed: int = 0


_SKIN_TONES = np.array([
    [236, 200, 175], [225, 180, 150], [205, 160, 125], [190, 140, 105], [160, 110, 80],
    [130, 85, 60], [100, 65, 45], [215, 175, 140],
], np.float64)
_HAIR_COLOURS = np.array([[25, 20, 18], [60, 40, 25], [110, 75, 40], [170, 130, 80], [120, 120, 120],
                          [80, 30, 15]], np.float64)


def sample_identity(rng: np.random.Generator) -> Identity:
    skin = _SKIN_TONES[rng.integers(len(_SKIN_TONES))] * rng.uniform(0.92, 1.06) + rng.normal(0, 5, 3)
    lips = skin * np.array([0.82, 0.55, 0.58]) + rng.normal(0, 6, 3)
    angle = rng.uniform(0, 2 * np.pi)
    return Identity(
        face_width=rng.uniform(0.88, 1.02), jaw_power=rng.uniform(0.7, 1.3),
        chin_length=rng.uniform(1.45, 1.65), eye_width=rng.uniform(0.19, 0.24),
        eye_height=rng.uniform(0.075, 0.1), brow_height=rng.uniform(0.26, 0.34),
        brow_thickness=rng.uniform(0.05, 0.09), nose_length=rng.uniform(0.5, 0.6),
        nose_width=rng.uniform(0.16, 0.24), mouth_width=rng.uniform(0.34, 0.42),
        lip_thickness=rng.uniform(0.055, 0.085), rest_curve=rng.normal(0, 0.012),
        skin=tuple(np.clip(skin, 0, 255)), lips=tuple(np.clip(lips, 0, 255)),
        hair=tuple(_HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))]),
        iris=tuple(rng.uniform([30, 30, 20], [120, 110, 140])),
        clothes=tuple(rng.uniform(20, 200, 3)), hair_style=int(rng.integers(3)),
        light=(0.6 * np.cos(angle), 0.6 * np.sin(angle) - 0.2),
        background_seed=int(rng.integers(2 ** 31)))


def _intensities(aus) -> Dict[str, float]:
    aus = np.asarray(aus, np.float64)
    if aus.shape != (len(AU_NAMES),):
        raise ValueError(f"expected {len(AU_NAMES)} AU intensities in AUS_FBN_17 order, got shape {aus.shape}")
    return dict(zip(AU_NAMES, aus))


def face_model(identity: Identity, aus, arousal: float = 0.0) -> Dict[str, np.ndarray]:
    """3D points (face units) of the face under AU intensities `aus` (17,).

    Returns "landmarks" (68, 3) plus drawing-only contours: "forehead" (the head
    outline from jaw point 16 over the top back to point 0), "iris" (2, 3) eye
    centres, "pivot" (1, 3) the head rotation centre.
    """
    au = _intensities(aus)
    ident = identity
    lm = np.zeros((68, 3))

    # Jaw 0-16: temple to temple through the chin; AU26 drops the lower jaw.
    t = np.linspace(0, 1, 17)
    phi = np.pi * t
    drop = 0.16 * au["AU26"] - 0.03 * au["AU17"]
    x = -ident.face_width * np.cos(phi)
    depth = np.sin(phi) ** ident.jaw_power
    y = 0.05 + (ident.chin_length - 0.05 + drop) * depth
    lm[:17, 0] = x * (1 - 0.12 * depth ** 4)
    lm[:17, 1] = y
    lm[:17, 2] = -0.45 + 0.75 * np.sin(phi)

    # Brows 17-21 (image left, outer -> inner), 22-26 (inner -> outer).
    s = np.linspace(0, 1, 5)  # 0 outer, 1 inner
    brow_x = -(0.92 - 0.72 * s)
    arch = 0.07 * np.sin(np.pi * (0.35 + 0.65 * s))
    inner, outer = s ** 1.5, (1 - s) ** 1.5
    brow_y = (-ident.brow_height - arch - 0.12 * au["AU1"] * inner - 0.12 * au["AU2"] * outer
              + 0.08 * au["AU4"] * (0.4 + inner) - 0.04 * arousal)
    brow_x = brow_x + 0.05 * au["AU4"] * inner
    lm[17:22, 0], lm[17:22, 1] = brow_x, brow_y
    lm[22:27, 0], lm[22:27, 1] = -brow_x[::-1], brow_y[::-1]
    lm[17:27, 2] = 0.25

    # Nose 27-30 bridge, 31-35 base; AU9 lifts the base.
    lift = 0.05 * au["AU9"]
    lm[27:31, 0] = 0.0
    lm[27:31, 1] = np.linspace(0.02, ident.nose_length - lift * 0.5, 4)
    lm[27:31, 2] = np.linspace(0.3, 0.62, 4)
    base_x = np.linspace(-ident.nose_width, ident.nose_width, 5)
    lm[31:36, 0] = base_x
    lm[31:36, 1] = ident.nose_length + 0.1 - lift + 0.03 * (1 - (base_x / ident.nose_width) ** 2)
    lm[31:36, 2] = 0.45

    # Eyes 36-41 and 42-47: upper lid opened by AU5 and arousal, closed by AU7;
    # the lower lid raised by AU6 and AU7.
    open_up = ident.eye_height * (0.8 + 0.3 * arousal) * (1 + 0.55 * au["AU5"]) * (1 - 0.35 * au["AU7"])
    open_down = ident.eye_height * 0.75 * (1 - 0.4 * au["AU6"]) * (1 - 0.3 * au["AU7"])
    w = ident.eye_width
    for centre, idx in ((-0.5, [36, 37, 38, 39, 40, 41]), (0.5, [45, 44, 43, 42, 47, 46])):
        # Order per eye (image left eye): outer, upper-outer, upper-inner, inner, lower-inner, lower-outer.
        sign = -1 if centre < 0 else 1
        xs = [centre + sign * w, centre + sign * w * 0.35, centre - sign * w * 0.35, centre - sign * w,
              centre - sign * w * 0.35, centre + sign * w * 0.35]
        ys = [0.0, -open_up, -open_up, 0.0, open_down, open_down]
        lm[idx, 0], lm[idx, 1], lm[idx, 2] = xs, ys, 0.15

    # Mouth: corners lifted by AU12 and valence-like rest curve, lowered by
    # AU15; widened by AU12/AU20, narrowed by AU23/AU24; opening by AU25/AU26.
    mouth_y = ident.nose_length + 0.52
    half = ident.mouth_width * (1 + 0.18 * au["AU12"] + 0.2 * au["AU20"] - 0.12 * au["AU23"] - 0.08 * au["AU24"]
                                - 0.05 * au["AU14"])
    curve = ident.rest_curve + 0.15 * au["AU12"] - 0.13 * au["AU15"] + 0.02 * au["AU14"]
    opening = (0.1 * au["AU25"] + 0.2 * au["AU26"]) * (1 - au["AU24"])
    thick = ident.lip_thickness * (1 - 0.5 * au["AU23"]) * (1 - 0.35 * au["AU20"]) * (1 - 0.3 * au["AU24"])
    upper_raise = 0.06 * au["AU10"]
    lower_raise = 0.04 * au["AU17"] * (1 - au["AU26"])

    def lip(x_rel, offset):
        return mouth_y - curve * x_rel ** 2 + offset

    outer_x = half * np.array([-1, -0.65, -0.3, 0, 0.3, 0.65, 1, 0.65, 0.3, 0, -0.3, -0.65])
    rel = outer_x / half
    bulge = 1 - rel ** 2
    upper = lip(rel, -(opening / 2 + thick * 1.1 + upper_raise) * bulge)
    lower = lip(rel, (opening / 2 + thick * 1.3 - lower_raise) * bulge)
    lm[48:60, 0] = outer_x
    lm[48:60, 1] = np.where(np.arange(12) <= 6, upper, lower)
    lm[48:60, 1][[0, 6]] = lip(np.array([-1.0, 1.0]), 0.0)
    inner_x = half * np.array([-0.85, -0.4, 0, 0.4, 0.85, 0.4, 0, -0.4])
    rel_in = inner_x / half
    bulge_in = 1 - (rel_in / 0.85) ** 2
    up_in = lip(rel_in, -(opening / 2 + upper_raise * 0.8) * bulge_in)
    low_in = lip(rel_in, (opening / 2 - lower_raise * 0.5) * bulge_in)
    lm[60:68, 0] = inner_x
    lm[60:68, 1] = np.where(np.arange(8) <= 4, up_in, low_in)
    lm[48:68, 2] = 0.35

    top = np.linspace(0, np.pi, 15)[1:-1]
    forehead = np.stack([ident.face_width * 1.02 * np.cos(top), 0.05 - 1.25 * np.sin(top) ** 0.8,
                         -0.45 + 0.7 * np.sin(top)], -1)
    iris = np.array([[-0.5, 0.0, 0.17], [0.5, 0.0, 0.17]])
    return {"landmarks": lm, "forehead": forehead, "iris": iris,
            "opening": np.array(opening), "pivot": np.array([[0.0, 0.5, -0.8]])}


@dataclasses.dataclass
class Pose:
    """Head pose (degrees) and placement (frame pixels; `scale` = pixels per face unit)."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    x: float = 0.0
    y: float = 0.0
    scale: float = 50.0


def rotation(pose: Pose) -> np.ndarray:
    yaw, pitch, roll = np.radians([pose.yaw, pose.pitch, pose.roll])
    ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
    rz = np.array([[np.cos(roll), -np.sin(roll), 0], [np.sin(roll), np.cos(roll), 0], [0, 0, 1]])
    return rz @ rx @ ry


def project(points, pose: Pose, pivot=(0.0, 0.5, -0.8), matrix: Optional[np.ndarray] = None) -> np.ndarray:
    """(N, 3) face-unit points -> (N, 2) frame pixels (orthographic); `matrix` caches `rotation(pose)`."""
    pivot = np.asarray(pivot, np.float64).reshape(1, 3)
    matrix = rotation(pose) if matrix is None else matrix
    rotated = (np.asarray(points, np.float64) - pivot) @ matrix.T + pivot
    return rotated[:, :2] * pose.scale + np.array([pose.x, pose.y])


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
    au = _intensities(aus)
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

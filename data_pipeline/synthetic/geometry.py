"""Face geometry of the synthetic face-sequence set (numpy only): what a face is and where its
points go; `data_pipeline.synthetic.render` draws it.

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
"""

import dataclasses
from typing import Dict, Optional, Sequence

import numpy as np

from data_pipeline.records import schema

AU_NAMES = schema.AUS_FBN_17
AU_THRESHOLD = 0.5

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


def intensities(aus) -> Dict[str, float]:
    """{AU name: intensity} of a vector of `AU_NAMES` intensities in [0, 1]."""
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
    au = intensities(aus)
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

"""Writers of miniature dataset layouts for the adapter tests."""

import json
import os

import cv2
import numpy as np

from data_pipeline.faces import align
from data_pipeline.media import decode
from data_pipeline.records import schema


def moving_face_frames(face, count=8, size=(240, 320), faces=1, step=6, gap=230):
    frames = []
    for k in range(count):
        frame = np.full(size + (3,), 90, np.uint8)
        for j in range(faces):
            x = 10 + step * k + gap * j
            frame[20:220, x:x + 190] = face
        frames.append(frame)
    return frames


def write_video(path, frames, fps=25):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    decode.write_video(str(path), frames, fps=fps)


def write_image(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def write_text(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def read_records(path, num_aus=0):
    """Every record of a TFRecord as numpy dicts (context and sequence merged)."""
    out = []
    for context, sequence in schema.read_videos(str(path), num_aus):
        row = {k: v.numpy() for k, v in {**context, **sequence}.items()}
        row["images"] = schema.decode_images(sequence[schema.IMAGE]).numpy()
        out.append(row)
    return out


def afew_landmarks(shift):
    """68 points whose 5 alignment anchors sit on the 96x96 template, scaled x2 and shifted."""
    points = np.full((68, 2), 60.0)
    anchors = 2.0 * align.TEMPLATE_96 + shift
    points[list(align.LEFT_EYE)] = anchors[0]
    points[list(align.RIGHT_EYE)] = anchors[1]
    points[align.NOSE_TIP] = anchors[2]
    points[align.MOUTH_LEFT] = anchors[3]
    points[align.MOUTH_RIGHT] = anchors[4]
    return points


def afew_clip(root, clip, actor, frames=3, labelled=None):
    rng = np.random.default_rng(int(clip))
    labelled = range(frames) if labelled is None else labelled
    data = {"actor": actor, "video_id": clip, "frames": {
        f"{k:05d}": {"valence": k - 1, "arousal": 10 - k, "landmarks": afew_landmarks(5 + k).tolist()}
        for k in labelled}}
    write_text(root / "01" / clip / f"{clip}.json", json.dumps(data))
    for k in range(frames):
        write_image(root / "01" / clip / f"{k:05d}.png", rng.integers(0, 255, (240, 260, 3), dtype=np.uint8))

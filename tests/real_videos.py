"""Short videos of a real face (skimage's astronaut) and a miniature Aff-Wild2 release around them,
for the tests that cross stage boundaries."""

import os

import cv2
import numpy as np

from data_pipeline.media import decode

ABAW_VA = "3rd ABAW Annotations/Third ABAW Annotations/VA_Estimation_Challenge"
FRAMES = 24


def real_face():
    from skimage import data as skimage_data

    return skimage_data.astronaut()[40:240, 130:320]  # 200 x 190, head and shoulders.


def moving_face_frames(count=10, size=(240, 320), faces=1, shift=0):
    """`count` frames of the astronaut's head (200x190) drifting right by 6 px a frame on grey, `faces` side by
    side (230 px apart), the first `shift` px further right."""
    face = real_face()
    frames = []
    for k in range(count):
        frame = np.full(size + (3,), 90, np.uint8)
        for j in range(faces):
            x = 10 + shift + 6 * k + 230 * j
            frame[20:220, x:x + 190] = face
        frames.append(frame)
    return frames


def write_media_folder(root, frames=10):
    """`root` (a pathlib.Path) with sub/talk.mp4 (`frames` frames at 25 fps, the astronaut moving)
    and still.png (the still face): a folder of media as the preprocess and predict commands walk it."""
    (root / "sub").mkdir()
    decode.write_video(str(root / "sub" / "talk.mp4"), moving_face_frames(frames), fps=25)
    cv2.imwrite(str(root / "still.png"), cv2.cvtColor(real_face(), cv2.COLOR_RGB2BGR))
    return root


def _frames(face, faces=1, no_face_at=None, seed=0):
    """FRAMES 320x240 frames: the face drifts right and grows from 0.8x to 1.05x; `faces=2` adds a
    mirrored second person on the right; frame `no_face_at` shows only the background."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(FRAMES):
        frame = np.full((240, 320, 3), 90, np.uint8) + rng.integers(0, 8, (240, 320, 3), dtype=np.uint8)
        if k != no_face_at:
            scale = 0.8 + 0.25 * k / (FRAMES - 1)
            person = cv2.resize(face, None, fx=scale, fy=scale) if faces == 1 else cv2.resize(face, (120, 126))
            h, w = person.shape[:2]
            x = 4 + 2 * k if faces == 1 else 6 + k
            frame[10:10 + h, x:x + w] = person
            if faces == 2:
                mirrored = cv2.resize(face[:, ::-1], (110, 116))
                frame[100:216, 200:310] = mirrored
        frames.append(frame)
    return frames


def _va_file(path, seed):
    rng = np.random.default_rng(seed)
    rows = [f"{v:.3f},{a:.3f}" for v, a in rng.uniform(-0.9, 0.9, (FRAMES, 2))]
    rows[3] = "-5,-5"  # ABAW's "not annotated".
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("valence,arousal\n" + "\n".join(rows) + "\n")


def write_abaw_release(root):
    """A miniature Aff-Wild2 release under `root` (a pathlib.Path): 2 training videos (one with two
    people), 1 validation video, VA labels in the ABAW layout; returns `root`."""
    face = real_face()
    videos = {"vid_train_a": ("Train_Set", _frames(face, no_face_at=10, seed=1)),
              "vid_train_b": ("Train_Set", _frames(face, faces=2, seed=2)),
              "vid_val": ("Validation_Set", _frames(face, no_face_at=5, seed=3))}
    os.makedirs(root / "batch1")
    for i, (name, (split, frames)) in enumerate(videos.items()):
        decode.write_video(str(root / "batch1" / f"{name}.mp4"), frames, fps=30)
        _va_file(str(root / ABAW_VA / split / f"{name}.txt"), seed=i)
    return root

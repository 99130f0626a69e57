"""Tiny exports of every kind and a real-photo video, shared by the predict tests.

Exports go through the same `ServingModule` and SavedModel writer as
launch/export.py (`affnet.training.export`), on tiny random-weight registry
models; export.json is written with the keys `export_run` writes plus the
optional ones of issue 12 where a test needs them.
"""

import json
import os

import cv2
import numpy as np
import pytest
from skimage import data

from data_pipeline import decode

TINY = dict(width=0.125, input_size=32, dropout=0.0)
KINDS = {
    "va": ("affwildnet_vggface", dict(TINY, fc_units=16, rnn_units=8)),
    "multitask": ("mt_vgg_gru", dict(TINY, fc_units=16, rnn_units=8)),
    "categorical": ("affwildnet_vggface", dict(TINY, fc_units=16, rnn_units=8)),
    "audio_visual": ("av_mt_vgg_gru", dict(TINY, fc_units=16, rnn_units=8)),
}


def face():
    return data.astronaut()[40:240, 130:320]  # 200x190 head and shoulders of a real face.


def moving_face_frames(count=12, size=(240, 320), faces=1):
    frames = []
    for k in range(count):
        frame = np.full(size + (3,), 90, np.uint8)
        for j in range(faces):
            x = 10 + 6 * k + 230 * j
            frame[20:220, x:x + 190] = face()
        frames.append(frame)
    return frames


def make_export(kind: str, output: str, extra=None) -> str:
    import tensorflow as tf

    from affnet import models
    from affnet.training import export

    name, overrides = KINDS[kind]
    model = models.build(name, **overrides)
    if kind == "categorical":
        from affnet.models import categorical

        model = categorical.to_categorical(model)
    module = export.ServingModule(model, image_size=model.inputs[0].shape[-2], sequence=True)
    os.makedirs(output, exist_ok=True)
    tf.saved_model.save(module, os.path.join(output, export.SAVED_MODEL_DIR),
                        signatures={"serving_default": module.serve})
    info = {"model": name, "model_overrides": overrides, "seq_len": 5, "image_size": module.image_size,
            "crop_size": export.CROP_SIZE, "landmarks": module.takes_landmarks,
            "outputs": sorted(module.serve.get_concrete_function().structured_outputs),
            "au_names": list(getattr(model, "au_names", None) or []), "saved_model": "saved_model",
            "keras": "model.keras", **(extra or {})}
    with open(os.path.join(output, export.EXPORT_INFO), "w") as f:
        json.dump(info, f, indent=2)
    return output


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """kind -> export directory, built once per session on first use."""
    root = tmp_path_factory.mktemp("exports")
    made = {}

    class Exports(dict):
        def __missing__(self, kind):
            made[kind] = make_export(kind, str(root / kind))
            return made[kind]

    return Exports()


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    """A folder: sub/talk.mp4 (12 frames at 25 fps, the astronaut moving), still.png, empty.mp4 (no face)."""
    root = tmp_path_factory.mktemp("media")
    (root / "sub").mkdir()
    decode.write_video(str(root / "sub" / "talk.mp4"), moving_face_frames(), fps=25)
    cv2.imwrite(str(root / "still.png"), cv2.cvtColor(face(), cv2.COLOR_RGB2BGR))
    decode.write_video(str(root / "empty.mp4"), [np.full((120, 160, 3), 90, np.uint8)] * 4, fps=25)
    return root

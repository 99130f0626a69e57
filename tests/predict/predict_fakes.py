"""Tiny exports of every kind and real-photo frames for the predict tests.

Exports go through the same `ServingModule` and SavedModel writer as
launch/export.py (`affnet.training.export`), on tiny random-weight registry
models; export.json is written with the keys `export_run` writes plus the
optional ones of issue 12 where a test needs them.
"""

import os

import real_videos
from real_videos import real_face

TINY = dict(width=0.125, input_size=32, dropout=0.0)
KINDS = {
    "va": ("affwildnet_vggface", dict(TINY, fc_units=16, rnn_units=8)),
    "multitask": ("mt_vgg_gru", dict(TINY, fc_units=16, rnn_units=8)),
    "categorical": ("affwildnet_vggface", dict(TINY, fc_units=16, rnn_units=8)),
    "audio_visual": ("av_mt_vgg_gru", dict(TINY, fc_units=16, rnn_units=8)),
}


def face():
    return real_face()  # 200x190 head and shoulders of a real face.


def moving_face_frames(count=12, size=(240, 320), faces=1):
    return real_videos.moving_face_frames(count, size, faces)


def make_export(kind: str, output: str, extra=None) -> str:
    import tensorflow as tf

    from affnet import models
    from affnet import export_format
    from affnet.training import export

    name, overrides = KINDS[kind]
    model = models.build(name, **overrides)
    if kind == "categorical":
        from affnet.models import categorical

        model = categorical.to_categorical(model)
    module = export.ServingModule(model, image_size=model.inputs[0].shape[-2], sequence=True)
    os.makedirs(output, exist_ok=True)
    tf.saved_model.save(module, os.path.join(output, export_format.SAVED_MODEL_DIR),
                        signatures={"serving_default": module.serve})
    info = {"model": name, "model_overrides": overrides, "seq_len": 5, "image_size": module.image_size,
            "crop_size": export_format.CROP_SIZE, "landmarks": module.takes_landmarks,
            "outputs": sorted(module.serve.get_concrete_function().structured_outputs),
            "au_names": list(getattr(model, "au_names", None) or []), "saved_model": "saved_model",
            "keras": "model.keras", **(extra or {})}
    export_format.write(output, info)
    return output

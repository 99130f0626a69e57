"""Export a trained run: SavedModel with a `serving_default` signature, and `.keras`.

Signature `serving_default`:
  images     (B, T, 96, 96, 3) float32 in [-1, 1]: the aligned 96x96 crops of
             preprocessing, normalised by `data_pipeline.transforms.normalize_images`
  landmarks  (B, T, 136) float32: crop landmarks normalised by
             `transforms.normalize_landmarks` (ignored by models without landmarks,
             so every export has the same interface)
  spectrogram (B, T, F) float32, only for audio-visual models ([FBN]
             A/V-MT-VGG-GRU): `data_pipeline.audio` per-frame spectrogram patches
  -> valence_arousal (B, T, 2) float32 (valence, arousal); multi-task models
     ([FBN]) also `expression_probabilities` (B, T, 7) (softmax, the order of
     `data_pipeline.schema.EXPRESSIONS`) and `au_probabilities` (B, T, K)
     (sigmoid, `export.json` lists the AU names); a categorical model ([AW]
     Sec. 5.2) returns `expression_probabilities` only.
B and T are dynamic. A model trained at another input size gets the crops
resized inside the signature, bilinearly, as the training reader does.
Beside it, `export.json` names the run, its model, seq_len and input size.
"""

import json
import os

import keras
import tensorflow as tf

from affnet.training import checkpointing, data, modeling
from affnet.training import config as config_lib
from affnet.training.config import TrainConfig
from data_pipeline.schema import LANDMARK_DIM

CROP_SIZE = 96
SAVED_MODEL_DIR = "saved_model"
KERAS_FILE = "model.keras"
EXPORT_INFO = "export.json"


class ServingModule(tf.Module):
    """The model behind the fixed serving interface (see the module docstring)."""

    def __init__(self, model: keras.Model, image_size: int, crop_size: int = CROP_SIZE, sequence: bool = True):
        super().__init__(name="affnet_serving")
        self.model = model
        # Track every variable explicitly (see checkpointing.variable_map).
        self.model_variables = checkpointing.variable_map(model)
        self.sequence = sequence
        self.image_size = int(image_size)
        inputs = {t.name.split(":")[0]: t for t in model.inputs}
        self.takes_landmarks = "landmarks" in inputs
        signature = [tf.TensorSpec([None, None, crop_size, crop_size, 3], tf.float32, name="images"),
                     tf.TensorSpec([None, None, LANDMARK_DIM], tf.float32, name="landmarks")]
        if "spectrogram" in inputs:
            signature.append(tf.TensorSpec([None, None, inputs["spectrogram"].shape[-1]], tf.float32,
                                           name="spectrogram"))
        self.serve = tf.function(self._serve, input_signature=signature)

    def _serve(self, images, landmarks, spectrogram=None):
        if self.image_size != images.shape[2]:
            shape = tf.shape(images)
            flat = tf.reshape(images, tf.concat([[-1], shape[2:]], 0))
            flat = tf.image.resize(flat, [self.image_size, self.image_size], method="bilinear")
            images = tf.reshape(flat, tf.concat([shape[:2], [self.image_size, self.image_size, 3]], 0))
        inputs = {"images": images}
        if self.takes_landmarks:
            inputs["landmarks"] = landmarks
        if spectrogram is not None:
            inputs["spectrogram"] = spectrogram
        outputs = modeling.call(self.model, inputs, False, self.sequence)
        if not isinstance(outputs, dict):
            return {"valence_arousal": tf.cast(outputs, tf.float32)}
        served = {}
        if "va" in outputs:
            served["valence_arousal"] = tf.cast(outputs["va"], tf.float32)
        if "expression" in outputs:
            served["expression_probabilities"] = tf.nn.softmax(tf.cast(outputs["expression"], tf.float32))
        if "au" in outputs:
            served["au_probabilities"] = tf.sigmoid(tf.cast(outputs["au"], tf.float32))
        return served


def load_run_model(workdir: str, checkpoint: str = "best"):
    """(config, float32 model with the run's weights, checkpoint path)."""
    config: TrainConfig = config_lib.load(workdir)
    model = modeling.build_model(config, mixed_precision="none", initialise=False)
    path = checkpointing.restore_model(model, workdir, checkpoint)
    return config, model, path


def export_run(workdir: str, output: str, checkpoint: str = "best") -> dict:
    """Write `output/saved_model`, `output/model.keras` and `output/export.json`."""
    config, model, path = load_run_model(workdir, checkpoint)
    os.makedirs(output, exist_ok=True)
    module = ServingModule(model, data.image_size(config), sequence=modeling.is_sequence_model(config))
    saved_model = os.path.join(output, SAVED_MODEL_DIR)
    tf.saved_model.save(module, saved_model, signatures={"serving_default": module.serve})
    model.save(os.path.join(output, KERAS_FILE))
    info = {"workdir": os.path.abspath(workdir), "checkpoint": path, "model": config.model,
            "model_overrides": dict(config.model_overrides), "seq_len": config.seq_len,
            "image_size": data.image_size(config), "crop_size": CROP_SIZE,
            "landmarks": module.takes_landmarks,
            "outputs": sorted(module.serve.get_concrete_function().structured_outputs),
            "au_names": list(getattr(model, "au_names", None) or []), "saved_model": saved_model,
            "keras": os.path.join(output, KERAS_FILE)}
    with open(os.path.join(output, EXPORT_INFO), "w") as f:
        json.dump(info, f, indent=2)
    return info


def load_serving(export_dir: str):
    """(serving function, export.json dict) of an export directory (or a bare SavedModel)."""
    info_path = os.path.join(export_dir, EXPORT_INFO)
    info = {}
    saved_model = export_dir
    if os.path.exists(info_path):
        with open(info_path) as f:
            info = json.load(f)
        saved_model = os.path.join(export_dir, SAVED_MODEL_DIR)
    if not os.path.exists(os.path.join(saved_model, "saved_model.pb")):
        raise ValueError(f"{export_dir} holds no SavedModel (no {saved_model}/saved_model.pb); "
                         f"run launch/export.py first")
    loaded = tf.saved_model.load(saved_model)
    serve = loaded.signatures["serving_default"]
    serve._loaded = loaded  # Keep the variables alive with the function.
    return serve, info

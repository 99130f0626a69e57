"""Export a model: SavedModel with a `serving_default` signature, `.keras`,
`export.json`, and on request ONNX / TFLite files (`export_formats`).

Two sources, the same export: a training run (`export_run(workdir, ...)`) or
a weights file (`export_weights(model, weights, ...)`: a `.weights.h5` for the
named configuration with its overrides, or a whole `.keras` model, e.g. what
`python -m affnet.weights.convert` wrote from the authors' released TF1
checkpoints).

Signature `serving_default`:
  images     (B, T, 96, 96, 3) float32 in [-1, 1]: the aligned 96x96 crops of
             preprocessing, normalised by `data_pipeline.reader.transforms.normalize_images`
             ((p - 127.5) / 127.5) whatever the weights; the model's first layer
             (`backbones.preprocessing.InputPreprocessing`) turns that into the
             normalisation its weights were trained on, which export.json
             records as `input_normalization`
  landmarks  (B, T, 136) float32: crop landmarks normalised by
             `transforms.normalize_landmarks` (ignored by models without landmarks,
             so every export has the same interface)
  spectrogram (B, T, F) float32, only for audio-visual models ([FBN]
             A/V-MT-VGG-GRU): `data_pipeline.media.audio` per-frame spectrogram patches
  -> valence_arousal (B, T, 2) float32 (valence, arousal); multi-task models
     ([FBN]) also `expression_probabilities` (B, T, 7) (softmax, the order of
     `data_pipeline.records.schema.EXPRESSIONS`) and `au_probabilities` (B, T, K)
     (sigmoid, `export.json` lists the AU names); a categorical model ([AW]
     Sec. 5.2) returns `expression_probabilities` only.
B and T are dynamic. A model trained at another input size gets the crops
resized inside the signature, bilinearly, as the training reader does.

`export.json` and the file names are defined by `affnet.export_format`.
"""

import dataclasses
import json
import os
import shutil
from typing import Optional, Tuple

import keras
import tensorflow as tf

from affnet import export_format, models
# Registers `CategoricalModel` ([AW] Sec. 5.2, outside the registry) for .keras files.
from affnet.models import categorical  # noqa: F401
from affnet.models.backbones.preprocessing import NORMALIZATION_NAMES, InputPreprocessing
from affnet.training import checkpointing, export_formats, modeling
from affnet.training import config as config_lib
from affnet.training.config import TrainConfig
from data_pipeline.faces import align
from data_pipeline.media import audio
from data_pipeline.records.schema import EXPRESSIONS, LANDMARK_DIM



class ServingModule(tf.Module):
    """The model behind the fixed serving interface (see the module docstring)."""

    def __init__(self, model: keras.Model, image_size: int, crop_size: int = export_format.CROP_SIZE,
                 sequence: bool = True):
        super().__init__(name="affnet_serving")
        self.model = model
        # Track every variable explicitly (see checkpointing.variable_map).
        self.model_variables = checkpointing.variable_map(model)
        self.sequence = sequence
        self.image_size = int(image_size)
        inputs = {t.name.split(":")[0]: t for t in model.inputs}
        self.takes_landmarks = "landmarks" in inputs
        self.spectrogram_dim = int(inputs["spectrogram"].shape[-1]) if "spectrogram" in inputs else 0
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


def load_weights_model(model_name: Optional[str], weights: str, overrides: Optional[dict] = None) -> keras.Model:
    """The float32 model of a weights file: `weights` ending in `.keras` is
    loaded whole (`model_name` is then only recorded, overrides are refused);
    `.weights.h5` is loaded into `affnet.models.build(model_name, **overrides)`."""
    overrides = dict(overrides or {})
    if not os.path.exists(weights):
        raise FileNotFoundError(f"{weights}: no such weights file")
    with modeling.precision("none"):
        if weights.endswith(".keras"):
            if overrides:
                raise ValueError(f"{weights}: a .keras file holds its whole model; --model_overrides "
                                 f"{overrides} would be ignored")
            models.names()  # Imports every model family: registers its classes with Keras.
            try:
                return keras.saving.load_model(weights, compile=False)
            except Exception as error:  # Keras raises many kinds for a foreign or corrupt file.
                first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
                raise ValueError(f"{weights}: not a Keras model file ({type(error).__name__}: {first})") from None
        if not weights.endswith(".weights.h5"):
            raise ValueError(f"{weights}: weights must end in '.weights.h5' or '.keras'")
        if not model_name:
            raise ValueError(f"{weights}: a .weights.h5 file needs --model (the configuration it was saved from)")
        model = models.build(model_name, **overrides)
        try:
            model.load_weights(weights)
        except ValueError as error:
            # Keras's message lists every layer on many lines: keep its first line.
            first = str(error).strip().splitlines()[0][:200]
            raise ValueError(f"{weights}: does not fit {model_name} with overrides {overrides} ({first}); "
                             "pass the overrides it was saved with (--model_overrides)") from None
    return model


def input_normalization(model: keras.Model):
    """The `input_normalization` of export.json: the name of the mode of every
    `InputPreprocessing` layer in `model` (one string when they agree, as in
    every single-backbone model; else {layer path: name})."""
    found = {}

    def visit(layer, prefix):
        for child in getattr(layer, "layers", []):
            path = f"{prefix}{child.name}"
            if isinstance(child, InputPreprocessing):
                found[path] = NORMALIZATION_NAMES[child.mode]
            visit(child, path + "/")

    visit(model, "")
    if not found:
        return NORMALIZATION_NAMES["none"]
    names = set(found.values())
    return names.pop() if len(names) == 1 else found


def _is_sequence(model: keras.Model) -> bool:
    inputs = {t.name.split(":")[0]: t for t in model.inputs}
    return len(inputs["images"].shape) == 5


def _image_size(model: keras.Model) -> int:
    inputs = {t.name.split(":")[0]: t for t in model.inputs}
    return int(inputs["images"].shape[-2])


def chosen_postprocess(workdir: str, eval_split: str, log=print) -> dict:
    """The median windows `launch/evaluate.py` chose on validation for `workdir`
    (from eval.json, else eval_<eval_split>.json, else any eval_*.json); windows
    1 (no filter) with `chosen_on` None, and a log line, when none was run."""
    candidates = ["eval.json", f"eval_{eval_split}.json"]
    if os.path.isdir(workdir):
        candidates += sorted(name for name in os.listdir(workdir)
                             if name.startswith("eval_") and name.endswith(".json") and name != "eval_history.json")
    for name in candidates:
        path = os.path.join(workdir, name)
        if not os.path.exists(path):
            continue
        with open(path) as f:
            result = json.load(f)
        windows = result.get("median_windows")
        if windows:
            chosen = {"median_windows": {"valence": int(windows["valence"]), "arousal": int(windows["arousal"])},
                      "chosen_on": windows.get("chosen_on"), "source": name}
            log(f"postprocess: median windows valence {chosen['median_windows']['valence']}, arousal "
                f"{chosen['median_windows']['arousal']}, chosen on {chosen['chosen_on']!r} ({path})")
            return chosen
    log(f"postprocess: no evaluation with median windows in {workdir} (run launch/evaluate.py first to choose "
        "them on validation); export.json records windows 1, no filtering")
    return no_postprocess()


def no_postprocess() -> dict:
    return {"median_windows": {"valence": 1, "arousal": 1}, "chosen_on": None}


_AUDIO_OPTIONS = {"audio_context": "context", "audio_bins": "bins", "audio_scale": "scale",
                  "audio_normalization": "normalization"}


def _nested_options(values, keys) -> dict:
    """{key: value} of the first dict holding any of `keys` in an options record
    (a preprocessing / adapter / synthetic report), searched through nested dicts."""
    if not isinstance(values, dict):
        return {}
    found = {key: values[key] for key in keys if key in values}
    if found:
        return found
    for value in values.values():
        found = _nested_options(value, keys)
        if found:
            return found
    return {}


def _training_data_options(data_dir: Optional[str], split: Optional[str], keys) -> Tuple[dict, Optional[str]]:
    """({key: value} for `keys` found in the options of the report.json / manifest.json of
    `data_dir/split` or `data_dir` (preprocess, adapters, synthetic set), that file's path)."""
    for directory in (os.path.join(data_dir, split), data_dir) if data_dir else ():
        for name in ("report.json", "manifest.json"):
            path = os.path.join(directory, name)
            if os.path.exists(path):
                with open(path) as f:
                    found = _nested_options(json.load(f), keys)
                if found:
                    return found, path
    return {}, None


def training_audio(data_dir: Optional[str], split: Optional[str], spectrogram_dim: int, log=print) -> dict:
    """The `SpectrogramConfig` fields the training data was written with (its
    `audio_*` options); the defaults with a log line when none is found. Raises
    ValueError if they do not give the model's spectrogram width."""
    found, source = _training_data_options(data_dir, split, _AUDIO_OPTIONS)
    options = {_AUDIO_OPTIONS[key]: value for key, value in found.items()}
    if not source:
        log(f"audio: no audio options found ({data_dir or 'no training data'}: report.json / manifest.json); "
            "export.json records the SpectrogramConfig defaults")
    config = audio.SpectrogramConfig(**options)
    if config.dim != spectrogram_dim:
        raise ValueError(f"{source or data_dir}: spectrogram settings {options or 'defaults'} give "
                         f"{config.dim} values per frame, the model takes {spectrogram_dim}")
    values = dataclasses.asdict(config)
    values["db_range"] = list(values["db_range"])
    return values


def training_alignment(data_dir: Optional[str], split: Optional[str], log=print) -> str:
    """The face alignment the training crops were made with (`--alignment`), so that
    predict makes its crops the same way ([MC] Sec. 4: one alignment for training and
    testing); [MC]'s similarity with a log line when the data does not say."""
    found, source = _training_data_options(data_dir, split, ("alignment",))
    if not source:
        log(f"alignment: not recorded ({data_dir or 'no training data'}: report.json / manifest.json); "
            f"export.json records {align.DEFAULT_METHOD}, [MC]'s")
    return found.get("alignment", align.DEFAULT_METHOD)


def export_model(model: keras.Model, output: str, info: dict, formats=export_format.DEFAULT_FORMATS,
                 audio_settings: Optional[dict] = None, log=print) -> dict:
    """Write `model` as an export under `output` (module docstring); `info`
    (the source, model name, overrides, seq_len, postprocess) starts export.json."""
    formats = check_formats(formats)
    os.makedirs(output, exist_ok=True)
    module = ServingModule(model, _image_size(model), sequence=_is_sequence(model))
    saved_model = os.path.join(output, export_format.SAVED_MODEL_DIR)
    # export.json is the completion record, written last: it goes first, and a killed export's
    # SavedModel (whose variables_temp/ a new save does not remove) with it.
    export_format.forget(output)
    shutil.rmtree(saved_model, ignore_errors=True)
    tf.saved_model.save(module, saved_model, signatures={"serving_default": module.serve})
    model.save(os.path.join(output, export_format.KERAS_FILE))
    outputs = sorted(module.serve.get_concrete_function().structured_outputs)
    info = {**info, "image_size": _image_size(model), "crop_size": export_format.CROP_SIZE,
            "landmarks": module.takes_landmarks,
            "input_normalization": input_normalization(model), "outputs": outputs,
            "au_names": list(getattr(model, "au_names", None) or [])}
    if "expression_probabilities" in outputs:
        info["expressions"] = list(EXPRESSIONS)
    if module.spectrogram_dim:
        if audio_settings is None:
            audio_settings = training_audio(None, None, module.spectrogram_dim, log)
        info["audio"] = audio_settings
    files = export_format.FORMAT_FILES
    written, details = {"saved_model": files["saved_model"]}, {}
    if "onnx" in formats:
        details["onnx"] = export_formats.write_onnx(module.serve, os.path.join(output, files["onnx"]))
        written["onnx"] = files["onnx"]
    if "tflite" in formats:
        details["tflite"] = export_formats.write_tflite(module.serve, os.path.join(output, files["tflite"]))
        written["tflite"] = files["tflite"]
    info.update(formats=written, format_details=details, saved_model=os.path.abspath(saved_model),
                keras=os.path.abspath(os.path.join(output, export_format.KERAS_FILE)))
    export_format.write(output, info)
    log(f"exported {info['model']} ({', '.join(written)}; input normalisation {info['input_normalization']}) "
        f"-> {output}")
    return info


def export_run(workdir: str, output: str, checkpoint: str = "best", formats=export_format.DEFAULT_FORMATS,
               log=print) -> dict:
    """Export a training run's checkpoint; export.json carries the run's
    seq_len, the post-processing chosen on validation and, for audio-visual
    models, the spectrogram settings of its training data."""
    formats = check_formats(formats)
    config, model, path = load_run_model(workdir, checkpoint)
    spectrogram_dim = _spectrogram_dim(model)
    audio_settings = (training_audio(config.data.dir, config.data.train_split, spectrogram_dim, log)
                      if spectrogram_dim else None)
    info = {"source": "run", "workdir": os.path.abspath(workdir), "checkpoint": path, "model": config.model.name,
            "model_overrides": dict(config.model.overrides), "seq_len": config.data.seq_len,
            "alignment": training_alignment(config.data.dir, config.data.train_split, log),
            "postprocess": chosen_postprocess(workdir, config.data.eval_split, log)}
    return export_model(model, output, info, formats, audio_settings, log)


def export_weights(model_name: Optional[str], weights: str, output: str, overrides: Optional[dict] = None,
                   seq_len: int = export_format.DEFAULT_SEQ_LEN, formats=export_format.DEFAULT_FORMATS,
                   log=print) -> dict:
    """Export a weights file (see `load_weights_model`), with no run behind it:
    no post-processing, `seq_len` the window predict uses (80, [AW] / [AW2])."""
    formats = check_formats(formats)
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive int, got {seq_len!r}")
    model = load_weights_model(model_name, weights, overrides)
    log(f"postprocess: exporting {weights} without an evaluation; export.json records median windows 1, "
        "no filtering")
    info = {"source": "weights", "weights": os.path.abspath(weights), "model": model_name or model.name,
            "model_overrides": dict(overrides or {}), "seq_len": seq_len, "postprocess": no_postprocess()}
    return export_model(model, output, info, formats, log=log)


def _spectrogram_dim(model) -> int:
    inputs = {t.name.split(":")[0]: t for t in model.inputs}
    return int(inputs["spectrogram"].shape[-1]) if "spectrogram" in inputs else 0


def check_formats(formats) -> tuple:
    """`formats` (a sequence or a comma-separated string) as a tuple of `export_format.FORMATS`,
    always with "saved_model" (the ONNX / TFLite files are converted from it)."""
    if isinstance(formats, str):
        formats = [item.strip() for item in formats.split(",") if item.strip()]
    unknown = [item for item in formats if item not in export_format.FORMATS]
    if unknown:
        raise ValueError(f"formats must be among {export_format.FORMATS}, got {unknown}")
    if "saved_model" not in formats:
        raise ValueError(f"formats must include 'saved_model' (the other formats are converted from it), "
                         f"got {list(formats)}")
    return tuple(formats)


def load_serving(export_dir: str):
    """(serving function, export.json dict) of an export directory (or a bare SavedModel)."""
    exported = export_format.ExportInfo.read(export_dir)
    saved_model = exported.path("saved_model")
    if "saved_model" not in exported.available():
        raise ValueError(f"{export_dir} holds no SavedModel (no {saved_model}/saved_model.pb); "
                         f"run launch/export.py first")
    info = exported.raw
    loaded = tf.saved_model.load(saved_model)
    serve = loaded.signatures["serving_default"]
    serve._loaded = loaded  # Keep the variables alive with the function.
    return serve, info

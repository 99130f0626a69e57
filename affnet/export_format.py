"""The export directory, defined once: its file names, `export.json` keys and
defaults, how it is written and read. `affnet/training/export.py` writes it,
`affnet/predict` reads it; neither holds a file name or key of its own. No
TensorFlow here, so predict can read an export before choosing a runtime.

An export directory holds `saved_model/` (signature `serving_default`),
`model.keras`, optionally `model.onnx` and `model.tflite`, and `export.json`,
written last: it is the record that the export is complete (a killed export
without it is redone). Its keys (paths relative to the export directory unless
absolute):
  model, model_overrides, seq_len, image_size, crop_size, landmarks, outputs,
  au_names; `source` ("run" or "weights") with workdir + checkpoint or weights;
  `input_normalization` (what pixels the weights were trained on, applied
  inside the model); `postprocess` {"median_windows": {"valence", "arousal"},
  "chosen_on"} ([MC] / [OMG] median filter chosen on validation; windows 1
  without an evaluation); `expressions` for models with expression outputs;
  `audio` (the `SpectrogramConfig` of the training data) for audio-visual
  models; `alignment` (how the training crops were aligned, `--alignment`:
  predict makes its crops the same way); `formats` {format: path} with
  `format_details` (fixed shapes);
  `saved_model` and `keras` absolute paths.
A bare SavedModel directory (no export.json) reads as the defaults below.
"""

import dataclasses
import json
import os
from typing import Dict, Optional, Sequence, Tuple

from data_pipeline.base import atomic, checks
from data_pipeline.faces import align
from data_pipeline.records.schema import EXPRESSIONS

EXPORT_INFO = "export.json"
SAVED_MODEL_DIR = "saved_model"
KERAS_FILE = "model.keras"
FORMAT_FILES = {"saved_model": SAVED_MODEL_DIR, "onnx": "model.onnx", "tflite": "model.tflite"}
FORMATS = tuple(FORMAT_FILES)
DEFAULT_FORMATS = ("saved_model",)
CROP_SIZE = 96  # Preprocessing's aligned crops ([MC], [FBN]: 96x96x3).
DEFAULT_SEQ_LEN = 80  # [AW] / [AW2]: sequences of 80 frames.
OUTPUTS = ("valence_arousal", "expression_probabilities", "au_probabilities")


def input_names(landmarks: bool, spectrogram: bool = False) -> Tuple[str, ...]:
    """The serving signature's inputs: images (B, T, 96, 96, 3) in [-1, 1], then
    landmarks (B, T, 136) and spectrogram (B, T, F) when the model takes them."""
    return ("images",) + (("landmarks",) if landmarks else ()) + (("spectrogram",) if spectrogram else ())


@dataclasses.dataclass(frozen=True)
class ExportInfo:
    """An export directory as its `export.json` describes it."""

    directory: str
    model: Optional[str] = None
    seq_len: int = DEFAULT_SEQ_LEN
    crop_size: int = CROP_SIZE
    landmarks: bool = False
    outputs: Tuple[str, ...] = ("valence_arousal",)
    au_names: Tuple[str, ...] = ()
    expressions: Tuple[str, ...] = EXPRESSIONS
    median_windows: Optional[Tuple[int, int]] = None  # (valence, arousal); None: no filter chosen.
    audio: Optional[dict] = None  # SpectrogramConfig fields.
    alignment: str = align.DEFAULT_METHOD  # Exports that do not record theirs: [MC]'s.
    formats: Dict[str, str] = dataclasses.field(default_factory=dict)
    raw: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def read(cls, export_dir: str) -> "ExportInfo":
        if not os.path.isdir(export_dir):
            raise FileNotFoundError(f"{export_dir}: no such export directory")
        path = os.path.join(export_dir, EXPORT_INFO)
        if not os.path.exists(path):  # A bare SavedModel directory.
            return cls(export_dir, formats={"saved_model": "."})
        try:
            with open(path) as f:
                raw = json.load(f)
        except ValueError as error:
            raise ValueError(f"{path}: not valid JSON: {error}") from error
        windows = (raw.get("postprocess") or {}).get("median_windows")
        if windows is not None:
            windows = (int(windows.get("valence", 1)), int(windows.get("arousal", 1)))
        return cls(export_dir, model=raw.get("model"), seq_len=int(raw.get("seq_len") or DEFAULT_SEQ_LEN),
                   crop_size=int(raw.get("crop_size", CROP_SIZE)), landmarks=bool(raw.get("landmarks", False)),
                   outputs=tuple(raw.get("outputs") or ("valence_arousal",)),
                   au_names=tuple(raw.get("au_names") or ()),
                   expressions=tuple(raw.get("expressions") or EXPRESSIONS),
                   median_windows=windows, audio=raw.get("audio"),
                   alignment=checks.check_choice(raw.get("alignment") or align.DEFAULT_METHOD,
                                                 f"{export_dir}: export.json alignment", align.METHODS),
                   formats=dict(raw.get("formats") or {"saved_model": SAVED_MODEL_DIR}), raw=raw)

    @property
    def input_names(self) -> Tuple[str, ...]:
        return input_names(self.landmarks, self.audio is not None)

    def path(self, backend: str) -> str:
        """The file or directory of one format (existing or not)."""
        return os.path.normpath(os.path.join(self.directory, self.formats.get(backend, FORMAT_FILES[backend])))

    def available(self) -> Sequence[str]:
        """The formats present, the SavedModel first."""
        found = []
        if os.path.exists(os.path.join(self.path("saved_model"), "saved_model.pb")):
            found.append("saved_model")
        found += [b for b in ("onnx", "tflite") if os.path.isfile(self.path(b))]
        return found


def forget(output: str) -> None:
    """Remove `output`'s completion record (and its temporary) before an export is (re)written."""
    path = os.path.join(output, EXPORT_INFO)
    atomic.remove_temporaries([path])
    if os.path.exists(path):
        os.remove(path)


def write(output: str, info: dict) -> str:
    """Write `info` as `output/export.json` atomically (the last file of an export)."""
    path = os.path.join(output, EXPORT_INFO)
    atomic.write_json(path, info)
    return path

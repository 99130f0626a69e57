"""The model of an export directory (launch/export.py), whatever format it holds.

`load(export_dir, precision, backend)` reads the export (`affnet.export_format`;
a bare SavedModel directory has no export.json) and
opens, in this order unless `backend` names one: the SavedModel, `model.onnx`
(onnxruntime), `model.tflite` (TensorFlow's TFLite interpreter). Every
runtime is called with numpy arrays of the serving signature
(`affnet.training.export`): images (B, T, S, S, 3) float32 in [-1, 1],
landmarks (B, T, 136), and spectrogram (B, T, F) for audio-visual exports,
and returns a dict of numpy outputs (valence_arousal, expression_probabilities,
au_probabilities: whichever the export has).

precision "bfloat16" (SavedModel only) turns on TensorFlow's oneDNN
auto-mixed-precision graph rewrite, which runs convolutions and matmuls in
bfloat16 on CPUs with AVX512-BF16 / AMX. It is a process-wide TensorFlow
option, set before the SavedModel's functions are first traced.
"""

from typing import Dict

import numpy as np

from affnet.export_format import ExportInfo

BACKENDS = ("auto", "saved_model", "onnx", "tflite")
PRECISIONS = ("float32", "bfloat16")


class SavedModelRuntime:
    def __init__(self, path: str, precision: str):
        import tensorflow as tf

        if precision == "bfloat16":
            tf.config.optimizer.set_experimental_options({"auto_mixed_precision_onednn_bfloat16": True})
        self._loaded = tf.saved_model.load(path)
        self._serve = self._loaded.signatures["serving_default"]
        self.input_names = tuple(self._serve.structured_input_signature[1])
        self.spectrogram_dim = (int(self._serve.structured_input_signature[1]["spectrogram"].shape[-1])
                                if "spectrogram" in self.input_names else 0)
        self._tf = tf

    def __call__(self, **inputs) -> Dict[str, np.ndarray]:
        tensors = {k: self._tf.constant(v) for k, v in inputs.items() if k in self.input_names}
        return {k: v.numpy() for k, v in self._serve(**tensors).items()}


class OnnxRuntime:
    def __init__(self, path: str, precision: str):
        if precision != "float32":
            raise ValueError(f"{path}: precision {precision!r} needs the SavedModel; ONNX runs float32")
        try:
            import onnxruntime  # Optional: only ONNX exports need it.
        except ImportError as error:
            raise ValueError(f"{path}: reading ONNX needs onnxruntime (pip install onnxruntime)") from error
        self._session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.input_names = tuple(i.name for i in self._session.get_inputs())
        self._output_names = [o.name for o in self._session.get_outputs()]
        spectrogram = [i for i in self._session.get_inputs() if i.name == "spectrogram"]
        self.spectrogram_dim = int(spectrogram[0].shape[-1]) if spectrogram else 0

    def __call__(self, **inputs) -> Dict[str, np.ndarray]:
        feeds = {k: np.asarray(v, np.float32) for k, v in inputs.items() if k in self.input_names}
        return dict(zip(self._output_names, self._session.run(self._output_names, feeds)))


class TfliteRuntime:
    def __init__(self, path: str, precision: str):
        if precision != "float32":
            raise ValueError(f"{path}: precision {precision!r} needs the SavedModel; TFLite runs float32")
        import tensorflow as tf

        self._interpreter = tf.lite.Interpreter(model_path=path)
        # The signature runner resizes its inputs to each call's (B, T) and re-allocates.
        self._runner = self._interpreter.get_signature_runner()
        details = self._runner.get_input_details()
        self.input_names = tuple(details)
        self.spectrogram_dim = int(details["spectrogram"]["shape"][-1]) if "spectrogram" in details else 0

    def __call__(self, **inputs) -> Dict[str, np.ndarray]:
        feeds = {k: np.asarray(v, np.float32) for k, v in inputs.items() if k in self.input_names}
        # The TFLite export takes one window at a time (batch 1, `export.json` format_details: a
        # dynamic batch needs Flex ops this interpreter lacks); a batch is run row by row.
        batch = len(next(iter(feeds.values())))
        rows = [self._runner(**{k: v[i:i + 1] for k, v in feeds.items()}) for i in range(batch)]
        return {k: np.concatenate([np.array(row[k]) for row in rows]) for k in rows[0]}


_RUNTIMES = {"saved_model": SavedModelRuntime, "onnx": OnnxRuntime, "tflite": TfliteRuntime}


def load(export_dir: str, precision: str = "float32", backend: str = "auto"):
    """(runtime, ExportInfo) of an export directory; ValueError / FileNotFoundError name the problem."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    info = ExportInfo.read(export_dir)
    available = info.available()
    if not available:
        raise ValueError(f"{export_dir}: holds no SavedModel, model.onnx or model.tflite; run launch/export.py")
    if backend == "auto":
        backend = available[0]
    elif backend not in available:
        raise ValueError(f"{export_dir}: holds no {backend} model (has {', '.join(available)})")
    return _RUNTIMES[backend](info.path(backend), precision), info

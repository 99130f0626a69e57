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
bfloat16 on CPUs with AVX512-BF16 / AMX; precision "float16" (SavedModel on a
GPU) turns on its CUDA auto-mixed-precision rewrite, float16 tensor-core
convolutions and matmuls with float32 kept where its deny list wants it. Both
are process-wide TensorFlow options, set before the SavedModel's functions are
first traced. TensorFlow has no bfloat16 graph rewrite for GPUs (the CUDA pass
targets float16 only) and no float16 one for CPUs, so each precision refuses
the other device. precision "auto" (`choose_precision`) takes, for a
SavedModel: float16 where TensorFlow sees a GPU; bfloat16 on a CPU whose
/proc/cpuinfo flags name amx_bf16 or avx512_bf16 (there the rewrite runs
native bfloat16 instructions); float32 elsewhere (without them oneDNN emulates
bfloat16 and is slower than float32). ONNX and TFLite run float32.
AFFNET_AUTO_PRECISION=float32|bfloat16|float16 pins what auto means (a site
policy; the test suite pins float32). The runtime's `precision` /
`precision_reason` say what was chosen.
"""

import os
from typing import Dict, Optional, Tuple

import numpy as np

from data_pipeline.base import checks
from affnet.export_format import ExportInfo

BACKENDS = ("auto", "saved_model", "onnx", "tflite")
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo names of native bfloat16 matmul support.
AUTO_PRECISION_ENV = "AFFNET_AUTO_PRECISION"  # float32 / bfloat16 / float16: what "auto" means on this machine.
# Each reduced precision is a process-wide grappler rewrite: oneDNN bfloat16 on CPUs, CUDA float16 on GPUs.
_REWRITES = {"bfloat16": "auto_mixed_precision_onednn_bfloat16", "float16": "auto_mixed_precision"}


class SavedModelRuntime:
    def __init__(self, path: str, precision: str):
        import tensorflow as tf

        if precision == "float16" and not gpu_count():
            raise ValueError(f"{path}: precision 'float16' needs a GPU (TensorFlow's float16 rewrite converts "
                             "GPU ops only); on a CPU use bfloat16 or float32")
        if precision in _REWRITES:
            tf.config.optimizer.set_experimental_options({_REWRITES[precision]: True})
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


def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset:
    """The CPU's feature flags (the first `flags` line of /proc/cpuinfo); empty where there is none."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    return frozenset()


def gpu_count() -> int:
    """GPUs TensorFlow sees (imports TensorFlow: only runtimes that need it ask)."""
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


def choose_precision(precision: str, backend: str, flags: Optional[frozenset] = None,
                     gpus: Optional[int] = None) -> Tuple[str, str]:
    """(precision to run, why) for a requested precision and a resolved backend (module docstring)."""
    if precision != "auto":
        return precision, "requested"
    pinned = os.environ.get(AUTO_PRECISION_ENV, "")
    if pinned:
        checks.check_choice(pinned, AUTO_PRECISION_ENV, PRECISIONS[1:])
        return ("float32" if backend != "saved_model" else pinned), f"auto: {AUTO_PRECISION_ENV}={pinned}"
    if backend != "saved_model":
        return "float32", f"auto: {backend} runs float32"
    gpus = gpu_count() if gpus is None else gpus
    if gpus:
        return "float16", "auto: a GPU (TensorFlow's mixed-precision rewrite for GPUs is float16)"
    flags = cpu_flags() if flags is None else flags
    native = [flag for flag in BF16_CPU_FLAGS if flag in flags]
    if native:
        return "bfloat16", f"auto: the CPU has {native[0]}"
    return "float32", "auto: no GPU, and the CPU has no amx_bf16 / avx512_bf16"


def load(export_dir: str, precision: str = "auto", backend: str = "auto"):
    """(runtime, ExportInfo) of an export directory; ValueError / FileNotFoundError name the problem."""
    checks.check_choice(precision, "precision", PRECISIONS)
    checks.check_choice(backend, "backend", BACKENDS)
    info = ExportInfo.read(export_dir)
    available = info.available()
    if not available:
        raise ValueError(f"{export_dir}: holds no SavedModel, model.onnx or model.tflite; run launch/export.py")
    if backend == "auto":
        backend = available[0]
    elif backend not in available:
        raise ValueError(f"{export_dir}: holds no {backend} model (has {', '.join(available)})")
    chosen, reason = choose_precision(precision, backend)
    model = _RUNTIMES[backend](info.path(backend), chosen)
    model.precision, model.precision_reason = chosen, reason
    return model, info

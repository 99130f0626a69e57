"""Export a trained run, or a weights file, for serving: `DIR/saved_model`
(signature `serving_default`: images (B, T, 96, 96, 3) float32 in [-1, 1],
landmarks (B, T, 136) -> valence_arousal (B, T, 2)), `DIR/model.keras`,
`DIR/export.json`, and with `--formats` `DIR/model.onnx`, `DIR/model.tflite`
(see `affnet.training.export`).

  python launch/export.py --workdir=runs/affwild2 --output=runs/affwild2/export
  python launch/export.py --model=affwildnet_vggface_gru_released \\
      --weights=checkpoints/affwildnet_vggface_gru.weights.h5 --output=exports/affwildnet_vggface_gru
  python launch/export.py --workdir=runs/affwild2 --formats=saved_model,onnx,tflite
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _paths  # noqa: E402

_paths.ensure_importable()
import _cli  # noqa: E402  (before TensorFlow: silences its C++ logs)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "The run's workdir (export a training run).")
_WEIGHTS = flags.DEFINE_string("weights", None, "A .weights.h5 (with --model) or .keras file to export instead "
                               "of a run, e.g. what `python -m affnet.weights.convert` wrote.")
_MODEL = flags.DEFINE_string("model", None, "With --weights: the registry name the weights were saved from.")
_MODEL_OVERRIDES = flags.DEFINE_string("model_overrides", "", "With --weights: build overrides as in train, "
                                       "e.g. 'width=0.125,fc_units=16' (what the converter printed).")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 80, "With --weights: the window predict uses, recorded in "
                                "export.json ([AW] / [AW2] train on 80 frames). A run records its own.")
_OUTPUT = flags.DEFINE_string("output", "", "Export directory; default <workdir>/export (required with --weights).")
_CHECKPOINT = flags.DEFINE_string("checkpoint", "best", "With --workdir: best | latest | a checkpoint prefix.")
_FORMATS = flags.DEFINE_list("formats", ["saved_model"], "Comma-separated among saved_model, onnx (needs "
                             "pip install 'affnet[onnx]'), tflite; saved_model is always written.")


def _export():
    from affnet.training import export
    from affnet.training.config import parse_overrides

    if bool(_WORKDIR.value) == bool(_WEIGHTS.value):
        raise ValueError("give exactly one of --workdir (a training run) or --weights (a weights file)")
    log = lambda message: print(message, file=sys.stderr)  # noqa: E731  stdout carries the JSON.
    if _WORKDIR.value:
        if _MODEL.value or _MODEL_OVERRIDES.value:
            raise ValueError("--model and --model_overrides go with --weights; a run records its own model")
        return export.export_run(_WORKDIR.value, _OUTPUT.value or os.path.join(_WORKDIR.value, "export"),
                                 _CHECKPOINT.value, _FORMATS.value, log=log)
    if not _OUTPUT.value:
        raise ValueError("--weights needs --output (the export directory)")
    return export.export_weights(_MODEL.value, _WEIGHTS.value, _OUTPUT.value,
                                 parse_overrides(_MODEL_OVERRIDES.value), _SEQ_LEN.value, _FORMATS.value, log=log)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    try:
        info = _export()
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(info, indent=1))


def run():
    """The `affnet-export` console script."""
    _cli.run(main)


if __name__ == "__main__":
    run()

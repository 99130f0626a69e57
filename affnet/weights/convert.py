"""Convert released weights into an affnet model and save them.

  python -m affnet.weights.convert --format=tf1 --checkpoint=PATH \\
      --model=affwildnet_vggface --output=checkpoints/affwildnet_vggface_gru.weights.h5
  python -m affnet.weights.convert --format=vggface_h5 \\
      --checkpoint=rcmalli_vggface_tf_notop_vgg16.h5 --model=vggface_gru \\
      --output=checkpoints/vggface_gru_init.weights.h5

Formats:
  tf1          the authors' TF1 checkpoints (dkollias/Aff-Wild-models), see
               `tf1_checkpoint`; `--model` is built with the overrides of
               `TF1_MODELS` that make it the released graph.
  vggface_h5   keras-vggface VGG16 (VGGFace1) / RESNET50 (VGGFace2) .h5 into
               the model's backbone, see `keras_h5`.
  imagenet_h5  Keras applications VGG16 / DenseNet-121 ImageNet .h5 into the
               model's backbone.

`--output` ending in `.weights.h5` is written with `save_weights` (load with
`affnet.models.build(model, **overrides).load_weights(path)`, the overrides
printed by the command); ending in `.keras`, the whole model is saved.
`--set key=value` adds build overrides (Python literals), e.g. `--set
input_size=112`.

The options are parsed with argparse, not absl: this module is importable
library code, and absl flags are defined only in `launch/` (STYLE.md).
"""

import os
from typing import Dict, Mapping, Optional

from data_pipeline.base import atomic, checks, cli, key_values

# The models and the weight readers (TensorFlow) are imported where they are used, so that
# `python -m affnet.weights.convert --help` answers at once (tests/test_architecture.py lists
# these lazy imports as on purpose).

FORMATS = ("tf1", "vggface_h5", "imagenet_h5")
_H5_LAYOUTS = {"vggface_h5": ("vggface_vgg16", "vggface_resnet50"),
               "imagenet_h5": ("imagenet_vgg16", "imagenet_densenet121")}

# Registry name -> overrides giving the released TF1 graph ([code]
# Aff-Wild-models): no landmarks, no dropout at inference, (p - 128) / 128
# pixels ("tf1", see `backbones.preprocessing`); the ResNet-GRU uses slim's
# resnet_v1_50 and no FC layer. The `_released` registry entries already
# default to these.
TF1_MODELS: Dict[str, Mapping] = {
    "vggface_4096x4096x2": {},
    "vggface_4096x2000x2": {},
    "affwildnet_vggface_gru_released": {},
    "affwildnet_resnet_gru_released": {},
    "affwildnet_vggface": dict(landmarks=False, dropout=0.0, input_preprocessing="tf1"),
    "affwildnet_resnet50": dict(backbone="resnet50_slim", fc_units=0, landmarks=False, dropout=0.0,
                                input_preprocessing="tf1"),
}


def build_for_tf1(model_name, **overrides):
    """`models.build(model_name)` with `TF1_MODELS` overrides, then `overrides`."""
    from affnet import models  # Lazy: see the imports.

    if model_name not in TF1_MODELS:
        raise ValueError(f"model {model_name!r} has no released TF1 checkpoint; use one of {sorted(TF1_MODELS)}")
    return models.build(model_name, **{**TF1_MODELS[model_name], **overrides})


def _check_output(output):
    if not (output.endswith(".weights.h5") or output.endswith(".keras")):
        raise ValueError(f"output must end in '.weights.h5' or '.keras', got {output!r}")


def convert(format, checkpoint, model_name, output: Optional[str] = None, **overrides):
    """Build `model_name`, load `checkpoint` of `format` into it, and save it
    to `output` if given. Returns (model, report, build overrides used)."""
    from affnet import models  # Lazy: see the imports.
    from affnet.weights import keras_h5, tf1_checkpoint

    checks.check_choice(format, "format", FORMATS)
    if output is not None:
        _check_output(output)
    if format == "tf1":
        used = {**TF1_MODELS.get(model_name, {}), **overrides}
        model = build_for_tf1(model_name, **overrides)
        report = tf1_checkpoint.load_tf1_checkpoint(model, checkpoint)
    else:
        layers = keras_h5.read_keras_h5(checkpoint)
        layout = keras_h5.detect_layout(layers, checkpoint)
        if layout not in _H5_LAYOUTS[format]:
            raise ValueError(f"{checkpoint}: holds {layout} weights, not one of {format}'s "
                             f"{_H5_LAYOUTS[format]}")
        model = models.build(model_name, **overrides)
        report = keras_h5.load_keras_h5(model, checkpoint, layout=layout)
        used = {**overrides, "input_preprocessing": keras_h5.LAYOUTS[layout].input_preprocessing}
    if output is not None:
        directory = os.path.dirname(output)
        if directory:
            os.makedirs(directory, exist_ok=True)
        save(model, output)
    return model, report, used


def save(model, output):
    """`model` to `output` (`.keras`: the whole model; `.weights.h5`: its weights), whole or not at all.

    Keras picks the format by the suffix, so the temporary keeps it (`<output>.tmp.keras`,
    `<output>.tmp.weights.h5`); one left by a killed run is overwritten by the next.
    """
    suffix = ".keras" if output.endswith(".keras") else ".weights.h5"
    temporary = atomic.temporary_path(output) + suffix
    atomic.replace_atomically(output, model.save if suffix == ".keras" else model.save_weights, temporary)


def _parser():
    parser = cli.ArgumentParser(prog="python -m affnet.weights.convert", description=__doc__.split("\n")[0])
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--checkpoint", "--weights", dest="checkpoint", required=True,
                        help="TF1 checkpoint prefix/directory, or the .h5 file")
    parser.add_argument("--model", required=True, help="registry name (affnet.models.names())")
    parser.add_argument("--output", required=True, help="*.weights.h5 or *.keras")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="extra build override")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    cli.import_tensorflow_quietly()  # After parsing: --help never loads TensorFlow.
    model, report, used = convert(args.format, args.checkpoint, args.model, args.output,
                                  **key_values.parse(args.set, "--set"))
    count = len(getattr(report, "assigned", None) or getattr(report, "loaded", []))
    print(f"{args.checkpoint} ({report.layout}): {count} tensors/layers loaded into {args.model}")
    for name in getattr(report, "unused", []):
        print(f"  unused checkpoint variable: {name}")
    for name in getattr(report, "untouched", []):
        print(f"  not in the file, left as initialised: {name}")
    print(f"saved {args.output}; rebuild with affnet.models.build({args.model!r}, **{used!r})")
    print(f"export it with: {export_command(args.model, args.output, used)}")
    return 0


def export_command(model_name, weights, overrides) -> str:
    """The `launch/export.py --weights` command for a converted file (overrides
    in `--model_overrides` syntax: Python literals without spaces)."""
    command = f"python launch/export.py --weights={weights} --output=exports/{model_name}"
    if weights.endswith(".weights.h5"):
        command += f" --model={model_name}"
        if overrides:
            command += " --model_overrides=" + ",".join(
                f"{key}={value if isinstance(value, str) else repr(value).replace(' ', '')}"
                for key, value in overrides.items())
    return command


if __name__ == "__main__":
    cli.run(main)

"""Pre-trained weights: the authors' TF1 checkpoints and keras-vggface /
Keras ImageNet .h5 files, mapped onto affnet models by layer name.

  load_tf1_checkpoint(model, path)        released AffWildNet / VGG-Face CNN checkpoints
  load_keras_h5(model, path, layout=None) backbone weights from Keras-2 .h5 files
  convert_weights(format, checkpoint, model_name, output=None, **overrides)
                                          build + load + save (`convert.convert`,
                                          the CLI `python -m affnet.weights.convert`)

Where each file comes from and its terms: checkpoints/README.md.
"""

from data_pipeline import cli

cli.import_tensorflow_quietly()  # `python -m affnet.weights.convert` must not print TF's start-up lines.

from affnet.weights.keras_h5 import LAYOUTS, load_keras_h5, read_keras_h5  # noqa: E402
from affnet.weights.tf1_checkpoint import load_tf1_checkpoint, read_checkpoint  # noqa: E402

# From `convert` on first use: importing it here would load the module twice under
# `python -m affnet.weights.convert` (runpy's RuntimeWarning).
_FROM_CONVERT = {"FORMATS": "FORMATS", "TF1_MODELS": "TF1_MODELS", "build_for_tf1": "build_for_tf1",
                 "convert_weights": "convert"}


def __getattr__(name):
    if name in _FROM_CONVERT:
        from affnet.weights import convert

        return getattr(convert, _FROM_CONVERT[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["FORMATS", "LAYOUTS", "TF1_MODELS", "build_for_tf1", "convert_weights", "load_keras_h5",
           "load_tf1_checkpoint", "read_checkpoint", "read_keras_h5"]

"""Pre-trained weights: the authors' TF1 checkpoints and keras-vggface /
Keras ImageNet .h5 files, mapped onto affnet models by layer name.

  load_tf1_checkpoint(model, path)        released AffWildNet / VGG-Face CNN checkpoints
  load_keras_h5(model, path, layout=None) backbone weights from Keras-2 .h5 files
  convert_weights(format, checkpoint, model_name, output=None, **overrides)
                                          build + load + save (`convert.convert`,
                                          the CLI `python -m affnet.weights.convert`)

Where each file comes from and its terms: checkpoints/README.md.
"""

from affnet.weights.convert import FORMATS, TF1_MODELS, build_for_tf1
from affnet.weights.convert import convert as convert_weights
from affnet.weights.keras_h5 import LAYOUTS, load_keras_h5, read_keras_h5
from affnet.weights.tf1_checkpoint import load_tf1_checkpoint, read_checkpoint

__all__ = ["FORMATS", "LAYOUTS", "TF1_MODELS", "build_for_tf1", "convert_weights", "load_keras_h5",
           "load_tf1_checkpoint", "read_checkpoint", "read_keras_h5"]

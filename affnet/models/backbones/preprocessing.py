"""`InputPreprocessing`: from affnet's [-1, 1] RGB contract to a backbone's
pre-training normalisation.

Every affnet backbone takes (S, S, 3) float32 RGB in [-1, 1], produced from
uint8 pixels by the reader's (p - 127.5) / 127.5
(`data_pipeline.reader.transforms.normalize_images`). The normalisation belongs to
the weights, not to the serving interface: every set of weights was trained
on its own, and this layer, always the first layer of a backbone (named
"input_preprocessing"), converts [-1, 1] to it:

  "none"            identity: models trained here, on the reader's
                    (p - 127.5) / 127.5 ("symmetric" in export.json).
  "tf1"             (p - 128) / 128: the released TF1 Aff-Wild models
                    (dkollias/Aff-Wild-models); 255 maps to
                    0.992. Feeding them (p - 127.5) / 127.5 instead moves a
                    VGG-Face CNN's outputs by up to 1.4e-2.
  "vggface1"        0..255 BGR minus VGGFace1 means [93.5940, 104.7624, 129.1863]
                    (keras-vggface `preprocess_input(version=1)`, VGG-Face).
  "vggface2"        0..255 BGR minus VGGFace2 means [91.4953, 103.8827, 131.0912]
                    (keras-vggface `version=2`, ResNet-50 / SENet-50).
  "caffe_imagenet"  0..255 BGR minus ImageNet means [103.939, 116.779, 123.68]
                    (Keras VGG-16 / ResNet-50 ImageNet weights).
  "torch_imagenet"  0..1 RGB, minus [0.485, 0.456, 0.406], divided by
                    [0.229, 0.224, 0.225] (Keras DenseNet ImageNet weights).

0..255 pixels are recovered as x * 127.5 + 127.5, the exact inverse of the
reader's normalisation (one constant, `transforms.PIXEL_MIDPOINT`, serves
both). The layer computes in float32 whatever the dtype policy, because
subtracting ~100 from 0..255 values in bfloat16 loses the low bits of every
pixel.
"""

import keras
from keras import ops

from data_pipeline.base import checks
from data_pipeline.reader.transforms import PIXEL_MIDPOINT

_BGR_MEANS = {
    "vggface1": (93.5940, 104.7624, 129.1863),
    "vggface2": (91.4953, 103.8827, 131.0912),
    "caffe_imagenet": (103.939, 116.779, 123.68),
}
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)

# The released TF1 code's (p - TF1_CENTRE) / TF1_CENTRE.
TF1_CENTRE = 128.0

MODES = ("none", "tf1") + tuple(_BGR_MEANS) + ("torch_imagenet",)

# Mode -> the `input_normalization` name export.json records: what uint8
# pixels the weights were trained on (the serving input stays [-1, 1]).
NORMALIZATION_NAMES = {"none": "symmetric", **{mode: mode for mode in MODES[1:]}}


def check_mode(mode):
    """Raise ValueError unless `mode` is one of `MODES`."""
    checks.check_choice(mode, "input_preprocessing", MODES)
    return mode


@keras.saving.register_keras_serializable(package="affnet")
class InputPreprocessing(keras.layers.Layer):
    """[-1, 1] RGB -> the normalisation `mode` a set of weights was trained on."""

    def __init__(self, mode="none", **kwargs):
        # float32 regardless of the global policy (see the module docstring).
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.mode = check_mode(mode)

    def call(self, x):
        if self.mode == "none":
            return x
        pixels = x * PIXEL_MIDPOINT + PIXEL_MIDPOINT
        if self.mode == "tf1":
            return (pixels - TF1_CENTRE) / TF1_CENTRE
        if self.mode == "torch_imagenet":
            mean = ops.convert_to_tensor(_TORCH_MEAN, dtype=pixels.dtype)
            std = ops.convert_to_tensor(_TORCH_STD, dtype=pixels.dtype)
            return (pixels / 255.0 - mean) / std
        bgr = ops.flip(pixels, axis=-1)
        return bgr - ops.convert_to_tensor(_BGR_MEANS[self.mode], dtype=pixels.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}

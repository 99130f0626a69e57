"""Frame-level backbones: each a nested functional `keras.Model` with a fixed
name, input `images` (S, S, 3) float32 RGB in [-1, 1], first layer
`input_preprocessing` (see `preprocessing`).

  name            builder              layer names                        output at 96x96
  vggface, vgg16  `vgg.vgg`            conv1_1..conv5_3, pool1..pool5     pool5 3x3x512
  resnet50        `resnet.resnet50`    keras-vggface, "/" -> "_"          3x3x2048 (or 2048)
  densenet121     `densenet.densenet121` keras.applications             3x3x1024 (or 1024)
  cnn_m           `cnn_m.cnn_m`        conv1..conv5, bn*, pool1/2/5       pool5 3x3x512
  resnet50_slim   `affnet.models.backbones.slim_resnet.slim_resnet_v1_50` (TF-slim resnet_v1_50 layout,
                  the released affwildnet-resnet-gru; input_preprocessing "tf1" or "none")

Weight loaders and the multi-RNN taps (`backbone.get_layer("pool2").output`)
rely on these names: keep them stable.
"""

from data_pipeline.base import checks
from affnet.models.backbones.cnn_m import cnn_m
from affnet.models.backbones.densenet import densenet121
from affnet.models.backbones.preprocessing import MODES as PREPROCESSING_MODES
from affnet.models.backbones.preprocessing import InputPreprocessing
from affnet.models.backbones.resnet import resnet50
from affnet.models.backbones.slim_resnet import slim_resnet_v1_50
from affnet.models.backbones.vgg import vgg16, vggface

_BUILDERS = {"vggface": vggface, "vgg16": vgg16, "resnet50": resnet50, "densenet121": densenet121,
             "cnn_m": cnn_m}
BACKBONES = tuple(_BUILDERS) + ("resnet50_slim",)
# Backbones whose output is a feature map the [AW] heads flatten; the others'
# "pooled features" ([AW] Sec. 4.2.1.1) are globally averaged.
FLATTENED = ("vggface", "vgg16", "cnn_m")


def check_backbone(name):
    """Raise ValueError unless `name` is one of `BACKBONES`."""
    checks.check_choice(name, "backbone", BACKBONES)
    return name


def build_backbone(name, input_size=96, width=1.0, input_preprocessing="none"):
    """The backbone `name` as a `keras.Model` of the same name, without pooling."""
    check_backbone(name)
    if name == "resnet50_slim":
        return slim_resnet_v1_50(input_size, name="resnet50_slim", width=width,
                                 input_preprocessing=input_preprocessing)
    return _BUILDERS[name](input_size=input_size, width=width, input_preprocessing=input_preprocessing,
                           name=name)


__all__ = ["BACKBONES", "FLATTENED", "PREPROCESSING_MODES", "InputPreprocessing", "build_backbone",
           "check_backbone", "cnn_m", "densenet121", "resnet50", "vgg16", "vggface"]

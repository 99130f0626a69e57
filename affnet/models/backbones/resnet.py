"""ResNet-50 in the keras-vggface VGGFace2 layout ([AW] Sec. 4.2.1.1, [AW2] Sec. III-B).

Layer names are keras-vggface `RESNET50`'s with "/" replaced by "_" (Keras 3
forbids "/"): `conv1_7x7_s2`, `conv1_7x7_s2_bn`, then per bottleneck
`conv{stage}_{block}_1x1_reduce`, `_3x3`, `_1x1_increase`, (first block)
`_1x1_proj`, each with a `..._bn`. Convolutions have no bias and batch norm
uses Keras' default epsilon 1e-3, as keras-vggface does, so its weights load
by name. Layers keras-vggface leaves unnamed are named here:
`conv1_7x7_s2_relu`, `pool1_3x3_s2`, `conv{s}_{b}_{conv}_relu`,
`conv{s}_{b}_add`, `conv{s}_{b}_relu`. Output: the stage-5 feature map
(3x3x2048 at 96x96), or with `pooling="avg"` its global average `avg_pool`
(2048), the "pooled features" [AW] feeds to fc 1500.
"""

import keras

from data_pipeline.base import checks
from affnet.models.backbones import common

# (stage, blocks, (reduce, 3x3, increase) filters, first-block stride).
_STAGES = ((2, 3, (64, 64, 256), 1), (3, 4, (128, 128, 512), 2),
           (4, 6, (256, 256, 1024), 2), (5, 3, (512, 512, 2048), 2))
POOLINGS = (None, "avg")


def _conv_bn(x, filters, kernel, name, strides=1, relu=True):
    x = keras.layers.Conv2D(filters, kernel, strides=strides, padding="same" if kernel > 1 else "valid",
                            use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    if relu:
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return x


def _bottleneck(x, filters, stage, block, strides, width):
    reduce_, middle, increase = (common.scaled(f, width) for f in filters)
    prefix = f"conv{stage}_{block}"
    y = _conv_bn(x, reduce_, 1, f"{prefix}_1x1_reduce", strides=strides)
    y = _conv_bn(y, middle, 3, f"{prefix}_3x3")
    y = _conv_bn(y, increase, 1, f"{prefix}_1x1_increase", relu=False)
    # keras-vggface projects the shortcut in the first block of every stage,
    # including stage 2 where the stride is 1 (the channel count changes).
    shortcut = _conv_bn(x, increase, 1, f"{prefix}_1x1_proj", strides=strides, relu=False) if block == 1 else x
    y = keras.layers.Add(name=f"{prefix}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{prefix}_relu")(y)


def resnet50(input_size=96, width=1.0, input_preprocessing="none", pooling=None, name="resnet50"):
    """ResNet-50 conv part as a `keras.Model` named `name`.

    Args:
      input_size: S of the (S, S, 3) input in [-1, 1]; >= 32.
      width: multiplier on every conv's filter count (1.0 = paper).
      input_preprocessing: see `backbones.preprocessing` ("vggface2" for
        keras-vggface VGGFace2 weights).
      pooling: None (feature map) or "avg" (global average, `avg_pool`).
    """
    common.check_input_size(input_size, 32)
    width = common.check_width(width)
    checks.check_choice(pooling, "pooling", POOLINGS)
    images, x = common.image_input(input_size, input_preprocessing)
    x = keras.layers.Conv2D(common.scaled(64, width), 7, strides=2, padding="same", use_bias=False,
                            name="conv1_7x7_s2")(x)
    x = keras.layers.BatchNormalization(name="conv1_7x7_s2_bn")(x)
    x = keras.layers.ReLU(name="conv1_7x7_s2_relu")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1_3x3_s2")(x)
    for stage, blocks, filters, stride in _STAGES:
        for block in range(1, blocks + 1):
            x = _bottleneck(x, filters, stage, block, stride if block == 1 else 1, width)
    if pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(images, x, name=name)

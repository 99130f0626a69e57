"""DenseNet-121 in the Keras ImageNet layout ([MC], [AW2] Table VI).

Layer names are `keras.applications.DenseNet121`'s (Keras 3): `conv1_conv`,
`conv1_bn`, `conv1_relu`, `pool1`; dense layers `conv{b}_block{i}_0_bn`,
`_0_relu`, `_1_conv`, `_1_bn`, `_1_relu`, `_2_conv`, `_concat`; transitions
`pool{b}_bn`, `_relu`, `_conv`, `_pool`; final `bn`, `relu`, and with
`pooling="avg"` `avg_pool`. Batch-norm epsilon 1.001e-5 as Keras. So Keras
ImageNet weights (input_preprocessing="torch_imagenet") load by name. Output
at 96x96: 3x3x1024, or 1024 pooled. 7,037,504 parameters at width 1.
"""

import keras

from data_pipeline.base import checks
from affnet.models.backbones import common

_BLOCKS = (6, 12, 24, 16)
_GROWTH = 32
_EPSILON = 1.001e-5
POOLINGS = (None, "avg")


def _dense_layer(x, growth, name):
    y = keras.layers.BatchNormalization(epsilon=_EPSILON, name=f"{name}_0_bn")(x)
    y = keras.layers.ReLU(name=f"{name}_0_relu")(y)
    y = keras.layers.Conv2D(4 * growth, 1, use_bias=False, name=f"{name}_1_conv")(y)
    y = keras.layers.BatchNormalization(epsilon=_EPSILON, name=f"{name}_1_bn")(y)
    y = keras.layers.ReLU(name=f"{name}_1_relu")(y)
    y = keras.layers.Conv2D(growth, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    return keras.layers.Concatenate(name=f"{name}_concat")([x, y])


def _transition(x, name):
    x = keras.layers.BatchNormalization(epsilon=_EPSILON, name=f"{name}_bn")(x)
    x = keras.layers.ReLU(name=f"{name}_relu")(x)
    x = keras.layers.Conv2D(x.shape[-1] // 2, 1, use_bias=False, name=f"{name}_conv")(x)
    return keras.layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def densenet121(input_size=96, width=1.0, input_preprocessing="none", pooling=None, name="densenet121"):
    """DenseNet-121 as a `keras.Model` named `name`.

    Args:
      input_size: S of the (S, S, 3) input in [-1, 1]; >= 32.
      width: multiplier on the stem filters and the growth rate (1.0 = paper).
      input_preprocessing: see `backbones.preprocessing` ("torch_imagenet"
        for Keras ImageNet weights).
      pooling: None (feature map) or "avg" (global average, `avg_pool`).
    """
    common.check_input_size(input_size, 32)
    width = common.check_width(width)
    checks.check_choice(pooling, "pooling", POOLINGS)
    growth = common.scaled(_GROWTH, width)
    images, x = common.image_input(input_size, input_preprocessing)
    x = keras.layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = keras.layers.Conv2D(common.scaled(64, width), 7, strides=2, use_bias=False, name="conv1_conv")(x)
    x = keras.layers.BatchNormalization(epsilon=_EPSILON, name="conv1_bn")(x)
    x = keras.layers.ReLU(name="conv1_relu")(x)
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    for index, layers in enumerate(_BLOCKS):
        block = index + 2
        for i in range(1, layers + 1):
            x = _dense_layer(x, growth, f"conv{block}_block{i}")
        if block < 5:
            x = _transition(x, f"pool{block}")
    x = keras.layers.BatchNormalization(epsilon=_EPSILON, name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    if pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return keras.Model(images, x, name=name)

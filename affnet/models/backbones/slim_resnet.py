"""TF-slim `resnet_v1_50` in Keras: the backbone of the released
AffWildNet-ResNet-GRU ([AW] Sec. 4.2.1.1, Table 8; [code] Aff-Wild-models
`affwildnet/resnet-gru`).

The released model calls `resnet_v1.resnet_v1_50(images, is_training=False,
num_classes=None)` under `resnet_arg_scope()`, so its checkpoint only loads
onto a network with slim's exact layout, which differs from keras-vggface's
ResNet-50 (`backbones.resnet`) in three places:

* the stride-2 of blocks 1-3 sits in the LAST unit of each block (slim's
  `resnet_v1_block`), on the 3x3 conv; keras-vggface puts it in the first
  unit, on the 1x1 reduce conv;
* strided convolutions use slim's `conv2d_same`: explicit symmetric zero
  padding of (k - 1) / 2 then VALID, not Keras "same" (which pads
  asymmetrically); the stem max-pool is 3x3/2 SAME;
* a unit whose depth does not change has an identity shortcut, subsampled by
  a 1x1/2 max-pool (`resnet_utils.subsample`) in the strided last unit; only
  depth-changing units (unit_1 of each block) project.

Batch norm after every conv, no conv biases, epsilon 1e-5, decay 0.997,
gamma present (`batch_norm_scale=True`). Output: `pool5`, the global average
of block4 (2048 features), as slim returns with `num_classes=None` (slim keeps
it as (B, 1, 1, 2048); the released code reshapes it to (B, T, 2048)).

Layer names are the slim scopes below `resnet_v1_50/` with "/" -> "_", e.g.
`block2_unit_4_bottleneck_v1_conv2_BatchNorm`; `slim_scopes(model)` gives the
exact scope of every weighted layer for the checkpoint converter.
"""

import keras

from affnet.models.backbones import common
from affnet.models.backbones.preprocessing import InputPreprocessing

# (block scope, base depth, units, stride) of slim `resnet_v1_50`.
BLOCKS = (("block1", 64, 3, 2), ("block2", 128, 4, 2), ("block3", 256, 6, 2), ("block4", 512, 3, 1))
BATCH_NORM_EPSILON = 1e-5
BATCH_NORM_DECAY = 0.997
FEATURES = 2048
SLIM_PREPROCESSING = ("tf1", "none")


def _layer_name(scope):
    return scope.replace("/", "_")


def _conv_bn(x, filters, kernel, stride, scope, relu):
    """slim `conv2d` (+ BatchNorm, + ReLU); strided convs as `conv2d_same`."""
    padding = "same"
    if stride > 1:
        total = kernel - 1
        x = keras.layers.ZeroPadding2D(((total // 2, total - total // 2),) * 2,
                                       name=_layer_name(f"{scope}/pad"))(x)
        padding = "valid"
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding=padding, use_bias=False,
                            name=_layer_name(scope))(x)
    x = keras.layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, momentum=BATCH_NORM_DECAY,
                                        name=_layer_name(f"{scope}/BatchNorm"))(x)
    if relu:
        x = keras.layers.ReLU(name=_layer_name(f"{scope}/relu"))(x)
    return x


def _bottleneck(x, depth, depth_bottleneck, stride, scope):
    """slim `resnet_v1.bottleneck` under `scope` (".../bottleneck_v1")."""
    if x.shape[-1] == depth:
        shortcut = x
        if stride > 1:
            shortcut = keras.layers.MaxPooling2D(1, strides=stride, name=_layer_name(f"{scope}/shortcut"))(x)
    else:
        shortcut = keras.layers.Conv2D(depth, 1, strides=stride, use_bias=False,
                                       name=_layer_name(f"{scope}/shortcut"))(x)
        shortcut = keras.layers.BatchNormalization(epsilon=BATCH_NORM_EPSILON, momentum=BATCH_NORM_DECAY,
                                                   name=_layer_name(f"{scope}/shortcut/BatchNorm"))(shortcut)
    y = _conv_bn(x, depth_bottleneck, 1, 1, f"{scope}/conv1", relu=True)
    y = _conv_bn(y, depth_bottleneck, 3, stride, f"{scope}/conv2", relu=True)
    y = _conv_bn(y, depth, 1, 1, f"{scope}/conv3", relu=False)
    y = keras.layers.Add(name=_layer_name(f"{scope}/add"))([shortcut, y])
    return keras.layers.ReLU(name=_layer_name(f"{scope}/relu"))(y)


def slim_resnet_v1_50(input_size=96, name="resnet_v1_50", width=1.0, input_preprocessing="tf1"):
    """TF-slim `resnet_v1_50(is_training=False, num_classes=None)` as a
    `keras.Model` named `name`: (S, S, 3) in [-1, 1] -> (2048,) pooled features.

    Args:
      input_size: S; >= 32 (slim's total stride is 32).
      name: the model name; the released checkpoint's top scope is
        "resnet_v1_50" (the converter maps by layer name, whatever `name`).
      width: multiplier on every depth (1.0 = slim; smaller only for tests).
      input_preprocessing: "tf1" (the released model's (p - 128) / 128) or
        "none" (the reader's [-1, 1], for a model trained here); no pre-trained
        ImageNet/VGGFace weights exist in this layout.
    """
    if input_preprocessing not in SLIM_PREPROCESSING:
        raise ValueError(f"backbone 'resnet50_slim' (the released TF1 checkpoint layout) supports "
                         f"input_preprocessing in {SLIM_PREPROCESSING}, got {input_preprocessing!r}")
    common.check_input_size(input_size, 32)
    width = common.check_width(width)
    images = keras.Input((input_size, input_size, 3), name="images")
    x = InputPreprocessing(input_preprocessing, name="input_preprocessing")(images)
    x = _conv_bn(x, common.scaled(64, width), 7, 2, "conv1", relu=True)
    # resnet_arg_scope sets max_pool2d padding to SAME.
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    for block, base, units, stride in BLOCKS:
        depth, bottleneck = common.scaled(4 * base, width), common.scaled(base, width)
        for unit in range(1, units + 1):
            x = _bottleneck(x, depth, bottleneck, stride if unit == units else 1,
                            f"{block}/unit_{unit}/bottleneck_v1")
    x = keras.layers.GlobalAveragePooling2D(name="pool5")(x)
    return keras.Model(images, x, name=name)


def slim_scopes(model, scope="resnet_v1_50"):
    """`{keras layer name: slim variable scope}` for every weighted layer.

    Conv layers hold `<scope>/weights`; batch norms `<scope>/{gamma, beta,
    moving_mean, moving_variance}`.
    """
    scopes = {}
    names = {"conv1": "conv1", "conv1_BatchNorm": "conv1/BatchNorm"}
    for block, _, units, _ in BLOCKS:
        for unit in range(1, units + 1):
            unit_scope = f"{block}/unit_{unit}/bottleneck_v1"
            for part in ("shortcut", "conv1", "conv2", "conv3"):
                names[_layer_name(f"{unit_scope}/{part}")] = f"{unit_scope}/{part}"
                names[_layer_name(f"{unit_scope}/{part}/BatchNorm")] = f"{unit_scope}/{part}/BatchNorm"
    for layer in model.layers:
        if layer.weights:
            if layer.name not in names:
                raise ValueError(f"layer {layer.name!r} of {model.name!r} is not part of slim resnet_v1_50")
            scopes[layer.name] = f"{scope}/{names[layer.name]}"
    return scopes

"""VGG-16 / VGG-Face convolutional part ([AW] Table 7).

Layout: blocks of 2, 2, 3, 3, 3 conv 3x3 SAME + ReLU with 64, 128, 256, 512,
512 filters, each block followed by a 2x2/2 max-pool. Layer names are
keras-vggface's: `conv1_1` .. `conv5_3`, `pool1` .. `pool5` (the TF1 scopes
`conv_1` .. `conv_13` map onto `conv1_1` .. `conv5_3` in order). Output:
`pool5`, 3x3x512 at 96x96. VGG-Face and VGG-16 share the layout; only the
weights (face identities vs ImageNet) and the name differ. 14,714,688 conv
parameters at width 1.
"""

import keras

from data_pipeline.base import checks
from affnet.models.backbones import common

# (block, number of convs, filters) of [AW] Table 7.
_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))
_POOL_PADDINGS = ("same", "valid")


def vgg(input_size=96, width=1.0, input_preprocessing="none", pool_padding="same", name="vggface"):
    """The VGG-16 conv+pool part as a `keras.Model` named `name`.

    Args:
      input_size: S of the (S, S, 3) input in [-1, 1]; >= 32.
      width: multiplier on every conv's filter count (1.0 = paper).
      input_preprocessing: see `backbones.preprocessing`.
      pool_padding: "same" as the released TF1 code, or "valid" as
        keras-vggface; identical when S is a multiple of 32 (e.g. 96).
    """
    common.check_input_size(input_size, 32)
    width = common.check_width(width)
    checks.check_choice(pool_padding, "pool_padding", _POOL_PADDINGS)
    images, x = common.image_input(input_size, input_preprocessing)
    for block, convs, filters in _BLOCKS:
        for i in range(1, convs + 1):
            x = keras.layers.Conv2D(common.scaled(filters, width), 3, padding="same", activation="relu",
                                    name=f"conv{block}_{i}")(x)
        x = keras.layers.MaxPooling2D(2, strides=2, padding=pool_padding, name=f"pool{block}")(x)
    return keras.Model(images, x, name=name)


def vggface(input_size=96, width=1.0, input_preprocessing="none", pool_padding="same", name="vggface"):
    """VGG-Face [AW] Table 7 (weights pre-trained on VGGFace / VGGFace2)."""
    return vgg(input_size, width, input_preprocessing, pool_padding, name)


def vgg16(input_size=96, width=1.0, input_preprocessing="none", pool_padding="same", name="vgg16"):
    """VGG-16 [AW] Table 7 (ImageNet weights)."""
    return vgg(input_size, width, input_preprocessing, pool_padding, name)

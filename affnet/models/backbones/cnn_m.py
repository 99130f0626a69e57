"""CNN-M conv part, the Aff-Wild baseline ([AW] Sec. 4.1.1, Table 4).

conv1 7x7x96 /2 VALID, BN, ReLU, max-pool 3/2 VALID; conv2 5x5x256 /2 SAME,
BN, ReLU, max-pool 3/2 SAME; conv3..conv5 3x3x512 SAME, BN, ReLU; max-pool
2/2 SAME. The table's TF padding is kept exactly. Output 3x3x512 at 96x96.
Layer names: `conv{i}`, `bn{i}`, `relu{i}`, `pool1`, `pool2`, `pool5`.

Choices the paper leaves open: convolutions keep a bias (CNN-M's pre-trained
FaceValue weights have one) and batch norm has Keras' default scale and
offset; "ReLU after BN" as [AW] says the activation is in the BN layers.
"""

import keras

from affnet.models.backbones import common

# (index, filters, kernel, stride, padding, pool after: (size, stride, padding) or None).
_LAYERS = ((1, 96, 7, 2, "valid", (3, 2, "valid")),
           (2, 256, 5, 2, "same", (3, 2, "same")),
           (3, 512, 3, 1, "same", None),
           (4, 512, 3, 1, "same", None),
           (5, 512, 3, 1, "same", (2, 2, "same")))


def cnn_m(input_size=96, width=1.0, input_preprocessing="none", name="cnn_m"):
    """CNN-M as a `keras.Model` named `name` ([AW] Table 4).

    Args:
      input_size: S of the (S, S, 3) input in [-1, 1]; >= 32.
      width: multiplier on every conv's filter count (1.0 = paper).
      input_preprocessing: see `backbones.preprocessing`.
    """
    common.check_input_size(input_size, 32)
    width = common.check_width(width)
    images, x = common.image_input(input_size, input_preprocessing)
    for index, filters, kernel, stride, padding, pool in _LAYERS:
        x = keras.layers.Conv2D(common.scaled(filters, width), kernel, strides=stride, padding=padding,
                                name=f"conv{index}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{index}")(x)
        x = keras.layers.ReLU(name=f"relu{index}")(x)
        if pool is not None:
            size, pool_stride, pool_padding = pool
            x = keras.layers.MaxPooling2D(size, strides=pool_stride, padding=pool_padding, name=f"pool{index}")(x)
    return keras.Model(images, x, name=name)

"""The regression heads shared by the frame CNNs and the CNN-RNNs.

Layer names (the TF1 converter maps onto them; keep them stable):
  `flatten` / `global_pool`   backbone features: flattened (VGG, CNN-M,
                              [AW] Table 7) or globally averaged (ResNet-50,
                              DenseNet-121 "pooled features", [AW] 4.2.1.1)
  `landmarks_concat`          features ++ the 136 landmark values ([AW] Sec. 4.2.1.2)
  `fc1`, `fc1_dropout`, `fc2`, `fc2_dropout`, ...   hidden FC layers, ReLU
                              (TF1 `linear_1` -> fc1, `linear2_1` -> fc2)
  `va_output`                 linear Dense(2), (valence, arousal); TF1
                              `linear3_1` or `rnn_1/weights_rnn` -> va_output.
`va_output` computes in float32 so losses see float32 under mixed_bfloat16.
"""

import keras

from data_pipeline.base import checks
from affnet.models import backbones
from data_pipeline.records.schema import LANDMARK_DIM

FC_INITS = ("glorot_uniform", "truncated_normal")


def check_fc_init(fc_init):
    return checks.check_choice(fc_init, "fc_init", FC_INITS)


def _initializers(fc_init):
    """Kernel and bias initialisers of the FC layers.

    "truncated_normal" is [AW] Sec. 4.1.1 (CNN-M): truncated normal, zero
    mean, "variance equal to 0.1" read as the TF1 idiom
    `tf.truncated_normal(stddev=0.1)`, and biases initialised to 1.
    """
    if fc_init == "truncated_normal":
        return keras.initializers.TruncatedNormal(stddev=0.1), keras.initializers.Constant(1.0)
    return "glorot_uniform", "zeros"


def face_inputs(input_size, landmarks, sequence):
    """(inputs dict, images, landmarks or None): the named inputs of a face model,
    `images` (B, [T,] size, size, 3) and, with `landmarks`, `landmarks` (B, [T,] 136)."""
    time = (None,) if sequence else ()
    images = keras.Input(time + (input_size, input_size, 3), name="images")
    inputs = {"images": images}
    landmark_input = None
    if landmarks:
        landmark_input = keras.Input(time + (LANDMARK_DIM,), name="landmarks")
        inputs["landmarks"] = landmark_input
    return inputs, images, landmark_input


def backbone_features(x, backbone_name, pool):
    """Flatten the backbone output, or globally average it when `pool` is
    True or the backbone's features are "pooled" ([AW] 4.2.1.1, [MC] 5.1)."""
    if len(x.shape) == 2:
        return x
    if pool or backbone_name not in backbones.FLATTENED:
        return keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    return keras.layers.Flatten(name="flatten")(x)


def concat_landmarks(features, landmarks):
    """features ++ landmarks on the last axis, or features when there are none."""
    if landmarks is None:
        return features
    return keras.layers.Concatenate(name="landmarks_concat")([features, landmarks])


def fc_stack(x, fc_units, dropout, fc_init="glorot_uniform", first_index=1):
    """Hidden FC layers `fc{i}` (ReLU), each followed by `fc{i}_dropout`."""
    kernel_init, bias_init = _initializers(fc_init)
    for index, units in enumerate(fc_units, start=first_index):
        x = keras.layers.Dense(units, activation="relu", kernel_initializer=kernel_init,
                               bias_initializer=bias_init, name=f"fc{index}")(x)
        if dropout > 0.0:
            x = keras.layers.Dropout(dropout, name=f"fc{index}_dropout")(x)
    return x


def va_output(x, fc_init="glorot_uniform"):
    """The linear (valence, arousal) output layer `va_output`, float32."""
    kernel_init, bias_init = _initializers(fc_init)
    return keras.layers.Dense(2, kernel_initializer=kernel_init, bias_initializer=bias_init,
                              dtype="float32", name="va_output")(x)

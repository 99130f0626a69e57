"""The TF-slim resnet_v1_50 backbone: layout, slim scopes, strides in the last
unit, dtype policy, XLA and serialisation. Numerical parity with a TF1 graph
is in test_tf1_checkpoint.py."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from affnet.models import backbones
from affnet.models.backbones.slim_resnet import slim_resnet_v1_50, slim_scopes


def _bottleneck_params(d_in, bottleneck, depth, project):
    """1x1, 3x3, 1x1 convs without bias, each with 4 batch-norm vectors, and an optional projection."""
    convs = d_in * bottleneck + 9 * bottleneck * bottleneck + bottleneck * depth
    norms = 4 * (bottleneck + bottleneck + depth)
    return convs + norms + ((d_in * depth + 4 * depth) if project else 0)


def test_full_size_layout_and_parameter_count():
    model = slim_resnet_v1_50()
    expected, d_in = 7 * 7 * 3 * 64 + 4 * 64, 64
    for base, units in ((64, 3), (128, 4), (256, 6), (512, 3)):
        for unit in range(units):
            expected += _bottleneck_params(d_in, base, 4 * base, project=unit == 0)
            d_in = 4 * base
    assert model.count_params() == expected == 23_561_152
    assert model.output.shape[1:] == (2048,)
    # slim puts the stride in the LAST unit of blocks 1-3: 96 -> 48 (conv1) -> 24 (pool1) -> 12 -> 6 -> 3 -> 3.
    sizes = {name: model.get_layer(name).output.shape[1] for name in (
        "pool1", "block1_unit_2_bottleneck_v1_relu", "block1_unit_3_bottleneck_v1_relu",
        "block2_unit_4_bottleneck_v1_relu", "block3_unit_6_bottleneck_v1_relu", "block4_unit_3_bottleneck_v1_relu")}
    assert list(sizes.values()) == [24, 24, 12, 6, 3, 3]
    # Identity shortcuts subsampled by a 1x1/2 max-pool, projections only in unit_1.
    assert isinstance(model.get_layer("block1_unit_3_bottleneck_v1_shortcut"), keras.layers.MaxPooling2D)
    assert isinstance(model.get_layer("block2_unit_1_bottleneck_v1_shortcut"), keras.layers.Conv2D)
    norm = model.get_layer("block3_unit_2_bottleneck_v1_conv2_BatchNorm")
    assert norm.epsilon == 1e-5 and norm.momentum == 0.997
    assert model.layers[1].name == "input_preprocessing"


def test_slim_scopes_cover_every_weight():
    model = slim_resnet_v1_50(32, width=1 / 16)
    scopes = slim_scopes(model)
    assert scopes["block4_unit_3_bottleneck_v1_conv3_BatchNorm"] == \
        "resnet_v1_50/block4/unit_3/bottleneck_v1/conv3/BatchNorm"
    assert scopes["conv1"] == "resnet_v1_50/conv1"
    assert sum(len(model.get_layer(name).weights) for name in scopes) == len(model.weights)


def test_registered_as_the_resnet50_slim_backbone():
    model = backbones.build_backbone("resnet50_slim", input_size=32)
    assert model.name == "resnet50_slim" and model.output.shape[1:] == (2048,)


def test_bad_arguments():
    with pytest.raises(ValueError, match="input_size must be an int >= 32, got 16"):
        slim_resnet_v1_50(16)
    with pytest.raises(ValueError, match="width must be a positive number, got 0"):
        slim_resnet_v1_50(32, width=0)


def test_xla_bfloat16_and_keras_round_trip(tmp_path):
    images = np.random.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    model = slim_resnet_v1_50(32, width=1 / 16)
    compiled = tf.function(lambda x: model(x, training=False), jit_compile=True)
    np.testing.assert_allclose(np.asarray(compiled(images)), np.asarray(model(images)), rtol=1e-4, atol=1e-5)
    path = tmp_path / "slim.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(restored(images)), np.asarray(model(images)), rtol=1e-6)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        half = slim_resnet_v1_50(32, width=1 / 16)
        out = half(images)
        assert half.get_layer("conv1").compute_dtype == "bfloat16"
        assert np.all(np.isfinite(np.asarray(tf.cast(out, tf.float32))))
    finally:
        keras.mixed_precision.set_global_policy("float32")

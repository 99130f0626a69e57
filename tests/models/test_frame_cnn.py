"""Frame CNNs ([AW] Tables 4, 7; [MC] Sec. 5.1) on tiny configurations: shapes,
gradients, serialisation, landmarks switch. Full-size parameter counts:
test_paper_param_counts.py."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from affnet.models import build, describe, frame_cnn
from helpers import frame_inputs as inputs
from paper_counts import FRAME_EXPECTED as EXPECTED

LANDMARKS = 136


def test_every_frame_config_is_tested():
    assert set(EXPECTED) == set(frame_cnn.CONFIGS)


def tiny(name="vggface_cnn", **overrides):
    return build(name, input_size=32, width=1 / 16, fc_units=(16, 8), **overrides)



@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tiny_output_shape(name):
    model = tiny(name)
    landmarks = describe(name).defaults["landmarks"]
    assert set(model.input) == ({"images", "landmarks"} if landmarks else {"images"})
    assert model(inputs(landmarks=landmarks)).shape == (2, 2)


def test_head_layer_names():
    model = tiny()
    names = [layer.name for layer in model.layers]
    for name in ("images", "landmarks", "vggface", "flatten", "landmarks_concat", "fc1", "fc1_dropout", "fc2",
                 "fc2_dropout", "va_output"):
        assert name in names
    assert model.get_layer("fc1").kernel.shape == (1 * 1 * 32 + LANDMARKS, 16)  # 32 -> 5 SAME pools -> 1x1x(512/16)


def test_landmarks_false_drops_the_input():
    model = tiny(landmarks=False)
    assert list(model.input) == ["images"]
    assert "landmarks_concat" not in [layer.name for layer in model.layers]
    assert model.get_layer("fc1").kernel.shape == (1 * 1 * 32, 16)


def test_cnn_m_fc_init_is_the_papers():
    model = build("cnn_m", input_size=32, width=1 / 16)
    np.testing.assert_array_equal(model.get_layer("fc1").bias.numpy(), 1.0)
    kernel = model.get_layer("fc1").kernel.numpy()
    assert np.abs(kernel).max() <= 0.2 + 1e-6  # truncated at 2 stddev of 0.1


def test_gradients_reach_every_trainable_variable():
    model = tiny("resnet50_cnn")
    x = inputs()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(model(x, training=True)))
    grads = tape.gradient(loss, model.trainable_variables)
    missing = [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
    assert not missing
    assert all(float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)


def test_keras_round_trip(tmp_path):
    model = tiny("densenet121_cnn")
    x = inputs()
    path = tmp_path / "frame.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, frame_cnn.FrameCNN)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)


def test_freeze_backbone_override():
    model = tiny(freeze_backbone=True)
    assert not model.backbone.trainable
    assert {v.path.split("/")[0] for v in model.trainable_variables} == {"fc1", "fc2", "va_output"}


def test_mixed_bfloat16_and_xla():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = tiny("cnn_m")
        x = inputs(landmarks=False)
        out = tf.function(model, jit_compile=True)(x)
        assert out.dtype == tf.float32 and out.shape == (2, 2)
        assert model.get_layer("fc1").compute_dtype == "bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("overrides, message", [
    (dict(fc_units=(16, -1)), "-1"),
    (dict(dropout=1.0), "1.0"),
    (dict(landmarks="yes"), "yes"),
    (dict(fc_init="he"), "he"),
    (dict(backbone="alexnet"), "alexnet"),
])
def test_bad_overrides(overrides, message):
    with pytest.raises(ValueError, match=message):
        build("vggface_cnn", input_size=32, width=1 / 16, **overrides)

"""CNN-RNNs ([AW] Table 8, [AW2] Tables IV-VII, [MC] 5.2) on tiny configurations:
shapes with a dynamic T, gradients, .keras and SavedModel round trips.
Full-size parameter counts: test_paper_param_counts.py."""

import numpy as np
import pytest
import tensorflow as tf

from affnet.models import affwildnet, build, describe
from helpers import assert_keras_round_trip
from helpers import assert_mixed_bfloat16_xla
from helpers import assert_serves_any_length
from helpers import sequence_inputs as inputs
from paper_counts import RELEASED_RESNET_GRU, SEQUENCE_EXPECTED, dense

EXPECTED = {**SEQUENCE_EXPECTED, "affwildnet_resnet_gru_released": RELEASED_RESNET_GRU}
LANDMARKS = 136


def test_every_sequence_config_is_tested():
    assert set(EXPECTED) == set(affwildnet.CONFIGS)


TINY = dict(input_size=32, width=1 / 16, rnn_units=8)


def tiny(name="affwildnet_vggface", **overrides):
    if describe(name).defaults.get("fc_units"):
        overrides.setdefault("fc_units", 16)
    return build(name, **{**TINY, **overrides})



@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tiny_output_shape(name):
    model = tiny(name)
    landmarks = describe(name).defaults["landmarks"]
    assert set(model.input) == ({"images", "landmarks"} if landmarks else {"images"})
    out = model(inputs(landmarks=landmarks))
    assert out.shape == (2, 3, 2)
    assert np.all(np.isfinite(np.asarray(out)))


def test_layer_names_and_rnn_inputs():
    model = tiny()
    names = [layer.name for layer in model.layers]
    for name in ("images", "landmarks", "fold_images", "vggface", "flatten", "unfold_features",
                 "landmarks_concat", "fc1", "fc1_dropout", "va_output"):
        assert name in names
    assert any(name.startswith("rnn") for name in names)
    assert model.get_layer("fc1").kernel.shape == (32 + LANDMARKS, 16)
    assert model.get_layer("va_output").kernel.shape == (8, 2)


def test_rnn_input_pool_skips_fc1_and_averages_pool5():
    model = tiny("vggface_gru", rnn_input="pool", fc_units=4096)
    names = [layer.name for layer in model.layers]
    assert "fc1" not in names and "global_pool" in names and "flatten" not in names
    assert model(inputs(landmarks=False)).shape == (2, 3, 2)


def test_fc_units_zero_feeds_features_to_the_rnn():
    with_fc = tiny("affwildnet_vggface", landmarks=False)
    without = tiny("affwildnet_vggface", landmarks=False, fc_units=0)
    assert "fc1" not in [layer.name for layer in without.layers]
    # The first GRU then reads the 32 flattened pool5 values instead of fc1's 16.
    assert with_fc.count_params() - without.count_params() == dense(32, 16) + 3 * 8 * (16 - 32)


def test_landmarks_false_drops_the_input():
    model = tiny(landmarks=False)
    assert list(model.input) == ["images"]
    assert "landmarks_concat" not in [layer.name for layer in model.layers]


@pytest.mark.parametrize("rnn", ["lstm", "indrnn"])
def test_rnn_kinds(rnn):
    assert tiny(rnn=rnn, rnn_layers=1)(inputs()).shape == (2, 3, 2)


def test_attention_placement_top_wraps_only_the_last_layer():
    stack = tiny("vggface_gru_attention")
    top = tiny("vggface_gru_attention", attention_placement="top")
    assert top(inputs(landmarks=False)).shape == (2, 3, 2)
    # Around the stack the query is both layers' states (2 x 8) and the input
    # projection keeps fc1's 16; around the top layer, the query is its 8-state
    # and the projected input is layer 1's 8 outputs.
    assert stack.count_params() != top.count_params()


def test_gradients_reach_every_trainable_variable():
    model = tiny("vggface_gru_attention")
    x = inputs(landmarks=False)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(model(x, training=True)))
    grads = tape.gradient(loss, model.trainable_variables)
    assert not [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
    assert all(float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)


def test_keras_round_trip_two_lengths(tmp_path):
    model = tiny("affwildnet_vggface")
    assert_keras_round_trip(model, tmp_path / "seq.keras", affwildnet.CnnRnn, (3, 5))


def test_saved_model_round_trip_two_lengths(tmp_path):
    model = tiny("vggface_gru_attention", landmarks=True)
    assert_serves_any_length(model, tmp_path / "saved")


def test_mixed_bfloat16_and_xla():
    assert_mixed_bfloat16_xla(lambda: tiny("affwildnet_vggface"), inputs(), (2, 3, 2))


@pytest.mark.parametrize("overrides, message", [
    (dict(rnn="rnn_tanh"), "rnn_tanh"),
    (dict(rnn_layers=0), "0"),
    (dict(rnn_units=2.5), "2.5"),
    (dict(attention_length=-1), "-1"),
    (dict(rnn_input="fc2"), "fc2"),
    (dict(attention_placement="bottom"), "bottom"),
    (dict(fc_units=(16, 8)), r"\(16, 8\)"),
    (dict(dropout=-0.1), "-0.1"),
    (dict(freeze_backbone=1), "1"),
    (dict(input_preprocessing="bgr"), "bgr"),
])
def test_bad_overrides(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny(**overrides)

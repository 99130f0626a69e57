"""build_rnn_stack: shapes, TF1 names, gradients, dropout semantics, argument checks."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from affnet.layers import build_rnn_stack, tf1_weight_names
from helpers import RNN_CONFIGS as CONFIGS
from helpers import RNN_FEATURES as F
from helpers import RNN_UNITS as UNITS
from helpers import rnn_inputs as _x
from helpers import rnn_stack_model as _model


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_shapes_names_and_gradients(config):
    model = _model(**CONFIGS[config])
    rnn = model.get_layer("rnn")
    assert len(tf1_weight_names(rnn, "rnn")) == len(rnn.weights)
    assert len(set(tf1_weight_names(rnn, "rnn"))) == len(rnn.weights)
    x = tf.constant(_x(3, 9))
    with tf.GradientTape() as tape:
        y = model(x, training=True)
        loss = tf.reduce_sum(tf.square(y))
    assert tuple(y.shape) == (3, 9, UNITS)
    grads = tape.gradient(loss, model.trainable_weights)
    for w, g in zip(model.trainable_weights, grads):
        assert g is not None, w.path
        assert float(tf.reduce_sum(tf.abs(g))) > 0.0, w.path


def test_dropout_is_training_only_and_fresh_each_call():
    model = _model(rnn="gru", dropout=0.5)
    x = _x(2, 8)
    infer_a, infer_b = (keras.ops.convert_to_numpy(model(x, training=False)) for _ in range(2))
    np.testing.assert_array_equal(infer_a, infer_b)
    train_a, train_b = (keras.ops.convert_to_numpy(model(x, training=True)) for _ in range(2))
    assert not np.allclose(train_a, infer_a)
    assert not np.allclose(train_a, train_b)


def test_no_dropout_means_training_equals_inference():
    model = _model(rnn="lstm", attention_length=2)
    x = _x(2, 5)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model(x, training=True)),
        keras.ops.convert_to_numpy(model(x, training=False)),
    )


def _count(**kwargs):
    inp = keras.Input((None, 4096))
    return keras.Model(inp, build_rnn_stack(inp, **kwargs)).count_params()


def test_paper_size_parameter_counts():
    """2 x GRU(128) on VGG-Face fc1 (4096) ([AW] Table 8), counted by hand from the TF1 shapes."""
    layer0 = (4096 + 128) * 256 + 256 + (4096 + 128) * 128 + 128
    layer1 = (128 + 128) * 256 + 256 + (128 + 128) * 128 + 128
    assert _count() == layer0 + layer1 == 1_721_088
    # [AW2] attention, length 32, TF1 defaults: input projection 4096+128 -> 4096,
    # attn_w 128x128, attn_v 128, query 256 -> 128, output projection 128+128 -> 128.
    attention = (4096 + 128) * 4096 + 4096 + 128 * 128 + 128 + 256 * 128 + 128 + 256 * 128 + 128
    assert _count(attention_length=32) == layer0 + layer1 + attention
    small = (4096 + 128) * 512 + 512 + 128 * 128 + 128 + 256 * 128 + 128 + 256 * 128 + 128
    layer0_small = (512 + 128) * 384 + 384
    assert _count(attention_length=32, attention_input_size=512) == layer0_small + layer1 + small
    lstm = lambda depth: (depth + 128) * 512 + 512 + 3 * 128  # noqa: E731
    assert _count(rnn="lstm") == lstm(4096) + lstm(128)
    assert _count(rnn="indrnn") == 4096 * 128 + 128 + 128 + 128 * 128 + 128 + 128


def test_single_layer_stack():
    model = _model(rnn="gru", layers=1, attention_length=2)
    assert tuple(model(_x(2, 4)).shape) == (2, 4, UNITS)
    assert tf1_weight_names(model.get_layer("rnn"), "")[-1] == (
        "attention_cell_wrapper/multi_rnn_cell/cell_0/gru_cell/candidate/bias"
    )


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(rnn="rnn"), "'rnn'"),
        (dict(layers=0), "0"),
        (dict(units=-3), "-3"),
        (dict(dropout=1.0), "1.0"),
        (dict(attention_length=-1), "-1"),
        (dict(attention_length=2, attention_placement="bottom"), "'bottom'"),
    ],
)
def test_bad_arguments_are_named(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        build_rnn_stack(keras.Input((None, F)), **kwargs)


def test_static_feature_depth_required():
    with pytest.raises(ValueError, match="static F"):
        build_rnn_stack(keras.Input((None, None)))

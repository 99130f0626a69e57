"""InputProjectedRNN: the input projection hoisted out of the time loop computes the
unhoisted TF1 step's function, outputs and gradients, on the same weights."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from affnet.layers import InputProjectedRNN, build_rnn_stack
from helpers import RNN_CONFIGS as CONFIGS

F, UNITS = 24, 8


def _unhoisted_copy(layer):
    """A plain `keras.layers.RNN` over a fresh copy of `layer`'s cells: each step
    multiplies `[x_t, state]` by the whole kernel, as TF1 does."""
    cell = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer.cell))
    reference = keras.layers.RNN(cell, return_sequences=True, name="reference")
    reference.build((None, None, F))
    reference.set_weights(layer.get_weights())
    return reference


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_hoisted_equals_unhoisted_step(config):
    inp = keras.Input((None, F))
    model = keras.Model(inp, build_rnn_stack(inp, units=UNITS, name="rnn", **CONFIGS[config]))
    layer = model.get_layer("rnn")
    assert isinstance(layer, InputProjectedRNN)
    rng = np.random.default_rng(0)
    for w in layer.weights:  # away from the initial values, so a swapped row block shows
        w.assign(rng.uniform(-0.4, 0.4, size=w.shape).astype("float32"))
    reference = _unhoisted_copy(layer)
    assert not any(getattr(c, "inputs_projected", False) for c in reference._flatten_layers())
    x = tf.constant(rng.normal(size=(3, 9, F)).astype("float32"))

    def outputs_and_grads(rnn):
        with tf.GradientTape() as tape:
            y = rnn(x, training=False)
            loss = tf.reduce_sum(y * tf.cos(tf.range(y.shape[-1], dtype=y.dtype)))
        return y.numpy(), [g.numpy() for g in tape.gradient(loss, rnn.trainable_weights)]

    y, grads = outputs_and_grads(layer)
    y_ref, grads_ref = outputs_and_grads(reference)
    np.testing.assert_allclose(y, y_ref, atol=1e-6)
    for g, g_ref in zip(grads, grads_ref):
        np.testing.assert_allclose(g, g_ref, atol=1e-5)

"""IndRNNCell against numpy; the recurrent-weight clip constraint."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from affnet.layers import IndRNNCell

B, T, F, UNITS = 2, 7, 5, 4


def test_matches_numpy_relu_recurrence():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, F)).astype("float32")
    layer = keras.layers.RNN(IndRNNCell(UNITS), return_sequences=True)
    layer.build((None, None, F))
    w = rng.normal(size=(F, UNITS)).astype("float32")
    u = rng.uniform(-1.2, 1.2, size=(1, UNITS)).astype("float32")
    b = rng.normal(size=(UNITS,)).astype("float32")
    layer.set_weights([w, u, b])
    h = np.zeros((B, UNITS))
    expected = []
    for t in range(T):
        h = np.maximum(x[:, t] @ w + u * h + b, 0.0)
        expected.append(h)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)), np.stack(expected, axis=1), atol=1e-5
    )


def test_recurrent_clip_bounds_u_after_training_steps():
    clip = 2.0 ** (1.0 / T)
    inp = keras.Input((None, F))
    out = keras.layers.RNN(IndRNNCell(UNITS, recurrent_clip=clip, name="ind"), return_sequences=True)(inp)
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.SGD(50.0), loss="mse")
    x = np.random.default_rng(1).normal(size=(8, T, F)).astype("float32")
    model.fit(x, np.full((8, T, UNITS), 100.0, "float32"), epochs=2, verbose=0)
    u = keras.ops.convert_to_numpy(model.layers[1].cell.kernel_u)
    assert np.max(np.abs(u)) <= clip + 1e-6
    assert np.isclose(np.max(np.abs(u)), clip)  # the huge step did push u to the bound


def test_no_clip_by_default_and_initial_u_range():
    cell = IndRNNCell(64)
    cell.build((None, F))
    u = keras.ops.convert_to_numpy(cell.kernel_u)
    assert cell.kernel_u.constraint is None
    assert u.shape == (1, 64) and u.min() < 0 < u.max() and np.abs(u).max() <= 1.0


def test_bad_clip_is_named():
    with pytest.raises(ValueError, match="-1"):
        IndRNNCell(3, recurrent_clip=-1)


def test_config_round_trip_keeps_clip():
    cell = IndRNNCell(3, recurrent_clip=1.5, activation="tanh")
    clone = IndRNNCell.from_config(cell.get_config())
    clone.build((None, F))
    assert clone.recurrent_clip == 1.5
    assert float(tf.reduce_max(clone.kernel_u.constraint(tf.fill((1, 3), 9.0)))) == 1.5

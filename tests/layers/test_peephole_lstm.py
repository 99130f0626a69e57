"""PeepholeLSTMCell against a numpy transcription of TF1 LSTMCell(use_peepholes=True)."""

import numpy as np
import pytest
import keras

from affnet.layers import PeepholeLSTMCell

B, T, F, UNITS = 2, 7, 5, 4


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _numpy_peephole_lstm(x, kernel, bias, wf, wi, wo, forget_bias=1.0):
    c = np.zeros((x.shape[0], UNITS))
    h = np.zeros((x.shape[0], UNITS))
    outputs = []
    for t in range(x.shape[1]):
        z = np.concatenate([x[:, t], h], axis=1) @ kernel + bias
        i, j, f, o = np.split(z, 4, axis=1)
        c = _sigmoid(f + forget_bias + wf * c) * c + _sigmoid(i + wi * c) * np.tanh(j)
        h = _sigmoid(o + wo * c) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1), c, h


def test_matches_numpy_and_returns_tuple_state():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(B, T, F)).astype("float32")
    layer = keras.layers.RNN(
        PeepholeLSTMCell(UNITS, name="lstm_cell"), return_sequences=True, return_state=True, name="lstm"
    )
    layer.build((None, None, F))
    values = [rng.uniform(-0.8, 0.8, size=w.shape).astype("float32") for w in layer.weights]
    layer.set_weights(values)
    expected, c_expected, h_expected = _numpy_peephole_lstm(x, *values)
    outputs, c, h = layer(x)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(outputs), expected, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(c), c_expected, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(h), h_expected, atol=1e-5)


def test_peepholes_matter():
    """Zeroing the peephole weights changes the output (they are really used)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(B, T, F)).astype("float32")
    layer = keras.layers.RNN(PeepholeLSTMCell(UNITS), return_sequences=True)
    layer.build((None, None, F))
    layer.set_weights([rng.uniform(-0.8, 0.8, size=w.shape).astype("float32") for w in layer.weights])
    with_peepholes = keras.ops.convert_to_numpy(layer(x))
    for w in (layer.cell.w_f_diag, layer.cell.w_i_diag, layer.cell.w_o_diag):
        w.assign(np.zeros(UNITS, "float32"))
    assert not np.allclose(with_peepholes, keras.ops.convert_to_numpy(layer(x)))


def test_tf1_layout():
    cell = PeepholeLSTMCell(UNITS)
    cell.build((None, F))
    layout = [(name, tuple(w.shape)) for name, w in cell.tf1_variables()]
    assert layout == [
        ("lstm_cell/kernel", (F + UNITS, 4 * UNITS)),
        ("lstm_cell/bias", (4 * UNITS,)),
        ("lstm_cell/w_f_diag", (UNITS,)),
        ("lstm_cell/w_i_diag", (UNITS,)),
        ("lstm_cell/w_o_diag", (UNITS,)),
    ]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(cell.bias), np.zeros(4 * UNITS))


def test_config_round_trip():
    cell = PeepholeLSTMCell(UNITS, forget_bias=0.5, name="c")
    clone = PeepholeLSTMCell.from_config(cell.get_config())
    assert (clone.units, clone.forget_bias, clone.name) == (UNITS, 0.5, "c")


def test_bad_units():
    with pytest.raises(ValueError, match="'4'"):
        PeepholeLSTMCell("4")

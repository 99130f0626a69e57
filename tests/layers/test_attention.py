"""TF1AttentionCellWrapper against a numpy transcription of TF1 AttentionCellWrapper."""

import numpy as np
import pytest
import keras

from affnet.layers import TF1AttentionCellWrapper, TF1GRUCell, build_rnn_stack, tf1_weight_names

B, F, UNITS = 2, 6, 5


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _gru(x, h, p, scope):
    wg, bg = p[f"{scope}/gru_cell/gates/kernel"], p[f"{scope}/gru_cell/gates/bias"]
    wc, bc = p[f"{scope}/gru_cell/candidate/kernel"], p[f"{scope}/gru_cell/candidate/bias"]
    r, u = np.split(_sigmoid(np.concatenate([x, h], 1) @ wg + bg), 2, axis=1)
    c = np.tanh(np.concatenate([x, r * h], 1) @ wc + bc)
    return u * h + (1 - u) * c


def _numpy_attention_gru_stack(x, p, layers, attn_length, attn_size, units, s="attention_cell_wrapper"):
    """TF1 AttentionCellWrapper(MultiRNNCell([GRUCell] * layers)), state_is_tuple, zero state."""
    b = x.shape[0]
    hs = [np.zeros((b, units)) for _ in range(layers)]
    attns = np.zeros((b, attn_size))
    window = np.zeros((b, attn_length, attn_size))
    outputs = []
    for t in range(x.shape[1]):
        inp = np.concatenate([x[:, t], attns], 1) @ p[f"{s}/kernel"] + p[f"{s}/bias"]
        for k in range(layers):
            hs[k] = _gru(inp, hs[k], p, f"{s}/multi_rnn_cell/cell_{k}")
            inp = hs[k]
        query = np.concatenate(hs, 1)
        attn_w = p[f"{s}/attention/attn_w"][0, 0]
        features = window @ attn_w
        y = query @ p[f"{s}/attention/kernel"] + p[f"{s}/attention/bias"]
        scores = np.sum(p[f"{s}/attention/attn_v"] * np.tanh(features + y[:, None]), axis=2)
        a = np.exp(scores - scores.max(1, keepdims=True))
        a /= a.sum(1, keepdims=True)
        attns = np.sum(a[:, :, None] * window, axis=1)
        out = (
            np.concatenate([inp, attns], 1) @ p[f"{s}/attn_output_projection/kernel"]
            + p[f"{s}/attn_output_projection/bias"]
        )
        window = np.concatenate([window[:, 1:], out[:, None]], axis=1)
        outputs.append(out)
    return np.stack(outputs, axis=1)


def _randomize(rnn_layer, seed):
    rng = np.random.default_rng(seed)
    params = {}
    for w, name in zip(rnn_layer.weights, tf1_weight_names(rnn_layer, "")):
        value = rng.uniform(-0.8, 0.8, size=w.shape).astype("float32")
        w.assign(value)
        params[name] = value.astype("float64")
    return params


@pytest.mark.parametrize("layers", [1, 2])
def test_stack_matches_numpy_with_window_shorter_than_sequence(layers):
    """T=40 > attn_length=4: the window slides, old outputs leave it."""
    attn_length, t = 4, 40
    inp = keras.Input((None, F))
    model = keras.Model(
        inp, build_rnn_stack(inp, rnn="gru", layers=layers, units=UNITS, attention_length=attn_length)
    )
    params = _randomize(model.get_layer("rnn"), seed=layers)
    x = np.random.default_rng(7).normal(size=(B, t, F)).astype("float32")
    expected = _numpy_attention_gru_stack(x, params, layers, attn_length, UNITS, UNITS)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), expected, atol=1e-5)


def test_explicit_sizes_match_numpy():
    attn_length, attn_size, vec, input_size = 3, 4, 3, 7
    cell = TF1AttentionCellWrapper(
        keras.layers.StackedRNNCells([TF1GRUCell(UNITS, name="g0")], name="cells"),
        attn_length=attn_length,
        attn_size=attn_size,
        attn_vec_size=vec,
        input_size=input_size,
        name="att",
    )
    layer = keras.layers.RNN(cell, return_sequences=True, name="rnn")
    layer.build((None, None, F))
    shapes = dict(zip(tf1_weight_names(layer, ""), (tuple(w.shape) for w in layer.weights)))
    s = "attention_cell_wrapper"
    assert shapes[f"{s}/kernel"] == (F + attn_size, input_size)
    assert shapes[f"{s}/attention/attn_w"] == (1, 1, attn_size, vec)
    assert shapes[f"{s}/attention/kernel"] == (UNITS, vec)
    assert shapes[f"{s}/attn_output_projection/kernel"] == (UNITS + attn_size, attn_size)
    assert shapes[f"{s}/multi_rnn_cell/cell_0/gru_cell/gates/kernel"] == (input_size + UNITS, 2 * UNITS)
    params = _randomize(layer, seed=3)
    x = np.random.default_rng(8).normal(size=(B, 9, F)).astype("float32")
    expected = _numpy_attention_gru_stack(x, params, 1, attn_length, attn_size, UNITS)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, atol=1e-5)


def test_early_inputs_still_matter_after_leaving_the_window():
    """Changing step 0 changes step 30 (through the recurrent state) though the window is 4."""
    inp = keras.Input((None, F))
    model = keras.Model(inp, build_rnn_stack(inp, units=UNITS, attention_length=4))
    x = np.random.default_rng(9).normal(size=(1, 31, F)).astype("float32")
    x2 = x.copy()
    x2[:, 0] += 3.0
    a, b = (keras.ops.convert_to_numpy(model(v)) for v in (x, x2))
    assert not np.allclose(a[:, 30], b[:, 30], atol=1e-7)


def test_state_layout():
    cell = TF1AttentionCellWrapper(
        keras.layers.StackedRNNCells([TF1GRUCell(UNITS), TF1GRUCell(UNITS)]), attn_length=32
    )
    assert cell.state_size == [UNITS, UNITS, UNITS, 32 * UNITS]
    assert cell.output_size == UNITS


def test_bad_attn_length_is_named():
    with pytest.raises(ValueError, match="0"):
        TF1AttentionCellWrapper(TF1GRUCell(UNITS), attn_length=0)

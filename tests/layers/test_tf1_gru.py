"""TF1GRUCell against a TF1 graph (checkpoint by name) and against Keras GRU(reset_after=False)."""

import numpy as np
import tensorflow as tf
import keras

from affnet.layers import TF1GRUCell, build_rnn_stack, tf1_weight_names

B, T, F, UNITS = 2, 7, 6, 5


def _tf1_gru_graph_outputs(x, ckpt_prefix, scope="rnn_1/rnn", layers=2):
    """A tf.compat.v1 graph written from the TF1 GRUCell equations and variable names.

    Random (not TF1-default) values everywhere so that a swapped gate or a
    misnamed variable cannot go unnoticed; saved as a TF1 checkpoint.
    """
    graph = tf.Graph()
    with graph.as_default():
        inputs = tf.compat.v1.placeholder(tf.float32, (None, T, F))
        init = tf.compat.v1.random_uniform_initializer(-0.7, 0.7, seed=3)
        outputs = []
        h = [tf.zeros((tf.shape(inputs)[0], UNITS)) for _ in range(layers)]
        with tf.compat.v1.variable_scope(scope):
            for t in range(T):
                layer_input = inputs[:, t, :]
                for k in range(layers):
                    with tf.compat.v1.variable_scope(
                        f"multi_rnn_cell/cell_{k}/gru_cell", reuse=tf.compat.v1.AUTO_REUSE
                    ):
                        depth = layer_input.shape[-1] + UNITS
                        wg = tf.compat.v1.get_variable("gates/kernel", (depth, 2 * UNITS), initializer=init)
                        bg = tf.compat.v1.get_variable("gates/bias", (2 * UNITS,), initializer=init)
                        wc = tf.compat.v1.get_variable("candidate/kernel", (depth, UNITS), initializer=init)
                        bc = tf.compat.v1.get_variable("candidate/bias", (UNITS,), initializer=init)
                    gates = tf.sigmoid(tf.matmul(tf.concat([layer_input, h[k]], 1), wg) + bg)
                    r, u = tf.split(gates, 2, axis=1)
                    c = tf.tanh(tf.matmul(tf.concat([layer_input, r * h[k]], 1), wc) + bc)
                    h[k] = u * h[k] + (1 - u) * c
                    layer_input = h[k]
                outputs.append(layer_input)
        out = tf.stack(outputs, axis=1)
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            result = sess.run(out, {inputs: x})
            saver.save(sess, ckpt_prefix)
    return result


def test_matches_tf1_graph_loaded_by_name(tmp_path):
    x = np.random.default_rng(0).normal(size=(B, T, F)).astype("float32")
    prefix = str(tmp_path / "tf1_gru")
    expected = _tf1_gru_graph_outputs(x, prefix)

    inp = keras.Input((None, F))
    model = keras.Model(inp, build_rnn_stack(inp, rnn="gru", layers=2, units=UNITS, name="rnn"))
    rnn = model.get_layer("rnn")
    reader = tf.train.load_checkpoint(prefix)
    names = tf1_weight_names(rnn, "rnn_1/rnn")
    assert sorted(names) == sorted(n for n in reader.get_variable_to_shape_map() if n != "global_step")
    for weight, name in zip(rnn.weights, names):
        weight.assign(reader.get_tensor(name))

    got = keras.ops.convert_to_numpy(model(x))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_tf1_initial_values_and_shapes():
    cell = TF1GRUCell(UNITS)
    cell.build((None, F))
    assert tuple(cell.gates_kernel.shape) == (F + UNITS, 2 * UNITS)
    assert tuple(cell.candidate_kernel.shape) == (F + UNITS, UNITS)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(cell.gates_bias), np.ones(2 * UNITS))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(cell.candidate_bias), np.zeros(UNITS))


def test_matches_keras_gru_reset_before():
    """Keras GRU(reset_after=False) is the same maths with gates (update, reset, candidate)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(B, T, F)).astype("float32")
    ours = keras.layers.RNN(TF1GRUCell(UNITS, name="gru_cell"), return_sequences=True, name="ours")
    ours.build((None, None, F))
    cell = ours.cell
    for w in cell.weights:
        w.assign(rng.uniform(-0.7, 0.7, size=w.shape).astype("float32"))
    wg, bg, wc, bc = (keras.ops.convert_to_numpy(w) for w in cell.weights)
    reset_w, update_w = wg[:, :UNITS], wg[:, UNITS:]
    reset_b, update_b = bg[:UNITS], bg[UNITS:]

    reference = keras.layers.GRU(UNITS, reset_after=False, return_sequences=True, name="keras_gru")
    reference.build((None, None, F))
    kernel = np.concatenate([update_w[:F], reset_w[:F], wc[:F]], axis=1)
    recurrent = np.concatenate([update_w[F:], reset_w[F:], wc[F:]], axis=1)
    bias = np.concatenate([update_b, reset_b, bc])
    reference.set_weights([kernel, recurrent, bias])

    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ours(x)), keras.ops.convert_to_numpy(reference(x)), atol=1e-5
    )


def test_bad_units_named_in_error():
    try:
        TF1GRUCell(0)
    except ValueError as err:
        assert "0" in str(err)
    else:
        raise AssertionError("TF1GRUCell(0) did not raise")

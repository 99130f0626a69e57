"""build_rnn_stack: SavedModel with dynamic T, .keras round trip, mixed_bfloat16, XLA."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from affnet.layers import tf1_weight_names
from helpers import RNN_CONFIGS as CONFIGS
from helpers import RNN_FEATURES as F
from helpers import RNN_UNITS as UNITS
from helpers import rnn_inputs as _x
from helpers import rnn_stack_model as _model


@pytest.mark.parametrize(
    "config", ["gru", "gru_attention", pytest.param("lstm_dropout", marks=pytest.mark.slow)]
)
def test_savedmodel_reload_keeps_time_dynamic(tmp_path, config):
    model = _model(**CONFIGS[config])
    serve = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec((None, None, F), tf.float32)],
    )
    module = tf.Module()
    module.model = model
    module.serve = serve
    tf.saved_model.save(module, str(tmp_path / "saved"))
    reloaded = tf.saved_model.load(str(tmp_path / "saved"))
    for b, t in ((2, 5), (1, 13)):
        x = _x(b, t, seed=t)
        got = reloaded.serve(tf.constant(x)).numpy()
        assert got.shape == (b, t, UNITS)
        np.testing.assert_allclose(got, keras.ops.convert_to_numpy(model(x)), atol=1e-6)


@pytest.mark.parametrize("config", ["lstm_dropout", "gru_attention", "indrnn"])
def test_keras_file_round_trip(tmp_path, config):
    model = _model(**CONFIGS[config])
    x = _x(2, 6)
    path = str(tmp_path / "stack.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-6
    )
    assert tf1_weight_names(loaded.get_layer("rnn"), "s") == tf1_weight_names(model.get_layer("rnn"), "s")


@pytest.mark.parametrize("config", ["lstm_dropout", "gru_attention", "indrnn"])
def test_mixed_bfloat16(config):
    reference = _model(**CONFIGS[config])
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = _model(**CONFIGS[config])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    model.set_weights(reference.get_weights())
    assert all(w.dtype == "float32" for w in model.weights)
    x = _x(2, 6)
    y = model(x, training=True)
    assert y.dtype == "bfloat16"
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.cast(model(x), "float32")),
        keras.ops.convert_to_numpy(reference(x)),
        atol=0.05,
    )


@pytest.mark.parametrize(
    "config",
    [
        "gru_attention",
        pytest.param("lstm_dropout", marks=pytest.mark.slow),
        pytest.param("indrnn", marks=pytest.mark.slow),
    ],
)
def test_jit_compiled_forward(config):
    model = _model(**CONFIGS[config])
    x = tf.constant(_x(2, 5))
    forward = tf.function(lambda x, training: model(x, training=training), jit_compile=True)
    np.testing.assert_allclose(
        forward(x, False).numpy(), keras.ops.convert_to_numpy(model(x)), atol=1e-5
    )
    assert np.all(np.isfinite(forward(x, True).numpy()))


@pytest.mark.slow
@pytest.mark.parametrize("config", ["lstm_dropout", "gru_attention", "indrnn"])
def test_jit_compiled_training_step(config):
    model = _model(**CONFIGS[config])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", jit_compile=True)
    x, y = _x(4, 7), np.zeros((4, 7, UNITS), "float32")
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    assert all(not np.array_equal(a, b) for a, b in zip(before, after))
    assert model.predict(x, verbose=0).shape == (4, 7, UNITS)



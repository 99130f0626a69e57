"""Categorical fine-tuning of a VA network ([AW] Sec. 5.2): `to_categorical` on
tiny frame and sequence models, serialisation, and per-video aggregation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from affnet.models import build
from affnet.models.categorical import CategoricalModel, aggregate_per_video, to_categorical
from helpers import model_inputs as inputs
from helpers import saved_model_signature

LANDMARKS = 136


def tiny_cnn_rnn(**overrides):
    return build("affwildnet_vggface", **{"input_size": 32, "width": 0.125, "rnn_units": 8, "fc_units": 16,
                                          **overrides})


def tiny_frame_cnn(**overrides):
    return build("vggface_cnn", **{"input_size": 32, "width": 0.125, "fc_units": (16, 8), **overrides})



def test_cnn_rnn_becomes_a_sequence_classifier_with_dynamic_time():
    base = tiny_cnn_rnn()
    model = to_categorical(base)
    assert isinstance(model, CategoricalModel) and model.name == f"{base.name}_categorical"
    assert set(model.input) == {"images", "landmarks"}
    for steps in (3, 5):
        out = model(inputs(model, steps=steps))["expression"]
        assert out.shape == (2, steps, 7) and out.dtype == tf.float32
    names = [layer.name for layer in model.layers]
    assert "expression_output" in names and "va_output" not in names
    # The VA layers are shared, not copied; only va_output (8 x 2 + 2) gives way to 8 x 7 + 7.
    assert model.get_layer("fc1") is base.get_layer("fc1")
    assert model.get_layer("expression_output").kernel.shape == (8, 7)
    assert model.count_params() == base.count_params() - (8 * 2 + 2) + (8 * 7 + 7)


def test_frame_cnn_becomes_a_frame_classifier():
    model = to_categorical(tiny_frame_cnn(landmarks=False), num_classes=5, name="frame_expr")
    assert model.name == "frame_expr"
    assert model(inputs(model))["expression"].shape == (2, 5)
    assert model.get_layer("expression_output").kernel.shape == (8, 5)


def test_cnn_multi_rnn_becomes_a_classifier():
    base = build("cnn_3rnn", input_size=32, width=1 / 16, rnn_units=8, fc_units=16)
    model = to_categorical(base)
    # Three 8-unit RNN stacks concatenated feed the new output.
    assert model.get_layer("expression_output").kernel.shape == (24, 7)
    assert model(inputs(model))["expression"].shape == (2, 3, 7)


def test_gradients_reach_every_trainable_variable():
    model = to_categorical(tiny_cnn_rnn())
    x = inputs(model)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(model(x, training=True)["expression"]))
    grads = tape.gradient(loss, model.trainable_variables)
    assert len(model.trainable_variables) == len(model.weights)
    assert not [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
    assert all(float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)


def test_fine_tuning_decreases_cross_entropy_and_moves_the_shared_layers():
    base = tiny_cnn_rnn(dropout=0.0, landmarks=False)
    model = to_categorical(base)
    x = inputs(model, seed=2)
    y = np.random.default_rng(3).integers(0, 7, (2, 3))

    def loss_value(training=False):
        logits = model(x, training=training)["expression"]
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))

    fc1_before = base.get_layer("fc1").kernel.numpy().copy()
    optimizer = keras.optimizers.Adam(1e-2)
    before = float(loss_value())
    for _ in range(10):
        with tf.GradientTape() as tape:
            loss = loss_value(training=True)
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
    assert float(loss_value()) < 0.9 * before
    assert not np.array_equal(fc1_before, base.get_layer("fc1").kernel.numpy())


@pytest.mark.parametrize("make", [tiny_cnn_rnn, tiny_frame_cnn])
def test_keras_round_trip(tmp_path, make):
    model = to_categorical(make())
    path = tmp_path / "categorical.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, CategoricalModel) and loaded.num_classes == 7
    assert [w.path for w in loaded.weights] == [w.path for w in model.weights]
    for steps in (3, 4):
        x = inputs(model, steps=steps, seed=steps)
        np.testing.assert_allclose(loaded(x)["expression"], model(x)["expression"], atol=1e-5)


def test_saved_model_round_trip_with_dynamic_time(tmp_path):
    model = to_categorical(tiny_cnn_rnn(landmarks=False))
    spec = {"images": tf.TensorSpec((None, None, 32, 32, 3), tf.float32, name="images")}
    reloaded = saved_model_signature(lambda features: model(features, training=False), model, spec,
                                     tmp_path / "saved")
    for steps in (2, 6):
        x = inputs(model, batch=3, steps=steps, seed=steps)
        out = reloaded(images=tf.constant(x["images"]))["expression"]
        assert out.shape == (3, steps, 7)
        np.testing.assert_allclose(out, model(x)["expression"], atol=1e-5)


def test_rejects_models_without_va_output_and_bad_num_classes():
    x = keras.Input((4,))
    plain = keras.Model(x, keras.layers.Dense(2, name="head")(x), name="plain")
    with pytest.raises(ValueError, match="'plain' has no layer 'va_output'"):
        to_categorical(plain)
    with pytest.raises(ValueError, match="1"):
        to_categorical(tiny_frame_cnn(), num_classes=1)


# --- aggregate_per_video ------------------------------------------------------

PROBABILITIES = np.array([
    [0.6, 0.3, 0.1],  # video "b"
    [0.1, 0.2, 0.7],  # video "a"
    [0.5, 0.4, 0.1],  # video "b"
    [0.2, 0.2, 0.6],  # video "a"
    [0.0, 0.2, 0.8],  # video "b"
])
VIDEOS = np.array(["b", "a", "b", "a", "b"])


def test_mean_takes_the_argmax_of_the_mean_probability():
    videos, classes = aggregate_per_video(PROBABILITIES, VIDEOS, method="mean")
    # b: mean (0.367, 0.3, 0.333) -> 0; a: (0.15, 0.2, 0.65) -> 2; in order of first appearance.
    assert list(videos) == ["b", "a"]
    assert classes.tolist() == [0, 2] and classes.dtype == np.int64


def test_vote_takes_the_most_frequent_frame_class():
    # b: frame classes 0, 0, 2 -> 0; a: 2, 2 -> 2.
    videos, classes = aggregate_per_video(PROBABILITIES, VIDEOS, method="vote")
    assert list(videos) == ["b", "a"] and classes.tolist() == [0, 2]
    # Mean and vote disagree: two 0.45/0.55 frames out-vote one confident class-0 frame,
    # whose mean (0.633, 0.367) still favours class 0.
    p = np.array([[0.45, 0.55], [0.45, 0.55], [1.0, 0.0]])
    assert aggregate_per_video(p, [7, 7, 7], "vote")[1].tolist() == [1]
    assert aggregate_per_video(p, [7, 7, 7], "mean")[1].tolist() == [0]


def test_vote_ties_go_to_the_higher_mean_probability():
    p = np.array([[0.9, 0.1], [0.4, 0.6]])  # one vote each; mean (0.65, 0.35) -> 0
    assert aggregate_per_video(p, [1, 1], "vote")[1].tolist() == [0]
    p = np.array([[0.6, 0.4], [0.1, 0.9]])  # one vote each; mean (0.35, 0.65) -> 1
    assert aggregate_per_video(p, [1, 1], "vote")[1].tolist() == [1]


def test_logits_are_averaged_as_probabilities():
    # The mean logit favours class 0 (2.5 vs 0.75); the mean probability, class 1
    # (three frames at 0.27 / 0.73 and one at 1.0 / 0.0: 0.45 vs 0.55).
    logits = np.array([[10.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    assert aggregate_per_video(logits, [0] * 4, "mean", from_logits=True)[1].tolist() == [1]
    assert aggregate_per_video(logits, [0] * 4, "mean", from_logits=False)[1].tolist() == [0]


def test_sequence_windows_with_padding():
    # (B=2, T=2, C=2) windows; the padded frame would flip video 5 to class 1.
    p = np.array([[[0.6, 0.4], [0.6, 0.4]], [[0.0, 1.0], [0.3, 0.7]]])
    ids = np.array([[5, 5], [5, 6]])
    valid = np.array([[1, 1], [0, 1]])
    videos, classes = aggregate_per_video(p, ids, valid=valid)
    assert videos.tolist() == [5, 6] and classes.tolist() == [0, 1]
    assert aggregate_per_video(p, ids)[1].tolist() == [1, 1]


def test_aggregate_rejects_bad_arguments():
    with pytest.raises(ValueError, match="median"):
        aggregate_per_video(PROBABILITIES, VIDEOS, method="median")
    with pytest.raises(ValueError, match=r"\(5, 3\)"):
        aggregate_per_video(PROBABILITIES, VIDEOS[:4])
    with pytest.raises(ValueError, match="valid"):
        aggregate_per_video(PROBABILITIES, VIDEOS, valid=np.ones(4))

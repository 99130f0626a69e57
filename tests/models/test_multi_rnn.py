"""CNN plus multi-RNN ([MC] Sec. 5.3, [OMG] III-B) and model-level fusion ([MC] 5.4.1):
paper parameter counts, tap shapes, reductions, the median sequence loss's
gradients, round trips, weight initialisation by name, argument checks."""

import gc

import keras
import numpy as np
import pytest
import tensorflow as tf

from affnet.models import build, describe, fusion, multi_rnn
from affnet.objectives import losses
from affnet.weights import transfer
from helpers import assert_keras_round_trip
from helpers import assert_mixed_bfloat16_xla
from helpers import assert_serves_any_length
from helpers import sequence_inputs as inputs
from paper_counts import vgg_conv_params

LANDMARKS = 136


def dense(n_in, n_out):
    return n_in * n_out + n_out


def tf1_gru(n_in, units=128):
    """TF1 GRUCell: gates [in+u, 2u] + 2u, candidate [in+u, u] + u."""
    return 3 * units * (n_in + units) + 3 * units


def gru_stack(n_in, units=128, layers=2):
    return tf1_gru(n_in, units) + (layers - 1) * tf1_gru(units, units)


# VGG-Face at 96x96 ([AW] Table 7): pool2 24x24x128, pool5 3x3x512, fc1 4096.
POOL2, POOL5, FC = 24 * 24 * 128, 3 * 3 * 512, 4096
FC1 = dense(POOL5 + LANDMARKS, FC)  # [MC] 5.3.1: landmarks ++ last pool -> fc 4096.


def test_full_size_cnn_3rnn_parameter_count():
    # [MC] Fig. 5-6: each tap -> its own GRU(128) x 2; concatenation (3 x 128) -> 2.
    expected = (vgg_conv_params() + FC1 + gru_stack(POOL2) + gru_stack(POOL5) + gru_stack(FC)
                + dense(3 * 128, 2))
    model = build("cnn_3rnn")
    assert model.count_params() == expected == 66_249_538
    # The pool2 GRU's first layer: 28,361,088 parameters (module docstring).
    assert tf1_gru(POOL2) == 28_361_088
    del model
    keras.backend.clear_session()
    gc.collect()


def test_full_size_cnn_1rnn_parameter_count():
    # [MC] Fig. 7: pool2 ++ pool5 ++ fc -> one GRU(128) x 2 -> 2.
    expected = vgg_conv_params() + FC1 + gru_stack(POOL2 + POOL5 + FC) + dense(128, 2)
    model = build("cnn_1rnn")
    assert model.count_params() == expected == 65_952_578
    del model
    keras.backend.clear_session()
    gc.collect()


# Flattened tap sizes at 96x96, width 1 ([AW] Table 7 / module docstring table).
TAP_FEATURES_96 = {
    "conv1_1": 96 * 96 * 64, "conv1_2": 96 * 96 * 64, "pool1": 48 * 48 * 64,
    "conv2_1": 48 * 48 * 128, "conv2_2": 48 * 48 * 128, "pool2": 24 * 24 * 128,
    "conv3_1": 24 * 24 * 256, "conv3_2": 24 * 24 * 256, "conv3_3": 24 * 24 * 256, "pool3": 12 * 12 * 256,
    "conv4_1": 12 * 12 * 512, "conv4_2": 12 * 12 * 512, "conv4_3": 12 * 12 * 512, "pool4": 6 * 6 * 512,
    "conv5_1": 6 * 6 * 512, "conv5_2": 6 * 6 * 512, "conv5_3": 6 * 6 * 512, "pool5": 3 * 3 * 512,
}


def test_every_tap_has_the_documented_shape():
    # width 1/16 divides every VGG filter count exactly, so F(1) = 16 F(1/16).
    taps = tuple(TAP_FEATURES_96) + ("fc",)
    model = multi_rnn.CnnMultiRnn(taps=taps, rnn_mode="joint", input_size=96, width=1 / 16, fc_units=FC,
                                  rnn_units=2, rnn_layers=1)
    for tap, features in TAP_FEATURES_96.items():
        assert tuple(model.tap_output(tap).shape) == (None, None, features // 16), tap
    assert tuple(model.tap_output("fc").shape) == (None, None, FC)
    assert model.get_layer("taps_concat").output.shape[-1] == sum(TAP_FEATURES_96.values()) // 16 + FC
    # The paper's "nth conv" ordinals and the TF1 scope names.
    assert [multi_rnn.vgg_conv(n) for n in (3, 4, 5, 8, 13)] == ["conv2_1", "conv2_2", "conv3_1", "conv4_1",
                                                                 "conv5_3"]
    assert multi_rnn.normalise_tap("conv_13") == "conv5_3" and multi_rnn.normalise_tap("pool_2") == "pool2"


def test_last_pool_tap_is_taken_before_the_landmarks():
    model = tiny("cnn_3rnn")
    # Shared with fc1's input before `landmarks_concat` ([MC] 5.3.1).
    assert model.tap_output("pool5") is model.get_layer("unfold_features").output
    assert model.tap_output("pool5").shape[-1] == 32  # 1x1x32 at input 32, width 1/16.
    assert model.get_layer("fc1").kernel.shape == (32 + LANDMARKS, 16)


@pytest.mark.parametrize("reduction, features", [
    ("flatten", 8 * 8 * 8), ("global_average", 8), ("grid_average", 2 * 2 * 8), ("conv1x1", 8 * 8 * 5),
])
def test_tap_reductions(reduction, features):
    model = tiny("cnn_3rnn", tap_reduction={"pool2": reduction}, tap_grid=2, tap_channels=5)
    assert model.tap_output("pool2").shape[-1] == features
    assert model(inputs()).shape == (2, 3, 2)


TINY = dict(input_size=32, width=1 / 16, rnn_units=8, fc_units=16)


def tiny(name="cnn_3rnn", **overrides):
    return build(name, **{**TINY, **overrides})



FAST = ("cnn_3rnn", "cnn_1rnn", "cnn_2rnn_1fc", "cnn2_to_1rnn", "cnn_3rnn_conv2_1_conv3_3_fc",
        "omg_cnn_3rnn_last_conv", "omg_resnet50_rnn", "omg_resnet50_fc_rnn", "fusion_fc")


@pytest.mark.parametrize("name", FAST)
def test_tiny_configs_run(name):
    model = tiny(name)
    landmarks = "landmarks" in model.input
    out = model(inputs(landmarks=landmarks))
    assert out.shape == (2, 3, 2)
    assert np.all(np.isfinite(np.asarray(out)))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(multi_rnn.CONFIGS) - set(FAST)))
def test_every_config_builds_tiny(name):
    model = tiny(name)
    assert tuple(model.output.shape) == (None, None, 2)
    defaults = describe(name).defaults
    if "subnetworks" in defaults:  # A fusion takes landmarks when a sub-network does.
        forced = defaults.get("subnetwork_overrides", {}).get("landmarks")
        expected = forced if forced is not None else any(
            describe(sub).defaults["landmarks"] for sub in defaults["subnetworks"])
    else:
        expected = defaults["landmarks"]
    assert ("landmarks" in model.input) == expected


def test_registry_entries_cite_the_papers():
    for name in multi_rnn.CONFIGS:
        spec = describe(name)
        assert spec.sequence and spec.reference.startswith(("[MC]", "[OMG]")), name
    assert describe("cnn_3rnn").paper_ccc == (0.472, 0.329)
    assert describe("fusion_rnn").paper_ccc == (0.535, 0.365)
    assert {name for name in multi_rnn.TABLE5} <= set(multi_rnn.CONFIGS)
    assert describe("cnn_3rnn").defaults["rnn_dropout"] == pytest.approx(0.2)  # TF1 keep 0.8.


def test_separate_and_joint_structure():
    three = tiny("cnn_3rnn")
    one = tiny("cnn_1rnn")
    names3 = {layer.name for layer in three.layers}
    assert {"rnn_pool2", "rnn_pool5", "rnn_fc", "rnn_features"} <= names3 and "taps_concat" not in names3
    assert three.get_layer("va_output").kernel.shape == (3 * 8, 2)
    assert one.get_layer("taps_concat").output.shape[-1] == 8 * 8 * 8 + 32 + 16
    assert one.get_layer("va_output").kernel.shape == (8, 2)
    assert tiny("cnn_3rnn_1fc").get_layer("head_fc").kernel.shape == (3 * 8, 64)


def test_median_sequence_loss_has_finite_nonzero_gradients():
    """[MC]/[OMG] III-D: CCC across the batch's per-sequence medians."""
    model = tiny("cnn_3rnn", dropout=0.0, rnn_dropout=0.0)
    x = inputs(batch=4, steps=5, seed=3)
    labels = tf.constant([[0.5, 0.1], [-0.3, 0.7], [0.1, 0.4], [-0.8, 0.9]])
    with tf.GradientTape() as tape:
        loss = losses.sequence_ccc_loss(labels, model(x, training=True), reduce="median")
    grads = tape.gradient(loss, model.trainable_variables)
    assert np.isfinite(float(loss))
    assert not [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
    assert all(np.all(np.isfinite(np.asarray(g))) for g in grads)
    assert float(tf.linalg.global_norm(grads)) > 0.0
    # The three RNN stacks and the output all receive gradient through the medians.
    for name in ("rnn_pool2", "rnn_pool5", "rnn_fc", "va_output"):
        layer_grads = [g for v, g in zip(model.trainable_variables, grads) if v.path.startswith(name)]
        assert layer_grads and float(tf.linalg.global_norm(layer_grads)) > 0.0, name


def test_keras_round_trip_two_lengths(tmp_path):
    model = tiny("cnn_3rnn", tap_reduction={"pool2": "conv1x1"}, tap_channels=3)
    assert_keras_round_trip(model, tmp_path / "multi.keras", multi_rnn.CnnMultiRnn, (3, 6))


@pytest.mark.slow
def test_saved_model_dynamic_time(tmp_path):
    model = tiny("cnn_1rnn")
    assert_serves_any_length(model, tmp_path / "saved")


@pytest.mark.slow
def test_mixed_bfloat16_and_xla():
    assert_mixed_bfloat16_xla(lambda: tiny("cnn_3rnn"), inputs(), (2, 3, 2))


# ------------------------------------------------------------------ model-level fusion


def test_fusion_parameter_count_is_the_parts():
    """[MC] 5.4.1: both networks' RNN outputs -> GRU(128) -> 2, nothing else."""
    fused = tiny("fusion_rnn")
    parts = sum(tiny(name).count_params() - dense(width, 2) for name, width in (("cnn_1rnn", 8),
                                                                                   ("cnn_3rnn", 24)))
    assert fused.count_params() == parts + tf1_gru(8 + 24, 128) + dense(128, 2)
    fc = tiny("fusion_fc")
    assert fc.count_params() == parts + dense(8 + 24, 128) + dense(128, 2)
    assert {layer.name for layer in fused.layers} >= {"cnn_1rnn", "cnn_3rnn", "fusion_concat", "fusion_rnn"}


def test_omg_fusion_mixes_backbones_and_inputs():
    model = tiny("omg_fusion_vgg_resnet")
    assert list(model.input) == ["images"]  # [OMG] networks take no landmarks.
    assert model.get_layer("va_output").kernel.shape == (16, 2)  # two RNN outputs, no FC ([OMG] IV-4).
    assert model(inputs(landmarks=False)).shape == (2, 3, 2)


def test_copy_weights_by_name_checks_shapes():
    with pytest.raises(ValueError, match="fc1"):
        transfer.copy_by_name(tiny("cnn_1rnn", fc_units=12), tiny("cnn_1rnn"), "other run")


@pytest.mark.slow
def test_fusion_keras_round_trip(tmp_path):
    model = tiny("fusion_fc")
    path = tmp_path / "fusion.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, fusion.ModelFusion)
    x = inputs(steps=4)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-5)


@pytest.mark.parametrize("name, overrides, message", [
    ("cnn_3rnn", dict(taps=("pool2", "pool2")), "pool2"),
    ("cnn_3rnn", dict(taps=("pool9", "fc")), "pool9"),
    ("cnn_3rnn", dict(taps=("conv_14", "fc")), "conv_14"),
    ("cnn_3rnn", dict(rnn_mode="parallel"), "parallel"),
    ("cnn_3rnn", dict(tap_reduction="pca"), "pca"),
    ("cnn_3rnn", dict(tap_reduction={"pool3": "flatten"}), "pool3"),
    ("cnn_3rnn", dict(tap_reduction="grid_average", tap_grid=3), "tap_grid=3"),
    ("cnn_3rnn", dict(taps=("pool2", "pool5")), "landmarks=True"),
    ("cnn_3rnn", dict(rnn_dropout=1.0), "1.0"),
    ("cnn_3rnn", dict(head_fc_units=-1), "-1"),
    ("fusion_rnn", dict(fusion="attention"), "attention"),
    ("fusion_rnn", dict(subnetworks=("cnn_3rnn",)), "cnn_3rnn"),
    ("fusion_rnn", dict(subnetworks=("cnn_3rnn", "vggface_cnn")), "vggface_cnn"),
    ("fusion_rnn", dict(init_weights={"cnn_2rnn": "x.keras"}), "cnn_2rnn"),
    ("fusion_rnn", dict(init_weights="a.keras"), "1 sources"),
])
def test_bad_arguments(name, overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny(name, **overrides)


# ------------------------------------------------------------------ training on the synthetic set


@pytest.mark.slow
def test_tiny_fusion_trains_on_the_synthetic_set(synthetic_data):
    """[MC] 5.4.1 end to end with the utterance-level median loss ([MC] Sec. 3)."""
    from data_pipeline.reader import input as data_input

    dataset = data_input.make_train_dataset(synthetic_data, "train", seq_len=8, batch_size=4, image_size=32, seed=0)
    features, labels = next(iter(dataset))
    assert features["images"].shape == (4, 8, 32, 32, 3)
    # No dropout, so that fitting one fixed batch must lower the loss.
    model = tiny("fusion_rnn", fusion_units=16, dropout=0.0, rnn_dropout=0.0)
    optimizer = keras.optimizers.Adam(3e-3)

    @tf.function
    def step(features, labels):
        with tf.GradientTape() as tape:
            predictions = model(features, training=True)
            loss = losses.sequence_ccc_loss(labels["va"], predictions, labels["va_mask"], reduce="median")
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    before = [np.array(v) for v in model.trainable_variables]
    history = [float(step(features, labels)) for _ in range(10)]  # One batch: the loss must fall.
    assert all(np.isfinite(history)), history
    assert min(history[-3:]) < history[0] - 0.05, history
    changed = [not np.array_equal(b, np.asarray(v)) for b, v in zip(before, model.trainable_variables)]
    assert all(changed)
    for features, labels in dataset.take(2):  # Fresh batches: finite.
        assert np.isfinite(float(step(features, labels)))

"""MT-VGG, MT-VGG-GRU and A/V-MT-VGG-GRU ([FBN] Sec. VI-A): full-size parameter
counts against hand arithmetic, tiny-config shapes, gradients, optimisation,
.keras / SavedModel round trips, and the name-based initialisations of [FBN]
"Training implementation details"."""

import gc

import keras
import numpy as np
import pytest
import tensorflow as tf

from affnet.models import build, describe, multitask
from data_pipeline.records.schema import AUS_ABAW_12, AUS_AFFWILD2_8, AUS_FBN_17
from helpers import fit_briefly
from helpers import model_inputs as inputs
from helpers import saved_model_signature
from paper_counts import VGG_POOL5, dense, gru_stack, vgg_conv_params

LANDMARKS = 136
EXPRESSIONS = 7

# Hand counts at 96x96, width 1 ([FBN] Sec. VI-A): VGG-Face conv 14,714,688;
# flattened pool5 3x3x512 = 4,608 (SAME 2x2/2 pools: 96 -> 48 -> 24 -> 12 -> 6 -> 3);
# TF1 GRU(128) on `in` inputs: (in+128)*256 + 256 + (in+128)*128 + 128.
OUTPUTS_8 = dense(4096, 2) + dense(4096, EXPRESSIONS) + dense(4096, 8)  # 8,194 + 28,679 + 32,776
GRU_OUTPUTS_8 = dense(128, 2 + EXPRESSIONS + 8)  # 2,193
FC1 = dense(VGG_POOL5, 4096)  # 18,878,464
STREAM = vgg_conv_params() + FC1 + gru_stack(4096)  # 14,714,688 + 18,878,464 + 1,721,088
EXPECTED = {
    "mt_vgg": vgg_conv_params() + FC1 + dense(4096, 4096) + OUTPUTS_8,
    "mt_vgg_gru": STREAM + GRU_OUTPUTS_8,
    "mt_vgg_gru_audio": STREAM + GRU_OUTPUTS_8,  # the spectrogram-to-image layer has no weights
    "av_mt_vgg_gru": 2 * STREAM + gru_stack(2 * 128) + GRU_OUTPUTS_8,
}
WRITTEN_OUT = {"mt_vgg": 50_444_113, "mt_vgg_gru": 35_316_433, "mt_vgg_gru_audio": 35_316_433,
               "av_mt_vgg_gru": 70_877_201}

TINY_SPECTROGRAM = (4, 8)


def test_hand_counts_spelled_out():
    assert vgg_conv_params() == 14_714_688 and FC1 == 18_878_464
    assert gru_stack(4096) == (4096 + 128) * 256 + 256 + (4096 + 128) * 128 + 128 + (128 + 128) * 384 + 384
    assert EXPECTED == WRITTEN_OUT


def test_every_config_is_counted():
    assert set(EXPECTED) == set(multitask.CONFIGS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_full_size_parameter_count(name):
    model = build(name)
    try:
        assert model.count_params() == EXPECTED[name]
        lead = (None, None) if describe(name).sequence else (None,)
        assert {key: tuple(t.shape) for key, t in model.output.items()} == {
            "va": lead + (2,), "expression": lead + (EXPRESSIONS,), "au": lead + (8,)}
    finally:
        del model
        keras.backend.clear_session()
        gc.collect()


def tiny(name, **overrides):
    if describe(name).sequence:
        base = dict(input_size=32, width=0.125, fc_units=16, rnn_units=8, spectrogram_shape=TINY_SPECTROGRAM)
    else:
        base = dict(input_size=32, width=0.125, fc_units=(16, 16))
    return build(name, **{**base, **overrides})



def labels(outputs, seed=1):
    rng = np.random.default_rng(seed)
    lead = tuple(outputs["va"].shape[:-1])
    return {"va": rng.uniform(-1, 1, lead + (2,)).astype("float32"),
            "expression": rng.integers(0, EXPRESSIONS, lead),
            "au": rng.integers(0, 2, lead + (outputs["au"].shape[-1],)).astype("float32")}


def sum_of_task_losses(outputs, y):
    """MSE + softmax CE + sigmoid BCE: a stand-in for the lead's losses."""
    va = tf.reduce_mean(tf.square(outputs["va"] - y["va"]))
    expression = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y["expression"],
                                                                               outputs["expression"]))
    au = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(y["au"], outputs["au"]))
    return va + expression + au


@pytest.mark.parametrize("name, keys, lead", [
    ("mt_vgg", {"images"}, (2,)),
    ("mt_vgg_gru", {"images"}, (2, 3)),
    ("mt_vgg_gru_audio", {"spectrogram"}, (2, 3)),
    ("av_mt_vgg_gru", {"images", "spectrogram"}, (2, 3)),
])
def test_tiny_outputs(name, keys, lead):
    model = tiny(name)
    assert set(model.input) == keys
    assert model.au_names == AUS_AFFWILD2_8
    out = model(inputs(model))
    assert set(out) == {"va", "expression", "au"}
    assert {k: tuple(v.shape) for k, v in out.items()} == {"va": lead + (2,), "expression": lead + (7,),
                                                         "au": lead + (8,)}
    assert all(v.dtype == tf.float32 and np.all(np.isfinite(v)) for v in out.values())


def test_spectrogram_input_size_follows_spectrogram_shape():
    model = tiny("mt_vgg_gru_audio")
    assert tuple(model.input["spectrogram"].shape) == (None, None, 4 * 8)
    assert describe("av_mt_vgg_gru").defaults["spectrogram_shape"] == (16, 64)


@pytest.mark.parametrize("overrides, expected", [
    (dict(au_set="12"), AUS_ABAW_12),
    (dict(au_set="17"), AUS_FBN_17),
    (dict(au_set=17), AUS_FBN_17),
    (dict(au_names=("AU6", "AU12")), ("AU6", "AU12")),
    (dict(au_set="17", au_names=["AU1", "AU2", "AU4"]), ("AU1", "AU2", "AU4")),
])
def test_au_set_and_au_names(overrides, expected):
    model = tiny("mt_vgg_gru", **overrides)
    assert model.au_names == expected
    assert model.get_config()["au_names"] == list(expected)
    assert model(inputs(model))["au"].shape == (2, 3, len(expected))


def test_layer_names():
    frame = {layer.name for layer in tiny("mt_vgg").layers}
    assert {"images", "vggface", "flatten", "fc1", "fc1_dropout", "fc2", "fc2_dropout", "va_output",
            "expression_output", "au_output"} <= frame
    sequence = {layer.name for layer in tiny("mt_vgg_gru").layers}
    assert {"fold_images", "vggface", "unfold_features", "fc1", "fc1_dropout", "rnn", "va_output",
            "expression_output", "au_output"} <= sequence and "fc2" not in sequence
    audio = {layer.name for layer in tiny("mt_vgg_gru_audio").layers}
    assert {"fold_spectrogram", "spectrogram_image", "vggface", "fc1", "rnn"} <= audio
    av = tiny("av_mt_vgg_gru")
    assert {"visual_stream", "audio_stream", "av_concat", "fusion_rnn"} <= {layer.name for layer in av.layers}
    for modality in ("visual", "audio"):
        stream = {layer.name for layer in av.stream(modality).layers}
        assert {"vggface", "fc1", "rnn"} <= stream
    assert "spectrogram_image" in {layer.name for layer in av.stream("audio").layers}
    # The fusion GRU reads the 2 x 8 concatenated stream outputs (TF1 gates kernel [in + u, 2u]).
    gates = [w for w in av.get_layer("fusion_rnn").weights if w.path.endswith("gru0/gates_kernel")]
    assert [tuple(w.shape) for w in gates] == [(2 * 8 + 8, 2 * 8)]


def test_av_variable_paths_are_unique_and_prefixed():
    model = tiny("av_mt_vgg_gru")
    paths = [w.path for w in model.weights]
    assert len(paths) == len(set(paths))
    stream_paths = [p for p in paths if not p.startswith(("fusion_rnn/", "va_output/", "expression_output/",
                                                          "au_output/"))]
    assert stream_paths and all(p.startswith(("visual_stream/", "audio_stream/")) for p in stream_paths)


def test_landmarks_enter_fc1_of_the_visual_stream():
    model = tiny("mt_vgg_gru", landmarks=True)
    assert set(model.input) == {"images", "landmarks"}
    # pool5 at 32x32, width 1/8: 1x1x64.
    assert model.get_layer("fc1").kernel.shape == (64 + LANDMARKS, 16)
    assert model(inputs(model))["va"].shape == (2, 3, 2)
    av = tiny("av_mt_vgg_gru", landmarks=True)
    assert set(av.input) == {"images", "spectrogram", "landmarks"}
    assert av.stream("visual").get_layer("fc1").kernel.shape == (64 + LANDMARKS, 16)
    assert av.stream("audio").get_layer("fc1").kernel.shape == (64, 16)
    frame = tiny("mt_vgg", landmarks=True)
    assert frame(inputs(frame))["au"].shape == (2, 8)


def test_spectrogram_image_reshapes_resizes_and_repeats():
    layer = multitask.SpectrogramImage(2, 3, 2)
    patch = np.arange(6, dtype="float32").reshape(1, 6)
    image = np.asarray(layer(patch))
    assert image.shape == (1, 2, 2, 3)
    np.testing.assert_array_equal(image[..., 0], image[..., 2])
    reference = tf.image.resize(patch.reshape(1, 2, 3, 1), (2, 2), method="bilinear")[..., 0]
    np.testing.assert_allclose(image[..., 1], reference, atol=1e-6)
    same = multitask.SpectrogramImage(2, 2, 2)
    np.testing.assert_array_equal(np.asarray(same(patch[:, :4]))[0, :, :, 0], [[0, 1], [2, 3]])
    with pytest.raises(ValueError, match="6 values"):
        multitask.SpectrogramImage(2, 3, 8)(np.zeros((1, 5), "float32"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_gradients_reach_every_trainable_variable(name):
    model = tiny(name)
    x = inputs(model)
    with tf.GradientTape() as tape:
        out = model(x, training=True)
        loss = sum_of_task_losses(out, labels(out))
    grads = tape.gradient(loss, model.trainable_variables)
    assert len(model.trainable_variables) == len(model.weights)
    assert not [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
    assert all(float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_few_steps_decrease_the_summed_loss(name):
    model = tiny(name, dropout=0.0)
    x = inputs(model, seed=3)
    y = labels(model(x), seed=4)
    # The tiny GRU models start with near-zero tanh features and need the larger rate.
    before, after = fit_briefly(model, sum_of_task_losses, x, y, steps=10,
                                learning_rate=1e-2 if describe(name).sequence else 1e-3)
    assert after < 0.9 * before, (before, after)


def test_freeze_backbone():
    model = tiny("av_mt_vgg_gru", freeze_backbone=True)
    frozen = {w.path for w in model.non_trainable_weights}
    assert frozen and all("conv" in p for p in frozen)
    assert not model.stream("visual").get_layer("vggface").trainable
    assert not model.stream("audio").get_layer("vggface").trainable


@pytest.mark.parametrize("name", ["mt_vgg", "mt_vgg_gru", "av_mt_vgg_gru"])
def test_keras_round_trip(tmp_path, name):
    model = tiny(name, au_set="12")
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model) and loaded.au_names == AUS_ABAW_12
    for steps in (3, 5):
        x = inputs(model, steps=steps, seed=steps)
        want, got = model(x), loaded(x)
        for key in ("va", "expression", "au"):
            np.testing.assert_allclose(got[key], want[key], atol=1e-5)


@pytest.mark.parametrize("name", ["mt_vgg_gru", "av_mt_vgg_gru"])
def test_saved_model_round_trip_with_dynamic_time(tmp_path, name):
    model = tiny(name)
    spec = {key: tf.TensorSpec((None,) + (None,) + tuple(t.shape[2:]), tf.float32, name=key)
            for key, t in model.input.items()}
    reloaded = saved_model_signature(lambda features: model(features, training=False), model, spec,
                                     tmp_path / "saved")
    for steps in (2, 7):
        x = inputs(model, batch=3, steps=steps, seed=steps)
        got, want = reloaded(**{k: tf.constant(v) for k, v in x.items()}), model(x)
        assert set(got) == {"va", "expression", "au"}
        for key in want:
            assert got[key].shape[:2] == (3, steps)
            np.testing.assert_allclose(got[key], want[key], atol=1e-5)


def _assert_layers_equal(a, b, names):
    for name in names:
        for wa, wb in zip(a.get_layer(name).get_weights(), b.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(wa, wb)


def _layers_differ(a, b, name):
    return any(not np.array_equal(wa, wb)
               for wa, wb in zip(a.get_layer(name).get_weights(), b.get_layer(name).get_weights()))


def test_mt_vgg_initialises_the_cnn_and_fc1_of_mt_vgg_gru():
    source = tiny("mt_vgg", fc_units=(16, 16))
    target = tiny("mt_vgg_gru")
    rnn_before = [w.copy() for w in target.get_layer("rnn").get_weights()]
    assert _layers_differ(source, target, "vggface") and _layers_differ(source, target, "fc1")
    assert multitask.init_cnn_from(target, source) == ["vggface", "fc1"]
    _assert_layers_equal(source, target, ["vggface", "fc1"])
    for before, after in zip(rnn_before, target.get_layer("rnn").get_weights()):
        np.testing.assert_array_equal(before, after)


def test_a_va_frame_cnn_initialises_mt_vgg_cnn_fc1_and_fc2():
    # [FBN] "MT-VGG was first pre-trained on the Aff-Wild" (a VGG-Face 4096x4096x2 regressor).
    source = build("vggface_4096x4096x2", input_size=32, width=0.125, fc_units=(16, 16))
    target = tiny("mt_vgg")
    assert multitask.init_cnn_from(target, source) == ["vggface", "fc1", "fc2"]
    _assert_layers_equal(source, target, ["vggface", "fc1", "fc2"])


@pytest.mark.parametrize("modality, single", [("visual", "mt_vgg_gru"), ("audio", "mt_vgg_gru_audio")])
def test_single_stream_runs_initialise_the_av_streams(tmp_path, modality, single):
    source = tiny(single)
    target = tiny("av_mt_vgg_gru")
    stream = target.stream(modality)
    assert _layers_differ(source, stream, "rnn")
    path = tmp_path / f"{single}.keras"
    source.save(path)
    assert multitask.init_stream_from(target, modality, path) == ["vggface", "fc1", "rnn"]
    _assert_layers_equal(source, stream, ["vggface", "fc1", "rnn"])
    # The stream now computes exactly the single-stream model's GRU features.
    x = inputs(source, seed=7)
    features = keras.Model(source.input, source.get_layer("rnn").output)
    np.testing.assert_allclose(stream(x, training=False), features(x, training=False), atol=1e-6)
    other = target.stream("audio" if modality == "visual" else "visual")
    assert _layers_differ(source, other, "rnn")


def test_init_rejects_mismatched_shapes_and_assigns_nothing():
    source = tiny("mt_vgg_gru", rnn_units=4)
    target = tiny("av_mt_vgg_gru")
    before = [w.copy() for w in target.stream("visual").get_weights()]
    with pytest.raises(ValueError, match="'rnn'"):
        multitask.init_stream_from(target, "visual", source)
    for old, new in zip(before, target.stream("visual").get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    with pytest.raises(ValueError, match="AvMtVggGru"):
        multitask.init_stream_from(source, "visual", source)
    with pytest.raises(ValueError, match="not_there"):
        multitask.init_cnn_from(target, "not_there.keras", stream="visual")


def test_mixed_bfloat16_and_xla():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = tiny("mt_vgg_gru_audio")
        x = inputs(model)
        out = tf.function(lambda f: model(f, training=False), jit_compile=True)(x)
        assert all(v.dtype == tf.float32 for v in out.values())
        assert out["au"].shape == (2, 3, 8)
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("name, overrides, message", [
    ("mt_vgg", dict(au_set="9"), "'9'"),
    ("mt_vgg", dict(au_names=()), r"\(\)"),
    ("mt_vgg", dict(au_names=("AU1", "AU1")), "AU1"),
    ("mt_vgg", dict(fc_units=()), r"\(\)"),
    ("mt_vgg", dict(dropout=1.0), "1.0"),
    ("mt_vgg_gru", dict(modality="video"), "video"),
    ("mt_vgg_gru", dict(rnn="rnn_tanh"), "rnn_tanh"),
    ("mt_vgg_gru", dict(rnn_layers=0), "0"),
    ("mt_vgg_gru", dict(rnn_units=2.5), "2.5"),
    ("mt_vgg_gru", dict(fc_units=(16, 16)), r"\(16, 16\)"),
    ("mt_vgg_gru_audio", dict(landmarks=True), "audio"),
    ("mt_vgg_gru_audio", dict(spectrogram_shape=(4, 0)), r"\(4, 0\)"),
    ("av_mt_vgg_gru", dict(spectrogram_shape=16), "16"),
    ("av_mt_vgg_gru", dict(fusion_rnn_units=0), "0"),
    ("av_mt_vgg_gru", dict(freeze_backbone="yes"), "yes"),
])
def test_bad_overrides(name, overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny(name, **overrides)


def test_configs_cite_the_paper():
    for name, spec in multitask.CONFIGS.items():
        assert spec.reference.startswith("[FBN] Sec. VI-A") and "Table IV" in spec.reference
        assert spec.paper_ccc is not None
    assert describe("mt_vgg").sequence is False
    assert all(describe(name).sequence for name in ("mt_vgg_gru", "mt_vgg_gru_audio", "av_mt_vgg_gru"))

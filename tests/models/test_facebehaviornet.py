"""FaceBehaviorNet ([FBN] Sec. VI-B): MT-VGG with VA + 7 expressions + 17 AUs."""


import keras
import numpy as np
import pytest
import tensorflow as tf

from affnet.models import build, describe, facebehaviornet, multitask
from data_pipeline.records.schema import AUS_FBN_17
from helpers import fit_briefly, full_size
from paper_counts import VGG_POOL5, dense, vgg_conv_params

# 96x96, width 1: VGG-Face conv -> fc1 4096 -> fc2 4096 -> 2 + 7 + 17 linear outputs.
EXPECTED = vgg_conv_params() + dense(VGG_POOL5, 4096) + dense(4096, 4096) + dense(4096, 2) + dense(4096, 7) \
    + dense(4096, 17)


def tiny(**overrides):
    return build("facebehaviornet", **{"input_size": 32, "width": 0.125, "fc_units": (16, 16), **overrides})


def images(batch=2, seed=0):
    return {"images": np.random.default_rng(seed).uniform(-1, 1, (batch, 32, 32, 3)).astype("float32")}


def test_hand_count_spelled_out():
    assert EXPECTED == 14_714_688 + 18_878_464 + 16_781_312 + 8_194 + 28_679 + 69_649 == 50_480_986


@pytest.mark.slow
def test_full_size_parameter_count():
    with full_size("facebehaviornet") as model:
        assert model.count_params() == EXPECTED
        assert {k: tuple(t.shape) for k, t in model.output.items()} == {
            "va": (None, 2), "expression": (None, 7), "au": (None, 17)}


def test_registered_as_an_mt_vgg_frame_model_with_17_aus():
    spec = describe("facebehaviornet")
    assert spec.builder is multitask.MtVgg and spec.sequence is False
    assert spec.defaults["au_set"] == "17" and spec.reference.startswith("[FBN] Sec. VI-B")
    assert facebehaviornet.AU_NAMES == AUS_FBN_17 and len(AUS_FBN_17) == 17


def test_outputs_and_au_names():
    model = tiny()
    assert model.au_names == AUS_FBN_17
    assert model.get_config()["au_names"] == list(AUS_FBN_17)
    assert model.expression_names[0] == "neutral" and len(model.expression_names) == 7
    out = model(images())
    assert {k: tuple(v.shape) for k, v in out.items()} == {"va": (2, 2), "expression": (2, 7), "au": (2, 17)}
    assert all(v.dtype == tf.float32 for v in out.values())


def test_keras_round_trip_keeps_au_names(tmp_path):
    model = tiny()
    model.save(tmp_path / "fbn.keras")
    loaded = keras.models.load_model(tmp_path / "fbn.keras")
    assert loaded.au_names == AUS_FBN_17
    x = images(seed=3)
    for key in ("va", "expression", "au"):
        np.testing.assert_allclose(loaded(x)[key], model(x)[key], atol=1e-5)


def test_mt_vgg_initialises_everything_but_the_outputs():
    source = build("mt_vgg", input_size=32, width=0.125, fc_units=(16, 16))
    model = tiny()
    assert multitask.init_cnn_from(model, source) == ["vggface", "fc1", "fc2"]
    for name in ("vggface", "fc1", "fc2"):
        for a, b in zip(source.get_layer(name).get_weights(), model.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)
    assert model.get_layer("au_output").kernel.shape == (16, 17)


def _masked_objective(out, y):
    """[FBN] eq. 7 without the CCC term: CE on expressions + AU BCE masked to
    the annotated AUs and normalised by their count."""
    emo = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y["expression"], out["expression"]))
    bce = tf.nn.sigmoid_cross_entropy_with_logits(y["au"], out["au"]) * y["au_mask"]
    au = tf.reduce_mean(tf.reduce_sum(bce, -1) / tf.maximum(tf.reduce_sum(y["au_mask"], -1), 1.0))
    return emo + au + tf.reduce_mean(tf.square(out["va"] - y["va"]))


def test_gradients_and_a_few_steps_decrease_the_loss():
    model = tiny(dropout=0.0)
    rng = np.random.default_rng(5)
    x = images(batch=4, seed=4)
    y = {"expression": rng.integers(0, 7, (4,)), "au": rng.integers(0, 2, (4, 17)).astype("float32"),
         "au_mask": (rng.uniform(size=(4, 17)) < 0.6).astype("float32"),
         "va": rng.uniform(-1, 1, (4, 2)).astype("float32")}
    with tf.GradientTape() as tape:
        loss = _masked_objective(model(x, training=True), y)
    grads = tape.gradient(loss, model.trainable_variables)
    assert not [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
    before, after = fit_briefly(model, _masked_objective, x, y, steps=12, learning_rate=1e-3)
    assert after < 0.95 * before, (before, after)

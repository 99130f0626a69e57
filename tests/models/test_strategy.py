"""[AW2] training strategies: (i) frozen CNN, (iii) RNN restored from (i)."""

import keras
import numpy as np
import pytest

from affnet.models import build, strategy

TINY = dict(input_size=32, width=1 / 16, fc_units=16, rnn_units=8, landmarks=False)


def tiny(**overrides):
    return build("vggface_gru", **{**TINY, **overrides})


def images(steps=3):
    return {"images": np.random.default_rng(steps).uniform(-1, 1, (2, steps, 32, 32, 3)).astype("float32")}


def rnn_layers(model):
    return [layer for layer in model.layers if layer.name.startswith("rnn") and layer.weights]


def assert_same_weights(a, b):
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)


def test_freeze_backbone_then_train_leaves_the_cnn_unchanged():
    model = strategy.freeze_backbone(tiny())
    before = model.backbone.get_weights()
    trainable = {v.path.split("/")[0] for v in model.trainable_variables}
    assert "vggface" not in trainable and "fc1" in trainable
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.fit(images(), np.ones((2, 3, 2), "float32"), epochs=2, verbose=0)
    for x, y in zip(before, model.backbone.get_weights(), strict=True):
        np.testing.assert_array_equal(x, y)
    strategy.freeze_backbone(model, frozen=False)
    assert model.backbone.trainable


def test_freeze_override_equals_helper():
    assert len(tiny(freeze_backbone=True).trainable_variables) == len(
        strategy.freeze_backbone(tiny()).trainable_variables)


@pytest.mark.parametrize("kind", ["model", "weights.h5", "keras"])
def test_restore_rnn_copies_only_the_rnn(tmp_path, kind):
    source, target = tiny(), tiny()
    if kind == "model":
        where = source
    else:
        where = tmp_path / f"source.{kind}"
        source.save_weights(where) if kind == "weights.h5" else source.save(where)
    copied = strategy.restore_rnn_from(target, where)
    assert copied and all(name.startswith("rnn") for name in copied)
    for a, b in zip(rnn_layers(source), rnn_layers(target), strict=True):
        assert_same_weights(a, b)
    assert not np.array_equal(source.get_layer("fc1").kernel.numpy(), target.get_layer("fc1").kernel.numpy())
    assert not np.array_equal(source.get_layer("va_output").kernel.numpy(),
                              target.get_layer("va_output").kernel.numpy())


def test_restore_rnn_with_output():
    source, target = tiny(), tiny()
    copied = strategy.restore_rnn_from(target, source, include_output=True)
    assert "va_output" in copied
    assert_same_weights(source.get_layer("va_output"), target.get_layer("va_output"))


def test_restore_rnn_errors(tmp_path):
    target = tiny()
    with pytest.raises(ValueError, match="missing.keras"):
        strategy.restore_rnn_from(target, tmp_path / "missing.keras")
    bad = tmp_path / "model.h5"
    bad.write_bytes(b"")
    with pytest.raises(ValueError, match="model.h5"):
        strategy.restore_rnn_from(target, bad)
    other = tiny(rnn_units=4)
    with pytest.raises(ValueError, match="rnn"):
        strategy.restore_rnn_from(target, other)
    with pytest.raises(ValueError, match="no layer named"):
        strategy.restore_rnn_from(build("cnn_m", input_size=32, width=1 / 16), other)

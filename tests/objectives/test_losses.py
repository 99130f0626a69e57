"""CCC / MSE losses against explicit numpy formulas, gradients, XLA and Keras use."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from affnet.objectives import losses
from affnet.evaluation.streaming import StreamingCCC


def np_ccc(x, y):
    """Independent population-moment CCC, [AW2] eq. 1."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    cov = np.mean((x - x.mean()) * (y - y.mean()))
    return 2 * cov / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def make_pair(shape, seed=0):
    rng = np.random.default_rng(seed)
    y_true = rng.uniform(-1, 1, shape).astype(np.float32)
    y_pred = (0.6 * y_true + 0.4 * rng.normal(size=shape) + 0.1).astype(np.float32)
    return y_true, y_pred


@pytest.mark.parametrize("shape", [(4, 9, 2), (37, 2), (3, 6, 3)])
def test_concordance_cc_matches_numpy(shape):
    y_true, y_pred = make_pair(shape)
    got = losses.concordance_cc(y_true, y_pred).numpy()
    flat_t = y_true.reshape(-1, shape[-1])
    flat_p = y_pred.reshape(-1, shape[-1])
    want = [np_ccc(flat_t[:, d], flat_p[:, d]) for d in range(shape[-1])]
    assert got.shape == (shape[-1],)
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_ccc_loss_is_one_minus_mean_ccc():
    y_true, y_pred = make_pair((4, 9, 2))
    rho_v = np_ccc(y_true[..., 0].ravel(), y_pred[..., 0].ravel())
    rho_a = np_ccc(y_true[..., 1].ravel(), y_pred[..., 1].ravel())
    got = float(losses.ccc_loss(y_true, y_pred))
    np.testing.assert_allclose(got, 1 - (rho_v + rho_a) / 2, atol=1e-6)
    assert float(losses.ccc_loss(y_true, y_true)) == pytest.approx(0.0, abs=1e-6)
    assert float(losses.ccc_loss(y_true, -y_true)) > 1.9


def test_frame_mask_ignores_nan_labels():
    y_true, y_pred = make_pair((3, 8, 2))
    mask = np.ones((3, 8), np.float32)
    mask[0, 5:] = 0
    mask[2, :2] = 0
    y_true[mask == 0] = np.nan
    keep = mask > 0
    want = [np_ccc(y_true[..., d][keep], y_pred[..., d][keep]) for d in range(2)]
    got = losses.concordance_cc(y_true, y_pred, mask).numpy()
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_per_dimension_mask():
    y_true, y_pred = make_pair((3, 8, 2))
    mask = np.ones((3, 8, 2), np.float32)
    mask[1, :, 1] = 0  # arousal unlabelled on sequence 1 only
    got = losses.concordance_cc(y_true, y_pred, mask).numpy()
    assert got[0] == pytest.approx(np_ccc(y_true[..., 0], y_pred[..., 0]), abs=1e-6)
    arousal = mask[..., 1] > 0
    assert got[1] == pytest.approx(np_ccc(y_true[..., 1][arousal], y_pred[..., 1][arousal]), abs=1e-6)


def test_xla_entry_compiles_and_matches_numpy():
    y_true, y_pred = make_pair((4, 16, 2))
    hlo = losses.ccc_loss_xla.experimental_get_compiler_ir(
        tf.constant(y_true), tf.constant(y_pred), None
    )(stage="hlo")
    assert "HloModule" in hlo and "ENTRY" in hlo
    want = 1 - np.mean([np_ccc(y_true[..., d], y_pred[..., d]) for d in range(2)])
    np.testing.assert_allclose(float(losses.ccc_loss_xla(y_true, y_pred)), want, atol=1e-5)
    mask = tf.constant((np.arange(64).reshape(4, 16) % 3 > 0).astype(np.float32))
    keep = mask.numpy() > 0
    want_masked = 1 - np.mean([np_ccc(y_true[..., d][keep], y_pred[..., d][keep]) for d in range(2)])
    np.testing.assert_allclose(
        float(losses.ccc_loss_xla(y_true, y_pred, mask)), want_masked, atol=1e-5
    )


def _sequence_loss_fn(reduce):
    def loss(y_true, y_pred, mask):
        return losses.sequence_ccc_loss(y_true, y_pred, mask, reduce)

    return loss


def test_sequence_losses_compile_under_xla():
    y_true, y_pred = make_pair((4, 10, 2))
    mask = np.ones((4, 10), np.float32)
    mask[1, 7:] = 0
    for reduce in ("mean", "median"):
        compiled = tf.function(_sequence_loss_fn(reduce), jit_compile=True)
        hlo = compiled.experimental_get_compiler_ir(
            tf.constant(y_true), tf.constant(y_pred), tf.constant(mask)
        )(stage="hlo")
        assert "ENTRY" in hlo
        eager = float(losses.sequence_ccc_loss(y_true, y_pred, mask, reduce))
        assert float(compiled(y_true, y_pred, mask)) == pytest.approx(eager, abs=1e-5)


@pytest.mark.parametrize("reduce, fn", [("mean", np.mean), ("median", np.median)])
def test_sequence_ccc_loss_matches_numpy(reduce, fn):
    rng = np.random.default_rng(1)
    y_pred = rng.normal(size=(6, 11, 2)).astype(np.float32)
    labels = rng.uniform(-1, 1, (6, 2)).astype(np.float32)
    mask = np.ones((6, 11), np.float32)
    mask[0, 6:] = 0  # even count left: median averages the two middle frames
    mask[3, 1:] = 0
    mask[5, :] = 0  # no frame left: the sequence leaves the CCC
    used = [b for b in range(6) if mask[b].any()]
    values = np.array([[fn(y_pred[b][mask[b] > 0][:, d]) for d in range(2)] for b in used])
    want = 1 - np.mean([np_ccc(labels[used, d], values[:, d]) for d in range(2)])
    per_frame_labels = np.repeat(labels[:, None, :], 11, axis=1)
    got_seq = float(losses.sequence_ccc_loss(labels, y_pred, mask, reduce))
    got_frames = float(losses.sequence_ccc_loss(per_frame_labels, y_pred, mask, reduce))
    assert got_seq == pytest.approx(want, abs=1e-5)
    assert got_frames == pytest.approx(want, abs=1e-5)


def test_sequence_values_median_against_numpy():
    rng = np.random.default_rng(2)
    y = rng.normal(size=(3, 7, 2)).astype(np.float32)
    values, present = losses.sequence_values(y, None, "median")
    np.testing.assert_allclose(values.numpy(), np.median(y, axis=1), atol=1e-6)
    np.testing.assert_array_equal(present.numpy(), np.ones((3, 2)))


def finite_difference(fn, y_pred, eps=1e-3):
    grad = np.zeros_like(y_pred, dtype=np.float64)
    for index in np.ndindex(*y_pred.shape):
        up, down = y_pred.copy(), y_pred.copy()
        up[index] += eps
        down[index] -= eps
        grad[index] = (float(fn(up)) - float(fn(down))) / (2 * eps)
    return grad


def tape_gradient(fn, y_pred):
    variable = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        loss = fn(variable)
    return tape.gradient(loss, variable).numpy()


@pytest.mark.parametrize(
    "name",
    ["ccc", "ccc_masked", "sequence_mean", "sequence_median", "mse"],
)
def test_gradients_match_finite_differences(name):
    y_true, y_pred = make_pair((3, 5, 2), seed=3)
    mask = np.ones((3, 5), np.float32)
    mask[2, 3:] = 0
    fn = {
        "ccc": lambda p: losses.ccc_loss(y_true, p),
        "ccc_masked": lambda p: losses.ccc_loss(y_true, p, mask),
        "sequence_mean": lambda p: losses.sequence_ccc_loss(y_true[:, 0], p, mask, "mean"),
        "sequence_median": lambda p: losses.sequence_ccc_loss(y_true[:, 0], p, mask, "median"),
        "mse": lambda p: losses.mse_loss(y_true, p, mask),
    }[name]
    analytic = tape_gradient(fn, y_pred)
    numeric = finite_difference(fn, y_pred.astype(np.float64).astype(np.float32))
    assert np.all(np.isfinite(analytic))
    assert np.abs(analytic).max() > 1e-3
    np.testing.assert_allclose(analytic, numeric, atol=2e-3, rtol=2e-2)
    if name != "ccc":
        masked = np.broadcast_to(mask[..., None] == 0, y_pred.shape)
        assert np.all(analytic[masked] == 0.0)


def test_median_gradient_reaches_only_middle_frames():
    y_pred = np.array([[[0.1], [0.9], [0.5], [-0.3], [0.7]]], np.float32)  # median 0.5
    y_pred = np.concatenate([y_pred, y_pred + 0.2, y_pred * 2], axis=0)
    labels = np.array([[0.2], [0.4], [0.7]], np.float32)
    grad = tape_gradient(lambda p: losses.sequence_ccc_loss(labels, p, None, "median"), y_pred)
    nonzero = np.argwhere(grad[..., 0] != 0)
    np.testing.assert_array_equal(nonzero[:, 1], [2, 2, 2])


def test_constant_and_empty_inputs_give_no_nan():
    y_true, _ = make_pair((2, 6, 2))
    const = np.full_like(y_true, 0.25)
    for t, p, mask, want in [
        (y_true, const, None, 0.0),  # constant prediction: no covariance
        (const, const, None, 1.0),  # identical constants: perfect agreement
        (const + 0.05, const + 0.05, None, 1.0),  # 0.3 is not exact in float32
        (y_true, const + 0.05, None, 0.0),
        (const, const + 0.5, None, 0.0),  # different constants
        (y_true, y_true, np.zeros((2, 6)), 0.0),  # nothing labelled
    ]:
        rho = losses.concordance_cc(t, p, mask).numpy()
        np.testing.assert_allclose(rho, [want, want], atol=1e-6)
        grad = tape_gradient(lambda v: losses.ccc_loss(t, v, mask), p)
        assert np.all(np.isfinite(grad))
    grad = tape_gradient(lambda v: losses.ccc_loss(y_true, v), const)
    assert np.abs(grad).max() > 0  # a constant prediction still learns


def test_bfloat16_inputs_computed_in_float32():
    y_true, y_pred = make_pair((4, 8, 2))
    t16 = tf.cast(y_true, tf.bfloat16)
    p16 = tf.cast(y_pred, tf.bfloat16)
    got = losses.ccc_loss(t16, p16)
    assert got.dtype == tf.float32
    want = losses.ccc_loss(tf.cast(t16, tf.float32), tf.cast(p16, tf.float32))
    assert float(got) == pytest.approx(float(want), abs=1e-6)
    assert losses.concordance_cc(t16, p16).dtype == tf.float32


def test_mse_loss_matches_numpy():
    y_true, y_pred = make_pair((3, 7, 2))
    mask = np.ones((3, 7), np.float32)
    mask[0, :3] = 0
    y_true[0, :3] = np.nan
    keep = mask > 0
    want = np.mean((y_true[keep] - y_pred[keep]) ** 2)
    assert float(losses.mse_loss(y_true, y_pred, mask)) == pytest.approx(want, abs=1e-6)


def test_bad_arguments_raise_naming_the_value():
    y_true, y_pred = make_pair((2, 4, 2))
    with pytest.raises(ValueError, match="max"):
        losses.sequence_ccc_loss(y_true, y_pred, reduce="max")
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        losses.concordance_cc(y_true, y_pred, np.ones((2, 3)))
    with pytest.raises(ValueError, match="max"):
        losses.SequenceCCCLoss(reduce="max")
    with pytest.raises(ValueError, match=r"\(8,\)"):
        losses.ccc_loss(np.zeros(8), np.zeros(8))


def test_keras_ccc_loss_masks_nan_labels_and_sample_weight():
    y_true, y_pred = make_pair((3, 8, 2))
    mask = np.ones((3, 8), np.float32)
    mask[1, 4:] = 0
    labels = y_true.copy()
    labels[1, 4:] = np.nan
    want = float(losses.ccc_loss(y_true, y_pred, mask))
    assert float(losses.CCCLoss()(labels, y_pred)) == pytest.approx(want, abs=1e-6)
    sample_weight = np.ones((3, 8), np.float32)
    sample_weight[1, 4:] = 0
    assert float(losses.CCCLoss()(y_true, y_pred, sample_weight)) == pytest.approx(want, abs=1e-6)


def test_keras_sequence_loss_with_per_sequence_labels():
    rng = np.random.default_rng(4)
    y_pred = rng.normal(size=(5, 6, 2)).astype(np.float32)
    labels = rng.uniform(-1, 1, (5, 2)).astype(np.float32)
    nan_labels = labels.copy()
    nan_labels[2] = np.nan
    keep = [0, 1, 3, 4]
    want = float(losses.sequence_ccc_loss(labels[keep], y_pred[keep], None, "median"))
    loss = losses.SequenceCCCLoss(reduce="median")
    assert float(loss(nan_labels, y_pred)) == pytest.approx(want, abs=1e-6)
    drop = np.array([1, 1, 0, 1, 1], np.float32)
    assert float(loss(labels, y_pred, drop)) == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("cls", [losses.CCCLoss, losses.SequenceCCCLoss, losses.MSELoss])
def test_keras_losses_serialize(cls):
    loss = cls(name="custom")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(restored) is cls and restored.name == "custom"
    if cls is losses.SequenceCCCLoss:
        assert keras.losses.deserialize(
            keras.losses.serialize(cls(reduce="median"))
        ).reduce == "median"


def test_fit_with_nan_labels_under_mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        inputs = keras.Input((None, 3), name="frames")
        outputs = keras.layers.Dense(2, name="va", dtype="float32")(
            keras.layers.Dense(4, name="hidden")(inputs)
        )
        model = keras.Model(inputs, outputs)
        model.compile(
            optimizer=keras.optimizers.Adam(0.05), loss=losses.CCCLoss(),
            metrics=[StreamingCCC()], jit_compile=True,
        )
        rng = np.random.default_rng(5)
        x = rng.normal(size=(8, 5, 3)).astype(np.float32)
        y = np.tanh(x[..., :2] + 0.1 * rng.normal(size=(8, 5, 2))).astype(np.float32)
        y[0, 2:] = np.nan
        logs = model.fit(x, y, batch_size=4, epochs=6, verbose=0).history
        history = logs["loss"]
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.all(np.isfinite(history))
    assert history[-1] < history[0]
    assert np.all(np.isfinite(logs["ccc_mean"]))


def test_fit_sequence_loss_with_one_label_per_sequence():
    inputs = keras.Input((None, 3), name="frames")
    model = keras.Model(inputs, keras.layers.Dense(2, name="va")(inputs))
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), loss=losses.SequenceCCCLoss("median"),
        jit_compile=True,
    )
    rng = np.random.default_rng(6)
    x = rng.normal(size=(8, 5, 3)).astype(np.float32)
    labels = np.tanh(x.mean(axis=1)[:, :2]).astype(np.float32)
    labels[1] = np.nan
    before = model.get_weights()[0].copy()
    history = model.fit(x, labels, batch_size=8, epochs=2, verbose=0).history["loss"]
    assert np.all(np.isfinite(history))
    assert not np.allclose(model.get_weights()[0], before)

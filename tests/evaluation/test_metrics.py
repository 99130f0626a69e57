"""Metrics against scikit-learn, scipy and explicit numpy formulas."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats
from sklearn import metrics as skm

from affnet.evaluation import metrics, streaming


def formula_ccc(x, y):
    """CCC written as 2 r s_x s_y / (s_x^2 + s_y^2 + (mean_x - mean_y)^2) via np.cov."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    cov = np.cov(x, y, bias=True)
    return 2 * cov[0, 1] / (cov[0, 0] + cov[1, 1] + (np.mean(x) - np.mean(y)) ** 2)


def va_pair(n, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    y_true = rng.uniform(-1, 1, (n, 2)) + offset
    y_pred = 0.7 * y_true + 0.3 * rng.normal(size=(n, 2)) - 0.05
    return y_true.astype(np.float32), y_pred.astype(np.float32)


# ------------------------------------------------------------------ regression


def test_ccc_pcc_mse_match_independent_implementations():
    y_true, y_pred = va_pair(500)
    for d in range(2):
        x, y = y_true[:, d], y_pred[:, d]
        assert metrics.ccc(x, y) == pytest.approx(formula_ccc(x, y), abs=1e-10)
        assert metrics.pcc(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-6)
        assert metrics.mse(x, y) == pytest.approx(skm.mean_squared_error(x, y), abs=1e-7)
    assert metrics.ccc(y_true[:, 0], y_true[:, 0]) == pytest.approx(1.0)
    centred = y_true[:, 0] - y_true[:, 0].mean()
    assert metrics.ccc(centred, -centred) == pytest.approx(-1.0)
    # CCC penalises a bias that Pearson ignores.
    assert metrics.pcc(y_true[:, 0], y_true[:, 0] + 1) == pytest.approx(1.0)
    assert metrics.ccc(y_true[:, 0], y_true[:, 0] + 1) < 0.5


def test_constant_series_conventions():
    ramp = np.linspace(-1, 1, 11)
    const = np.full(11, 0.3)
    assert metrics.ccc(const, const) == 1.0
    assert metrics.ccc(const, const + 0.2) == 0.0
    assert metrics.ccc(ramp, const) == pytest.approx(0.0, abs=1e-15)
    assert metrics.pcc(ramp, const) == 0.0
    assert metrics.pcc(const, const) == 0.0


@pytest.mark.parametrize(
    "x, y, match",
    [
        (np.zeros((3, 2)), np.zeros((3, 2)), r"1-D"),
        (np.zeros(3), np.zeros(4), "3 vs 4"),
        (np.zeros(0), np.zeros(0), "empty"),
        (np.array([0.0, np.nan]), np.zeros(2), "NaN"),
    ],
)
def test_ccc_rejects_bad_series(x, y, match):
    with pytest.raises(ValueError, match=match):
        metrics.ccc(x, y)


def test_va_scores_masks_nan_and_mask_per_dimension():
    y_true, y_pred = va_pair(200, seed=1)
    y_true[:30, 1] = np.nan  # arousal unlabelled on the first 30 frames
    mask = np.ones(200, bool)
    mask[-10:] = False
    scores = metrics.va_scores(y_true, y_pred, mask)
    valence = mask
    arousal = mask & np.isfinite(y_true[:, 1])
    assert scores["n_valence"] == 190 and scores["n_arousal"] == 160
    want_v = formula_ccc(y_true[valence, 0], y_pred[valence, 0])
    want_a = formula_ccc(y_true[arousal, 1], y_pred[arousal, 1])
    assert scores["ccc_valence"] == pytest.approx(want_v, abs=1e-9)
    assert scores["ccc_arousal"] == pytest.approx(want_a, abs=1e-9)
    assert scores["ccc_mean"] == pytest.approx((want_v + want_a) / 2, abs=1e-9)
    assert scores["pcc_arousal"] == pytest.approx(
        stats.pearsonr(y_true[arousal, 1], y_pred[arousal, 1])[0], abs=1e-6
    )
    assert scores["mse_valence"] == pytest.approx(
        skm.mean_squared_error(y_true[valence, 0], y_pred[valence, 0]), abs=1e-7
    )
    with pytest.raises(ValueError, match=r"\(200, 3\)"):
        metrics.va_scores(y_true, np.zeros((200, 3)))
    no_arousal = np.zeros((4, 2))
    no_arousal[:, 1] = np.nan
    with pytest.raises(ValueError, match="arousal"):
        metrics.va_scores(no_arousal, np.zeros((4, 2)))


# -------------------------------------------------------------------- streaming


def feed_in_batches(metric, y_true, y_pred, cuts, sample_weight=None):
    metric.reset_state()
    bounds = [0, *cuts, len(y_true)]
    for start, stop in zip(bounds[:-1], bounds[1:]):
        weight = None if sample_weight is None else sample_weight[start:stop]
        metric.update_state(y_true[start:stop], y_pred[start:stop], weight)
    return {k: float(v) for k, v in metric.result().items()}


UNEVEN_CUTS = [3, 50, 51, 180, 400, 777]  # 7 batches of very different sizes


def test_streaming_ccc_in_seven_uneven_batches_equals_whole_set():
    y_true, y_pred = va_pair(1000, seed=2, offset=0.4)
    y_true[100:150, 0] = np.nan
    weight = np.ones(1000, np.float32)
    weight[900:] = 0
    got = feed_in_batches(streaming.StreamingCCC(), y_true, y_pred, UNEVEN_CUTS, weight)
    want = metrics.va_scores(y_true, y_pred, weight > 0)
    assert got["ccc_valence"] == pytest.approx(want["ccc_valence"], abs=1e-5)
    assert got["ccc_arousal"] == pytest.approx(want["ccc_arousal"], abs=1e-5)
    assert got["ccc_mean"] == pytest.approx(want["ccc_mean"], abs=1e-5)
    # The mean of per-batch CCCs is a different (wrong) number on this split.
    batch_means = np.mean(
        [metrics.ccc(y_true[a:b, 1], y_pred[a:b, 1]) for a, b in [(0, 3), (3, 50)]]
    )
    assert abs(batch_means - want["ccc_arousal"]) > 1e-3


@pytest.mark.parametrize(
    "cls, kind", [(streaming.StreamingMSE, "mse"), (streaming.StreamingPearson, "pcc")]
)
def test_streaming_mse_and_pearson_equal_whole_set(cls, kind):
    y_true, y_pred = va_pair(600, seed=3)
    y_true[10:20, 1] = np.nan
    got = feed_in_batches(cls(), y_true, y_pred, UNEVEN_CUTS[:5])
    want = metrics.va_scores(y_true, y_pred)
    for key in ("valence", "arousal", "mean"):
        assert got[f"{kind}_{key}"] == pytest.approx(want[f"{kind}_{key}"], abs=1e-5)


def test_streaming_sequence_tensors_and_bfloat16_predictions():
    y_true, y_pred = va_pair(4 * 20, seed=4)
    metric = streaming.StreamingCCC()
    metric.update_state(y_true.reshape(4, 20, 2), tf.cast(y_pred.reshape(4, 20, 2), tf.bfloat16))
    y_pred16 = tf.cast(tf.cast(y_pred, tf.bfloat16), tf.float32).numpy()
    got = float(metric.result()["ccc_valence"])
    assert got == pytest.approx(metrics.ccc(y_true[:, 0], y_pred16[:, 0]), abs=1e-5)


def test_streaming_constant_inputs_give_no_nan():
    const = np.full((30, 2), 0.3, np.float32)  # 0.3 is not exact: rounding must not matter
    ramp = np.stack([np.linspace(-1, 1, 30)] * 2, axis=1).astype(np.float32)
    for cls in (streaming.StreamingCCC, streaming.StreamingPearson, streaming.StreamingMSE):
        metric = cls()
        assert all(np.isfinite(float(v)) for v in metric.result().values())  # empty
        metric.update_state(ramp, const)
        assert all(np.isfinite(float(v)) for v in metric.result().values())
    ccc = streaming.StreamingCCC()
    assert float(ccc.result()["ccc_mean"]) == 0.0
    ccc.update_state(const, const)
    assert float(ccc.result()["ccc_mean"]) == 1.0
    ccc.reset_state()
    ccc.update_state(ramp, const)
    assert float(ccc.result()["ccc_mean"]) == pytest.approx(0.0, abs=1e-9)


def test_streaming_update_compiles_with_xla_and_float32_accumulators():
    y_true, y_pred = va_pair(300, seed=5)
    want = metrics.va_scores(y_true, y_pred)["ccc_mean"]
    for accumulator in ("float64", "float32"):
        metric = streaming.StreamingCCC(accumulator_dtype=accumulator)
        update = tf.function(metric.update_state, jit_compile=True)
        for start in range(0, 300, 100):
            update(y_true[start:start + 100], y_pred[start:start + 100])
        assert float(metric.result()["ccc_mean"]) == pytest.approx(want, abs=1e-5)


def test_streaming_metric_config_and_errors():
    metric = streaming.StreamingCCC(dim_names=("v", "a", "d"), name="concordance")
    restored = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert isinstance(restored, streaming.StreamingCCC)
    assert restored.dim_names == ("v", "a", "d") and restored.name == "concordance"
    assert set(restored.result()) == {"concordance_v", "concordance_a", "concordance_d",
                                      "concordance_mean"}
    with pytest.raises(ValueError, match="float16"):
        streaming.StreamingCCC(accumulator_dtype="float16")
    with pytest.raises(ValueError, match=r"\(5, 3\)"):
        streaming.StreamingCCC().update_state(np.zeros((5, 3)), np.zeros((5, 3)))


def test_streaming_metrics_flatten_into_fit_logs():
    inputs = keras.Input((None, 3), name="frames")
    model = keras.Model(inputs, keras.layers.Dense(2, name="va")(inputs))
    model.compile("adam", loss="mse", metrics=[streaming.StreamingCCC()])
    x = np.random.default_rng(6).normal(size=(8, 5, 3)).astype(np.float32)
    y = np.tanh(x[..., :2])
    logs = model.evaluate(x, y, batch_size=3, return_dict=True, verbose=0)
    want = metrics.va_scores(y.reshape(-1, 2), model.predict(x, verbose=0).reshape(-1, 2))
    assert logs["ccc_valence"] == pytest.approx(want["ccc_valence"], abs=1e-5)


# ------------------------------------------------------------------ categorical


def expression_data(n=300, seed=7, num_classes=7):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n)
    labels[rng.random(n) < 0.1] = -1
    logits = rng.normal(size=(n, num_classes))
    logits[np.arange(n), np.maximum(labels, 0)] += 1.0
    return labels, logits


def test_categorical_metrics_match_sklearn():
    labels, logits = expression_data()
    keep = labels >= 0
    truth, preds = labels[keep], np.argmax(logits, 1)[keep]
    classes = list(range(7))
    np.testing.assert_array_equal(
        metrics.confusion_matrix(labels, logits), skm.confusion_matrix(truth, preds, labels=classes)
    )
    np.testing.assert_allclose(
        metrics.f1_per_class(labels, logits),
        skm.f1_score(truth, preds, labels=classes, average=None, zero_division=0),
    )
    f1 = skm.f1_score(truth, preds, labels=classes, average="macro", zero_division=0)
    acc = skm.accuracy_score(truth, preds)
    assert metrics.f1_macro(labels, logits) == pytest.approx(f1)
    assert metrics.accuracy(labels, logits) == pytest.approx(acc)
    assert metrics.accuracy(labels, np.argmax(logits, 1), num_classes=7) == pytest.approx(acc)
    assert metrics.uar(labels, logits) == pytest.approx(
        skm.recall_score(truth, preds, labels=classes, average="macro")
    )
    assert metrics.mean_confusion_diagonal(labels, logits) == pytest.approx(
        skm.balanced_accuracy_score(truth, preds)
    )
    assert metrics.expression_total(labels, logits) == pytest.approx(0.67 * f1 + 0.33 * acc)


def test_empty_classes_give_no_nan():
    labels = np.array([0, 0, 1, 1, 2, -1])
    preds = np.array([0, 1, 1, 1, 4, 3])  # classes 3, 5, 6 never true; 5, 6 never predicted
    f1 = metrics.f1_per_class(labels, preds, num_classes=7)
    assert np.all(np.isfinite(f1)) and f1[5] == 0.0 and f1[6] == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns about predicted-only classes
        want = skm.balanced_accuracy_score(labels[:5], preds[:5])
    assert metrics.mean_confusion_diagonal(labels, preds, 7) == pytest.approx(want)
    assert metrics.mean_confusion_diagonal(labels, preds, 7) == pytest.approx((0.5 + 1 + 0) / 3)


@pytest.mark.parametrize(
    "labels, preds, match",
    [
        (np.array([-1, -1]), np.array([0, 1]), "no labelled"),
        (np.array([0, 9]), np.array([0, 1]), "received 9"),
        (np.array([0, 1]), np.array([0, 7]), "received 7"),
        (np.array([0, 1]), np.zeros((2, 5)), "num_classes=7"),
        (np.array([0, 1, 2]), np.array([0, 1]), "3 vs 2"),
    ],
)
def test_categorical_errors(labels, preds, match):
    with pytest.raises(ValueError, match=match):
        metrics.accuracy(labels, preds, num_classes=7)


def test_au_scores_match_sklearn_per_au():
    rng = np.random.default_rng(8)
    labels = (rng.random((400, 8)) < 0.3).astype(np.int64)
    logits = rng.normal(size=(400, 8)) + 1.5 * (labels - 0.5)
    labels[rng.random((400, 8)) < 0.2] = -1
    labels[:, 7] = -1  # an AU never annotated in this set
    labels[:, 6] = np.where(labels[:, 6] >= 0, 0, -1)  # an AU with no positive
    scores = metrics.au_scores(labels, logits)
    want_f1, want_acc = [], []
    for k in range(7):
        keep = labels[:, k] >= 0
        decided = (logits[keep, k] > 0).astype(int)
        want_f1.append(skm.f1_score(labels[keep, k], decided, zero_division=0))
        want_acc.append(skm.accuracy_score(labels[keep, k], decided))
    np.testing.assert_allclose(scores["f1"][:7], want_f1)
    np.testing.assert_allclose(scores["accuracy"][:7], want_acc)
    assert scores["count"][7] == 0 and scores["f1"][7] == 0.0
    assert scores["f1_mean"] == pytest.approx(np.mean(want_f1))
    assert scores["accuracy_mean"] == pytest.approx(np.mean(want_acc))
    assert scores["total"] == pytest.approx(0.5 * np.mean(want_f1) + 0.5 * np.mean(want_acc))
    assert metrics.au_total(labels, logits) == pytest.approx(scores["total"])
    probabilities = 1 / (1 + np.exp(-logits))
    assert metrics.au_total(labels, probabilities, threshold=0.5) == pytest.approx(scores["total"])
    assert metrics.au_total(labels, (logits > 0).astype(int)) == pytest.approx(scores["total"])


def test_au_errors():
    with pytest.raises(ValueError, match="received 2"):
        metrics.au_scores(np.array([[0, 2]]), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="no labelled"):
        metrics.au_scores(-np.ones((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        metrics.au_scores(np.zeros((3, 2)), np.zeros((3, 4)))

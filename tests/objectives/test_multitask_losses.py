"""[FBN] eq. 4-7 masked multi-task losses against numpy transcriptions."""

import numpy as np
import pytest
import tensorflow as tf

from affnet.objectives import multitask as mtl
from helpers import loss_without_labels

K = 5


def np_log_softmax(z):
    z = np.asarray(z, np.float64)
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def np_ce(labels, logits, mask):
    """eq. 4: mean over labelled samples of -log softmax(logits)[label]."""
    labels, logits, mask = (np.reshape(a, (-1,) + np.shape(a)[np.ndim(labels):]) for a in (labels, logits, mask))
    ce = -np_log_softmax(logits)[np.arange(len(labels)), np.clip(labels, 0, None)]
    return (mask * ce).sum() / mask.sum() if mask.sum() else 0.0


def np_bce(targets, logits, mask):
    """eq. 7 L_AU: per sample [sum_k delta_k]^-1 sum_i delta_i BCE_i, mean over annotated samples."""
    t = np.asarray(targets, np.float64).reshape(-1, K)
    z = np.asarray(logits, np.float64).reshape(-1, K)
    d = np.asarray(mask, np.float64).reshape(-1, K)
    p = 1 / (1 + np.exp(-z))
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    rows = d.sum(1) > 0
    return np.mean((d * bce).sum(1)[rows] / d.sum(1)[rows]) if rows.any() else 0.0


def np_ccc_loss(x, y, mask):
    x = np.asarray(x, np.float64).reshape(-1, 2)
    y = np.asarray(y, np.float64).reshape(-1, 2)
    keep = np.asarray(mask).reshape(-1) > 0
    if not keep.any():
        return 0.0
    rho = []
    for d in range(2):
        a, b = x[keep, d], y[keep, d]
        cov = np.mean((a - a.mean()) * (b - b.mean()))
        rho.append(2 * cov / (a.var() + b.var() + (a.mean() - b.mean()) ** 2))
    return 1 - 0.5 * (rho[0] + rho[1])


def batch(shape=(3, 4), seed=0):
    rng = np.random.default_rng(seed)
    labels = {
        "expression": rng.integers(0, 7, shape).astype(np.int32),
        "expression_mask": (rng.uniform(size=shape) > 0.4).astype(np.float32),
        "au": (rng.uniform(size=shape + (K,)) > 0.5).astype(np.float32),
        "au_mask": (rng.uniform(size=shape + (K,)) > 0.4).astype(np.float32),
        "va": rng.uniform(-1, 1, shape + (2,)).astype(np.float32),
        "va_mask": (rng.uniform(size=shape) > 0.3).astype(np.float32),
    }
    outputs = {
        "expression": rng.normal(size=shape + (7,)).astype(np.float32),
        "au": rng.normal(size=shape + (K,)).astype(np.float32),
        "va": (0.5 * labels["va"] + 0.3 * rng.normal(size=shape + (2,))).astype(np.float32),
    }
    return labels, outputs


@pytest.mark.parametrize("shape", [(12,), (3, 4)])
def test_each_term_matches_numpy(shape):
    labels, outputs = batch(shape)
    got = mtl.expression_ce(labels["expression"], outputs["expression"], labels["expression_mask"])
    np.testing.assert_allclose(float(got), np_ce(labels["expression"], outputs["expression"],
                                                 labels["expression_mask"]), rtol=1e-5)
    got = mtl.au_bce(labels["au"], outputs["au"], labels["au_mask"])
    np.testing.assert_allclose(float(got), np_bce(labels["au"], outputs["au"], labels["au_mask"]), rtol=1e-5)
    got = mtl.va_ccc(labels["va"], outputs["va"], labels["va_mask"])
    np.testing.assert_allclose(float(got), np_ccc_loss(labels["va"], outputs["va"], labels["va_mask"]),
                               rtol=1e-5)


def test_global_au_normalisation_and_soft_targets():
    labels, outputs = batch()
    soft = labels["au"] * 0.7
    t, z, d = (a.reshape(-1, K).astype(np.float64) for a in (soft, outputs["au"], labels["au_mask"]))
    p = 1 / (1 + np.exp(-z))
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    want = (d * bce).sum() / d.sum()
    got = mtl.au_bce(soft, outputs["au"], labels["au_mask"], normalize="global")
    np.testing.assert_allclose(float(got), want, rtol=1e-5)
    # "sample" and "global" differ when samples have different numbers of annotated AUs.
    assert abs(float(mtl.au_bce(soft, outputs["au"], labels["au_mask"])) - want) > 1e-4


def test_unlabelled_samples_change_nothing():
    labels, outputs = batch()
    total, _ = mtl.multitask_loss(labels, outputs)
    changed_labels = {k: v.copy() for k, v in labels.items()}
    changed_outputs = {k: v.copy() for k, v in outputs.items()}
    off = labels["expression_mask"] == 0
    changed_labels["expression"][off] = -1  # raw "unlabelled" value
    changed_outputs["expression"][off] += 7.0
    au_off = labels["au_mask"] == 0
    changed_labels["au"][au_off] = np.nan
    changed_outputs["au"][au_off] -= 3.0
    va_off = labels["va_mask"] == 0
    changed_labels["va"][va_off] = np.nan
    changed_outputs["va"][va_off] = 5.0
    total2, _ = mtl.multitask_loss(changed_labels, changed_outputs)
    assert np.isfinite(float(total2))
    np.testing.assert_allclose(float(total2), float(total), rtol=1e-6)
    # ... and a labelled one does change the loss (the test can fail).
    changed_outputs["expression"][~off] += np.arange(7, dtype=np.float32)
    assert float(mtl.multitask_loss(changed_labels, changed_outputs)[0]) != pytest.approx(float(total))


def test_valid_mask_multiplies_every_task():
    labels, outputs = batch()
    valid = np.ones((3, 4), np.float32)
    valid[:, -1] = 0
    with_valid = dict(labels, valid=valid)
    cut = {k: v * (valid if v.ndim == 2 else valid[..., None]) if k.endswith("mask") else v
           for k, v in labels.items()}
    _, got = mtl.multitask_loss(with_valid, outputs)
    _, want = mtl.multitask_loss(cut, outputs)
    for task in mtl.TASKS:
        np.testing.assert_allclose(float(got[task]), float(want[task]), rtol=1e-6)


def test_no_labels_gives_zero_and_finite_gradients():
    total, components = loss_without_labels(mtl.multitask_loss, *batch())
    assert float(total) == 0.0
    assert all(float(v) == 0.0 for v in components.values())


def test_missing_task_contributes_zero_and_weights_apply():
    labels, outputs = batch()
    weights = {"expression": 1.0, "au": 0.3, "va": 2.0}
    total, c = mtl.multitask_loss(labels, outputs, weights)
    want = (np_ce(labels["expression"], outputs["expression"], labels["expression_mask"])
            + 0.3 * np_bce(labels["au"], outputs["au"], labels["au_mask"])
            + 2.0 * np_ccc_loss(labels["va"], outputs["va"], labels["va_mask"]))
    np.testing.assert_allclose(float(total), want, rtol=1e-5)
    no_au = {k: v for k, v in outputs.items() if k != "au"}
    total, c = mtl.multitask_loss(labels, no_au, weights)
    assert float(c["au"]) == 0.0
    np.testing.assert_allclose(float(total), want - 0.3 * np_bce(labels["au"], outputs["au"], labels["au_mask"]),
                               rtol=1e-5)


def test_statistics_are_additive_over_replicas():
    """Two half batches' statistics summed = the whole batch (what an all-reduce does)."""
    labels, outputs = batch((4, 3))
    halves = [({k: v[i::2] for k, v in labels.items()}, {k: v[i::2] for k, v in outputs.items()})
              for i in range(2)]
    parts = [mtl.multitask_statistics(lab, out) for lab, out in halves]
    summed = {name: parts[0][name] + parts[1][name] for name in parts[0]}
    _, got = mtl.multitask_loss_from_statistics(summed)
    _, want = mtl.multitask_loss(labels, outputs)
    for task in mtl.TASKS:
        np.testing.assert_allclose(float(got[task]), float(want[task]), rtol=1e-4)

    calls = []

    def fake_all_reduce(vector):  # a 2-replica SUM where the other replica is `halves[1]`
        calls.append(vector.shape)
        other = tf.concat([tf.reshape(parts[1][n], [-1]) for n in sorted(parts[1])], 0)
        return vector + other

    _, reduced = mtl.multitask_loss(*halves[0], all_reduce=fake_all_reduce)
    assert len(calls) == 1
    for task in mtl.TASKS:
        np.testing.assert_allclose(float(reduced[task]), float(want[task]), rtol=1e-4)


def test_xla_matches_eager_with_gradients():
    labels, outputs = batch()

    def loss_and_grads(out):
        with tf.GradientTape() as tape:
            tape.watch(out)
            total, components = mtl.multitask_loss(labels, out, {"au": 0.5, "va": 2.0})
        return total, components, tape.gradient(total, out)

    tensors = {k: tf.constant(v) for k, v in outputs.items()}
    eager = loss_and_grads(tensors)
    compiled = tf.function(loss_and_grads, jit_compile=True)(tensors)
    np.testing.assert_allclose(float(compiled[0]), float(eager[0]), rtol=1e-5)
    for task in mtl.TASKS:
        np.testing.assert_allclose(float(compiled[1][task]), float(eager[1][task]), rtol=1e-5)
        assert np.all(np.isfinite(compiled[2][task].numpy()))
        np.testing.assert_allclose(compiled[2][task].numpy(), eager[2][task].numpy(), rtol=1e-4, atol=1e-6)


def test_bfloat16_outputs_are_computed_in_float32():
    labels, outputs = batch()
    low = {k: tf.cast(v, tf.bfloat16) for k, v in outputs.items()}
    total, _ = mtl.multitask_loss(labels, low)
    assert total.dtype == tf.float32
    ref, _ = mtl.multitask_loss(labels, {k: tf.cast(v, tf.float32) for k, v in low.items()})
    np.testing.assert_allclose(float(total), float(ref), rtol=1e-6)


def test_bad_normalisation_is_rejected():
    labels, outputs = batch()
    with pytest.raises(ValueError, match="normalize"):
        mtl.au_bce(labels["au"], outputs["au"], labels["au_mask"], normalize="mean")

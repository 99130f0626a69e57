"""`ccc.sums_about`: parts centred about the global means merge with no spread-of-means
error, where the per-part (Chan) merge carries the cancellation of the parts' means."""

import numpy as np
import tensorflow as tf

from affnet.objectives import ccc


def _parts(seed=0):
    """Two parts of near-constant values far from 0 (OMG arousal in [0, 1] early in
    training), with different means and a masked NaN frame."""
    rng = np.random.default_rng(seed)
    x = 0.5 + 1e-3 * rng.normal(size=(64, 2))
    y = 0.7 + 1e-3 * rng.normal(size=(64, 2)) + 0.5 * x
    x[32:] += 1e-2  # the second part's means differ
    w = np.ones((64, 2))
    w[3, 1] = 0.0
    x[3, 1] = np.nan
    return x, y, w


def _exact(x, y, w):
    keep = w > 0
    xs, ys = np.where(keep, x, 0.0), np.where(keep, y, 0.0)
    n = w.sum(0)
    mx, my = (w * xs).sum(0) / n, (w * ys).sum(0) / n
    vx, vy = (w * (xs - mx) ** 2).sum(0) / n, (w * (ys - my) ** 2).sum(0) / n
    cov = (w * (xs - mx) * (ys - my)).sum(0) / n
    return 2 * cov / (vx + vy + (mx - my) ** 2), vx


def test_global_centring_matches_float64_and_beats_the_part_merge():
    x, y, w = _parts()
    expected_ccc, expected_var = _exact(x, y, w)
    parts = [tuple(tf.constant(a[s], tf.float32) for a in (x, y, w)) for s in (slice(0, 32), slice(32, 64))]
    totals = tf.add_n([ccc.first_sums(*p) for p in parts])
    centred = ccc.with_square_rows(tf.add_n([ccc.sums_about(*p, totals) for p in parts]))
    merged = tf.add_n([ccc.moment_sums(*p) for p in parts])

    var_centred = ccc.moments(centred)[3].numpy()
    var_merged = ccc.moments(merged)[3].numpy()
    error_centred = np.abs(var_centred / expected_var - 1).max()
    error_merged = np.abs(var_merged / expected_var - 1).max()
    assert error_centred < 1e-5
    assert error_centred < error_merged
    np.testing.assert_allclose(ccc.ccc_from_sums(centred).numpy(), expected_ccc, atol=1e-5)


def test_one_part_about_its_own_means_is_moment_sums():
    x, y, w = (tf.constant(a, tf.float32) for a in _parts(1))
    about_own = ccc.with_square_rows(ccc.sums_about(x, y, w, ccc.first_sums(x, y, w)))
    np.testing.assert_array_equal(about_own.numpy(), ccc.moment_sums(x, y, w).numpy())

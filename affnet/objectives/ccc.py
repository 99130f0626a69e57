"""The one concordance (CCC) moment core: the loss, the streaming metric and the
distributed objective all reduce frames to these statistics.

``rho = 2 s_xy / (s_x^2 + s_y^2 + (mean_x - mean_y)^2)`` ([AW2] eq. 1) needs the
moments of the *whole* set of frames (a batch over all replicas, or an evaluated
set over all its batches), so a part of the set (a replica's frames, one batch) is
reduced to statistics that add up over parts. Raw sums of x^2, y^2, xy do add up,
but ``E[x^2] - E[x]^2`` cancels catastrophically in float32 when the values sit far
from 0 or hardly vary (OMG arousal in [0, 1]; near-constant predictions early in
training). Here each part computes *centred* (two-pass) sums about its own means,
and carries ``sum_x^2 / n`` beside them: with Chan et al.'s pairwise update the
centred sums of the union are

    C_xx = sum_p C_xx,p + (sum_p S_x,p^2 / n_p - S_x^2 / n),

where the bracket (the spread of the parts' means) is exactly 0 for a single part
and involves one cancellation of the parts' means, never of the frames. So a
statistic is a (9, D) tensor, additive over disjoint parts (``tf.add``,
all-reduce SUM):

    count, sum_x, sum_y, centred_xx, centred_yy, centred_xy,
    square_x = sum_x^2 / count, square_y, cross = sum_x sum_y / count

Conventions (those of `affnet.objectives.losses`): population (biased) moments as
numpy and the TF1 ``tf.nn.moments`` code; weights may be 0/1 masks or
non-negative floats, and a value with weight 0 may be NaN; CCC 1 when both series
are the same constant (denominator 0 with frames), 0 without any weighted frame;
no NaN or infinite gradient; XLA-compilable; any float dtype (float32 for losses,
float64 for the streaming metric's accumulators).

Where the parts can exchange their sums first (replicas: one all-reduce of
`first_sums`), `sums_about` centres every part about the *global* means and the
bracket vanishes exactly (`with_square_rows`); the training objective does so.

The gradient is exact under `global_sum`: a part's ``centred_xx + square_x``
equals its ``sum w x^2``, so each replica's statistics depend on its own frames
only and the sum of the replicas' gradients is the single-device gradient.
"""

import tensorflow as tf

ROWS = 9


def first_sums(x, y, w):
    """(N, D) values and weights -> (3, D) count, sum_x, sum_y of the weighted frames (additive)."""
    keep = w > 0
    zero = tf.zeros_like(x)
    return tf.stack([tf.reduce_sum(w, axis=0), tf.reduce_sum(w * tf.where(keep, x, zero), axis=0),
                     tf.reduce_sum(w * tf.where(keep, y, zero), axis=0)])


def sums_about(x, y, w, totals):
    """(9, D) statistics of these frames, centred about the means of `totals`.

    `totals` is `first_sums` of the whole set these frames belong to (all-reduced over
    replicas, or these frames' own). Summed over the parts of that set and passed through
    `with_square_rows`, the result is the set's statistics centred exactly about its own
    means: the spread-of-means bracket of `moments` is then 0 to the last bit. A caller that
    all-reduces `totals` holds them constant (`tf.stop_gradient`): the derivative of a sum
    of squares about the mean with respect to the mean is 0, so the gradient stays exact.
    The square rows are left 0 here.
    """
    keep = w > 0
    zero = tf.zeros_like(x)
    x = tf.where(keep, x, zero)
    y = tf.where(keep, y, zero)
    local = first_sums(x, y, w)
    safe = tf.where(totals[0] > 0, totals[0], tf.ones_like(totals[0]))
    dx = tf.where(keep, x - totals[1] / safe, zero)
    dy = tf.where(keep, y - totals[2] / safe, zero)
    return tf.concat([local, tf.stack([tf.reduce_sum(w * dx * dx, axis=0), tf.reduce_sum(w * dy * dy, axis=0),
                                       tf.reduce_sum(w * dx * dy, axis=0)]), tf.zeros_like(local)], axis=0)


def with_square_rows(sums):
    """Statistics whose centred rows are about their own means (summed `sums_about`) with
    the square rows filled from their sums, as one part has them."""
    count, sum_x, sum_y = sums[0], sums[1], sums[2]
    safe = tf.where(count > 0, count, tf.ones_like(count))
    return tf.concat([sums[:6], tf.stack([sum_x * sum_x / safe, sum_y * sum_y / safe, sum_x * sum_y / safe])],
                     axis=0)


def moment_sums(x, y, w):
    """(N, D) values x, y and weights w -> (9, D) additive statistics (module docstring)."""
    return with_square_rows(sums_about(x, y, w, first_sums(x, y, w)))


def moments(sums):
    """(count, mean_x, mean_y, var_x, var_y, cov), each (D,), of (summed) statistics."""
    count, sum_x, sum_y, centred_xx, centred_yy, centred_xy, square_x, square_y, cross = tf.unstack(sums)
    safe = tf.where(count > 0, count, tf.ones_like(count))
    # The spread of the parts' means: exactly 0 for one part.
    var_x = (centred_xx + (square_x - sum_x * sum_x / safe)) / safe
    var_y = (centred_yy + (square_y - sum_y * sum_y / safe)) / safe
    cov = (centred_xy + (cross - sum_x * sum_y / safe)) / safe
    # Clamp: rounding of the means' spread can leave a tiny negative variance.
    zero = tf.zeros_like(var_x)
    return count, sum_x / safe, sum_y / safe, tf.maximum(var_x, zero), tf.maximum(var_y, zero), cov


def ccc_from_sums(sums):
    """(D,) CCC of (summed) statistics; 1 for two equal constants, 0 without frames."""
    count, mean_x, mean_y, var_x, var_y, cov = moments(sums)
    denominator = var_x + var_y + tf.square(mean_x - mean_y)
    defined = denominator > 0
    # Divide by a safe denominator: tf.where would otherwise route a NaN gradient
    # from the unused branch.
    ratio = 2.0 * cov / tf.where(defined, denominator, tf.ones_like(denominator))
    fallback = tf.where(count > 0, tf.ones_like(count), tf.zeros_like(count))
    return tf.where(defined, ratio, fallback)


def mse_from_sums(sums):
    """(D,) mean squared error E[(x - y)^2] = var_x + var_y - 2 cov + (mean_x - mean_y)^2; 0 without frames."""
    _, mean_x, mean_y, var_x, var_y, cov = moments(sums)
    return tf.maximum(var_x + var_y - 2.0 * cov + tf.square(mean_x - mean_y), tf.zeros_like(cov))


def pearson_from_sums(sums):
    """(D,) Pearson correlation in [-1, 1]; 0 where a series has no variance."""
    _, _, _, var_x, var_y, cov = moments(sums)
    product = var_x * var_y
    defined = product > 0
    value = cov / tf.sqrt(tf.where(defined, product, tf.ones_like(product)))
    return tf.where(defined, tf.clip_by_value(value, -1.0, 1.0), tf.zeros_like(value))


def concordance(x, y, w):
    """(D,) CCC over axis 0 of (N, D) values and weights: `ccc_from_sums(moment_sums(...))`."""
    return ccc_from_sums(moment_sums(x, y, w))

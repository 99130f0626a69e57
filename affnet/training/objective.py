"""Training losses computed over the *global* batch, whatever the distribution.

The CCC of [AW2] eq. 2 is not a mean of per-frame terms: averaging per-replica
CCCs is not the CCC of the batch. So each replica reduces its frames to
sufficient statistics (weighted sums of x, y, x^2, y^2, xy and the weight), the
statistics are summed over replicas, and every replica evaluates the same loss
on the totals. The all-reduce is wrapped so its gradient reaches only the
replica's own statistics (`global_sum`); the optimizer's cross-replica sum of
gradients then gives exactly the single-device gradient. On one device the
loss equals `affnet.losses.ccc_loss` / `sequence_ccc_loss` / `mse_loss` (up to
float32 rounding: moments come from raw sums, not centred ones).

Label conventions (data_pipeline.input): `va` (B, T, 2) with NaN where
unlabelled, `va_mask` (B, T) or (B, T, 2) 1 where labelled, `valid` (B, T) 0 on
padding frames.
"""

import tensorflow as tf

from affnet import losses
from affnet.training.config import LOSSES


def frame_weights(labels, y_true):
    """(B, T, D) (or (B, D)) float32 weights from `va_mask` and `valid` (1 when absent)."""
    weights = tf.cast(tf.math.is_finite(y_true), tf.float32)
    for key in ("va_mask", "valid"):
        if key in labels:
            mask = tf.cast(labels[key], tf.float32)
            if mask.shape.rank < y_true.shape.rank:  # (B, T) or frame-level (B,) masks.
                mask = mask[..., None]
            weights *= mask
    return weights


def global_sum(stats):
    """All-reduce SUM whose gradient flows to the local `stats` only (a tensor
    or a dict of them)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return stats
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.nest.map_structure(tf.stop_gradient, stats))
    return tf.nest.map_structure(lambda local, summed: local + tf.stop_gradient(summed - local), stats, total)


def _moment_sums(x, y, w):
    """(N, D) values and weights -> (6, D): sum w, wx, wy, wx^2, wy^2, wxy."""
    x = tf.where(w > 0, x, 0.0)
    y = tf.where(w > 0, y, 0.0)
    return tf.stack([tf.reduce_sum(w, 0), tf.reduce_sum(w * x, 0), tf.reduce_sum(w * y, 0),
                     tf.reduce_sum(w * x * x, 0), tf.reduce_sum(w * y * y, 0),
                     tf.reduce_sum(w * x * y, 0)])


def ccc_from_sums(sums):
    """(6, D) moment sums -> (D,) CCC; 1 for two equal constants, 0 without frames
    (the conventions of `affnet.losses`)."""
    count, sx, sy, sxx, syy, sxy = tf.unstack(sums)
    has = count > 0
    n = tf.where(has, count, 1.0)
    mean_x, mean_y = sx / n, sy / n
    var_x = tf.maximum(sxx / n - mean_x * mean_x, 0.0)
    var_y = tf.maximum(syy / n - mean_y * mean_y, 0.0)
    cov = sxy / n - mean_x * mean_y
    denominator = var_x + var_y + tf.square(mean_x - mean_y)
    safe = tf.where(denominator > 0, denominator, 1.0)
    ccc = tf.where(denominator > 0, 2.0 * cov / safe, 1.0)
    return tf.where(has, ccc, 0.0)


def local_statistics(loss, labels, predictions):
    """This replica's additive statistics for `loss` (one of `config.LOSSES`)."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    y_true = tf.cast(labels["va"], tf.float32)
    y_pred = tf.cast(predictions, tf.float32)
    weights = frame_weights(labels, y_true)
    y_true = tf.where(weights > 0, y_true, 0.0)
    depth = tf.shape(y_true)[-1]
    if loss == "mse":
        error = tf.where(weights > 0, y_pred - y_true, 0.0)
        return tf.stack([tf.reduce_sum(weights * tf.square(error)), tf.reduce_sum(weights)])
    if loss == "ccc":
        flat = [tf.reshape(t, [-1, depth]) for t in (y_true, y_pred, weights)]
        return _moment_sums(*flat)
    # [MC] Sec. 3: one value per sequence, f = mean or median of its frames.
    reduce = loss.rsplit("_", 1)[-1]
    true_values, _ = losses.sequence_values(y_true, weights, reduce)
    pred_values, present = losses.sequence_values(y_pred, weights, reduce)
    return _moment_sums(true_values, pred_values, present)


def loss_from_statistics(loss, stats):
    """The scalar loss from (globally summed) statistics."""
    if loss == "mse":
        return tf.math.divide_no_nan(stats[0], stats[1])
    return 1.0 - tf.reduce_mean(ccc_from_sums(stats))


def global_loss(loss, labels, predictions):
    """The loss of the whole global batch; call inside `strategy.run` (or plainly)."""
    return loss_from_statistics(loss, global_sum(local_statistics(loss, labels, predictions)))


def coupling_config(config, model):
    """The run's FaceBehaviorNet couplings ([FBN] Sec. VI-B) as an
    `affnet.coupling.CouplingConfig` over `model`'s AUs, or None without couplings."""
    if not config.multitask.couplings:
        return None
    from affnet import coupling

    au_names = getattr(model, "au_names", None)
    if not au_names:
        raise ValueError(f"couplings {list(config.multitask.couplings)} need a model with AU outputs (au_names); "
                         f"{config.model.name!r} has none")
    return coupling.CouplingConfig.from_names(config.multitask.couplings, table=config.multitask.relatedness,
                                              au_names=tuple(au_names), **dict(config.multitask.coupling_options))


def statistics(config, labels, predictions, couplings=None):
    """This replica's additive loss statistics for the run's `config.optimisation.loss`:
    a tensor for the VA losses, a {term: tensor} dict for "multitask"
    (`affnet.multitask_losses`; with `couplings`, `affnet.coupling`)."""
    if config.optimisation.loss != "multitask":
        return local_statistics(config.optimisation.loss, labels, predictions)
    if couplings is not None:
        from affnet import coupling

        return coupling.facebehaviornet_statistics(labels, predictions, couplings)
    from affnet import multitask_losses

    return multitask_losses.multitask_statistics(labels, predictions)


def loss_and_components(config, stats, couplings=None):
    """(scalar loss, {term: unweighted value}) from globally summed `statistics`."""
    if config.optimisation.loss != "multitask":
        return loss_from_statistics(config.optimisation.loss, stats), {}
    if couplings is not None:
        from affnet import coupling

        return coupling.facebehaviornet_loss_from_statistics(stats, couplings, config.multitask.task_weight)
    from affnet import multitask_losses

    return multitask_losses.multitask_loss_from_statistics(stats, config.multitask.task_weight)


def monitor_statistics(labels, predictions):
    """Frame-level VA moment sums for the training summaries (CCC and MSE per
    dimension over the global batch, whatever the loss); None without a VA output."""
    if isinstance(predictions, dict):
        predictions = predictions.get("va")
    if predictions is None:
        return None
    y_true = tf.cast(labels["va"], tf.float32)
    weights = frame_weights(labels, y_true)
    flat = [tf.reshape(t, [-1, 2]) for t in (tf.where(weights > 0, y_true, 0.0), tf.cast(predictions, tf.float32),
                                             weights)]
    return _moment_sums(*flat)


def monitor_values(sums):
    """{ccc_valence, ccc_arousal, mse_valence, mse_arousal} from summed `monitor_statistics`."""
    ccc = ccc_from_sums(sums)
    count, _, _, sxx, syy, sxy = tf.unstack(sums)
    mse = tf.math.divide_no_nan(sxx - 2.0 * sxy + syy, count)
    return {"ccc_valence": ccc[0], "ccc_arousal": ccc[1], "mse_valence": mse[0], "mse_arousal": mse[1]}

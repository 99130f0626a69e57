"""Training losses computed over the *global* batch, whatever the distribution.

The CCC of [AW2] eq. 2 is not a mean of per-frame terms: averaging per-replica
CCCs is not the CCC of the batch. So each replica reduces its frames to
sufficient statistics (`affnet.objectives.ccc`: for the CCC, first sums
all-reduced, then sums centred about the global means, additive over replicas),
the statistics are summed over replicas, and every replica evaluates the same
loss on the totals. The all-reduce is wrapped so its gradient reaches only the
replica's own statistics (`global_sum`); the optimizer's cross-replica sum of
gradients then gives exactly the single-device gradient. On one device the
loss equals `affnet.objectives.losses.ccc_loss` / `sequence_ccc_loss` / `mse_loss` (the same
moment core, so up to float32 summation order only).

Label conventions (data_pipeline.reader.input): `va` (B, T, 2) with NaN where
unlabelled, `va_mask` (B, T) or (B, T, 2) 1 where labelled, `valid` (B, T) 0 on
padding frames.
"""

import tensorflow as tf

from affnet.objectives import ccc, couplings, losses, multitask
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


def _ccc_frames(loss, labels, predictions):
    """(x, y, w), each (N, D): the values a CCC loss compares; None for other losses."""
    if loss != "ccc" and not loss.startswith("sequence_ccc_"):
        return None
    y_true = tf.cast(labels["va"], tf.float32)
    y_pred = tf.cast(predictions, tf.float32)
    weights = frame_weights(labels, y_true)
    y_true = tf.where(weights > 0, y_true, 0.0)
    depth = tf.shape(y_true)[-1]
    if loss == "ccc":
        return tuple(tf.reshape(t, [-1, depth]) for t in (y_true, y_pred, weights))
    # [MC] Sec. 3: one value per sequence, f = mean or median of its frames.
    reduce = loss.rsplit("_", 1)[-1]
    true_values, _ = losses.sequence_values(y_true, weights, reduce)
    pred_values, present = losses.sequence_values(y_pred, weights, reduce)
    return true_values, pred_values, present


def local_statistics(loss, labels, predictions):
    """This replica's additive statistics for `loss` (one of `config.LOSSES`)."""
    if loss not in LOSSES or loss == "multitask":
        raise ValueError(f"loss must be one of {[n for n in LOSSES if n != 'multitask']}, got {loss!r}")
    frames = _ccc_frames(loss, labels, predictions)
    if frames is not None:
        return ccc.moment_sums(*frames)
    y_true = tf.cast(labels["va"], tf.float32)
    weights = frame_weights(labels, y_true)
    error = tf.where(weights > 0, tf.cast(predictions, tf.float32) - y_true, 0.0)
    return tf.stack([tf.reduce_sum(weights * tf.square(error)), tf.reduce_sum(weights)])


def global_statistics(loss, labels, predictions):
    """The statistics of `loss` over the global batch (every replica gets them).

    CCC losses take two all-reduces: the first sums give the global means, then every
    replica centres its frames about them (`ccc.sums_about`), so the variances carry no
    error from the spread of the replicas' means; on one device this is
    `local_statistics`.
    """
    frames = _ccc_frames(loss, labels, predictions)
    if frames is None:
        return global_sum(local_statistics(loss, labels, predictions))
    totals = tf.stop_gradient(global_sum(ccc.first_sums(*frames)))
    return ccc.with_square_rows(global_sum(ccc.sums_about(*frames, totals)))


def loss_from_statistics(loss, stats):
    """The scalar loss from (globally summed) statistics."""
    if loss == "mse":
        return tf.math.divide_no_nan(stats[0], stats[1])
    return 1.0 - tf.reduce_mean(ccc.ccc_from_sums(stats))


def global_loss(loss, labels, predictions):
    """The loss of the whole global batch; call inside `strategy.run` (or plainly)."""
    return loss_from_statistics(loss, global_statistics(loss, labels, predictions))


def coupling_config(config, model):
    """The run's FaceBehaviorNet couplings ([FBN] Sec. VI-B) as an
    `affnet.objectives.couplings.CouplingConfig` over `model`'s AUs, or None without couplings."""
    if not config.multitask.couplings:
        return None
    au_names = getattr(model, "au_names", None)
    if not au_names:
        raise ValueError(f"couplings {list(config.multitask.couplings)} need a model with AU outputs (au_names); "
                         f"{config.model.name!r} has none")
    return couplings.CouplingConfig.from_names(config.multitask.couplings, table=config.multitask.relatedness,
                                               au_names=tuple(au_names), **dict(config.multitask.coupling_options))


def statistics(config, labels, predictions, coupling_setup=None):
    """This replica's additive loss statistics for the run's `config.optimisation.loss`:
    a tensor for the VA losses, a {term: tensor} dict for "multitask"
    (`affnet.objectives.multitask`; with `coupling_setup`, `affnet.objectives.couplings`)."""
    if config.optimisation.loss != "multitask":
        return local_statistics(config.optimisation.loss, labels, predictions)
    if coupling_setup is not None:
        return couplings.facebehaviornet_statistics(labels, predictions, coupling_setup)
    return multitask.multitask_statistics(labels, predictions)


def global_run_statistics(config, labels, predictions, coupling_setup=None):
    """`statistics` summed over all replicas (VA losses: `global_statistics`)."""
    if config.optimisation.loss != "multitask":
        return global_statistics(config.optimisation.loss, labels, predictions)
    return global_sum(statistics(config, labels, predictions, coupling_setup))


def loss_and_components(config, stats, coupling_setup=None):
    """(scalar loss, {term: unweighted value}) from globally summed `statistics`."""
    if config.optimisation.loss != "multitask":
        return loss_from_statistics(config.optimisation.loss, stats), {}
    if coupling_setup is not None:
        return couplings.facebehaviornet_loss_from_statistics(stats, coupling_setup, config.multitask.task_weight)
    return multitask.multitask_loss_from_statistics(stats, config.multitask.task_weight)


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
    return ccc.moment_sums(*flat)


def monitor_values(sums):
    """{ccc_valence, ccc_arousal, mse_valence, mse_arousal} from summed `monitor_statistics`."""
    concordance, mse = ccc.ccc_from_sums(sums), ccc.mse_from_sums(sums)
    return {"ccc_valence": concordance[0], "ccc_arousal": concordance[1], "mse_valence": mse[0],
            "mse_arousal": mse[1]}

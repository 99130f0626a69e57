"""tf.distribute set-up: one default device, MirroredStrategy, or
MultiWorkerMirroredStrategy driven by the TF_CONFIG environment variable.

Every worker runs the same program; only the chief writes TensorBoard logs,
checkpoints and JSON (the others write their checkpoints into a scratch
directory, as the MultiWorkerMirroredStrategy tutorial requires, and drop them).
"""

import contextlib
import json
import os

import tensorflow as tf

from affnet.training.config import DISTRIBUTIONS


def make_strategy(name: str) -> tf.distribute.Strategy:
    """"default" | "mirrored" (all local devices) | "multi_worker" (TF_CONFIG)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("distribution 'multi_worker' needs the TF_CONFIG environment variable "
                             "(cluster and task), which is not set")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {name!r}")


def task_info():
    """(task_type, task_id) from TF_CONFIG; ("chief", 0) without it."""
    config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = config.get("task", {})
    return task.get("type", "chief"), int(task.get("index", 0))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """The one process that writes outputs: worker 0 when no chief task exists."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = task_info()
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    if "chief" in cluster:
        return task_type == "chief"
    return task_type == "worker" and task_id == 0


def write_dir(workdir: str, strategy: tf.distribute.Strategy) -> str:
    """`workdir` on the chief, a per-worker scratch directory elsewhere."""
    if is_chief(strategy):
        return workdir
    task_type, task_id = task_info()
    return os.path.join(workdir, "workers", f"{task_type}_{task_id}")


def _replica():
    """(replica id, replica count) of the current replica context; (0, 1) outside one."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return 0, 1
    return context.replica_id_in_sync_group, context.num_replicas_in_sync


def all_replicas_finite(grads):
    """Whether the gradients of *every* replica are finite (one scalar all-reduce).

    A float16 step must be skipped everywhere when any replica overflowed: the
    replicas' gradients are summed, so one infinite gradient spoils them all.
    """
    local = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads if g is not None])
    _, replicas = _replica()
    if replicas == 1:
        return local
    bad = tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, 1.0 - tf.cast(local, tf.float32))
    return tf.equal(bad, 0.0)


def spoil_unless_all_finite(grads):
    """`grads`, or NaN everywhere when any replica's gradients are not finite.

    Keras' `LossScaleOptimizer` judges finiteness from one replica's own gradients
    before the cross-replica sum (on a multi-replica strategy, the first replica's);
    spoiling every replica's gradients makes that judgement the global one, so the
    step is skipped and the loss scale halved on all replicas together.
    """
    spoil = tf.where(all_replicas_finite(grads), 0.0, float("nan"))
    return [None if g is None else g + tf.cast(spoil, g.dtype) for g in grads]


# Added to the first word of every seed-generator state on replica r (times r): far
# from the counter word that Keras increments once per draw.
_SEED_STRIDE = 1_000_003


def _seed_states(model):
    return [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]


@contextlib.contextmanager
def replica_seeds(model):
    """Inside: replica r draws its random numbers (dropout masks) from seeds shifted by r.

    Seed-generator states are mirrored variables, identical on every replica, so
    without the shift every replica would drop the same units of its own batch
    share. Replica 0 keeps the states' own values (one device draws as before);
    leaving restores the states to one value on all replicas.
    """
    index, replicas = _replica()
    states = _seed_states(model) if replicas > 1 else []
    shifts = []
    for state in states:
        dtype = state.value.dtype
        shift = tf.stack([tf.cast(index, dtype) * tf.constant(_SEED_STRIDE, dtype), tf.zeros((), dtype)])
        state.assign(state.value + shift)
        shifts.append(shift)
    yield
    for state, shift in zip(states, shifts):
        state.assign(state.value - shift)


def snapshot(variables):
    """The current values of `variables`, for `restore`."""
    return [tf.identity(v.value) for v in variables]


def restore(variables, values):
    for variable, value in zip(variables, values):
        variable.assign(value)

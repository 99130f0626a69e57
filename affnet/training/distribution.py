"""tf.distribute set-up: one default device, MirroredStrategy, or
MultiWorkerMirroredStrategy driven by the TF_CONFIG environment variable.

Every worker runs the same program; only the chief writes TensorBoard logs,
checkpoints and JSON (the others write their checkpoints into a scratch
directory, as the MultiWorkerMirroredStrategy tutorial requires, and drop them).
"""

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

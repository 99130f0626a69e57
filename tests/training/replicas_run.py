"""Helper process for test_replicas.py: two logical CPUs, a tiny sequence model
(frame Dense -> TF1 GRU stack -> Dense(2)) trained by `loop.Trainer` on fixed data
on one device and under MirroredStrategy; prints RESULT JSON per scenario.

Usage: python replicas_run.py SCENARIO WORKDIR
SCENARIO: xla_<precision> (jit_compile on 2 replicas vs one device; precision none,
          bfloat16 or float16: one per process, since a second MirroredStrategy with
          float16 loss scaling in one process can misnumber its collectives)
        | overflow (float16, an overflow in the second replica's gradients at step 2)
        | dropout (a Dropout layer's masks on one device and on two replicas)
        | resume (one workdir: 1 replica float32 -> 2 replicas bfloat16 + XLA -> float16)
SGD keeps the comparison about the distribution: Adam's first steps divide by the
root of tiny second moments and magnify float16 rounding of the gradients.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

from affnet.layers import build_rnn_stack  # noqa: E402
from affnet.training import config as config_lib, loop  # noqa: E402

GLOBAL_BATCH, SEQ_LEN, SIZE, STEPS = 4, 5, 4, 3
OVERFLOW_STEP = 2  # 1-based: the step whose second-replica sequences overflow


def fixed_data(overflow=False):
    rng = np.random.default_rng(0)
    count = GLOBAL_BATCH * STEPS
    images = rng.uniform(-1, 1, (count, SEQ_LEN, SIZE, SIZE, 3)).astype(np.float32)
    va = rng.uniform(-1, 1, (count, SEQ_LEN, 2)).astype(np.float32)
    va[0, 0] = np.nan  # An unlabelled frame.
    marker = np.zeros((count, SEQ_LEN, 1), np.float32)
    if overflow:  # the second half of step OVERFLOW_STEP's global batch: replica 1 of 2
        marker[(OVERFLOW_STEP - 1) * GLOBAL_BATCH + GLOBAL_BATCH // 2:OVERFLOW_STEP * GLOBAL_BATCH] = 1.0
    features = {"images": images, "marker": marker}
    labels = {"va": va, "va_mask": np.isfinite(va).all(-1).astype(np.float32),
              "valid": np.ones((count, SEQ_LEN), np.float32)}
    return features, labels


def dataset_fn(overflow):
    def make(input_context):
        per_replica = input_context.get_per_replica_batch_size(GLOBAL_BATCH)
        return tf.data.Dataset.from_tensor_slices(fixed_data(overflow)).batch(per_replica, drop_remainder=True)\
            .repeat()
    return make


@tf.custom_gradient
def _overflow_where_marked(x, marker):
    """Identity; its gradient is infinite on the frames whose marker is 1."""
    def grad(dy):
        inf = tf.constant(np.inf, dy.dtype)
        return dy * tf.where(marker > 0, inf, tf.ones_like(dy)), tf.zeros_like(marker)
    return tf.identity(x), grad


class OverflowWhereMarked(keras.layers.Layer):
    def call(self, x, marker):
        return _overflow_where_marked(x, tf.cast(marker, x.dtype))


def tiny_model(dropout=0.0):
    images = keras.Input((None, SIZE, SIZE, 3), name="images")
    marker = keras.Input((None, 1), name="marker")
    x = keras.layers.Reshape((-1, SIZE * SIZE * 3))(images)
    x = keras.layers.Dense(6, activation="tanh", name="frame")(x)
    x = OverflowWhereMarked(name="overflow")(x, marker)
    x = build_rnn_stack(x, units=4, dropout=dropout, name="rnn")
    va = keras.layers.Dense(2, dtype="float32", name="va")(x)
    return keras.Model({"images": images, "marker": marker}, va, name="tiny")


def dropout_masks():
    """Dropout masks of a layer on one device and on each of two replicas, same input."""
    from affnet.training import distribution

    def draw(strategy):
        with strategy.scope():
            model = keras.Sequential([keras.Input((64,)), keras.layers.Dropout(0.5, seed=3)])

        def replica_fn():
            with distribution.replica_seeds(model):
                return model(tf.ones((1, 64)), training=True)

        masks = strategy.experimental_local_results(tf.function(lambda: strategy.run(replica_fn))())
        state = [[c.numpy().tolist() for c in getattr(v.value, "values", [v.value])]
                 for v in model.non_trainable_variables]
        return [m.numpy().ravel().tolist() for m in masks], state

    single, single_state = draw(tf.distribute.get_strategy())
    replicas, replica_state = draw(tf.distribute.MirroredStrategy())
    return {"single": single, "replicas": replicas, "single_state": single_state, "replica_state": replica_state}


def resume(workdir):
    """2 steps on one device in float32, 2 more on two replicas in bfloat16 with XLA, 2 more
    on one device in float16 (the loss scale starts afresh), in one workdir; dropout between
    the GRU layers (per-replica seeds, and the XLA forward rerun from the same seeds)."""
    results = {}
    for name, distribution, precision, jit, steps in (("first", "default", "none", False, 2),
                                                       ("replicas", "mirrored", "bfloat16", True, 4),
                                                       ("float16", "default", "float16", False, 6)):
        lines = []
        result = run(workdir, distribution, precision, jit, steps=steps, log=lines.append, dropout=0.3)
        results[name] = {"losses": result["losses"], "replicas": result["replicas"], "scale": result["scale"],
                         "log": [str(line) for line in lines], "step": result["step"]}
    return results


def run(workdir, distribution, precision, jit, overflow=False, steps=STEPS, log=lambda *a: None, dropout=0.0):
    keras.utils.set_random_seed(1)
    config = config_lib.TrainConfig.from_flat(
        model="affwildnet_vggface", data="unused", seq_len=SEQ_LEN, batch_size=GLOBAL_BATCH, train_steps=steps,
        log_every=1, eval_every=1000, checkpoint_every=2, distribution=distribution, workdir=workdir,
        lr_decay_steps=0, learning_rate=1e-2, mixed_precision=precision, jit_compile=jit, optimizer="sgd")
    trainer = loop.Trainer(config, model_fn=lambda: tiny_model(dropout), train_dataset_fn=dataset_fn(overflow), log=log)
    trainer.train(evaluate=False)
    scale = getattr(trainer.optimizer, "dynamic_scale", None)
    return {"losses": [loss for _, loss in trainer.history], "replicas": trainer.strategy.num_replicas_in_sync,
            "weights": [w.tolist() for w in trainer.model.get_weights()],
            "scale": None if scale is None else float(scale.numpy()), "step": int(trainer.step.numpy())}


def main(scenario, workdir):
    results = {}
    if scenario.startswith("xla_"):
        precision = scenario[len("xla_"):]
        for distribution in ("default", "mirrored"):
            results[distribution] = run(os.path.join(workdir, distribution), distribution, precision, True)
    elif scenario == "overflow":
        for distribution in ("default", "mirrored"):
            results[distribution] = run(os.path.join(workdir, distribution), distribution, "float16", False,
                                        overflow=True)
    elif scenario == "dropout":
        results = dropout_masks()
    elif scenario == "resume":
        results = resume(os.path.join(workdir, "run"))
    else:
        raise ValueError(f"unknown scenario {scenario!r}")
    print("RESULT " + json.dumps(results), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

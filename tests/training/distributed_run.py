"""Helper process for test_distribution.py: a few training steps of a tiny
model on fixed in-memory data under one distribution; prints the losses as JSON.

Usage: python distributed_run.py MODE WORKDIR [LOGICAL_CPUS]
MODE: default | mirrored | multi_worker (TF_CONFIG set by the caller).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

GLOBAL_BATCH, SEQ_LEN, SIZE, STEPS = 4, 4, 32, 3
OVERRIDES = dict(width=0.0625, input_size=SIZE, fc_units=16, rnn_units=8, dropout=0.0)


def fixed_data(count=GLOBAL_BATCH * STEPS):
    rng = np.random.default_rng(0)
    features = {"images": rng.uniform(-1, 1, (count, SEQ_LEN, SIZE, SIZE, 3)).astype(np.float32),
                "landmarks": rng.uniform(0, 1, (count, SEQ_LEN, 136)).astype(np.float32)}
    va = rng.uniform(-1, 1, (count, SEQ_LEN, 2)).astype(np.float32)
    va[0, 0] = np.nan  # An unlabelled frame.
    mask = np.isfinite(va).all(-1).astype(np.float32)
    labels = {"va": va, "va_mask": mask, "valid": np.ones((count, SEQ_LEN), np.float32),
              "frame_index": np.tile(np.arange(SEQ_LEN), (count, 1)),
              "video_id": np.array([f"v{i}".encode() for i in range(count)])}
    return features, labels


def dataset_fn(input_context):
    per_replica = input_context.get_per_replica_batch_size(GLOBAL_BATCH)
    dataset = tf.data.Dataset.from_tensor_slices(fixed_data()).batch(per_replica, drop_remainder=True)
    # Worker w takes per-replica batches w, w + n, ...: step k of n workers sees
    # exactly the examples of step k of one device.
    return dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id).repeat()


def main(mode, workdir, logical_cpus=1, loss="ccc"):
    if logical_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
    from affnet.training import config as config_lib, loop

    config = config_lib.TrainConfig.from_flat(
        model="affwildnet_vggface", model_overrides=OVERRIDES, data="unused", seq_len=SEQ_LEN,
        batch_size=GLOBAL_BATCH, train_steps=STEPS, log_every=1, eval_every=1000, checkpoint_every=1000,
        distribution=mode, workdir=workdir, loss=loss, lr_decay_steps=0, learning_rate=1e-2)
    trainer = loop.Trainer(config, train_dataset_fn=dataset_fn, log=lambda *a: None)
    trainer.train(evaluate=False)
    print("RESULT " + json.dumps({"losses": [loss for _, loss in trainer.history],
                                  "replicas": trainer.strategy.num_replicas_in_sync}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1,
         sys.argv[4] if len(sys.argv) > 4 else "ccc")

"""The training step against the authors' TF1 one ([code] OMG_Challenge): a tiny
AffWildNet trained a few steps by `loop.Trainer` and by a tf.compat.v1 graph of
the same loss (concordance over the batch's frames) and optimizer
(`tf.train.AdamOptimizer` defaults), from the same weights on the same batches
(uint8 for the trainer, as its reader gives them)."""


import numpy as np
import tensorflow as tf

import tf1_reference as ref  # noqa: E402

from affnet import models  # noqa: E402
from affnet.training import config as config_lib  # noqa: E402
from affnet.training import loop, schedules  # noqa: E402
from affnet.weights import tf1_checkpoint  # noqa: E402

BATCH, SEQ_LEN, SIZE, STEPS, RATE = 2, 5, 32, 3, 1e-3
TINY = dict(landmarks=False, dropout=0.0, input_size=SIZE, width=0.125, fc_units=40, rnn_units=16)


def _batches():
    """(uint8 pixels, labels) per step."""
    rng = np.random.default_rng(0)
    return [(rng.integers(0, 256, (BATCH, SEQ_LEN, SIZE, SIZE, 3), dtype=np.uint8),
             rng.uniform(-1, 1, (BATCH, SEQ_LEN, 2)).astype(np.float32)) for _ in range(STEPS)]


def test_adam_epsilon_is_the_authors_and_reaches_the_optimizer(tmp_path):
    config = config_lib.TrainConfig.from_flat(dict(workdir=str(tmp_path)))
    assert config.optimisation.adam_epsilon == 1e-8  # tf.train.AdamOptimizer's default.
    assert schedules.make_optimizer(config).epsilon == 1e-8
    other = config_lib.TrainConfig.from_flat(dict(workdir=str(tmp_path), adam_epsilon=1e-7, mixed_precision="float16"))
    assert schedules.make_optimizer(other).inner_optimizer.epsilon == 1e-7


def test_training_steps_equal_the_authors_tf1_graph(tmp_path):
    batches = _batches()
    # The TF1 graph is fed (p - 127.5) / 127.5; the trainer gets the uint8 pixels, as
    # from the training reader, and normalises them inside its step.
    normalised = [((x.astype(np.float32) - 127.5) / 127.5, y) for x, y in batches]
    expected_losses, initial, trained = ref.train_and_save(
        ref.affwildnet_vggface_gru, normalised, tmp_path / "tf1" / "model.ckpt", RATE,
        fc_units=TINY["fc_units"], width=TINY["width"], units=TINY["rnn_units"])

    images = np.concatenate([x for x, _ in batches])
    va = np.concatenate([y for _, y in batches])
    ones = np.ones(va.shape[:2], np.float32)
    labels = {"va": va, "va_mask": ones, "valid": ones, "frame_index": np.tile(np.arange(SEQ_LEN), (len(va), 1)),
              "video_id": np.array([f"v{i}".encode() for i in range(len(va))])}
    dataset_fn = lambda context: tf.data.Dataset.from_tensor_slices(({"images": images}, labels)).batch(BATCH)  # noqa

    config = config_lib.TrainConfig.from_flat(dict(
        model="affwildnet_vggface", model_overrides=TINY, data="unused", seq_len=SEQ_LEN, batch_size=BATCH,
        train_steps=STEPS, log_every=1, eval_every=1000, workdir=str(tmp_path / "run"), learning_rate=RATE,
        lr_decay_steps=0))
    trainer = loop.Trainer(config, train_dataset_fn=dataset_fn, log=lambda *a: None)
    assert tf1_checkpoint.load_tf1_checkpoint(trainer.model, initial).unused == []
    trainer.train(evaluate=False)

    # With Keras' default epsilon (1e-7) the third loss is 8e-5 off: this tells the two apart.
    np.testing.assert_allclose([loss for _, loss in trainer.history], expected_losses, rtol=1e-5, atol=1e-5)
    reference = models.build("affwildnet_vggface", **TINY)
    tf1_checkpoint.load_tf1_checkpoint(reference, trained)
    start = models.build("affwildnet_vggface", **TINY)
    tf1_checkpoint.load_tf1_checkpoint(start, initial)
    moved = 0
    for got, want, before in zip(trainer.model.trainable_weights, reference.trainable_weights, start.trainable_weights):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5, err_msg=got.path)
        moved += np.abs(got.numpy() - before.numpy()).max() > 1e-4
    assert moved == len(start.trainable_weights)  # Every variable took STEPS updates of ~RATE.

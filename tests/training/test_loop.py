"""The training loop in-process on fixed in-memory data: mixed precision and XLA
steps, resume from a checkpoint (step and optimizer state), frame models."""


import numpy as np
import pytest
import tensorflow as tf

import distributed_run  # noqa: E402

from affnet.training import config as config_lib  # noqa: E402
from affnet.training import loop  # noqa: E402


def _config(workdir, **changes):
    values = dict(model="affwildnet_vggface", model_overrides=distributed_run.OVERRIDES, data="unused",
                  seq_len=distributed_run.SEQ_LEN, batch_size=distributed_run.GLOBAL_BATCH, train_steps=2,
                  log_every=1, eval_every=1000, checkpoint_every=2, workdir=str(workdir), learning_rate=1e-2,
                  lr_decay_steps=0)
    values.update(changes)
    return config_lib.TrainConfig.from_flat(values)


def _trainer(config):
    return loop.Trainer(config, train_dataset_fn=distributed_run.dataset_fn, log=lambda *a: None)


@pytest.mark.parametrize("precision, jit", [("bfloat16", True), ("float16", False)])
def test_mixed_precision_steps_train(tmp_path, precision, jit):
    trainer = _trainer(_config(tmp_path, mixed_precision=precision, jit_compile=jit, train_steps=3))
    before = [w.numpy().copy() for w in trainer.model.trainable_weights]
    assert trainer.model.get_layer("fc1").compute_dtype == {"bfloat16": "bfloat16", "float16": "float16"}[precision]
    trainer.train(evaluate=False)
    losses = [loss for _, loss in trainer.history]
    assert len(losses) == 3 and np.all(np.isfinite(losses))
    assert all(w.dtype == "float32" for w in trainer.model.trainable_weights)
    changed = [not np.array_equal(b, w.numpy()) for b, w in zip(before, trainer.model.trainable_weights)]
    assert sum(changed) > len(changed) // 2


def test_resume_continues_step_and_optimizer_state(tmp_path):
    first = _trainer(_config(tmp_path, train_steps=2))
    first.train(evaluate=False)
    weights = [w.numpy() for w in first.model.weights]
    moments = {v.path: v.numpy() for v in first.optimizer.variables}

    resumed = _trainer(_config(tmp_path, train_steps=3))
    assert int(resumed.step.numpy()) == 2
    assert int(resumed.optimizer.iterations.numpy()) == 2
    for a, b in zip(weights, resumed.model.weights):
        np.testing.assert_array_equal(a, b.numpy())
    for v in resumed.optimizer.variables:
        np.testing.assert_array_equal(moments[v.path], v.numpy(), err_msg=v.path)
    resumed.train(evaluate=False)
    assert [step for step, _ in resumed.history] == [3]
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-3")

    with pytest.raises(ValueError, match="seq_len"):
        _trainer(_config(tmp_path, train_steps=4, seq_len=6))


def test_frame_model_is_folded_over_time(tmp_path):
    config = _config(tmp_path, model="vggface_cnn", model_overrides=dict(
        width=0.0625, input_size=distributed_run.SIZE, fc_units=(16, 8), dropout=0.0), train_steps=1)
    trainer = _trainer(config)
    assert not trainer.sequence
    trainer.train(evaluate=False)
    features, _ = distributed_run.fixed_data(2)
    out = trainer.predict({k: tf.constant(v) for k, v in features.items()})
    assert out.shape == (2, distributed_run.SEQ_LEN, 2)

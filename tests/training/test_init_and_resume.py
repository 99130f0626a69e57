"""Starting a run from other runs, through the Trainer on the tiny synthetic set:
fine-tuning from a workdir (`init_weights`, recola.flags / afewva.flags) of the
same and of another architecture, [AW2] strategy (iii) (`init_rnn_from` a
strategy-(i) run), and resuming `launch/train.py` after a SIGKILL."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from helpers import ROOT  # noqa: E402
from helpers import launch_script as _launch  # noqa: E402
from helpers import subprocess_env as _env  # noqa: E402
from test_loop import _config  # noqa: E402

from affnet.training import checkpointing, loop  # noqa: E402

def _trainer(config):
    return loop.Trainer(config, log=lambda *a: None)


def _checkpoint_values(prefix, model):
    """{checkpoint key: array} of `model`'s variables as stored under `prefix`,
    read from the file (not through a restore)."""
    reader = tf.train.load_checkpoint(prefix)
    escape = lambda key: key.replace(".", "..").replace("/", ".S")  # noqa: E731 (TF object-graph names)
    return {key: reader.get_tensor(f"model/{escape(key)}/.ATTRIBUTES/VARIABLE_VALUE")
            for key in checkpointing.variable_map(model)}


def _layer_weights(model, names):
    return {name: [w.numpy() for w in model.get_layer(name).weights] for name in names}


def _assert_layers(model, expected, names, equal=True):
    got = _layer_weights(model, names)
    for name in names:
        pairs = list(zip(got[name], expected[name]))
        assert pairs, name
        same = all(np.array_equal(a, b) for a, b in pairs)
        assert same == equal, f"layer {name!r}: expected {'equal' if equal else 'different'} weights"


@pytest.fixture(scope="module")
def donor(synthetic_data, tmp_path_factory):
    """A strategy-(i) run (frozen backbone, seed 0) whose best checkpoint is
    older than its latest: 2 evaluated steps, then 1 more without evaluation.
    Returns (workdir, {layer name: best weights})."""
    workdir = tmp_path_factory.mktemp("donor")
    config = _config(workdir, data=synthetic_data, strategy="i", eval_every=1, checkpoint_every=1)
    _trainer(config).train()
    trainer = _trainer(config.replace(train_steps=3))
    trainer.train(evaluate=False)
    best = checkpointing.checkpoint_path(str(workdir), "best")
    assert best.endswith(("ckpt-1", "ckpt-2")) and tf.train.latest_checkpoint(
        str(workdir / checkpointing.LATEST_DIR)).endswith("ckpt-3")
    values = _checkpoint_values(best, trainer.model)
    keys = {id(v): k for k, v in checkpointing.variable_map(trainer.model).items()}
    weights = {layer.name: [values[keys[id(w)]] for w in layer.weights] for layer in trainer.model.layers
               if layer.weights}
    latest = _layer_weights(trainer.model, ["rnn", "va_output"])
    assert not all(np.array_equal(a, b) for a, b in zip(latest["rnn"], weights["rnn"])), "best == latest"
    return str(workdir), weights


def _fresh(config, workdir):
    """The initial weights the Trainer gives `config` without any initialisation source."""
    plain = config.replace(strategy="ii", init_rnn_from="", init_weights="", workdir=str(workdir))
    model = _trainer(plain).model
    return {layer.name: [w.numpy() for w in layer.weights] for layer in model.layers if layer.weights}


BACKBONE, FC, RNN, OUTPUT = "vggface", "fc1", "rnn", "va_output"


@pytest.mark.slow
def test_init_weights_from_a_workdir_of_the_same_architecture(donor, synthetic_data, tmp_path):
    workdir, best = donor
    config = _config(tmp_path / "finetune", data=synthetic_data, init_weights=workdir, seed=1, train_steps=1)
    trainer = _trainer(config)
    # Every weight is the donor's best (not latest) checkpoint's, backbone included.
    _assert_layers(trainer.model, best, [BACKBONE, FC, RNN, OUTPUT])
    _assert_layers(trainer.model, _fresh(config, tmp_path / "fresh"), [BACKBONE, FC, RNN, OUTPUT], equal=False)
    assert int(trainer.step.numpy()) == 0 and int(trainer.optimizer.iterations.numpy()) == 0
    trainer.train(evaluate=False)
    _assert_layers(trainer.model, best, [RNN], equal=False)


@pytest.mark.slow
def test_init_weights_from_a_workdir_of_another_architecture(donor, synthetic_data, tmp_path):
    # Another rnn_units: the RNN and the output layer cannot be copied by name and stay fresh.
    workdir, best = donor
    overrides = dict(dict(_config(tmp_path).model.overrides), rnn_units=6)
    config = _config(tmp_path / "finetune", data=synthetic_data, init_weights=workdir, seed=1,
                     model_overrides=overrides)
    trainer = _trainer(config)
    fresh = _fresh(config, tmp_path / "fresh")
    _assert_layers(trainer.model, best, [BACKBONE, FC])
    _assert_layers(trainer.model, fresh, [RNN, OUTPUT])
    _assert_layers(trainer.model, fresh, [BACKBONE, FC], equal=False)


@pytest.mark.slow
def test_strategy_iii_takes_rnn_and_output_from_a_strategy_i_run(donor, synthetic_data, tmp_path):
    # [AW2] Sec. III-B (iii): RNN and output layer from (i); the backbone and fc1 start fresh.
    workdir, best = donor
    config = _config(tmp_path / "iii", data=synthetic_data, strategy="iii", init_rnn_from=workdir, seed=1)
    trainer = _trainer(config)
    fresh = _fresh(config, tmp_path / "fresh")
    _assert_layers(trainer.model, best, [RNN, OUTPUT])
    _assert_layers(trainer.model, fresh, [BACKBONE, FC])
    _assert_layers(trainer.model, best, [BACKBONE, FC], equal=False)
    assert trainer.model.get_layer(BACKBONE).trainable  # (iii) trains everything.


def _wait_for_checkpoint(directory, process, timeout):
    """The first `checkpoint` index TF writes after a save, while `process` runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tf.train.latest_checkpoint(directory):
            return
        if process.poll() is not None:
            raise AssertionError(f"train.py exited ({process.returncode}) before its first checkpoint")
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint in {directory} after {timeout} s")


@pytest.mark.slow
def test_sigkilled_train_py_resumes_from_its_last_checkpoint(synthetic_data, tmp_path):
    workdir = str(tmp_path / "run")
    steps = 60
    command = ["--model=affwildnet_vggface", "--model_overrides=width=0.0625,input_size=32,fc_units=16,rnn_units=8",
               f"--data={synthetic_data}", "--seq_len=4", "--batch_size=2", f"--train_steps={steps}",
               "--checkpoint_every=5", "--eval_every=1000", "--log_every=5", "--lr_decay_steps=0",
               f"--workdir={workdir}"]
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen([sys.executable, os.path.join(ROOT, "launch", "train.py"), *command], cwd=ROOT,
                                 env=_env(), stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_for_checkpoint(os.path.join(workdir, checkpointing.LATEST_DIR), first, timeout=600)
            assert first.poll() is None, "the run ended before it could be killed: raise train_steps"
            first.send_signal(signal.SIGKILL)
            assert first.wait(timeout=60) == -signal.SIGKILL
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
    latest = tf.train.latest_checkpoint(os.path.join(workdir, checkpointing.LATEST_DIR))
    killed_at = int(re.search(r"ckpt-(\d+)$", latest).group(1))
    assert 5 <= killed_at < steps and killed_at % 5 == 0, latest

    output = _launch("train.py", *command)
    resumed = re.search(r"resumed from (\S+) at step (\d+)", output)
    assert resumed, output[-2000:]
    assert resumed.group(1) == latest and int(resumed.group(2)) == killed_at
    logged = [int(step) for step in re.findall(rf"^step (\d+)/{steps} ", output, re.MULTILINE)]
    assert logged == list(range(killed_at + 5, steps + 1, 5)), output[-2000:]
    assert f'"step": {steps}' in output
    assert tf.train.latest_checkpoint(os.path.join(workdir, checkpointing.LATEST_DIR)).endswith(f"ckpt-{steps}")

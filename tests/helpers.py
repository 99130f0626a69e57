"""Tiny models' inputs shared by the model, training and layer tests (tests/conftest.py
puts this directory on sys.path: `from helpers import ...`), and running the launch/ CLIs."""

import os
import subprocess
import sys

import numpy as np

LANDMARKS = 136


def sequence_inputs(batch=2, steps=3, size=32, landmarks=True, seed=0):
    """{"images": (B, T, size, size, 3) in [-1, 1], "landmarks": (B, T, 136) crop pixels}."""
    rng = np.random.default_rng(seed)
    x = {"images": rng.uniform(-1, 1, (batch, steps, size, size, 3)).astype("float32")}
    if landmarks:
        x["landmarks"] = rng.uniform(0, size, (batch, steps, LANDMARKS)).astype("float32")
    return x


def frame_inputs(batch=2, size=32, landmarks=True, seed=0):
    """{"images": (B, size, size, 3) in [-1, 1], "landmarks": (B, 136) crop pixels}."""
    rng = np.random.default_rng(seed)
    x = {"images": rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32")}
    if landmarks:
        x["landmarks"] = rng.uniform(0, size, (batch, LANDMARKS)).astype("float32")
    return x


def model_inputs(model, batch=2, steps=3, seed=0):
    """Random inputs in [-1, 1] for every input of `model`; sequence inputs get `steps` frames."""
    rng = np.random.default_rng(seed)
    x = {}
    for key, spec in model.input.items():
        shape = tuple(spec.shape[1:])
        if shape[0] is None:
            shape = (steps,) + shape[1:]
        x[key] = rng.uniform(-1, 1, (batch,) + shape).astype("float32")
    return x


# ------------------------------------------------------------------ launching the CLIs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def subprocess_env():
    """The environment of a CLI run by a test: quiet TF, CPU only, no TF_CONFIG."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    return env


def launch_script(script, *args):
    """Run `launch/<script>` with `args` from the repository root; its stdout (asserts exit code 0)."""
    done = subprocess.run([sys.executable, os.path.join(ROOT, "launch", script), *args], cwd=ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    return done.stdout

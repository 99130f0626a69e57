"""Shared test settings: quiet TF, deterministic seeds, CPU only; and the session fixtures that
several test files need and that cost seconds to build: the tiny synthetic set, a tiny trained
run on it, and an export of random released weights. Each is built once per pytest process
(once per xdist worker) and is read-only: a test that writes into one copies it first."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# predict's --precision=auto runs float32 in tests (CLI subprocesses inherit it): value-parity tests compare
# against float32 references and the oneDNN bfloat16 rewrite is process-wide. tests/predict/test_statistics.py
# runs auto as a user gets it.
os.environ.setdefault("AFFNET_AUTO_PRECISION", "float32")

import numpy as np  # noqa: E402
import preloaded  # noqa: E402
import pytest  # noqa: E402

# The project's commands run by tests start from an interpreter with TensorFlow imported (tests/preloaded.py).
preloaded.install()

# One 32-frame video per split at 32x32 crops, with the 17 AUs of [FBN] so that the
# multi-task models find every label they train on.
SYNTHETIC = dict(subjects=3, videos_per_subject=1, frames_per_video=32, crop_size=32, frame_size=96, au_set="17")
# AffWildNet-VGGFace-GRU ([AW]) at 1/16 width on 32x32 crops: 2 steps, checkpoint and evaluation at step 2.
TINY_OVERRIDES = dict(width=0.0625, input_size=32, fc_units=16, rnn_units=8)
TINY_RUN = dict(model="affwildnet_vggface", model_overrides=TINY_OVERRIDES, seq_len=8, batch_size=2,
                train_steps=2, log_every=1, eval_every=2, checkpoint_every=2, eval_batch_size=4)
# The released AffWildNet-VGGFace-GRU at 1/16 width on its own 96x96 input (no resize in the signature).
RELEASED = "affwildnet_vggface_gru_released"
RELEASED_OVERRIDES = dict(width=0.0625, fc_units=16, rnn_units=8)


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(0)
    np.random.seed(0)


def _snapshot(directory):
    """{relative path: (size, mtime)} of every file under `directory`."""
    return {os.path.relpath(os.path.join(d, f), directory): (os.path.getsize(os.path.join(d, f)),
                                                            os.path.getmtime(os.path.join(d, f)))
            for d, _, files in os.walk(directory) for f in files}


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory):
    """The directory of the SYNTHETIC set (train / validation / test shards and manifest).
    Fails at the end of the session if a test wrote into it."""
    from data_pipeline.synthetic import dataset as synthetic

    output = str(tmp_path_factory.mktemp("synthetic"))
    synthetic.generate(output, synthetic.SyntheticConfig(**SYNTHETIC), seed=0, log=lambda message: None)
    before = _snapshot(output)
    yield output
    assert _snapshot(output) == before, f"a test wrote into the shared synthetic set {output}"


@pytest.fixture(scope="session")
def tiny_run(synthetic_data, tmp_path_factory):
    """A workdir of TINY_RUN trained on `synthetic_data` through the Trainer, not yet evaluated
    by `evaluate_run`. A test that evaluates or trains in it works on a copy (shutil.copytree)."""
    from affnet.training import config as config_lib
    from affnet.training import loop

    workdir = str(tmp_path_factory.mktemp("tiny_run") / "run")
    loop.Trainer(config_lib.TrainConfig.from_flat(data=synthetic_data, workdir=workdir, **TINY_RUN),
                 log=lambda message: None).train()
    before = _snapshot(workdir)
    yield workdir
    assert _snapshot(workdir) == before, f"a test wrote into the shared run {workdir}"


@pytest.fixture(scope="session")
def released_export(tmp_path_factory):
    """Random weights of RELEASED saved as `.weights.h5` as `affnet.weights.convert` writes them,
    exported by `launch/export.py --weights`: (the model in memory, the export directory, the
    export command's CompletedProcess)."""
    import subprocess
    import sys

    from helpers import ROOT, random_weights, subprocess_env

    from affnet import models

    root = tmp_path_factory.mktemp("released")
    model = random_weights(models.build(RELEASED, **RELEASED_OVERRIDES))
    weights = str(root / "released.weights.h5")
    model.save_weights(weights)
    out = str(root / "export")
    overrides = ",".join(f"{key}={value}" for key, value in RELEASED_OVERRIDES.items())
    done = subprocess.run([sys.executable, os.path.join(ROOT, "launch", "export.py"), f"--model={RELEASED}",
                           f"--weights={weights}", f"--model_overrides={overrides}", f"--output={out}"],
                          cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    before = _snapshot(out)
    yield model, out, done
    assert _snapshot(out) == before, f"a test wrote into the shared export {out}"

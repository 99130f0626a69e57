"""Shared test settings: quiet TF, deterministic seeds, CPU only."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# predict's --precision=auto runs float32 in tests (CLI subprocesses inherit it): value-parity tests compare
# against float32 references and the oneDNN bfloat16 rewrite is process-wide. tests/predict/test_statistics.py
# runs auto as a user gets it.
os.environ.setdefault("AFFNET_AUTO_PRECISION", "float32")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(0)
    np.random.seed(0)

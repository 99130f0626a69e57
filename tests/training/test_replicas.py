"""Two replicas (two logical CPUs, MirroredStrategy) train as one device does: float16
steps skipped together when any replica overflows, and XLA with the global-batch CCC."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

HELPER = os.path.join(os.path.dirname(__file__), "replicas_run.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(scenario, workdir):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONPATH=ROOT)
    env.pop("TF_CONFIG", None)
    done = subprocess.run([sys.executable, HELPER, scenario, str(workdir)], env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def _assert_same_run(got, expected, tolerance):
    assert got["replicas"] == 2 and expected["replicas"] == 1
    np.testing.assert_allclose(got["losses"], expected["losses"], rtol=0, atol=tolerance)
    for w, w_expected in zip(got["weights"], expected["weights"]):
        np.testing.assert_allclose(np.array(w), np.array(w_expected), rtol=0, atol=tolerance)


@pytest.mark.slow
def test_float16_overflow_on_second_replica_skips_the_step_everywhere(tmp_path):
    result = _run("overflow", tmp_path)
    single, mirrored = result["default"], result["mirrored"]
    for run in (single, mirrored):
        assert all(np.isfinite(np.array(w)).all() for w in run["weights"])
        # One skipped step halved the initial 2^15.
        assert run["scale"] == 2.0 ** 14
    _assert_same_run(mirrored, single, 1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["none", "bfloat16", "float16"])
def test_xla_two_replicas_equal_one_device(tmp_path, precision):
    """jit_compile on two replicas (compiled forward, global CCC, compiled seeded backward)."""
    result = _run(f"xla_{precision}", tmp_path)
    single, mirrored = result["default"], result["mirrored"]
    assert np.isfinite(mirrored["losses"]).all()
    assert single["losses"][0] != single["losses"][-1]  # the weights moved
    _assert_same_run(mirrored, single, 1e-5)


def test_replicas_draw_their_own_dropout_masks(tmp_path):
    result = _run("dropout", tmp_path)
    (single,), (first, second) = result["single"], result["replicas"]
    assert first == single  # replica 0 draws what one device draws
    assert first != second
    # The seed states advanced once and agree again on both replicas.
    assert result["replica_state"][0][0] == result["replica_state"][0][1] == result["single_state"][0][0]


@pytest.mark.slow
def test_resume_on_two_replicas_with_xla_and_other_precisions(tmp_path):
    result = _run("resume", tmp_path)
    first, replicas, float16 = result["first"], result["replicas"], result["float16"]
    assert (first["step"], replicas["step"], float16["step"]) == (2, 4, 6)
    assert replicas["replicas"] == 2 and any("resumed from" in line and "at step 2" in line
                                             for line in replicas["log"])
    assert any("at step 4" in line for line in float16["log"])
    assert float16["scale"] == 2.0 ** 15  # a fresh loss scale, no overflow since
    losses = first["losses"] + replicas["losses"] + float16["losses"]
    assert len(losses) == 6 and np.isfinite(losses).all()

"""MirroredStrategy (2 logical CPUs) and MultiWorkerMirroredStrategy (2 local
worker processes) give the single-device losses: the CCC of the global batch
is formed from all-reduced statistics (affnet.training.objective)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

HELPER = os.path.join(os.path.dirname(__file__), "distributed_run.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONPATH=ROOT)
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _result(output):
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    assert lines, output[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


def _run(mode, workdir, cpus=1, loss="ccc"):
    done = subprocess.run([sys.executable, HELPER, mode, str(workdir), str(cpus), loss], env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return _result(done.stdout)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ccc", "sequence_ccc_median"])
def test_mirrored_two_cpus_matches_single_device(tmp_path, loss):
    single = _run("default", tmp_path / "single", loss=loss)
    mirrored = _run("mirrored", tmp_path / "mirrored", cpus=2, loss=loss)
    assert mirrored["replicas"] == 2
    assert len(single["losses"]) == 3
    np.testing.assert_allclose(mirrored["losses"], single["losses"], rtol=1e-4, atol=1e-5)
    # Training moved the loss: the comparison covers updated weights too.
    assert single["losses"][0] != single["losses"][-1]


@pytest.mark.slow
def test_multi_worker_two_processes_matches_single_device(tmp_path):
    single = _run("default", tmp_path / "single")
    workers = [f"localhost:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        processes.append(subprocess.Popen(
            [sys.executable, HELPER, "multi_worker", str(tmp_path / "multi")], env=_env(TF_CONFIG=tf_config),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
        outputs.append(_result(stdout))
    for result in outputs:
        assert result["replicas"] == 2
        np.testing.assert_allclose(result["losses"], single["losses"], rtol=1e-4, atol=1e-5)
    # Only the chief (worker 0) wrote checkpoints; the other's scratch dir is gone.
    assert os.path.exists(tmp_path / "multi" / "checkpoints" / "checkpoint")
    assert not os.path.exists(tmp_path / "multi" / "workers" / "worker_1")

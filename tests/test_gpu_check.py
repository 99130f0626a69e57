"""bench/gpu_check.py on the CPU (--tiny): the trainer's step timed under one
device and refused where the trainer refuses (XLA on two replicas), one JSON object."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_device_check_runs_tiny_on_two_logical_cpus():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONPATH=ROOT)
    command = [sys.executable, os.path.join(ROOT, "bench", "gpu_check.py"), "--tiny", "--allow_cpu", "--in_process",
               "--logical_cpus=2", "--steps=2", "--warmup=1", "--batch=2", "--seq_len=4",
               "--configs=affwildnet_vggface:none:noxla:default,affwildnet_vggface:float16:xla:mirrored"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["gpus"] == [] and report["tiny"]
    ran, two_replicas = report["results"]
    assert (ran["status"], ran["replicas"], ran["global_batch"]) == ("ok", 1, 2), ran
    assert ran["loss_finite"] and ran["frames_per_s"] > 0 and ran["peak_memory_gib"] == []
    # XLA on several replicas: compiled forward and backward around the all-reduced statistics.
    assert (two_replicas["status"], two_replicas["replicas"], two_replicas["xla"]) == ("ok", 2, True), two_replicas
    assert two_replicas["loss_finite"]
    assert report["all_losses_finite"]


def test_without_a_gpu_it_says_so_and_fails(capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", os.path.join(ROOT, "bench", "gpu_check.py"))
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)

    assert gpu_check.main([]) == 1  # The test process sees no GPU (conftest).
    assert "sees no GPU" in json.loads(capsys.readouterr().out)["error"]

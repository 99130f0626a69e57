"""tests/preloaded.py runs a command as a fresh `python` would: the same output, exit status and set-up,
from an interpreter that has TensorFlow imported already."""

import json
import os
import signal
import subprocess
import sys
import time

import preloaded
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE = os.path.join("tests", "preloaded_probe.py")


def _both(args, tmp_path):
    """(routed, fresh) CompletedProcess of the same command."""
    env = dict(os.environ, PROBE="value", PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    runs = [subprocess.run([sys.executable, *args], cwd=tmp_path, env=dict(env, **extra), capture_output=True,
                           text=True, timeout=120) for extra in ({}, {preloaded.FRESH: "1"})]
    return runs


@pytest.mark.parametrize("how, status", [("ok", 0), ("exit3", 3), ("message", 1), ("raise", 1),
                                         ("kill", -signal.SIGKILL)])
def test_a_routed_command_ends_and_prints_as_a_fresh_interpreter(tmp_path, how, status):
    routed, fresh = _both([os.path.join(ROOT, PROBE), how], tmp_path)
    assert routed.returncode == fresh.returncode == status, (routed.stderr, fresh.stderr)
    report, fresh_report = (json.loads(run.stdout.splitlines()[0]) for run in (routed, fresh))
    assert report.pop("tensorflow_imported") and not fresh_report.pop("tensorflow_imported")  # Routed: preloaded.
    assert report == fresh_report == {"argv": [os.path.join(ROOT, PROBE), how], "cwd": str(tmp_path),
                                      "probe": "value", "name": "__main__", "path0": os.path.join(ROOT, "tests"),
                                      "spec": None}
    # atexit handlers run on a normal end, not after SIGKILL.
    assert routed.stdout.splitlines()[1:] == fresh.stdout.splitlines()[1:]
    assert ("atexit ran" in routed.stdout) == (how != "kill")
    assert routed.stderr.splitlines()[0] == fresh.stderr.splitlines()[0] == "written to fd 2"
    assert routed.stderr.splitlines()[-1] == fresh.stderr.splitlines()[-1]  # "a message", "ValueError: raised"


def test_a_module_runs_as_python_m_runs_it(tmp_path):
    routed, fresh = _both(["-m", "tests.preloaded_probe", "ok"], ROOT)
    assert routed.returncode == fresh.returncode == 0, (routed.stderr, fresh.stderr)
    report, fresh_report = (json.loads(run.stdout.splitlines()[0]) for run in (routed, fresh))
    assert report.pop("tensorflow_imported") and not fresh_report.pop("tensorflow_imported")
    assert report == fresh_report and report["spec"] == "tests.preloaded_probe" and report["path0"] == ROOT


def test_popen_kill_and_a_new_session():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    process = preloaded.popen([sys.executable, "-c", "pass"], env=env)
    assert isinstance(process, subprocess.Popen) and process.wait(timeout=60) == 0  # `-c`: a fresh interpreter.
    process = preloaded.popen([sys.executable, os.path.join(ROOT, PROBE), "sleep"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    assert isinstance(process, preloaded.PreloadedProcess)
    deadline = time.monotonic() + 60  # The child calls setsid just after the fork that gave its pid.
    while os.getpgid(process.pid) != process.pid and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None and os.getpgid(process.pid) == process.pid  # Its own process group.
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL and process.poll() == -signal.SIGKILL

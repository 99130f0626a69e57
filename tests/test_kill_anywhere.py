"""Kill anywhere: each writing command (preprocess, the Aff-Wild2 adapter, export, predict), SIGKILLed (its
whole process group) at moments spread over its run and re-run with the same command, ends with the outputs
of an uninterrupted run, no temporary file, and the work finished before the kill not redone.

Moments are fractions of the uninterrupted run's wall time (commands whose run is mostly real work) or
the appearance of a given file (commands whose start-up, importing TensorFlow, is most of the run). The
checks hold whatever state the kill left, so the test does not depend on where exactly it landed; each
kill is asserted to have hit a running process. Compared: every file byte for byte, JSON files with
timing fields removed, the output folder's path replaced and a skipped entry's status read as the one
it had when made. Not compared: what differs between two uninterrupted runs too (`NONDETERMINISTIC`).

The Beam pipeline's kill test is tests/data_pipeline/test_beam_preprocess.py; predict's kill at an exact
moment (between a table and its plots) is tests/predict/test_predict_resume.py.
"""

import fnmatch
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from real_videos import moving_face_frames, write_abaw_release

from data_pipeline.media import decode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMING = {"seconds", "frames_per_second", "model_seconds", "workers"}
# Totals counting this run's work split by what it did: a resumed run skips what the killed one finished.
RUN_COUNTS = {"ok", "skipped"}
# Differ between two uninterrupted exports too: the zip's file times and a fresh uuid in the fingerprint.
NONDETERMINISTIC = {"model.keras", os.path.join("saved_model", "fingerprint.pb")}
TINY = {"width": 0.125, "input_size": 32, "fc_units": 16, "rnn_units": 8, "dropout": 0.0}


def _files(out):
    return sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)


def _normalise(value, key=""):
    if isinstance(value, dict):
        value = dict(value)
        if "previous_status" in value:
            value["status"] = value.pop("previous_status")
        drop = TIMING | (RUN_COUNTS if key == "totals" else set())
        return {k: _normalise(v, k) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def _contents(out):
    """{relative path: comparable contents} of an output folder."""
    found = {}
    for name in _files(out):
        if name in NONDETERMINISTIC:
            continue
        data = (out / name).read_bytes()
        if name.endswith(".json"):
            data = _normalise(json.loads(data.decode().replace(str(out), "<out>")))
        found[name] = data
    return found


def _run(command, out):
    env = dict(os.environ, PYTHONPATH=ROOT)
    start = time.monotonic()
    done = subprocess.run([sys.executable, *command, f"--output={out}"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    return done, time.monotonic() - start


def _kill(command, out, moment, deadline=300):
    """Start `command`, SIGKILL its process group at `moment` (seconds, or a glob a new file's relative path
    matches); return whether it was still running then."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    process = subprocess.Popen([sys.executable, *command, f"--output={out}"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    start = time.monotonic()
    try:
        while process.poll() is None and time.monotonic() - start < deadline:
            if isinstance(moment, float) and time.monotonic() - start >= moment:
                break
            if isinstance(moment, str) and out.exists() and fnmatch.filter(_files(out), moment):
                break
            time.sleep(0.01)
    finally:
        running = process.poll() is None
        if running:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return running


def _check_kills(command, out_root, moments, finished_glob=None):
    """Uninterrupted run, then per moment a killed run and its re-run; returns the kills that hit a running
    process. `finished_glob`: a unit of work's completion record (it and its unit are not rewritten)."""
    baseline = out_root / "uninterrupted"
    done, seconds = _run(command, baseline)
    assert done.returncode == 0, done.stderr
    want = _contents(baseline)
    hits = 0
    for k, moment in enumerate(moments):
        out = out_root / f"killed{k}"
        moment = moment * seconds if isinstance(moment, float) else moment
        hits += _kill(command, out, moment)
        finished = {name: (out / name).stat().st_mtime_ns
                    for name in (fnmatch.filter(_files(out), finished_glob) if finished_glob and out.exists() else [])}
        again, _ = _run(command, out)
        assert again.returncode == 0, (moment, again.stderr)
        assert _files(out) == _files(baseline), moment  # Nothing missing, no temporary, no lock.
        got = _contents(out)
        for name in want:
            assert got[name] == want[name], (moment, name)
        assert {name: (out / name).stat().st_mtime_ns for name in finished} == finished, moment  # Not redone.
    return hits


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    for k, name in enumerate(("a.mp4", "b.mp4", "c.mp4")):
        decode.write_video(str(root / name), moving_face_frames(12, shift=8 * k), fps=25)
    return root


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    import affnet.models

    path = str(tmp_path_factory.mktemp("weights") / "tiny.weights.h5")
    affnet.models.build("affwildnet_vggface", **TINY).save_weights(path)
    return path


def _export_command(weights):
    overrides = ",".join(f"{k}={v}" for k, v in TINY.items())
    return ["launch/export.py", "--model=affwildnet_vggface", f"--weights={weights}",
            f"--model_overrides={overrides}", "--seq_len=5"]


@pytest.mark.slow
def test_preprocess_killed_anywhere(videos, tmp_path):
    command = ["-m", "data_pipeline.preprocess", f"--input={videos}", "--workers=1", "--noprogress"]
    hits = _check_kills(command, tmp_path, [0.3, 0.6, 0.9], finished_glob="*.mp4.report.json")
    assert hits >= 2


@pytest.mark.slow
def test_adapter_killed_anywhere(tmp_path_factory, tmp_path):
    """The Aff-Wild2 adapter over a miniature release (3 videos, one with two people)."""
    abaw = write_abaw_release(tmp_path_factory.mktemp("abaw") / "release")
    command = ["-m", "data_pipeline.adapters", "affwild2", f"--root={abaw}", "--workers=1", "--noprogress"]
    hits = _check_kills(command, tmp_path, [0.5, 0.85], finished_glob="*/*.report.json")
    assert hits >= 1


@pytest.mark.slow
def test_export_and_predict_killed_anywhere(videos, weights, tmp_path):
    export = tmp_path / "export"
    # Export: killed once its SavedModel folder appears (mid-save), re-run; export.json is written last.
    assert _check_kills(_export_command(weights), export, ["saved_model/*"]) == 1
    model = export / "uninterrupted"
    # Predict: killed at its first table (before that input's plots and completion record) and at the
    # first completion record (one input finished, the others not).
    command = ["launch/predict.py", f"--input={videos}", f"--model={model}", "--noprogress"]
    assert _check_kills(command, tmp_path / "predict", ["*.csv", "*.done.json"], finished_glob="*.done.json") == 2

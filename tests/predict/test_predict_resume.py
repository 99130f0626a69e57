"""Predict over a folder, SIGKILLed midway and re-run: finished inputs skipped, the partial one redone,
outputs equal an uninterrupted run's, no temporary left; other options refused unless overwrite."""

import json
import os
import resource
import signal
import subprocess
import sys

import pytest

from affnet.predict import resume
from data_pipeline.base import atomic

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# launch/predict.py, SIGKILLed by a hook right after its 2nd table is renamed into place: before
# that input's plots and completion record, the state the moment of a real kill can leave.
KILLED_RUN = f"""
import os, runpy, signal, sys
from affnet.predict import outputs
write_table, written = outputs.write_table, []
def killing_write_table(*args, **kwargs):
    write_table(*args, **kwargs)
    written.append(args[1])
    if len(written) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
outputs.write_table = killing_write_table
sys.argv = ["predict.py"] + sys.argv[1:]
runpy.run_path({os.path.join(ROOT, "launch", "predict.py")!r}, run_name="__main__")
"""


def _files(out):
    return sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)


def _without_times(summary):
    timing = ("seconds", "frames_per_second", "model_seconds")
    drop = lambda d: {k: v for k, v in d.items() if k not in timing}  # noqa: E731
    return {**summary, "inputs": [drop(e) for e in summary["inputs"]], "totals": drop(summary["totals"])}


@pytest.fixture(scope="module")
def predictor(exports):
    import affnet

    return affnet.Predictor(exports["va"], progress=False)  # launch/predict.py's defaults.


@pytest.fixture(scope="module")
def uninterrupted(predictor, media, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    predictor.run([str(media)], str(out))
    return out


def test_killed_run_resumes_skipping_finished_inputs(predictor, exports, media, uninterrupted, tmp_path):
    out = tmp_path / "out"
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, f"--input={media}", f"--model={exports['va']}",
                             f"--output={out}", "--noprogress"],
                            env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=600,
                            start_new_session=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # Inputs in order empty.mp4, still.png, sub/talk.mp4: the first finished, the second a table alone.
    assert _files(out) == [".affnet.lock", "empty.csv", "empty.done.json", "empty_va.png", "empty_va_hist.png",
                           "still.csv"]
    finished_at = os.stat(out / "empty.csv").st_mtime_ns

    summary = predictor.run([str(media)], str(out))
    assert {os.path.basename(e["input"]): e["status"] for e in summary["inputs"]} == {
        "empty.mp4": "skipped", "still.png": "ok", "talk.mp4": "ok"}
    assert summary["totals"]["skipped"] == 1 and summary["totals"]["ok"] == 2
    assert os.stat(out / "empty.csv").st_mtime_ns == finished_at  # Not redone.
    assert _files(out) == _files(uninterrupted)  # No temporary, no lock, nothing missing.
    for name in _files(out):
        if name.endswith((".csv", ".png")):
            assert (out / name).read_bytes() == (uninterrupted / name).read_bytes(), name
    got, want = (json.loads((d / "summary.json").read_text()) for d in (out, uninterrupted))
    for entry in got["inputs"]:
        entry["status"] = entry.pop("previous_status", entry["status"])
    got, want = _without_times(got), _without_times(want)
    assert [{k: v for k, v in e.items() if k not in resume.OUTPUT_KEYS} for e in got["inputs"]] == \
        [{k: v for k, v in e.items() if k not in resume.OUTPUT_KEYS} for e in want["inputs"]]

    # Everything finished: the same command redoes nothing and succeeds.
    again = subprocess.run([sys.executable, os.path.join(ROOT, "launch", "predict.py"), f"--input={media}",
                            f"--model={exports['va']}", f"--output={out}", "--noprogress"],
                           env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    totals = json.loads((out / "summary.json").read_text())["totals"]
    assert totals["skipped"] == 3 and totals["frames"] == summary["totals"]["frames"]


def test_other_options_refused_unless_overwrite(exports, media, uninterrupted, tmp_path):
    import affnet

    out = tmp_path / "out"
    still = str(media / "still.png")
    affnet.Predictor(exports["va"], progress=False).run([still], str(out), plots=False)
    other = affnet.Predictor(exports["va"], progress=False, postprocess="none")
    with pytest.raises(ValueError, match=r"1 input\(s\) .* other options \(--postprocess 'auto' -> 'none'; "
                                         r"e\.g\. .*still\.done\.json\).*--overwrite"):
        other.run([still], str(out), plots=False)
    summary = other.run([still], str(out), plots=False, overwrite=True)
    assert summary["inputs"][0]["status"] == "ok"
    assert json.loads((out / "still.done.json").read_text())["options"]["postprocess"] == "none"


def test_disk_full_mid_plot_names_the_file_and_the_run_resumes(predictor, media, uninterrupted, tmp_path):
    """Files cannot grow past 8 KiB (RLIMIT_FSIZE, SIGXFSZ ignored: write() fails with EFBIG as on a full
    disk): the tables fit, the first plot does not."""
    out = tmp_path / "out"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (8 << 10, hard))
    try:
        with pytest.raises(atomic.StorageError, match=r"File too large: '.*empty_va\.png'"):
            predictor.run([str(media)], str(out))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert _files(out) == ["empty.csv"]  # No temporary, no completion record: nothing looks finished.
    summary = predictor.run([str(media)], str(out))  # Space is back.
    assert summary["totals"]["ok"] == 3 and _files(out) == _files(uninterrupted)

"""Kill anywhere: each writing command (preprocess, the Aff-Wild2 adapter, export, predict, train, evaluate,
fuse, convert), SIGKILLed (its whole process group) at moments spread over its run and re-run with the same
command, ends with the outputs of an uninterrupted run, no temporary file, and the work finished before the
kill not redone.

Moments are the appearance of a given file (export and predict: their start-up, importing TensorFlow, is
most of the run, and each such file is followed by seconds of work), or a hook inside the command
(`tests/kill_hook.py`: the process kills itself at an exact write of `data_pipeline.base.atomic`, with a
temporary written and not yet renamed, or just after the rename; for commands whose few writes come in a
burst at the end). The
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

import preloaded
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
# Runs a command that SIGKILLs itself at an exact atomic write (tests/kill_hook.py).
HOOK = os.path.join(ROOT, "tests", "kill_hook.py")


def _files(out):
    return sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)


def _arrays(data):
    """An NPZ's arrays, comparable: the zip's member times differ between two identical writes."""
    import io

    import numpy as np

    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return {k: (arrays[k].dtype.str, arrays[k].shape, arrays[k].tobytes()) for k in arrays.files}


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
        elif name.endswith(".npz"):
            data = _arrays(data)
        found[name] = data
    return found


def _arguments(command, out):
    """`command` writing to `out`: its "{out}" arguments filled in, or `--output=out` added."""
    if any("{out}" in argument for argument in command):
        return [argument.replace("{out}", str(out)) for argument in command]
    return [*command, f"--output={out}"]


def _run(command, out):
    env = dict(os.environ, PYTHONPATH=ROOT)
    start = time.monotonic()
    done = subprocess.run([sys.executable, *_arguments(command, out)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    return done, time.monotonic() - start


def _kill(command, out, moment, deadline=300):
    """Start `command`, SIGKILL its process group at `moment` (a glob a new file's relative path matches,
    or a hook's (stage, glob, count)); return whether it was still running then."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    hook = [HOOK, *map(str, moment)] if isinstance(moment, tuple) else []
    process = preloaded.popen([sys.executable, *hook, *_arguments(command, out)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    start = time.monotonic()
    try:
        while process.poll() is None and time.monotonic() - start < deadline:
            if isinstance(moment, str) and out.exists() and fnmatch.filter(_files(out), moment):
                break
            time.sleep(0.01)
    finally:
        running = process.poll() is None
        if running:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return running or process.returncode == -signal.SIGKILL  # A hook's kill ends the process itself.


def _check_kills(command, out_root, moments, finished_glob=None):
    """Uninterrupted run, then per moment a killed run and its re-run; returns the kills that hit a running
    process. `finished_glob`: a unit of work's completion record (it and its unit are not rewritten)."""
    baseline = out_root / "uninterrupted"
    done, _ = _run(command, baseline)
    assert done.returncode == 0, done.stderr
    want = _contents(baseline)
    hits = 0
    for k, moment in enumerate(moments):
        out = out_root / f"killed{k}"
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
    """Three inputs: killed with the first side report's temporary written (its shard renamed: the state a kill
    between the two renames leaves), just after the second side report, and at the run's report.json."""
    command = ["-m", "data_pipeline.preprocess", f"--input={videos}", "--workers=1", "--noprogress"]
    moments = [("write", "*.mp4.report.json", 1), ("rename", "*.mp4.report.json", 2), ("write", "report.json", 1)]
    assert _check_kills(command, tmp_path, moments, finished_glob="*.mp4.report.json") == 3


@pytest.mark.slow
def test_adapter_killed_anywhere(tmp_path_factory, tmp_path):
    """The Aff-Wild2 adapter over a miniature release (3 videos, one with two people)."""
    abaw = write_abaw_release(tmp_path_factory.mktemp("abaw") / "release")
    command = ["-m", "data_pipeline.adapters", "affwild2", f"--root={abaw}", "--workers=1", "--noprogress"]
    moments = [("write", "*.report.json", 1), ("rename", "*.report.json", 2), ("write", "manifest.json", 1)]
    assert _check_kills(command, tmp_path, moments, finished_glob="*/*.report.json") == 3


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


@pytest.fixture(scope="module")
def synthetic_data(tmp_path_factory):
    from data_pipeline.synthetic import dataset as synthetic

    data = str(tmp_path_factory.mktemp("synthetic") / "data")
    synthetic.generate(data, synthetic.SyntheticConfig(subjects=3, videos_per_subject=1, frames_per_video=24,
                                                       crop_size=32, split_fractions=(1 / 3, 1 / 3, 1 / 3)))
    return data


def _train_command(data):
    return ["launch/train.py", f"--flagfile={os.path.join(ROOT, 'affnet', 'configs', 'demo.flags')}",
            f"--data={data}", "--workdir={out}", "--model_overrides=width=0.0625,input_size=32,fc_units=16,rnn_units=8",
            "--seq_len=8", "--batch_size=2", "--lr_decay_steps=0", "--train_steps=6", "--eval_every=2",
            "--checkpoint_every=2", "--log_every=2"]


def _trained_files(workdir):
    """A workdir's files but TensorBoard's: an event file is an append-only log named by its start time,
    and a resumed run opens one of its own."""
    return [name for name in _files(workdir) if ".tfevents." not in name]


@pytest.mark.slow
def test_train_evaluate_and_fuse_killed_anywhere(synthetic_data, tmp_path):
    """Train (6 steps, checkpoints and evaluations every 2), evaluate its run, fuse two of the prediction files."""
    command = _train_command(synthetic_data)
    baseline = tmp_path / "train" / "uninterrupted"
    done, _ = _run(command, baseline)
    assert done.returncode == 0, done.stderr
    steps = lambda workdir: [json.loads(line)["step"] for line in (workdir / "eval_history.json").open()]  # noqa
    assert steps(baseline) == [2, 4, 6]
    # Train: killed mid-write of step 4's evaluation history, before its checkpoint: the rerun resumes from
    # ckpt-2, redoes steps 3-4 and their evaluation. Trained weights are not compared: CPU kernels do not
    # promise the same bits from a resumed run.
    out = tmp_path / "train" / "killed"
    assert _kill(command, out, ("write", "eval_history.json", 2))
    assert not (out / "checkpoints" / "ckpt-4.index").exists()
    again, _ = _run(command, out)
    assert again.returncode == 0, again.stderr
    assert f"resumed from {out / 'checkpoints' / 'ckpt-2'} at step 2" in again.stdout + again.stderr
    assert _trained_files(out) == _trained_files(baseline)  # Same step, same files, no temporary.
    assert steps(out) == [2, 4, 6] and json.loads((out / "flags.json").read_text()) == json.loads(
        (baseline / "flags.json").read_text().replace(str(baseline), str(out)))

    # Evaluate the uninterrupted run: killed with the raw predictions' temporary written (the filtered
    # ones finished), and just after its result JSON, the completion record (the rerun skips it all).
    evaluate = ["launch/evaluate.py", f"--workdir={baseline}", "--output={out}/eval_test.json"]
    assert _check_kills(evaluate, tmp_path / "evaluate", [("write", "*_raw.npz", 1), ("rename", "eval_test.json", 1)],
                        finished_glob="eval_test.json") == 2
    predictions = tmp_path / "evaluate" / "uninterrupted"
    assert _files(predictions) == ["eval_test.json", "eval_test_videos.png", "predictions_test.npz",
                                   "predictions_test_raw.npz"]
    # Fuse the filtered and the raw predictions: killed after the fused file, before its report.
    fuse = ["launch/fuse.py", "--level=frame", "--validation_ccc=0.5:0.4,0.3:0.2", "--output={out}/fused.csv",
            f"--predictions={predictions / 'predictions_test.npz'},{predictions / 'predictions_test_raw.npz'}"]
    assert _check_kills(fuse, tmp_path / "fuse", [("rename", "fused.csv", 1)]) == 1


@pytest.mark.slow
def test_convert_killed_anywhere(tmp_path):
    """Released TF1 weights into a .weights.h5 file, killed with its temporary written, before the rename."""
    import numpy as np

    import tf1_reference as ref

    images = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    _, released = ref.run_and_save(ref.vggface_cnn, images, tmp_path / "released" / "model.ckpt", fc_units=(48, 20),
                                   width=0.125)
    command = ["-m", "affnet.weights.convert", "--format=tf1", f"--checkpoint={released}",
               "--model=vggface_4096x2000x2", "--output={out}/vggface.weights.h5", "--set", "input_size=32",
               "--set", "width=0.125", "--set", "fc_units=(48, 20)"]
    assert _check_kills(command, tmp_path / "convert", [("write", "vggface.weights.h5", 1)]) == 1

"""The README's command blocks run as written, so they cannot rot.

Each test takes a fenced block from a README, substitutes only paths (the dataset root, the clip, the
folder of videos, the flagfile, whose copy shrinks the model and the step counts to test size) and runs
every `python ...` line in a scratch directory, then checks what the next stage needs was written.
"""

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
from real_videos import FRAMES, write_abaw_release

from affnet import configs
from data_pipeline.records import schema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_SIZE = ["--model_overrides=width=0.0625,input_size=32,fc_units=16,rnn_units=8", "--seq_len=8", "--batch_size=2",
             "--train_steps=4", "--eval_every=2", "--checkpoint_every=2", "--log_every=1"]


def code_block(readme: str, heading: str):
    """The lines of the first fenced block after the Markdown heading `heading`."""
    with open(os.path.join(ROOT, readme)) as f:
        text = f.read()
    start = text.index(heading)
    match = re.search(r"```[a-z]*\n(.*?)```", text[start:], re.S)
    return match.group(1).splitlines()


def python_commands(lines):
    """Each `python ...` line as argv (comments dropped, backslash continuations joined)."""
    joined = "\n".join(lines).replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        line = line.split("  #")[0].strip()
        if line.startswith("python "):
            commands.append(shlex.split(line)[1:])
    return commands


def run_commands(commands, substitutions, cwd):
    outputs = []
    for argv in commands:
        argv = [substitutions.get(token, token) for token in argv]
        argv = [_substitute_value(token, substitutions) for token in argv]
        if argv[0].startswith("launch/"):
            argv[0] = os.path.join(ROOT, argv[0])
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
        env.pop("TF_CONFIG", None)
        done = subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-4000:])
        outputs.append(done.stdout)
    return outputs


def _substitute_value(token, substitutions):
    """`--flag=PATH` with PATH substituted."""
    name, sep, value = token.partition("=")
    if sep and value in substitutions:
        return f"{name}={substitutions[value]}"
    return token


def _test_size_flagfile(directory, name):
    """Copies of `name` and the flagfiles it nests, with the test-size settings appended to `name`."""
    for flagfile in ("common.flags", name):
        shutil.copy(configs.path(flagfile), directory / flagfile)
    with open(directory / name, "a") as f:
        f.write("\n".join(["# Test size (tests/test_readme_commands.py)."] + TEST_SIZE) + "\n")
    return name


@pytest.mark.slow
def test_from_videos_to_a_trained_exported_model(tmp_path):
    release = write_abaw_release(tmp_path / "release")
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(release / "batch1" / "vid_val.mp4", videos / "clip.mp4")
    work = tmp_path / "work"
    work.mkdir()
    substitutions = {"~/datasets/Aff-Wild2": str(release), "clip.mp4": str(videos / "clip.mp4"),
                     "VIDEOS/": str(videos), "affwild2.flags": _test_size_flagfile(work, "affwild2.flags")}
    commands = python_commands(code_block("README.md", "## From videos to a trained, exported model"))
    assert [c[0] for c in commands][:6] == ["-m", "launch/train.py", "launch/evaluate.py", "launch/export.py",
                                            "launch/predict.py", "-m"]
    run_commands(commands, substitutions, work)

    assert len(schema.list_shards(str(work / "data" / "affwild2" / "train"))) == 2
    assert json.load(open(work / "runs" / "affwild2" / "eval_validation.json"))["split"] == "validation"
    with open(work / "predictions" / "clip.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == FRAMES and sum(r["valence"] not in ("", "nan") for r in rows) == FRAMES - 1
    assert len(schema.list_shards(str(work / "data" / "mine" / "unlabelled"))) == 1


@pytest.mark.slow
def test_checkpoints_readme_three_commands(tmp_path):
    """checkpoints/README.md: a released TF1 checkpoint -> convert -> export -> predict -> per-frame CSV.

    The checkpoint is the authors' graph (`tests/weights/tf1_reference.py`, tf.compat.v1) at 1/16 width, saved in
    the released folder layout; the test-size overrides are appended to the convert and export lines."""
    import numpy as np
    import tf1_reference

    release = write_abaw_release(tmp_path / "release")
    work = tmp_path / "work"
    (work / "checkpoints").mkdir(parents=True)
    folder = work / "affwildnet-vggface-gru"
    tf1_reference.run_and_save(tf1_reference.affwildnet_vggface_gru, np.zeros((1, 2, 96, 96, 3), np.float32),
                               folder / "model.ckpt-1000", fc_units=16, width=1 / 16, units=8)
    size = {"width": 1 / 16, "fc_units": 16, "rnn_units": 8}
    test_size = {"affnet.weights.convert": [f"--set={k}={v}" for k, v in size.items()],
                 "launch/export.py": ["--model_overrides=" + ",".join(f"{k}={v}" for k, v in size.items())]}
    commands = python_commands(code_block("checkpoints/README.md", "## From a downloaded checkpoint to a per-frame CSV"))
    assert [c[0] if c[0] != "-m" else c[1] for c in commands] == ["affnet.weights.convert", "launch/export.py",
                                                                  "launch/predict.py"]
    commands = [c + test_size.get(c[0] if c[0] != "-m" else c[1], []) for c in commands]
    run_commands(commands, {"affwildnet-vggface-gru/": str(folder) + "/",
                            "clip.mp4": str(release / "batch1" / "vid_val.mp4")}, work)

    info = json.load(open(work / "exports" / "affwildnet_vggface_gru" / "export.json"))
    assert info["input_normalization"] == "tf1" and info["source"] == "weights"
    with open(work / "predictions" / "vid_val.csv") as f:
        rows = list(csv.DictReader(f))
    values = [float(r["valence"]) for r in rows if r["valence"] not in ("", "nan")]
    assert len(rows) == FRAMES and len(values) == FRAMES - 1 and all(np.isfinite(values))

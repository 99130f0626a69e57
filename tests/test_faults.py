"""Fault injection through the command line (issue 15): each trial runs the CLI as a user would,
then checks the message, the exit code and that nothing made before is lost."""

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from skimage import data as skimage_data

from data_pipeline.media import decode
from data_pipeline.records import schema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TF_NOISE = ("oneDNN", "cpu_feature_guard", "absl::InitializeLog", "To enable the following instructions")


def run(*args, timeout=600):
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # The CLIs must silence TensorFlow themselves.
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env=env)


def assert_user_error(result, *fragments):
    """Exit 2, exactly one stderr line `error: ...` holding every fragment, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def face():
    return np.ascontiguousarray(skimage_data.astronaut()[40:240, 130:320])


def write_png(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


# ---------------------------------------------------------------- --help and user mistakes

HELP = [["launch/train.py"], ["launch/evaluate.py"], ["launch/export.py"], ["launch/predict.py"],
        ["launch/fuse.py"], ["launch/demo.py"], ["-m", "data_pipeline.preprocess"],
        ["-m", "data_pipeline.adapters"], ["-m", "data_pipeline.adapters", "affwild2"],
        ["-m", "affnet.weights.convert"]]


@pytest.mark.parametrize("command", HELP, ids=lambda c: " ".join(c))
def test_help_exits_zero_quiet_and_without_tensorflow(command):
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower() or "flags" in result.stdout.lower()
    assert not any(noise in result.stderr for noise in TF_NOISE), result.stderr
    # Fast: TensorFlow (5-16 s to import here) is never loaded for --help (timings: bench/cli_help.py).
    traced = run("-X", "importtime", *command, "--help")
    imported = {line.split("|")[-1].strip() for line in traced.stderr.splitlines() if "|" in line}
    assert traced.returncode == 0 and "tensorflow" not in imported and "keras" not in imported


def test_user_mistakes_exit_2_in_one_line(tmp_path):
    missing = str(tmp_path / "missing")
    assert_user_error(run("launch/evaluate.py", f"--workdir={missing}"), "flags.json")
    assert_user_error(run("launch/export.py", f"--workdir={missing}"), "flags.json")
    assert_user_error(run("launch/train.py", "--seq_len=abc"), "--seq_len")
    assert_user_error(run("launch/train.py", "--no_such_flag=1"), "no_such_flag")
    assert_user_error(run("launch/fuse.py"), "--predictions")
    assert_user_error(run("launch/predict.py", f"--input={missing}.mp4", f"--model={missing}",
                          f"--output={tmp_path}/p"), "missing")  # The export or the input, whichever is checked first.
    assert_user_error(run("-m", "data_pipeline.preprocess", "--input", missing), "--output")
    assert_user_error(run("-m", "data_pipeline.preprocess", "--input", missing, "--output", str(tmp_path / "o"),
                          "--upsample", "-2"), "upsample")  # -1 is automatic upsampling.
    assert_user_error(run("-m", "data_pipeline.adapters", "affwild2", "--root", missing, "--output",
                          str(tmp_path / "o")), "no such folder")
    assert_user_error(run("-m", "affnet.weights.convert", "--format", "tf1"), "required")


def test_empty_input_folder_is_one_line_exit_2(tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "notes.txt").write_text("not a video")
    result = run("-m", "data_pipeline.preprocess", "--input", str(tmp_path / "videos"), "--output",
                 str(tmp_path / "out"))
    assert_user_error(result, "no video or image files")
    assert not (tmp_path / "out").exists()  # Nothing written.


# ---------------------------------------------------------------- preprocess reruns


def _preprocess(inputs, output, *options):
    return run("-m", "data_pipeline.preprocess", "--input", str(inputs), "--output", str(output), "--workers", "1",
               "--fps", "0", *options)


def test_rerun_with_other_options_is_refused_and_keeps_outputs(tmp_path, face):
    write_png(tmp_path / "in" / "a.png", face)
    write_png(tmp_path / "in" / "b.png", face[:, ::-1])
    out = tmp_path / "out"
    first = _preprocess(tmp_path / "in", out, "--upsample", "0")
    assert first.returncode == 0, first.stderr
    output = out / "a.png.tfrecord"
    made = output.read_bytes()
    assert json.loads((out / "a.png.report.json").read_text())["options"]["upsample"] == 0

    refused = _preprocess(tmp_path / "in", out, "--upsample", "1")
    assert_user_error(refused, "2 output(s) were made with other options", "--upsample 0 -> 1", "--overwrite")
    assert output.read_bytes() == made  # The earlier output is untouched and still reads.
    (record,) = schema.read_videos(str(output))
    assert record[1][schema.IMAGE].shape[0] == 1
    assert json.loads((out / "report.json").read_text())["options"]["upsample"] == 0

    redone = _preprocess(tmp_path / "in", out, "--upsample", "1", "--overwrite")
    assert redone.returncode == 0, redone.stderr
    report = json.loads((out / "report.json").read_text())
    assert [e["status"] for e in report["inputs"]] == ["ok", "ok"]
    assert json.loads((out / "a.png.report.json").read_text())["options"]["upsample"] == 1


def test_subset_rerun_keeps_the_other_inputs_report_entries(tmp_path, face):
    write_png(tmp_path / "in" / "a.png", face)
    write_png(tmp_path / "in" / "b.png", face[:, ::-1])
    out = tmp_path / "out"
    assert _preprocess(tmp_path / "in", out).returncode == 0
    os.remove(out / "b.png.tfrecord")  # b is redone by the subset run
    again = _preprocess(tmp_path / "in" / "b.png", out)
    assert again.returncode == 0, again.stderr
    report = json.loads((out / "report.json").read_text())
    entries = {os.path.basename(e["input"]): e for e in report["inputs"]}
    assert set(entries) == {"a.png", "b.png"}
    assert entries["a.png"]["status"] == "ok" and entries["a.png"]["frames_written"] == 1
    assert entries["b.png"]["status"] == "ok"
    assert report["totals"]["inputs"] == 1  # Totals are this run's.


def test_truncated_mkv_keeps_its_first_frames(tmp_path, face):
    frames = []
    for k in range(40):
        frame = np.full((240, 320, 3), 90, np.uint8)
        frame[20:220, 10 + k:200 + k] = face
        frames.append(frame)
    full = tmp_path / "full.mkv"
    decode.write_video(str(full), frames, fps=25)
    data = full.read_bytes()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cut.mkv").write_bytes(data[:len(data) * 3 // 4])  # The key frame is the first third.
    result = _preprocess(tmp_path / "in", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads((tmp_path / "out" / "report.json").read_text())["inputs"]
    assert entry["status"] == "truncated", entry
    assert 0 < entry["frames_written"] < 40 and entry["frames_decoded"] == entry["truncation"][
        "source_frames_decoded"]
    (record,) = schema.read_videos(str(tmp_path / "out" / "cut.mkv.tfrecord"))
    assert record[1][schema.IMAGE].shape[0] == entry["frames_written"]


# ---------------------------------------------------------------- Aff-Wild2 labels


def _affwild2(root, frames_per_video):
    crop = cv2.resize(np.ascontiguousarray(skimage_data.astronaut()[40:240, 140:340]), (112, 112))
    for name, count in frames_per_video.items():
        for k in range(count):
            write_png(root / "cropped_aligned" / name / f"{k + 1:05d}.jpg", crop)


def _labels(root, name, rows):
    path = root / "annotations" / "VA_Set" / "Train_Set" / f"{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("valence,arousal\n" + "".join(f"{r}\n" for r in rows))


def test_label_faults_fail_one_video_each(tmp_path):
    root = tmp_path / "aw2"
    _affwild2(root, {"good": 30, "typo": 30, "short": 30, "nans": 30})
    _labels(root, "good", ["0.1,0.2"] * 30)
    _labels(root, "typo", ["0.1,0.2"] * 3 + ["0.1,abc"] + ["0.1,0.2"] * 26)
    _labels(root, "short", ["0.1,0.2"] * 10)  # 20 lines short
    _labels(root, "nans", ["0.1,0.2"] * 27 + ["nan,nan"] * 3)
    out = tmp_path / "out"
    command = ["-m", "data_pipeline.adapters", "affwild2", "--root", str(root), "--output", str(out),
               "--landmarks", "none"]
    result = run(*command)
    assert result.returncode == 0, result.stderr
    videos = {v["video_id"]: v for v in json.loads((out / "manifest.json").read_text())["videos"]}
    assert videos["good"]["status"] == "ok" and videos["good"]["frames_written"] == 30
    assert videos["typo"]["status"] == "failed"
    assert "typo.txt:5: not a number in '0.1,abc'" in videos["typo"]["error"]
    assert videos["short"]["status"] == "failed"
    assert "short.txt: 10 label rows for the 30 frames" in videos["short"]["error"]
    assert "--max_label_gap 15" in videos["short"]["error"]
    assert videos["short"]["frames_without_label_row"] == 20
    assert videos["nans"]["status"] == "ok" and videos["nans"]["va_nan_frames"] == 3
    assert "typo.txt:5" in result.stderr and "short.txt" in result.stderr  # Named in the progress lines.
    good = (out / "train" / "good.tfrecord").read_bytes()

    _labels(root, "typo", ["0.1,0.2"] * 30)  # Fixed; the short file accepted with a wider gap.
    again = run(*command, "--max_label_gap", "20")
    assert again.returncode == 0, again.stderr
    videos = {v["video_id"]: v for v in json.loads((out / "manifest.json").read_text())["videos"]}
    assert videos["typo"]["status"] == "ok" and videos["short"]["status"] == "ok"
    assert videos["short"]["frames_without_label_row"] == 20 and videos["short"]["label_rows"] == 10
    assert videos["good"]["status"] == "skipped"
    assert (out / "train" / "good.tfrecord").read_bytes() == good


# ---------------------------------------------------------------- corrupt shards

TINY = ["--model=affwildnet_vggface", "--model_overrides=width=0.0625,input_size=32,fc_units=16,rnn_units=8",
        "--seq_len=4", "--batch_size=2", "--eval_batch_size=2", "--train_steps=2", "--eval_every=2",
        "--checkpoint_every=2", "--log_every=1", "--lr_decay_steps=0"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    from data_pipeline.synthetic import dataset as synthetic

    root = tmp_path_factory.mktemp("synthetic")
    synthetic.generate(str(root), synthetic.SyntheticConfig(subjects=3, videos_per_subject=2,
                                                            frames_per_video=12, videos_per_shard=1), seed=0)
    return root


def _corrupted(shards, tmp_path, damage):
    data = tmp_path / "data"
    shutil.copytree(shards, data)
    victim = sorted((data / "train").glob("*.tfrecord*"))[-1]
    damage(victim)
    return data, victim


def _flip_byte(path):
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def _truncate(path):
    raw = path.read_bytes()
    path.write_bytes(raw[:len(raw) - 100])


def _foreign(path):
    import tensorflow as tf

    example = tf.train.Example(features=tf.train.Features(feature={
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[1]))}))
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(example.SerializeToString())


@pytest.mark.slow
@pytest.mark.parametrize("damage, expected", [(_flip_byte, "record 0: "), (_truncate, "record 0: "),
                                              (_foreign, "not an affnet SequenceExample")],
                         ids=["flipped_byte", "truncated", "foreign_records"])
def test_bad_shard_is_named_in_one_line(shards, tmp_path, damage, expected):
    data, victim = _corrupted(shards, tmp_path, damage)
    if damage is _foreign:
        victim = victim.with_suffix(".tfrecord")
    result = run("launch/train.py", *TINY, f"--data={data}", f"--workdir={tmp_path / 'run'}")
    assert_user_error(result, str(victim), expected, "--skip_corrupt_shards")


@pytest.mark.slow
def test_skip_corrupt_shards_trains_on_the_rest(shards, tmp_path):
    data, victim = _corrupted(shards, tmp_path, _flip_byte)
    stopped = run("launch/train.py", *TINY, f"--data={data}", f"--workdir={tmp_path / 'run'}")
    assert_user_error(stopped, str(victim))
    # The same workdir resumes with the flag: skipping shards is not another configuration.
    result = run("launch/train.py", *TINY, f"--data={data}", f"--workdir={tmp_path / 'run'}",
                 "--skip_corrupt_shards")
    assert result.returncode == 0, result.stderr
    assert "skip_corrupt_shards: 1 shard(s) left out" in result.stdout + result.stderr
    assert str(victim) in result.stdout + result.stderr
    assert (tmp_path / "run" / "checkpoints").is_dir()
    assert _scalar(tmp_path / "run" / "train", "skipped_corrupt_shards") == 1.0  # The count in TensorBoard.


def _scalar(log_dir, tag):
    import tensorflow as tf

    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    return float(tf.make_ndarray(value.tensor))
    return None

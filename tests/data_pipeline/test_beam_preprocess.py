"""The Beam pipeline against the local tool: same shards, same report, exactly once after a kill."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf
from apache_beam.io import filesystem
from real_videos import moving_face_frames

from data_pipeline import beam_preprocess
from data_pipeline import preprocess as preprocess_cli
from data_pipeline.media import decode
from data_pipeline.records import schema

GOOD = ("a.mp4", "sub/b.mp4", "sub/c.mp4")
BAD = "notes.mp4"
IN_MEMORY = ["--direct_running_mode=in_memory"]


def _frames(count, shift):
    """A real face (skimage's astronaut) pasted on a grey 320x240 frame, moving 6 px per frame."""
    return moving_face_frames(count, shift=shift)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    (root / "sub").mkdir()
    for k, name in enumerate(GOOD):
        decode.write_video(str(root / name), _frames(12, 8 * k), fps=25)
    (root / BAD).write_text("not a video")
    return root


@pytest.fixture(scope="module")
def local_run(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    assert preprocess_cli.main(["--input", str(inputs), "--output", str(out), "--workers", "1"]) == 0
    return out


@pytest.fixture(scope="module")
def beam_run(inputs, tmp_path_factory):
    """DirectRunner in its default mode here: 2 worker processes."""
    out = tmp_path_factory.mktemp("beam")
    assert beam_preprocess.main(["--input", str(inputs), "--output", str(out), "--workers", "2"]) == 0
    return out


def _records(path):
    return [tf.train.SequenceExample.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(path))]


def _comparable(report, out):
    """A report without what differs between two runs of the same work (times, worker count, output folder)."""
    entries = [{**{k: v for k, v in e.items() if k != "seconds"}, "output": os.path.relpath(e["output"], out)}
               for e in report["inputs"]]
    totals = {k: v for k, v in report["totals"].items() if k not in ("seconds", "frames_per_second", "workers")}
    return {**report, "inputs": entries, "totals": totals}


def _assert_same_shards(out, expected):
    for name in GOOD:
        got, want = _records(out / (name + ".tfrecord")), _records(expected / (name + ".tfrecord"))
        assert len(got) == len(want) == 1
        assert got == want, name
        # Byte-identical too: both serialise deterministically.
        assert (out / (name + ".tfrecord")).read_bytes() == (expected / (name + ".tfrecord")).read_bytes()


def _files(out):
    return sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)


EXPECTED_FILES = sorted(["report.json"] + [n + ".tfrecord" for n in GOOD] + [n + ".report.json" for n in GOOD])


@pytest.mark.slow
def test_multiprocessing_shards_and_report_equal_the_local_tool(beam_run, local_run):
    _assert_same_shards(beam_run, local_run)
    beam_report = json.loads((beam_run / "report.json").read_text())
    local_report = json.loads((local_run / "report.json").read_text())
    assert _comparable(beam_report, beam_run) == _comparable(local_report, local_run)
    assert beam_report["totals"]["workers"] == 2
    by_input = {os.path.basename(e["input"]): e for e in beam_report["inputs"]}
    assert by_input[BAD]["status"] == "failed" and BAD in by_input[BAD]["error"]
    assert beam_report["totals"]["ok"] == 3 and beam_report["totals"]["frames_written"] == 3 * 15  # 12 @25 -> 15 @30.
    assert _files(beam_run) == EXPECTED_FILES


def test_in_process_runner_and_a_glob_give_the_same_shards(inputs, local_run, tmp_path, caplog):
    out = tmp_path / "out"
    with caplog.at_level(logging.INFO):
        code = beam_preprocess.main(["--input", str(inputs / "sub" / "*.mp4"), "--output", str(out), *IN_MEMORY])
    assert code == 0
    assert "Prism" not in caplog.text  # The DirectRunner's first try, which downloads a binary, is bypassed.
    report = json.loads((out / "report.json").read_text())
    assert [os.path.relpath(e["output"], out) for e in report["inputs"]] == ["b.mp4.tfrecord", "c.mp4.tfrecord"]
    for name in ("b.mp4", "c.mp4"):
        (got,), (want,) = _records(out / (name + ".tfrecord")), _records(local_run / "sub" / (name + ".tfrecord"))
        # Named from the glob's folder: "b", where the local run of the parent folder wrote "sub/b".
        assert got.context.feature[schema.VIDEO_ID].bytes_list.value == [name[:-4].encode()]
        assert got.context.feature[schema.SOURCE_PATH].bytes_list.value == [name.encode()]
        for key in (schema.VIDEO_ID, schema.SOURCE_PATH):
            got.context.feature[key].CopyFrom(want.context.feature[key])
        assert got == want


@pytest.mark.slow
def test_rerun_skips_finished_videos_and_retries_the_bad_one(beam_run, inputs, local_run):
    before = {n: os.stat(beam_run / (n + ".tfrecord")).st_mtime_ns for n in GOOD}
    assert beam_preprocess.main(["--input", str(inputs), "--output", str(beam_run), *IN_MEMORY]) == 0
    report = json.loads((beam_run / "report.json").read_text())
    statuses = {os.path.basename(e["input"]): e["status"] for e in report["inputs"]}
    assert statuses == {"a.mp4": "skipped", "b.mp4": "skipped", "c.mp4": "skipped", BAD: "failed"}
    assert {n: os.stat(beam_run / (n + ".tfrecord")).st_mtime_ns for n in GOOD} == before
    assert report["totals"]["frames_written"] == 3 * 15  # Skipped entries keep their earlier counts.


@pytest.mark.parametrize("tool", ["beam", "local"])
def test_rerun_after_a_kill_between_shard_and_side_report_redoes_the_input(inputs, local_run, tmp_path, tool):
    """The exact state a kill between the two renames of an output leaves: the shard renamed, its side
    report (the completion record) half written under its temporary name, no report.json."""
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(local_run / "a.mp4.tfrecord", out / "a.mp4.tfrecord")
    (out / "a.mp4.report.json.tmp").write_text('{"input": ')
    (out / "a.mp4.tfrecord.tmp").write_bytes(b"partial")  # And one of an earlier, killed redo.
    args = ["--input", str(inputs / "a.mp4"), "--output", str(out)]
    if tool == "beam":
        assert beam_preprocess.main(args + IN_MEMORY) == 0
    else:
        assert preprocess_cli.main(args + ["--workers", "1"]) == 0
    assert _files(out) == ["a.mp4.report.json", "a.mp4.tfrecord", "report.json"]
    (entry,) = json.loads((out / "report.json").read_text())["inputs"]
    assert entry["status"] == "ok"  # Redone: a shard without its side report is not finished.
    assert json.loads((out / "a.mp4.report.json").read_text())["frames_written"] == 15
    assert (out / "a.mp4.tfrecord").read_bytes() == (local_run / "a.mp4.tfrecord").read_bytes()


@pytest.mark.slow
def test_killed_pipeline_rerun_loses_and_duplicates_nothing(inputs, local_run, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "data_pipeline.beam_preprocess", "--input", str(inputs), "--output", str(out),
               "--workers", "1"]
    # Own session: the kill reaches the Beam worker processes too.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        # Killed once an input is finished (its side report, written last, is there) and the others are not.
        while not any(n.endswith(".mp4.report.json") for n in _files(out)):
            assert process.poll() is None, "the pipeline ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    finished = [n for n in GOOD if (out / (n + ".report.json")).exists()]
    assert 1 <= len(finished) < len(GOOD), finished  # Killed midway.
    assert not (out / "report.json").exists()

    assert beam_preprocess.main(["--input", str(inputs), "--output", str(out), "--workers", "2"]) == 0
    assert _files(out) == EXPECTED_FILES  # No .tmp left, no shard twice, none missing.
    _assert_same_shards(out, local_run)
    report = json.loads((out / "report.json").read_text())
    statuses = {e["input"][len(str(inputs)) + 1:]: e["status"] for e in report["inputs"]}
    assert statuses == {**{n: "skipped" if n in finished else "ok" for n in GOOD}, BAD: "failed"}


def test_usage_errors_exit_2(inputs, tmp_path, capsys):
    assert beam_preprocess.main(["--input", str(tmp_path / "none"), "--output", str(tmp_path / "o")]) == 2
    assert "none" in capsys.readouterr().err
    assert beam_preprocess.main(["--input", str(inputs), "--output", str(tmp_path / "o"), "--detecter=cnn"]) == 2
    assert "--detecter=cnn" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


class _BucketFileSystem(filesystem.FileSystem):
    """`bucket://x` -> files under $AFFNET_TEST_BUCKET/x with object-store semantics (no folders, prefix
    listing), so the remote path of the pipeline (staging, commit by rename) runs without a cloud."""

    @classmethod
    def scheme(cls):
        return "bucket"

    @staticmethod
    def _local(path):
        return os.path.join(os.environ["AFFNET_TEST_BUCKET"], path[len("bucket://"):])

    def join(self, base, *paths):
        return "/".join([base.rstrip("/")] + [p.strip("/") for p in paths])

    def split(self, path):
        head, _, tail = path.rpartition("/")
        return head, tail

    def has_dirs(self):
        return False

    def mkdirs(self, path):
        pass

    def _list(self, prefix):
        root = os.environ["AFFNET_TEST_BUCKET"]
        for folder, _, files in os.walk(root):
            for name in files:
                path = "bucket://" + os.path.relpath(os.path.join(folder, name), root)
                if path.startswith(prefix):
                    yield filesystem.FileMetadata(path, os.path.getsize(os.path.join(folder, name)))

    def create(self, path, mime_type=None, compression_type=None):
        os.makedirs(os.path.dirname(self._local(path)), exist_ok=True)
        return open(self._local(path), "wb")

    def open(self, path, mime_type=None, compression_type=None):
        return open(self._local(path), "rb")

    def copy(self, sources, destinations):
        for source, destination in zip(sources, destinations):
            with self.open(source) as f, self.create(destination) as g:
                g.write(f.read())

    def rename(self, sources, destinations):
        for source, destination in zip(sources, destinations):
            os.replace(self._local(source), self._local(destination))

    def exists(self, path):
        return os.path.isfile(self._local(path))

    def size(self, path):
        return os.path.getsize(self._local(path))

    def last_updated(self, path):
        return os.path.getmtime(self._local(path))

    def checksum(self, path):
        return str(self.size(path))

    def metadata(self, path):
        return filesystem.FileMetadata(path, self.size(path), self.last_updated(path))

    def delete(self, paths):
        for path in paths:
            os.remove(self._local(path))


def test_remote_paths_are_staged_and_committed(inputs, local_run, tmp_path, monkeypatch):
    monkeypatch.setenv("AFFNET_TEST_BUCKET", str(tmp_path))
    shutil.copytree(inputs, tmp_path / "videos")
    args = ["--input", "bucket://videos", "--output", "bucket://out", *IN_MEMORY]  # Same process: the fake FS.
    assert beam_preprocess.main(args) == 0
    out = tmp_path / "out"
    assert _files(out) == EXPECTED_FILES  # Neither .tmp files nor the gathered results are left.
    _assert_same_shards(out, local_run)
    report = json.loads((out / "report.json").read_text())
    assert [e["input"] for e in report["inputs"]] == ["bucket://videos/" + n for n in ("a.mp4", BAD, *GOOD[1:])]
    assert report["inputs"][1]["status"] == "failed" and "bucket://videos/notes.mp4" in report["inputs"][1]["error"]
    sidecar = json.loads((out / "a.mp4.report.json").read_text())
    assert (sidecar["input"], sidecar["output"]) == ("bucket://videos/a.mp4", "bucket://out/a.mp4.tfrecord")

    assert beam_preprocess.main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert [e["status"] for e in report["inputs"]] == ["skipped", "failed", "skipped", "skipped"]
    assert report["totals"]["frames_written"] == 3 * 15


@pytest.mark.slow
def test_dask_runner_on_a_local_cluster_gives_the_local_tools_shards(inputs, local_run, tmp_path):
    """--runner=DaskRunner without an address: a local dask.distributed cluster of 2 worker processes."""
    pytest.importorskip("dask.distributed")
    out = tmp_path / "out"
    assert beam_preprocess.main(["--input", str(inputs), "--output", str(out), "--workers", "2",
                                 "--runner=DaskRunner"]) == 0
    assert _files(out) == EXPECTED_FILES
    _assert_same_shards(out, local_run)
    report = json.loads((out / "report.json").read_text())
    assert _comparable(report, out) == _comparable(json.loads((local_run / "report.json").read_text()), local_run)


@pytest.mark.slow
def test_dask_worker_killed_mid_run_every_input_exactly_once(inputs, local_run, tmp_path):
    """A worker process SIGKILLed while it holds a task (once the first shard exists): the scheduler
    reruns its tasks on the restarted worker; each input is in the report once and its shard once."""
    distributed = pytest.importorskip("dask.distributed")
    out = tmp_path / "out"
    killed = {}

    def kill_a_busy_worker(client):
        deadline = time.monotonic() + 240
        while not any(n.endswith(".tfrecord") for n in _files(out)) and time.monotonic() < deadline:
            time.sleep(0.01)
        busy = [address for address, keys in client.processing().items() if keys]
        if busy and not (out / "report.json").exists():
            pid = client.run(os.getpid, workers=[busy[0]])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed["pid"] = pid

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        import threading

        killer = threading.Thread(target=kill_a_busy_worker, args=(client,))
        killer.start()
        code = beam_preprocess.main(["--input", str(inputs), "--output", str(out), "--runner=DaskRunner",
                                     f"--dask_address={cluster.scheduler_address}"])
        killer.join()
    assert killed, "no worker was busy when the first shard appeared"
    assert code == 0
    assert _files(out) == EXPECTED_FILES  # No temporary of the killed worker, no shard twice.
    _assert_same_shards(out, local_run)  # One record each.
    report = json.loads((out / "report.json").read_text())
    assert sorted(os.path.basename(e["input"]) for e in report["inputs"]) == sorted(["a.mp4", "b.mp4", "c.mp4", BAD])
    for entry in report["inputs"]:  # A task rerun after its worker died finds its output finished.
        if not entry["input"].endswith(BAD):
            assert entry["status"] == "ok" or entry.get("previous_status") == "ok", entry

"""Resource faults: the disk filling up mid-shard (RLIMIT_FSIZE: writes past it fail with EFBIG, as on a
full disk), a read-only output folder, and a second run on a folder in use. Each gives one line naming
the file or the holder, leaves nothing partial that the reader would take, and the run resumes after."""

import json
import os
import resource
import signal
import socket
import subprocess
import sys

import pytest
from real_videos import moving_face_frames

from data_pipeline.base import atomic
from data_pipeline.media import decode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARD_LIMIT = 16 << 10  # Bytes: above every JSON file of the run, below a shard of 15 aligned faces.


def _files(out):
    return sorted(os.path.relpath(os.path.join(d, f), out) for d, _, fs in os.walk(out) for f in fs)


def _preprocess(inputs, out, prefix=(), preexec_fn=None):
    return subprocess.run([*prefix, sys.executable, "-m", "data_pipeline.preprocess", f"--input={inputs}",
                           f"--output={out}", "--workers=1", "--noprogress"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, PYTHONPATH=ROOT), preexec_fn=preexec_fn)


def _error_line(result):
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def _small_disk():
    """In the child: files cannot grow past SHARD_LIMIT; SIGXFSZ ignored, so write() fails with EFBIG."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (SHARD_LIMIT, SHARD_LIMIT))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    for k, name in enumerate(("a.mp4", "b.mp4")):
        decode.write_video(str(root / name), moving_face_frames(12, shift=8 * k), fps=25)
    return root


@pytest.fixture(scope="module")
def uninterrupted(videos, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    assert _preprocess(videos, out).returncode == 0
    return out


def test_disk_full_mid_shard_names_the_file_and_the_run_resumes(videos, uninterrupted, tmp_path):
    out = tmp_path / "out"
    line = _error_line(_preprocess(videos, out, preexec_fn=_small_disk))
    assert "File too large" in line and str(out / "a.mp4.tfrecord") in line
    assert _files(out) == []  # No partial shard, no temporary, no report: nothing a reader would take.
    assert _preprocess(videos, out).returncode == 0  # Space is back.
    assert _files(out) == _files(uninterrupted)
    for name in ("a.mp4.tfrecord", "b.mp4.tfrecord"):
        assert (out / name).read_bytes() == (uninterrupted / name).read_bytes()


def _can_mount_read_only(folder):
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind {folder} {folder} && "
                            f"mount -o remount,bind,ro {folder}"], capture_output=True)
    return probe.returncode == 0


def test_read_only_output_folder_is_one_line(videos, uninterrupted, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    if os.geteuid() != 0:
        out.chmod(0o555)
        prefix = ()
    elif _can_mount_read_only(out):  # Root writes through permissions: a read-only bind mount instead,
        script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'  # in its own namespace.
        prefix = ("unshare", "-m", "sh", "-c", script, str(out))
    else:
        pytest.skip("root without mount namespaces: no way to make a folder read-only")
    line = _error_line(_preprocess(videos, out, prefix))
    assert str(out) in line and ("Read-only file system" in line or "Permission denied" in line), line
    out.chmod(0o755)
    assert _files(out) == []
    assert _preprocess(videos, out).returncode == 0
    assert _files(out) == _files(uninterrupted)


def test_second_run_on_a_folder_in_use_is_refused_naming_the_holder(videos, tmp_path):
    out = tmp_path / "out"
    with atomic.OutputLock(str(out), "a test"):
        line = _error_line(_preprocess(videos, out))
        assert f"in use by pid {os.getpid()} on {socket.gethostname()}: a test" in line
        assert _files(out) == [atomic.LOCK_NAME]
    assert not (out / atomic.LOCK_NAME).exists()  # Removed by its holder at the end.
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").exists() else None
    assert report is None  # The refused run wrote nothing.

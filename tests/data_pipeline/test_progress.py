"""The progress bar over frames of preprocess and the adapters: each frame counted once, quiet when asked."""

import io
import sys

from real_videos import moving_face_frames

from data_pipeline.media import decode
from data_pipeline.jobs import preprocess
from data_pipeline import preprocess as preprocess_cli
from data_pipeline.base import progress


class _Recorder:
    def __init__(self):
        self.count = 0
        self.postfix = None
        self.closed = False

    def update(self, n=1):
        self.count += n

    def set_postfix(self, **kwargs):
        self.postfix = kwargs

    def close(self):
        self.closed = True


def test_frames_counted_once_whether_here_or_in_a_worker(monkeypatch):
    recorder = _Recorder()
    monkeypatch.setattr(progress, "bar", lambda *args, **kwargs: recorder)
    run = progress.FrameProgress("preprocess", total_inputs=3)
    with progress.active(run):
        for _ in range(5):  # An input processed in this process counts frame by frame...
            progress.frame_done()
        assert recorder.count == 5
        run.input_done(5)  # ...and not again when its report arrives.
        assert recorder.count == 5
        run.input_done(7)  # An input from a pool worker counts when it finishes.
        run.input_done(0)  # A failed input adds nothing.
    assert recorder.count == 12
    assert recorder.postfix == {"inputs": "3/3"}
    assert recorder.closed
    progress.frame_done()  # No active run: nothing to count, no error.
    assert recorder.count == 12


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_preprocess_cli_bar_on_a_terminal_and_none_with_noprogress(tmp_path, monkeypatch):
    video = tmp_path / "in" / "talk.mp4"
    video.parent.mkdir()
    frames = moving_face_frames()
    decode.write_video(str(video), frames, fps=25)
    shown = {}
    for flags in ([], ["--noprogress"]):
        terminal = _Terminal()
        monkeypatch.setattr(sys, "stderr", terminal)
        out = tmp_path / ("quiet" if flags else "bar")
        assert preprocess_cli.main(["--input", str(tmp_path / "in"), "--output", str(out), "--workers", "1",
                                *flags]) == 0
        shown[bool(flags)] = terminal.getvalue()
    decoded = preprocess.read_report(str(tmp_path / "bar"))["totals"]["frames_decoded"]
    assert decoded > len(frames)  # 25 fps resampled to 30.
    assert "preprocess:" in shown[False] and "frame/s" in shown[False]
    assert f"{decoded}frame" in shown[False]  # The bar reached every decoded frame.
    assert "frame/s" not in shown[True] and "preprocess:" not in shown[True]

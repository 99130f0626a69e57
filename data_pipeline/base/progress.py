"""A progress bar over frames (tqdm) that stays quiet when it should.

`bar(total, description, enabled)` is a tqdm bar on stderr, or a no-op with
the same `update` / `set_postfix` / `close` methods when `enabled` is False
(--noprogress) or stderr is not a terminal (logs, CI, pipes). `FrameProgress`
is the bar of a preprocessing run across its inputs.
"""

import contextlib
import sys
from typing import Optional


class _Quiet:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def bar(total: Optional[int] = None, description: str = "", enabled: bool = True, unit: str = "frame"):
    if not enabled or not sys.stderr.isatty():
        return _Quiet()
    from tqdm import tqdm  # Imported only when a bar is shown.

    return tqdm(total=total, desc=description, unit=unit, dynamic_ncols=True, leave=False, file=sys.stderr)


class FrameProgress:
    """The frames of a preprocessing run (preprocess, the adapters) on one bar.

    Inputs processed in this process count frame by frame (`frame_done`,
    called by `preprocess.process_video` while this run is `active`); inputs
    from pool workers count when their report arrives (`input_done`), since
    a bar cannot cross processes.
    """

    def __init__(self, description: str, total_inputs: int, enabled: bool = True):
        self._bar = bar(None, description, enabled)
        self._total_inputs = total_inputs
        self._inputs = 0
        self._counted = 0  # Frames `frame_done` counted for inputs still running here.

    def frame_done(self) -> None:
        self._bar.update(1)
        self._counted += 1

    def input_done(self, frames_decoded: int) -> None:
        self._inputs += 1
        missing = frames_decoded - self._counted
        if missing > 0:
            self._bar.update(missing)
        self._counted = 0
        self._bar.set_postfix(inputs=f"{self._inputs}/{self._total_inputs}")

    def close(self) -> None:
        self._bar.close()


_ACTIVE: Optional[FrameProgress] = None


@contextlib.contextmanager
def active(run: FrameProgress):
    """`run` receives this process's `frame_done` calls until the block ends (then it closes)."""
    global _ACTIVE
    previous, _ACTIVE = _ACTIVE, run
    try:
        yield run
    finally:
        _ACTIVE = previous
        run.close()


def frame_done() -> None:
    """One more frame decoded by the active run of this process, if any."""
    if _ACTIVE is not None:
        _ACTIVE.frame_done()

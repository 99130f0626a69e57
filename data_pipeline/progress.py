"""A progress bar over frames (tqdm) that stays quiet when it should.

`bar(total, description, enabled)` is a tqdm bar on stderr, or a no-op with
the same `update` / `set_postfix` / `close` methods when `enabled` is False
(--noprogress) or stderr is not a terminal (logs, CI, pipes).
"""

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

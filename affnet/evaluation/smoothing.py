"""The per-dimension median filter of [MC] Sec. 6.3 / [OMG] Sec. III-E, on one sequence.

One implementation for evaluation (`affnet.evaluation.scoring.median_filter`,
which chooses the windows on validation) and for predict (which applies the
windows an export carries in `export.json` "postprocess").
"""

from typing import Sequence

import numpy as np
from scipy import ndimage


def check_windows(windows: Sequence[int]) -> None:
    if any(int(w) != w or int(w) < 1 or int(w) % 2 == 0 for w in windows):
        raise ValueError(f"median filter windows must be odd integers >= 1, got {list(windows)}")


def median_filter(values: np.ndarray, windows: Sequence[int]) -> np.ndarray:
    """(N, D) per-frame values -> a copy with column d median-filtered over `windows[d]` frames.

    Edges repeat the first / last value (scipy mode "nearest"); window 1 is the identity.
    """
    check_windows(windows)
    values = np.asarray(values)
    filtered = values.copy()
    for d, window in enumerate(windows):
        if window > 1 and len(values):
            filtered[:, d] = ndimage.median_filter(values[:, d], size=int(window), mode="nearest")
    return filtered

"""Per-face `seq_len` windows, batched across faces and chunks for one model call.

Each face track is cut into consecutive windows of `seq_len` of its
successful frames, from the track's first frame, and the RNN state starts
afresh in each window, as in training and evaluation. A window is complete
once it holds `seq_len` frames; complete windows of every face are stacked
`batch_size` at a time (one call for B windows instead of B calls), and at
the end of a video the shorter last windows are batched by their length, so
no window is padded and the values equal one window per call.
"""

import collections
import dataclasses
from typing import Dict, Iterable, List

import numpy as np

from data_pipeline.reader import transforms


@dataclasses.dataclass
class Window:
    """Consecutive frames of one face: the output rows they belong to and the model inputs."""

    rows: List[int]
    crops: List[np.ndarray]
    landmarks: List[np.ndarray]
    spectrogram: List[np.ndarray]

    def __len__(self):
        return len(self.rows)


class Windower:
    """add(track, row, crop, landmarks[, spectrogram]) -> the windows it completes; flush() the rest."""

    def __init__(self, seq_len: int):
        if int(seq_len) != seq_len or seq_len < 1:
            raise ValueError(f"seq_len must be a positive integer, got {seq_len!r}")
        self.seq_len = int(seq_len)
        self._open: Dict[int, Window] = {}

    def add(self, track_id: int, row: int, crop, landmarks, spectrogram=None) -> List[Window]:
        window = self._open.setdefault(track_id, Window([], [], [], []))
        window.rows.append(row)
        window.crops.append(crop)
        window.landmarks.append(landmarks)
        if spectrogram is not None:
            window.spectrogram.append(spectrogram)
        if len(window) == self.seq_len:
            del self._open[track_id]
            return [window]
        return []

    def flush(self) -> List[Window]:
        windows = [w for w in self._open.values() if len(w)]
        self._open = {}
        return windows


def model_inputs(windows: List[Window], crop_size: int) -> Dict[str, np.ndarray]:
    """Equal-length windows -> the serving signature's arrays (`data_pipeline.reader.transforms` normalisation)."""
    crops = np.stack([np.stack(w.crops) for w in windows])
    landmarks = np.stack([np.stack(w.landmarks) for w in windows])
    inputs = {"images": transforms.normalize_images(crops).numpy(),
              "landmarks": transforms.normalize_landmarks(landmarks, crop_size).numpy()}
    if windows[0].spectrogram:
        inputs["spectrogram"] = np.stack([np.stack(w.spectrogram) for w in windows]).astype(np.float32)
    return inputs


class Batcher:
    """Collects windows; `ready()` yields full batches of complete windows, `drain()` everything left."""

    def __init__(self, batch_size: int):
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self._by_length: Dict[int, List[Window]] = collections.defaultdict(list)

    def put(self, windows: Iterable[Window]) -> None:
        for window in windows:
            self._by_length[len(window)].append(window)

    def ready(self, full_length: int, partial: bool = False):
        """Batches of `batch_size` complete windows; with `partial` also the rest of them (live
        sources: a window is predicted as soon as it is complete, latency one window)."""
        waiting = self._by_length[full_length]
        while len(waiting) >= self.batch_size or (partial and waiting):
            batch, waiting[:] = waiting[:self.batch_size], waiting[self.batch_size:]
            yield batch

    def drain(self):
        for length in sorted(self._by_length):
            waiting = self._by_length[length]
            for start in range(0, len(waiting), self.batch_size):
                yield waiting[start:start + self.batch_size]
        self._by_length.clear()


def run_batch(runtime, batch: List[Window], crop_size: int, outputs: Dict[str, Dict[int, np.ndarray]]) -> None:
    """Call the model on one batch and store each frame's outputs as `outputs[name][row]`."""
    result = runtime(**model_inputs(batch, crop_size))
    for name, values in result.items():
        target = outputs.setdefault(name, {})
        for k, window in enumerate(batch):
            for t, row in enumerate(window.rows):
                target[row] = values[k, t]

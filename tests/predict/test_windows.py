"""Per-face windows and their batches: complete windows per track, ragged ends by length."""

import numpy as np
import pytest

from affnet.predict import windows


def _feed(windower, batcher, track_rows):
    for track, row in track_rows:
        batcher.put(windower.add(track, row, np.zeros((4, 4, 3), np.uint8), np.zeros(136, np.float32)))


def test_windows_follow_each_track_and_batch_by_length():
    windower, batcher = windows.Windower(3), windows.Batcher(2)
    # Two interleaved faces: face 0 on rows 0, 2, 4, 6, 8; face 1 on rows 1, 3, 5, 7.
    _feed(windower, batcher, [(row % 2, row) for row in range(9)])
    full = list(batcher.ready(3))
    assert [[w.rows for w in batch] for batch in full] == [[[0, 2, 4], [1, 3, 5]]]
    assert list(batcher.ready(3)) == []
    batcher.put(windower.flush())
    assert [[w.rows for w in batch] for batch in batcher.drain()] == [[[7]], [[6, 8]]]


def test_live_batches_run_as_soon_as_a_window_is_complete():
    windower, batcher = windows.Windower(2), windows.Batcher(8)
    _feed(windower, batcher, [(0, 0), (0, 1)])
    assert [[w.rows for w in batch] for batch in batcher.ready(2, partial=True)] == [[[0, 1]]]


def test_model_inputs_normalise_like_training():
    window = windows.Window([0], [np.full((4, 4, 3), 255, np.uint8)], [np.full(136, 48.0, np.float32)], [])
    inputs = windows.model_inputs([window], crop_size=96)
    assert inputs["images"].shape == (1, 1, 4, 4, 3) and np.allclose(inputs["images"], 1.0)
    assert np.allclose(inputs["landmarks"], 0.0) and "spectrogram" not in inputs
    with pytest.raises(ValueError, match="seq_len"):
        windows.Windower(-3)

"""Per-frame valence/arousal of a video with an exported model.

The video goes through the same offline preprocessing as the training data
(`data_pipeline.preprocess.process_video`: 30 fps, detection, landmarks,
alignment, 96x96 crops) and the same online normalisation
(`data_pipeline.transforms`); the exported signature then runs over windows of
`seq_len` frames of each face track (the RNN state starts afresh in each
window, as in training). Frames without a face are listed with empty values.
"""

import csv
import dataclasses
import re
from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf

from data_pipeline import decode, preprocess, schema, transforms

CSV_FIELDS = ("frame_index", "timestamp", "face_id", "valence", "arousal")


@dataclasses.dataclass
class FrameRow:
    frame_index: int
    timestamp: float
    face_id: Optional[int] = None
    valence: Optional[float] = None
    arousal: Optional[float] = None


def _face_id(video_id: str) -> int:
    match = re.search(r"_face(\d+)", video_id)
    return int(match.group(1)) if match else 0


def predict_record(serve, record: schema.VideoRecord, seq_len: int, crop_size: int) -> np.ndarray:
    """(N, 2) predictions for one preprocessed track, in `seq_len` windows."""
    if record.encoded_images is not None:
        images = schema.decode_images(tf.constant(list(record.encoded_images)))
    else:
        images = tf.constant(record.images)
    images = transforms.normalize_images(images, crop_size)
    landmarks = transforms.normalize_landmarks(record.landmarks, crop_size)
    outputs = []
    for start in range(0, record.num_frames, seq_len):
        window = slice(start, start + seq_len)
        result = serve(images=images[None, window], landmarks=landmarks[None, window])
        outputs.append(result["valence_arousal"][0].numpy())
    return np.concatenate(outputs).astype(np.float64)


def predict_video(path: str, serve, seq_len: int, options=preprocess.PreprocessOptions(), crop_size: int = 96):
    """(rows, report): one `FrameRow` per (output frame, face), faceless frames
    with face_id None; `report` is the preprocessing report."""
    if options.crop_size != crop_size:
        raise ValueError(f"preprocessing crop_size {options.crop_size} differs from the export's {crop_size}")
    records, report = preprocess.process_video(path, options)
    predicted: Dict[tuple, List[FrameRow]] = {}
    for record in records:
        values = predict_record(serve, record, seq_len, crop_size)
        for i in range(record.num_frames):
            key = (int(record.frame_index[i]), round(float(record.timestamp[i]), 3))
            predicted.setdefault(key, []).append(FrameRow(key[0], float(record.timestamp[i]),
                                                          _face_id(record.video_id), *map(float, values[i])))
    rows = []
    for frame in decode.decode(path, options.fps):
        key = (int(frame.source_index), round(float(frame.time), 3))
        rows.extend(sorted(predicted.get(key, [FrameRow(key[0], float(frame.time))]),
                           key=lambda r: r.face_id))
    return rows, report


def write_csv(rows: List[FrameRow], path: str):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_FIELDS)
        for row in rows:
            writer.writerow([row.frame_index, f"{row.timestamp:.4f}",
                             "" if row.face_id is None else row.face_id,
                             "" if row.valence is None else f"{row.valence:.5f}",
                             "" if row.arousal is None else f"{row.arousal:.5f}"])


def plot(rows: List[FrameRow], time_path: str, histogram_path: str, title: str = ""):
    """Valence/arousal over time per face, and a 2-D valence-arousal histogram."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    faces = sorted({r.face_id for r in rows if r.face_id is not None})
    figure, axes = pyplot.subplots(2, 1, figsize=(10, 5), sharex=True, dpi=80)
    for face in faces:
        mine = [r for r in rows if r.face_id == face]
        times = [r.timestamp for r in mine]
        axes[0].plot(times, [r.valence for r in mine], lw=1, label=f"face {face}")
        axes[1].plot(times, [r.arousal for r in mine], lw=1, label=f"face {face}")
    for ax, name in zip(axes, ("valence", "arousal")):
        ax.set(ylim=(-1.05, 1.05), ylabel=name)
    axes[1].set_xlabel("time (s)")
    if faces:
        axes[0].legend(loc="upper right", fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(time_path)
    pyplot.close(figure)

    values = np.array([(r.valence, r.arousal) for r in rows if r.face_id is not None]).reshape(-1, 2)
    figure, ax = pyplot.subplots(figsize=(5, 5), dpi=80)
    counts, _, _ = np.histogram2d(values[:, 0], values[:, 1], bins=20, range=[[-1, 1], [-1, 1]])
    ax.imshow(counts.T, origin="lower", extent=(-1, 1, -1, 1), cmap="viridis")
    ax.set(xlabel="valence", ylabel="arousal", title=f"{title} ({len(values)} frames)")
    figure.tight_layout()
    figure.savefig(histogram_path)
    pyplot.close(figure)

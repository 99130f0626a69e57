"""Predict's per-frame table and the files made from it (README.proposed.md documents every column).

One row per (frame, face); a frame without any detected face has one row with
face_id empty and success 0. Columns, in order:
  frame_index, timestamp, face_id, success, confidence, face_x, face_y, face_w, face_h,
  valence, arousal                      (exports with a valence_arousal output)
  expression_<name> ...                  (exports with expression_probabilities)
  <AU name> ...                          (exports with au_probabilities, e.g. AU1)
  x_0..x_67, y_0..y_67                   (with landmarks=True; frame pixels, OpenFace order)
"""

import fractions
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
import pandas as pd

from data_pipeline.base import checks
from data_pipeline.base import atomic
from data_pipeline.adapters import affwild2

BASE_COLUMNS = ("frame_index", "timestamp", "face_id", "success", "confidence", "face_x", "face_y",
                "face_w", "face_h")
VA_COLUMNS = ("valence", "arousal")
LANDMARK_COLUMNS = tuple(f"x_{i}" for i in range(68)) + tuple(f"y_{i}" for i in range(68))
OUTPUT_FORMATS = ("csv", "parquet", "abaw")
EXTENSIONS = {"csv": "csv", "parquet": "parquet", "abaw": "txt"}


def prediction_columns(outputs: Sequence[str], expressions: Sequence[str], au_names: Sequence[str]) -> Dict[str, List[str]]:
    """Serving output name -> its table columns, in table order."""
    columns = {}
    if "valence_arousal" in outputs:
        columns["valence_arousal"] = list(VA_COLUMNS)
    if "expression_probabilities" in outputs:
        columns["expression_probabilities"] = [f"expression_{name}" for name in expressions]
    if "au_probabilities" in outputs:
        columns["au_probabilities"] = list(au_names)
    return columns


def table(rows: List[tuple], predictions: Dict[str, Dict[int, np.ndarray]], columns: Dict[str, List[str]],
          landmarks: Optional[List[Optional[np.ndarray]]] = None):
    """pandas DataFrame from per-row metadata (BASE_COLUMNS order) and per-output {row: values}."""
    count = len(rows)
    base = np.array(rows, dtype=object).reshape(count, len(BASE_COLUMNS))
    data = {"frame_index": base[:, 0].astype(np.int64), "timestamp": base[:, 1].astype(np.float64),
            "face_id": pd.array(base[:, 2].tolist(), dtype="Int64"), "success": base[:, 3].astype(np.int8)}
    for k, name in enumerate(BASE_COLUMNS[4:], start=4):
        data[name] = base[:, k].astype(np.float64)
    for output, names in columns.items():
        values = np.full((count, len(names)), np.nan, np.float32)
        for row, value in predictions.get(output, {}).items():
            values[row] = value[:len(names)]
        for k, name in enumerate(names):
            data[name] = values[:, k]
    if landmarks is not None:
        points = np.full((count, 2, 68), np.nan, np.float32)
        for row, value in enumerate(landmarks):
            if value is not None:
                points[row] = np.asarray(value, np.float32).T
        flat = points.reshape(count, 136)
        for k, name in enumerate(LANDMARK_COLUMNS):
            data[name] = flat[:, k]
    return pd.DataFrame(data)


def write_table(frame, path: str, output_format: str = "csv") -> None:
    """The table as CSV or parquet, or for "abaw" the valence-arousal of `abaw_values` in the ABAW layout."""
    checks.check_choice(output_format, "output_format", OUTPUT_FORMATS)

    if output_format == "abaw":
        affwild2.write_va(path, abaw_values(frame))
        return

    def write(temp):
        if output_format == "csv":
            frame.to_csv(temp, index=False, float_format="%.6g")
        else:
            frame.to_parquet(temp, index=False)  # pyarrow

    atomic.replace_atomically(path, write)


def check_format(output_format: str, columns: Dict[str, List[str]]) -> None:
    checks.check_choice(output_format, "output_format", OUTPUT_FORMATS)
    if output_format == "abaw" and "valence_arousal" not in columns:
        raise ValueError("output_format 'abaw' writes valence and arousal; this export has no valence_arousal output")


def abaw_values(frame) -> np.ndarray:
    """(source frames, 2) valence-arousal for the ABAW layout (`affwild2.write_va`): line k+1 <-> source frame k.

    Per shown frame the largest face (box area) counts; a frame without a face is NaN (written -5, the
    release's "not annotated"). A source frame that resampling never showed (e.g. a 60 fps video at
    --fps=30) holds the value of the last shown frame before it, the frame on screen at its time;
    --fps=0 predicts every source frame.
    """
    if "valence" not in frame:
        raise ValueError("the ABAW layout needs valence and arousal columns")
    shown = frame.drop_duplicates(["frame_index", "timestamp"])[["frame_index", "timestamp"]]
    found = frame[frame.success == 1].assign(area=lambda rows: rows.face_w * rows.face_h)
    largest = found.sort_values("area", ascending=False, kind="stable").drop_duplicates(["frame_index", "timestamp"])
    merged = shown.merge(largest[["frame_index", "timestamp", "valence", "arousal"]], how="left",
                         on=["frame_index", "timestamp"])
    values = affwild2.va_per_frame(merged.frame_index.to_numpy(), merged[list(VA_COLUMNS)].to_numpy(np.float64))
    if not len(values):
        return values
    seen = np.zeros(len(values), bool)
    seen[merged.frame_index.to_numpy()] = True
    source = np.maximum.accumulate(np.where(seen, np.arange(len(values)), 0))
    return values[source]


def read_table(path: str):
    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"face_id": "Int64"})


def plot(frame, time_path: str, histogram_path: str, title: str = "") -> None:
    """Valence and arousal over time, one line per face, and a 2-D valence-arousal histogram."""
    import matplotlib  # Imported when plotting: it selects the headless backend first.

    matplotlib.use("Agg")
    from matplotlib import pyplot

    faces = frame[frame.success == 1]
    figure, axes = pyplot.subplots(2, 1, figsize=(10, 5), sharex=True, dpi=80)
    for face_id, rows in faces.groupby("face_id"):
        for ax, name in zip(axes, VA_COLUMNS):
            ax.plot(rows.timestamp, rows[name], lw=1, label=f"face {face_id}")
    for ax, name in zip(axes, VA_COLUMNS):
        ax.set(ylim=(-1.05, 1.05), ylabel=name)
    axes[1].set_xlabel("time (s)")
    if len(faces):
        axes[0].legend(loc="upper right", fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    atomic.replace_atomically(time_path, lambda temp: figure.savefig(temp, format="png"))
    pyplot.close(figure)

    values = faces[list(VA_COLUMNS)].to_numpy(np.float64)
    figure, ax = pyplot.subplots(figsize=(5, 5), dpi=80)
    counts, _, _ = np.histogram2d(values[:, 0], values[:, 1], bins=20, range=[[-1, 1], [-1, 1]])
    ax.imshow(counts.T, origin="lower", extent=(-1, 1, -1, 1), cmap="viridis")
    ax.set(xlabel="valence", ylabel="arousal", title=f"{title} ({len(values)} face frames)")
    figure.tight_layout()
    atomic.replace_atomically(histogram_path, lambda temp: figure.savefig(temp, format="png"))
    pyplot.close(figure)


_COLOURS = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240)]


def draw(image: np.ndarray, rows) -> np.ndarray:
    """A frame with each face's box, id, and a valence-arousal gauge (a dot in the [-1, 1]^2 disc)."""
    out = np.ascontiguousarray(image.copy())
    for _, row in rows.iterrows():
        if pd.isna(row.face_id):
            continue
        colour = _COLOURS[int(row.face_id) % len(_COLOURS)]
        x, y, w, h = (int(round(v)) for v in (row.face_x, row.face_y, row.face_w, row.face_h))
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, 2)
        label = f"face {int(row.face_id)}"
        if "valence" in rows and np.isfinite(row.valence):
            label += f" V {row.valence:+.2f} A {row.arousal:+.2f}"
            radius = max(12, w // 4)
            centre = (x + w + radius + 4, y + radius)
            cv2.circle(out, centre, radius, (255, 255, 255), 1)
            cv2.line(out, (centre[0] - radius, centre[1]), (centre[0] + radius, centre[1]), (160, 160, 160), 1)
            cv2.line(out, (centre[0], centre[1] - radius), (centre[0], centre[1] + radius), (160, 160, 160), 1)
            dot = (int(centre[0] + row.valence * radius), int(centre[1] - row.arousal * radius))
            cv2.circle(out, dot, 3, colour, -1)
        cv2.putText(out, label, (x, max(12, y - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    return out


def write_annotated_video(frames, frame, path: str, fps: float) -> None:
    """Stream `frames` (decode.Frame, the same ones predicted) into an H.264 video with `draw`n rows."""
    by_position = dict(tuple(frame.groupby(["frame_index", "timestamp"], sort=False)))
    rate = fractions.Fraction(fps or 30.0).limit_denominator(1001000)  # 29.97 -> 30000/1001.
    # The temporary keeps the .mp4 extension: PyAV picks the container by it.
    atomic.replace_atomically(path, lambda temp: _encode(frames, frame, by_position, rate, temp),
                              atomic.temporary_path(path) + ".mp4")


def _encode(frames, frame, by_position, rate, path: str) -> None:
    import av  # As in data_pipeline.media.decode: only writing a video needs it.

    with av.open(path, mode="w") as container:
        stream = None
        for k, item in enumerate(frames):
            image = item.image
            if stream is None:
                stream = container.add_stream("libx264", rate=rate)
                stream.width, stream.height = image.shape[1] // 2 * 2, image.shape[0] // 2 * 2
                stream.pix_fmt = "yuv420p"
                stream.options = {"crf": "23", "preset": "veryfast"}
            rows = by_position.get((item.source_index, item.time))
            if rows is None:  # Float keys: fall back to the nearest time of that source frame.
                rows = frame[(frame.frame_index == item.source_index)
                             & (np.abs(frame.timestamp - item.time) < 1e-4)]
            image = draw(image, rows)[:stream.height, :stream.width]
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            video_frame.pts = k
            for packet in stream.encode(video_frame):
                container.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)


def write_summary(summary: dict, path: str) -> None:
    atomic.write_json(path, summary)

"""TensorBoard summaries and the progress line.

`<workdir>`: the run's settings for the HParams dashboard (`write_hparams`), with
the best validation scores as its metrics: point TensorBoard at a folder of
workdirs to compare runs by their settings.
`<workdir>/train`: loss, learning rate, steps/s, frames/s; at the first step
`input_crops`, a grid of the training crops the model is fed with their
landmarks drawn (`input_grid`).
`<workdir>/val`: loss (1 - whole-set mean CCC), CCC/MSE/PCC per dimension, a
valence-arousal scatter image of predictions against labels, `va_traces`
(predicted and true valence/arousal over time of a few validation videos, the
same videos at every evaluation) and `best_<score>` at each new best.
"""

import io
import os
import sys
import time
from typing import Dict, Mapping

import numpy as np
import tensorflow as tf


def writers(workdir: str, chief: bool):
    """(train, val) summary writers; no-op writers on non-chief workers."""
    if not chief:
        return tf.summary.create_noop_writer(), tf.summary.create_noop_writer()
    return (tf.summary.create_file_writer(os.path.join(workdir, "train")),
            tf.summary.create_file_writer(os.path.join(workdir, "val")))


def scalars(writer, step: int, values: dict):
    with writer.as_default(step=step):
        for name, value in values.items():
            tf.summary.scalar(name, float(value))
    writer.flush()


def _png(figure, title: str) -> bytes:
    """The figure, titled, as PNG bytes (closed afterwards)."""
    from matplotlib import pyplot

    figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    return buffer.getvalue()


def va_scatter_png(labels, predictions, title: str = "", max_points: int = 5000, seed: int = 0) -> bytes:
    """A PNG of predicted against true (valence, arousal) per dimension."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if len(labels) > max_points:
        keep = np.random.default_rng(seed).choice(len(labels), max_points, replace=False)
        labels, predictions = labels[keep], predictions[keep]
    figure, axes = pyplot.subplots(1, 3, figsize=(12, 4), dpi=72)
    for d, name in enumerate(("valence", "arousal")):
        ok = np.isfinite(labels[:, d])
        axes[d].scatter(labels[ok, d], predictions[ok, d], s=2, alpha=0.3)
        axes[d].plot([-1, 1], [-1, 1], "k--", lw=0.8)
        axes[d].set(xlim=(-1, 1), ylim=(-1, 1), xlabel=f"true {name}", ylabel=f"predicted {name}")
    axes[2].scatter(labels[:, 0], labels[:, 1], s=2, alpha=0.3, label="labels")
    axes[2].scatter(predictions[:, 0], predictions[:, 1], s=2, alpha=0.3, label="predictions")
    axes[2].set(xlim=(-1, 1), ylim=(-1, 1), xlabel="valence", ylabel="arousal")
    axes[2].legend(loc="lower right", fontsize=8)
    return _png(figure, title)


def image(writer, step: int, name: str, png: bytes):
    with writer.as_default(step=step):
        tf.summary.image(name, tf.image.decode_png(png, channels=4)[None])
    writer.flush()


# HParams metrics: scalars `loop` writes to `val/` at each new best checkpoint (`best_values`).
BEST_METRICS = (("best_ccc_mean", "best validation mean CCC"), ("best_ccc_valence", "valence CCC at the best"),
                ("best_ccc_arousal", "arousal CCC at the best"), ("best_mse_mean", "mean MSE at the best"),
                ("best_multitask_score", "best validation multi-task score"))


def _hparam_value(value):
    """An HParams value (bool, int, float or str): sequences and mappings as their text."""
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ",".join(str(_hparam_value(v)) for v in value)
    return "" if value is None else str(value)


def write_hparams(workdir: str, settings: Mapping[str, object], chief: bool = True) -> None:
    """The run's settings ({flag name: value}, `TrainConfig.flat()`) for TensorBoard's HParams dashboard,
    with `BEST_METRICS` (group `val`) declared as its metrics; written at each (re)start."""
    if not chief:
        return
    from tensorboard.plugins.hparams import api as hp

    values = {name: _hparam_value(value) for name, value in sorted(settings.items())}
    writer = tf.summary.create_file_writer(workdir)
    with writer.as_default():
        hp.hparams_config(hparams=[hp.HParam(name) for name in values],
                          metrics=[hp.Metric(tag, group="val", display_name=text) for tag, text in BEST_METRICS])
        hp.hparams(values, trial_id=os.path.basename(os.path.normpath(workdir)))
    writer.close()


def best_values(scores: Mapping[str, float]) -> Dict[str, float]:
    """`best_<name>` scalars of a new best evaluation (the HParams metrics)."""
    return {tag: float(scores[tag[len("best_"):]]) for tag, _ in BEST_METRICS if tag[len("best_"):] in scores}


def input_grid_png(features: Mapping[str, np.ndarray], sequences: int = 4, frames: int = 6) -> bytes:
    """A PNG grid of input crops (rows: the first `sequences` of the batch; columns: `frames` evenly spaced
    over each window) with the 68 landmarks drawn, as the model gets them: images in [-1, 1], landmarks
    `2 x / crop - 1` interleaved x0, y0, ... (`data_pipeline.reader.transforms.normalize_landmarks`)."""
    import cv2

    images = np.asarray(features["images"], np.float32)
    landmarks = features.get("landmarks")
    landmarks = None if landmarks is None else np.asarray(landmarks, np.float32)
    if images.ndim == 4:  # Frame models: (B, S, S, 3).
        images = images[:, None]
        landmarks = None if landmarks is None else landmarks.reshape(len(images), 1, -1)
    rows, length, size = min(sequences, len(images)), images.shape[1], images.shape[2]
    picks = np.unique(np.linspace(0, length - 1, min(frames, length)).round().astype(int))
    scale = max(1, 96 // size)
    cell = size * scale
    grid = np.full((rows * (cell + 2), len(picks) * (cell + 2), 3), 255, np.uint8)
    for r in range(rows):
        for c, t in enumerate(picks):
            crop = np.clip((images[r, t] + 1.0) * 127.5, 0, 255).astype(np.uint8)
            crop = np.ascontiguousarray(cv2.resize(crop, (cell, cell), interpolation=cv2.INTER_NEAREST))
            if landmarks is not None:
                points = (landmarks[r, t].reshape(-1, 2) + 1.0) / 2.0 * cell
                for x, y in points[np.isfinite(points).all(axis=1)]:
                    cv2.circle(crop, (int(round(x)), int(round(y))), 1, (0, 255, 0), -1)
            grid[r * (cell + 2):r * (cell + 2) + cell, c * (cell + 2):c * (cell + 2) + cell] = crop
    return cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))[1].tobytes()


def input_grid(writer, step: int, dataset) -> None:
    """`input_crops` of the first batch of `dataset` ((features, labels) batches)."""
    features, _ = next(iter(dataset.take(1)))
    if not isinstance(features, Mapping) or "images" not in features:
        return
    image(writer, step, "input_crops", input_grid_png({k: v.numpy() for k, v in features.items()
                                                       if k in ("images", "landmarks")}))


def va_traces_png(videos: Mapping[str, object], title: str = "", count: int = 3) -> bytes:
    """Predicted and true valence / arousal over frames of the first `count` videos (by name) that have
    valence-arousal labels: the same videos at every evaluation, so the images compare over steps."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    names = [name for name in sorted(videos) if getattr(videos[name], "has_va", False)][:count]
    figure, axes = pyplot.subplots(max(len(names), 1), 2, figsize=(12, 2.2 * max(len(names), 1)), dpi=72,
                                   squeeze=False)
    for row, name in enumerate(names):
        video = videos[name]
        for d, dim in enumerate(("valence", "arousal")):
            ax = axes[row, d]
            ax.plot(video.frame_index, video.labels[:, d], lw=1, label="true")
            ax.plot(video.frame_index, video.predictions[:, d], lw=1, label="predicted")
            ax.set(ylim=(-1.05, 1.05), title=f"{name} {dim}")
            ax.title.set_fontsize(8)
        axes[row, 0].legend(loc="lower left", fontsize=7)
    axes[-1, 0].set_xlabel("frame")
    return _png(figure, title)


class Progress:
    """A one-line progress report: step, loss, steps/s, frames/s, ETA."""

    def __init__(self, total_steps: int, start_step: int, frames_per_step: int, stream=None):
        self.total = total_steps
        self.frames_per_step = frames_per_step
        self.stream = stream or sys.stdout
        self.mark_step, self.mark_time = start_step, time.perf_counter()

    def rates(self, step: int):
        """(steps/s, frames/s) since the previous call; resets the mark."""
        now = time.perf_counter()
        steps = step - self.mark_step
        seconds = max(now - self.mark_time, 1e-9)
        self.mark_step, self.mark_time = step, now
        return steps / seconds, steps * self.frames_per_step / seconds

    def line(self, step: int, loss: float, steps_per_second: float, frames_per_second: float, rate: float):
        eta = (self.total - step) / steps_per_second if steps_per_second > 0 else float("nan")
        print(f"step {step}/{self.total}  loss {loss:.4f}  lr {rate:.2e}  {steps_per_second:.2f} steps/s  "
              f"{frames_per_second:.0f} frames/s  eta {eta / 60:.1f} min", file=self.stream, flush=True)

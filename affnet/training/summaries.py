"""TensorBoard summaries and the progress line.

`<workdir>/train`: loss, learning rate, steps/s, frames/s.
`<workdir>/val`: loss (1 - whole-set mean CCC), CCC/MSE/PCC per dimension and a
valence-arousal scatter image of predictions against labels.
"""

import io
import os
import sys
import time

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
    figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    pyplot.close(figure)
    return buffer.getvalue()


def image(writer, step: int, name: str, png: bytes):
    with writer.as_default(step=step):
        tf.summary.image(name, tf.image.decode_png(png, channels=4)[None])
    writer.flush()


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

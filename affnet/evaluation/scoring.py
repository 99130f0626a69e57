"""Whole-set evaluation: collect per-frame predictions, score, post-process.

* Scores are computed once over every evaluated frame (as the authors' public code does),
  also per video: CCC, MSE and Pearson CC per dimension (`affnet.evaluation.metrics`).
* [MC] Sec. 5.3 / [OMG] post-processing: a median filter over each video's
  per-frame predictions, one window per dimension chosen on validation
  (window 1 = no filter, so it is kept only if it raises validation CCC) and
  then applied unchanged to the test set. [MC] found 81 for valence, 3 for
  arousal. The choice, and the utterance smoothing that follows at the
  utterance level, live in `affnet.evaluation.postprocess`.
* [MC] Sec. 3 utterance level (OMG): an utterance's estimate is the mean of
  the medians of its consecutive `seq_len`-frame sequences; its label the mean
  of its frame labels (the same value on every frame there).
* Multi-task models ([FBN]) output a dict; besides valence-arousal the frames
  keep expression probabilities (softmax of the logits) and AU probabilities
  (sigmoid), scored with F1 / accuracy / E_total ([FBN] Table IV), and for
  expressions also per video ([AW] Sec. 5.2: the frames' mean probabilities
  decide the video's class). `multitask_score`, the mean of the available
  task measures (VA mean CCC, expression E_total, AU E_total), picks the best
  checkpoint of a multi-task run.
"""

import collections
import dataclasses
from typing import Callable, Dict, Iterable, Optional, Sequence

import numpy as np

from affnet.evaluation import metrics, smoothing
from affnet.models.categorical import aggregate_per_video

DIMENSIONS = ("valence", "arousal")
MEDIAN_WINDOWS = (1, 3, 5, 9, 15, 21, 31, 41, 61, 81, 101)


@dataclasses.dataclass
class VideoPredictions:
    """One video's frames in order: `frame_index` (N,), `labels`/`predictions` (N, 2).

    Multi-task runs add `expression_labels` (N,) (-1 unlabelled) with
    `expression_probabilities` (N, 7), and `au_labels` (N, K) (-1 unlabelled)
    with `au_probabilities` (N, K). A model without a VA output has NaN
    `predictions`.
    """

    frame_index: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray
    expression_labels: Optional[np.ndarray] = None
    expression_probabilities: Optional[np.ndarray] = None
    au_labels: Optional[np.ndarray] = None
    au_probabilities: Optional[np.ndarray] = None

    @property
    def has_va(self) -> bool:
        return bool(np.isfinite(self.predictions).any())


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _softmax(logits):
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def _sigmoid(logits):
    return 1.0 / (1.0 + np.exp(-logits))


def _frame_outputs(output, labels):
    """{field: (B, T, ...) array} of one batch: VA predictions and labels, and
    the expression / AU probabilities and labels of a multi-task output."""
    va = np.asarray(labels["va"], np.float64)
    mask = np.asarray(labels["va_mask"]).astype(bool) if "va_mask" in labels else None
    if mask is not None:
        va = np.where(mask if mask.ndim == 3 else mask[..., None], va, np.nan)
    fields = {"labels": va}
    if not isinstance(output, dict):
        fields["predictions"] = np.asarray(output, np.float64)
        return fields
    va_output = output.get("va", output.get("valence_arousal"))
    fields["predictions"] = (np.asarray(va_output, np.float64) if va_output is not None
                             else np.full(va.shape, np.nan))
    if "expression" in output:
        fields["expression_probabilities"] = _softmax(np.asarray(output["expression"], np.float64))
        fields["expression_labels"] = np.where(np.asarray(labels["expression_mask"]) > 0,
                                               np.asarray(labels["expression"]), -1).astype(np.int64)
    if "au" in output:
        fields["au_probabilities"] = _sigmoid(np.asarray(output["au"], np.float64))
        fields["au_labels"] = np.where(np.asarray(labels["au_mask"]) > 0,
                                       np.asarray(labels["au"]), -1).astype(np.int64)
    return fields


def collect(predict: Callable, batches: Iterable) -> Dict[str, VideoPredictions]:
    """Run `predict(features)` (-> (B, T, 2), or a multi-task dict) over
    `(features, labels)` batches and gather each video's frames once, by
    (video_id, frame_index), in frame order.

    Frames with `valid == 0` (padding) are skipped; a frame seen twice (windows
    that overlap) keeps the mean of its predictions.
    """
    rows = collections.defaultdict(lambda: collections.defaultdict(list))
    labels_of = collections.defaultdict(dict)
    label_fields = ("labels", "expression_labels", "au_labels")
    for features, labels in batches:
        fields = _frame_outputs(predict(features), labels)
        valid = (np.asarray(labels["valid"], bool) if "valid" in labels
                 else np.ones(fields["labels"].shape[:2], bool))
        frames = np.asarray(labels["frame_index"])
        videos = np.asarray(labels["video_id"])
        for b in range(valid.shape[0]):
            video = _text(videos[b] if videos.ndim == 1 else videos[b, 0])
            for t in np.flatnonzero(valid[b]):
                frame = int(frames[b, t])
                rows[video][frame].append({k: v[b, t] for k, v in fields.items() if k not in label_fields})
                labels_of[video][frame] = {k: v[b, t] for k, v in fields.items() if k in label_fields}
    result = {}
    for video, by_frame in rows.items():
        order = sorted(by_frame)
        values = {key: np.stack([np.mean([seen[key] for seen in by_frame[f]], axis=0) for f in order])
                  for key in by_frame[order[0]][0]}
        values.update({key: np.stack([labels_of[video][f][key] for f in order])
                       for key in labels_of[video][order[0]]})
        result[video] = VideoPredictions(frame_index=np.asarray(order, np.int64), **values)
    return result


def _concat(videos: Dict[str, VideoPredictions]):
    if not videos:
        raise ValueError("no frame was evaluated: the evaluation split is empty")
    names = sorted(videos)
    return (np.concatenate([videos[v].labels for v in names]),
            np.concatenate([videos[v].predictions for v in names]))


def _stack(videos, names, field):
    return np.concatenate([getattr(videos[v], field) for v in names])


def expression_scores(videos: Dict[str, VideoPredictions]) -> dict:
    """[FBN] Table IV expression measures over all labelled frames, and the
    [AW] Sec. 5.2 per-video accuracy (mean frame probabilities decide)."""
    names = sorted(videos)
    labels = _stack(videos, names, "expression_labels")
    probabilities = _stack(videos, names, "expression_probabilities")
    if not (labels >= 0).any():
        return {}
    result = {"expression_f1": metrics.f1_macro(labels, probabilities),
              "expression_accuracy": metrics.accuracy(labels, probabilities),
              "expression_uar": metrics.uar(labels, probabilities),
              "expression_total": metrics.expression_total(labels, probabilities)}
    frame_videos = np.concatenate([np.full(len(videos[v].frame_index), v, dtype=object) for v in names])
    known = labels >= 0
    # A video's label: its most frequent labelled class; its prediction: the
    # class of its frames' mean probabilities ([AW] 5.2 frame aggregation).
    label_of = {v: np.bincount(videos[v].expression_labels[videos[v].expression_labels >= 0]).argmax()
                for v in names if (videos[v].expression_labels >= 0).any()}
    predicted, classes = aggregate_per_video(probabilities[known], frame_videos[known], method="mean")
    result["expression_video_accuracy"] = float(np.mean([label_of[v] == c for v, c in zip(predicted, classes)]))
    return result


def au_scores(videos: Dict[str, VideoPredictions]) -> dict:
    """[FBN] Table IV AU measures (F1, accuracy, E_total) over labelled frames."""
    names = sorted(videos)
    labels = _stack(videos, names, "au_labels")
    if not (labels >= 0).any():
        return {}
    scored = metrics.au_scores(labels, _stack(videos, names, "au_probabilities"), threshold=0.5)
    return {"au_f1": scored["f1_mean"], "au_accuracy": scored["accuracy_mean"], "au_total": scored["total"],
            "au_f1_per_au": [float(v) for v in scored["f1"]]}


def scores(videos: Dict[str, VideoPredictions], per_video: bool = True) -> dict:
    """Whole-set `va_scores` (ccc_valence, ccc_arousal, ccc_mean, mse_*, pcc_*),
    plus `per_video` {video: {ccc_valence, ...}} where a video has labels, and
    the expression / AU measures of a multi-task run with `multitask_score`."""
    if not videos:
        raise ValueError("no frame was evaluated: the evaluation split is empty")
    first = next(iter(videos.values()))
    result = {"num_videos": len(videos)}
    measures = []
    if first.has_va:
        labels, predictions = _concat(videos)
        result.update(metrics.va_scores(labels, predictions))
        measures.append(result["ccc_mean"])
        if per_video:
            result["per_video"] = {}
            for name, video in sorted(videos.items()):
                # Unannotated frames (NaN) are masked by va_scores: a video counts when some
                # dimension has two labelled frames, not only when every frame is labelled.
                if (np.isfinite(video.labels).sum(axis=0) > 1).any():
                    try:
                        result["per_video"][name] = metrics.va_scores(video.labels, video.predictions)
                    except ValueError:  # A dimension without labels in this video.
                        continue
    for present, task_scores, key in ((first.expression_labels is not None, expression_scores, "expression_total"),
                                      (first.au_labels is not None, au_scores, "au_total")):
        if present:
            result.update(task_scores(videos))
            if key in result:
                measures.append(result[key])
    if first.expression_labels is not None or first.au_labels is not None:
        result["multitask_score"] = float(np.mean(measures)) if measures else 0.0
    return result


def median_filter(videos: Dict[str, VideoPredictions], windows: Sequence[int]) -> Dict[str, VideoPredictions]:
    """Each video's predictions median-filtered with `windows[d]` for dimension d (`affnet.evaluation.smoothing`)."""
    smoothing.check_windows(windows)
    return {name: dataclasses.replace(video, predictions=smoothing.median_filter(video.predictions, windows))
            for name, video in videos.items()}


def utterances(videos: Dict[str, VideoPredictions], seq_len: int) -> Dict[str, VideoPredictions]:
    """[MC] Sec. 3: one (label, estimate) per utterance; estimate = mean over its
    consecutive `seq_len`-frame sequences of the sequence's median prediction."""
    out = {}
    for name, video in videos.items():
        chunks = [video.predictions[i:i + seq_len] for i in range(0, len(video.predictions), seq_len)]
        estimate = np.mean([np.median(c, axis=0) for c in chunks], axis=0)
        with np.errstate(invalid="ignore"):
            label = np.nanmean(video.labels, axis=0) if np.isfinite(video.labels).any() else video.labels[0]
        out[name] = VideoPredictions(frame_index=video.frame_index[:1], labels=label[None],
                                     predictions=estimate[None])
    return out


def plot_videos(videos: Dict[str, VideoPredictions], per_video_scores: dict, path: str, count: int = 2):
    """Predictions and labels over time for the `count` worst and best videos
    by mean CCC; writes a PNG to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    ranked = sorted(per_video_scores, key=lambda v: per_video_scores[v]["ccc_mean"])
    chosen = [("worst", v) for v in ranked[:count]] + [("best", v) for v in ranked[::-1][:count]]
    if not chosen:
        return None
    figure, axes = pyplot.subplots(len(chosen), 2, figsize=(12, 2.4 * len(chosen)), dpi=72, squeeze=False)
    for row, (kind, name) in enumerate(chosen):
        video = videos[name]
        for d, dim in enumerate(DIMENSIONS):
            ax = axes[row, d]
            ax.plot(video.frame_index, video.labels[:, d], label="label", lw=1)
            ax.plot(video.frame_index, video.predictions[:, d], label="prediction", lw=1)
            ax.set(ylim=(-1.05, 1.05), title=f"{kind}: {name} {dim} CCC "
                                             f"{per_video_scores[name][f'ccc_{dim}']:.2f}")
            ax.title.set_fontsize(8)
        axes[row, 0].legend(loc="lower left", fontsize=7)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
    return path

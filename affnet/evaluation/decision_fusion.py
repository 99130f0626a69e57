"""Decision-level fusion of [MC] Sec. 5.4.2 and the prediction files it reads.

Formula (1) of [MC]: per dimension i in {valence, arousal},

    O_i = sum_n t_i^n o_i^n / sum_n t_i^n,

o_i^n the estimate of network n, t_i^n network n's CCC on dimension i over
the validation set. [MC] fuses the final (per-utterance) estimates; the same
formula applies frame by frame. CCC lies in [-1, 1]: the formula is applied
as written (a network worse than chance on validation gets a negative
weight) unless `clip_negative=True` zeroes such weights; a dimension whose
weights sum to <= 0 has no defined average and raises ValueError.

Prediction files (what `launch/fuse.py` reads and writes): per-frame rows
  CSV  header with `video_id`, `frame_index`, `valence`, `arousal`, and
       optionally `valence_label`, `arousal_label` (empty = unlabelled);
       `launch/predict.py`'s CSV (frame_index, timestamp, face_id, valence,
       arousal; empty values where no face) reads too, one "video" per face_id.
  NPZ  arrays `video_id` (N,) str, `frame_index` (N,) int, `predictions`
       (N, 2) and optionally `labels` (N, 2) with NaN = unlabelled.
Both load into `{video_id: scoring.VideoPredictions}` in frame order.

The weights t_i^n come from validation, never from the fused split: computed from
validation prediction files (`weights_from_predictions`), read from
`launch/evaluate.py --split=validation` result JSONs (`weights_from_eval_reports`), or
given as `V:A` text (`weights_from_text`).
"""

import csv
import json
import os
from typing import Dict, Mapping, Sequence

import numpy as np

from affnet.evaluation import scoring
from affnet.evaluation.scoring import DIMENSIONS, VideoPredictions
from data_pipeline.base import atomic


def decision_weights(validation_ccc, clip_negative=False):
    """(networks, D) float weights t_i^n from validation CCCs; ValueError naming
    the values when they are not finite or a dimension's weights sum to <= 0."""
    weights = np.asarray(validation_ccc, np.float64)
    if weights.ndim != 2 or weights.shape[0] < 1 or not np.all(np.isfinite(weights)):
        raise ValueError(f"validation CCCs must be a finite (networks, dimensions) array, got {validation_ccc!r}")
    if clip_negative:
        weights = np.maximum(weights, 0.0)
    totals = weights.sum(axis=0)
    if np.any(totals <= 0.0):
        raise ValueError(f"validation CCCs {validation_ccc!r} sum to {totals.tolist()} per dimension: formula (1) "
                         "of [MC] needs a positive sum (see clip_negative)")
    return weights


def fuse_decisions(predictions: Sequence, validation_ccc, clip_negative=False):
    """Formula (1) of [MC]: the t-weighted average of the networks' estimates.

    Args:
      predictions: one (..., D) array per network, all the same shape.
      validation_ccc: (networks, D) validation CCC per network and dimension.
    Returns the fused (..., D) array (float64).
    """
    outputs = [np.asarray(p, np.float64) for p in predictions]
    weights = decision_weights(validation_ccc, clip_negative)
    if len(outputs) != weights.shape[0]:
        raise ValueError(f"{len(outputs)} prediction arrays but {weights.shape[0]} rows of validation CCC")
    shapes = {o.shape for o in outputs}
    if len(shapes) != 1 or outputs[0].shape[-1] != weights.shape[1]:
        raise ValueError(f"predictions must share one (..., {weights.shape[1]}) shape, got {sorted(shapes)}")
    stacked = np.stack(outputs)  # (networks, ..., D)
    w = weights.reshape((weights.shape[0],) + (1,) * (stacked.ndim - 2) + (weights.shape[1],))
    return (w * stacked).sum(axis=0) / weights.sum(axis=0)


def fuse_videos(networks: Sequence[Mapping[str, VideoPredictions]], validation_ccc, clip_negative=False):
    """`fuse_decisions` over `{video_id: VideoPredictions}` dicts, matched by
    video and frame index (ValueError naming the first video that differs);
    labels are the first network's."""
    if not networks:
        raise ValueError("no prediction sets to fuse")
    first = networks[0]
    for index, other in enumerate(networks[1:], start=2):
        if set(other) != set(first):
            missing = sorted(set(first) ^ set(other))[:3]
            raise ValueError(f"prediction set {index} covers other videos than set 1, e.g. {missing}")
        for name in first:
            if not np.array_equal(first[name].frame_index, other[name].frame_index):
                raise ValueError(f"prediction set {index} has other frames than set 1 in video {name!r}")
    fused = {}
    for name, video in first.items():
        values = fuse_decisions([net[name].predictions for net in networks], validation_ccc, clip_negative)
        fused[name] = VideoPredictions(frame_index=video.frame_index, labels=video.labels, predictions=values)
    return fused


# ------------------------------------------------------------------ prediction files

_LABEL_COLUMNS = tuple(f"{d}_label" for d in DIMENSIONS)


def _float(text):
    return float(text) if text not in ("", None) else np.nan


def _group(video_ids, frames, predictions, labels) -> Dict[str, VideoPredictions]:
    out = {}
    video_ids = np.asarray(video_ids).astype(str)
    for name in dict.fromkeys(video_ids.tolist()):
        rows = np.flatnonzero(video_ids == name)
        rows = rows[np.argsort(frames[rows], kind="stable")]
        if len(np.unique(frames[rows])) != len(rows):
            raise ValueError(f"video {name!r} lists a frame_index twice")
        out[name] = VideoPredictions(frame_index=frames[rows].astype(np.int64), labels=labels[rows],
                                     predictions=predictions[rows])
    return out


def _read_csv(path):
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        needed = {"frame_index", *DIMENSIONS}
        if not needed <= set(columns):
            raise ValueError(f"{path}: a prediction CSV needs columns {sorted(needed)}; it has {columns}")
        rows = [row for row in reader if row[DIMENSIONS[0]] not in ("", None)]  # predict.py: no face.
    if not rows:
        raise ValueError(f"{path}: no prediction rows")
    if "video_id" in columns:
        video_ids = [row["video_id"] for row in rows]
    elif "face_id" in columns:
        video_ids = [f"face{row['face_id']}" for row in rows]
    else:
        video_ids = [os.path.splitext(os.path.basename(path))[0]] * len(rows)
    try:
        frames = np.array([int(row["frame_index"]) for row in rows])
        predictions = np.array([[float(row[d]) for d in DIMENSIONS] for row in rows])
        labels = np.array([[_float(row.get(c)) for c in _LABEL_COLUMNS] for row in rows])
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return video_ids, frames, predictions, labels


def _read_npz(path):
    with np.load(path, allow_pickle=False) as data:
        missing = {"video_id", "frame_index", "predictions"} - set(data.files)
        if missing:
            raise ValueError(f"{path}: a prediction NPZ needs arrays video_id, frame_index, predictions; "
                             f"missing {sorted(missing)}")
        predictions = np.asarray(data["predictions"], np.float64)
        labels = (np.asarray(data["labels"], np.float64) if "labels" in data.files
                  else np.full_like(predictions, np.nan))
        video_ids, frames = data["video_id"], np.asarray(data["frame_index"], np.int64)
    if predictions.ndim != 2 or predictions.shape[1] != len(DIMENSIONS) or labels.shape != predictions.shape or (
            len(video_ids) != len(predictions) or len(frames) != len(predictions)):
        raise ValueError(f"{path}: predictions {predictions.shape}, labels {labels.shape}, {len(video_ids)} video "
                         f"ids and {len(frames)} frame indices do not describe the same (N, 2) frames")
    return video_ids, frames, predictions, labels


def read_predictions(path) -> Dict[str, VideoPredictions]:
    """A prediction file (module docstring) as `{video_id: VideoPredictions}`."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"prediction file {path!r} does not exist")
    if path.endswith(".npz"):
        return _group(*_read_npz(path))
    if path.endswith(".csv"):
        return _group(*_read_csv(path))
    raise ValueError(f"{path}: prediction files are .csv or .npz")


def write_predictions(path, videos: Mapping[str, VideoPredictions]):
    """Write `{video_id: VideoPredictions}` as a prediction CSV or NPZ (by suffix), whole or not at all
    (`atomic.replace_atomically`: a kill mid-write leaves no partial file under `path`)."""
    path = os.fspath(path)
    names = sorted(videos)
    ids = np.concatenate([[name] * len(videos[name].frame_index) for name in names]).astype(str)
    frames = np.concatenate([videos[name].frame_index for name in names])
    predictions = np.concatenate([videos[name].predictions for name in names])
    labels = np.concatenate([videos[name].labels for name in names])
    if path.endswith(".npz"):
        # The temporary keeps the .npz suffix: np.savez appends one to a name without it.
        atomic.replace_atomically(path, lambda temporary: np.savez(
            temporary, video_id=ids, frame_index=frames, predictions=predictions, labels=labels),
            atomic.temporary_path(path) + ".npz")
        return path
    if not path.endswith(".csv"):
        raise ValueError(f"{path}: prediction files are .csv or .npz")

    def write_csv(temporary):
        with open(temporary, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["video_id", "frame_index", *DIMENSIONS, *_LABEL_COLUMNS])
            for i in range(len(ids)):
                label_text = ["" if np.isnan(v) else repr(float(v)) for v in labels[i]]
                writer.writerow([ids[i], int(frames[i]), *[repr(float(v)) for v in predictions[i]], *label_text])

    atomic.replace_atomically(path, write_csv)
    return path


def at_level(videos: Mapping[str, VideoPredictions], level: str, seq_len: int) -> Dict[str, VideoPredictions]:
    """Utterance estimates ([MC] Sec. 3, `scoring.utterances`) at level "utterance", the frames otherwise."""
    return scoring.utterances(videos, seq_len) if level == "utterance" else dict(videos)


def labelled_scores(videos: Mapping[str, VideoPredictions]):
    """Whole-set `scoring.scores` (no per-video part), or None when a dimension has no label."""
    labels = np.concatenate([v.labels for v in videos.values()])
    if not np.isfinite(labels).any(axis=0).all():
        return None
    return scoring.scores(videos, per_video=False)


def weights_from_predictions(paths: Sequence[str], level: str, seq_len: int) -> list:
    """[[ccc_valence, ccc_arousal]] per network, scored on its validation prediction file at `level`."""
    weights = []
    for path in paths:
        result = labelled_scores(at_level(read_predictions(path), level, seq_len))
        if result is None:
            raise ValueError(f"{path}: validation predictions need labels in both dimensions")
        weights.append([result["ccc_valence"], result["ccc_arousal"]])
    return weights


def weights_from_eval_reports(paths: Sequence[str], level: str) -> list:
    """[[ccc_valence, ccc_arousal]] per network from `launch/evaluate.py` result JSONs of the
    validation split (`utterance_level` CCC at level "utterance" when present); a JSON of
    another split than the one its post-processing was chosen on is refused."""
    weights = []
    for path in paths:
        try:
            with open(path) as handle:
                report = json.load(handle)
            chosen_on = (report.get("postprocess") or report.get("median_windows") or {}).get("chosen_on")
            scored = report["utterance_level"] if level == "utterance" and "utterance_level" in report else report
            weights.append([float(scored["ccc_valence"]), float(scored["ccc_arousal"])])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{path}: cannot read ccc_valence/ccc_arousal ({error!r})") from None
        if chosen_on and report.get("split") != chosen_on:
            raise ValueError(f"{path} scores split {report.get('split')!r}, not the validation split "
                             f"{chosen_on!r}: weights come from validation (launch/evaluate.py --split={chosen_on})")
    return weights


def weights_from_text(entries: Sequence[str]) -> list:
    """[[valence, arousal]] from "VALENCE:AROUSAL" entries."""
    weights = []
    for entry in entries:
        try:
            valence, arousal = (float(part) for part in entry.split(":"))
        except ValueError:
            raise ValueError(f"--validation_ccc entries are VALENCE:AROUSAL, got {entry!r}") from None
        weights.append([valence, arousal])
    return weights

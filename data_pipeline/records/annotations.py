"""Per-frame labels, annotation-to-frame matching and annotator fusion.

`FrameLabels` holds one video's labels indexed by source frame: valence and
arousal (NaN when unlabelled), expression (class in `schema.EXPRESSIONS`
order, -1 when unlabelled) and AUs (0/1, -1 when unlabelled). It is what the
dataset adapters build and what `preprocess.process_video(labels=...)` takes.

`match_to_frames` links each frame time to the nearest annotation time stamp
and averages the two values on an exact tie ([AW] Sec. 3.3).

Annotator fusion ([AW2] Sec. II-D): (i) the mean of the annotators, or
(ii) a per-annotator median filter of 5, 15 or 30 frames followed by the mean;
the approach is chosen by MAIC, the mean over annotators of each annotator's
average Pearson correlation with the other annotators, computed over all
videos. [AW] Sec. 3.4 instead averaged the 2-4 most correlated annotations
(chosen by two experts); `fuse_most_correlated` ranks annotators by their
average correlation with the others and keeps the top k.
"""

import dataclasses
import warnings
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import scipy.ndimage

from data_pipeline.records import schema

# [AW2] Sec. II-D: median-filter sizes tried (0.1, 0.5 and 1 s at 30 fps).
MEDIAN_WINDOWS = (5, 15, 30)
# [AW] Sec. 3.4: "the most correlated annotations (between 2 to 4 annotations)".
MOST_CORRELATED_RANGE = (2, 4)


def _column(values, dtype, name: str, width: Optional[int] = None):
    if values is None:
        return None
    values = np.asarray(values, dtype)
    expected_ndim = 1 if width is None else 2
    if values.ndim != expected_ndim:
        raise ValueError(f"FrameLabels.{name} must be {expected_ndim}-D, got shape {values.shape}")
    if width is not None and values.shape[1] != width:
        raise ValueError(f"FrameLabels.au has {values.shape[1]} columns for {width} au_names")
    return values


@dataclasses.dataclass
class FrameLabels:
    """One video's labels, row k = source frame k; None means not annotated.

    valence, arousal: float32 (N,), NaN unlabelled. expression: int64 (N,),
    class in `schema.EXPRESSIONS` order, -1 unlabelled. au: int64 (N, K) 0/1,
    -1 unlabelled, columns named by `au_names`. Every given array has the same
    N (`merge` pads labels of different lengths).
    """

    valence: Optional[np.ndarray] = None
    arousal: Optional[np.ndarray] = None
    expression: Optional[np.ndarray] = None
    au: Optional[np.ndarray] = None
    au_names: Sequence[str] = ()

    def __post_init__(self):
        self.au_names = tuple(self.au_names)
        self.valence = _column(self.valence, np.float32, "valence")
        self.arousal = _column(self.arousal, np.float32, "arousal")
        self.expression = _column(self.expression, np.int64, "expression")
        if self.au is not None and not self.au_names:
            raise ValueError(f"FrameLabels.au of shape {np.shape(self.au)} given without au_names")
        self.au = _column(self.au, np.int64, "au", len(self.au_names))
        lengths = {name: len(value) for name, value in self._columns().items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"FrameLabels columns differ in length: {lengths}")
        if self.expression is not None:
            bad = (self.expression < -1) | (self.expression >= len(schema.EXPRESSIONS))
            if bad.any():
                raise ValueError(f"FrameLabels.expression must be in [-1, {len(schema.EXPRESSIONS) - 1}], "
                                 f"got {sorted(set(self.expression[bad].tolist()))}")
        if self.au is not None and not np.isin(self.au, (-1, 0, 1)).all():
            bad = sorted(set(np.unique(self.au).tolist()) - {-1, 0, 1})
            raise ValueError(f"FrameLabels.au must be -1, 0 or 1, got {bad}")

    def _columns(self) -> Dict[str, np.ndarray]:
        names = ("valence", "arousal", "expression", "au")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    @property
    def num_frames(self) -> int:
        return max((len(v) for v in self._columns().values()), default=0)

    def take(self, index) -> "FrameLabels":
        """Rows at source frame `index`; negative or past-the-end rows are unlabelled."""
        index = np.asarray(index, np.int64)
        inside = (index >= 0) & (index < self.num_frames)

        def pick(values, fill):
            if values is None:
                return None
            out = np.full((len(index),) + values.shape[1:], fill, values.dtype)
            out[inside] = values[index[inside]]
            return out

        return FrameLabels(pick(self.valence, np.nan), pick(self.arousal, np.nan),
                           pick(self.expression, -1), pick(self.au, -1), self.au_names)

    def pad(self, num_frames: int) -> "FrameLabels":
        """The same labels over `num_frames` rows (extra rows unlabelled; never truncates)."""
        if num_frames < self.num_frames:
            raise ValueError(f"cannot pad {self.num_frames} label rows to {num_frames}")
        return self.take(np.arange(num_frames))

    def merge(self, other: "FrameLabels") -> "FrameLabels":
        """Columns of both (e.g. VA, EXPR and AU files of one video), padded to the longer."""
        for name in ("valence", "arousal", "expression", "au"):
            if getattr(self, name) is not None and getattr(other, name) is not None:
                raise ValueError(f"both FrameLabels define {name}")
        n = max(self.num_frames, other.num_frames)
        a, b = self.pad(n), other.pad(n)
        return FrameLabels(
            a.valence if a.valence is not None else b.valence,
            a.arousal if a.arousal is not None else b.arousal,
            a.expression if a.expression is not None else b.expression,
            a.au if a.au is not None else b.au,
            a.au_names or b.au_names)

    def counts(self) -> Dict[str, int]:
        """Labelled frames per task (a VA frame needs both values; an AU frame any AU)."""
        counts = {}
        if self.valence is not None or self.arousal is not None:
            n = self.num_frames
            v = self.valence if self.valence is not None else np.full(n, np.nan)
            a = self.arousal if self.arousal is not None else np.full(n, np.nan)
            counts["va"] = int(np.sum(np.isfinite(v) & np.isfinite(a)))
        if self.expression is not None:
            counts["expression"] = int(np.sum(self.expression >= 0))
        if self.au is not None:
            counts["au"] = int(np.sum((self.au >= 0).any(axis=1)))
        return counts


def match_to_frames(frame_times, annotation_times, values, max_distance: Optional[float] = None) -> np.ndarray:
    """Annotation values at frame times ([AW] Sec. 3.3).

    For each frame time the value of the nearest annotation time stamp; when
    two time stamps are equally near (within 1e-9 s), their average (NaN-aware:
    a missing neighbour leaves the other). `values` is (M,) or (M, D);
    `annotation_times` (M,) strictly increasing. `max_distance` (seconds):
    frames farther than this from every time stamp get NaN (e.g. frames after
    the annotation ends); None never drops.
    """
    frame_times = np.asarray(frame_times, np.float64)
    times = np.asarray(annotation_times, np.float64)
    values = np.asarray(values, np.float64)
    if times.ndim != 1 or not len(times):
        raise ValueError(f"annotation_times must be a non-empty 1-D array, got shape {times.shape}")
    if values.shape[:1] != times.shape:
        raise ValueError(f"values has {values.shape[:1]} rows for {len(times)} annotation times")
    if not np.all(np.diff(times) > 0):
        raise ValueError("annotation_times must be strictly increasing")
    if frame_times.ndim != 1:
        raise ValueError(f"frame_times must be 1-D, got shape {frame_times.shape}")
    right = np.clip(np.searchsorted(times, frame_times), 0, len(times) - 1)
    left = np.clip(right - 1, 0, len(times) - 1)
    d_left = np.abs(frame_times - times[left])
    d_right = np.abs(times[right] - frame_times)
    tie = np.isclose(d_left, d_right, rtol=0.0, atol=1e-9) & (left != right)
    nearest = np.where(d_left < d_right, left, right)
    out = values[nearest].copy()
    if tie.any():
        pair = np.stack([values[left[tie]], values[right[tie]]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # Both neighbours NaN -> NaN.
            out[tie] = np.nanmean(pair, axis=0)
    if max_distance is not None:
        far = np.minimum(d_left, d_right) > max_distance
        out[far] = np.nan
    return out


Annotations = Union[np.ndarray, Sequence[np.ndarray]]


def _videos(annotations: Annotations) -> List[np.ndarray]:
    """(A, N) array or a list of per-video (A, N_v) arrays -> list of float64 (A, N_v)."""
    if isinstance(annotations, np.ndarray) and annotations.ndim == 2:
        videos = [annotations]
    else:
        videos = [np.asarray(v) for v in annotations]
    out = []
    for k, video in enumerate(videos):
        video = np.asarray(video, np.float64)
        if video.ndim != 2:
            raise ValueError(f"annotations of video {k} must be (annotators, frames), got shape {video.shape}")
        if not np.all(np.isfinite(video)):
            raise ValueError(f"annotations of video {k} contain NaN or inf")
        out.append(video)
    if not out:
        raise ValueError("no annotations given")
    counts = {v.shape[0] for v in out}
    if len(counts) != 1:
        raise ValueError(f"videos have different numbers of annotators: {sorted(counts)}")
    return out


def _same_kind(annotations: Annotations, videos: List[np.ndarray]):
    if isinstance(annotations, np.ndarray) and annotations.ndim == 2:
        return videos[0]
    return videos


def fuse_mean(annotations: Annotations):
    """Mean over annotators ([AW2] Sec. II-D approach (i)): (A, N) -> (N,), or per video."""
    videos = _videos(annotations)
    return _same_kind(annotations, [v.mean(axis=0) for v in videos])


def median_filter(annotations: Annotations, window: int):
    """Each annotator's trace median-filtered over `window` frames, per video.

    Edges repeat the end values (scipy 'nearest'); an even window is centred
    half a frame late, as scipy does.
    """
    if int(window) != window or window < 1:
        raise ValueError(f"median window must be a positive integer, got {window!r}")
    videos = _videos(annotations)
    filtered = [scipy.ndimage.median_filter(v, size=(1, int(window)), mode="nearest") for v in videos]
    return _same_kind(annotations, filtered)


def fuse_median_filtered(annotations: Annotations, window: int = 30):
    """Median filter per annotator, then mean ([AW2] Sec. II-D approach (ii), chosen with window 30)."""
    return fuse_mean(median_filter(annotations, window))


def annotator_correlations(annotations: Annotations) -> np.ndarray:
    """(A, A) Pearson correlations between annotators over all videos concatenated ([AW2] II-D).

    A constant annotator has no defined correlation; raises ValueError.
    """
    videos = _videos(annotations)
    traces = np.concatenate(videos, axis=1)
    if traces.shape[0] < 2:
        raise ValueError(f"correlations need at least 2 annotators, got {traces.shape[0]}")
    flat = np.ptp(traces, axis=1) == 0
    if flat.any():
        raise ValueError(f"annotators {np.flatnonzero(flat).tolist()} are constant; Pearson correlation undefined")
    return np.corrcoef(traces)


def average_correlations(annotations: Annotations) -> np.ndarray:
    """(A,) each annotator's average correlation with the others."""
    corr = annotator_correlations(annotations)
    a = corr.shape[0]
    return (corr.sum(axis=1) - np.diag(corr)) / (a - 1)


def maic(annotations: Annotations) -> float:
    """Mean of average inter-annotator correlation ([AW2] Sec. II-D)."""
    return float(np.mean(average_correlations(annotations)))


def fuse_most_correlated(annotations: Annotations, k: int = MOST_CORRELATED_RANGE[1]):
    """Mean of the k annotators with the highest average correlation with the others.

    [AW] Sec. 3.4 had two experts validate "the most correlated annotations
    (between 2 to 4 annotations)" per video; here the ranking is automatic and
    k fixed (default 4, the paper's upper bound; capped at the annotator count).
    """
    videos = _videos(annotations)
    a = videos[0].shape[0]
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    keep = np.sort(np.argsort(-average_correlations(videos), kind="stable")[:min(int(k), a)])
    return fuse_mean(_same_kind(annotations, [v[keep] for v in videos]))


def parse_fusion(method: str):
    """'mean' | 'median<w>' | 'top<k>' -> (kind, parameter); ValueError otherwise."""
    if method == "mean":
        return "mean", None
    for kind in ("median", "top"):
        if method.startswith(kind) and method[len(kind):].isdigit() and int(method[len(kind):]) > 0:
            return kind, int(method[len(kind):])
    raise ValueError(f"fusion method must be 'mean', 'median<window>' or 'top<k>', got {method!r}")


def fuse(annotations: Annotations, method: str):
    """Fused labels by a method name (see `parse_fusion`)."""
    kind, parameter = parse_fusion(method)
    if kind == "mean":
        return fuse_mean(annotations)
    if kind == "median":
        return fuse_median_filtered(annotations, parameter)
    return fuse_most_correlated(annotations, parameter)


def method_maic(annotations: Annotations, method: str) -> float:
    """MAIC of the annotations a fusion method averages: raw, median filtered, or the top k."""
    kind, parameter = parse_fusion(method)
    if kind == "median":
        return maic(median_filter(annotations, parameter))
    if kind == "top":
        videos = _videos(annotations)
        keep = np.argsort(-average_correlations(videos), kind="stable")[:parameter]
        if len(keep) < 2:
            raise ValueError(f"MAIC of {method!r} needs k >= 2")
        return maic([v[np.sort(keep)] for v in videos])
    return maic(annotations)


@dataclasses.dataclass
class FusionChoice:
    """The fusion `method` with the best MAIC, its fused labels, and every method's MAIC."""

    method: str
    fused: Union[np.ndarray, List[np.ndarray]]
    maic: Dict[str, float]


def choose_fusion(annotations: Annotations, windows: Sequence[int] = MEDIAN_WINDOWS,
                  top_k: Sequence[int] = ()) -> FusionChoice:
    """Pick the fusion with the highest MAIC ([AW2] Sec. II-D).

    Candidates: 'mean' (MAIC of the raw traces) and 'median<w>' for each window
    (MAIC of the filtered traces). [AW2] reports (0.60, 0.58) for the mean and
    (0.63, 0.60) for a 30-frame filter and chose the latter. `top_k` adds [AW]'s
    'top<k>' candidates; off by default because the MAIC of a subset of the
    most correlated annotators is higher by construction. Ties keep the earlier
    candidate (mean first). Run once per dimension (valence, arousal).
    """
    methods = ["mean"] + [f"median{int(w)}" for w in windows] + [f"top{int(k)}" for k in top_k]
    values = {method: method_maic(annotations, method) for method in methods}
    best = max(methods, key=lambda m: (values[m], -methods.index(m)))
    return FusionChoice(best, fuse(annotations, best), values)

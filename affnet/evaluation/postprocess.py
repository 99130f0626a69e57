"""The [MC] Sec. 6.3 / [OMG] Sec. III-E post-processing chain, chosen on validation.

  1. median filter of each video's (utterance's) per-frame predictions, one
     window per dimension ([MC] found 81 valence, 3 arousal);
  2. utterance level ([MC] Sec. 3, [OMG] III-D): split the utterance into
     consecutive `seq_len`-frame sequences, take each sequence's median, and
     average them (`affnet.evaluation.scoring.utterances`);
  3. smoothing of the per-utterance predictions, "especially those that
     consisted of too few frames". The papers give no formula; ours shrinks an
     utterance's estimate towards the mean of its neighbouring utterances in
     the same video, in proportion to how few frames it has:
         o'_u = (n_u o_u + k m_u) / (n_u + k),
     n_u its frame count, m_u the mean estimate of the utterances within
     `radius` positions of it in its video (none: unchanged), k >= 0 a
     strength in frames per dimension (k = 0: no smoothing).

"Any of these steps was kept when an improvement was observed on the CCC over
the validation set": `choose_chain` picks, per dimension, the median window and
then the smoothing strength that maximise the validation CCC at the level the
data is scored at (utterances for OMG, frames otherwise); the identity
(window 1, k = 0) wins ties, so a step is kept only if it strictly helps.
`apply_chain` applies the chosen configuration unchanged to the test set.
`affnet.training.evaluate.evaluate_run` runs both (eval JSON `postprocess`:
`ChainConfig.steps`).

Utterance ids are OMG's `<video>/<utterance>` video ids (the OMG adapter's
convention); their order within a video is the natural order of the
utterance part ("utterance_2" before "utterance_10").
"""

import dataclasses
import re
from typing import Dict, Mapping, Sequence, Tuple

import numpy as np

from affnet.evaluation import metrics, scoring
from affnet.evaluation.scoring import DIMENSIONS, MEDIAN_WINDOWS, VideoPredictions
from data_pipeline.base import checks

SMOOTHING_STRENGTHS = (0, 5, 10, 20, 40, 80, 160, 320)
LEVELS = ("utterance", "frame")


@dataclasses.dataclass(frozen=True)
class ChainConfig:
    """A chosen post-processing chain; `scores` holds the validation CCC of every tried step."""

    level: str
    seq_len: int
    median_windows: Tuple[int, ...]
    smoothing: Tuple[float, ...]
    radius: int = 1
    scores: dict = dataclasses.field(default_factory=dict, compare=False)

    def to_json(self):
        return dataclasses.asdict(self)

    def steps(self) -> dict:
        """Per step and dimension: the chosen value, whether the step is kept,
        and the validation CCC without it (identity) and with it, each measured
        after the steps before it (`choose_chain`). Empty before a choice."""
        out = {}
        for step, table_key, chosen, identity in (("median_filter", "median_window", self.median_windows, 1),
                                                  ("smoothing", "smoothing", self.smoothing, 0.0)):
            tables = self.scores.get(table_key) or {}
            for d, value in enumerate(chosen):
                table = tables.get(_dimension(d))
                if table:
                    out.setdefault(step, {})[_dimension(d)] = {
                        "value": value, "kept": value != identity,
                        "validation_ccc_without": table[identity], "validation_ccc_with": table[value]}
        return out


def _dimension(d):
    return DIMENSIONS[d] if d < len(DIMENSIONS) else str(d)


def _natural_key(text):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def split_utterance_id(utterance_id):
    """`<video>/<utterance>` -> (video, utterance); an id without "/" is its own video."""
    video, _, utterance = utterance_id.rpartition("/")
    return (video, utterance) if video else (utterance_id, "")


def smooth_utterances(estimates: Mapping[str, np.ndarray], frame_counts: Mapping[str, int], strength,
                      radius=1) -> Dict[str, np.ndarray]:
    """Step 3 (module docstring) on `{utterance_id: (D,) estimate}`.

    Args:
      frame_counts: frames behind each estimate (n_u).
      strength: k per dimension, a number or a (D,) sequence, each >= 0.
      radius: how many utterances on each side count as neighbours (>= 1).
    """
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 1:
        raise ValueError(f"radius must be an int >= 1, got {radius!r}")
    k = np.asarray(strength, np.float64)
    if np.any(~np.isfinite(k)) or np.any(k < 0):
        raise ValueError(f"smoothing strength must be >= 0, got {strength!r}")
    by_video = {}
    for name in estimates:
        video, utterance = split_utterance_id(name)
        by_video.setdefault(video, []).append((_natural_key(utterance), name))
    out = {}
    for members in by_video.values():
        ordered = [name for _, name in sorted(members)]
        for position, name in enumerate(ordered):
            neighbours = [ordered[j] for j in range(max(0, position - radius), min(len(ordered), position + radius + 1))
                          if j != position]
            own = np.asarray(estimates[name], np.float64)
            if not neighbours:
                out[name] = own
                continue
            mean = np.mean([estimates[n] for n in neighbours], axis=0)
            n = float(frame_counts[name])
            out[name] = np.where(k > 0, (n * own + k * mean) / np.maximum(n + k, 1e-12), own)
    return out


def _utterance_level(videos: Mapping[str, VideoPredictions], seq_len, smoothing, radius):
    estimates = scoring.utterances(videos, seq_len)
    if not np.any(np.asarray(smoothing) > 0):
        return estimates
    smoothed = smooth_utterances({n: e.predictions[0] for n, e in estimates.items()},
                                 {n: len(videos[n].predictions) for n in videos}, smoothing, radius)
    return {n: dataclasses.replace(e, predictions=smoothed[n][None]) for n, e in estimates.items()}


def apply_chain(config: ChainConfig, videos: Mapping[str, VideoPredictions]) -> Dict[str, VideoPredictions]:
    """The chain `config` on `{video_id: VideoPredictions}`: per-frame
    predictions at level "frame", one row per utterance at level "utterance"."""
    filtered = scoring.median_filter(dict(videos), list(config.median_windows))
    if config.level == "frame":
        return filtered
    return _utterance_level(filtered, config.seq_len, np.asarray(config.smoothing, np.float64), config.radius)


def _ccc(videos, dimension):
    labels = np.concatenate([v.labels[:, dimension] for v in videos.values()])
    predictions = np.concatenate([v.predictions[:, dimension] for v in videos.values()])
    ok = np.isfinite(labels)
    return metrics.ccc(labels[ok], predictions[ok])


def choose_chain(validation: Mapping[str, VideoPredictions], level="utterance", seq_len=80,
                 windows: Sequence[int] = MEDIAN_WINDOWS, strengths: Sequence[float] = SMOOTHING_STRENGTHS,
                 radius=1) -> ChainConfig:
    """The chain maximising validation CCC per dimension, each step kept only if it helps.

    Args:
      validation: `{video_id: VideoPredictions}` of the validation split.
      level: "utterance" (OMG: one label per utterance; scored on utterance
        estimates) or "frame" (per-frame labels; no smoothing step).
      seq_len: sequence length of the utterance estimate (80, [MC] 6.3).
      windows: odd median windows to try (1 is always tried).
      strengths: smoothing strengths k to try (0 is always tried).
    """
    checks.check_choice(level, "level", LEVELS)
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(f"seq_len must be an int >= 1, got {seq_len!r}")
    if not validation:
        raise ValueError("choose_chain needs validation predictions; got none")
    dims = next(iter(validation.values())).predictions.shape[1]
    windows = sorted({int(w) for w in windows} | {1})
    strengths = sorted({float(s) for s in strengths} | {0.0})
    chosen_windows, chosen_strengths = [1] * dims, [0.0] * dims
    scores = {"median_window": {}, "smoothing": {}}

    def score(trial_windows, trial_strengths, d):
        trial = ChainConfig(level, seq_len, tuple(trial_windows), tuple(trial_strengths), radius)
        return _ccc(apply_chain(trial, validation), d)

    for d in range(dims):
        name = _dimension(d)
        table = {w: score([w if i == d else 1 for i in range(dims)], [0.0] * dims, d) for w in windows}
        chosen_windows[d] = max(table, key=lambda w: (table[w], -w))
        scores["median_window"][name] = table
    if level == "utterance":
        for d in range(dims):
            name = _dimension(d)
            table = {k: score(chosen_windows, [k if i == d else 0.0 for i in range(dims)], d) for k in strengths}
            chosen_strengths[d] = max(table, key=lambda k: (table[k], -k))
            scores["smoothing"][name] = table
    return ChainConfig(level, seq_len, tuple(chosen_windows), tuple(chosen_strengths), radius, scores)


def choose_median_windows(videos: Dict[str, VideoPredictions], candidates=MEDIAN_WINDOWS):
    """Per dimension, the window in `candidates` with the highest frame-level CCC
    on `videos` (validation); 1 (no filter) wins ties. Returns
    (windows, {dim: {window: ccc}}): the median-filter step of
    `choose_chain` at level "frame"."""
    chain = choose_chain(videos, level="frame", windows=candidates)
    return list(chain.median_windows), chain.scores["median_window"]

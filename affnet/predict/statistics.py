"""Per-input and per-face statistics of predict's per-frame table (summary.json `statistics`, OUT/index.csv).

What papers report per video about its affect ([AW2] Sec. II: the valence-arousal distribution of
the videos, its quadrants) and what a researcher reads first, from the table of `outputs.table`:

  frames            distinct frames of the input ((frame_index, timestamp) pairs: the resampled timeline)
  face_share        share of those frames with at least one face predicted (`success` 1)
  faces             one entry per face_id, in id order:
    face_id, frames   the face's predicted frames
    coverage          frames / the input's frames
    valence, arousal  mean, std (population, ddof 0) and quantiles q05 q25 q50 q75 q95
                      (numpy's linear interpolation) of the face's per-frame values
    quadrants         share of the face's frames per valence-arousal quadrant; 0 counts as positive:
                      "v+a+" (valence >= 0, arousal >= 0), "v-a+", "v-a-", "v+a-"
    expressions       share of the face's frames whose most probable expression is each name
                      (multi-task and categorical exports)
    aus               base rate per AU: share of the face's frames with probability >= 0.5
                      (multi-task exports)

Only rows with `success` 1 and finite predictions enter a face's statistics.
"""

import csv
import os
from typing import Dict, List, Sequence

import numpy as np

from data_pipeline.base import atomic

QUANTILES = (5, 25, 50, 75, 95)
QUADRANTS = ("v+a+", "v-a+", "v-a-", "v+a-")
AU_THRESHOLD = 0.5
VA = ("valence", "arousal")


def _round(value: float) -> float:
    return round(float(value), 6)


def distribution(values: np.ndarray) -> dict:
    """mean, std (ddof 0) and the `QUANTILES` of 1-D values; NaN fields (JSON null) when empty."""
    values = np.asarray(values, np.float64)
    if not len(values):
        return {"mean": None, "std": None, **{f"q{q:02d}": None for q in QUANTILES}}
    quantiles = np.percentile(values, QUANTILES)
    return {"mean": _round(values.mean()), "std": _round(values.std()),
            **{f"q{q:02d}": _round(v) for q, v in zip(QUANTILES, quantiles)}}


def quadrant_shares(valence: np.ndarray, arousal: np.ndarray) -> dict:
    """Share of frames per quadrant of the valence-arousal plane (0 counts as positive)."""
    count = len(valence)
    if not count:
        return {name: None for name in QUADRANTS}
    positive_v, positive_a = valence >= 0, arousal >= 0
    masks = (positive_v & positive_a, ~positive_v & positive_a, ~positive_v & ~positive_a, positive_v & ~positive_a)
    return {name: _round(mask.sum() / count) for name, mask in zip(QUADRANTS, masks)}


def face_statistics(rows, columns: Dict[str, List[str]], input_frames: int) -> dict:
    """Statistics of one face's table rows (already restricted to `success` 1)."""
    names = [c for cs in columns.values() for c in cs]
    if names:
        rows = rows[np.isfinite(rows[names].to_numpy(np.float64)).all(axis=1)]
    count = len(rows)
    result = {"frames": int(count), "coverage": _round(count / input_frames) if input_frames else None}
    if "valence_arousal" in columns:
        valence, arousal = (rows[name].to_numpy(np.float64) for name in VA)
        result["valence"], result["arousal"] = distribution(valence), distribution(arousal)
        result["quadrants"] = quadrant_shares(valence, arousal)
    if "expression_probabilities" in columns:
        expression_columns = columns["expression_probabilities"]
        winners = np.argmax(rows[expression_columns].to_numpy(np.float64), axis=1) if count else np.zeros(0, int)
        result["expressions"] = {name[len("expression_"):]: _round(np.mean(winners == k)) if count else None
                                 for k, name in enumerate(expression_columns)}
    if "au_probabilities" in columns:
        probabilities = rows[columns["au_probabilities"]].to_numpy(np.float64)
        result["aus"] = {name: _round(np.mean(probabilities[:, k] >= AU_THRESHOLD)) if count else None
                         for k, name in enumerate(columns["au_probabilities"])}
    return result


def compute(table, columns: Dict[str, List[str]]) -> dict:
    """The statistics of one input's table (module docstring); `columns` as `outputs.prediction_columns`."""
    frames = int(table.drop_duplicates(["frame_index", "timestamp"]).shape[0]) if len(table) else 0
    found = table[table.success == 1]
    with_face = int(found.drop_duplicates(["frame_index", "timestamp"]).shape[0]) if len(found) else 0
    faces = [{"face_id": int(face_id), **face_statistics(rows, columns, frames)}
             for face_id, rows in found.groupby("face_id")]
    return {"frames": frames, "face_share": _round(with_face / frames) if frames else None, "faces": faces}


_GROUPS = {"valence": "valence", "arousal": "arousal", "quadrants": "quadrant", "expressions": "expression",
           "aus": "au"}


def outcome(entry: dict) -> str:
    """An input's status as its outputs show it: an input skipped by a resumed run keeps the status of
    the run that made its outputs ("ok"), so the index is the same whether or not a run was resumed."""
    return entry.get("previous_status", "ok") if entry.get("status") == "skipped" else entry.get("status", "")


def index_rows(entries: Sequence[dict], directory: str = "") -> List[dict]:
    """One flat row per (input, face) of summary entries; an input without a face (or failed) has one row.

    Columns: input, status (`outcome`), table (relative to `directory`, where the index lives), frames, face_share, face_id, face_frames, face_coverage, then
    valence_<stat>, arousal_<stat>, quadrant_<name>, expression_<name>, au_<name> as the export has them.
    """
    rows = []
    for entry in entries:
        statistics = entry.get("statistics") or {}
        table = entry.get("table", "")
        base = {"input": entry.get("input", ""), "status": outcome(entry),
                "table": os.path.relpath(table, directory) if directory and os.path.isabs(table) else table,
                "frames": statistics.get("frames", ""), "face_share": _blank(statistics.get("face_share"))}
        for face in statistics.get("faces") or [{}]:
            row = dict(base, face_id=face.get("face_id", ""), face_frames=face.get("frames", ""),
                       face_coverage=_blank(face.get("coverage")))
            for group, prefix in _GROUPS.items():
                for name, value in (face.get(group) or {}).items():
                    row[f"{prefix}_{name}"] = _blank(value)
            rows.append(row)
    return rows


def _blank(value):
    return "" if value is None else value


def write_index(entries: Sequence[dict], path: str) -> None:
    """OUT/index.csv: `index_rows` with the union of their columns, in first-seen order."""
    rows = index_rows(entries, os.path.dirname(os.path.abspath(path)))
    header: List[str] = []
    for row in rows:
        header += [key for key in row if key not in header]

    def write(temporary):
        with open(temporary, "w", newline="") as f:
            writer = csv.DictWriter(f, header, restval="")
            writer.writeheader()
            writer.writerows(rows)

    atomic.replace_atomically(path, write)

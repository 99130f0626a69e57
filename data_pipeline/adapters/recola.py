"""RECOLA (Ringeval et al. 2013; [AW] Sec. 2.1, [AW2] Sec. II-G).

Layout assumed (found anywhere under the root):
  <root>/.../{arousal,valence}/<subject>.csv   per-annotator ratings, e.g.
      RECOLA-Annotation/emotional_behaviour/arousal/P16.csv or
      ratings_individual/arousal/P16.csv; header `time,FM1,FM2,FM3,FF1,FF2,FF3`
      (';'-separated with padded names in the original release), one row per
      40 ms, values in [-1, 1].
  <root>/.../<subject>.mp4|avi   the video of each subject (found by name).
AVEC-style names (`train_1.csv`, `dev_3.csv`, `test_2.csv`) are accepted; their
prefix gives the split.

Labels: per dimension the annotators are fused with `annotations`:
`fusion="auto"` picks by MAIC among the mean and median filters of 5, 15 and
30 annotation samples ([AW2] Sec. II-D; at 40 ms these are 0.2/0.6/1.2 s),
computed over all subjects; or a fixed method ("mean", "median<w>",
"top<k>" = [AW]'s mean of the k most correlated annotators). The fused trace
is matched to the video's frame times by nearest time stamp, averaging ties
([AW] Sec. 3.3); frames more than 1.5 annotation steps from every stamp stay
unlabelled. The choice and every MAIC are in `fusion_report` and each
manifest entry.

Splits: 16/15/15 subjects, stratified by gender, age and mother tongue
([AW] Sec. 2.1). The papers do not list the subject ids and we know no
authoritative list, so (in order of precedence): a `split_file` (JSON
{subject: split} or {split: [subjects]}), AVEC-style file names, or a
seeded subject-independent draw of 16/15/15 (proportional for other subject
counts, `splits.derive_subject_splits`). The subjects used per split are
written to the manifest's "subjects".
"""

import json
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from data_pipeline.records import annotations, splits
from data_pipeline.adapters import discovery
from data_pipeline.adapters import common

PAPER_SIZES = {"train": 16, "validation": 15, "test": 15}
DIMENSIONS = ("valence", "arousal")


def read_ratings(path: str) -> Tuple[np.ndarray, List[str], np.ndarray]:
    """-> (times (M,), annotator names, ratings (A, M)); ',' or ';' separated."""
    lines = discovery.read_lines(path)
    if len(lines) < 2:
        raise ValueError(f"{path}: expected a header and at least one row")
    separator = ";" if ";" in lines[0] else ","
    header = [h.strip() for h in lines[0].split(separator)]
    if header and header[-1] == "":
        header = header[:-1]
    if not header or header[0].lower() not in ("time", "frametime", "time_s"):
        raise ValueError(f"{path}: first column must be the time, got header {lines[0]!r}")
    names = header[1:]
    if len(names) < 2:
        raise ValueError(f"{path}: need at least 2 annotator columns for fusion, got {names}")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        parts = [p.strip() for p in line.split(separator)]
        if parts and parts[-1] == "":
            parts = parts[:-1]
        if len(parts) != len(header):
            raise ValueError(f"{path}:{number}: {len(parts)} values for {len(header)} columns")
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise ValueError(f"{path}:{number}: not a number in {line!r}") from None
    table = np.array(rows, np.float64)
    if not np.all(np.diff(table[:, 0]) > 0):
        raise ValueError(f"{path}: time column is not strictly increasing")
    return table[:, 0], names, table[:, 1:].T


def rating_files(root: str) -> Dict[str, Dict[str, str]]:
    """subject -> {dimension: csv path} from folders holding both arousal/ and valence/."""
    found: Dict[str, Dict[str, str]] = {}
    for folder, dirs, _ in os.walk(root):
        dirs.sort()
        if not set(DIMENSIONS) <= set(dirs):
            continue
        for dimension in DIMENSIONS:
            for name in sorted(os.listdir(os.path.join(folder, dimension))):
                if name.lower().endswith(".csv"):
                    subject = name[:-4]
                    if dimension in found.get(subject, {}):
                        raise ValueError(f"{subject}: {dimension} ratings found twice "
                                         f"({found[subject][dimension]}, {os.path.join(folder, dimension, name)})")
                    found.setdefault(subject, {})[dimension] = os.path.join(folder, dimension, name)
    for subject, files in found.items():
        if set(files) != set(DIMENSIONS):
            raise ValueError(f"{subject}: only {sorted(files)} ratings ({list(files.values())[0]})")
    return found


def read_split_file(path: str) -> Dict[str, str]:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable JSON split file ({error})") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected {{subject: split}} or {{split: [subjects]}}")
    if all(isinstance(v, list) for v in data.values()):
        return {str(s): split for split, subjects in data.items() for s in subjects}
    return {str(k): str(v) for k, v in data.items()}


class RecolaAdapter(common.Adapter):
    """RECOLA -> VideoItems of raw videos with fused, time-matched valence/arousal."""

    name = "recola"

    def __init__(self, fusion: str = "auto", split_file: Optional[str] = None, seed: int = 0,
                 missing: str = "error"):
        if fusion != "auto":
            annotations.parse_fusion(fusion)
        if missing not in ("error", "skip"):
            raise ValueError(f"missing must be 'error' or 'skip', got {missing!r}")
        self.fusion, self.split_file, self.seed, self.missing = fusion, split_file, int(seed), missing
        self.fusion_report: Dict[str, Dict] = {}

    def _splits(self, subjects: List[str]) -> Dict[str, str]:
        if self.split_file:
            assignment = read_split_file(self.split_file)
            unknown = [s for s in subjects if s not in assignment]
            if unknown:
                raise ValueError(f"{self.split_file}: no split for subjects {unknown}")
            return assignment
        avec = {s: discovery.split_name(s.split("_")[0]) for s in subjects}
        if all(avec.values()) and all("_" in s for s in subjects):
            return avec
        if len(subjects) == sum(PAPER_SIZES.values()):
            sizes = dict(PAPER_SIZES)
        else:
            total = sum(PAPER_SIZES.values())
            sizes = {k: v / total for k, v in PAPER_SIZES.items()}
        return splits.derive_subject_splits(subjects, sizes, self.seed)

    def _fuse(self, dimension: str, traces: Dict[str, Tuple[np.ndarray, List[str], np.ndarray]]):
        names = {tuple(t[1]) for t in traces.values()}
        subjects = sorted(traces)
        if self.fusion == "auto":
            if len(names) != 1:
                raise ValueError(f"MAIC over all subjects needs the same annotators everywhere; "
                                 f"{dimension} files have {sorted(names)}")
            choice = annotations.choose_fusion([traces[s][2] for s in subjects])
            self.fusion_report[dimension] = {"method": choice.method, "maic": choice.maic}
            return dict(zip(subjects, choice.fused))
        self.fusion_report[dimension] = {"method": self.fusion}
        return {s: annotations.fuse(traces[s][2], self.fusion) for s in subjects}

    def discover(self, root: str) -> List[discovery.VideoItem]:
        discovery.require_dir(root, "RECOLA root")
        files = rating_files(root)
        if not files:
            raise ValueError(f"{root}: no RECOLA ratings (expected arousal/<subject>.csv and valence/<subject>.csv)")
        traces = {d: {s: read_ratings(f[d]) for s, f in files.items()} for d in DIMENSIONS}
        fused = {d: self._fuse(d, traces[d]) for d in DIMENSIONS}
        videos = discovery.index_media(root)
        assignment = self._splits(sorted(files))
        items = []
        for subject in sorted(files):
            times = traces["valence"][subject][0]
            if not np.array_equal(times, traces["arousal"][subject][0]):
                raise ValueError(f"{subject}: valence and arousal time stamps differ "
                                 f"({files[subject]['valence']}, {files[subject]['arousal']})")
            found = videos.get(subject)
            if not found:
                if self.missing == "skip":
                    continue
                raise ValueError(f"{root}: ratings {files[subject]['valence']} but no video named {subject}")
            step = float(np.median(np.diff(times))) if len(times) > 1 else 0.04
            items.append(discovery.VideoItem(
                video_id=subject, split=assignment[subject], subject_id=subject,
                timed_labels=discovery.TimedLabels(times, fused["valence"][subject], fused["arousal"][subject],
                                                max_distance=1.5 * step),
                video_path=found[0], source_path=os.path.relpath(found[0], root),
                info={"fusion": {d: self.fusion_report[d]["method"] for d in DIMENSIONS}}))
        return items

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--fusion", default="auto", help="auto | mean | median<w> | top<k>")
        parser.add_argument("--split_file", default=None, help="JSON {subject: split} or {split: [subjects]}")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--missing", choices=("error", "skip"), default="error")

    @classmethod
    def from_args(cls, args) -> "RecolaAdapter":
        return cls(fusion=args.fusion, split_file=args.split_file, seed=args.seed, missing=args.missing)

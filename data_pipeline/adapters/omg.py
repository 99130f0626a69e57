"""OMG-Emotion (Barros et al. 2018; [OMG], [MC] Sec. 5.1).

Layout assumed (the challenge's CSV lists and its download script's output):
  <root>/omg_TrainVideos.csv, omg_ValidationVideos.csv,
        omg_TestVideos_WithLabels.csv (omg_TestVideos_WithoutLabels.csv: no labels)
      columns link,start,end,video,utterance,arousal,valence,EmotionMaxVote
  <root>/.../<video>/<utterance>   e.g. Train/<video>/utterance_1.mp4
      (one clip per utterance, found by its last two path components).

Conventions ([MC] Sec. 5.1): one (valence, arousal) pair per utterance,
valence in [-1, 1] and arousal in [0, 1], kept as published (not rescaled);
the pair and the EmotionMaxVote class (0 anger, 1 disgust, 2 fear,
3 happiness, 4 neutral, 5 sadness, 6 surprise, mapped onto
`schema.EXPRESSIONS`) label every frame of the utterance. video_id is
"<video>/<utterance without extension>"; the subject is the YouTube video
(the challenge's videos show one speaker each, and its splits are by video:
train 231 videos / 2442 utterances, validation 60 / 617, test 204 / 2229).
"""

import csv
import os
from typing import Dict, List

import numpy as np

from data_pipeline.records import annotations, schema
from data_pipeline.media import decode
from data_pipeline.adapters import discovery
from data_pipeline.adapters import common

CSV_FILES = {
    "train": ("omg_TrainVideos.csv",),
    "validation": ("omg_ValidationVideos.csv",),
    "test": ("omg_TestVideos_WithLabels.csv", "omg_TestVideos_WithoutLabels.csv"),
}
COLUMNS = ("video", "utterance")
# EmotionMaxVote index -> name.
OMG_EMOTIONS = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")


def read_utterances(path: str) -> List[Dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = [h.strip() for h in reader.fieldnames or []]
    except OSError as error:
        raise ValueError(f"{path}: cannot read ({error})") from error
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; got {header}")
    return [{(k or "").strip(): v for k, v in row.items()} for row in rows]


def _label(path: str, number: int, row: Dict[str, str], column: str, low: float, high: float) -> float:
    value = (row.get(column) or "").strip()
    if not value:
        return float("nan")
    try:
        number_value = float(value)
    except ValueError:
        raise ValueError(f"{path}:{number}: {column} {value!r} is not a number") from None
    if not low <= number_value <= high:
        raise ValueError(f"{path}:{number}: {column} {number_value} outside [{low}, {high}]")
    return number_value


def _expression(path: str, number: int, row: Dict[str, str]) -> int:
    value = (row.get("EmotionMaxVote") or "").strip()
    if not value:
        return -1
    if not value.isdigit() or int(value) >= len(OMG_EMOTIONS):
        raise ValueError(f"{path}:{number}: EmotionMaxVote {value!r} not in 0..6")
    return schema.EXPRESSIONS.index(OMG_EMOTIONS[int(value)])


def index_utterances(root: str) -> Dict[str, str]:
    """'<video>/<utterance file>' -> path for every media file under root."""
    found = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if decode.is_media(name) and not decode.is_image(name):
                found.setdefault(f"{os.path.basename(folder)}/{name}", os.path.join(folder, name))
    return found


class OmgAdapter(common.Adapter):
    """OMG-Emotion -> one VideoItem per utterance clip, labelled per utterance."""

    name = "omg"

    def __init__(self, missing: str = "error"):
        if missing not in ("error", "skip"):
            raise ValueError(f"missing must be 'error' or 'skip', got {missing!r}")
        self.missing = missing

    def discover(self, root: str) -> List[discovery.VideoItem]:
        discovery.require_dir(root, "OMG-Emotion root")
        clips = index_utterances(root)
        items = []
        for split, names in CSV_FILES.items():
            path = next((os.path.join(root, n) for n in names if os.path.isfile(os.path.join(root, n))), None)
            if path is None:
                continue
            for number, row in enumerate(read_utterances(path), start=2):
                video, utterance = row["video"].strip(), row["utterance"].strip()
                clip = clips.get(f"{video}/{utterance}")
                if clip is None:
                    if self.missing == "skip":
                        continue
                    raise ValueError(f"{path}:{number}: no clip {video}/{utterance} under {root}")
                valence = _label(path, number, row, "valence", -1.0, 1.0)
                arousal = _label(path, number, row, "arousal", 0.0, 1.0)
                expression = _expression(path, number, row)
                frames = len(common.source_frame_times(clip))
                labels = annotations.FrameLabels(
                    valence=np.full(frames, valence, np.float32), arousal=np.full(frames, arousal, np.float32),
                    expression=np.full(frames, expression, np.int64))
                items.append(discovery.VideoItem(
                    video_id=f"{video}/{os.path.splitext(utterance)[0]}", split=split, subject_id=video,
                    labels=labels, video_path=clip, source_path=os.path.relpath(clip, root),
                    info={"utterance": utterance, "utterance_valence": valence, "utterance_arousal": arousal}))
        if not items:
            raise ValueError(f"{root}: no OMG-Emotion utterances (expected {[n[0] for n in CSV_FILES.values()]})")
        return items

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--missing", choices=("error", "skip"), default="error")

    @classmethod
    def from_args(cls, args) -> "OmgAdapter":
        return cls(missing=args.missing)

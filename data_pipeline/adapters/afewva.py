"""AFEW-VA (Kossaifi et al. 2017; used in [AW] Sec. 5.1.2).

Layout (the release's zip parts unpack to clip folders, possibly nested):
  <root>/.../<clip>/<clip>.json
  <root>/.../<clip>/00000.png, 00001.png, ...   (full movie frames)
  <clip>.json: {"actor": str, "video_id": "<clip>",
                "frames": {"00000": {"valence": int, "arousal": int,
                                     "landmarks": [[x, y] * 68]}, ...}}

Conventions:
  * valence/arousal are integers in [-10, 10], rescaled to [-1, 1] by /10
    ([AW] Sec. 5.1.2); frames missing from the JSON are unlabelled.
  * The dataset's 68 landmarks (source-frame pixels) drive the alignment;
    frames without them fall back to dlib (`landmarks="auto"`) or are dropped.
  * Splits: AFEW-VA has no official split; [AW] used "a 5-fold
    person-independent cross-validation strategy" like the dataset paper.
    Subjects are the JSON "actor" field (the clip id when it is absent, which
    makes the folds clip- rather than person-independent); folds are drawn
    with `splits.subject_folds(folds, seed)` and named "fold0".."fold4".
  * fps 25 is assumed for the frames (AFEW clips come from films); it only
    sets the stored timestamps.
"""

import json
import os
from typing import List

import numpy as np

from data_pipeline.records import annotations, schema, splits
from data_pipeline.adapters import discovery
from data_pipeline.adapters import common

LABEL_RANGE = 10.0


def read_clip(path: str):
    """<clip>.json -> (actor or '', {frame number: (valence, arousal, (68, 2) landmarks or None)})."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable AFEW-VA JSON file ({error})") from error
    if not isinstance(data, dict) or not isinstance(data.get("frames"), dict):
        raise ValueError(f"{path}: expected an object with a 'frames' object")
    frames = {}
    for key, frame in data["frames"].items():
        if not key.isdigit():
            raise ValueError(f"{path}: frame key {key!r} is not a frame number")
        try:
            valence, arousal = frame["valence"], frame["arousal"]
        except (KeyError, TypeError):
            raise ValueError(f"{path}: frame {key} lacks valence/arousal") from None
        for name, value in (("valence", valence), ("arousal", arousal)):
            if not isinstance(value, (int, float)) or abs(value) > LABEL_RANGE:
                raise ValueError(f"{path}: frame {key} {name} {value!r} not a number in [-10, 10]")
        points = frame.get("landmarks")
        if points is not None:
            points = np.asarray(points, np.float32)
            if points.shape != (schema.NUM_LANDMARKS, 2):
                raise ValueError(f"{path}: frame {key} landmarks must be 68 [x, y] pairs, got shape {points.shape}")
        frames[int(key)] = (valence / LABEL_RANGE, arousal / LABEL_RANGE, points)
    return str(data.get("actor") or ""), frames


def clip_files(root: str) -> List[str]:
    """Every <clip>/<clip>.json under root, sorted."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        name = os.path.basename(folder) + ".json"
        if name in files:
            found.append(os.path.join(folder, name))
    return found


class AfewVaAdapter(common.Adapter):
    """AFEW-VA -> VideoItems of shipped frames with dataset landmarks, in person-independent folds."""

    name = "afewva"

    def __init__(self, folds: int = 5, seed: int = 0, fps: float = 25.0):
        if int(folds) != folds or folds < 2:
            raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
        self.folds, self.seed, self.fps = int(folds), int(seed), float(fps)

    def discover(self, root: str) -> List[discovery.VideoItem]:
        discovery.require_dir(root, "AFEW-VA root")
        clips = []
        for path in clip_files(root):
            clip = os.path.basename(os.path.dirname(path))
            actor, frames = read_clip(path)
            files, numbers = discovery.numbered_frames(os.path.dirname(path))
            if not files:
                raise ValueError(f"{os.path.dirname(path)}: no numbered frame images beside {os.path.basename(path)}")
            clips.append((clip, actor or clip, frames, files, numbers, path))
        if not clips:
            raise ValueError(f"{root}: no AFEW-VA clips (expected <clip>/<clip>.json)")
        fold = splits.subject_folds([c[1] for c in clips], self.folds, self.seed)
        items = []
        for clip, subject, frames, files, numbers, path in clips:
            size = int(max(numbers.max(), max(frames, default=0))) + 1
            valence = np.full(size, np.nan, np.float32)
            arousal = np.full(size, np.nan, np.float32)
            for k, (v, a, _) in frames.items():
                valence[k], arousal[k] = v, a
            points = np.full((len(files), schema.NUM_LANDMARKS, 2), np.nan, np.float32)
            for row, number in enumerate(numbers):
                given = frames.get(int(number), (None, None, None))[2]
                if given is not None:
                    points[row] = given
            items.append(discovery.VideoItem(
                video_id=clip, split=fold[subject], subject_id=subject,
                labels=annotations.FrameLabels(valence=valence, arousal=arousal),
                frame_files=files, frame_index=numbers, frame_landmarks=points, fps=self.fps,
                source_path=os.path.relpath(os.path.dirname(path), root)))
        return items

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--folds", type=int, default=5)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--frames_fps", type=float, default=25.0)

    @classmethod
    def from_args(cls, args) -> "AfewVaAdapter":
        return cls(folds=args.folds, seed=args.seed, fps=args.frames_fps)

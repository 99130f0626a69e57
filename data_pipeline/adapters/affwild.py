"""Aff-Wild ([AW] Sec. 2.4 and 3; the Aff-Wild challenge release).

Layout assumed (the release's folders; found anywhere under the root):
  <root>/videos/{train,test}/<video>.mp4|avi
  <root>/annotations/{train,test}/valence/<video>.txt
  <root>/annotations/{train,test}/arousal/<video>.txt
One value in [-1, 1] per line, line k = frame k of the video (the release
already matched the joystick time stamps to frames, [AW] Sec. 3.3). The
split is the name of the folder above `valence/` (train 252 videos, test 46
[AW] Sec. 2.4, Table 2; the test labels were published after the challenge). Videos
are found by file name anywhere under the root outside the annotation
folders. Aff-Wild publishes no subject identities across videos; each video
(or "_left"/"_right" person of a two-person video) is one subject. The
bounding boxes and landmarks shipped with the release are not used: raw
videos go through `preprocess` (detection, 68 landmarks, alignment).
"""

import os
from typing import Dict, List, Tuple

import numpy as np

from data_pipeline.records import annotations
from data_pipeline.adapters import discovery
from data_pipeline.adapters import affwild2, common


def read_values(path: str) -> np.ndarray:
    """One float in [-1, 1] per line -> (N,) float32."""
    values = []
    for number, line in enumerate(discovery.read_lines(path), start=1):
        try:
            value = float(line.split(",")[0])
        except ValueError:
            raise ValueError(f"{path}:{number}: not a number: {line!r}") from None
        if not -1.0 <= value <= 1.0:
            raise ValueError(f"{path}:{number}: value {value} outside [-1, 1]")
        values.append(value)
    return np.array(values, np.float32)


def _labels(name: str, valence_path: str, arousal_path: str) -> annotations.FrameLabels:
    valence, arousal = read_values(valence_path), read_values(arousal_path)
    if len(valence) != len(arousal):
        raise ValueError(f"{name}: {len(valence)} valence lines ({valence_path}) but "
                         f"{len(arousal)} arousal lines ({arousal_path})")
    return annotations.FrameLabels(valence=valence, arousal=arousal)


def annotation_pairs(root: str) -> Dict[str, Tuple[str, str, str]]:
    """video -> (split, valence file, arousal file) for every `valence/` folder with an `arousal/` sibling."""
    pairs = {}
    for folder, dirs, _ in os.walk(root):
        dirs.sort()
        if "valence" not in dirs:
            continue
        valence_dir = os.path.join(folder, "valence")
        arousal_dir = os.path.join(folder, "arousal")
        if not os.path.isdir(arousal_dir):
            raise ValueError(f"{valence_dir}: no arousal/ folder beside it")
        split = discovery.split_name(os.path.basename(folder))
        if split is None:
            raise ValueError(f"{folder}: cannot tell the split (expected a train/ or test/ folder)")
        for name in sorted(os.listdir(valence_dir)):
            if not name.endswith(".txt"):
                continue
            video = name[:-4]
            arousal = os.path.join(arousal_dir, name)
            if not os.path.isfile(arousal):
                raise ValueError(f"{os.path.join(valence_dir, name)}: no matching {arousal}")
            if video in pairs:
                raise ValueError(f"{video}: annotated twice ({pairs[video][1]} and {valence_dir})")
            pairs[video] = (split, os.path.join(valence_dir, name), arousal)
    return pairs


class AffWildAdapter(common.Adapter):
    """Aff-Wild -> VideoItems of raw videos with per-frame valence/arousal."""

    name = "affwild"

    def __init__(self, missing: str = "error"):
        if missing not in ("error", "skip"):
            raise ValueError(f"missing must be 'error' or 'skip', got {missing!r}")
        self.missing = missing

    def discover(self, root: str) -> List[discovery.VideoItem]:
        discovery.require_dir(root, "Aff-Wild root")
        pairs = annotation_pairs(root)
        if not pairs:
            raise ValueError(f"{root}: no Aff-Wild annotations (expected <split>/valence/*.txt and arousal/*.txt)")
        videos = discovery.index_media(root)
        items = []
        for name, (split, valence_path, arousal_path) in sorted(pairs.items()):
            try:
                labels, error = _labels(name, valence_path, arousal_path), ""
            except ValueError as bad_labels:  # Fails this video only (file and line in the report).
                labels, error = None, str(bad_labels)
            base, side = affwild2.video_name(name)
            found = videos.get(name) or videos.get(base)
            if not found:
                if self.missing == "skip":
                    continue
                raise ValueError(f"{root}: annotations {valence_path} but no video named {base}")
            items.append(discovery.VideoItem(
                video_id=name, split=split, subject_id=name,
                labels=labels, video_path=found[0], face=side if name not in videos else "",
                source_path=os.path.relpath(found[0], root), info={"label_files": [valence_path, arousal_path]},
                error=error))
        return items

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--missing", choices=("error", "skip"), default="error")

    @classmethod
    def from_args(cls, args) -> "AffWildAdapter":
        return cls(missing=args.missing)

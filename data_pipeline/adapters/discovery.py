"""What an adapter discovers in a dataset's published layout: `VideoItem` (one annotated subject-video
or utterance, with its split, subject and labels, and a raw video or the frames the dataset ships),
`TimedLabels` (labels at their own time stamps), and the file helpers the layouts share (split
folder names, media indexes, numbered frame files, label lines).
"""

import dataclasses
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from data_pipeline.media import decode
from data_pipeline.records import annotations, schema


@dataclasses.dataclass
class TimedLabels:
    """Valence/arousal at their own time stamps (seconds), matched to frames when written ([AW] Sec. 3.3)."""

    times: np.ndarray
    valence: Optional[np.ndarray] = None
    arousal: Optional[np.ndarray] = None
    max_distance: Optional[float] = None

    def at(self, frame_times) -> annotations.FrameLabels:
        def match(values):
            if values is None:
                return None
            return annotations.match_to_frames(frame_times, self.times, values, self.max_distance)

        return annotations.FrameLabels(valence=match(self.valence), arousal=match(self.arousal))


@dataclasses.dataclass
class VideoItem:
    """One annotated subject in one video (or one utterance), ready to write.

    Exactly one of `video_path` (raw video) or `frame_files` (shipped frames)
    is set. `frame_index[k]` is the source frame of `frame_files[k]` (labels
    are indexed by it); `frame_landmarks` (F, 68, 2) in source-frame pixels,
    NaN where unknown; `frames_aligned` marks frames that are already aligned
    face crops. `labels` are per source frame; `timed_labels` are matched to
    the video's frame times when written. `face` ("left"/"right") picks one of
    two people in a raw video ("_left"/"_right" in Aff-Wild2). `fps` is the
    frame rate of shipped frames.
    """

    video_id: str
    split: str
    subject_id: str
    labels: Optional[annotations.FrameLabels] = None
    timed_labels: Optional[TimedLabels] = None
    video_path: Optional[str] = None
    frame_files: Optional[Sequence[str]] = None
    frame_index: Optional[np.ndarray] = None
    frame_landmarks: Optional[np.ndarray] = None
    frames_aligned: bool = False
    fps: float = 30.0
    face: str = ""
    source_path: str = ""
    info: Dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str = ""  # Set when the item's labels could not be read: it is reported failed, the others go on.

    def __post_init__(self):
        if (self.video_path is None) == (self.frame_files is None):
            raise ValueError(f"item {self.video_id!r}: give exactly one of video_path or frame_files")
        if self.face not in ("", "left", "right"):
            raise ValueError(f"item {self.video_id!r}: face must be '', 'left' or 'right', got {self.face!r}")
        if self.frame_files is not None:
            count = len(self.frame_files)
            if self.frame_index is None:
                self.frame_index = np.arange(count)
            self.frame_index = np.asarray(self.frame_index, np.int64)
            if self.frame_index.shape != (count,):
                raise ValueError(f"item {self.video_id!r}: {len(self.frame_index)} frame indices for {count} files")
            if self.frame_landmarks is not None:
                self.frame_landmarks = np.asarray(self.frame_landmarks, np.float32)
                if self.frame_landmarks.shape != (count, schema.NUM_LANDMARKS, 2):
                    raise ValueError(f"item {self.video_id!r}: frame_landmarks must be ({count}, 68, 2), "
                                     f"got {self.frame_landmarks.shape}")


# ---------------------------------------------------------------- file helpers


def require_dir(path: str, what: str) -> str:
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such folder ({what})")
    return path


def split_name(folder: str) -> Optional[str]:
    """'Train_Set', 'Training_Set', 'train' -> 'train'; 'Validation_Set', 'val', 'dev' -> 'validation';
    'Test_Set', 'test' -> 'test'; anything else None."""
    name = folder.lower()
    if name.startswith("train"):
        return "train"
    if name.startswith(("valid", "val_", "val", "dev", "devel")):
        return "validation"
    if name.startswith("test"):
        return "test"
    return None


def index_media(root: str, exclude: Sequence[str] = ()) -> Dict[str, List[str]]:
    """Media files under `root` by file stem (sorted paths, skipping folders named in `exclude`)."""
    found: Dict[str, List[str]] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in exclude)
        for name in sorted(files):
            if decode.is_media(name) and not decode.is_image(name):
                found.setdefault(os.path.splitext(name)[0], []).append(os.path.join(folder, name))
    return found


def numbered_frames(folder: str) -> Tuple[List[str], np.ndarray]:
    """Image files named by number in a folder -> (sorted paths, their numbers)."""
    files = [n for n in os.listdir(folder) if decode.is_image(n) and os.path.splitext(n)[0].isdigit()]
    files.sort(key=lambda n: int(os.path.splitext(n)[0]))
    return [os.path.join(folder, n) for n in files], np.array([int(os.path.splitext(n)[0]) for n in files],
                                                               np.int64)


def read_lines(path: str) -> List[str]:
    try:
        with open(path, encoding="utf-8-sig") as f:
            return [line.strip() for line in f if line.strip()]
    except OSError as error:
        raise ValueError(f"{path}: cannot read ({error})") from error

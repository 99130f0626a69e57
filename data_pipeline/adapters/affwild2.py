"""Aff-Wild2 in the ABAW release layout ([AW2] Sec. II; [FBN] Sec. III).

Layout (either annotation release; found anywhere under the root):
  <root>/.../Third ABAW Annotations/            (3rd+ ABAW; also 5th/6th_ABAW_Annotations)
      VA_Estimation_Challenge/{Train_Set,Validation_Set}/<name>.txt
      EXPR_Classification_Challenge/...          (EXPR_Recognition_Challenge in later releases)
      AU_Detection_Challenge/...
  <root>/.../annotations/{VA_Set,EXPR_Set,AU_Set}/{Train_Set|Training_Set,Validation_Set}/<name>.txt
      (1st/2nd ABAW)
  <root>/batch1/<video>.mp4|avi, batch2/..., (any folder: videos are found by name)
  <root>/cropped_aligned/<name>/00001.jpg, ...  (the released 112x112 aligned faces)

Annotation files: a header line, then one line per video frame (line k+1
<-> frame k <-> `cropped_aligned/<name>/{k+1:05d}.jpg`):
  VA   "valence,arousal", floats in [-1, 1]; -5 = not annotated (-> NaN).
  EXPR "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise[,Other]", one
       class index per line in the header's order; -1 = not annotated.
  AU   "AU1,AU2,...", 0/1 per AU; -1 = not annotated.
`<name>` is the video's name, with "_left"/"_right" for each of the two
people in a two-person video ([AW2] Sec. II-A: 11 such videos).

Label conventions here:
  * Expressions are mapped by header name onto `schema.EXPRESSIONS` (the
    orders coincide in the ABAW releases). "Other" (8-class releases) is not
    one of the 7 basic expressions [FBN] and becomes -1 (unlabelled); the
    count of such frames is reported per video as `expr_other_frames`.
  * AU columns keep the release's header (8 AUs [FBN] or the 12 of ABAW).
  * Splits: the release's Train/Validation folders; the test set has no
    public labels. A video in different splits for different tasks is an
    error (restrict `tasks`).
  * Subjects: Aff-Wild2 publishes no identities across videos; each
    annotation name (video + side) is one subject. The ABAW splits are subject
    independent by construction, which `splits.check_subject_independent`
    then checks over names.
  * Frames: `source="auto"` uses `cropped_aligned/<name>` when present (fps
    30, [AW2] converted the videos to 30 fps) and the raw video otherwise.
"""

import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from data_pipeline.base import atomic, checks
from data_pipeline.records import annotations, schema
from data_pipeline.adapters import discovery
from data_pipeline.adapters import common

TASK_FOLDERS = {
    "va": ("VA_Estimation_Challenge", "VA_Set"),
    "expr": ("EXPR_Classification_Challenge", "EXPR_Recognition_Challenge", "EXPR_Set"),
    "au": ("AU_Detection_Challenge", "AU_Set"),
}
TASKS = tuple(TASK_FOLDERS)
SOURCES = ("auto", "cropped", "video")
CROPPED_FOLDERS = ("cropped_aligned", "cropped_aligned_images")
MISSING_VA = -5.0
SIDES = ("left", "right")
# Header spellings seen in releases and challenge code -> schema.EXPRESSIONS names.
EXPRESSION_ALIASES = {"happy": "happiness", "sad": "sadness", "angry": "anger", "surprised": "surprise",
                      "disgusted": "disgust", "fearful": "fear", "afraid": "fear"}


def _numbers(path: str, lines: Sequence[str], columns: int, cast):
    rows = []
    for number, line in enumerate(lines, start=2):
        parts = line.replace(" ", "").split(",")
        if len(parts) != columns:
            raise ValueError(f"{path}:{number}: expected {columns} comma-separated values, got {line!r}")
        try:
            rows.append([cast(p) for p in parts])
        except ValueError:
            raise ValueError(f"{path}:{number}: not a number in {line!r}") from None
    return np.array(rows, np.float64).reshape(len(rows), columns)


def _header(path: str) -> Tuple[List[str], List[str]]:
    lines = discovery.read_lines(path)
    if not lines:
        raise ValueError(f"{path}: empty annotation file")
    return [h.strip() for h in lines[0].split(",")], lines[1:]


def read_va(path: str) -> annotations.FrameLabels:
    return read_va_counted(path)[0]


def read_va_counted(path: str) -> Tuple[annotations.FrameLabels, int]:
    """-> (labels, rows with a literal NaN: accepted as unlabelled, like -5, and counted)."""
    header, lines = _header(path)
    if [h.lower() for h in header] != ["valence", "arousal"]:
        raise ValueError(f"{path}: expected header 'valence,arousal', got {','.join(header)!r}")
    values = _numbers(path, lines, 2, float)
    missing = values == MISSING_VA
    bad = ~missing & (np.abs(values) > 1.0)
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        raise ValueError(f"{path}:{row + 2}: value outside [-1, 1] and not the -5 sentinel: {values[row].tolist()}")
    nan_rows = int(np.isnan(values).any(axis=1).sum())
    values[missing] = np.nan
    return annotations.FrameLabels(valence=values[:, 0], arousal=values[:, 1]), nan_rows


def va_per_frame(frame_index: np.ndarray, values: np.ndarray, frames: Optional[int] = None) -> np.ndarray:
    """(frames, 2) valence-arousal per source frame 0..frames-1 from per-row (frame_index, values); NaN
    where no row gives the frame. A frame given by several rows takes their mean. `frames` defaults to the
    last index + 1."""
    frame_index = np.asarray(frame_index, np.int64)
    values = np.asarray(values, np.float64).reshape(len(frame_index), 2)
    count = int(frames if frames is not None else (frame_index.max() + 1 if len(frame_index) else 0))
    keep = (frame_index >= 0) & (frame_index < count)
    total, seen = np.zeros((count, 2)), np.zeros(count)
    np.add.at(total, frame_index[keep], values[keep])
    np.add.at(seen, frame_index[keep], 1)
    with np.errstate(invalid="ignore"):
        return total / seen[:, None]


def write_va(path: str, values: np.ndarray) -> None:
    """The VA annotation layout that `read_va` reads, as ABAW submissions use it: the header
    `valence,arousal`, then one line per frame (line k+1 <-> frame k); a NaN row (no face, no prediction)
    is written as the release's -5 (`MISSING_VA`), values are clipped to [-1, 1]."""
    values = np.asarray(values, np.float64).reshape(-1, 2)
    missing = ~np.isfinite(values).all(axis=1)
    lines = ["valence,arousal"]
    for row, unknown in zip(np.clip(values, -1.0, 1.0), missing):
        lines.append(f"{MISSING_VA:g},{MISSING_VA:g}" if unknown else f"{row[0]:.6f},{row[1]:.6f}")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    atomic.write_text(path, "\n".join(lines) + "\n")


def expression_mapping(path: str, header: Sequence[str]) -> np.ndarray:
    """Column index in the file's header -> class in schema.EXPRESSIONS, or -1 (e.g. 'Other')."""
    mapping = []
    for name in header:
        key = EXPRESSION_ALIASES.get(name.lower(), name.lower())
        mapping.append(schema.EXPRESSIONS.index(key) if key in schema.EXPRESSIONS else -1)
    known = [m for m in mapping if m >= 0]
    if len(set(known)) != len(schema.EXPRESSIONS):
        raise ValueError(f"{path}: header {','.join(header)!r} does not name the 7 basic expressions")
    return np.array(mapping, np.int64)


def read_expr(path: str) -> Tuple[annotations.FrameLabels, int]:
    """-> (labels, number of frames labelled with a class outside the 7, e.g. 'Other')."""
    header, lines = _header(path)
    mapping = expression_mapping(path, header)
    values = _numbers(path, lines, 1, int)[:, 0].astype(np.int64)
    bad = (values < -1) | (values >= len(mapping))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{path}:{row + 2}: expression {values[row]} not in [-1, {len(mapping) - 1}]")
    classes = np.where(values >= 0, mapping[np.maximum(values, 0)], -1)
    other = int(np.sum((values >= 0) & (classes < 0)))
    return annotations.FrameLabels(expression=classes), other


def read_au(path: str) -> annotations.FrameLabels:
    header, lines = _header(path)
    if not header or not all(h.upper().startswith("AU") and h[2:].isdigit() for h in header):
        raise ValueError(f"{path}: expected an 'AU1,AU2,...' header, got {','.join(header)!r}")
    values = _numbers(path, lines, len(header), int).astype(np.int64)
    bad = ~np.isin(values, (-1, 0, 1))
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        raise ValueError(f"{path}:{row + 2}: AU values must be -1, 0 or 1, got {values[row].tolist()}")
    return annotations.FrameLabels(au=values, au_names=[h.upper() for h in header])


def _find_folders(root: str, names: Sequence[str], skip: Sequence[str] = CROPPED_FOLDERS) -> List[str]:
    """Folders named in `names` under root; never descends into `skip` (millions of frames)."""
    found = []
    for folder, dirs, _ in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in skip or d in names)
        for name in list(dirs):
            if name in names:
                found.append(os.path.join(folder, name))
                dirs.remove(name)  # Nothing to find inside a match.
    return found


def annotation_files(root: str, tasks: Sequence[str] = TASKS) -> Dict[str, Dict[str, Tuple[str, str]]]:
    """task -> {name: (split, path)} for the Train/Validation annotation files found under root."""
    out = {}
    for task in tasks:
        folders = _find_folders(root, TASK_FOLDERS[task])
        if len(folders) > 1:
            raise ValueError(f"{root}: several {task} annotation folders {folders}; point --root at one release")
        files = {}
        for folder in folders:
            for sub in sorted(os.listdir(folder)):
                split = discovery.split_name(sub)
                if split is None or not os.path.isdir(os.path.join(folder, sub)):
                    continue
                for name in sorted(os.listdir(os.path.join(folder, sub))):
                    if name.endswith(".txt"):
                        files[name[:-4]] = (split, os.path.join(folder, sub, name))
        out[task] = files
    return out


def video_name(name: str) -> Tuple[str, str]:
    """'10-60-1280x720_left' -> ('10-60-1280x720', 'left'); plain names -> (name, '')."""
    for side in SIDES:
        if name.endswith("_" + side):
            return name[:-len(side) - 1], side
    return name, ""


class AffWild2Adapter(common.Adapter):
    """Aff-Wild2 (ABAW layout) -> VideoItems; see the module docstring."""

    name = "affwild2"

    def __init__(self, tasks: Sequence[str] = TASKS, source: str = "auto", fps: float = 30.0,
                 missing: str = "error"):
        unknown = set(tasks) - set(TASKS)
        if not tasks or unknown:
            raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {tuple(tasks)!r}")
        checks.check_choice(source, "source", SOURCES)
        if missing not in ("error", "skip"):
            raise ValueError(f"missing must be 'error' or 'skip', got {missing!r}")
        self.tasks, self.source, self.fps, self.missing = tuple(tasks), source, float(fps), missing

    def discover(self, root: str) -> List[discovery.VideoItem]:
        discovery.require_dir(root, "Aff-Wild2 root")
        files = annotation_files(root, self.tasks)
        names = sorted(set().union(*(f.keys() for f in files.values())))
        if not names:
            raise ValueError(f"{root}: no Aff-Wild2 annotation files for tasks {self.tasks} "
                             f"(looked for folders {[n for t in self.tasks for n in TASK_FOLDERS[t]]})")
        cropped = _find_folders(root, CROPPED_FOLDERS)
        skip = {os.path.basename(p) for p in cropped}
        videos = discovery.index_media(root, exclude=tuple(skip)) if self.source != "cropped" else {}
        items = []
        for name in names:
            item = self._item(root, name, files, cropped, videos)
            if item is not None:
                items.append(item)
        return items

    def _labels(self, name: str, files) -> Tuple[str, annotations.FrameLabels, Dict]:
        split, labels, info, where = None, annotations.FrameLabels(), {}, {}
        for task in self.tasks:
            if name not in files[task]:
                continue
            task_split, path = files[task][name]
            where[task] = (task_split, path)
            if split is not None and task_split != split:
                raise ValueError(f"{name}: in {split} for one task and {task_split} for another: "
                                 f"{', '.join(f'{t}: {p}' for t, (s, p) in where.items())}; restrict --tasks")
            split = task_split
            info.setdefault("label_files", []).append(path)
            if task == "va":
                va, nan_rows = read_va_counted(path)
                labels = labels.merge(va)
                info["va_nan_frames"] = nan_rows
            elif task == "expr":
                expr, other = read_expr(path)
                labels = labels.merge(expr)
                info["expr_other_frames"] = other
            else:
                labels = labels.merge(read_au(path))
        return split, labels, info

    def _item(self, root, name, files, cropped, videos) -> Optional[discovery.VideoItem]:
        try:
            split, labels, info = self._labels(name, files)
            error = ""
        except ValueError as bad_labels:  # Fails this video only (reported with file and line).
            split = next(files[task][name][0] for task in self.tasks if name in files[task])
            labels, info, error = None, {}, str(bad_labels)
        base, side = video_name(name)
        frame_dir = next((os.path.join(c, name) for c in cropped if os.path.isdir(os.path.join(c, name))), None)
        use_frames = frame_dir is not None and self.source in ("auto", "cropped")
        video = (videos.get(name) or videos.get(base) or [None])[0]
        if not use_frames and (self.source == "cropped" or video is None):
            wanted = "cropped_aligned/" + name if self.source == "cropped" else f"a video named {base}"
            if self.missing == "skip":
                return None
            raise ValueError(f"{root}: annotations for {name} but no {wanted} (use missing='skip' to ignore)")
        if use_frames:
            frame_files, numbers = discovery.numbered_frames(frame_dir)
            return discovery.VideoItem(
                video_id=name, split=split, subject_id=name, labels=labels, frame_files=frame_files,
                frame_index=numbers - 1, frames_aligned=True, fps=self.fps,
                source_path=os.path.relpath(frame_dir, root), info=info, error=error)
        return discovery.VideoItem(
            video_id=name, split=split, subject_id=name, labels=labels, video_path=video,
            face=side if name not in videos else "", source_path=os.path.relpath(video, root),
            info=info, error=error)

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated subset of va,expr,au")
        parser.add_argument("--source", choices=SOURCES, default="auto")
        parser.add_argument("--frames_fps", type=float, default=30.0, help="frame rate of cropped_aligned frames")
        parser.add_argument("--missing", choices=("error", "skip"), default="error")

    @classmethod
    def from_args(cls, args) -> "AffWild2Adapter":
        return cls(tasks=[t for t in args.tasks.split(",") if t], source=args.source, fps=args.frames_fps,
                   missing=args.missing)

"""What every dataset adapter shares: the `Adapter` interface and writing its `discovery.VideoItem`s.

An adapter's `discover(root)` turns a dataset's published layout into
`VideoItem`s: one per annotated subject-video (or utterance), with its split,
subject and labels, and either a raw video (`video_path`, processed by
`preprocess.process_video`: detection, landmarks, alignment) or a folder of
frames shipped by the dataset (`frame_files`). `Adapter.write` checks that the
splits are subject independent, writes one TFRecord per item to
`DIR/<split>/<video_id>.tfrecord` (schema SequenceExamples, one per
track segment) with `<video_id>.report.json` beside it, and `DIR/manifest.json`
listing every item (read by `splits.check_subject_independent`). Outputs are
written under a temporary name and renamed, so a re-run skips finished items.

Faults stay with their video: an item whose label file does not parse
(`VideoItem.error`: file and line), or whose label rows and source frames
differ by more than `max_label_gap` frames, is reported "failed" and the
others are written; every entry counts `label_rows`, `source_frames`,
`frames_without_label_row`, `label_rows_without_frame`. A truncated video
keeps its decodable frames ("truncated"). Each `<output>.json` records the
options that made the output; a re-run with other options is refused unless
`overwrite` redoes those outputs. manifest.json is merged per video, so a
run on some splits keeps the other videos' entries.

Shipped frames ([AW] Sec. 3.3 drops frames without a face or landmarks):
  * full frames with dataset landmarks (AFEW-VA) are aligned with them
    (`align.align_face`, 5-anchor similarity/affine as for raw videos);
  * full frames without landmarks: dlib detection + landmarks, else dropped;
  * frames the dataset already cropped and aligned (Aff-Wild2
    `cropped_aligned`) are resized to `crop_size`, not re-aligned; their
    landmarks come from the dataset when given, else from dlib run on the
    whole crop (`landmarks="auto"`/`"dlib"`), else NaN (`"none"`, or dlib
    failing); such frames are kept either way.
"""

import dataclasses
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from data_pipeline.base import checks
from data_pipeline.adapters.discovery import VideoItem
from data_pipeline.faces import align, detect
from data_pipeline.records import schema, splits
from data_pipeline.base import atomic
from data_pipeline.media import decode
from data_pipeline.jobs import preprocess
from data_pipeline.jobs import rules as job_rules
from data_pipeline.faces import face_pass
from data_pipeline.base import progress as progress_bar  # `progress` is write_items's line stream.

LANDMARK_MODES = ("auto", "dlib", "none")


def output_path(item: VideoItem, output_dir: str, options: preprocess.PreprocessOptions) -> str:
    return schema.shard_path(os.path.join(output_dir, item.split, item.video_id), options.gzip)


# ---------------------------------------------------------------- raw videos


def source_frame_times(path: str) -> np.ndarray:
    """Times k / fps of a video's source frames (enough rows for the whole stream).

    Used to match time-stamped annotations to the source frame indices that
    `process_video` labels by; assumes a constant frame rate.
    """
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            rate = float(stream.average_rate or stream.guessed_rate or 0)
            seconds = float(container.duration or 0) / 1e6
            if stream.duration and stream.time_base:
                seconds = max(seconds, float(stream.duration * stream.time_base))
            count = max(int(stream.frames or 0), int(np.ceil(seconds * rate)) + 1)
    except (av.error.FFmpegError, IndexError) as error:
        raise decode.DecodeError(f"{path}: cannot read the video stream ({error})") from error
    if rate <= 0:
        raise decode.DecodeError(f"{path}: unknown frame rate")
    return np.arange(count) / rate


def _slice(record: schema.VideoRecord, lo: int, hi: int, video_id: str) -> schema.VideoRecord:
    def cut(value):
        return None if value is None else value[lo:hi]

    return dataclasses.replace(
        record, video_id=video_id, landmarks=cut(record.landmarks), frame_index=cut(record.frame_index),
        timestamp=cut(record.timestamp), images=cut(record.images),
        encoded_images=None if record.encoded_images is None else list(record.encoded_images[lo:hi]),
        alignment=cut(record.alignment), valence=cut(record.valence), arousal=cut(record.arousal),
        expression=cut(record.expression), au=cut(record.au), spectrogram=cut(record.spectrogram))


def segment(record: schema.VideoRecord, size: int) -> List[schema.VideoRecord]:
    """A record cut into `size`-frame segments named `_seg<nnn>` (as `preprocess` names them)."""
    if not size:
        return [record]
    return [_slice(record, lo, min(lo + size, record.num_frames), f"{record.video_id}_seg{k:03d}")
            for k, lo in enumerate(range(0, record.num_frames, size))]


def face_centre_x(record: schema.VideoRecord) -> float:
    """Mean x of a track's landmarks in source-frame pixels (inverting each alignment matrix)."""
    xs = []
    for points, matrix in zip(record.landmarks.reshape(-1, schema.NUM_LANDMARKS, 2),
                              record.alignment.reshape(-1, 2, 3)):
        inverse = cv2.invertAffineTransform(matrix.astype(np.float64))
        xs.append(align.apply_transform(inverse, points.mean(axis=0, keepdims=True))[0, 0])
    return float(np.mean(xs))


def pick_side(records: List[schema.VideoRecord], side: str, frame_width: int) -> Optional[schema.VideoRecord]:
    """The left or right person of a two-person video among per-track records.

    Takes the two longest tracks and returns the one further to `side`; a lone
    track is returned only if it lies in that half of the frame.
    """
    tracks = sorted(records, key=lambda r: -r.num_frames)[:2]
    if not tracks:
        return None
    centres = [face_centre_x(r) for r in tracks]
    if len(tracks) == 1:
        on_side = centres[0] < frame_width / 2 if side == "left" else centres[0] >= frame_width / 2
        return tracks[0] if on_side else None
    order = np.argsort(centres)
    return tracks[order[0] if side == "left" else order[-1]]


def _video_records(item: VideoItem, options: preprocess.PreprocessOptions):
    labels = item.labels
    if item.timed_labels is not None:
        timed = item.timed_labels.at(source_frame_times(item.video_path))
        labels = timed if labels is None else labels.merge(timed)
    if not item.face:
        return preprocess.process_video(item.video_path, options, labels=labels, video_id=item.video_id,
                                        subject_id=item.subject_id, source_path=item.source_path)
    per_track = dataclasses.replace(options, track="all", segment_frames=0)
    records, report = preprocess.process_video(item.video_path, per_track, labels=labels,
                                               video_id=item.video_id, subject_id=item.subject_id,
                                               source_path=item.source_path)
    width = records[0].frame_width if records else 0
    chosen = pick_side(records, item.face, width)
    records = [] if chosen is None else segment(dataclasses.replace(chosen, video_id=item.video_id),
                                                options.segment_frames)
    report["frames_written"] = sum(r.num_frames for r in records)
    report["records"] = len(records)
    report["face"] = item.face
    return records, report


# ---------------------------------------------------------------- shipped frames


_DLIB: Dict[Any, Any] = {}


def _dlib(kind: str, options: preprocess.PreprocessOptions):
    """dlib models loaded once per process (the shape predictor takes about a second)."""
    key = kind if kind == "landmarks" else (kind, options.detector, options.upsample, options.score_threshold)
    if key not in _DLIB:
        _DLIB[key] = (detect.LandmarkDetector() if kind == "landmarks" else
                      detect.FaceDetector(options.detector, options.upsample, options.score_threshold))
    return _DLIB[key]


def _aligned_frame(image, points, mode, options):
    """A frame the dataset already aligned -> (crop, crop landmarks or NaN, matrix)."""
    height, width = image.shape[:2]
    size = options.crop_size
    matrix = np.array([[size / width, 0, 0], [0, size / height, 0]], np.float64)
    crop = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if width > size else cv2.INTER_LINEAR)
    if points is None and mode != "none":
        try:
            points = _dlib("landmarks", options)(image)
        except (ValueError, RuntimeError):
            points = None
    if points is None:
        return crop, np.full((schema.NUM_LANDMARKS, 2), np.nan, np.float32), matrix
    return crop, align.apply_transform(matrix, points), matrix


def _full_frame(image, points, mode, options):
    """A full frame -> aligned (crop, landmarks, matrix), or None when no landmarks are found."""
    if points is None and mode != "none":
        faces = _dlib("detector", options)(image)
        if faces:
            points = _dlib("landmarks", options)(image, max(faces, key=lambda d: d.area).box)
    if points is None:
        return None
    try:
        return align.align_face(image, points, options.crop_size, options.alignment)
    except ValueError:
        return None


def _frame_records(item: VideoItem, options: preprocess.PreprocessOptions, landmarks: str):
    start = time.perf_counter()
    rows, dropped, width, height = [], {}, 0, 0
    for k, path in enumerate(item.frame_files):
        try:
            image = decode.read_image(path)
        except decode.DecodeError:
            dropped["unreadable"] = dropped.get("unreadable", 0) + 1
            continue
        height, width = image.shape[:2]
        points = None
        if item.frame_landmarks is not None and landmarks in ("auto", "none"):
            given = item.frame_landmarks[k]
            points = given if np.all(np.isfinite(given)) else None
        handle = _aligned_frame if item.frames_aligned else _full_frame
        result = handle(image, points, landmarks, options)
        if result is None:
            dropped["landmarks_failed"] = dropped.get("landmarks_failed", 0) + 1
            continue
        crop, crop_points, matrix = result
        rows.append((face_pass.encode_crop(crop, options), crop_points, matrix, item.frame_index[k]))
    records = []
    if rows:
        index = np.array([r[3] for r in rows], np.int64)
        labels = item.labels.take(index) if item.labels is not None else None
        au_names = labels.au_names if labels is not None else ()
        record = schema.VideoRecord(
            video_id=item.video_id, subject_id=item.subject_id, source_path=item.source_path,
            fps=float(item.fps), frame_width=width, frame_height=height,
            encoded_images=[r[0] for r in rows],
            landmarks=np.stack([r[1] for r in rows]).reshape(len(rows), schema.LANDMARK_DIM),
            alignment=np.stack([r[2] for r in rows]).reshape(len(rows), 6),
            frame_index=index, timestamp=index / float(item.fps),
            valence=None if labels is None else labels.valence,
            arousal=None if labels is None else labels.arousal,
            expression=None if labels is None else labels.expression,
            au=None if labels is None else labels.au, au_names=au_names)
        records = segment(record, options.segment_frames)
    report = {"frames_decoded": len(item.frame_files), "frames_with_face": len(rows),
              "frames_written": len(rows), "dropped": dropped, "records": len(records),
              "seconds": round(time.perf_counter() - start, 3)}
    return records, report


# ---------------------------------------------------------------- writing


def item_records(item: VideoItem, options: preprocess.PreprocessOptions = preprocess.PreprocessOptions(),
                 landmarks: str = "auto") -> Tuple[List[schema.VideoRecord], Dict[str, Any]]:
    """One item -> (schema records, report); raw videos go through `preprocess.process_video`."""
    checks.check_choice(landmarks, "landmarks", LANDMARK_MODES)
    if item.video_path is not None:
        return _video_records(item, options)
    return _frame_records(item, options, landmarks)


def _entry(item: VideoItem) -> Dict[str, Any]:
    entry = {"video_id": item.video_id, "subject_id": item.subject_id, "split": item.split,
             "source": item.video_path or (os.path.dirname(item.frame_files[0]) if item.frame_files else "")}
    if item.labels is not None:
        entry["labelled_frames"] = item.labels.counts()
    entry.update(item.info)
    return entry


DEFAULT_MAX_LABEL_GAP = 15  # Frames (0.5 s at 30 fps): releases differ by a few frames; more is another video.


def source_frame_count(item: VideoItem) -> int:
    """Source frames of an item: the shipped frames' highest number + 1, or the video stream's frame count."""
    if item.frame_files is not None:
        return int(item.frame_index.max()) + 1 if len(item.frame_index) else 0
    import av

    try:
        with av.open(item.video_path) as container:
            count = int(container.streams.video[0].frames or 0)
    except (av.error.FFmpegError, IndexError) as error:
        raise decode.DecodeError(f"{item.video_path}: cannot read the video stream ({error})") from error
    return count or len(source_frame_times(item.video_path)) - 1


def label_gap(item: VideoItem, max_label_gap: int) -> Tuple[Dict[str, int], str]:
    """({label_rows, source_frames, frames_without_label_row, label_rows_without_frame}, refusal or "")."""
    if item.labels is None or not item.labels.num_frames:
        return {}, ""
    rows, frames = item.labels.num_frames, source_frame_count(item)
    counts = {"label_rows": rows, "source_frames": frames, "frames_without_label_row": max(frames - rows, 0),
              "label_rows_without_frame": max(rows - frames, 0)}
    if abs(frames - rows) <= max_label_gap:
        return counts, ""
    files = ", ".join(item.info.get("label_files", ())) or item.video_id
    return counts, (f"{files}: {rows} label rows for the {frames} frames of {item.video_id} "
                    f"(gap {abs(frames - rows)} > --max_label_gap {max_label_gap}); fix the file or raise "
                    f"--max_label_gap")


def _made_with(options: preprocess.PreprocessOptions, landmarks: str) -> Dict[str, Any]:
    return {**dataclasses.asdict(options), "landmarks": landmarks}


def write_item(item: VideoItem, output_dir: str, options: preprocess.PreprocessOptions,
               landmarks: str = "auto", max_label_gap: int = DEFAULT_MAX_LABEL_GAP,
               overwrite: bool = False) -> Dict[str, Any]:
    """Write one item's TFRecord; never raises for a bad input (status 'failed' with the error).

    Failed without processing: an item whose labels could not be read
    (`item.error`, naming the file and line), or whose label rows and source
    frames differ by more than `max_label_gap` (counts always in the entry).
    An output made with other options is skipped only when they match; else
    it is redone with `overwrite`, kept and reported failed without.
    """
    target = output_path(item, output_dir, options)
    entry = {**_entry(item), "output": os.path.relpath(target, output_dir)}
    made = _made_with(options, landmarks)
    reused = job_rules.reuse_finished(target, made, overwrite, entry)
    if reused is not None:
        return reused
    if item.error:
        return {**entry, "status": "failed", "error": item.error, "frames_written": 0}
    try:
        gap, refusal = label_gap(item, max_label_gap)
        entry.update(gap)
        if refusal:
            return {**entry, "status": "failed", "error": refusal, "frames_written": 0}
        with decode.collect_truncations() as truncations:
            records, report = item_records(item, options, landmarks)
    except Exception as error:  # One bad video must not stop the others.
        source = entry["source"]
        message = str(error) if source in str(error) else f"{source}: {type(error).__name__}: {error}"
        return {**entry, "status": "failed", "error": message, "frames_written": 0}
    entry.update(report)
    entry["options"] = made
    entry["status"] = "ok" if report["frames_written"] else "empty"
    if truncations and report["frames_written"]:
        entry["status"] = "truncated"
        entry["truncation"] = truncations[0].report()
    job_rules.write_output(target, records, entry, options.image_format)
    return entry


def _write_task(task):
    return write_item(*task)


def check_rerun(items, output_dir: str, options: preprocess.PreprocessOptions, landmarks: str,
                previous: Dict[str, Any]) -> None:
    """Refuse (ValueError) a run whose options differ from those that made existing outputs."""
    fallback = {**previous["options"], "landmarks": previous.get("landmarks")} if previous.get("options") else None
    job_rules.refuse_changed_outputs([output_path(item, output_dir, options) for item in items], output_dir,
                                      _made_with(options, landmarks), fallback)


def write_items(items: Sequence[VideoItem], output_dir: str,
                options: preprocess.PreprocessOptions = preprocess.PreprocessOptions(),
                workers: int = 1, landmarks: str = "auto", dataset: str = "",
                progress=sys.stderr, max_label_gap: int = DEFAULT_MAX_LABEL_GAP,
                overwrite: bool = False, run_tasks=job_rules.run_tasks,
                show_progress: bool = True) -> Dict[str, Any]:
    """Check subject independence and earlier options, write every item, and write DIR/manifest.json
    (merged per video: a run on some splits keeps the other videos' entries).

    `run_tasks`: `job_rules.run_tasks` (a process pool) or a function of the
    same signature, e.g. `beam_pipeline.run_tasks` bound to pipeline options.
    show_progress: a bar over frames (`progress.FrameProgress`) on a terminal.
    """
    if max_label_gap < 0:
        raise ValueError(f"max_label_gap must be >= 0, got {max_label_gap!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    checks.check_choice(landmarks, "landmarks", LANDMARK_MODES)
    ids = [(item.split, item.video_id) for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate video ids: {sorted({i for i in ids if ids.count(i) > 1})[:5]}")
    subjects = splits.check_subject_independent(items)
    previous = job_rules.read_run_file(os.path.join(output_dir, splits.MANIFEST), "manifest")
    if not overwrite:
        check_rerun(items, output_dir, options, landmarks, previous)
    os.makedirs(output_dir, exist_ok=True)
    start = time.perf_counter()
    tasks = [(item, output_dir, options, landmarks, max_label_gap, overwrite) for item in items]
    entries = []
    frames = progress_bar.FrameProgress(dataset or "adapter", len(tasks), show_progress)

    def show(entry):
        entries.append(entry)
        if entry["status"] != "skipped":  # Shipped frames are not decoded: their written ones count.
            frames.input_done(entry.get("frames_decoded", entry.get("frames_written", 0)))
        if progress is not None:
            detail = entry.get("error") or f"{entry.get('frames_written', 0)} frames written"
            progress.write(f"[{len(entries)}/{len(tasks)}] {entry['status']}: {entry['video_id']}: {detail}\n")
            progress.flush()

    with atomic.OutputLock(output_dir, dataset or "adapter"), progress_bar.active(frames):
        run_tasks(_write_task, tasks, workers, "data_pipeline.adapters.common", show)
    order = {(item.split, item.video_id): i for i, item in enumerate(items)}
    entries.sort(key=lambda e: order[(e["split"], e["video_id"])])
    totals = job_rules.status_totals(entries)
    totals.update({"videos": len(entries), "frames_written": sum(e.get("frames_written", 0) for e in entries),
                   "seconds": round(time.perf_counter() - start, 3), "workers": workers})
    written = {(e["split"], e["video_id"]) for e in entries}
    kept = [e for e in previous.get("videos", []) if (e.get("split"), e.get("video_id")) not in written]
    merged_subjects = {split: sorted(set(previous.get("subjects", {}).get(split, [])) | set(names))
                       for split, names in subjects.items()}
    for split, names in previous.get("subjects", {}).items():
        merged_subjects.setdefault(split, names)
    manifest = {"dataset": dataset, "options": dataclasses.asdict(options), "landmarks": landmarks,
                "subjects": merged_subjects, "totals": totals, "videos": kept + entries}
    atomic.write_json(os.path.join(output_dir, splits.MANIFEST), manifest)
    return manifest


class Adapter:
    """One dataset's layout -> `VideoItem`s with official splits and label conventions."""

    name = ""

    def discover(self, root: str) -> List[VideoItem]:
        raise NotImplementedError

    def write(self, root: str, output_dir: str,
              options: preprocess.PreprocessOptions = preprocess.PreprocessOptions(),
              workers: int = 1, landmarks: str = "auto", only_splits: Optional[Sequence[str]] = None,
              progress=sys.stderr, max_label_gap: int = DEFAULT_MAX_LABEL_GAP,
              overwrite: bool = False, run_tasks=job_rules.run_tasks, show_progress: bool = True) -> Dict[str, Any]:
        """discover -> (optionally keep `only_splits`) -> `write_items`; returns the manifest."""
        items = self.discover(root)
        if only_splits:
            unknown = set(only_splits) - {item.split for item in items}
            if unknown:
                raise ValueError(f"{root}: no {self.name} videos in splits {sorted(unknown)}")
            items = [item for item in items if item.split in only_splits]
        return write_items(items, output_dir, options, workers, landmarks, self.name, progress, max_label_gap,
                           overwrite, run_tasks, show_progress)

"""Offline preprocessing: videos/images -> aligned faces + 68 landmarks in TFRecords.

Per input: decode and resample to 30 fps ([AW2] Sec. II-C) -> detect faces
every `detect_every` frames (BlazeFace by default, `detect.py`; [AW] Sec. 3.3
used Mathias et al., [MC] DPM, [FBN] SSH) and follow them by their landmarks
in between (`track.py`) -> one track per person (dlib face descriptors,
`identity.py`) -> 68 landmarks ([MC] Sec. 4, [FBN] Sec. IV) ->
5-anchor alignment onto a frontal template, crop 96x96x3 (`align.py`). Frames
where detection or landmarks fail are dropped and counted ([AW] Sec. 3.3).
Pixel normalisation to [-1, 1] is left to the online reader.

Output, one file per input under DIR, named after the input's path relative to
PATH (`sub/a.mp4` -> `DIR/sub/a.mp4.tfrecord`, `.tfrecord.gz` with --gzip):
one `schema` SequenceExample per written track (and per segment of
`segment_frames` kept frames). Beside it `<output>.json` holds that input's
report, and DIR/report.json every input's (merged per input across runs: a rerun on a subset
keeps the other inputs' entries). The output is written to `<output>.tmp` and
renamed, then its side report the same way (`atomic`): the side report marks the
output finished, so a re-run skips finished inputs and redoes interrupted ones
(a shard without its side report included), removing what a killed run left. Each
`<output>.json` records the options that made it; a rerun with other options
is refused before anything is written (naming the options that changed)
unless `--overwrite`, which redoes those outputs. Undecodable inputs are
reported and skipped; a video that ends early keeps its decodable frames and
is reported "truncated" with the counts. Exit status: 0 when an input has
frames, 1 when none has, 2 on a user mistake (one line `error: ...`, e.g. a
folder without media files).

Record ids: the input's relative path without extension; with `--track all`
each person's track gets `_face<k>` (k = track id in order of appearance);
with `--segment_frames N` each segment gets `_seg<nnn>`. The stored timestamp
is the resampled sample time (`decode.Frame.time`), `frame_index` the source
frame shown at that time, which indexes the labels.

Audio (`--audio`, off by default; [FBN] A/V models): each input's first audio
track is decoded to mono 44.1 kHz and each written frame gets the
`audio/spectrogram` row of `audio.video_spectrogram` (a (context, bins)
patch centred on its timestamp, flattened; shape in the context key
`audio/spectrogram_shape`). An input without an audio track, and every still
image, is "failed" with an error naming the file (`--audio_missing fail`,
the default: an A/V set should not mix in silent records unnoticed), or gets
an all -1 (silence) spectrogram with `audio.status` "missing" in its report
(`--audio_missing silence`). Per input the report's "audio" holds the track's
seconds, start offset, STFT frames and the shares of patch rows that are
padding or sit at the -1 floor / +1 ceiling of the dB range (to tune it).
Re-running into an output folder made without --audio is refused (other
options) unless --overwrite.

The command line is `data_pipeline/preprocess.py`.
"""

import dataclasses
import os
import sys
import time
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from data_pipeline.base import atomic
from data_pipeline.base import progress as progress_bar  # `progress` is preprocess()'s line stream.
from data_pipeline.faces import chunks, face_pass
from data_pipeline.faces.options import PreprocessOptions
from data_pipeline.jobs.rules import (DONE, merge_entries, read_run_file, refuse_changed_outputs,
                                        reuse_finished, run_tasks, status_totals, write_output)
from data_pipeline.media import audio as audio_features  # `audio` is an option.
from data_pipeline.media import decode
from data_pipeline.records import schema


def _take(values, index: np.ndarray, fill, dtype, width: Optional[int] = None):
    """values[index] with `fill` where index is past the end (labels shorter than the video)."""
    shape = (len(index),) if width is None else (len(index), width)
    out = np.full(shape, fill, dtype)
    if values is None:
        return out
    values = np.asarray(values)
    inside = index < len(values)
    out[inside] = values[index[inside]]
    return out


def _label_columns(labels, index: np.ndarray) -> Dict[str, Any]:
    """Per-frame labels for the kept source frames.

    `labels` is a `data_pipeline.records.annotations.FrameLabels`, or any object with
    attributes valence, arousal (float, NaN unlabelled), expression (int, -1),
    au (int (N, len(au_names)), -1) and au_names, indexed by source frame
    index; a missing attribute or None means unlabelled.
    """
    if labels is None:
        return {}
    au_names = tuple(getattr(labels, "au_names", None) or ())
    columns = {
        "valence": _take(getattr(labels, "valence", None), index, np.nan, np.float32),
        "arousal": _take(getattr(labels, "arousal", None), index, np.nan, np.float32),
        "expression": _take(getattr(labels, "expression", None), index, schema.UNLABELLED_CLASS, np.int64),
        "au_names": au_names,
    }
    if au_names:
        au = getattr(labels, "au", None)
        if au is not None and np.ndim(au) != 2:
            raise ValueError(f"labels.au must be (frames, {len(au_names)}), got shape {np.shape(au)}")
        columns["au"] = _take(au, index, schema.UNLABELLED_CLASS, np.int64, len(au_names))
    return columns


def _segments(count: int, size: int):
    if not size:
        return [(0, count)]
    return [(start, min(start + size, count)) for start in range(0, count, size)]


def process_video(path: str, options: PreprocessOptions = PreprocessOptions(), labels=None,
                  video_id: Optional[str] = None, subject_id: str = "",
                  source_path: Optional[str] = None,
                  cores: int = 1) -> Tuple[List[schema.VideoRecord], Dict[str, Any]]:
    """One video or image -> (records of its written tracks/segments, report dict).

    `labels`: see `_label_columns`. Raises `decode.DecodeError` naming the file
    when it cannot be decoded. The report counts frames decoded (after
    resampling), frames with at least one face, frames written (all kept
    tracks), and drops by reason: "no_face" per frame, "landmarks_failed" per
    face (landmarks unusable for alignment: non-finite or degenerate anchors).
    With `options.audio` the records carry the spectrogram and the report
    "audio"; a missing track raises `audio.NoAudioError` (audio_missing "fail").
    """
    start = time.perf_counter()
    track_audio = spec = None
    if options.audio:  # First: an input without audio fails before any face work.
        config = options.spectrogram_config()
        try:
            track_audio = audio_features.decode_audio(path, config.sample_rate,
                                             missing="none" if options.audio_missing == "silence" else "raise")
        except audio_features.NoAudioError as error:
            hint = "--audio needs one; --audio_missing silence writes silence"
            raise audio_features.NoAudioError(f"{error} ({hint})") from error
        if track_audio is not None:
            spec = audio_features.spectrogram_frames(track_audio.samples, config)
    spans = chunks.plan(path, cores)
    if len(spans) > 1:
        found = chunks.run(path, options, spans)
    else:
        found = face_pass.run(path, options, detector_threads=cores)
    for truncation in found.truncations:  # Seen by the caller's `decode.collect_truncations`.
        warnings.warn(decode.TruncatedVideo(path, truncation["source_frames_decoded"], truncation["reason"]))
    video_id = video_id or os.path.splitext(os.path.basename(path))[0]
    decoded, width, height = found.decoded, found.width, found.height
    fps = float(options.fps)
    if not fps:  # Source frames kept: their mean rate.
        first_time, last_time = found.first_time or 0.0, found.last_time or 0.0
        fps = (decoded - 1) / (last_time - first_time) if last_time > first_time else 30.0
    records = []
    tracks = []
    for track_id in face_pass.kept_tracks(found, options.track):
        rows = found.rows.get(track_id, [])
        tracks.append({"track_id": int(track_id), "frames": len(rows)})
        track_name = f"{video_id}_face{track_id}" if options.track == "all" else video_id
        for k, (lo, hi) in enumerate(_segments(len(rows), options.segment_frames)):
            part = rows[lo:hi]
            if not part:
                continue
            index = np.array([r[3] for r in part], np.int64)
            timestamps = np.array([r[4] for r in part], np.float64)
            columns = _label_columns(labels, index)
            if options.audio:
                columns["spectrogram"] = audio_features.video_spectrogram(track_audio, timestamps, config, spec)
                columns["spectrogram_shape"] = config.shape
            records.append(schema.VideoRecord(
                video_id=f"{track_name}_seg{k:03d}" if options.segment_frames else track_name,
                subject_id=subject_id,
                source_path=source_path if source_path is not None else path,
                fps=fps,
                frame_width=width,
                frame_height=height,
                encoded_images=[r[0] for r in part],
                landmarks=np.stack([r[1] for r in part]).reshape(len(part), schema.LANDMARK_DIM),
                alignment=np.stack([r[2] for r in part]).reshape(len(part), 6),
                frame_index=index,
                timestamp=timestamps,
                **columns))
    report = {
        "frames_decoded": decoded,
        "frames_with_face": found.with_face,
        "frames_written": sum(r.num_frames for r in records),
        "dropped": found.dropped,
        "tracks": tracks,
        "records": len(records),
        "detections_run": found.detections_run,
        "scene_cuts": found.scene_cuts,
        "persons": len(found.persons[0]) if found.persons is not None else None,
        "chunks": len(spans),
        "seconds": round(time.perf_counter() - start, 3),
    }
    if found.display.report() is not None:  # Rotated, anamorphic, interlaced or resized frames.
        report["display"] = found.display.report()
    if options.audio:
        report["audio"] = _audio_report(track_audio, spec, records, config)
    return records, report


def _audio_report(track_audio, spec, records, config: audio_features.SpectrogramConfig) -> Dict[str, Any]:
    """Audio statistics of one input: the track, and the written spectrogram values."""
    if track_audio is None:
        return {"status": "missing", "reason": "no audio track: silence written",
                "spectrogram_shape": list(config.shape)}
    rows = np.concatenate([r.spectrogram for r in records]) if records else np.zeros((0, config.dim))
    times = np.concatenate([r.timestamp for r in records]) if records else np.zeros(0)
    index = audio_features.patch_indices(times, track_audio.start, config).numpy()
    inside = (index >= 0) & (index < len(spec))
    values = rows.reshape(len(rows), config.context, config.bins)[inside]  # Real STFT rows only.
    return {
        "status": "ok",
        "sample_rate": track_audio.sample_rate,
        "seconds": round(track_audio.seconds, 3),
        "start": round(track_audio.start, 4),
        "stft_frames": int(len(spec)),
        "spectrogram_shape": list(config.shape),
        "padded_rows": round(float(1 - inside.mean()), 4) if inside.size else 0.0,
        "floor_fraction": round(float(np.mean(values <= -1.0)), 4) if values.size else 0.0,
        "ceiling_fraction": round(float(np.mean(values >= 1.0)), 4) if values.size else 0.0,
    }


def output_path(relative: str, output_dir: str, options: PreprocessOptions) -> str:
    return schema.shard_path(os.path.join(output_dir, relative), options.gzip)


def _options_record(options: PreprocessOptions) -> Dict[str, Any]:
    return dataclasses.asdict(options)


def process_file(source: str, relative: str, output_dir: str, options: PreprocessOptions,
                 overwrite: bool = False, cores: int = 1) -> Dict[str, Any]:
    """Process one input into its output file; never raises for a bad input.

    Returns the input's report: status "ok", "truncated" (the video ends
    early: its decodable frames are written, `truncation` says how many of
    the declared ones), "skipped" (finished earlier with the same options),
    "empty" (decoded but no face written; an empty output marks it done) or
    "failed" (with "error" naming the file and problem; no output, retried on
    the next run). The report, with the options that made the output, is
    written beside it (`schema.side_report_path`). An output made with other options is
    redone when `overwrite`, else kept and reported "failed" (`preprocess`
    refuses such a run before starting; this is the per-file guard).
    """
    target = output_path(relative, output_dir, options)
    entry = {"input": source, "output": target}
    made = _options_record(options)
    reused = reuse_finished(target, made, overwrite, entry)
    if reused is not None:
        return reused
    video_id = os.path.splitext(relative)[0].replace(os.sep, "/")
    try:
        with decode.collect_truncations() as truncations:
            records, report = process_video(source, options, video_id=video_id, source_path=relative,
                                            cores=cores)
    except decode.DecodeError as error:
        failed = {**entry, "status": "failed", "error": str(error), "frames_decoded": 0,
                  "frames_with_face": 0, "frames_written": 0}
        if isinstance(error, audio_features.NoAudioError):
            failed["audio"] = {"status": "missing", "reason": str(error)}
        return failed
    except Exception as error:  # A bad input must not stop the other inputs.
        return {**entry, "status": "failed", "error": f"{source}: {type(error).__name__}: {error}",
                "frames_decoded": 0, "frames_with_face": 0, "frames_written": 0}
    entry.update(report)
    entry["options"] = made
    entry["status"] = "ok" if report["frames_written"] else "empty"
    if truncations:
        entry["status"] = "truncated" if report["frames_written"] else "empty"
        entry["truncation"] = truncations[0].report()
    if not report["frames_written"]:
        entry["error"] = f"{source}: no face with landmarks in any of {report['frames_decoded']} frames"
    # A kill while redoing an output made with other options leaves its old side report,
    # whose options make the next run redo (or refuse) it.
    write_output(target, records, entry, options.image_format)
    return entry


def _process_task(task):
    return process_file(*task)


REPORT = "report.json"


def read_report(output_dir: str) -> Dict[str, Any]:
    return read_run_file(os.path.join(output_dir, REPORT))


def check_rerun(tasks, output_dir: str, options: PreprocessOptions, previous_report: Dict[str, Any]) -> None:
    """Refuse (ValueError) a run whose options differ from those that made existing outputs.

    An output's own side report says how it was made; outputs written
    before options were recorded per file fall back to report.json's options.
    """
    refuse_changed_outputs([output_path(relative, output_dir, options) for _, relative, *_ in tasks], output_dir,
                           _options_record(options), previous_report.get("options"))


def preprocess(input_path: str, output_dir: str, options: PreprocessOptions = PreprocessOptions(),
               workers: Optional[int] = None, progress=sys.stderr, overwrite: bool = False,
               show_progress: bool = True) -> Dict[str, Any]:
    """Process every input under `input_path` into `output_dir`; returns and writes report.json.

    Raises ValueError before writing anything when `input_path` holds no
    media file, or (unless `overwrite`) when existing outputs were made with
    other options. report.json is merged per input: inputs of earlier runs
    that this run does not touch keep their entries (`inputs`); `totals`
    count this run's inputs.
    """
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    inputs = decode.list_inputs(input_path)
    if not inputs:
        raise ValueError(f"{input_path}: no video or image files in this folder (looked for "
                         f"{', '.join(decode.VIDEO_EXTENSIONS + decode.IMAGE_EXTENSIONS)})")
    root = input_path if os.path.isdir(input_path) else os.path.dirname(input_path)
    # One input runs in this process: it may use the cores a pool would have (`chunks`).
    cores = min(workers, os.cpu_count() or 1) if len(inputs) == 1 else 1
    tasks = [(path, os.path.relpath(path, root), output_dir, options, overwrite, cores)
             for path in inputs]
    previous_report = read_report(output_dir)
    if not overwrite:
        check_rerun(tasks, output_dir, options, previous_report)
    os.makedirs(output_dir, exist_ok=True)
    start = time.perf_counter()
    entries = []

    frames = progress_bar.FrameProgress("preprocess", len(tasks), show_progress)

    def show(entry):
        entries.append(entry)
        if entry["status"] != "skipped":
            frames.input_done(entry.get("frames_decoded", 0))
        if progress is not None:
            detail = entry.get("error") or (f"{entry['input']}: {entry.get('frames_written', 0)}/"
                                            f"{entry.get('frames_decoded', 0)} frames written")
            progress.write(f"[{len(entries)}/{len(tasks)}] {entry['status']}: {detail}\n")
            progress.flush()

    # One run per output folder: two would write the same temporaries.
    with atomic.OutputLock(output_dir, "preprocess"), progress_bar.active(frames):
        run_tasks(_process_task, tasks, workers, __name__, show)
        report = assemble_report(input_path, inputs, entries, options, time.perf_counter() - start, workers,
                                 previous_report.get("inputs", []))
        atomic.write_json(os.path.join(output_dir, REPORT), report)
    return report


def assemble_report(input_path: str, inputs: List[str], entries: List[Dict[str, Any]],
                    options: PreprocessOptions, seconds: float, workers: Optional[int],
                    previous_entries: Sequence[Dict[str, Any]] = ()) -> Dict[str, Any]:
    """report.json of a run: `entries` (one per input, any order) in `inputs` order after the
    `previous_entries` of earlier runs' other outputs (merged per output), and this run's totals."""
    order = {path: i for i, path in enumerate(inputs)}
    entries.sort(key=lambda e: order[e["input"]])
    done_now = [e for e in entries if e["status"] in DONE + ("empty",) and "previous_status" not in e]
    decoded_now = sum(e.get("frames_decoded", 0) for e in done_now)
    totals = status_totals(entries)
    totals.update({
        "inputs": len(entries),
        "frames_decoded": sum(e.get("frames_decoded", 0) for e in entries),
        "frames_with_face": sum(e.get("frames_with_face", 0) for e in entries),
        "frames_written": sum(e.get("frames_written", 0) for e in entries),
        "seconds": round(seconds, 3),
        "frames_per_second": round(decoded_now / seconds, 2) if seconds > 0 else 0.0,
        "workers": workers,
        # Inputs of this run whose frames are in their output (now or from an earlier run).
        "with_frames": sum(e["status"] in DONE or e.get("previous_status") in DONE and e["status"] == "skipped"
                           for e in entries),
    })
    if options.audio:
        audio_entries = [e.get("audio", {}) for e in entries]
        totals.update({
            "audio_ok": sum(a.get("status") == "ok" for a in audio_entries),
            "audio_missing": sum(a.get("status") == "missing" for a in audio_entries),
            "audio_seconds": round(sum(a.get("seconds", 0.0) for a in audio_entries), 3),
        })
    report = {"input": input_path, "options": _options_record(options),
              "inputs": merge_entries(previous_entries, entries), "totals": totals}
    return report

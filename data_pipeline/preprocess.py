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

Usage:
  python -m data_pipeline.preprocess --input PATH --output DIR [--workers N]
      [--detector blazeface|blazeface_short|mtcnn|hog|cnn] [--upsample K|-1]
      [--score_threshold X] [--detect_every 10] [--crop_size 96]
      [--alignment similarity|affine] [--track largest|iou|all] [--gzip]
      [--image_format jpeg|png] [--segment_frames N] [--fps 30]
      [--audio] [--audio_context 16] [--audio_bins 64] [--audio_scale mel|linear]
      [--audio_normalization fixed|per_video] [--audio_missing fail|silence] [--overwrite] [--noprogress]
"""

import dataclasses
import json
import multiprocessing
import os
import sys
import time
import warnings
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from data_pipeline.faces import align, chunks, detect, face_pass
from data_pipeline.base import atomic, cli
from data_pipeline.media import decode
from data_pipeline.records import schema
# The options live in a library module (predict and the adapters build them too); re-exported here.
from data_pipeline.faces.options import AUDIO_MISSING, IMAGE_FORMATS, PreprocessOptions
from data_pipeline.base import progress as progress_bar  # `progress` is preprocess()'s line stream.
from data_pipeline.media import audio as audio_features  # `audio` is an option.

# Re-exported: the adapters and predict use the same models and encoding.
face_models, encode_crop = face_pass.face_models, face_pass.encode_crop


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
    for track_id in face_pass.kept_tracks(found, options.track, options.iou_threshold):
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


def read_sidecar(target: str) -> Dict[str, Any]:
    """The side report of a finished output ({} when absent or unreadable)."""
    try:
        with open(schema.side_report_path(target)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def finished_output(target: str) -> Optional[Dict[str, Any]]:
    """The side report of `target` when the output is finished, else None.

    Finished means the shard and its side report are both there: the side report
    is written last (`write_output`), so a shard without one was cut off by a kill
    between the two renames and is redone. Stale temporaries of both files, left by
    a killed writer, are removed first: a finished output would otherwise keep them.
    """
    report = schema.side_report_path(target)
    atomic.remove_temporaries([target, report])
    if not (os.path.exists(target) and os.path.exists(report)):
        return None
    return read_sidecar(target) or None


def write_output(target: str, records, entry: Dict[str, Any], image_format: str) -> None:
    """The shard, then its side report (its completion record), each temp-then-rename."""
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    try:
        schema.write_shard(target, records, image_format)
    except OSError as error:  # E.g. the disk full mid-shard: no partial temporary stays.
        atomic.remove_temporaries([target])
        raise atomic.named(error, target) from error
    atomic.write_json(schema.side_report_path(target), entry)


def option_changes(made_with: Optional[Dict[str, Any]], options: Dict[str, Any]) -> Dict[str, Tuple[Any, Any]]:
    """{option: (old, new)} where an output made with `made_with` differs from `options` (None: unknown, {})."""
    if not made_with:
        return {}
    return {key: (made_with.get(key), value) for key, value in options.items()
            if key in made_with and made_with[key] != value}


def describe_changes(changes: Dict[str, Tuple[Any, Any]]) -> str:
    return ", ".join(f"--{key} {old!r} -> {new!r}" for key, (old, new) in sorted(changes.items()))


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
    previous = finished_output(target)
    if previous is not None:
        changes = option_changes(previous.get("options"), made)
        if not changes:
            return {**previous, **entry, "status": "skipped", "previous_status": previous.get("status", "ok")}
        if not overwrite:
            return {**previous, **entry, "status": "failed", "previous_status": previous.get("status", "ok"),
                    "error": f"{target}: made with other options ({describe_changes(changes)}); kept, "
                             f"pass --overwrite to redo it"}
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
DONE = ("ok", "truncated")  # Statuses of an input whose frames are in its output.


def read_run_file(path: str, what: str = "report") -> Dict[str, Any]:
    """An earlier run's report.json / manifest.json ({} when there is none)."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}
    except ValueError as error:
        raise ValueError(f"{path}: not a readable {what} ({error}); move it away to start a new one") from None


def read_report(output_dir: str) -> Dict[str, Any]:
    return read_run_file(os.path.join(output_dir, REPORT))


def refuse_changed_outputs(targets: Sequence[str], output_dir: str, made: Dict[str, Any],
                           fallback: Optional[Dict[str, Any]]) -> None:
    """Raise ValueError when an existing output among `targets` was made with options other than `made`
    (its side report says how; `fallback` for outputs written before options were recorded per file)."""
    clashes = []
    for target in targets:
        if os.path.exists(target):
            changes = option_changes(read_sidecar(target).get("options", fallback), made)
            if changes:
                clashes.append((target, changes))
    if clashes:
        target, changes = clashes[0]
        raise ValueError(f"{output_dir}: {len(clashes)} output(s) were made with other options "
                         f"({describe_changes(changes)}; e.g. {target}); rerun with the same options, use a new "
                         f"--output, or pass --overwrite to redo them")


def check_rerun(tasks, output_dir: str, options: PreprocessOptions, previous_report: Dict[str, Any]) -> None:
    """Refuse (ValueError) a run whose options differ from those that made existing outputs.

    An output's own side report says how it was made; outputs written
    before options were recorded per file fall back to report.json's options.
    """
    refuse_changed_outputs([output_path(relative, output_dir, options) for _, relative, *_ in tasks], output_dir,
                           _options_record(options), previous_report.get("options"))


def merge_entries(previous: List[Dict[str, Any]], current: List[Dict[str, Any]],
                  key: str = "output") -> List[Dict[str, Any]]:
    """Per-input report entries: this run's replace the previous run's of the same `key`; others are kept."""
    replaced = {e[key] for e in current}
    return [e for e in previous if e.get(key) not in replaced] + list(current)


def run_tasks(function, tasks, workers: int, preload: str, on_result):
    """`on_result(function(task))` for every task, in this process or in a pool
    of `workers` processes (results in completion order).

    forkserver: workers fork from a fresh server that has imported `preload` but
    never run a TF op or loaded dlib models, neither of which is fork-safe once
    initialised in this process. TensorFlow is not preloaded: writing records and
    the default detector need none (`record_io`, LiteRT), and the options that do
    (--detector mtcnn, --audio) import it in each worker at once, in parallel.
    `function` must be a module-level function of `preload`. The module run as
    the command (`python -m data_pipeline.preprocess`) is not preloaded: each
    worker re-runs it as `__mp_main__`, and runpy warns when it finds it
    imported already; the face work's modules are preloaded instead.
    """
    if workers == 1 or len(tasks) <= 1:
        for task in tasks:
            on_result(function(task))
        return
    context = multiprocessing.get_context("forkserver")
    command = getattr(getattr(sys.modules["__main__"], "__spec__", None), "name", None)
    context.set_forkserver_preload([preload if preload != command else face_pass.__name__])
    with context.Pool(min(workers, len(tasks)), initializer=face_pass.init_worker) as pool:
        for result in pool.imap_unordered(function, tasks):
            on_result(result)


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
        run_tasks(_process_task, tasks, workers, "data_pipeline.preprocess", show)
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
    totals = {status: sum(e["status"] == status for e in entries)
              for status in ("ok", "truncated", "skipped", "empty", "failed")}
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


def _parser() -> cli.ArgumentParser:
    defaults = PreprocessOptions()
    parser = cli.ArgumentParser(prog="python -m data_pipeline.preprocess", description=__doc__.split("\n")[0])
    parser.add_argument("--input", required=True, help="video, image, or folder of them (recursive)")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--detector", choices=detect.DETECTORS, default=defaults.detector,
                        help="face detector (README: recall and speed of each)")
    parser.add_argument("--upsample", type=int, default=defaults.upsample,
                        help=f"image doublings for hog/cnn; {detect.AUTO_UPSAMPLE}: small frames to 300 px")
    parser.add_argument("--score_threshold", type=float, default=defaults.score_threshold,
                        help="minimum detector score (default: the detector's own)")
    parser.add_argument("--detect_every", type=int, default=defaults.detect_every,
                        help="detect every k frames (and on scene cuts, lost faces), track by landmarks "
                             "in between; 1 detects every frame")
    parser.add_argument("--crop_size", type=int, default=defaults.crop_size)
    parser.add_argument("--alignment", choices=align.METHODS, default=defaults.alignment)
    parser.add_argument("--track", choices=detect.TRACK_MODES, default=defaults.track,
                        help="largest: the largest face of each frame; iou: the person seen most (one track); "
                             "all: every person, one track each (persons by face descriptor)")
    parser.add_argument("--iou_threshold", type=float, default=defaults.iou_threshold)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--noprogress", action="store_true",
                        help="no progress bar over frames (there is none when stderr is not a terminal)")
    parser.add_argument("--overwrite", action="store_true",
                        help="redo outputs made with other options (default: refuse such a run)")
    parser.add_argument("--image_format", choices=IMAGE_FORMATS, default=defaults.image_format)
    parser.add_argument("--jpeg_quality", type=int, default=defaults.jpeg_quality)
    parser.add_argument("--segment_frames", type=int, default=defaults.segment_frames)
    parser.add_argument("--fps", type=float, default=defaults.fps, help="0 keeps the source frame rate")
    parser.add_argument("--audio", action="store_true", help="write audio/spectrogram per frame ([FBN] A/V)")
    parser.add_argument("--audio_context", type=int, default=defaults.audio_context,
                        help="STFT frames per video frame (spectrogram rows)")
    parser.add_argument("--audio_bins", type=int, default=defaults.audio_bins, help="frequency bins (columns)")
    parser.add_argument("--audio_scale", choices=audio_features.SCALES, default=defaults.audio_scale)
    parser.add_argument("--audio_normalization", choices=audio_features.NORMALIZATIONS,
                        default=defaults.audio_normalization)
    parser.add_argument("--audio_missing", choices=AUDIO_MISSING, default=defaults.audio_missing,
                        help="an input without audio: fail it, or write silence")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """CLI; returns 0 if any input produced frames, 1 if none did; a user mistake raises ValueError
    (`run` prints it as one line and exits 2)."""
    args = _parser().parse_args(argv)
    fields = {f.name for f in dataclasses.fields(PreprocessOptions)}
    options = PreprocessOptions(**{k: v for k, v in vars(args).items() if k in fields})
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if not os.path.exists(args.input):
        raise FileNotFoundError(f"--input {args.input}: no such file or folder")
    report = preprocess(args.input, args.output, options, args.workers, overwrite=args.overwrite,
                        show_progress=not args.noprogress)
    totals = report["totals"]
    sys.stderr.write(json.dumps(totals) + "\n")
    return 0 if totals["with_frames"] else 1


def run() -> None:
    """Console-script entry point."""
    cli.run(main)


if __name__ == "__main__":
    run()

"""`Predictor`: an export directory + options -> per-frame tables of videos, images, streams or frames.

  predictor = affnet.Predictor("runs/demo/export")
  table = predictor.predict("clip.mp4")       # pandas DataFrame, columns of `outputs`
  predictor.run(["videos/"], "out/")          # one CSV (or parquet) per input, plots, summary.json

Per input the pipeline streams (memory flat in the video's length): decode
and face front-end (`data_pipeline.faces.frontend.FrontEnd`, preprocessing's own;
a long file's in time chunks over processes, `_faces`) feed a producer thread
that hands chunks of `chunk_frames` frames through a bounded queue to the model side,
which cuts each face's `seq_len` windows (`windows`) and calls the model on
`batch_size` windows at a time, overlapping decode/detection with inference
(a live source predicts each window as soon as it is complete: latency one
window; its table rows, a few hundred bytes per frame, are written at the end).
After the last frame each face's valence and arousal are median-filtered with
the export's validation-chosen windows (`export.json` "postprocess"), unless
`postprocess="none"`.
"""

import dataclasses
import os
import time
from typing import Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from data_pipeline.base import checks
from affnet.evaluation import smoothing
from affnet.predict import outputs, report, resume, runtime, sources, statistics, windows
from data_pipeline.jobs import rules as job_rules
from data_pipeline.base import atomic, background, progress
from data_pipeline.media import audio, decode
from data_pipeline.media import display as display_lib
from data_pipeline.faces import chunks, frontend
from data_pipeline.faces.options import PreprocessOptions

POSTPROCESS = ("auto", "none")
CHUNK_FRAMES = 32
QUEUE_CHUNKS = 2  # Chunks decoded ahead of the model: bounds memory and latency.
# Options that change how an input is predicted, never what is written (the chunked front-end
# writes the crops of one pass, byte for byte): a rerun may change them and still resume.
HOW_NOT_WHAT = ("progress", "workers", "chunk_frames")


@dataclasses.dataclass(frozen=True)
class PredictOptions:
    """seq_len 0 = the export's; postprocess "auto" applies export.json's median windows."""

    seq_len: int = 0
    batch_size: int = 8
    precision: str = "auto"  # runtime.choose_precision: float16 on GPUs, bfloat16 on CPUs with AMX / AVX512-BF16.
    backend: str = "auto"
    postprocess: str = "auto"
    track: str = "largest"
    # The preprocessing front-end's defaults (data_pipeline.faces.options.PreprocessOptions).
    detector: str = PreprocessOptions.detector
    upsample: int = PreprocessOptions.upsample
    detect_every: int = PreprocessOptions.detect_every
    fps: float = 30.0
    landmarks: bool = False
    max_frames: Optional[int] = None
    progress: bool = True
    chunk_frames: int = CHUNK_FRAMES
    # Processes for the face front-end of a video file long enough to split (`chunks.plan`); 1: in the
    # producer thread. Above 1 a script calling predict needs the `if __name__ == "__main__":` guard, as
    # any multiprocessing program (the processes start by forkserver and re-import the main module).
    workers: int = 1
    report: bool = False  # run(): OUT/<name>.html per input and OUT/index.html (`report`).

    def __post_init__(self):
        if int(self.seq_len) != self.seq_len or self.seq_len < 0:
            raise ValueError(f"seq_len must be a positive integer (0: the export's), got {self.seq_len!r}")
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        checks.check_choice(self.postprocess, "postprocess", POSTPROCESS)
        checks.check_choice(self.track, "track", frontend.STREAMING_TRACK_MODES)
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be positive, got {self.max_frames!r}")
        if self.chunk_frames < 1:
            raise ValueError(f"chunk_frames must be positive, got {self.chunk_frames!r}")
        if int(self.workers) != self.workers or self.workers < 1:
            raise ValueError(f"workers must be a positive integer, got {self.workers!r}")
        checks.check_choice(self.precision, "precision", runtime.PRECISIONS)
        checks.check_choice(self.backend, "backend", runtime.BACKENDS)


def _chunks(frames: Iterable, size: int):
    chunk = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _produce(faced: Iterable, chunk_frames: int):
    """Chunks of (frame, faces) of `faced`, made in a producer thread through a bounded queue."""
    return background.in_background(_chunks(faced, chunk_frames), QUEUE_CHUNKS, "affnet-predict-frontend")


class Predictor:
    """An export (SavedModel / ONNX / TFLite, `runtime.load`) and `PredictOptions` (keyword arguments)."""

    def __init__(self, export_dir: str, **options):
        self.options = PredictOptions(**options)
        self.runtime, self.info = runtime.load(export_dir, self.options.precision, self.options.backend)
        self.seq_len = self.options.seq_len or self.info.seq_len
        self.columns = outputs.prediction_columns(self.info.outputs, self.info.expressions, self.info.au_names)
        # Crops aligned as the training crops were (export.json alignment; [MC] Sec. 4).
        self.preprocess_options = PreprocessOptions(detector=self.options.detector, upsample=self.options.upsample,
                                                    detect_every=self.options.detect_every,
                                                    crop_size=self.info.crop_size, fps=self.options.fps,
                                                    track=self.options.track, alignment=self.info.alignment)
        self.audio_config = None
        if self.runtime.spectrogram_dim:
            self.audio_config = audio.SpectrogramConfig(**{k: tuple(v) if isinstance(v, list) else v
                                                           for k, v in (self.info.audio or {}).items()})
            if self.audio_config.dim != self.runtime.spectrogram_dim:
                raise ValueError(f"{export_dir}: export.json audio gives {self.audio_config.dim} spectrogram "
                                 f"values per frame, the model takes {self.runtime.spectrogram_dim}")
        self.median_windows = None
        if self.options.postprocess == "auto" and self.info.median_windows and "valence_arousal" in self.columns:
            smoothing.check_windows(self.info.median_windows)
            self.median_windows = self.info.median_windows

    # -- one input ------------------------------------------------------------------------------------
    def _audio(self, location: Optional[str]):
        """(audio, spectrogram rows, status) for audio-visual exports; a missing track gives silence."""
        if self.audio_config is None:
            return None, None, None
        track = audio.decode_audio(location, self.audio_config.sample_rate, missing="none") if location else None
        if track is None:
            return None, None, "missing: silence (-1) spectrogram"
        return track, audio.spectrogram_frames(track.samples, self.audio_config), "ok"

    def _faces(self, frame_iter, path: Optional[str]):
        """(frame, faces) of each frame, by preprocessing's front-end (`data_pipeline.faces.frontend`).

        With `workers` > 1 a video file long enough to split (`chunks.plan`
        over `workers` cores, as preprocessing splits a lone input) runs in time chunks over processes
        (`chunks.stream`: the crops of preprocessing's own chunks, in order, the
        first chunk while it is made; frames arrive without pixels); live
        sources, frame arrays, `max_frames` runs and short files go through one
        `FrontEnd` in the producer thread (a live source's latency stays one window).
        """
        if path is not None and self.options.max_frames is None and self.options.workers > 1:
            spans = chunks.plan(path, self.options.workers)
            if len(spans) > 1:
                return chunks.stream(path, self.preprocess_options, spans)
        front_end = frontend.FrontEnd(self.preprocess_options)
        return ((frame, front_end(frame)) for frame in frame_iter)

    def _predict_frames(self, frame_iter, location: Optional[str] = None, description: str = "",
                        live: bool = False):
        """(DataFrame, stats) of decode.Frame items (of the file `location`, if any); `live` predicts
        each window once complete."""
        start = time.perf_counter()
        track_audio, spec, audio_status = self._audio(location)
        windower = windows.Windower(self.seq_len)
        batcher = windows.Batcher(self.options.batch_size)
        rows: List[tuple] = []
        landmarks: Optional[List] = [] if self.options.landmarks else None
        tracks: Dict[int, List[int]] = {}
        predictions: Dict[str, Dict[int, np.ndarray]] = {}
        model_seconds = 0.0
        display = display_lib.DisplayLog()
        bar = progress.bar(None, description, self.options.progress)
        for chunk in _produce(self._faces(frame_iter, location), self.options.chunk_frames):
            spectrogram_rows = None
            if self.audio_config is not None:
                times = [frame.time for frame, _ in chunk]
                spectrogram_rows = audio.video_spectrogram(track_audio, times, self.audio_config, spec)
            for k, (frame, found) in enumerate(chunk):
                display.add(frame)
                if not found:
                    rows.append((frame.source_index, frame.time, None, 0) + (np.nan,) * 5)
                    if landmarks is not None:
                        landmarks.append(None)
                for face in found:
                    row = len(rows)
                    x0, y0, x1, y1 = face.box
                    rows.append((frame.source_index, frame.time, face.track_id, int(face.success), face.score,
                                 x0, y0, x1 - x0, y1 - y0))
                    if landmarks is not None:
                        landmarks.append(face.landmarks)
                    if face.success:
                        tracks.setdefault(face.track_id, []).append(row)
                        batcher.put(windower.add(face.track_id, row, face.crop,
                                                 face.crop_landmarks.reshape(-1).astype(np.float32),
                                                 None if spectrogram_rows is None else spectrogram_rows[k]))
            tick = time.perf_counter()
            for batch in batcher.ready(self.seq_len, partial=live):
                windows.run_batch(self.runtime, batch, self.info.crop_size, predictions)
            model_seconds += time.perf_counter() - tick
            bar.update(len(chunk))
        tick = time.perf_counter()
        batcher.put(windower.flush())
        for batch in batcher.drain():
            windows.run_batch(self.runtime, batch, self.info.crop_size, predictions)
        model_seconds += time.perf_counter() - tick
        bar.close()
        if self.median_windows is not None:
            va = predictions.get("valence_arousal", {})
            for face_rows in tracks.values():
                filtered = smoothing.median_filter(np.stack([va[r] for r in face_rows]), self.median_windows)
                for r, value in zip(face_rows, filtered):
                    va[r] = value
        table = outputs.table(rows, predictions, self.columns, landmarks)
        frames_seen = int(table.drop_duplicates(["frame_index", "timestamp"]).shape[0]) if len(table) else 0
        seconds = time.perf_counter() - start
        stats = {"frames": frames_seen, "rows": len(table), "face_rows": int(table.success.sum()),
                 "faces": sorted(int(t) for t in tracks), "seconds": round(seconds, 3),
                 "frames_per_second": round(frames_seen / seconds, 2) if seconds > 0 else 0.0,
                 "model_seconds": round(model_seconds, 3)}
        if audio_status:
            stats["audio"] = audio_status
        if display.report() is not None:  # Rotated, anamorphic, interlaced or resized frames.
            stats["display"] = display.report()
        return table, stats

    def predict_source(self, source: sources.Source):
        """(DataFrame, stats) of one `sources.Source`."""
        frames = sources.frames(source, self.options.fps, self.options.max_frames)
        return self._predict_frames(frames, None if source.live else source.location, source.name, source.live)

    def predict(self, path_or_frames: Union[str, np.ndarray, Sequence[np.ndarray]], fps: Optional[float] = None):
        """A DataFrame with the CSV's columns for a video / image path or uint8 RGB frames.

        Frames (N, H, W, 3) (or a list of (H, W, 3)) are taken as consecutive
        frames at `fps` (default: the options' fps); they are not resampled.
        """
        if isinstance(path_or_frames, (str, os.PathLike)):
            found = sources.expand([os.fspath(path_or_frames)])
            if len(found) != 1 or found[0].live:
                raise ValueError(f"{path_or_frames}: predict takes one video or image; use run() for folders")
            return self.predict_source(found[0])[0]
        rate = fps or self.options.fps or 30.0
        images = [np.asarray(image) for image in path_or_frames]
        frames = (decode.Frame(image, k, k / rate, k / rate) for k, image in enumerate(images))
        return self._predict_frames(frames)[0]

    # -- a run over many inputs ---------------------------------------------------------------------------
    def run(self, inputs: Sequence[str], output_dir: str, output_format: str = "csv", plots: bool = True,
            annotated_video: bool = False, overwrite: bool = False) -> dict:
        """Write one table per input into `output_dir` (plus plots, annotated videos) and summary.json.

        Resumable (`resume`): a file input finished earlier with the same model and options is
        skipped, a partial one redone; outputs made otherwise are refused (ValueError) before
        anything is written unless `overwrite`. summary.json is merged per input across runs.
        One run at a time per `output_dir` (`atomic.OutputLock`).
        """
        outputs.check_format(output_format, self.columns)
        found = sources.expand(inputs)
        model = resume.model_fingerprint(self.info.directory)
        made = {**{k: v for k, v in dataclasses.asdict(self.options).items() if k not in HOW_NOT_WHAT},
                "seq_len": self.seq_len, "output_format": output_format, "plots": plots,
                "annotated_video": annotated_video}
        bases = {source: os.path.join(output_dir, source.name) for source in found}
        if not overwrite:
            resume.refuse_changed([bases[s] for s in found if not s.live], output_dir, model, made)
        os.makedirs(output_dir, exist_ok=True)
        with atomic.OutputLock(output_dir, "predict"):
            summary_path = os.path.join(output_dir, "summary.json")
            previous = job_rules.read_run_file(summary_path, "summary").get("inputs", [])
            start = time.perf_counter()
            entries = [self._run_one(source, bases[source], output_format, plots, annotated_video, model, made,
                                     output_dir) for source in found]
            seconds = time.perf_counter() - start
            frames_now = sum(e.get("frames", 0) for e in entries if e["status"] == "ok")
            summary = {"model": self.info.directory, "export_model": self.info.model, "model_sha256": model,
                       "seq_len": self.seq_len, "options": dataclasses.asdict(self.options),
                       "median_windows": list(self.median_windows) if self.median_windows else None,
                       "precision": {"used": self.runtime.precision, "why": self.runtime.precision_reason},
                       "columns": list(outputs.BASE_COLUMNS) + [c for cs in self.columns.values() for c in cs],
                       "inputs": job_rules.merge_entries(previous, entries, key="input"),
                       "totals": {"inputs": len(entries), "ok": sum(e["status"] == "ok" for e in entries),
                                  "skipped": sum(e["status"] == "skipped" for e in entries),
                                  "failed": sum(e["status"] == "failed" for e in entries),
                                  "frames": sum(e.get("frames", 0) for e in entries),
                                  "seconds": round(seconds, 3),
                                  "frames_per_second": round(frames_now / seconds, 2) if seconds > 0 else 0.0}}
            outputs.write_summary(summary, summary_path)
            statistics.write_index(summary["inputs"], os.path.join(output_dir, "index.csv"))
            if self.options.report:
                report.write_index(os.path.join(output_dir, "index.html"), summary["inputs"])
        return summary

    def _run_one(self, source: sources.Source, base: str, output_format: str, plots: bool,
                 annotated_video: bool, model: str, made: dict, output_dir: str) -> dict:
        """One input's outputs and summary entry; skipped when `resume.finished`."""
        entry = {"input": source.location}
        done = None if source.live else resume.finished(base, model, made)
        if done is not None:
            return {**done, "status": "skipped", "previous_status": done.get("status", "ok")}
        resume.start(base)
        try:
            table, stats = self.predict_source(source)
        except decode.DecodeError as error:  # One bad input must not stop the others.
            return {**entry, "status": "failed", "error": str(error)}
        os.makedirs(os.path.dirname(base), exist_ok=True)
        entry.update(status="ok", table=f"{base}.{outputs.EXTENSIONS[output_format]}", **stats)
        outputs.write_table(table, entry["table"], output_format)
        entry["statistics"] = statistics.compute(table, self.columns)
        if plots and "valence_arousal" in self.columns:
            entry["plot"], entry["histogram"] = f"{base}_va.png", f"{base}_va_hist.png"
            outputs.plot(table, entry["plot"], entry["histogram"], title=source.name)
        if annotated_video and not source.live:
            entry["annotated_video"] = f"{base}_annotated.mp4"
            again = sources.frames(source, self.options.fps, self.options.max_frames)
            outputs.write_annotated_video(again, table, entry["annotated_video"], self.options.fps)
        if self.options.report:
            video = entry.get("annotated_video") or (None if source.live or source.is_image else source.location)
            entry["report"] = report.write_page(f"{base}.html", table, self.columns, source.name,
                                                self.options.fps, video, entry["statistics"],
                                                os.path.join(output_dir, "index.html"))
        if not source.live:
            resume.finish(base, model, made, entry)
        return entry

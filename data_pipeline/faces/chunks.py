"""One long video on every core: cut by time into chunks whose face work runs in parallel.

dlib's shape predictor holds the GIL, so a lone input gains nothing from more
threads: its landmark fits run one at a time. Instead a video whose header
declares at least `MIN_CHUNK_SECONDS` per core is cut into (at most) `cores`
equal time spans [start, stop), the last one open-ended (a header that
understates the length loses no frames), each processed by `face_pass.run` in
its own process, and the passes joined by `face_pass.merge` (persons matched
by face descriptor). Each chunk decodes the video from its first frame (source
indices stay exact) but converts to RGB only near its span, and starts with a
detection. The output equals a single pass's except that the first frame of
each chunk is detected rather than tracked (the landmarks there come from a
fresh fit, as after any re-detection).

`stream` gives predict the same chunks' faces frame by frame, in order: each
chunk process appends its frames' faces to a file as it goes (memory stays
flat in the video's length), and the first unfinished chunk is read while it
is written, so the model starts on the first frames at once.
"""

import dataclasses
import multiprocessing
import os
import pickle
import struct
import tempfile
import time
import warnings
from typing import Iterator, List, Optional, Tuple

from data_pipeline.media import decode
from data_pipeline.faces import face_pass, frontend, identity

# A chunk's fixed cost (a process, imports, model loads, decoding the video
# up to its span) is about a second on this project's 2-core machine; ten
# seconds of video take several.
MIN_CHUNK_SECONDS = 10.0

Span = Tuple[float, Optional[float]]


def plan(path: str, cores: int, min_seconds: Optional[float] = None) -> List[Span]:
    """The time spans to process `path` in: one [0, None) unless it is long enough to split
    (`min_seconds` per chunk, default `MIN_CHUNK_SECONDS`)."""
    min_seconds = MIN_CHUNK_SECONDS if min_seconds is None else min_seconds
    seconds = decode.declared_seconds(path) if cores > 1 else None
    count = min(cores, int(seconds // min_seconds)) if seconds else 1
    if count < 2:
        return [(0.0, None)]
    bounds = [seconds * k / count for k in range(count + 1)]
    return [(bounds[k], bounds[k + 1] if k < count - 1 else None) for k in range(count)]


def _run_span(task) -> face_pass.FacePass:
    path, options, (start, stop) = task
    return face_pass.run(path, options, start, stop)


def run(path: str, options, spans: List[Span]) -> face_pass.FacePass:
    """The merged `face_pass.FacePass` of `spans` (`plan`), one process per span.

    forkserver as in `preprocess.run_tasks`: a worker forked from this process
    would inherit its TensorFlow and dlib state, neither fork-safe. The server
    itself loads the shape predictor (`landmark_preload`) before forking, so
    the chunks share one copy. (If this process already started a forkserver,
    the preload is not applied and each chunk loads its own.)
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["data_pipeline.faces.landmark_preload"])
    with context.Pool(len(spans), initializer=face_pass.init_worker) as pool:
        passes = pool.map(_run_span, [(path, options, span) for span in spans])
    return face_pass.merge(passes)


_LENGTH = struct.Struct("<Q")
_POLL_SECONDS = 0.02  # How often the reader looks for more of a chunk still being written.


def _spill_span(task) -> face_pass.FacePass:
    """The face work on one span, each frame's (frame without pixels, faces) appended to `file` as it goes."""
    path, options, (start, stop), file = task
    with open(file, "ab") as out:
        def write(frame: decode.Frame, faces: List[frontend.Face]) -> None:
            payload = pickle.dumps((dataclasses.replace(frame, image=None), faces), pickle.HIGHEST_PROTOCOL)
            out.write(_LENGTH.pack(len(payload)) + payload)
            out.flush()

        return face_pass.run(path, options, start, stop, on_frame=write)


def _read_spilled(file: str, result) -> Iterator[tuple]:
    """The records of `file` as its writer appends them, until `result` (its task) is done and all are read."""
    with open(file, "rb") as f:
        while True:
            finished = result.ready()  # Before reading: a record written after this is still read.
            header = f.read(_LENGTH.size)
            if len(header) == _LENGTH.size:
                size, = _LENGTH.unpack(header)
                payload = f.read(size)
                if len(payload) == size:
                    yield pickle.loads(payload)
                    continue
                f.seek(-len(header) - len(payload), os.SEEK_CUR)
            else:
                f.seek(-len(header), os.SEEK_CUR)
            if finished:
                return
            time.sleep(_POLL_SECONDS)


def stream(path: str, options, spans: List[Span]) -> Iterator[Tuple[decode.Frame, List[frontend.Face]]]:
    """(frame, faces) of every output frame of `path` in order: `face_pass.run`'s front-end over `spans`
    (`plan`) in one process each, the faces of preprocessing's own chunks.

    The frames carry no pixels (image None). Person ids (`options.track` "all")
    are joined across chunks by descriptor as `face_pass.merge` joins them, so
    a later chunk is handed out once it is finished; with one track ("largest")
    every chunk is read while it is written. Truncation warnings are re-raised
    here; a `decode.DecodeError` of a chunk is raised when its frames are reached.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["data_pipeline.faces.landmark_preload"])
    bank = identity.IdentityBank()
    with tempfile.TemporaryDirectory(prefix="affnet-chunks-") as scratch, \
            context.Pool(len(spans), initializer=face_pass.init_worker) as pool:
        files = [os.path.join(scratch, f"chunk{k}.pickle") for k in range(len(spans))]
        for file in files:
            open(file, "wb").close()
        results = [pool.apply_async(_spill_span, ((path, options, span, file),)) for span, file in zip(spans, files)]
        for k, (file, result) in enumerate(zip(files, results)):
            ids = None
            if options.track != "largest" and k > 0:  # Ids known once the chunk's persons are.
                ids = bank.absorb(*result.get().persons)
            for frame, faces in _read_spilled(file, result):
                yield frame, faces if ids is None else [dataclasses.replace(f, track_id=ids[f.track_id])
                                                        for f in faces]
            found = result.get()  # Raises the chunk's error, if any.
            if ids is None and found.persons is not None:
                bank.absorb(*found.persons)  # The first chunk's ids are the bank's.
            for truncation in found.truncations:
                warnings.warn(decode.TruncatedVideo(path, truncation["source_frames_decoded"], truncation["reason"]))
            os.remove(file)

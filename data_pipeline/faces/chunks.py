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
"""

import multiprocessing
from typing import List, Optional, Tuple

from data_pipeline.media import decode
from data_pipeline.faces import face_pass

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

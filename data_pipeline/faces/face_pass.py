"""The face work on a video's frames, or on one time chunk of them, and the merge of chunks.

`run` decodes frames `start <= time < stop`, passes each through the shared
front-end (`frontend.FrontEnd`: follow, track, align and encode every kept
face), and returns a `FacePass`: the rows to write per track plus the
counts and person descriptors needed to join it to its neighbours. `merge`
joins the passes of consecutive chunks of one video (`chunks.py` runs them in
parallel): rows are concatenated in time order, and the persons of each chunk
are matched to those seen before by their mean dlib face descriptor
(`identity.IdentityBank.absorb`), so a person keeps one id across chunk
boundaries as across shot cuts. Each chunk starts with a detection, so its
first frame is found as any re-detected frame is.
"""

import collections
import dataclasses
import os
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from data_pipeline.base import background
from data_pipeline.media import decode
from data_pipeline.media import display as display_lib
from data_pipeline.faces import detect, frontend, identity
from data_pipeline.base import progress as progress_bar


@dataclasses.dataclass
class FacePass:
    """What one pass over (part of) a video found.

    rows: track id -> [(encoded crop, (68, 2) crop landmarks, (2, 3) alignment,
    source index, time)] in time order; track_frames / track_areas: the
    tracker's per-track counts (main track = most frames); persons: the
    identity bank's (sums, counts) (None in mode "largest"); truncations: the
    `decode.TruncatedVideo` reports met; display: the frames' display corrections
    (width / height are displayed pixels).
    """

    rows: Dict[int, List[tuple]]
    track_frames: Dict[int, int]
    track_areas: Dict[int, float]
    persons: Optional[Tuple[List[np.ndarray], List[int]]]
    decoded: int = 0
    with_face: int = 0
    dropped: Dict[str, int] = dataclasses.field(default_factory=dict)
    width: int = 0
    height: int = 0
    first_time: Optional[float] = None
    last_time: Optional[float] = None
    detections_run: int = 0
    scene_cuts: int = 0
    truncations: List[dict] = dataclasses.field(default_factory=list)
    display: display_lib.DisplayLog = dataclasses.field(default_factory=display_lib.DisplayLog)


def init_worker():
    """Set-up of a process that does face work for a pool (inputs in `preprocess`, spans in `chunks`)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # --detector mtcnn imports TensorFlow.
    cv2.setNumThreads(1)  # Parallelism is across processes; one thread each.


# Defined with the front-end (models loaded once per process); re-exported for the pools and adapters.
face_models, landmarker, encode_crop = frontend.face_models, frontend.landmarker, frontend.encode_crop


def _prefetched(frames, depth: int = 16):
    """`frames` decoded in a background thread, `depth` ahead: FFmpeg decodes without the
    GIL, so decoding overlaps the face work on a second core."""
    return background.in_background(frames, depth, "affnet-decode")


def run(path: str, options, start: float = 0.0, stop: Optional[float] = None, detector_threads: int = 1,
        on_frame=None) -> FacePass:
    """The face work on frames start <= time < stop of `path` (`options.PreprocessOptions`).

    on_frame(frame, faces): called with each frame's `frontend.Face` list
    (predict streams them to its model); the pass's rows hold the kept
    faces' encoded crops only when on_frame is None.
    """
    front = frontend.FrontEnd(options, detector_threads, encode=on_frame is None)
    kept = collections.defaultdict(list)
    dropped = collections.Counter()
    result = FacePass({}, {}, {}, None)
    with decode.collect_truncations() as truncations:
        for number, frame in enumerate(_prefetched(decode.decode(path, options.fps, start, stop))):
            result.decoded += 1
            result.display.add(frame)
            progress_bar.frame_done()
            result.first_time = frame.time if number == 0 else result.first_time
            result.last_time = frame.time
            result.height, result.width = frame.image.shape[:2]
            faces = front(frame)
            if on_frame is not None:
                on_frame(frame, faces)
            if not faces:
                dropped["no_face"] += 1
                continue
            result.with_face += 1
            for face in faces:
                if not face.success:
                    dropped["landmarks_failed"] += 1
                elif on_frame is None:
                    kept[face.track_id].append((face.encoded, face.crop_landmarks, face.matrix,
                                                frame.source_index, frame.time))
    result.rows = dict(kept)
    result.track_frames, result.track_areas = dict(front.tracker.frames), dict(front.tracker.areas)
    result.persons = front.identities.state() if front.identities is not None else None
    result.dropped = dict(dropped)
    result.detections_run, result.scene_cuts = front.follower.detections_run, front.follower.scene_cuts
    result.truncations = [t.report() for t in truncations]
    return result


def merge(passes: List[FacePass]) -> FacePass:
    """One `FacePass` of consecutive chunks' passes (in time order); persons matched by descriptor."""
    merged = passes[0]
    bank = identity.IdentityBank()
    if merged.persons is not None:
        bank.absorb(*merged.persons)
    for later in passes[1:]:
        # Chunk person id -> merged id (identity when there are no persons: mode "largest", track 0).
        ids = bank.absorb(*later.persons) if later.persons is not None else None
        for track_id, rows in later.rows.items():
            merged.rows.setdefault(ids[track_id] if ids else track_id, []).extend(rows)
        for track_id, count in later.track_frames.items():
            key = ids[track_id] if ids else track_id
            merged.track_frames[key] = merged.track_frames.get(key, 0) + count
            merged.track_areas[key] = merged.track_areas.get(key, 0.0) + later.track_areas[track_id]
        merged.decoded += later.decoded
        merged.with_face += later.with_face
        merged.dropped = dict(collections.Counter(merged.dropped) + collections.Counter(later.dropped))
        merged.width, merged.height = merged.width or later.width, merged.height or later.height
        if later.decoded:
            merged.first_time = later.first_time if merged.first_time is None else merged.first_time
            merged.last_time = later.last_time
        merged.detections_run += later.detections_run
        merged.scene_cuts += later.scene_cuts
        merged.truncations = merged.truncations or later.truncations
        merged.display.merge(later.display)
    if merged.persons is not None:
        merged.persons = bank.state()
    return merged


def kept_tracks(result: FacePass, mode: str) -> List[int]:
    """The track ids to write (`detect.FaceTracker.kept_tracks` on the pass's counts)."""
    tracker = detect.FaceTracker(mode)
    tracker.frames, tracker.areas = result.track_frames, result.track_areas
    return tracker.kept_tracks()

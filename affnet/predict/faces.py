"""The preprocessing front-end one frame at a time, for predict's streaming.

The same steps and models as `data_pipeline.preprocess.process_video`
(detect, track, 68 landmarks, 5-anchor alignment to the crop), but per frame,
so memory stays flat in the video's length. Two differences, both because a
stream has no end to look at: tracks are emitted as they grow ("largest": one
track, id 0; "all": every IoU track), never filtered to a main track
afterwards ("all" keeps person ids from face descriptors); and crops stay raw uint8 (the training records store them as
JPEG q95, a difference inside JPEG noise).
"""

import dataclasses
from typing import List, Optional

import numpy as np

from data_pipeline.faces import align, detect, identity
from data_pipeline import preprocess
from data_pipeline.faces import track as tracking

TRACK_MODES = ("largest", "all")


@dataclasses.dataclass
class Face:
    """One detected face of one frame.

    `box` (x0, y0, x1, y1) frame pixels, `score` the detector's, `landmarks`
    (68, 2) frame pixels, `crop` (S, S, 3) uint8 aligned, `crop_landmarks`
    (136,) crop pixels; the last three are None when landmarks failed.
    """

    track_id: int
    box: tuple
    score: float
    landmarks: Optional[np.ndarray] = None
    crop: Optional[np.ndarray] = None
    crop_landmarks: Optional[np.ndarray] = None

    @property
    def success(self) -> bool:
        return self.crop is not None


class FrontEnd:
    """Frame -> [Face]; one per video (the follower's and tracker's state is the video's).

    The faces come from `track.FaceFollower` as in `process_video`: detection
    every `options.detect_every` frames (and on cuts and lost faces), landmark
    tracking in between, person ids from `identity.IdentityBank` when every
    face is kept. A face's `score` is that of the detection it was last found by.
    """

    def __init__(self, options: preprocess.PreprocessOptions, track: str = "largest"):
        if track not in TRACK_MODES:
            raise ValueError(f"track must be one of {TRACK_MODES}, got {track!r}")
        self.options = options
        detector, landmarker = preprocess.face_models(options)
        identities = identity.IdentityBank() if track == "all" else None
        self.follower = tracking.FaceFollower(detector, landmarker, options.detect_every, identities)
        self.tracker = detect.FaceTracker(track, options.iou_threshold)
        self._number = 0
        self._cache_index = None
        self._cache = ([], {})

    def __call__(self, frame) -> List[Face]:
        if frame.source_index != self._cache_index:
            # Up-sampling repeats a source frame: follow and align it once (as process_video).
            self._cache_index, self._cache = frame.source_index, (self.follower(frame.image), {})
        followed, aligned = self._cache
        detections = [detect.Detection(face.box, face.score) for face in followed]
        by_box = {face.box: face for face in followed}
        faces = []
        for track_id, detection in self.tracker.update(self._number, detections,
                                                       [by_box[d.box].person for d in detections]):
            points = by_box[detection.box].points
            if detection.box not in aligned:
                try:
                    crop, crop_points, _ = align.align_face(frame.image, points, self.options.crop_size,
                                                            self.options.alignment)
                    aligned[detection.box] = (points, crop, crop_points.reshape(-1).astype(np.float32))
                except ValueError:  # Landmarks unusable for alignment: reported as success 0.
                    aligned[detection.box] = (None, None, None)
            faces.append(Face(int(track_id), tuple(float(v) for v in detection.box), float(detection.score),
                              *aligned[detection.box]))
        self._number += 1
        return faces

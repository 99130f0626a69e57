"""The preprocessing front-end one frame at a time, for predict's streaming.

The same steps and models as `data_pipeline.preprocess.process_video`
(detect, track, 68 landmarks, 5-anchor alignment to the crop), but per frame,
so memory stays flat in the video's length. Two differences, both because a
stream has no end to look at: tracks are emitted as they grow ("largest": one
track, id 0; "all": every IoU track), never filtered to a main track
afterwards; and crops stay raw uint8 (the training records store them as
JPEG q95, a difference inside JPEG noise).
"""

import dataclasses
from typing import List, Optional

import numpy as np

from data_pipeline import align, detect, preprocess

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
    """Frame -> [Face]; one per video (the tracker's state is the video's)."""

    def __init__(self, options: preprocess.PreprocessOptions, track: str = "largest"):
        if track not in TRACK_MODES:
            raise ValueError(f"track must be one of {TRACK_MODES}, got {track!r}")
        self.options = options
        self.detector = detect.FaceDetector(options.detector, options.upsample, options.score_threshold)
        self.landmarker = detect.LandmarkDetector()
        self.tracker = detect.FaceTracker(track, options.iou_threshold)
        self._number = 0
        self._cache_index = None
        self._cache = ([], {})

    def __call__(self, frame) -> List[Face]:
        if frame.source_index != self._cache_index:
            # Up-sampling repeats a source frame: detect and align it once (as process_video).
            self._cache_index, self._cache = frame.source_index, (self.detector(frame.image), {})
        detections, aligned = self._cache
        faces = []
        for track_id, detection in self.tracker.update(self._number, detections):
            if detection.box not in aligned:
                try:
                    points = self.landmarker(frame.image, detection.box)
                    crop, crop_points, _ = align.align_face(frame.image, points, self.options.crop_size,
                                                            self.options.alignment)
                    aligned[detection.box] = (points, crop, crop_points.reshape(-1).astype(np.float32))
                except ValueError:  # Landmarks unusable for alignment: reported as success 0.
                    aligned[detection.box] = (None, None, None)
            faces.append(Face(int(track_id), tuple(float(v) for v in detection.box), float(detection.score),
                              *aligned[detection.box]))
        self._number += 1
        return faces

"""The per-frame face front-end shared by preprocessing and predict: a displayed frame in, its kept faces out.

Per video (or time chunk, `chunks.py`) one `FrontEnd` follows the faces
(`track.FaceFollower`: detection every `detect_every` frames, on cuts and lost
faces, landmark tracking in between), groups them into tracks
(`detect.FaceTracker`; person ids from dlib face descriptors,
`identity.IdentityBank`, unless only the largest face is kept) and aligns each
kept face onto the 5-anchor template (`align.align_face`). Preprocessing
(`face_pass.run`: whole videos, time chunks, Beam, the dataset adapters)
writes these faces' crops; predict (`affnet.predict`) feeds the same crops to
the model, so what a model is trained on and what it is served are made by
one piece of code ([MC] Sec. 4: one alignment for training and testing).

Up-sampling repeats a source frame: it is followed, aligned (and encoded) once
and the result reused, while the tracker still sees every output frame so
gaps are counted in output frames.
"""

import dataclasses
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from data_pipeline.faces import align, detect, identity, track
from data_pipeline.records import schema
from data_pipeline.faces.options import PreprocessOptions

# dlib models per process: loading the shape predictor takes about a second.
_MODELS: Dict[Tuple, Any] = {}


def face_models(options, detector_threads: int = 1):
    """(detector, landmarker) of `options` (`PreprocessOptions`), loaded once per process.

    detector_threads: see `detect.FaceDetector`; a lone input too short to
    split into chunks gets every core this way.
    """
    key = (options.detector, options.upsample, options.score_threshold, detector_threads)  # Stateless across videos.
    if key not in _MODELS:
        _MODELS[key] = detect.FaceDetector(options.detector, options.upsample, options.score_threshold,
                                           detector_threads)
    return _MODELS[key], landmarker()


def landmarker() -> detect.LandmarkDetector:
    """This process's dlib shape predictor, loaded on first use (or by `landmark_preload`)."""
    if "landmarks" not in _MODELS:
        _MODELS["landmarks"] = detect.LandmarkDetector()
        _MODELS["landmarks"].load()
    return _MODELS["landmarks"]


def encode_crop(crop: np.ndarray, options) -> bytes:
    """An aligned uint8 RGB crop as JPEG or PNG bytes (`options.image_format`), as the records store it."""
    return schema.encode_image(crop, options.image_format, options.jpeg_quality)


# Modes a stream can use: "iou" picks the main track after the last frame, which a stream never sees.
STREAMING_TRACK_MODES = ("largest", "all")


@dataclasses.dataclass
class Face:
    """One kept face of one frame.

    track_id: the track (mode "largest": 0; "iou" / "all": the person id);
    box (x0, y0, x1, y1) and landmarks (68, 2) in displayed frame pixels;
    score: the detector's score of the detection the face was last found by;
    crop (S, S, 3) uint8 aligned, crop_landmarks (68, 2) in crop pixels,
    matrix (2, 3) frame -> crop pixels, encoded: the crop as the records store
    it (`FrontEnd(encode=True)`); these four are None when the landmarks could
    not be aligned (non-finite or degenerate anchors).
    """

    track_id: int
    box: tuple
    score: float
    landmarks: Optional[np.ndarray] = None
    crop: Optional[np.ndarray] = None
    crop_landmarks: Optional[np.ndarray] = None
    matrix: Optional[np.ndarray] = None
    encoded: Optional[bytes] = None

    @property
    def success(self) -> bool:
        return self.crop is not None


class FrontEnd:
    """decode.Frame -> [Face] (empty when no face was found); one per video or time chunk.

    detector_threads: see `detect.FaceDetector`; encode: also encode each crop
    as `options.image_format` (what preprocessing writes).
    """

    def __init__(self, options: PreprocessOptions, detector_threads: int = 1, encode: bool = False):
        self.options = options
        self.encode = encode
        detector, landmarker = face_models(options, detector_threads)
        self.identities = identity.IdentityBank() if options.track != "largest" else None
        self.follower = track.FaceFollower(detector, landmarker, options.detect_every, self.identities)
        self.tracker = detect.FaceTracker(options.track)
        self._number = 0
        self._cache_index = None
        self._cache: tuple = ([], {})

    def _aligned(self, image: np.ndarray, face: track.TrackedFace) -> Dict:
        try:
            crop, crop_points, matrix = align.align_face(image, face.points, self.options.crop_size,
                                                         self.options.alignment)
        except ValueError:  # Landmarks unusable for alignment.
            return {"landmarks": face.points}
        encoded = encode_crop(crop, self.options) if self.encode else None
        return {"landmarks": face.points, "crop": crop, "crop_landmarks": crop_points, "matrix": matrix,
                "encoded": encoded}

    def __call__(self, frame) -> List[Face]:
        if frame.source_index != self._cache_index:
            self._cache_index, self._cache = frame.source_index, (self.follower(frame.image), {})
        followed, aligned = self._cache
        detections = [detect.Detection(face.box, face.score) for face in followed]
        by_box = {face.box: face for face in followed}
        faces = []
        for track_id, detection in self.tracker.update(self._number, detections,
                                                       [by_box[d.box].person for d in detections]):
            if detection.box not in aligned:
                aligned[detection.box] = self._aligned(frame.image, by_box[detection.box])
            faces.append(Face(int(track_id), tuple(float(v) for v in detection.box), float(detection.score),
                              **aligned[detection.box]))
        self._number += 1
        return faces

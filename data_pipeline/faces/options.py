"""The options of the face work and the records it writes (`PreprocessOptions`).

A library module of its own: preprocessing, its Beam and dataset adapters,
and predict (`affnet.predict`) build the same options, and none of them may
import a command-line module.
"""

import dataclasses
from typing import Optional

from data_pipeline.base import checks
from data_pipeline.faces import align, detect
from data_pipeline.media import audio as audio_features  # `audio` is an option.

IMAGE_FORMATS = ("jpeg", "png")
AUDIO_MISSING = ("fail", "silence")


@dataclasses.dataclass(frozen=True)
class PreprocessOptions:
    """Everything that changes the written records (`data_pipeline.preprocess`'s docstring).

    fps: output frame rate, 0 keeps the source frames; segment_frames: 0 keeps
    a track in one record; detector / upsample / score_threshold: see
    `detect.FaceDetector`; detect_every: run the detector every k frames and
    follow faces by their landmarks in between (`track.FaceFollower`; 1 =
    detect on every frame); track: "largest" writes the largest face of each
    frame, "iou" the person seen most, "all" every person (persons told apart
    by dlib's face descriptor, `identity.py`); audio*: the spectrogram (see the module docstring and `audio.SpectrogramConfig`).
    """

    detector: str = detect.DEFAULT_DETECTOR
    upsample: int = detect.AUTO_UPSAMPLE
    score_threshold: Optional[float] = None
    detect_every: int = 10
    crop_size: int = 96
    alignment: str = align.DEFAULT_METHOD
    track: str = "largest"
    gzip: bool = False
    image_format: str = "jpeg"
    jpeg_quality: int = 95
    segment_frames: int = 0
    fps: float = 30.0
    audio: bool = False
    audio_context: int = 16
    audio_bins: int = 64
    audio_scale: str = "mel"
    audio_normalization: str = "fixed"
    audio_missing: str = "fail"

    def __post_init__(self):
        checks.check_choice(self.detector, "detector", detect.DETECTORS)
        if int(self.upsample) != self.upsample or self.upsample < detect.AUTO_UPSAMPLE:
            raise ValueError(f"upsample must be a non-negative integer or {detect.AUTO_UPSAMPLE} (auto), "
                             f"got {self.upsample!r}")
        if int(self.detect_every) != self.detect_every or self.detect_every < 1:
            raise ValueError(f"detect_every must be a positive integer, got {self.detect_every!r}")
        align.template(self.crop_size)  # Validates crop_size.
        checks.check_choice(self.alignment, "alignment", align.METHODS)
        checks.check_choice(self.track, "track", detect.TRACK_MODES)
        checks.check_choice(self.image_format, "image_format", IMAGE_FORMATS)
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality must be in [1, 100], got {self.jpeg_quality!r}")
        if int(self.segment_frames) != self.segment_frames or self.segment_frames < 0:
            raise ValueError(f"segment_frames must be a non-negative integer, got {self.segment_frames!r}")
        if self.fps < 0:
            raise ValueError(f"fps must be positive, or 0 to keep the source rate, got {self.fps!r}")
        checks.check_choice(self.audio_missing, "audio_missing", AUDIO_MISSING)
        self.spectrogram_config()  # Validates the audio settings.

    def spectrogram_config(self) -> audio_features.SpectrogramConfig:
        return audio_features.SpectrogramConfig(context=self.audio_context, bins=self.audio_bins,
                                                scale=self.audio_scale, normalization=self.audio_normalization)

"""Frames as players show them: the container's display matrix (rotation by 90/180/270 degrees,
mirroring; phones store portrait video sideways with a rotation), the sample aspect ratio
(anamorphic DV and broadcast files store wide pixels), deinterlacing, and the fitting of a
mid-stream resolution change into the first frame's displayed size (`Displayer`), with their
inverse for writing test clips (`stored`) and the per-video summary for reports (`DisplayLog`).
"""

import collections
import dataclasses
import fractions
from typing import Dict, Optional, Tuple

import cv2
import numpy as np


@dataclasses.dataclass(frozen=True)
class Display:
    """What was done to one stored frame to show it as players do (in this order).

    deinterlaced: an interlaced frame is replaced by its top field, line-doubled
    (no combing on motion, at half the vertical detail); sample_aspect_ratio:
    the stored width is resampled by it (2:1 doubles the width);
    rotation: degrees clockwise (0, 90, 180, 270), then `flip` mirrors left-right
    (the eight orientations a display matrix or EXIF tag can give);
    fitted: the stream changed resolution, so the frame was scaled (aspect kept)
    and padded with black into the first frame's displayed size;
    stored_size: (width, height) as decoded.
    """

    stored_size: Tuple[int, int]
    rotation: int = 0
    flip: bool = False
    sample_aspect_ratio: fractions.Fraction = fractions.Fraction(1)
    deinterlaced: bool = False
    fitted: bool = False


_CV2_ROTATIONS = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def orientation(matrix) -> Tuple[int, bool]:
    """(clockwise rotation, mirrored) of an FFmpeg display matrix (9 int32, 16.16 fixed point);
    an angle that is no multiple of 90 degrees is rounded to the nearest one.

    libavutil/display.h: a stored pixel (x, y), y pointing down, is displayed at
    (a x + c y, b x + d y) for the matrix [a b u; c d v; ...]; a clockwise turn takes
    the right (1, 0) to down (0, 1) (the mp4 `rotate` tag 90 of a portrait phone
    clip); a negative determinant is a mirror, taken as left-right after the turn.
    """
    m = np.asarray(matrix, np.float64)
    linear = np.array([[m[0], m[3]], [m[1], m[4]]]) / 65536.0
    flip = bool(np.linalg.det(linear) < 0)
    if flip:
        linear = np.diag([-1, 1]) @ linear
    angle = np.degrees(np.arctan2(linear[1, 0], linear[0, 0]))  # Clockwise, y down.
    return int(round(angle / 90.0)) % 4 * 90, flip


def show(image: np.ndarray, display: Display) -> np.ndarray:
    """A stored uint8 RGB frame as displayed (`Display`, without the fitting)."""
    height, width = image.shape[:2]
    if display.deinterlaced:
        image = cv2.resize(image[0::2], (width, height), interpolation=cv2.INTER_LINEAR)
    if display.sample_aspect_ratio != 1:
        wide = max(1, int(round(width * display.sample_aspect_ratio)))
        image = cv2.resize(image, (wide, height),
                           interpolation=cv2.INTER_LINEAR if wide > width else cv2.INTER_AREA)
    if display.rotation:
        image = cv2.rotate(image, _CV2_ROTATIONS[display.rotation])
    if display.flip:
        image = cv2.flip(image, 1)
    return image


def _fit(image: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """`image` scaled (aspect kept) and centred on black in a (width, height) canvas."""
    width, height = size
    scale = min(width / image.shape[1], height / image.shape[0])
    w, h = max(1, int(round(image.shape[1] * scale))), max(1, int(round(image.shape[0] * scale)))
    canvas = np.zeros((height, width, 3), np.uint8)
    x, y = (width - w) // 2, (height - h) // 2
    canvas[y:y + h, x:x + w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return canvas


class Displayer:
    """Stored frames of one stream -> (displayed image, `Display` or None); remembers the first
    displayed size to fit later frames of another resolution into it."""

    def __init__(self):
        self.size: Optional[Tuple[int, int]] = None

    def __call__(self, image: np.ndarray, rotation: int = 0, flip: bool = False,
                 sample_aspect_ratio=1, interlaced: bool = False):
        height, width = image.shape[:2]
        display = Display((width, height), rotation, flip, fractions.Fraction(sample_aspect_ratio or 1),
                          bool(interlaced))
        if display != Display((width, height)):
            image = show(image, display)
        size = (image.shape[1], image.shape[0])
        if self.size is None:
            self.size = size
        elif size != self.size:
            image, display = _fit(image, self.size), dataclasses.replace(display, fitted=True)
        return image, (None if display == Display((width, height)) else display)

    @staticmethod
    def _pyav_display(frame, stream) -> Tuple[int, bool, fractions.Fraction]:
        matrix = frame.side_data.get("DISPLAYMATRIX")
        rotation, flip = orientation(np.frombuffer(bytes(matrix), np.int32)) if matrix is not None else (0, False)
        sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
        return rotation, flip, fractions.Fraction(sar) if sar and sar > 0 else fractions.Fraction(1)

    def pyav(self, frame, stream):
        """A decoded `av.VideoFrame` of `stream` as displayed (its side data's display matrix,
        the stream's or codec's sample aspect ratio, its interlacing flag)."""
        rotation, flip, sar = self._pyav_display(frame, stream)
        return self(frame.to_ndarray(format="rgb24"), rotation, flip, sar, frame.interlaced_frame)

    def skip(self, frame, stream) -> None:
        """A frame decoded but not converted (before a time chunk): its displayed size still sets the
        size later frames are fitted into, so every chunk of a stream shares the first frame's."""
        if self.size is None:
            rotation, _, sar = self._pyav_display(frame, stream)
            size = (max(1, int(round(frame.width * sar))), frame.height)
            self.size = size[::-1] if rotation in (90, 270) else size


class DisplayLog:
    """Counts of the `Display` corrections of a video's frames, for its report."""

    def __init__(self):
        self.counts: Dict[Display, int] = collections.Counter()
        self.frames = 0

    def add(self, frame) -> None:
        """Count a `decode.Frame` (its `display`, None when shown as stored)."""
        self.frames += 1
        if frame.display is not None:
            self.counts[frame.display] += 1

    def merge(self, other: "DisplayLog") -> None:
        self.counts.update(other.counts)
        self.frames += other.frames

    def report(self) -> Optional[dict]:
        """None when every frame was shown as stored; else e.g. {"rotation": 90,
        "sample_aspect_ratio": "2:1", "stored_size": [88, 144], "corrected_frames": 120}
        (the most common correction) plus counts of deinterlaced and fitted frames."""
        if not self.counts:
            return None
        common = self.counts.most_common(1)[0][0]
        report = {"rotation": common.rotation, "flip": common.flip,
                  "sample_aspect_ratio": f"{common.sample_aspect_ratio.numerator}:"
                                         f"{common.sample_aspect_ratio.denominator}",
                  "stored_size": list(common.stored_size),
                  "frames": self.frames, "corrected_frames": sum(self.counts.values())}
        deinterlaced = sum(n for d, n in self.counts.items() if d.deinterlaced)
        fitted = sum(n for d, n in self.counts.items() if d.fitted)
        if deinterlaced:
            report["deinterlaced_frames"] = deinterlaced
        if fitted:  # A resolution change: those frames were scaled into the first frame's size.
            report["fitted_frames"] = fitted
            report["stored_sizes"] = [list(size) for size in sorted({d.stored_size for d in self.counts})]
        return report


def stored(image: np.ndarray, rotation: int = 0, flip: bool = False, sample_aspect_ratio=1) -> np.ndarray:
    """The stored frame that displays as `image` under `Display` (rotation, flip, sample aspect
    ratio): the inverse of `show`, up to the resampling of the width."""
    if flip:
        image = cv2.flip(image, 1)
    if rotation % 360:
        image = cv2.rotate(image, _CV2_ROTATIONS[(360 - rotation % 360) % 360])
    if sample_aspect_ratio != 1:
        height, width = image.shape[:2]
        image = cv2.resize(image, (max(1, int(round(width / sample_aspect_ratio))), height),
                           interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)

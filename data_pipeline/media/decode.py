"""Decode videos and images into RGB frames resampled to a fixed frame rate.

[AW2] Sec. II-C converts every video to 30 fps before annotation and training.
We resample by presentation timestamps instead of re-encoding: output sample k
stands for time t_k = k / fps (seconds after the first decoded frame) and shows
the source frame whose timestamp is nearest to t_k; on an exact tie the earlier
frame wins (the nearest-neighbour rule [AW] Sec. 3.3 uses for annotation times).
Samples run while t_k < t_last + one source frame period, so a 25 fps clip of
10 frames (0.4 s) gives 12 frames at 30 fps. Up-sampling repeats source frames,
down-sampling skips them; every output frame keeps its source index, so labels
indexed by source frame stay attached. All time arithmetic is exact (Fraction).

PyAV (FFmpeg) is the decoder; OpenCV is the fallback when PyAV cannot open the
file. A failure before the first frame raises `DecodeError` naming the file
and the problem. A video that stops decoding part way (a truncated or
damaged file) keeps the frames decoded so far: the stream just ends and a
`TruncatedVideo` warning says where (`collect_truncations` gathers them).

Frames are returned as players show them (`Display`): the container's display
matrix (rotation by 90/180/270 degrees, mirroring; phones store portrait video
sideways with a rotation) and the sample aspect ratio (anamorphic DV and
broadcast files store wide pixels) are applied, interlaced frames are
deinterlaced, and a mid-stream resolution change is fitted into the first
frame's displayed size, so every box, landmark and alignment matrix downstream
is in one displayed pixel space (`display`, where `DisplayLog` summarises what
was corrected for the reports). The OpenCV fallback applies rotations (OpenCV's own
auto-orientation) and the sample aspect ratio, but cannot see mirroring.
"""

import contextlib
import dataclasses
import fractions
import os
import warnings
from typing import Iterator, Optional

import cv2
import numpy as np

from data_pipeline.media import display as display_lib

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".flv", ".wmv", ".3gp")
# Every still format OpenCV's imread reads (its documentation's list); matched case-insensitively.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jpe", ".jp2", ".png", ".bmp", ".dib", ".webp", ".avif", ".tif", ".tiff",
                    ".pbm", ".pgm", ".ppm", ".pxm", ".pnm", ".pfm", ".sr", ".ras", ".exr", ".hdr", ".pic")


class DecodeError(RuntimeError):
    """A file could not be decoded; the message names the file and the problem."""


class TruncatedVideo(UserWarning):
    """A video stopped decoding after `frames` source frames (`reason` says why)."""

    def __init__(self, path: str, frames: int, reason: str):
        super().__init__(f"{path}: truncated after {frames} decodable frames ({reason})")
        self.path, self.frames, self.reason = path, frames, reason

    def report(self) -> dict:
        return {"source_frames_decoded": self.frames, "reason": self.reason}


@contextlib.contextmanager
def collect_truncations():
    """`with collect_truncations() as found:` -> the `TruncatedVideo` warnings raised inside, in order."""
    found = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TruncatedVideo)
        yield found
        found.extend(w.message for w in caught if isinstance(w.message, TruncatedVideo))
    for w in caught:  # Other warnings go on as usual.
        if not isinstance(w.message, TruncatedVideo):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


@dataclasses.dataclass(frozen=True)
class Frame:
    """One output frame.

    `image` uint8 RGB (H, W, 3) as displayed; `source_index` the frame's index
    in decode order in the source; `source_time` its own timestamp and `time`
    the resampled sample time, both in seconds after the first decoded frame
    (equal when no resampling is done); `display` what was corrected to show
    the stored frame (None: shown as stored).
    """

    image: np.ndarray
    source_index: int
    source_time: float
    time: float
    display: Optional[display_lib.Display] = None


def is_image(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def is_media(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS + IMAGE_EXTENSIONS


def _as_fraction(value) -> fractions.Fraction:
    # 29.97 -> 30000/1001: NTSC rates are the only non-integer rates in practice.
    return fractions.Fraction(value).limit_denominator(1001000)


def _frame(image, index: int, source_time, time) -> Frame:
    image, display = image if isinstance(image, tuple) else (image, None)
    return Frame(image, index, float(source_time), float(time), display)


def resample(source, fps: Optional[float]) -> Iterator[Frame]:
    """Resample an iterable of (image, source_index, Fraction time) to `fps`.

    image: an array, or (array, `Display`). `fps` None or 0 keeps every source
    frame. Streaming: holds two frames.
    """
    if not fps:
        for image, index, time in source:
            yield _frame(image, index, time, time)
        return
    if fps < 0:
        raise ValueError(f"fps must be positive (or 0 for no resampling), got {fps}")
    period = 1 / _as_fraction(fps)
    k = 0
    previous = None
    last_step = None
    for image, index, time in source:
        if previous is not None:
            last_step = time - previous[2]
        while k * period <= time:
            target = k * period
            if previous is not None and target - previous[2] <= time - target:
                chosen = previous
            else:
                chosen = (image, index, time)
            yield _frame(chosen[0], chosen[1], chosen[2], target)
            k += 1
        previous = (image, index, time)
    if previous is None:
        return
    # The last frame is shown for one source period (the previous step, or one
    # output period for a single-frame input).
    end = previous[2] + (last_step if last_step else period)
    while k * period < end:
        yield _frame(previous[0], previous[1], previous[2], k * period)
        k += 1


def _declared_duration(container, stream) -> Optional[float]:
    """The video stream's duration from the header, in seconds, if known.

    The container's duration is used only when video is its sole stream: an
    audio track may legitimately outlast the video.
    """
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration and len(container.streams) == 1:
        return container.duration / 1_000_000  # AV_TIME_BASE units.
    return None


def _pyav_frames(path: str, convert_from: float = -np.inf):
    """(RGB image, index, time) of every source frame; frames before `convert_from` seconds
    are decoded (their indices count) but not converted, their image is None."""
    import av  # Imported lazily: worker processes that only read images skip it.

    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError) as error:
        raise DecodeError(f"{path}: cannot open with PyAV: {error}") from error
    displayer = display_lib.Displayer()
    with container:
        if not container.streams.video:
            raise DecodeError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or 30
        declared = _declared_duration(container, stream)
        start = end = None
        try:
            for index, frame in enumerate(container.decode(stream)):
                if frame.pts is not None and frame.time_base is not None:
                    time = frame.pts * frame.time_base
                else:
                    time = index / _as_fraction(rate)
                start = time if start is None else start
                end = time
                time = fractions.Fraction(time - start)
                if time >= convert_from:
                    yield displayer.pyav(frame, stream), index, time
                else:
                    displayer.skip(frame, stream)
                    yield (None, None), index, time
        except av.error.FFmpegError as error:
            raise DecodeError(f"{path}: decoding failed: {error}") from error
        if declared and start is not None:
            covered = float(end - start) + 1 / float(rate)
            if covered < declared - max(2 / float(rate), 0.05 * declared):
                raise DecodeError(f"{path}: truncated: frames cover {covered:.2f} s of the "
                                  f"{declared:.2f} s the header declares")


def _opencv_frames(path: str):
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise DecodeError(f"{path}: cannot open with OpenCV")
    rate = capture.get(cv2.CAP_PROP_FPS) or 30.0
    # OpenCV turns frames by the display matrix itself (CAP_PROP_ORIENTATION_AUTO); it does not mirror.
    rotation = int(capture.get(cv2.CAP_PROP_ORIENTATION_META) or 0) % 360
    sar = _as_fraction(capture.get(cv2.CAP_PROP_SAR_NUM) or 1) / _as_fraction(capture.get(cv2.CAP_PROP_SAR_DEN) or 1)
    displayer = display_lib.Displayer()
    index = 0
    start = None
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            msec = capture.get(cv2.CAP_PROP_POS_MSEC)
            time = _as_fraction(msec / 1000) if msec > 0 or index == 0 else index / _as_fraction(rate)
            start = time if start is None else start
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if rotation in (90, 270):  # Already turned: the stored width is now the height.
                rgb = np.ascontiguousarray(np.swapaxes(rgb, 0, 1))
            image, display = displayer(rgb, 0, False, sar if sar > 0 else 1)
            if rotation in (90, 270):
                image = np.ascontiguousarray(np.swapaxes(image, 0, 1))
                display = dataclasses.replace(display or display_lib.Display(rgb.shape[1::-1]), rotation=rotation,
                                              stored_size=(rgb.shape[1], rgb.shape[0]))
            elif rotation:
                display = dataclasses.replace(display or display_lib.Display(rgb.shape[1::-1]), rotation=rotation)
            yield (image, display), index, time - start
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise DecodeError(f"{path}: OpenCV decoded no frames")


def _video_frames(path: str, convert_from: float = -np.inf):
    """PyAV first; OpenCV only if PyAV cannot open the file or yields nothing."""
    pyav_error = None
    produced = 0
    try:
        for item in _pyav_frames(path, convert_from):
            produced += 1
            yield item
    except DecodeError as error:
        if produced:  # Keep what decoded: the frames before the damage are good.
            warnings.warn(TruncatedVideo(path, produced, str(error).replace(f"{path}: ", "", 1)), stacklevel=2)
            return
        pyav_error = error
    if produced:
        return
    try:
        yield from _opencv_frames(path)
    except DecodeError as error:
        reason = pyav_error or f"{path}: PyAV decoded no frames"
        raise DecodeError(f"{reason}; fallback: {error}") from error


def read_image(path: str) -> np.ndarray:
    """An image file -> uint8 RGB (H, W, 3)."""
    bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    if bgr is None:
        raise DecodeError(f"{path}: not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode(path: str, fps: Optional[float] = 30.0, start: float = 0.0,
           stop: Optional[float] = None) -> Iterator[Frame]:
    """Frames of a video file (resampled to `fps`), or the one frame of an image.

    start / stop: only the output frames with start <= time < stop (seconds;
    one time chunk of a long video, `chunks.plan`). The video is still decoded
    from its first frame, so source indices and times are exactly those of a
    whole decode (a seek lands on a key frame whose index the container need
    not know); frames more than a second before `start` skip the RGB conversion.
    Raises `DecodeError` (possibly after yielding frames, for a file corrupt
    part way through) naming `path`.
    """
    if not os.path.isfile(path):
        raise DecodeError(f"{path}: no such file")
    if is_image(path):
        if start <= 0.0 and (stop is None or stop > 0.0):
            yield Frame(read_image(path), 0, 0.0, 0.0)
        return
    for frame in resample(_video_frames(path, start - 1.0 if start > 0 else -np.inf), fps):
        if stop is not None and frame.time >= stop:
            return
        if frame.time >= start:
            yield frame


def declared_seconds(path: str) -> Optional[float]:
    """A video's duration from its header (None when unknown, unreadable, or an image)."""
    if is_image(path):
        return None
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                return None
            return _declared_duration(container, container.streams.video[0])
    except (av.error.FFmpegError, OSError):
        return None


def list_inputs(path: str):
    """A file -> [file]; a folder -> its media files (recursively, sorted).

    A folder's files are chosen by extension, so a text file named .mp4 is an
    input (and is reported as undecodable later).
    """
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such file or folder")
    found = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        found.extend(os.path.join(root, name) for name in sorted(files) if is_media(name))
    return found


def write_video(path: str, frames, fps: float = 25.0, codec: str = "libx264", crf: int = 18,
                rotation: int = 0, flip: bool = False, sample_aspect_ratio=1, interlaced: bool = False) -> None:
    """uint8 RGB frames -> a video file (the inverse of `decode`; tests and benches).

    Frame k gets pts k in time base 1/fps, so source timestamps are exact.
    rotation (clockwise degrees) / flip / sample_aspect_ratio: store the frames
    as a phone or an anamorphic camera would (`stored`) with the display matrix
    and sample aspect ratio that make players show `frames`; interlaced: coded
    as interlaced fields (libx264, top field first), as broadcast sources are.
    """
    import av

    sample_aspect_ratio = _as_fraction(sample_aspect_ratio)
    frames = [display_lib.stored(image, rotation, flip, sample_aspect_ratio) for image in frames]
    if not frames:
        raise ValueError(f"{path}: no frames to write")
    height, width = frames[0].shape[:2]
    rate = _as_fraction(fps)
    with av.open(path, mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        if sample_aspect_ratio != 1:
            stream.codec_context.sample_aspect_ratio = sample_aspect_ratio
        if rotation % 360 or flip:
            stream.set_display_rotation(-(rotation % 360), hflip=flip)  # PyAV counts counter-clockwise.
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": "veryfast",
                              **({"x264-params": "interlaced=1:tff=1"} if interlaced else {})}
        for k, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = k  # In the codec time base, 1/fps (set by `rate`).
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)

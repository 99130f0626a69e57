"""What predict reads: files, folders (recursive), glob patterns, or a live camera / stream.

A live source is a camera index ("0") or a URL PyAV opens ("rtsp://...",
"http://..."). It is read in a thread into a bounded queue that drops the
oldest frame when full, so a slow model never makes latency or memory grow
with the stream's length; frames keep their source index and stream time.
"""

import dataclasses
import fractions
import glob
import os
import queue
import threading
from typing import Iterator, List, Optional, Sequence

from data_pipeline.media import decode

from data_pipeline.media import display as display_lib

LIVE_PREFIXES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")
LIVE_QUEUE_FRAMES = 64  # ~2 s at 30 fps: the most a live source buffers before dropping frames.


@dataclasses.dataclass(frozen=True)
class Source:
    """One input: `location` (a path, camera index or URL), `name` (output path stem: the path
    relative to its folder argument without extension), `live`."""

    location: str
    name: str
    live: bool = False

    @property
    def is_image(self) -> bool:
        return not self.live and decode.is_image(self.location)


def is_live(spec: str) -> bool:
    return spec.isdigit() or spec.lower().startswith(LIVE_PREFIXES)


def _stem(relative: str) -> str:
    return os.path.splitext(relative)[0]


def expand(specs: Sequence[str]) -> List[Source]:
    """Input specs -> sources, in order; a folder gives its media files recursively (sorted).

    Raises FileNotFoundError naming the spec when a path does not exist or a
    glob or folder matches no media file.
    """
    sources = []
    for spec in specs:
        if is_live(spec):
            name = f"camera{spec}" if spec.isdigit() else "stream"
            sources.append(Source(spec, name, live=True))
        elif os.path.isdir(spec):
            found = decode.list_inputs(spec)
            if not found:
                raise FileNotFoundError(f"{spec}: folder holds no video or image file")
            sources.extend(Source(path, _stem(os.path.relpath(path, spec))) for path in found)
        elif os.path.isfile(spec):
            sources.append(Source(spec, _stem(os.path.basename(spec))))
        elif glob.has_magic(spec):
            found = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p) and decode.is_media(p))
            if not found:
                raise FileNotFoundError(f"{spec}: no video or image file matches")
            sources.extend(Source(path, _stem(os.path.basename(path))) for path in found)
        else:
            raise FileNotFoundError(f"{spec}: no such file or folder")
    names = [s.name for s in sources]
    for k, source in enumerate(sources):  # a.mp4 and a.png: keep the extension; still equal: number them.
        if names.count(source.name) > 1:
            sources[k] = dataclasses.replace(source, name=f"{source.name}{os.path.splitext(source.location)[1]}")
    names = [s.name for s in sources]
    for k, source in enumerate(sources):
        if names.count(source.name) > 1:
            sources[k] = dataclasses.replace(source, name=f"{source.name}.{k}")
    return sources


def _live_frames(location: str, max_frames: Optional[int]) -> Iterator[decode.Frame]:
    import av  # PyAV opens cameras (v4l2) and network streams alike.

    try:
        if location.isdigit():
            container = av.open(f"/dev/video{location}", format="v4l2")
        else:
            container = av.open(location, options={"rtsp_transport": "tcp"} if location.startswith("rtsp") else {})
    except (av.error.FFmpegError, OSError) as error:
        raise decode.DecodeError(f"{location}: cannot open the live source with PyAV: {error}") from error
    frames: "queue.Queue" = queue.Queue(LIVE_QUEUE_FRAMES)
    stop = threading.Event()
    done = object()

    def read():
        try:
            start = None
            displayer = display_lib.Displayer()
            stream = container.streams.video[0]
            for index, frame in enumerate(container.decode(stream)):
                if stop.is_set() or (max_frames is not None and index >= max_frames):
                    break
                time = frame.pts * frame.time_base if frame.pts is not None else fractions.Fraction(index, 30)
                start = time if start is None else start
                image, display = displayer.pyav(frame, stream)  # As displayed (rotation, aspect).
                item = decode.Frame(image, index, float(time - start), float(time - start), display)
                while True:
                    try:
                        frames.put_nowait(item)
                        break
                    except queue.Full:  # Behind: drop the oldest frame, keep latency bounded.
                        try:
                            frames.get_nowait()
                        except queue.Empty:
                            pass
        except Exception as error:  # Reported to the consumer, not lost in the thread.
            frames.put(error)
        finally:
            container.close()
            frames.put(done)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        while True:
            item = frames.get()
            if item is done:
                return
            if isinstance(item, Exception):
                raise decode.DecodeError(f"{location}: {item}") from item
            yield item
    finally:
        stop.set()


def frames(source: Source, fps: float = 30.0, max_frames: Optional[int] = None) -> Iterator[decode.Frame]:
    """Frames of a source, streaming: files resampled to `fps` (`data_pipeline.media.decode`), live ones as they come."""
    if source.live:
        yield from _live_frames(source.location, max_frames)
        return
    for k, frame in enumerate(decode.decode(source.location, fps)):
        if max_frames is not None and k >= max_frames:
            return
        yield frame

"""Audio features for the audio-visual models: decode, spectrogram, alignment to the kept video frames.

[FBN] Sec. IV: "the audio (mono) signal was sampled at 44,100Hz. Then
spectrograms were extracted; spectrogram frames were computed over a 33ms
window with 11ms overlap. The resulting intensity values were normalized in
[-1, 1] to be consistent with the visual modality." Everything else below is
our choice, each one an argument of `SpectrogramConfig` (or of `decode_audio`):

- Mono: the mean of the channels after FFmpeg's resampler converts the rate
  (`decode_audio`).
- Window and hop. 33 ms at 44.1 kHz is 1455 samples; "11 ms overlap" is read
  literally, consecutive windows share 11 ms (485 samples), so the hop is
  22 ms = 970 samples. (The other reading, an 11 ms hop, is
  `overlap_ms=22`.) Hann window (periodic), FFT length the next power of two
  (2048: 1025 bins of 21.5 Hz). The signal end is zero-padded so every sample
  is in some window.
- Intensity. Magnitude scaled by 2 / sum(window), so a full-scale sine reads
  0 dB (dB re full scale), then 20 log10(max(x, 1e-5)).
- Frequency bins. `scale="mel"` (default): `bins` triangular mel filters
  (tf.signal.linear_to_mel_weight_matrix) over [lower_hz, upper_hz] =
  [125, 7500] Hz, the band of the widely used VGGish audio front end;
  `scale="linear"`: the mean of the FFT bins inside `bins` equal-width bands of
  [lower_hz, upper_hz]. Applied to the magnitude, before the log.
- Normalisation to [-1, 1]. `normalization="fixed"` (default): the dB range
  `db_range` = (-80, 0) dBFS maps linearly onto [-1, 1], values outside are
  clipped, so values mean the same loudness in every video.
  `normalization="per_video"`: each video's own min/max dB map onto [-1, 1].
- Alignment to video frames. Each kept video frame (time t, in the seconds of
  `decode.Frame.time`) gets a patch of `context` consecutive STFT frames whose
  centres are symmetric about t (to within half a hop): rows = context (time,
  oldest first), cols = bins (low to high frequency), flattened row-major to
  F = context * bins floats. STFT frames outside the audio read `pad_value`
  = -1 (silence under the fixed range). Default shape (16, 64): 16 hops of
  22 ms span 0.36 s of sound around each frame.

Times: sample 0 of `Audio.samples` plays at `Audio.start` seconds after the
first decoded video frame, the origin of `decode.Frame.time`, so audio and
frames share one clock even when the streams start at different times.
"""

from __future__ import annotations  # `-> tf.Tensor` must not import TensorFlow.

import dataclasses
import math
import os
from typing import Optional, Tuple

import numpy as np

from data_pipeline.base import checks
from data_pipeline.media import decode
from data_pipeline.base.lazy_tensorflow import tf  # Not imported by `--help` of the CLIs.

SAMPLE_RATE = 44100  # [FBN] Sec. IV.
SCALES = ("mel", "linear")
NORMALIZATIONS = ("fixed", "per_video")
MISSING = ("raise", "none")
_AMIN = 1e-5  # -100 dBFS floor of the log.
_CHUNK_FRAMES = 4096  # STFT frames per eager call in `spectrogram_frames` (bounds memory on long videos).


class NoAudioError(decode.DecodeError):
    """The input has no audio track (or is a still image); the message names the file."""


@dataclasses.dataclass(frozen=True)
class SpectrogramConfig:
    """How a signal becomes per-frame spectrogram patches (see the module docstring for each choice)."""

    sample_rate: int = SAMPLE_RATE
    window_ms: float = 33.0
    overlap_ms: float = 11.0
    fft_length: Optional[int] = None
    scale: str = "mel"
    bins: int = 64
    lower_hz: float = 125.0
    upper_hz: float = 7500.0
    context: int = 16
    normalization: str = "fixed"
    db_range: Tuple[float, float] = (-80.0, 0.0)
    pad_value: float = -1.0

    def __post_init__(self):
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate!r}")
        if not 0 <= self.overlap_ms < self.window_ms:
            raise ValueError(f"need 0 <= overlap_ms < window_ms, got overlap_ms={self.overlap_ms!r}, "
                             f"window_ms={self.window_ms!r}")
        if self.frame_length < 2 or self.hop_length < 1:
            raise ValueError(f"window_ms={self.window_ms!r} and overlap_ms={self.overlap_ms!r} give frame length "
                             f"{self.frame_length} and hop {self.hop_length} samples")
        if self.fft_length is not None and self.fft_length < self.frame_length:
            raise ValueError(f"fft_length must be >= the frame length {self.frame_length}, got {self.fft_length!r}")
        checks.check_choice(self.scale, "scale", SCALES)
        checks.check_choice(self.normalization, "normalization", NORMALIZATIONS)
        if int(self.bins) != self.bins or self.bins < 1 or int(self.context) != self.context or self.context < 1:
            raise ValueError(f"bins and context must be positive integers, got bins={self.bins!r}, "
                             f"context={self.context!r}")
        if not 0 <= self.lower_hz < self.upper_hz <= self.sample_rate / 2:
            raise ValueError(f"need 0 <= lower_hz < upper_hz <= sample_rate / 2, got lower_hz={self.lower_hz!r}, "
                             f"upper_hz={self.upper_hz!r}")
        if len(self.db_range) != 2 or not self.db_range[0] < self.db_range[1]:
            raise ValueError(f"db_range must be (low, high) with low < high, got {self.db_range!r}")
        if self.scale == "linear" and self.bins > self.fft_bins:
            raise ValueError(f"bins={self.bins} exceeds the {self.fft_bins} FFT bins")

    @property
    def frame_length(self) -> int:
        return int(round(self.sample_rate * self.window_ms / 1000))

    @property
    def hop_length(self) -> int:
        return self.frame_length - int(round(self.sample_rate * self.overlap_ms / 1000))

    @property
    def fft_size(self) -> int:
        return self.fft_length or 1 << (self.frame_length - 1).bit_length()

    @property
    def fft_bins(self) -> int:
        return self.fft_size // 2 + 1

    @property
    def shape(self) -> Tuple[int, int]:
        """(rows, cols) = (context, bins) of one frame's patch: the models' `spectrogram_shape`."""
        return (int(self.context), int(self.bins))

    @property
    def dim(self) -> int:
        """F = rows * cols, the schema's `spectrogram_dim`."""
        return int(self.context * self.bins)


@dataclasses.dataclass(frozen=True)
class Audio:
    """A mono signal: `samples` float32 (S,) in [-1, 1] at `sample_rate`; sample 0 plays `start`
    seconds after the first decoded video frame (the origin of `decode.Frame.time`)."""

    samples: np.ndarray
    sample_rate: int = SAMPLE_RATE
    start: float = 0.0
    source_path: str = ""

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate


def _first_video_time(container) -> Optional[float]:
    """Timestamp of the first decoded video frame (the origin `decode` uses), None without video."""
    import av

    if not container.streams.video:
        return None
    stream = container.streams.video[0]
    try:
        for frame in container.decode(stream):
            if frame.pts is not None and frame.time_base is not None:
                return float(frame.pts * frame.time_base)
            return 0.0
    except av.error.FFmpegError:
        return None
    return None


def decode_audio(path: str, sample_rate: int = SAMPLE_RATE, missing: str = "raise") -> Optional[Audio]:
    """The first audio track of `path`, downmixed to mono float32 and resampled to `sample_rate`.

    FFmpeg's resampler (`av.AudioResampler`) converts the rate; mono is the
    mean of the channels (so a mono recording stored as two identical
    channels keeps its level; FFmpeg's own stereo->mono matrix adds 3 dB).
    `missing`: "raise" (default) raises `NoAudioError` naming the
    file when it has no audio track (a still image never has one); "none"
    returns None instead. Other failures raise `decode.DecodeError` naming the file.
    """
    import av

    checks.check_choice(missing, "missing", MISSING)

    def no_audio(reason):
        if missing == "none":
            return None
        raise NoAudioError(f"{path}: {reason}")

    if not os.path.isfile(path):
        raise decode.DecodeError(f"{path}: no such file")
    if decode.is_image(path):
        return no_audio("a still image has no audio track")
    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError) as error:
        raise decode.DecodeError(f"{path}: cannot open with PyAV: {error}") from error
    with container:
        if not container.streams.audio:
            return no_audio("no audio stream")
        origin = _first_video_time(container) or 0.0
    # Reopen: decoding the first video frame moved the demuxer past audio packets.
    with av.open(path) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", rate=sample_rate)  # Planar: (channels, samples).
        chunks = []
        first_time = None
        try:
            for frame in container.decode(stream):
                if first_time is None and frame.pts is not None and frame.time_base is not None:
                    first_time = float(frame.pts * frame.time_base)
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().mean(0))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().mean(0))
        except av.error.FFmpegError as error:
            raise decode.DecodeError(f"{path}: audio decoding failed: {error}") from error
    if not chunks:
        return no_audio("the audio stream holds no samples")
    samples = np.concatenate(chunks).astype(np.float32, copy=False)
    start = (first_time if first_time is not None else origin) - origin
    return Audio(samples, int(sample_rate), float(start), path)


def weight_matrix(config: SpectrogramConfig = SpectrogramConfig()) -> tf.Tensor:
    """(fft_bins, bins) float32: FFT magnitudes -> mel filters or linear band means."""
    if config.scale == "mel":
        return tf.signal.linear_to_mel_weight_matrix(
            config.bins, config.fft_bins, config.sample_rate, config.lower_hz, config.upper_hz)
    frequencies = np.arange(config.fft_bins) * config.sample_rate / config.fft_size
    edges = np.linspace(config.lower_hz, config.upper_hz, config.bins + 1)
    band = np.searchsorted(edges, frequencies, side="right") - 1
    band[frequencies == config.upper_hz] = config.bins - 1
    weights = np.zeros((config.fft_bins, config.bins), np.float32)
    inside = (band >= 0) & (band < config.bins)
    weights[np.flatnonzero(inside), band[inside]] = 1.0
    empty = np.flatnonzero(weights.sum(0) == 0)
    if empty.size:
        raise ValueError(f"linear bands {empty.tolist()} hold no FFT bin: use fewer bins or a wider "
                         f"[{config.lower_hz}, {config.upper_hz}] Hz range")
    return tf.constant(weights / weights.sum(0, keepdims=True))


def num_stft_frames(num_samples: int, config: SpectrogramConfig = SpectrogramConfig()) -> int:
    """STFT frames covering every sample (the end zero-padded), at least one."""
    return max(1, -(-(num_samples - config.frame_length) // config.hop_length) + 1)


def spectrogram_db(signal, config: SpectrogramConfig = SpectrogramConfig(), pad_end: bool = True) -> tf.Tensor:
    """(S,) float signal -> (N, bins) float32 dB re full scale. TF op: eager, tf.function, tf.data.map.

    pad_end: zero-pad the end to `num_stft_frames` windows; False keeps only
    whole windows (the caller's chunks are already padded).
    """
    signal = tf.convert_to_tensor(signal, tf.float32)
    length, hop = config.frame_length, config.hop_length
    if pad_end:
        size = tf.shape(signal)[0]
        frames = tf.maximum(1, (size - length + hop - 1) // hop + 1)
        signal = tf.pad(signal, [[0, (frames - 1) * hop + length - size]])
    window = tf.signal.hann_window(length, periodic=True)
    stft = tf.signal.stft(signal, length, hop, config.fft_size,
                          window_fn=lambda n, dtype: tf.signal.hann_window(n, periodic=True, dtype=dtype))
    magnitude = tf.abs(stft) * (2.0 / tf.reduce_sum(window))
    banded = tf.matmul(magnitude, weight_matrix(config))
    return 20.0 * tf.math.log(tf.maximum(banded, _AMIN)) / math.log(10.0)


def normalize(db, config: SpectrogramConfig = SpectrogramConfig()) -> tf.Tensor:
    """dB values -> [-1, 1]: the fixed `db_range` (clipped) or the input's own min/max ("per_video")."""
    db = tf.convert_to_tensor(db, tf.float32)
    if config.normalization == "fixed":
        low, high = config.db_range
    else:
        low, high = tf.reduce_min(db), tf.reduce_max(db)
        high = tf.maximum(high, low + 1e-6)  # A constant signal maps to -1.
    return tf.clip_by_value(2.0 * (db - low) / (high - low) - 1.0, -1.0, 1.0)


def spectrogram(signal, config: SpectrogramConfig = SpectrogramConfig()) -> tf.Tensor:
    """(S,) signal -> (N, bins) normalised spectrogram in [-1, 1]. TF op."""
    return normalize(spectrogram_db(signal, config), config)


def stft_frame_times(num_frames, start=0.0, config: SpectrogramConfig = SpectrogramConfig()) -> tf.Tensor:
    """(N,) float64 centre time of each STFT frame, in seconds on the video clock."""
    j = tf.range(num_frames, dtype=tf.float64)
    return start + (j * config.hop_length + (config.frame_length - 1) / 2) / config.sample_rate


def patch_indices(frame_times, start=0.0, config: SpectrogramConfig = SpectrogramConfig()) -> tf.Tensor:
    """(T,) frame times (s) -> (T, context) int32 STFT frame indices centred on each time (may be out of range)."""
    times = tf.convert_to_tensor(frame_times, tf.float64)
    centre = ((times - start) * config.sample_rate - (config.frame_length - 1) / 2) / config.hop_length
    first = tf.cast(tf.floor(centre - (config.context - 1) / 2 + 0.5), tf.int32)
    return first[:, None] + tf.range(config.context, dtype=tf.int32)[None, :]


def frame_patches(spec, frame_times, start=0.0, config: SpectrogramConfig = SpectrogramConfig()) -> tf.Tensor:
    """(N, bins) normalised spectrogram + (T,) frame times -> (T, context * bins) float32, row-major
    (context, bins) patches; rows outside the spectrogram read `config.pad_value`. TF op."""
    spec = tf.convert_to_tensor(spec, tf.float32)
    index = patch_indices(frame_times, start, config)
    count = tf.shape(spec)[0]
    padded = tf.concat([spec, tf.fill([1, config.bins], tf.cast(config.pad_value, tf.float32))], 0)
    index = tf.where((index >= 0) & (index < count), index, count)
    patches = tf.gather(padded, index)
    return tf.reshape(patches, [-1, config.dim])


def spectrogram_frames(samples: np.ndarray, config: SpectrogramConfig = SpectrogramConfig()) -> np.ndarray:
    """Numpy convenience for whole videos: (S,) -> (N, bins) normalised, computed in chunks of STFT frames.

    Chunks give the same frames as one `spectrogram` call (up to float
    rounding) while bounding the complex STFT's memory on long videos.
    """
    samples = np.asarray(samples, np.float32).reshape(-1)
    frames = num_stft_frames(len(samples), config)
    hop, length = config.hop_length, config.frame_length
    padded = np.zeros((frames - 1) * hop + length, np.float32)
    padded[:len(samples)] = samples
    parts = []
    for a in range(0, frames, _CHUNK_FRAMES):
        b = min(a + _CHUNK_FRAMES, frames)
        parts.append(spectrogram_db(padded[a * hop:(b - 1) * hop + length], config, pad_end=False).numpy())
    return normalize(np.concatenate(parts), config).numpy()


def video_spectrogram(audio: Optional[Audio], frame_times, config: SpectrogramConfig = SpectrogramConfig(),
                      spec: Optional[np.ndarray] = None) -> np.ndarray:
    """(T,) kept-frame times -> (T, context * bins) float32 patches of `audio` (the `audio/spectrogram` rows).

    `spec`: the audio's `spectrogram_frames`, when already computed (several
    records of one video). `audio` None (no track) gives all `pad_value`.
    """
    frame_times = np.asarray(frame_times, np.float64).reshape(-1)
    if audio is None:
        return np.full((len(frame_times), config.dim), config.pad_value, np.float32)
    if audio.sample_rate != config.sample_rate:
        raise ValueError(f"{audio.source_path or 'audio'}: sample rate {audio.sample_rate} differs from the "
                         f"config's {config.sample_rate}")
    if spec is None:
        spec = spectrogram_frames(audio.samples, config)
    return frame_patches(spec, frame_times, audio.start, config).numpy()


def write_video_with_audio(path: str, frames, samples: np.ndarray, fps: float = 30.0,
                           sample_rate: int = SAMPLE_RATE, codec: str = "libx264", audio_codec: str = "aac",
                           audio_start: float = 0.0) -> None:
    """uint8 RGB frames + a mono float signal in [-1, 1] -> a video file with an audio track (tests, benches).

    Video frame k has pts k / fps; audio sample n plays at `audio_start` + n / sample_rate.
    Packets are muxed interleaved, one video frame's worth of audio at a time.
    """
    import av

    frames = list(frames)
    if not frames:
        raise ValueError(f"{path}: no frames to write")
    samples = np.asarray(samples, np.float32).reshape(-1)
    height, width = frames[0].shape[:2]
    rate = decode._as_fraction(fps)
    offset = int(round(audio_start * sample_rate))
    with av.open(path, mode="w") as container:
        video = container.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            video.options = {"crf": "18", "preset": "veryfast"}
        sound = container.add_stream(audio_codec, rate=sample_rate)
        sound.layout = "mono"
        done = 0

        def encode_audio(until):
            nonlocal done
            until = min(until, len(samples))
            if until <= done:
                return
            frame = av.AudioFrame.from_ndarray(samples[None, done:until].copy(), format="flt", layout="mono")
            frame.sample_rate, frame.pts = sample_rate, offset + done
            for packet in sound.encode(frame):
                container.mux(packet)
            done = until

        for k, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = k
            for packet in video.encode(frame):
                container.mux(packet)
            encode_audio(int(round((k + 1) / float(rate) * sample_rate)) - offset)
        encode_audio(len(samples))
        for packet in video.encode():
            container.mux(packet)
        for packet in sound.encode(None):
            container.mux(packet)

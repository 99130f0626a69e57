"""Audio decoding, the [FBN] spectrogram and its alignment to video frames."""

import math

import numpy as np
import pytest
import tensorflow as tf

from data_pipeline.media import audio, decode
from data_pipeline.records import schema

SR = 44100
FPS = 30
CHANGE_FRAME = 27  # The tone jumps from F1 to F2 at 0.9 s.
F1, F2 = 500.0, 2000.0


def _tone_change(seconds=2.0, amplitude=0.5):
    t = np.arange(int(seconds * SR)) / SR
    frequency = np.where(t < CHANGE_FRAME / FPS, F1, F2)
    phase = 2 * np.pi * np.cumsum(frequency) / SR
    return (amplitude * np.sin(phase)).astype(np.float32)


def _gray_frames(count, shape=(48, 64)):
    return [np.full(shape + (3,), 10 + 4 * k, np.uint8) for k in range(count)]


@pytest.fixture(scope="module")
def tone_video(tmp_path_factory):
    """2 s at 30 fps with an AAC mono 44.1 kHz track: F1 before frame 27, F2 from it on."""
    path = str(tmp_path_factory.mktemp("av") / "tone.mp4")
    audio.write_video_with_audio(path, _gray_frames(2 * FPS), _tone_change(), fps=FPS)
    return path


def _mel(f):
    return 1127.0 * np.log1p(np.asarray(f) / 700.0)


def _band_of(frequency, config):
    """Independent of the implementation: the filter/band whose support holds `frequency`."""
    if config.scale == "linear":
        width = (config.upper_hz - config.lower_hz) / config.bins
        return {int((frequency - config.lower_hz) // width)}
    edges = np.linspace(_mel(config.lower_hz), _mel(config.upper_hz), config.bins + 2)
    m = _mel(frequency)
    return {k for k in range(config.bins) if edges[k] < m < edges[k + 2]}


def test_config_reads_the_paper_and_rejects_bad_values():
    config = audio.SpectrogramConfig()
    assert (config.frame_length, config.hop_length, config.fft_size) == (1455, 970, 2048)  # 33 ms, 22 ms hop.
    assert config.shape == (16, 64) and config.dim == 1024
    assert audio.SpectrogramConfig(overlap_ms=22).hop_length == 485  # The "11 ms hop" reading.
    with pytest.raises(ValueError, match="'bark'"):
        audio.SpectrogramConfig(scale="bark")
    with pytest.raises(ValueError, match="'minmax'"):
        audio.SpectrogramConfig(normalization="minmax")
    with pytest.raises(ValueError, match="40"):
        audio.SpectrogramConfig(overlap_ms=40)
    with pytest.raises(ValueError, match="30000"):
        audio.SpectrogramConfig(upper_hz=30000)


def test_decode_audio_rate_length_and_clock(tone_video, tmp_path):
    track = audio.decode_audio(tone_video)
    assert track.sample_rate == SR and track.samples.dtype == np.float32 and track.samples.ndim == 1
    # AAC pads its last 1024-sample packet; the priming delay is removed by the demuxer.
    assert 2 * SR <= len(track.samples) <= 2 * SR + 1024
    assert abs(track.start) < 1e-3
    np.testing.assert_allclose(np.sqrt(np.mean(track.samples[: SR] ** 2)), 0.5 / np.sqrt(2), rtol=0.05)

    # A 48 kHz stereo track starting 0.5 s after the first frame: downmixed, resampled, offset kept.
    import av

    path = str(tmp_path / "stereo.mkv")
    rate = 48000
    t = np.arange(rate) / rate
    left = 0.4 * np.sin(2 * np.pi * 1000 * t)
    with av.open(path, "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = container.add_stream("pcm_s16le", rate=rate)
        sound.layout = "stereo"
        for k, image in enumerate(_gray_frames(45)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = k
            for packet in video.encode(frame):
                container.mux(packet)
        pcm = (np.stack([left, left]).T.reshape(1, -1) * 32767).astype(np.int16)  # Packed s16, L R L R ...
        chunk = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
        chunk.sample_rate, chunk.pts = rate, rate // 2
        for packet in list(sound.encode(chunk)) + list(sound.encode(None)):
            container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
    track = audio.decode_audio(path)
    assert track.sample_rate == SR and abs(len(track.samples) - SR) <= 64
    assert track.start == pytest.approx(0.5, abs=1e-3)
    spectrum = np.abs(np.fft.rfft(track.samples[1000:1000 + SR // 2]))
    assert np.argmax(spectrum) * SR / (SR // 2) == pytest.approx(1000, abs=3)
    np.testing.assert_allclose(np.abs(track.samples[2000:-2000]).max(), 0.4, rtol=0.02)


@pytest.mark.parametrize("scale", ["mel", "linear"])
def test_spectrogram_follows_the_tone_change_per_video_frame(tone_video, scale):
    config = audio.SpectrogramConfig(scale=scale)
    frames = list(decode.decode(tone_video, fps=FPS))
    times = np.array([f.time for f in frames])
    patches = audio.video_spectrogram(audio.decode_audio(tone_video), times, config)
    assert patches.shape == (len(frames), 16 * 64) and patches.dtype == np.float32
    assert patches.min() >= -1 and patches.max() <= 1 and patches.max() > 0.5
    centre = patches.reshape(len(frames), 16, 64)[:, 7:9].mean(1)  # The two STFT frames nearest the frame time.
    peak = centre.argmax(1)
    band1, band2 = _band_of(F1, config), _band_of(F2, config)
    assert band1 and band2 and not band1 & band2
    for k, bin_ in enumerate(peak):
        if k < CHANGE_FRAME - 1:
            assert bin_ in band1, (k, bin_, band1)
        elif k > CHANGE_FRAME:
            assert bin_ in band2, (k, bin_, band2)
    # The first frames' patches reach before the audio: padded with the silence value.
    first = patches[0].reshape(16, 64)
    assert (first[:7] == -1).all() and (first[8:] > -1).any()


def test_patch_is_centred_on_the_frame_time():
    config = audio.SpectrogramConfig()
    start = 0.25  # The track starts 0.25 s after the first video frame.
    burst_time = 1.0  # Video clock; frame 30.
    samples = np.zeros(int(1.5 * SR), np.float32)
    at = int(round((burst_time - start) * SR))
    samples[at - 88:at + 88] = 0.8 * np.sin(2 * np.pi * 1000 * np.arange(176) / SR)  # 4 ms burst.
    track = audio.Audio(samples, SR, start)
    times = np.arange(26, 35) / FPS  # Patches span +-0.18 s: these frames all see the burst.
    patches = audio.video_spectrogram(track, times, config).reshape(len(times), 16, 64)
    hop = config.hop_length / SR
    for t, patch in zip(times, patches):
        row = patch.mean(1).argmax()
        expected = (config.context - 1) / 2 + (burst_time - t) / hop
        assert abs(row - expected) <= 1.0, (t, row, expected)
    assert patches[4].mean(1).argmax() in (7, 8)  # The burst's own frame: the two middle rows.
    # The patch's STFT-frame centres average to the frame time, within half a hop.
    query = np.random.default_rng(0).uniform(0.5, 1.4, 50)  # Patches inside the track.
    index = audio.patch_indices(query, start, config).numpy()
    centres = audio.stft_frame_times(1000, start, config).numpy()[index].mean(1)
    assert np.abs(centres - query).max() <= hop / 2 + 1e-9
    # Frames entirely before the track read the pad value.
    assert (audio.video_spectrogram(track, [0.0], config) == -1).all()


def test_log_scale_and_normalisations():
    config = audio.SpectrogramConfig(scale="linear", bins=32)
    t = np.arange(SR // 2) / SR
    loud, quiet = (a * np.sin(2 * np.pi * 1000 * t) for a in (0.5, 0.05))
    db_loud, db_quiet = (audio.spectrogram_db(x, config).numpy()[5:-5].max(1).mean() for x in (loud, quiet))
    assert db_loud - db_quiet == pytest.approx(20.0, abs=0.1)  # 20 log10 of the magnitude.
    fixed = audio.normalize([-100.0, -80.0, -40.0, 0.0, 6.0], config).numpy()
    np.testing.assert_allclose(fixed, [-1, -1, 0, 1, 1], atol=1e-6)
    per_video = audio.SpectrogramConfig(normalization="per_video")
    np.testing.assert_allclose(audio.normalize([-70.0, -50.0, -30.0], per_video).numpy(), [-1, 0, 1], atol=1e-6)
    # Per-video normalisation spans [-1, 1] whatever the loudness; the fixed range keeps loudness.
    spec_q = audio.spectrogram(quiet, per_video).numpy()
    assert spec_q.min() == -1 and spec_q.max() == pytest.approx(1)
    assert audio.spectrogram(quiet, audio.SpectrogramConfig()).numpy().max() < 0.6


def test_stft_ops_eagerly_in_tf_function_and_in_tf_data(monkeypatch):
    config = audio.SpectrogramConfig()
    signal = _tone_change(seconds=1.0)
    eager = audio.spectrogram(signal, config).numpy()
    assert eager.shape == (audio.num_stft_frames(len(signal), config), 64)
    traced = tf.function(lambda s: audio.spectrogram(s, config),
                         input_signature=[tf.TensorSpec([None], tf.float32)])
    np.testing.assert_allclose(traced(signal).numpy(), eager, atol=1e-4)
    times = np.arange(30) / FPS

    def features(s):
        return audio.frame_patches(audio.spectrogram(s, config), tf.constant(times), 0.0, config)

    mapped = next(iter(tf.data.Dataset.from_tensors(signal).map(features))).numpy()
    np.testing.assert_allclose(mapped, audio.frame_patches(eager, times, 0.0, config).numpy(), atol=1e-4)
    # The chunked whole-video path gives the same frames as one call.
    monkeypatch.setattr(audio, "_CHUNK_FRAMES", 7)
    np.testing.assert_allclose(audio.spectrogram_frames(signal, config), eager, atol=1e-4)
    # Shorter than one window: one zero-padded frame.
    assert audio.spectrogram(np.ones(100, np.float32), config).shape == (1, 64)


def test_missing_audio_is_a_clear_error_naming_the_file(tmp_path):
    silent = str(tmp_path / "silent.mp4")
    decode.write_video(silent, _gray_frames(5), fps=FPS)
    with pytest.raises(audio.NoAudioError, match="silent.mp4: no audio stream"):
        audio.decode_audio(silent)
    assert audio.decode_audio(silent, missing="none") is None
    image = tmp_path / "face.png"
    tf.io.write_file(str(image), tf.io.encode_png(np.zeros((8, 8, 3), np.uint8)))
    with pytest.raises(audio.NoAudioError, match="face.png"):
        audio.decode_audio(str(image))
    with pytest.raises(decode.DecodeError, match="nothing.mp4"):
        audio.decode_audio(str(tmp_path / "nothing.mp4"))
    assert issubclass(audio.NoAudioError, decode.DecodeError)
    assert (audio.video_spectrogram(None, [0.0, 0.1]) == -1).all()


def test_schema_records_the_spectrogram_shape():
    def record(**kwargs):
        return schema.VideoRecord(video_id="v", landmarks=np.zeros((3, 136)), frame_index=np.arange(3),
                                  timestamp=np.arange(3) / 30, images=np.zeros((3, 8, 8, 3), np.uint8), **kwargs)

    spec = np.random.default_rng(0).uniform(-1, 1, (3, 12)).astype(np.float32)
    context, sequence = schema.parse_video(
        schema.encode_video(record(spectrogram=spec, spectrogram_shape=(3, 4))), spectrogram_dim=12)
    assert context[schema.SPECTROGRAM_SHAPE].numpy().tolist() == [3, 4]
    np.testing.assert_array_equal(sequence[schema.SPECTROGRAM].numpy(), spec)
    plain = schema.encode_video(record())
    assert schema.SPECTROGRAM_SHAPE.encode() not in plain  # Records without audio are unchanged.
    assert schema.parse_video(plain)[0][schema.SPECTROGRAM_SHAPE].numpy().tolist() == [0, 0]
    with pytest.raises(ValueError, match="'v'.*F=12"):
        schema.encode_video(record(spectrogram=spec, spectrogram_shape=(4, 4)))
    with pytest.raises(ValueError, match="'v'"):
        schema.encode_video(record(spectrogram_shape=(4, 4)))
    assert math.prod(audio.SpectrogramConfig().shape) == audio.SpectrogramConfig().dim

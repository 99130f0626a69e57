"""The embedded synthetic face-sequence set: learnable, subject-independent, in the one schema.

Each subject is a procedural identity (`geometry.sample_identity`: face shape,
skin tone, hair, background, light). Each of its videos follows smooth random
valence/arousal trajectories in [-1, 1]; the face's configuration follows them
through `geometry.affect_to_aus` (valence: lip corners and brows; arousal: lids,
lips apart; arousal also scales the head-motion energy), with head pose drift,
gaze, occasional occlusions, brightness changes and sensor noise. Frames are
rendered into a full frame, aligned onto the 5-point template of
`data_pipeline.faces.align` exactly as preprocessing does (anchors from the 68 known
landmarks plus small localisation noise), and written as JPEG crops with the
landmarks in crop pixels and the frame->crop matrix.

Audio (`audio=True`, `--audio`; off by default, and then the shards are
byte-identical to a set made without the option): each video also gets a
voice-like signal (`affect_audio`) whose pitch, loudness and syllable rate
rise with arousal and whose spectral tilt brightens with valence, plus
background noise, turned into `audio/spectrogram` rows by the same
`data_pipeline.media.audio` functions preprocessing uses (shape in the manifest's
"spectrogram_shape" and each record's context). Its random draws come from a
separate seed stream, so the images and labels do not change with `audio`.

Layout: `DIR/<split>/synthetic-<k>.tfrecord` (whole videos per shard) and
`DIR/manifest.json` (config, seed, subjects, videos and frames per split).
Deterministic given the seed: every video is drawn from its own
`SeedSequence([seed, subject, video])`, so shards are independent and a rerun
skips shards already complete (written to a temporary name, then renamed).

CLI: `python -m data_pipeline.synthetic --output DIR [--subjects 24 ...]`.
`render_video_file` writes a full-frame video (PyAV) with one or two faces and
returns the per-frame ground truth, for preprocessing and prediction tests.
"""

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np
from scipy import ndimage

from data_pipeline.base import atomic, checks
from data_pipeline.faces import align
from data_pipeline.synthetic import geometry, render
from data_pipeline.records import schema
from data_pipeline.media import audio as audio_features  # `audio` is a config field.

SPLITS = ("train", "validation", "test")
AU_SETS = {"8": schema.AUS_AFFWILD2_8, "12": schema.AUS_ABAW_12, "17": schema.AUS_FBN_17}
MANIFEST = "manifest.json"


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """What the set holds. Subject counts per split are fractions of `subjects`, rounded."""

    subjects: int = 24
    videos_per_subject: int = 2
    frames_per_video: int = 300
    crop_size: int = 96
    frame_size: int = 224
    fps: float = 30.0
    au_set: str = "8"
    split_fractions: Sequence[float] = (2 / 3, 1 / 6, 1 / 6)
    videos_per_shard: int = 8
    jpeg_quality: int = 90
    audio: bool = False
    audio_context: int = 16
    audio_bins: int = 64

    def __post_init__(self):
        checks.check_choice(self.au_set, "au_set", sorted(AU_SETS))
        if self.subjects < 3:
            raise ValueError(f"need >= 3 subjects for 3 subject-independent splits, got {self.subjects}")
        if self.frames_per_video < 1 or self.videos_per_subject < 1 or self.videos_per_shard < 1:
            raise ValueError(f"frames_per_video, videos_per_subject, videos_per_shard must be >= 1, got "
                             f"{self.frames_per_video}, {self.videos_per_subject}, {self.videos_per_shard}")
        if len(self.split_fractions) != 3 or min(self.split_fractions) <= 0:
            raise ValueError(f"split_fractions must be 3 positive numbers, got {self.split_fractions!r}")
        if self.crop_size < 16:
            raise ValueError(f"crop_size must be >= 16, got {self.crop_size}")
        self.spectrogram_config()  # Validates audio_context and audio_bins.

    @property
    def au_names(self):
        return AU_SETS[self.au_set]

    def spectrogram_config(self) -> audio_features.SpectrogramConfig:
        return audio_features.SpectrogramConfig(context=self.audio_context, bins=self.audio_bins)

    def as_dict(self) -> dict:
        """JSON form for the manifest; the audio fields only when audio is on, so sets written
        before the option existed still resume."""
        values = dataclasses.asdict(self)
        values["split_fractions"] = list(self.split_fractions)
        if not self.audio:
            for key in ("audio", "audio_context", "audio_bins"):
                values.pop(key)
        return values


def smooth_noise(rng: np.random.Generator, n: int, sigma: float, dims: int = 1) -> np.ndarray:
    """(n, dims) Gaussian-filtered white noise with unit standard deviation per column.

    Normalised by the filter's theoretical gain, not the sample's std: a short
    clip of slow noise must stay nearly flat, not be blown up to unit spread.
    """
    pad = int(4 * sigma) + 1
    white = rng.normal(size=(n + 2 * pad, dims))
    smooth = ndimage.gaussian_filter1d(white, sigma, axis=0, mode="constant")[pad:pad + n]
    return smooth * np.sqrt(2 * np.sqrt(np.pi) * max(sigma, 0.3))


def affect_trajectory(rng: np.random.Generator, n: int, fps: float = 30.0) -> np.ndarray:
    """(n, 2) valence, arousal: a per-video mood plus slow fluctuations (seconds), in [-1, 1]."""
    mood = rng.normal(0, 0.4, 2)
    slow = smooth_noise(rng, n, 1.2 * fps, 2)
    fast = smooth_noise(rng, n, 0.3 * fps, 2)
    return np.tanh(mood + 0.65 * slow + 0.15 * fast) * 0.98


def split_subjects(config: SyntheticConfig, seed: int) -> Dict[str, List[int]]:
    """Subject-independent split of subject indices, fixed by the seed."""
    order = np.random.default_rng(np.random.SeedSequence([seed, 7919])).permutation(config.subjects)
    fractions = np.asarray(config.split_fractions, np.float64) / sum(config.split_fractions)
    counts = np.maximum(1, np.round(fractions * config.subjects).astype(int))
    counts[0] = config.subjects - counts[1:].sum()
    bounds = np.cumsum(counts)[:-1]
    return {split: sorted(int(s) for s in part) for split, part in zip(SPLITS, np.split(order, bounds))}


def identity_for(seed: int, subject: int) -> geometry.Identity:
    return geometry.sample_identity(np.random.default_rng(np.random.SeedSequence([seed, subject])))


@dataclasses.dataclass
class FaceTrack:
    """Per-frame drawing parameters of one face in one video."""

    affect: np.ndarray       # (T, 2) valence, arousal
    aus: np.ndarray          # (T, 17) intensities, geometry.AU_NAMES order
    expression: np.ndarray   # (T,)
    poses: List[geometry.Pose]
    gaze: np.ndarray         # (T, 2)
    occluded: np.ndarray     # (T,) bool
    occlusion: Optional[render.Occlusion]
    brightness: np.ndarray   # (T,)


def face_track(rng: np.random.Generator, n: int, centre, scale: float, fps: float = 30.0) -> FaceTrack:
    """Affect, pose and nuisance trajectories of one face; arousal scales head-motion energy."""
    affect = affect_trajectory(rng, n, fps)
    aus, expression = geometry.affect_to_aus(affect[:, 0], affect[:, 1])
    energy = 0.4 + 1.6 * (affect[:, 1] + 1) / 2
    drift = smooth_noise(rng, n, 1.5 * fps, 3) * [7.0, 4.0, 5.0] + rng.normal(0, [6.0, 3.0, 4.0])
    shake = smooth_noise(rng, n, 0.1 * fps, 3) * [2.0, 1.5, 1.0] * energy[:, None]
    angles = drift + shake
    move = smooth_noise(rng, n, 1.0 * fps, 2) * 0.06 * scale + (smooth_noise(rng, n, 0.1 * fps, 2)
                                                                   * 0.015 * scale * energy[:, None])
    zoom = 1 + 0.05 * smooth_noise(rng, n, 2.0 * fps, 1)[:, 0]
    poses = [geometry.Pose(yaw=a[0], pitch=a[1], roll=a[2], x=centre[0] + m[0], y=centre[1] + m[1], scale=scale * z)
             for a, m, z in zip(angles, move, zoom)]
    occluded = np.zeros(n, bool)
    occlusion = None
    if rng.uniform() < 0.3 and n > 20:
        length = int(rng.integers(10, max(11, min(45, n // 3))))
        start = int(rng.integers(0, n - length))
        occluded[start:start + length] = True
        hand = rng.uniform() < 0.5
        colour = tuple(rng.uniform(120, 220, 3)) if hand else tuple(rng.uniform(20, 235, 3))
        occlusion = render.Occlusion(centre=(rng.uniform(-0.6, 0.6), rng.uniform(0.0, 1.3)),
                                     radii=(rng.uniform(0.25, 0.45), rng.uniform(0.2, 0.4)), colour=colour)
    brightness = 1 + 0.08 * smooth_noise(rng, n, 2.0 * fps, 1)[:, 0]
    return FaceTrack(affect, aus, expression, poses, smooth_noise(rng, n, 0.5 * fps, 2), occluded, occlusion,
                     brightness)


def affect_audio(valence, arousal, fps: float, rng: np.random.Generator, sample_rate: int = audio_features.SAMPLE_RATE,
                 pitch: float = 1.0) -> np.ndarray:
    """(T,) per-frame valence, arousal -> float32 mono signal of T / fps seconds, frame k at k / fps.

    A harmonic "voice": fundamental 140-420 Hz (times the speaker's `pitch`)
    and level -40 to -10 dBFS rising with arousal; syllable-rate amplitude
    modulation 3-5 Hz rising with arousal; harmonic roll-off h^-(1.4 - 0.6 v)
    (brighter with valence); small pitch jitter; white noise at -65 to -55 dBFS.
    The pitch/loudness-arousal link follows the speech-emotion literature
    (e.g. Scherer 2003); the exact curves are ours.
    """
    valence = np.asarray(valence, np.float64)
    arousal = np.asarray(arousal, np.float64)
    n = int(round(len(arousal) / fps * sample_rate))
    t = np.arange(n) / sample_rate
    frame_times = np.arange(len(arousal)) / fps
    a = (np.interp(t, frame_times, arousal) + 1) / 2  # In [0, 1].
    v = np.interp(t, frame_times, valence)
    jitter = 1 + 0.02 * np.interp(t, frame_times, smooth_noise(rng, len(arousal), 0.2 * fps)[:, 0])
    f0 = pitch * 140.0 * 3.0 ** a * jitter
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate + rng.uniform(0, 2 * np.pi)
    tilt = 1.4 - 0.6 * v
    voice = np.zeros(n)
    norm = np.zeros(n)
    for h in range(1, 11):
        weight = np.where(h * f0 < 0.45 * sample_rate, h ** -tilt, 0.0)
        voice += weight * np.sin(h * phase)
        norm += weight
    voice /= norm
    syllables = 2 * np.pi * np.cumsum(3.0 + 2.0 * a) / sample_rate + rng.uniform(0, 2 * np.pi)
    envelope = 0.6 + 0.4 * np.sin(syllables)
    level = 10 ** ((-40.0 + 30.0 * a) / 20)
    noise = 10 ** (rng.uniform(-65, -55) / 20) * rng.standard_normal(n)
    return (level * envelope * voice * np.sqrt(2) + noise).astype(np.float32)


def speaker_pitch(seed: int, subject: int) -> float:
    """A subject's voice: a fundamental-frequency multiplier in [0.8, 1.25], fixed by the seed."""
    return float(np.random.default_rng(np.random.SeedSequence([seed, subject, 3])).uniform(0.8, 1.25))


def _finish(frame: np.ndarray, brightness: float, rng: np.random.Generator) -> np.ndarray:
    """Global brightness change and sensor noise."""
    noisy = frame.astype(np.float32) * brightness + 3.0 * rng.standard_normal(frame.shape, np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def synth_video(config: SyntheticConfig, seed: int, subject: int, video: int) -> schema.VideoRecord:
    """Render one video of one subject as aligned crops in the schema."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, subject, video]))
    identity = identity_for(seed, subject)
    n, size = config.frames_per_video, config.frame_size
    scale = size * rng.uniform(0.2, 0.26)
    track = face_track(rng, n, (size / 2, size * 0.42), scale, config.fps)
    scene = render.background(size, size, identity.background_seed)
    crop_size = config.crop_size
    target = align.template(crop_size)
    encoded, landmarks, matrices = [], np.zeros((n, schema.LANDMARK_DIM), np.float32), np.zeros((n, 6), np.float32)
    for t in range(n):
        frame = scene.copy()
        points = render.draw_face(frame, identity, track.aus[t], track.poses[t], arousal=track.affect[t, 1],
                                  gaze=track.gaze[t], occlusion=track.occlusion if track.occluded[t] else None)
        # Alignment from slightly noisy anchors, as a landmark detector would give.
        noisy = align.anchors(points) + rng.normal(0, 0.012 * scale, (5, 2))
        matrix = align.estimate_transform(noisy, target, align.DEFAULT_METHOD)
        crop = _finish(align.warp(frame, matrix, crop_size), track.brightness[t], rng)
        ok, jpeg = cv2.imencode(".jpg", crop[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for subject {subject} video {video} frame {t}")
        encoded.append(jpeg.tobytes())
        landmarks[t] = align.apply_transform(matrix, points).ravel()
        matrices[t] = matrix.ravel()
    au_columns = [geometry.AU_NAMES.index(name) for name in config.au_names]
    spectrogram = spectrogram_shape = None
    if config.audio:
        sound_rng = np.random.default_rng(np.random.SeedSequence([seed, subject, video, 2]))
        spec_config = config.spectrogram_config()
        signal = affect_audio(track.affect[:, 0], track.affect[:, 1], config.fps, sound_rng,
                              spec_config.sample_rate, pitch=speaker_pitch(seed, subject))
        signal = audio_features.Audio(signal, spec_config.sample_rate)
        spectrogram = audio_features.video_spectrogram(signal, np.arange(n) / config.fps, spec_config)
        spectrogram_shape = spec_config.shape
    return schema.VideoRecord(
        video_id=f"synthetic-s{subject:03d}-v{video:02d}", subject_id=f"s{subject:03d}",
        source_path=f"synthetic://seed{seed}/s{subject:03d}/v{video:02d}", fps=config.fps,
        frame_width=size, frame_height=size, encoded_images=encoded, landmarks=landmarks, alignment=matrices,
        frame_index=np.arange(n), timestamp=np.arange(n) / config.fps,
        valence=track.affect[:, 0], arousal=track.affect[:, 1], expression=track.expression,
        au=(track.aus[:, au_columns] >= geometry.AU_THRESHOLD).astype(np.int64), au_names=config.au_names,
        spectrogram=spectrogram, spectrogram_shape=spectrogram_shape)


def plan_shards(config: SyntheticConfig, seed: int) -> Dict[str, List[List[tuple]]]:
    """split -> list of shards, each a list of (subject, video)."""
    plan = {}
    for split, subjects in split_subjects(config, seed).items():
        videos = [(s, v) for s in subjects for v in range(config.videos_per_subject)]
        k = config.videos_per_shard
        plan[split] = [videos[i:i + k] for i in range(0, len(videos), k)]
    return plan


def shard_path(output: str, split: str, index: int) -> str:
    return schema.shard_path(os.path.join(output, split, f"synthetic-{index}"))


def _write_shard(job):
    config, seed, path, videos = job
    schema.write_shard(path, (synth_video(config, seed, subject, video) for subject, video in videos))
    return path


def generate(output: str, config: SyntheticConfig = SyntheticConfig(), seed: int = 0, workers: int = 1,
             log=None) -> dict:
    """Write the set under `output` (resumable) and return the manifest."""
    manifest_path = os.path.join(output, MANIFEST)
    config_dict = config.as_dict()
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            previous = json.load(f)
        if previous.get("config") != config_dict or previous.get("seed") != seed:
            raise ValueError(f"{manifest_path} was written with another config or seed "
                             f"({previous.get('config')}, seed {previous.get('seed')}); use another --output")
    plan = plan_shards(config, seed)
    jobs = []
    for split, shards in plan.items():
        os.makedirs(os.path.join(output, split), exist_ok=True)
        for index, videos in enumerate(shards):
            path = shard_path(output, split, index)
            if not os.path.exists(path):  # Complete shards only ever exist under their final name.
                jobs.append((config, seed, path, videos))
    start = time.time()
    if workers > 1 and len(jobs) > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for path in pool.imap_unordered(_write_shard, jobs):
                if log:
                    log(f"wrote {path}")
    else:
        for job in jobs:
            path = _write_shard(job)
            if log:
                log(f"wrote {path}")
    subjects = split_subjects(config, seed)
    manifest = {
        "name": "synthetic", "seed": seed, "config": config_dict,
        "au_names": list(config.au_names), "expressions": list(schema.EXPRESSIONS), "alignment": align.DEFAULT_METHOD,
        "splits": {split: {
            "subjects": [f"s{s:03d}" for s in subjects[split]],
            "videos": sum(len(shard) for shard in plan[split]),
            "frames": sum(len(shard) for shard in plan[split]) * config.frames_per_video,
            "shards": [os.path.relpath(shard_path(output, split, i), output) for i in range(len(plan[split]))],
        } for split in SPLITS},
        "generation_seconds": round(time.time() - start, 1), "shards_written": len(jobs),
    }
    if config.audio:
        manifest["spectrogram_shape"] = list(config.spectrogram_config().shape)
    atomic.write_json(manifest_path, manifest)
    return manifest


def render_video_file(path: str, num_faces: int = 1, num_frames: int = 90, width: int = 640, height: int = 360,
                      fps: int = 30, seed: int = 0, codec: str = "h264", face_scale: Optional[float] = None,
                      occlusions: bool = False, with_audio: bool = False) -> dict:
    """Write a full-frame synthetic video with `num_faces` (1 or 2) faces; return its ground truth.

    Returns a dict of numpy arrays: "valence", "arousal" (T, F), "expression" (T, F), "aus" (T, F, 17)
    intensities in `geometry.AU_NAMES` order, "landmarks" (T, F, 68, 2) in frame pixels, and
    "fps", "width", "height". Faces are placed left to right in index order. `codec` is a
    PyAV encoder name ("h264" = libx264, "mpeg4"). `with_audio`: also an AAC mono 44.1 kHz track,
    `affect_audio` of face 0, returned as "audio" (float32 samples) and "sample_rate".
    """
    import av

    if num_faces not in (1, 2):
        raise ValueError(f"num_faces must be 1 or 2, got {num_faces!r}")
    if width % 2 or height % 2:
        raise ValueError(f"width and height must be even for yuv420p, got {width}x{height}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 104729]))
    identities = [geometry.sample_identity(rng) for _ in range(num_faces)]
    scale = face_scale or height * 0.17
    tracks = []
    for i in range(num_faces):
        centre = (width * (i + 1) / (num_faces + 1), height * 0.45)
        track = face_track(rng, num_frames, centre, scale, fps)
        if not occlusions:
            track.occlusion, track.occluded = None, np.zeros(num_frames, bool)
        tracks.append(track)
    scene = render.background(height, width, identities[0].background_seed)
    landmarks = np.zeros((num_frames, num_faces, 68, 2), np.float32)
    signal = None
    if with_audio:  # Its own seed stream: the video is the same with or without audio.
        sound_rng = np.random.default_rng(np.random.SeedSequence([seed, 104729, 2]))
        signal = affect_audio(tracks[0].affect[:, 0], tracks[0].affect[:, 1], fps, sound_rng)
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if signal is not None:
            sound = container.add_stream("aac", rate=audio_features.SAMPLE_RATE)
            sound.layout = "mono"
            per_frame = audio_features.SAMPLE_RATE / fps
        for t in range(num_frames):
            frame = scene.copy()
            for i, (identity, track) in enumerate(zip(identities, tracks)):
                landmarks[t, i] = render.draw_face(
                    frame, identity, track.aus[t], track.poses[t], arousal=track.affect[t, 1], gaze=track.gaze[t],
                    occlusion=track.occlusion if track.occluded[t] else None)
            frame = _finish(frame, tracks[0].brightness[t], rng)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
            if signal is not None:  # This frame's share of the sound, muxed interleaved.
                lo, hi = int(round(t * per_frame)), int(round((t + 1) * per_frame))
                chunk = av.AudioFrame.from_ndarray(signal[None, lo:hi].copy(), format="flt", layout="mono")
                chunk.sample_rate, chunk.pts = audio_features.SAMPLE_RATE, lo
                for packet in sound.encode(chunk):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if signal is not None:
            for packet in sound.encode(None):
                container.mux(packet)
    extra = {} if signal is None else {"audio": signal, "sample_rate": audio_features.SAMPLE_RATE}
    return {
        "valence": np.stack([tr.affect[:, 0] for tr in tracks], 1).astype(np.float32),
        "arousal": np.stack([tr.affect[:, 1] for tr in tracks], 1).astype(np.float32),
        "expression": np.stack([tr.expression for tr in tracks], 1),
        "aus": np.stack([tr.aus for tr in tracks], 1).astype(np.float32),
        "landmarks": landmarks, "fps": fps, "width": width, "height": height, **extra,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subjects", type=int, default=SyntheticConfig.subjects)
    parser.add_argument("--videos_per_subject", type=int, default=SyntheticConfig.videos_per_subject)
    parser.add_argument("--frames", type=int, default=SyntheticConfig.frames_per_video)
    parser.add_argument("--crop_size", type=int, default=SyntheticConfig.crop_size)
    parser.add_argument("--au_set", default="8", choices=sorted(AU_SETS))
    parser.add_argument("--videos_per_shard", type=int, default=SyntheticConfig.videos_per_shard)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="processes rendering shards in parallel")
    parser.add_argument("--audio", action="store_true", help="also write audio/spectrogram ([FBN] A/V models)")
    parser.add_argument("--audio_context", type=int, default=SyntheticConfig.audio_context)
    parser.add_argument("--audio_bins", type=int, default=SyntheticConfig.audio_bins)
    args = parser.parse_args(argv)
    config = SyntheticConfig(subjects=args.subjects, videos_per_subject=args.videos_per_subject,
                             frames_per_video=args.frames, crop_size=args.crop_size, au_set=args.au_set,
                             videos_per_shard=args.videos_per_shard, audio=args.audio,
                             audio_context=args.audio_context, audio_bins=args.audio_bins)
    manifest = generate(args.output, config, args.seed, args.workers, log=lambda m: print(m, file=sys.stderr))
    print(json.dumps({split: {k: v for k, v in info.items() if k != "shards"}
                      for split, info in manifest["splits"].items()}))


"""The synthetic face-sequence set: rendering, labels, layout, determinism, resumability, videos."""

import json
import os

import numpy as np
import pytest

from data_pipeline.faces import align
from data_pipeline.synthetic import dataset as synthetic
from data_pipeline.synthetic import geometry, render
from data_pipeline.records import schema

TINY = synthetic.SyntheticConfig(subjects=3, videos_per_subject=1, frames_per_video=6, crop_size=48,
                                 frame_size=160, videos_per_shard=1)


def _au(aus, name):
    return aus[:, geometry.AU_NAMES.index(name)]


def test_affect_drives_expression_and_aus():
    valence = np.array([0.0, 0.8, -0.6, 0.35, -0.75])
    arousal = np.array([0.0, 0.25, -0.6, 0.85, 0.5])
    aus, expression = geometry.affect_to_aus(valence, arousal)
    names = [schema.EXPRESSIONS[e] for e in expression]
    assert names == ["neutral", "happiness", "sadness", "surprise", "anger"]
    active = aus >= geometry.AU_THRESHOLD
    assert not active[0].any()  # neutral: no AU
    assert _au(active, "AU12")[1] and _au(active, "AU6")[1]  # smile
    assert _au(active, "AU15")[2] and _au(active, "AU4")[2] and _au(active, "AU1")[2]
    assert _au(active, "AU1")[3] and _au(active, "AU2")[3] and _au(active, "AU25")[3]
    assert _au(active, "AU4")[4] and _au(active, "AU7")[4] and not _au(active, "AU12")[4]


def test_rendered_landmarks_follow_ibug_order_and_aus():
    identity = geometry.sample_identity(np.random.default_rng(0))
    pose = geometry.Pose(x=80, y=70, scale=40)
    zero = np.zeros(len(geometry.AU_NAMES))
    image = np.zeros((160, 160, 3), np.uint8)
    lm = render.draw_face(image, identity, zero, pose)
    assert lm.shape == (68, 2) and image.std() > 10
    assert lm[0, 0] < lm[8, 0] < lm[16, 0] and lm[8, 1] > lm[30, 1] > lm[27, 1]  # jaw, chin below nose
    assert lm[17:27, 1].max() < lm[36:48, 1].min()  # brows above eyes
    assert lm[36, 0] < lm[39, 0] < lm[42, 0] < lm[45, 0] and lm[48, 0] < lm[54, 0]

    def face(**aus):
        values = zero.copy()
        for name, value in aus.items():
            values[geometry.AU_NAMES.index(name)] = value
        return geometry.face_model(identity, values)["landmarks"][:, :2]

    smile, frown, neutral = face(AU12=1.0), face(AU15=1.0), face()
    corner = lambda p: p[[48, 54], 1].mean() - p[[51, 57], 1].mean()  # noqa: E731  (y down: < 0 is lifted)
    assert corner(smile) < corner(neutral) < corner(frown)
    open_mouth = face(AU25=1.0, AU26=1.0)
    assert open_mouth[66, 1] - open_mouth[62, 1] > 0.2 and abs(neutral[66, 1] - neutral[62, 1]) < 0.02
    raised = face(AU1=1.0, AU2=1.0)
    lowered = face(AU4=1.0)
    assert raised[17:27, 1].mean() < neutral[17:27, 1].mean() < lowered[17:27, 1].mean()


def test_video_record_is_aligned_and_labelled():
    record = synthetic.synth_video(TINY, seed=0, subject=1, video=0)
    n = TINY.frames_per_video
    assert record.num_frames == n and len(record.encoded_images) == n
    assert list(record.au_names) == list(schema.AUS_AFFWILD2_8) and record.au.shape == (n, 8)
    assert set(np.unique(record.au)) <= {0, 1}
    assert np.all(np.abs(record.valence) <= 1) and np.all(np.abs(record.arousal) <= 1)
    assert np.all((record.expression >= 0) & (record.expression < 7))
    points = record.landmarks.reshape(n, 68, 2)
    assert points.min() > -5 and points.max() < TINY.crop_size + 5
    # The anchors land on the alignment template (up to the simulated localisation noise).
    errors = [np.abs(align.anchors(p) - align.template(TINY.crop_size)).max() for p in points]
    assert max(errors) < 2.5
    # The stored matrix maps frame landmarks to the stored crop landmarks: it is a similarity of scale < 1.
    matrix = record.alignment[0].reshape(2, 3)
    assert 0.2 < np.sqrt(abs(np.linalg.det(matrix[:, :2]))) < 1.0
    parsed = schema.parse_video(schema.encode_video(record), num_aus=8)[1]
    images = schema.decode_images(parsed[schema.IMAGE]).numpy()
    assert images.shape == (n, 48, 48, 3) and images.std() > 10


def test_labels_follow_the_au_set_and_the_seed():
    config17 = synthetic.SyntheticConfig(**{**TINY.__dict__, "au_set": "17"})
    a = synthetic.synth_video(config17, seed=3, subject=0, video=0)
    b = synthetic.synth_video(config17, seed=3, subject=0, video=0)
    c = synthetic.synth_video(config17, seed=4, subject=0, video=0)
    assert a.au.shape == (TINY.frames_per_video, 17)
    assert a.encoded_images == b.encoded_images and np.array_equal(a.valence, b.valence)
    assert not np.array_equal(a.valence, c.valence)
    with pytest.raises(ValueError, match="'9'"):
        synthetic.SyntheticConfig(au_set="9")


def test_generate_layout_manifest_and_resume(tmp_path):
    out = str(tmp_path / "set")
    manifest = synthetic.generate(out, TINY, seed=0)
    assert manifest["shards_written"] == 3
    subjects = [set(manifest["splits"][s]["subjects"]) for s in synthetic.SPLITS]
    assert all(subjects) and not (subjects[0] & subjects[1] or subjects[0] & subjects[2] or subjects[1] & subjects[2])
    for split in synthetic.SPLITS:
        files = sorted(os.listdir(os.path.join(out, split)))
        assert files and all(f.startswith("synthetic-") and f.endswith(".tfrecord") for f in files)
        videos = schema.read_videos(os.path.join(out, split, files[0]), num_aus=8)
        assert videos[0][0][schema.SUBJECT_ID].numpy().decode() in manifest["splits"][split]["subjects"]
    with open(os.path.join(out, "manifest.json")) as f:
        assert json.load(f)["seed"] == 0

    shard = os.path.join(out, "test", "synthetic-0.tfrecord")
    before = open(shard, "rb").read()
    stamp = os.path.getmtime(os.path.join(out, "train", "synthetic-0.tfrecord"))
    os.remove(shard)
    again = synthetic.generate(out, TINY, seed=0)
    assert again["shards_written"] == 1 and open(shard, "rb").read() == before
    assert os.path.getmtime(os.path.join(out, "train", "synthetic-0.tfrecord")) == stamp
    assert not [f for _, _, fs in os.walk(out) for f in fs if f.endswith(".tmp")]
    with pytest.raises(ValueError, match="seed"):
        synthetic.generate(out, TINY, seed=1)


def test_cli_writes_a_set(tmp_path, capsys):
    synthetic.main(["--output", str(tmp_path), "--subjects", "3", "--videos_per_subject", "1", "--frames", "3",
                    "--crop_size", "32", "--au_set", "12", "--workers", "1"])
    summary = json.loads(capsys.readouterr().out)
    assert summary["train"]["frames"] + summary["validation"]["frames"] + summary["test"]["frames"] == 9
    videos = schema.read_videos(str(tmp_path / "train" / "synthetic-0.tfrecord"), num_aus=12)
    assert videos[0][1][schema.AU].shape == (3, 12)


def test_render_video_file_ground_truth_and_detection(tmp_path):
    import av
    import dlib

    path = str(tmp_path / "two.mp4")
    truth = synthetic.render_video_file(path, num_faces=2, num_frames=8, seed=1)
    assert truth["landmarks"].shape == (8, 2, 68, 2) and truth["valence"].shape == (8, 2)
    assert truth["landmarks"][:, 0, :, 0].max() < truth["landmarks"][:, 1, :, 0].min()  # left to right
    detector = dlib.get_frontal_face_detector()
    found = frames = 0
    with av.open(path) as container:
        for t, frame in enumerate(container.decode(video=0)):
            image = frame.to_ndarray(format="rgb24")
            assert image.shape == (360, 640, 3)
            boxes = detector(image, 0)
            for face in range(2):
                x, y = truth["landmarks"][t, face, 27:48].mean(0)
                found += any(b.left() <= x <= b.right() and b.top() <= y <= b.bottom() for b in boxes)
            frames += 1
    assert frames == 8
    assert found >= 0.9 * 16, found
    with pytest.raises(ValueError, match="3"):
        synthetic.render_video_file(path, num_faces=3)


@pytest.mark.slow
def test_affect_is_learnable_from_landmarks_across_subjects():
    """A linear probe on landmarks, fit on some subjects, predicts VA of others (CCC)."""
    from sklearn.linear_model import Ridge

    config = synthetic.SyntheticConfig(frames_per_video=60, crop_size=48, frame_size=160)

    def features(subjects):
        x, y = [], []
        for s in subjects:
            for v in range(2):
                r = synthetic.synth_video(config, seed=0, subject=s, video=v)
                x.append(r.landmarks / 24.0 - 1)
                y.append(np.stack([r.valence, r.arousal], 1))
        return np.concatenate(x), np.concatenate(y)

    def ccc(a, b):
        return 2 * np.mean((a - a.mean()) * (b - b.mean())) / (a.var() + b.var() + (a.mean() - b.mean()) ** 2)

    x_train, y_train = features(range(8))
    x_test, y_test = features(range(8, 11))
    prediction = Ridge(alpha=1.0).fit(x_train, y_train).predict(x_test)
    assert ccc(prediction[:, 0], y_test[:, 0]) > 0.6
    assert ccc(prediction[:, 1], y_test[:, 1]) > 0.6


def test_audio_follows_arousal_through_the_same_spectrogram():
    from data_pipeline.media import audio

    config = audio.SpectrogramConfig()
    fps, n = 30.0, 90
    arousal = np.concatenate([np.full(45, -0.9), np.full(45, 0.9)])
    signal = synthetic.affect_audio(np.zeros(n), arousal, fps, np.random.default_rng(0))
    assert signal.dtype == np.float32 and len(signal) == 3 * audio.SAMPLE_RATE and np.abs(signal).max() < 1
    spec = audio.video_spectrogram(audio.Audio(signal), np.arange(n) / fps, config).reshape(n, 16, 64)
    low, high = spec[5:35], spec[55:85]  # Frames whose whole patch lies in one arousal level.
    assert high.mean() - low.mean() > 0.2  # Louder.
    pitch = lambda s: s[:, 6:10].mean(1).argmax(1).mean()  # noqa: E731  (lowest strong band ~ f0)
    assert pitch(high) > pitch(low) + 4  # Higher: f0 140 -> 420 Hz.

    # In the set: images and labels unchanged, the spectrogram rows in the record, shape in the context.
    config_av = synthetic.SyntheticConfig(**{**TINY.__dict__, "frames_per_video": 30, "audio": True})
    plain = synthetic.synth_video(synthetic.SyntheticConfig(**{**TINY.__dict__, "frames_per_video": 30}), 0, 1, 0)
    record = synthetic.synth_video(config_av, 0, 1, 0)
    assert plain.spectrogram is None and record.encoded_images == plain.encoded_images
    np.testing.assert_array_equal(record.arousal, plain.arousal)
    assert record.spectrogram.shape == (30, 1024) and record.spectrogram_shape == (16, 64)
    assert -1 <= record.spectrogram.min() and record.spectrogram.max() <= 1
    context, sequence = schema.parse_video(schema.encode_video(record), num_aus=8, spectrogram_dim=1024)
    assert context[schema.SPECTROGRAM_SHAPE].numpy().tolist() == [16, 64]
    np.testing.assert_allclose(sequence[schema.SPECTROGRAM].numpy(), record.spectrogram)


def test_audio_differs_between_high_and_low_arousal_frames_of_the_set():
    config = synthetic.SyntheticConfig(**{**TINY.__dict__, "frames_per_video": 60, "audio": True})
    spectra, arousal = [], []
    for subject in range(3):
        record = synthetic.synth_video(config, seed=0, subject=subject, video=0)
        spectra.append(record.spectrogram.reshape(-1, 16, 64))
        arousal.append(record.arousal)
    spectra, arousal = np.concatenate(spectra), np.concatenate(arousal)
    assert np.ptp(arousal) > 0.3
    order = np.argsort(arousal)
    low, high = spectra[order[:40]], spectra[order[-40:]]
    assert high.mean() - low.mean() > 0.05
    pitch = spectra[:, 6:10].mean(1).argmax(1)
    assert np.corrcoef(pitch, arousal)[0, 1] > 0.6


def test_generate_and_render_with_audio(tmp_path):
    import av

    from data_pipeline.media import audio

    out = str(tmp_path / "set")
    config = synthetic.SyntheticConfig(**{**TINY.__dict__, "frames_per_video": 4, "audio": True,
                                          "audio_context": 8, "audio_bins": 32})
    manifest = synthetic.generate(out, config, seed=0)
    assert manifest["spectrogram_shape"] == [8, 32] and manifest["config"]["audio"] is True
    (context, sequence), = schema.read_videos(os.path.join(out, "train", "synthetic-0.tfrecord"), num_aus=8,
                                              spectrogram_dim=256)
    assert sequence[schema.SPECTROGRAM].shape == (4, 256)
    assert synthetic.generate(out, config, seed=0)["shards_written"] == 0  # Resumes.
    # Without audio the manifest's config keeps its earlier form, so older sets still resume.
    assert "audio" not in synthetic.generate(str(tmp_path / "plain"), TINY, seed=0)["config"]

    path = str(tmp_path / "av.mp4")
    truth = synthetic.render_video_file(path, num_frames=6, width=160, height=120, seed=2, with_audio=True)
    track = audio.decode_audio(path)
    assert track.sample_rate == truth["sample_rate"] == audio.SAMPLE_RATE and abs(track.start) < 1e-3
    assert len(truth["audio"]) == int(round(6 / 30 * audio.SAMPLE_RATE)) <= len(track.samples)
    mute = str(tmp_path / "mute.mp4")
    synthetic.render_video_file(mute, num_frames=6, width=160, height=120, seed=2)
    with av.open(path) as a, av.open(mute) as b:
        first = [next(c.decode(video=0)).to_ndarray(format="rgb24") for c in (a, b)]
    # The same video, with or without sound: the same rendered pixels, up to x264, whose output for
    # identical frames varies slightly between calls in one process (seen: up to 7 grey levels on a few
    # pixels with libx264 from PyAV 18), so compare the decoded frames to that tolerance.
    difference = np.abs(first[0].astype(int) - first[1])
    assert difference.max() <= 12 and difference.mean() < 0.5, (difference.max(), difference.mean())

"""End-to-end offline preprocessing: folder in, TFRecords + report.json out."""

import json
import os
import types

import cv2
import numpy as np
import pytest
import tensorflow as tf

from real_videos import moving_face_frames, real_face, write_media_folder

from data_pipeline.faces import align
from data_pipeline.media import decode
from data_pipeline.jobs import preprocess
from data_pipeline import preprocess as preprocess_cli
from data_pipeline.records import schema


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """good video (25 fps, moving face), still image, text file named .mp4, truncated mp4."""
    root = write_media_folder(tmp_path_factory.mktemp("inputs"))
    (root / "notes.mp4").write_text("not a video")
    whole = (root / "sub" / "talk.mp4").read_bytes()
    (root / "cut.mp4").write_bytes(whole[: len(whole) // 2])
    return root


@pytest.fixture(scope="module")
def one_worker_run(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("out1")
    code = preprocess_cli.main(["--input", str(inputs), "--output", str(out), "--workers", "1"])
    return out, code


def test_folder_end_to_end(inputs, one_worker_run):
    out, code = one_worker_run
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    by_name = {os.path.relpath(e["input"], inputs): e for e in report["inputs"]}
    assert set(by_name) == {"sub/talk.mp4", "still.png", "notes.mp4", "cut.mp4"}
    for bad in ("notes.mp4", "cut.mp4"):
        assert by_name[bad]["status"] == "failed"
        assert str(inputs / bad) in by_name[bad]["error"]
        assert not os.path.exists(by_name[bad]["output"])
    talk = by_name["sub/talk.mp4"]
    assert talk["status"] == "ok" and talk["frames_decoded"] == 12  # 10 frames at 25 fps -> 12 at 30.
    assert talk["frames_with_face"] == talk["frames_written"] == 12
    assert report["totals"]["failed"] == 2 and report["totals"]["frames_written"] == 13

    (context, sequence), = schema.read_videos(str(out / "sub" / "talk.mp4.tfrecord"))
    assert context[schema.VIDEO_ID].numpy() == b"sub/talk"
    assert context[schema.FPS].numpy() == 30.0
    assert (context[schema.FRAME_WIDTH].numpy(), context[schema.FRAME_HEIGHT].numpy()) == (320, 240)
    np.testing.assert_array_equal(sequence[schema.FRAME_INDEX].numpy(), [0, 1, 2, 2, 3, 4, 5, 6, 7, 7, 8, 9])
    np.testing.assert_allclose(sequence[schema.TIMESTAMP].numpy(), np.arange(12) / 30, atol=1e-6)
    images = schema.decode_images(sequence[schema.IMAGE]).numpy()
    assert images.shape == (12, 96, 96, 3)
    landmarks = sequence[schema.LANDMARKS].numpy().reshape(12, 68, 2)
    # Aligned anchors sit near the template; the face itself moves 6 px per source frame.
    assert np.abs(align.anchors(landmarks[0]) - align.template(96)).max() < 8
    matrices = sequence[schema.ALIGNMENT].numpy().reshape(12, 2, 3)
    assert abs(matrices[5, 0, 2] - matrices[0, 0, 2]) > 10
    # The crops look alike even though the face moved: alignment undid the motion.
    assert np.abs(images[0].astype(int) - images[-1].astype(int)).mean() < 12

    (_, still), = schema.read_videos(str(out / "still.png.tfrecord"))
    assert still[schema.FRAME_INDEX].numpy().tolist() == [0]


def test_resume_skips_finished_and_redoes_partial(inputs, tmp_path):
    out = tmp_path / "out"
    assert preprocess_cli.main(["--input", str(inputs), "--output", str(out), "--workers", "1"]) == 0
    talk = out / "sub" / "talk.mp4.tfrecord"
    still = out / "still.png.tfrecord"
    old = {p: os.stat(p).st_mtime_ns for p in (talk, still)}
    content = talk.read_bytes()
    # An interrupted run: the still image's output exists only as a partial temp file.
    still.unlink()
    (out / "still.png.tfrecord.tmp").write_bytes(b"partial garbage")
    report = preprocess.preprocess(str(inputs), str(out), preprocess.PreprocessOptions(), workers=1)
    status = {os.path.relpath(e["input"], inputs): e["status"] for e in report["inputs"]}
    assert status == {"sub/talk.mp4": "skipped", "still.png": "ok", "notes.mp4": "failed", "cut.mp4": "failed"}
    assert os.stat(talk).st_mtime_ns == old[talk] and talk.read_bytes() == content
    assert not (out / "still.png.tfrecord.tmp").exists()
    assert len(schema.read_videos(str(still))) == 1
    skipped = next(e for e in report["inputs"] if e["status"] == "skipped")
    assert skipped["frames_written"] == 12  # Counts come from the finished input's sidecar.


@pytest.mark.slow
def test_parallel_workers_match_one_worker(inputs, one_worker_run, tmp_path):
    out1, _ = one_worker_run
    out2 = tmp_path / "out2"
    assert preprocess_cli.main(["--input", str(inputs), "--output", str(out2), "--workers", "2"]) == 0
    for name in ("sub/talk.mp4.tfrecord", "still.png.tfrecord"):
        assert (out2 / name).read_bytes() == (out1 / name).read_bytes()


def test_labels_follow_source_frames_and_segments(inputs):
    labels = types.SimpleNamespace(
        valence=np.linspace(-1, 1, 10), arousal=np.full(10, np.nan),
        expression=np.arange(10) % 7, au=np.eye(10, 3, dtype=np.int64), au_names=("AU1", "AU2", "AU4"))
    options = preprocess.PreprocessOptions(segment_frames=5)
    records, report = preprocess.process_video(str(inputs / "sub" / "talk.mp4"), options, labels=labels,
                                               video_id="v", subject_id="s1")
    assert [r.video_id for r in records] == ["v_seg000", "v_seg001", "v_seg002"]
    assert [r.num_frames for r in records] == [5, 5, 2] and report["frames_written"] == 12
    index = np.concatenate([r.frame_index for r in records])
    np.testing.assert_allclose(np.concatenate([r.valence for r in records]), labels.valence[index], rtol=1e-6)
    np.testing.assert_array_equal(np.concatenate([r.expression for r in records]), labels.expression[index])
    np.testing.assert_array_equal(np.concatenate([r.au for r in records]), labels.au[index])
    assert all(r.subject_id == "s1" and tuple(r.au_names) == labels.au_names for r in records)
    # Without resampling the source frames and their 25 fps rate are kept.
    native, _ = preprocess.process_video(str(inputs / "sub" / "talk.mp4"), preprocess.PreprocessOptions(fps=0))
    assert native[0].frame_index.tolist() == list(range(10)) and native[0].fps == pytest.approx(25.0)
    # Labels shorter than the video: the missing frames are unlabelled.
    short = types.SimpleNamespace(valence=np.zeros(3), arousal=None, expression=None, au=None, au_names=())
    records, _ = preprocess.process_video(str(inputs / "sub" / "talk.mp4"), labels=short)
    assert np.isnan(records[0].valence[records[0].frame_index >= 3]).all()
    assert (records[0].valence[records[0].frame_index < 3] == 0).all()
    # The adapters' FrameLabels class works the same way.
    annotations = pytest.importorskip("data_pipeline.records.annotations")
    frame_labels = annotations.FrameLabels(valence=labels.valence, arousal=labels.arousal,
                                           au=labels.au, au_names=labels.au_names)
    records, _ = preprocess.process_video(str(inputs / "sub" / "talk.mp4"), labels=frame_labels)
    np.testing.assert_array_equal(records[0].au, labels.au[records[0].frame_index])
    serialized = schema.encode_video(records[0])
    _, sequence = schema.parse_video(serialized)
    assert sequence[schema.VALENCE].shape == (12,)


def test_two_people_track_all_and_gzip(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    decode.write_video(str(root / "pair.mp4"), moving_face_frames(count=6, size=(240, 480), faces=2), fps=30)
    out = tmp_path / "out"
    assert preprocess_cli.main(["--input", str(root), "--output", str(out), "--workers", "1",
                            "--track", "all", "--gzip", "--image_format", "png", "--crop_size", "64"]) == 0
    records = schema.read_videos(str(out / "pair.mp4.tfrecord.gz"), compression="GZIP")
    ids = sorted(c[schema.VIDEO_ID].numpy() for c, _ in records)
    assert ids == [b"pair_face0", b"pair_face1"]
    for _, sequence in records:
        assert schema.decode_images(sequence[schema.IMAGE]).shape == (6, 64, 64, 3)
    # The two tracks are two different places in the frame.
    x_shift = [s[schema.ALIGNMENT].numpy()[0, 2] for _, s in records]
    assert abs(x_shift[0] - x_shift[1]) > 100
    # Default (largest) writes one person only.
    records, _ = preprocess.process_video(str(root / "pair.mp4"))
    assert len(records) == 1


def test_exit_codes_and_faceless_input(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.avi").write_text("nope")
    assert preprocess_cli.main(["--input", str(bad), "--output", str(tmp_path / "o1"), "--workers", "1"]) == 1
    blank = tmp_path / "blank"
    blank.mkdir()
    decode.write_video(str(blank / "wall.mp4"), [np.full((64, 64, 3), 128, np.uint8)] * 3, fps=30)
    assert preprocess_cli.main(["--input", str(blank), "--output", str(tmp_path / "o2"), "--workers", "1"]) == 1
    entry, = json.loads((tmp_path / "o2" / "report.json").read_text())["inputs"]
    assert entry["status"] == "empty" and entry["dropped"] == {"no_face": 3}
    assert str(blank / "wall.mp4") in entry["error"]
    # An empty output marks the faceless input as done for resumption.
    assert list(tf.data.TFRecordDataset(str(tmp_path / "o2" / "wall.mp4.tfrecord"))) == []
    # User mistakes raise; the entry point (`cli.run`) prints them in one line with exit 2.
    with pytest.raises(ValueError, match="crop_size"):
        preprocess_cli.main(["--input", str(bad), "--output", str(tmp_path / "o3"), "--crop_size", "4"])
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        preprocess_cli.main(["--input", str(tmp_path / "none"), "--output", str(tmp_path / "o4")])
    with pytest.raises(SystemExit) as exit_info:
        preprocess_cli.main(["--input", str(bad), "--output", str(tmp_path / "o5"), "--detector", "ssh"])
    assert exit_info.value.code == 2


def test_options_reject_bad_values():
    with pytest.raises(ValueError, match="'bmp'"):
        preprocess.PreprocessOptions(image_format="bmp")
    with pytest.raises(ValueError, match="-3"):
        preprocess.PreprocessOptions(segment_frames=-3)
    with pytest.raises(ValueError, match="'procrustes'"):
        preprocess.PreprocessOptions(alignment="procrustes")


def test_audio_spectrogram_follows_the_kept_frames(tmp_path):
    from data_pipeline.media import audio
    from data_pipeline.reader import input as data_input

    sr, fps = audio.SAMPLE_RATE, 30
    root = tmp_path / "in"
    root.mkdir()
    # 12 frames at 30 fps; frames 3-5 show no face and are dropped. The tone jumps 500 -> 2000 Hz at frame 6.
    frames = moving_face_frames(count=12)
    for k in (3, 4, 5):
        frames[k] = np.full_like(frames[k], 90)
    t = np.arange(int(12 / fps * sr)) / sr
    tone = (0.5 * np.sin(2 * np.pi * np.cumsum(np.where(t < 6 / fps, 500.0, 2000.0)) / sr)).astype(np.float32)
    audio.write_video_with_audio(str(root / "talk.mp4"), frames, tone, fps=fps)
    decode.write_video(str(root / "mute.mp4"), frames[:3], fps=fps)
    cv2.imwrite(str(root / "still.png"), cv2.cvtColor(real_face(), cv2.COLOR_RGB2BGR))
    out = tmp_path / "out"
    assert preprocess_cli.main(["--input", str(root), "--output", str(out), "--workers", "1", "--audio"]) == 0

    report = json.loads((out / "report.json").read_text())
    by_name = {os.path.basename(e["input"]): e for e in report["inputs"]}
    for name in ("mute.mp4", "still.png"):  # No audio track: failed, named, no output.
        assert by_name[name]["status"] == "failed" and str(root / name) in by_name[name]["error"]
        assert by_name[name]["audio"]["status"] == "missing" and not os.path.exists(by_name[name]["output"])
    talk = by_name["talk.mp4"]
    assert talk["status"] == "ok" and talk["frames_written"] == 9 and talk["dropped"] == {"no_face": 3}
    stats = talk["audio"]
    assert stats["status"] == "ok" and stats["sample_rate"] == sr and stats["spectrogram_shape"] == [16, 64]
    assert abs(stats["seconds"] - 0.4) < 0.05 and abs(stats["start"]) < 1e-3 and 0 < stats["padded_rows"] < 1
    assert report["totals"]["audio_ok"] == 1 and report["totals"]["audio_missing"] == 2
    assert report["options"]["audio"] is True

    (context, sequence), = schema.read_videos(str(out / "talk.mp4.tfrecord"), spectrogram_dim=1024)
    assert context[schema.SPECTROGRAM_SHAPE].numpy().tolist() == [16, 64]
    kept_times = sequence[schema.TIMESTAMP].numpy()
    np.testing.assert_allclose(kept_times, np.array([0, 1, 2, 6, 7, 8, 9, 10, 11]) / fps, atol=1e-6)
    stored = sequence[schema.SPECTROGRAM].numpy()
    assert stored.shape == (9, 1024) and stored.min() >= -1 and stored.max() <= 1
    # Row k is the patch at kept frame k's own time, not at k / fps.
    expected = audio.video_spectrogram(audio.decode_audio(str(root / "talk.mp4")), kept_times.astype(np.float64))
    np.testing.assert_allclose(stored, expected, atol=1e-5)
    weights = audio.weight_matrix().numpy()
    band = {f: weights[int(round(f * 2048 / sr))].argmax() for f in (500.0, 2000.0)}
    peak = stored.reshape(9, 16, 64)[:, 7:9].mean(1).argmax(1)
    assert abs(peak[2] - band[500.0]) <= 1 and abs(peak[4] - band[2000.0]) <= 1  # Frames 2 and 7.

    # The reader: labelled records of the same video (with AU columns: TF 2.21's Dataset.unbatch
    # segfaults on the zero-width "au" of records without any, a reader issue outside audio).
    labels = types.SimpleNamespace(valence=np.linspace(-1, 1, 12), arousal=np.zeros(12), expression=None,
                                   au=np.zeros((12, 1), np.int64), au_names=("AU12",))
    records, _ = preprocess.process_video(str(root / "talk.mp4"), preprocess.PreprocessOptions(audio=True),
                                          labels=labels)
    (tmp_path / "set" / "test").mkdir(parents=True)
    with tf.io.TFRecordWriter(str(tmp_path / "set" / "test" / "talk.tfrecord")) as writer:
        writer.write(schema.encode_video(records[0]))
    features, labels = next(iter(data_input.make_eval_dataset(str(tmp_path / "set"), "test", seq_len=9, batch_size=1,
                                                         spectrogram_dim=1024)))
    assert features["spectrogram"].shape == (1, 9, 1024)
    np.testing.assert_allclose(features["spectrogram"].numpy()[0], stored)
    np.testing.assert_array_equal(labels["frame_index"].numpy()[0], sequence[schema.FRAME_INDEX].numpy())

    # Resuming keeps the finished input and its audio statistics; --audio_missing silence writes silence.
    again = preprocess.preprocess(str(root), str(out), preprocess.PreprocessOptions(audio=True), workers=1)
    assert [e["status"] for e in again["inputs"]] == ["failed", "failed", "skipped"]
    assert again["totals"]["audio_ok"] == 1
    records, mute = preprocess.process_video(str(root / "mute.mp4"), preprocess.PreprocessOptions(
        audio=True, audio_missing="silence"))
    assert mute["audio"]["status"] == "missing" and (records[0].spectrogram == -1).all()
    assert records[0].spectrogram.shape == (3, 1024) and records[0].spectrogram_shape == (16, 64)
    with pytest.raises(ValueError, match="'mute'"):
        preprocess.PreprocessOptions(audio_missing="mute")

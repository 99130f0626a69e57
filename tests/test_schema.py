"""Round trip of the TFRecord schema: encode_video -> parse_video."""

import os

import numpy as np
import pytest

from data_pipeline.records import schema


def _record(t=5, au_names=schema.AUS_AFFWILD2_8):
    rng = np.random.default_rng(0)
    return schema.VideoRecord(
        video_id="v1", subject_id="s1", source_path="/x/v1.mp4", fps=30.0,
        frame_width=640, frame_height=360,
        images=rng.integers(0, 255, (t, 16, 16, 3), dtype=np.uint8),
        landmarks=rng.uniform(0, 16, (t, 136)).astype(np.float32),
        alignment=rng.normal(size=(t, 6)).astype(np.float32),
        frame_index=np.arange(t) * 2, timestamp=np.arange(t) / 15.0,
        valence=np.array([0.1, np.nan, -0.5, 0.2, 0.9][:t]),
        arousal=np.linspace(-1, 1, t),
        expression=np.array([0, -1, 3, 6, 2][:t]),
        au=rng.integers(-1, 2, (t, len(au_names))), au_names=au_names)


def test_round_trip_keeps_every_field():
    record = _record()
    context, seq = schema.parse_video(schema.encode_video(record, image_format="png"), num_aus=8)
    assert context[schema.VIDEO_ID].numpy() == b"v1"
    assert context[schema.FRAME_WIDTH].numpy() == 640
    assert [n.decode() for n in context[schema.AU_NAMES].numpy()] == list(schema.AUS_AFFWILD2_8)
    np.testing.assert_array_equal(schema.decode_images(seq[schema.IMAGE]).numpy(), record.images)
    np.testing.assert_allclose(seq[schema.LANDMARKS].numpy(), record.landmarks, rtol=1e-6)
    np.testing.assert_allclose(seq[schema.VALENCE].numpy(), record.valence.astype(np.float32), equal_nan=True)
    np.testing.assert_array_equal(seq[schema.EXPRESSION].numpy(), record.expression)
    np.testing.assert_array_equal(seq[schema.AU].numpy(), record.au)
    np.testing.assert_array_equal(seq[schema.FRAME_INDEX].numpy(), record.frame_index)


def test_missing_labels_become_sentinels():
    record = _record()
    record.valence = record.arousal = record.expression = record.au = None
    _, seq = schema.parse_video(schema.encode_video(record), num_aus=8)
    assert np.isnan(seq[schema.VALENCE].numpy()).all()
    assert (seq[schema.EXPRESSION].numpy() == -1).all()
    assert (seq[schema.AU].numpy() == -1).all()


def test_wrong_shape_names_the_video():
    record = _record()
    record.landmarks = record.landmarks[:, :10]
    try:
        schema.encode_video(record)
    except ValueError as err:
        assert "v1" in str(err) and "136" in str(err)
    else:
        raise AssertionError("a landmarks array of the wrong width was accepted")


def test_shard_names_never_match_side_files(tmp_path):
    from data_pipeline.reader import input as data_input

    split = tmp_path / "train"
    (split / "sub").mkdir(parents=True)
    shards = [schema.shard_path(str(split / "a.mp4")), schema.shard_path(str(split / "sub" / "b.mp4"), gzip=True)]
    for shard in shards:
        open(shard, "wb").close()
        open(schema.side_report_path(shard), "w").close()
    for other in ("report.json", "manifest.json", "c.mp4.tfrecord.tmp", "d.mp4.tfrecord.json", "notes.txt"):
        (split / other).write_text("{}")
    assert schema.side_report_path(shards[1]) == str(split / "sub" / "b.mp4.report.json")
    assert not any(schema.is_shard(schema.side_report_path(s)) for s in shards)
    assert schema.list_shards(str(split)) == sorted(shards)
    assert data_input.list_files(str(tmp_path), "train") == sorted(shards)
    # A glob is filtered the same way, whatever it matches.
    assert data_input.list_files(str(tmp_path / "{split}" / "*"), "train") == shards[:1]
    assert data_input.compression_of(shards[1]) == "GZIP" and data_input.compression_of(shards[0]) == ""
    with pytest.raises(ValueError, match="no TFRecord shards"):
        data_input.list_files(str(tmp_path), "validation")


def test_write_shard_is_atomic_and_readable(tmp_path):
    record = _record(t=2)
    path = schema.shard_path(str(tmp_path / "v"), gzip=True)
    schema.write_shard(path, [record])
    assert os.listdir(tmp_path) == ["v.tfrecord.gz"]
    (context, sequence), = schema.read_videos(path, compression="GZIP")
    assert context[schema.VIDEO_ID].numpy() == b"v1" and sequence[schema.LANDMARKS].shape == (2, schema.LANDMARK_DIM)

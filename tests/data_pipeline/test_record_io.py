"""SequenceExample bytes and TFRecord files written without TensorFlow equal TensorFlow's own."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from data_pipeline.records import record_io, schema


def _record(frames=5, au_names=("AU1", "AU12"), spectrogram=True):
    rng = np.random.default_rng(0)
    return schema.VideoRecord(
        video_id="vid", subject_id="subject", source_path="/a/b.mp4", fps=29.97, frame_width=640,
        frame_height=360, encoded_images=[bytes(rng.integers(0, 256, 30 + k, dtype=np.uint8)) for k in range(frames)],
        landmarks=rng.normal(size=(frames, schema.LANDMARK_DIM)).astype(np.float32),
        alignment=rng.normal(size=(frames, 6)).astype(np.float32),
        frame_index=np.arange(frames) * 3, timestamp=np.arange(frames) / 30.0,
        valence=np.array([np.nan, -1.0, 0.25, 1.0, 0.0][:frames], np.float32),
        arousal=np.linspace(-1, 1, frames).astype(np.float32),
        expression=np.array([-1, 0, 6, 3, 1][:frames]),
        au=np.array([[-1, -1], [0, 1], [1, 0], [1, 1], [0, 0]][:frames]) if au_names else None,
        au_names=au_names,
        spectrogram=rng.normal(size=(frames, 12)).astype(np.float32) if spectrogram else None,
        spectrogram_shape=(3, 4) if spectrogram else None)


@pytest.mark.parametrize("au_names, spectrogram", [(("AU1", "AU12"), True), ((), False)])
def test_bytes_parse_to_the_message_tensorflow_builds(au_names, spectrogram):
    record = _record(au_names=au_names, spectrogram=spectrogram)
    ours = schema.encode_video(record)
    assert schema.encode_video(record) == ours  # Deterministic: any worker writes the same bytes.
    parsed = tf.train.SequenceExample.FromString(ours)
    lists = parsed.feature_lists.feature_list
    reference = tf.train.FeatureList(feature=[
        tf.train.Feature(float_list=tf.train.FloatList(value=row)) for row in record.landmarks])
    assert lists[schema.LANDMARKS] == reference
    expected_keys = {schema.IMAGE, schema.LANDMARKS, schema.ALIGNMENT, schema.FRAME_INDEX, schema.TIMESTAMP,
                     schema.VALENCE, schema.AROUSAL, schema.EXPRESSION, schema.AU}  # AU: empty rows without AUs.
    expected_keys |= {schema.SPECTROGRAM} if spectrogram else set()
    assert set(lists.keys()) == expected_keys
    # Map entries in byte order of their keys (C++ protobuf's deterministic order).
    positions = [ours.index(bytes([10, len(key)]) + key.encode() + b"\x12") for key in sorted(expected_keys)]
    assert positions == sorted(positions)
    context, sequence = schema.parse_video(ours, num_aus=len(au_names), spectrogram_dim=12 if spectrogram else 0)
    assert context[schema.VIDEO_ID].numpy() == b"vid"
    np.testing.assert_array_equal(sequence[schema.FRAME_INDEX].numpy(), [0, 3, 6, 9, 12])
    np.testing.assert_array_equal(sequence[schema.EXPRESSION].numpy(), [-1, 0, 6, 3, 1])  # Negative int64s.
    assert np.isnan(sequence[schema.VALENCE].numpy()[0])


def test_empty_lists_and_large_values_match_tensorflow():
    feature = tf.train.Feature(int64_list=tf.train.Int64List(value=[]))
    assert record_io.encode_feature(("int64", [])) == feature.SerializeToString()
    values = [0, 1, 127, 128, 2**40, -1, -(2**63), 2**63 - 1]
    feature = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    assert record_io.encode_feature(("int64", values)) == feature.SerializeToString()
    feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"", b"x" * 300]))
    assert record_io.encode_feature(("bytes", [b"", b"x" * 300])) == feature.SerializeToString()
    with pytest.raises(ValueError, match="kind"):
        record_io.encode_feature(("double", [1.0]))


@pytest.mark.parametrize("gzip", [False, True])
def test_shards_read_back_by_tensorflow_with_checksums(tmp_path, gzip):
    path = schema.shard_path(str(tmp_path / "video.mp4"), gzip=gzip)
    records = [_record(), _record(frames=3, au_names=(), spectrogram=False)]
    schema.write_shard(path, records)
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(path)]  # Temporary renamed away.
    # TFRecordDataset verifies both CRCs of every record; a wrong one fails the read.
    read = list(tf.data.TFRecordDataset(path, compression_type=schema.shard_compression(path)))
    assert [r.numpy() for r in read] == [schema.encode_video(r) for r in records]
    if not gzip:
        with open(path, "rb") as f:
            data = bytearray(f.read())
        data[20] ^= 0xFF  # Inside the first record's data.
        with open(path, "wb") as f:
            f.write(data)
        with pytest.raises(tf.errors.DataLossError):
            list(tf.data.TFRecordDataset(path))


def test_writing_a_local_shard_imports_no_tensorflow(tmp_path):
    script = (
        "import sys, numpy as np\n"
        "from data_pipeline.records import schema\n"
        "r = schema.VideoRecord(video_id='v', encoded_images=[b'x'], frame_index=np.array([0]), "
        "landmarks=np.zeros((1, 136), np.float32), timestamp=np.zeros(1))\n"
        f"schema.write_shard({str(tmp_path / 'v.tfrecord.gz')!r}, [r])\n"
        "print('tensorflow' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.stdout.strip() == "False"
    assert len(list(tf.data.TFRecordDataset(str(tmp_path / "v.tfrecord.gz"), compression_type="GZIP"))) == 1

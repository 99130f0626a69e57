"""`tf.train.SequenceExample` bytes and TFRecord files, written without TensorFlow.

Importing TensorFlow takes 3-16 s, longer than preprocessing a minute of video
takes once the face front-end tracks (`data_pipeline.faces.track`), and the offline
writers (preprocess, the adapters, Beam workers) need nothing else from it. So
the two formats are encoded here by their published definitions:

- protobuf wire format of `tensorflow/core/example/{example,feature}.proto`:
  fields in field-number order, numeric lists packed, map entries sorted by
  the bytes of their keys (C++ protobuf's deterministic order), so the same
  record gives the same bytes in every worker; TensorFlow parses them into
  the message it builds itself (`tests/data_pipeline/test_record_io.py`);
- TFRecord framing: little-endian uint64 length, masked CRC-32C of the length,
  the data, masked CRC-32C of the data (`google-crc32c`, C code).

A feature is `(kind, values)` with kind "bytes", "float" or "int64"; a feature
list is a list of features. Local paths are written with Python's file and gzip
modules; other file systems (gs://, hdfs://, s3://) through `tf.io.gfile`.
"""

import gzip
import os
import struct
from typing import Dict, Iterable, List, Sequence, Tuple

import google_crc32c
import numpy as np

Feature = Tuple[str, Sequence]

_FEATURE_FIELD = {"bytes": 1, "float": 2, "int64": 3}  # Feature's oneof kind.


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # Negative int64 values: two's complement, ten bytes.
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_feature(feature: Feature) -> bytes:
    """One `tf.train.Feature` message."""
    kind, values = feature
    if kind == "bytes":
        body = b"".join(_field(1, bytes(v)) for v in values)
    elif kind == "float":
        packed = np.asarray(values, "<f4").ravel().tobytes()
        body = _field(1, packed) if packed else b""
    elif kind == "int64":
        packed = b"".join(_varint(int(v)) for v in np.asarray(values, np.int64).ravel())
        body = _field(1, packed) if packed else b""
    else:
        raise ValueError(f"feature kind must be bytes, float or int64, got {kind!r}")
    return _field(_FEATURE_FIELD[kind], body)


def _map(entries: Dict[str, bytes]) -> bytes:
    """A protobuf map<string, message> (field 1), entries sorted by the bytes of their keys."""
    return b"".join(_field(1, _field(1, key.encode()) + _field(2, value))
                    for key, value in sorted(entries.items(), key=lambda item: item[0].encode()))


def encode_sequence_example(context: Dict[str, Feature], feature_lists: Dict[str, List[Feature]]) -> bytes:
    """`tf.train.SequenceExample(context=..., feature_lists=...)` serialised deterministically."""
    features = _map({key: encode_feature(f) for key, f in context.items()})
    lists = _map({key: b"".join(_field(1, encode_feature(f)) for f in rows)
                  for key, rows in feature_lists.items()})
    return _field(1, features) + _field(2, lists)


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def tfrecord_frame(data: bytes) -> bytes:
    """One TFRecord: length, its CRC, the data, its CRC."""
    length = struct.pack("<Q", len(data))
    return length + _masked_crc(length) + data + _masked_crc(data)


def is_remote(path: str) -> bool:
    """A path with a scheme (gs://, hdfs://, s3://): not for `os` and `open`."""
    return "://" in path


def write_tfrecords(path: str, serialized: Iterable[bytes], compress: bool = False) -> None:
    """Writes the records to `path`, gzip-compressed (TensorFlow's "GZIP") when `compress`."""
    if not is_remote(path):
        raw = open(path, "wb")
    else:
        from data_pipeline.base.lazy_tensorflow import tf

        raw = tf.io.gfile.GFile(path, "wb")
    with raw:
        # mtime=0 and no file name in the gzip header: the same records give the same bytes.
        out = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if compress else raw
        try:
            for data in serialized:
                out.write(tfrecord_frame(data))
        finally:
            if compress:
                out.close()


def rename(source: str, target: str) -> None:
    """Replaces `target` by `source` (atomic on a local file system)."""
    if not (is_remote(source) or is_remote(target)):
        os.replace(source, target)
    else:
        from data_pipeline.base.lazy_tensorflow import tf

        tf.io.gfile.rename(source, target, overwrite=True)

"""The one TFRecord schema: a `tf.train.SequenceExample` per video (or segment).

Writers (preprocess, dataset adapters, the synthetic set) build records with
`encode_video`; the reader parses them with `parse_video`. Keys live here only.

Context
  video_id, subject_id, source_path (bytes); fps (float);
  frame_width, frame_height (int64, of the source frame);
  au_names (bytes list: the AU columns of `au`, e.g. b"AU1");
  audio/spectrogram_shape (int64 [rows, cols], written only with a
    spectrogram; [0, 0] when absent: rows * cols = F, see `audio.py`).
Feature lists, one entry per kept frame
  image/encoded     JPEG or PNG bytes of the aligned crop, uint8 RGB
  landmarks         136 floats x0, y0, ..., x67, y67 in aligned-crop pixels
  alignment/matrix  6 floats, the 2x3 matrix mapping source-frame pixel
                    coordinates to aligned-crop coordinates (row-major)
  frame_index       int64, index of the frame in the source video
  timestamp         float seconds in the source video
  valence, arousal  float, NaN when unlabelled
  expression        int64 class in EXPRESSIONS order, -1 when unlabelled
  au                int64 per AU (0/1), -1 when unlabelled
  audio/spectrogram optional float vector per frame ([FBN] A/V models)

Files on disk (one definition for every writer and the reader)
  <stem>.tfrecord | <stem>.tfrecord.gz   a shard: the only files the reader opens
  <stem>.report.json                     the side report of that shard (how it was made)
  <stem>.tfrecord[.gz].tmp               a shard being written, renamed when complete
A directory of shards may hold anything else (report.json, manifest.json, logs):
`list_shards` takes a file only by its shard suffix, so no glob over a split
directory can pick up a report or a temporary.
"""

import dataclasses
import os
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from data_pipeline.base import atomic
from data_pipeline.records import record_io
from data_pipeline.base.lazy_tensorflow import tf  # Reading only: writers need no TensorFlow.

# Context keys.
VIDEO_ID = "video_id"
SUBJECT_ID = "subject_id"
SOURCE_PATH = "source_path"
FPS = "fps"
FRAME_WIDTH = "frame_width"
FRAME_HEIGHT = "frame_height"
AU_NAMES = "au_names"
SPECTROGRAM_SHAPE = "audio/spectrogram_shape"

# Feature-list keys.
IMAGE = "image/encoded"
LANDMARKS = "landmarks"
ALIGNMENT = "alignment/matrix"
FRAME_INDEX = "frame_index"
TIMESTAMP = "timestamp"
VALENCE = "valence"
AROUSAL = "arousal"
EXPRESSION = "expression"
AU = "au"
SPECTROGRAM = "audio/spectrogram"

NUM_LANDMARKS = 68
LANDMARK_DIM = 2 * NUM_LANDMARKS

# The 7 basic expressions of Aff-Wild2 [FBN], in the ABAW label order.
EXPRESSIONS = ("neutral", "anger", "disgust", "fear", "happiness", "sadness", "surprise")
# AU sets: the 8 of [FBN] Aff-Wild2, the 12 of later Aff-Wild2 releases (ABAW),
# and the 17 of FaceBehaviorNet.
AUS_AFFWILD2_8 = ("AU1", "AU2", "AU4", "AU6", "AU12", "AU15", "AU20", "AU25")
AUS_ABAW_12 = ("AU1", "AU2", "AU4", "AU6", "AU7", "AU10", "AU12", "AU15", "AU23", "AU24", "AU25", "AU26")
AUS_FBN_17 = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14", "AU15",
              "AU17", "AU20", "AU23", "AU24", "AU25", "AU26")

UNLABELLED_CLASS = -1


@dataclasses.dataclass
class VideoRecord:
    """One video's (or segment's) aligned frames and labels, in numpy.

    Shapes: `images` (T, H, W, 3) uint8 RGB, or `encoded_images` a list of T
    already encoded JPEG/PNG byte strings; `landmarks` (T, 136);
    `alignment` (T, 6); `frame_index` (T,); `timestamp` (T,); `valence`,
    `arousal` (T,) with NaN for unlabelled; `expression` (T,) with -1;
    `au` (T, len(au_names)) with -1; `spectrogram` (T, F) optional, with
    `spectrogram_shape` (rows, cols), rows * cols = F, when known.
    """

    video_id: str
    landmarks: np.ndarray
    frame_index: np.ndarray
    timestamp: np.ndarray
    subject_id: str = ""
    source_path: str = ""
    fps: float = 30.0
    frame_width: int = 0
    frame_height: int = 0
    images: Optional[np.ndarray] = None
    encoded_images: Optional[Sequence[bytes]] = None
    alignment: Optional[np.ndarray] = None
    valence: Optional[np.ndarray] = None
    arousal: Optional[np.ndarray] = None
    expression: Optional[np.ndarray] = None
    au: Optional[np.ndarray] = None
    au_names: Sequence[str] = ()
    spectrogram: Optional[np.ndarray] = None
    spectrogram_shape: Optional[Tuple[int, int]] = None

    @property
    def num_frames(self) -> int:
        return int(len(self.frame_index))


def encode_image(image: np.ndarray, image_format: str = "jpeg", quality: int = 95) -> bytes:
    """uint8 RGB (H, W, 3) -> JPEG (4:2:0, like `tf.io.encode_jpeg`) or PNG bytes.

    OpenCV's libjpeg-turbo and libpng, so writers need no TensorFlow; the reader
    decodes them with `tf.io.decode_image`.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {image.dtype} {image.shape}")
    if image_format == "jpeg":
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    elif image_format == "png":
        params = []
    else:
        raise ValueError(f"image_format must be 'jpeg' or 'png', got {image_format!r}")
    ok, encoded = cv2.imencode("." + image_format, cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params)
    if not ok:  # Not the image's fault (it was checked): a RuntimeError, not a bad-input ValueError.
        raise RuntimeError(f"OpenCV failed to encode a {image.shape} image as {image_format}")
    return encoded.tobytes()


def _bytes(values):
    return ("bytes", list(values))


def _floats(values):
    return ("float", np.asarray(values, np.float32).ravel())


def _ints(values):
    return ("int64", np.asarray(values, np.int64).ravel())


def _per_frame(rows, make):
    return [make(row) for row in rows]


def encode_video(record: VideoRecord, image_format: str = "jpeg") -> bytes:
    """Serialise a `VideoRecord` to `tf.train.SequenceExample` bytes (deterministic: map
    entries sorted, so any worker writes the same bytes; no TensorFlow needed)."""
    t = record.num_frames
    if record.encoded_images is not None:
        encoded = list(record.encoded_images)
    elif record.images is not None:
        encoded = [encode_image(img, image_format) for img in record.images]
    else:
        raise ValueError(f"video {record.video_id!r}: neither images nor encoded_images given")

    def filled(values, fill, shape, dtype):
        if values is None:
            return np.full(shape, fill, dtype)
        values = np.asarray(values, dtype)
        if values.shape != shape:
            raise ValueError(f"video {record.video_id!r}: expected shape {shape}, got {values.shape}")
        return values

    au_dim = len(record.au_names)
    columns = {
        LANDMARKS: filled(record.landmarks, np.nan, (t, LANDMARK_DIM), np.float32),
        ALIGNMENT: filled(record.alignment, 0.0, (t, 6), np.float32),
        TIMESTAMP: filled(record.timestamp, 0.0, (t,), np.float32),
        VALENCE: filled(record.valence, np.nan, (t,), np.float32),
        AROUSAL: filled(record.arousal, np.nan, (t,), np.float32),
        FRAME_INDEX: filled(record.frame_index, 0, (t,), np.int64),
        EXPRESSION: filled(record.expression, UNLABELLED_CLASS, (t,), np.int64),
        AU: filled(record.au, UNLABELLED_CLASS, (t, au_dim), np.int64),
    }
    if len(encoded) != t:
        raise ValueError(f"video {record.video_id!r}: {len(encoded)} images for {t} frames")

    feature_lists = {
        IMAGE: _per_frame(encoded, lambda b: _bytes([b])),
        FRAME_INDEX: _per_frame(columns[FRAME_INDEX], lambda v: _ints([v])),
        EXPRESSION: _per_frame(columns[EXPRESSION], lambda v: _ints([v])),
        AU: _per_frame(columns[AU], _ints),
        LANDMARKS: _per_frame(columns[LANDMARKS], _floats),
        ALIGNMENT: _per_frame(columns[ALIGNMENT], _floats),
        TIMESTAMP: _per_frame(columns[TIMESTAMP], lambda v: _floats([v])),
        VALENCE: _per_frame(columns[VALENCE], lambda v: _floats([v])),
        AROUSAL: _per_frame(columns[AROUSAL], lambda v: _floats([v])),
    }
    if record.spectrogram is not None:
        spec = np.asarray(record.spectrogram, np.float32)
        if spec.ndim != 2:
            raise ValueError(f"video {record.video_id!r}: spectrogram must be (T, F), got shape {spec.shape}")
        if spec.shape[0] != t:
            raise ValueError(f"video {record.video_id!r}: spectrogram has {spec.shape[0]} rows for {t} frames")
        if record.spectrogram_shape is not None:
            rows, cols = record.spectrogram_shape
            if rows * cols != spec.shape[1]:
                raise ValueError(f"video {record.video_id!r}: spectrogram_shape {tuple(record.spectrogram_shape)} "
                                 f"does not hold F={spec.shape[1]}")
        feature_lists[SPECTROGRAM] = _per_frame(spec, _floats)
    elif record.spectrogram_shape is not None:
        raise ValueError(f"video {record.video_id!r}: spectrogram_shape given without a spectrogram")

    context = {
        VIDEO_ID: _bytes([record.video_id.encode()]),
        SUBJECT_ID: _bytes([record.subject_id.encode()]),
        SOURCE_PATH: _bytes([record.source_path.encode()]),
        FPS: _floats([record.fps]),
        FRAME_WIDTH: _ints([record.frame_width]),
        FRAME_HEIGHT: _ints([record.frame_height]),
        AU_NAMES: _bytes([name.encode() for name in record.au_names]),
    }
    if record.spectrogram is not None and record.spectrogram_shape is not None:
        context[SPECTROGRAM_SHAPE] = _ints(record.spectrogram_shape)
    return record_io.encode_sequence_example(context, feature_lists)


def context_spec():
    """Context feature spec (a function: building it imports TensorFlow)."""
    return {
        VIDEO_ID: tf.io.FixedLenFeature([], tf.string),
        SUBJECT_ID: tf.io.FixedLenFeature([], tf.string, default_value=""),
        SOURCE_PATH: tf.io.FixedLenFeature([], tf.string, default_value=""),
        FPS: tf.io.FixedLenFeature([], tf.float32, default_value=30.0),
        FRAME_WIDTH: tf.io.FixedLenFeature([], tf.int64, default_value=0),
        FRAME_HEIGHT: tf.io.FixedLenFeature([], tf.int64, default_value=0),
        AU_NAMES: tf.io.VarLenFeature(tf.string),
        SPECTROGRAM_SHAPE: tf.io.FixedLenFeature([2], tf.int64, default_value=[0, 0]),  # Absent: unknown.
    }


def sequence_spec(num_aus: int, spectrogram_dim: int = 0):
    """Feature-list spec; `num_aus` must match the context's `au_names` length."""
    spec = {
        IMAGE: tf.io.FixedLenSequenceFeature([], tf.string),
        LANDMARKS: tf.io.FixedLenSequenceFeature([LANDMARK_DIM], tf.float32),
        ALIGNMENT: tf.io.FixedLenSequenceFeature([6], tf.float32),
        FRAME_INDEX: tf.io.FixedLenSequenceFeature([], tf.int64),
        TIMESTAMP: tf.io.FixedLenSequenceFeature([], tf.float32),
        VALENCE: tf.io.FixedLenSequenceFeature([], tf.float32),
        AROUSAL: tf.io.FixedLenSequenceFeature([], tf.float32),
        EXPRESSION: tf.io.FixedLenSequenceFeature([], tf.int64),
    }
    if num_aus:
        spec[AU] = tf.io.FixedLenSequenceFeature([num_aus], tf.int64)
    if spectrogram_dim:
        spec[SPECTROGRAM] = tf.io.FixedLenSequenceFeature([spectrogram_dim], tf.float32)
    return spec


def parse_video(serialized, num_aus: int = 0, spectrogram_dim: int = 0):
    """Serialized SequenceExample -> (context dict, sequence dict) of tensors.

    Images stay encoded; decoding is a separate step (`decode_images`) so the
    reader can decode only the frames of a window.
    """
    context, sequence = tf.io.parse_single_sequence_example(
        serialized, context_features=context_spec(),
        sequence_features=sequence_spec(num_aus, spectrogram_dim))
    context[AU_NAMES] = tf.sparse.to_dense(context[AU_NAMES], default_value=b"")
    if not num_aus:
        sequence[AU] = tf.zeros([tf.shape(sequence[FRAME_INDEX])[0], 0], tf.int64)
    return context, sequence


def decode_images(encoded):
    """(T,) JPEG/PNG strings -> (T, H, W, 3) uint8. Works eagerly and in tf.data."""
    return tf.map_fn(lambda b: tf.io.decode_image(b, channels=3, expand_animations=False),
                     encoded, fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))


def read_videos(path: str, num_aus: int = 0, spectrogram_dim: int = 0, compression: Optional[str] = None):
    """Eagerly read every record of one TFRecord file (tests and tools)."""
    dataset = tf.data.TFRecordDataset(path, compression_type=compression or "")
    return [parse_video(s, num_aus, spectrogram_dim) for s in dataset]


# ------------------------------------------------------------- files on disk

SHARD_SUFFIX = ".tfrecord"
GZIP_SHARD_SUFFIX = ".tfrecord.gz"
SHARD_SUFFIXES = (SHARD_SUFFIX, GZIP_SHARD_SUFFIX)
SIDE_REPORT_SUFFIX = ".report.json"
TEMPORARY_SUFFIX = atomic.TEMPORARY_SUFFIX  # Written, then renamed (`atomic`).


def shard_path(stem: str, gzip: bool = False) -> str:
    """`<stem>.tfrecord` (or `.tfrecord.gz`): where a writer puts the shard of `stem`."""
    return stem + (GZIP_SHARD_SUFFIX if gzip else SHARD_SUFFIX)


def is_shard(path: str) -> bool:
    """True only for a finished shard: never a report, a temporary or another file."""
    return path.endswith(SHARD_SUFFIXES)


def shard_stem(path: str) -> str:
    """`a/b.mp4.tfrecord.gz` -> `a/b.mp4`."""
    for suffix in (GZIP_SHARD_SUFFIX, SHARD_SUFFIX):
        if path.endswith(suffix):
            return path[:-len(suffix)]
    raise ValueError(f"{path}: not a shard (expected a name ending in {' or '.join(SHARD_SUFFIXES)})")


def side_report_path(shard: str) -> str:
    """The report written beside `shard`; its suffix is one no shard name has."""
    return shard_stem(shard) + SIDE_REPORT_SUFFIX


def shard_compression(path: str) -> str:
    """The TFRecord compression of a shard, from its name."""
    return "GZIP" if path.endswith(GZIP_SHARD_SUFFIX) else ""


def list_shards(directory: str) -> List[str]:
    """Every shard under `directory` (recursively: preprocess mirrors the input tree), sorted.

    Works on any `tf.io.gfile` file system (local, gs://, hdfs://)."""
    shards = []
    for root, _, names in tf.io.gfile.walk(directory):
        shards.extend(os.path.join(root, name) for name in names if is_shard(name))
    return sorted(shards)


def write_shard(path: str, records: Sequence["VideoRecord"], image_format: str = "jpeg") -> None:
    """Records -> the shard `path`, written under `<path>.tmp` and renamed when complete,
    so a killed writer never leaves a partial file under a shard name. Needs no
    TensorFlow for a local path (`record_io`)."""
    temporary = path + TEMPORARY_SUFFIX
    record_io.write_tfrecords(temporary, (encode_video(record, image_format) for record in records),
                              compress=shard_compression(path) == "GZIP")
    record_io.rename(temporary, path)

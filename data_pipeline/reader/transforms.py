"""Online transforms of the reader: windowing, label masks, normalisation, VA-quadrant oversampling.

Each is a small pure TensorFlow function over tensors or a window dict, the
same at training and at serving/predict time, and works both eagerly and
inside `tf.data.Dataset.map`.

Window dict (the reader's element between windowing and decoding), length L:
  "encoded" (L,) string JPEG/PNG ("" on padding), "landmarks" (L, 136) crop
  pixels, "frame_index" (L,) int64 (-1 on padding), "valence", "arousal" (L,)
  float (NaN unlabelled/padding), "expression" (L,) int64 (-1), "au" (L, K)
  int64 (-1), "valid" (L,) float (1 on real frames), "video_id" () string,
  "start" () int64 first frame position in the video, optional
  "spectrogram" (L, F).
"""

from typing import Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from data_pipeline.records import schema

# [AW] Sec. 4 balancing: target shares of windows per VA quadrant, in the
# order (+V,+A), (-V,+A), (+V,-A), (-V,-A).
AW_QUADRANT_TARGETS = (0.43, 0.24, 0.19, 0.14)
QUADRANT_NAMES = ("+V+A", "-V+A", "+V-A", "-V-A")

# uint8 pixel p <-> model input x in [-1, 1]: x = (p - PIXEL_MIDPOINT) / PIXEL_MIDPOINT.
# `normalize_images` applies it; backbones invert it (affnet.models.backbones.preprocessing).
PIXEL_MIDPOINT = 127.5

_PAD = {"encoded": b"", "landmarks": np.nan, "frame_index": -1, "valence": np.nan, "arousal": np.nan,
        "expression": schema.UNLABELLED_CLASS, "au": schema.UNLABELLED_CLASS, "valid": 0.0, "spectrogram": 0.0}


def normalize_images(images, image_size: Optional[int] = None):
    """uint8 images (..., H, W, 3) -> float32 in [-1, 1] as (x - 127.5) / 127.5, resized to `image_size`.

    The papers normalise to [-1, 1]; the released code divides (x - 128) by
    128, which maps 255 to 0.992. We centre at 127.5 so 0 -> -1 and 255 -> 1
    exactly; the difference is 0.4% of the range, inside JPEG noise, and
    released weights are unaffected in practice. Resizing (bilinear) happens
    before the affine map, only when the size differs.
    """
    images = tf.convert_to_tensor(images)
    if images.dtype != tf.uint8:
        raise ValueError(f"normalize_images expects uint8 images, got {images.dtype}")
    x = tf.cast(images, tf.float32)
    if image_size is not None:
        shape = tf.shape(x)
        x = tf.cond(tf.logical_and(tf.equal(shape[-3], image_size), tf.equal(shape[-2], image_size)),
                    lambda: x, lambda: tf.image.resize(x, [image_size, image_size], method="bilinear"))
    return (x - PIXEL_MIDPOINT) / PIXEL_MIDPOINT


def normalize_landmarks(landmarks, crop_size):
    """(..., 136) crop-pixel landmarks -> float32 `2 x / crop_size - 1` (in [-1, 1] inside the crop).

    Missing landmarks (NaN, a frame without a detected face) become 0, the crop
    centre, so a model never sees NaN. Independent of any later image resize.
    """
    landmarks = tf.cast(landmarks, tf.float32)
    scaled = 2.0 * landmarks / tf.cast(crop_size, tf.float32) - 1.0
    return tf.where(tf.math.is_finite(scaled), scaled, tf.zeros_like(scaled))


def select_aus(au, file_au_names: Sequence[str], au_names: Sequence[str]):
    """(T, len(file_au_names)) int64 -> (T, len(au_names)); AUs the file lacks become -1 (unlabelled)."""
    file_au_names, au_names = list(file_au_names), list(au_names)
    if file_au_names == au_names:
        return au
    index = [file_au_names.index(n) if n in file_au_names else len(file_au_names) for n in au_names]
    missing = tf.fill([tf.shape(au)[0], 1], tf.constant(schema.UNLABELLED_CLASS, au.dtype))
    return tf.gather(tf.concat([au, missing], 1), index, axis=1)


def window_starts(num_frames, seq_len: int, stride: int, training: bool):
    """First-frame positions of the windows of one video.

    training: every full window at `stride` (the tail that does not fill a
    window is dropped), and one padded window for a video shorter than
    `seq_len`. Evaluation: non-overlapping windows covering every frame exactly
    once, the last one padded.
    """
    num_frames = tf.cast(num_frames, tf.int64)
    if training:
        count = tf.maximum((num_frames - seq_len) // stride + 1, tf.minimum(num_frames, 1))
        return tf.range(count, dtype=tf.int64) * stride
    return tf.range((num_frames + seq_len - 1) // seq_len, dtype=tf.int64) * seq_len


def cut_windows(video_id, sequence: Dict[str, tf.Tensor], seq_len: int, stride: int, training: bool):
    """One video's per-frame tensors -> window dict with a leading window axis (W, L, ...).

    Windows never cross a video boundary: they index into this video only,
    padded past its end with the sentinels of `_PAD`.
    """
    if seq_len < 1 or stride < 1:
        raise ValueError(f"seq_len and stride must be >= 1, got {seq_len} and {stride}")
    num_frames = tf.shape(sequence["frame_index"], out_type=tf.int64)[0]
    starts = window_starts(num_frames, seq_len, stride, training)
    length = tf.maximum(num_frames, tf.reduce_max(tf.concat([starts, tf.zeros([1], tf.int64)], 0)) + seq_len)
    index = starts[:, None] + tf.range(seq_len, dtype=tf.int64)[None, :]
    windows = {}
    sequence = dict(sequence, valid=tf.ones([num_frames], tf.float32))
    for key, value in sequence.items():
        pad = [[0, length - num_frames]] + [[0, 0]] * (value.shape.rank - 1)
        padded = tf.pad(value, pad, constant_values=tf.constant(_PAD[key], value.dtype))
        windows[key] = tf.gather(padded, index)
    windows["video_id"] = tf.fill([tf.shape(starts)[0]], video_id)
    windows["start"] = starts
    return windows


def window_labels(window: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Window dict -> label dict with masks; masks already include `valid`.

    va (L, 2) with NaN -> 0 and va_mask 1 where both are labelled; expression
    (L,) int32 with -1 -> 0; au (L, K) float with -1 -> 0 and a per-AU mask.
    """
    valid = tf.cast(window["valid"], tf.float32)
    va = tf.stack([window["valence"], window["arousal"]], -1)
    va_known = tf.reduce_all(tf.math.is_finite(va), -1)
    expression = window["expression"]
    au = window["au"]
    au_known = tf.cast(au >= 0, tf.float32)
    return {
        "va": tf.where(tf.math.is_finite(va), va, tf.zeros_like(va)),
        "va_mask": tf.cast(va_known, tf.float32) * valid,
        "expression": tf.cast(tf.maximum(expression, 0), tf.int32),
        "expression_mask": tf.cast(expression >= 0, tf.float32) * valid,
        "au": tf.cast(tf.maximum(au, 0), tf.float32),
        "au_mask": au_known * valid[..., None],
        "valid": valid,
        "frame_index": tf.cast(window["frame_index"], tf.int64),
        "video_id": window["video_id"],
    }


def resize_uint8(images, image_size: int):
    """uint8 images (..., H, W, 3) -> uint8 at image_size x image_size; unchanged when the size matches.

    A bilinear resize rounded back to uint8, for readers that hand uint8 crops
    to the accelerator (`decode_window(uint8=True)`): rounding moves a pixel by
    at most half a grey level (<= 0.004 after normalisation), inside JPEG noise.
    """
    images = tf.convert_to_tensor(images)
    shape = tf.shape(images)

    def resized():
        x = tf.image.resize(tf.cast(images, tf.float32), [image_size, image_size], method="bilinear")
        return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)

    return tf.cond(tf.logical_and(tf.equal(shape[-3], image_size), tf.equal(shape[-2], image_size)),
                   lambda: images, resized)


# uint8 padding frames: the pixel closest to the float reader's 0 (mid-grey); padding is masked.
_UINT8_PAD = 128


def decode_window(window: Dict[str, tf.Tensor], image_size: int, uint8: bool = False) -> Dict[str, tf.Tensor]:
    """Decode only the window's real frames, normalise; -> features dict.

    uint8=False: images float32 in [-1, 1] (`normalize_images`); padding
    frames (all at the end) are 0, mid-grey, irrelevant as they are masked.
    uint8=True: images stay uint8 (4x fewer bytes to batch and copy) for
    `model_images` to normalise on the accelerator; padding frames are 128.
    """
    encoded = window["encoded"]
    seq_len = encoded.shape[0] if encoded.shape[0] is not None else tf.shape(encoded)[0]
    num_valid = tf.cast(tf.reduce_sum(window["valid"]), tf.int32)
    images = schema.decode_images(encoded[:num_valid])
    crop_size = tf.shape(images)[2]
    if uint8:
        images = resize_uint8(images, image_size)
        pad = _UINT8_PAD
    else:
        images = normalize_images(images, image_size)
        pad = 0
    images = tf.pad(images, [[0, seq_len - num_valid], [0, 0], [0, 0], [0, 0]], constant_values=pad)
    images = tf.ensure_shape(images, [encoded.shape[0], image_size, image_size, 3])
    features = {"images": images,
                "landmarks": normalize_landmarks(window["landmarks"], tf.maximum(crop_size, 1))}
    if "spectrogram" in window:
        features["spectrogram"] = tf.cast(window["spectrogram"], tf.float32)
    return features


def model_images(images):
    """Images as every model takes them: float in [-1, 1].

    uint8 (the training reader's `uint8_images`) -> `normalize_images`, run
    where the caller runs, i.e. on the accelerator inside the training step;
    float images (already normalised: evaluation, serving, predict) pass
    unchanged. One affine map for training and serving.
    """
    images = tf.convert_to_tensor(images)
    return normalize_images(images) if images.dtype == tf.uint8 else images


def squeeze_time(features, labels):
    """Frame-level batches: drop the time axis of length 1 (video_id has none)."""
    squeeze = lambda x: tf.squeeze(x, 1)  # noqa: E731
    return ({k: squeeze(v) for k, v in features.items()},
            {k: v if k == "video_id" else squeeze(v) for k, v in labels.items()})


def window_quadrant(window: Dict[str, tf.Tensor]):
    """Quadrant index (QUADRANT_NAMES order) of the window's mean labelled (valence, arousal); -1 if none."""
    va = tf.stack([window["valence"], window["arousal"]], -1)
    known = tf.cast(tf.reduce_all(tf.math.is_finite(va), -1), tf.float32) * tf.cast(window["valid"], tf.float32)
    count = tf.reduce_sum(known)
    mean = tf.reduce_sum(tf.where(tf.math.is_finite(va), va, 0.0) * known[:, None], 0) / tf.maximum(count, 1.0)
    quadrant = tf.where(mean[0] >= 0, 0, 1) + tf.where(mean[1] >= 0, 0, 2)
    return tf.where(count > 0, quadrant, -1)


def quadrant_counts(windows: tf.data.Dataset) -> np.ndarray:
    """(4,) number of windows per quadrant in a (finite) window dataset; one pass, no image decoding."""
    counts = windows.map(window_quadrant).reduce(
        tf.zeros([4], tf.int64), lambda acc, q: acc + tf.cast(tf.one_hot(q, 4), tf.int64))
    return counts.numpy()


def oversample_factors(source_counts, targets=AW_QUADRANT_TARGETS) -> np.ndarray:
    """(4,) duplication factors >= 1 so that counts * factors are proportional to `targets`.

    [AW] duplicates under-represented quadrants, never drops data: the most
    over-represented quadrant keeps factor 1. Quadrants absent from the source
    get factor 1 (nothing to duplicate); the others then follow the targets
    renormalised over the present quadrants.
    """
    counts = np.asarray(source_counts, np.float64)
    targets = np.asarray(targets, np.float64)
    if counts.shape != (4,) or targets.shape != (4,) or np.any(targets < 0) or targets.sum() <= 0:
        raise ValueError(f"expected 4 source counts and 4 non-negative targets, got {source_counts!r}, {targets!r}")
    present = counts > 0
    ratio = np.where(present, targets / np.maximum(counts, 1), 0.0)
    if not np.any(ratio > 0):
        return np.ones(4)
    return np.where(present & (ratio > 0), ratio / ratio[ratio > 0].min(), 1.0)


def oversample_quadrants(windows: tf.data.Dataset, factors, seed: int = 0) -> tf.data.Dataset:
    """Repeat each window floor(f) or ceil(f) times, f its quadrant's factor ([AW] balancing).

    The fractional part is a Bernoulli draw seeded by (seed, video_id, start),
    so the duplication is deterministic and independent of element order.
    Windows without VA labels pass once. Shuffle afterwards to spread copies.
    """
    factors = tf.constant(np.concatenate([np.asarray(factors, np.float32), [1.0]]), tf.float32)

    def copies(window):
        quadrant = window_quadrant(window)
        factor = tf.gather(factors, tf.where(quadrant >= 0, quadrant, 4))
        key = tf.strings.join([window["video_id"], tf.strings.as_string(window["start"])], "@")
        draw = tf.random.stateless_uniform(
            [], seed=tf.stack([tf.constant(seed, tf.int64), tf.strings.to_hash_bucket_fast(key, 2 ** 62)]))
        return tf.cast(tf.floor(factor) + tf.cast(draw < factor - tf.floor(factor), tf.float32), tf.int64)

    return windows.flat_map(lambda w: tf.data.Dataset.from_tensors(w).repeat(copies(w)))

"""The tf.data reader (data_pipeline.reader.input) and its online transforms (data_pipeline.reader.transforms)."""

import collections
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from data_pipeline.reader import input as reader
from data_pipeline.records import schema
from data_pipeline.reader import transforms

CROP = 24
# Video lengths chosen to exercise full, partial and shorter-than-window cases.
LENGTHS = {"train": [13, 7, 20, 3], "test": [10, 5, 1]}


def _video(video_id, length, rng, au_names=schema.AUS_AFFWILD2_8, spectrogram_dim=0):
    valence = rng.uniform(-1, 1, length)
    valence[::4] = np.nan
    expression = rng.integers(0, 7, length)
    expression[1::3] = -1
    au = rng.integers(0, 2, (length, len(au_names)))
    au[::5, :1] = -1
    return schema.VideoRecord(
        video_id=video_id, subject_id=video_id.split("-")[0],
        images=rng.integers(0, 256, (length, CROP, CROP, 3), dtype=np.uint8),
        landmarks=rng.uniform(0, CROP, (length, 136)), alignment=np.zeros((length, 6)),
        frame_index=np.arange(length) + 100, timestamp=np.arange(length) / 30.0,
        valence=valence, arousal=rng.uniform(-1, 1, length), expression=expression, au=au,
        au_names=au_names,
        spectrogram=rng.uniform(-1, 1, (length, spectrogram_dim)) if spectrogram_dim else None)


def _write(path, records, compression=None):
    options = tf.io.TFRecordOptions(compression_type=compression or "")
    with tf.io.TFRecordWriter(path, options) as writer:
        for record in records:
            writer.write(schema.encode_video(record, image_format="png"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Two train shards and one test shard, PNG crops so decoded pixels are exact."""
    root = tmp_path_factory.mktemp("records")
    rng = np.random.default_rng(0)
    for split, lengths in LENGTHS.items():
        os.makedirs(root / split)
        videos = [_video(f"s{i}-{split}{i}", n, rng) for i, n in enumerate(lengths)]
        if split == "train":
            _write(str(root / split / "a-0.tfrecord"), videos[:2])
            _write(str(root / split / "a-1.tfrecord"), videos[2:])
        else:
            _write(str(root / split / "a-0.tfrecord"), videos)
    return str(root)


def _train(data, **kwargs):
    """make_train_dataset of the "train" split at the crops' native size (no resize work in tests that do
    not need it)."""
    return reader.make_train_dataset(data, "train", image_size=CROP, **kwargs)


def _eval(data, split, **kwargs):
    """make_eval_dataset at the crops' native size."""
    return reader.make_eval_dataset(data, split, image_size=CROP, **kwargs)


def _frames(dataset, limit=None):
    """(video_id, frame_index) of every valid frame yielded."""
    seen = []
    for i, (_, labels) in enumerate(dataset):
        if limit is not None and i >= limit:
            break
        valid = labels["valid"].numpy() > 0
        for b, vid in enumerate(labels["video_id"].numpy()):
            seen += [(vid.decode(), int(f)) for f in labels["frame_index"].numpy()[b][valid[b]]]
    return seen


def test_element_shapes_and_ranges(data_dir):
    dataset = reader.make_train_dataset(data_dir, "train", seq_len=4, batch_size=3, seed=0)
    features, labels = next(iter(dataset))
    assert features["images"].shape == (3, 4, 96, 96, 3) and features["images"].dtype == tf.float32
    assert features["landmarks"].shape == (3, 4, 136)
    assert labels["au"].shape == labels["au_mask"].shape == (3, 4, 8)
    assert labels["va"].shape == (3, 4, 2) and labels["expression"].dtype == tf.int32
    assert labels["video_id"].shape == (3,)
    for key in ("images", "landmarks"):
        values = features[key].numpy()
        assert values.min() >= -1.0 and values.max() <= 1.0, key
    # Landmarks drawn uniformly over the crop should span most of [-1, 1].
    assert features["landmarks"].numpy().min() < -0.8 and features["landmarks"].numpy().max() > 0.8


def test_native_image_size_keeps_exact_pixels(data_dir):
    features, labels = next(iter(reader.make_eval_dataset(data_dir, "test", seq_len=16, batch_size=1,
                                                     image_size=CROP)))
    context, sequence = schema.read_videos(os.path.join(data_dir, "test", "a-0.tfrecord"), num_aus=8)[0]
    images = schema.decode_images(sequence[schema.IMAGE]).numpy()
    expected = (images.astype(np.float32) - 127.5) / 127.5
    np.testing.assert_allclose(features["images"].numpy()[0, :10], expected, atol=1e-6)
    assert np.all(features["images"].numpy()[0, 10:] == 0)  # padding
    np.testing.assert_allclose(features["landmarks"].numpy()[0, :10],
                               2 * sequence[schema.LANDMARKS].numpy() / CROP - 1, atol=1e-5)


def test_training_windows_never_cross_videos(data_dir):
    dataset = _train(data_dir, seq_len=4, batch_size=2, seed=3, epochs=1)
    batches = 0
    for _, labels in dataset:
        batches += 1
        for b in range(2):
            valid = labels["valid"].numpy()[b] > 0
            frames = labels["frame_index"].numpy()[b][valid]
            assert np.all(np.diff(frames) == 1), frames
            assert np.all(valid[:valid.sum()])  # padding only at the end
    # Windows of 4 at stride 4: 13->3, 7->1, 20->5, 3->1 (padded) = 10 windows -> 5 batches.
    assert batches == 5


def test_stride_gives_overlapping_training_windows(data_dir):
    dataset = _train(data_dir, seq_len=4, batch_size=1, stride=2, seed=0, epochs=1)
    starts = collections.Counter()
    for _, labels in dataset:
        starts[labels["video_id"].numpy()[0]] += 1
    # 20 frames at stride 2 -> 9 windows; 13 -> 5; 7 -> 2; 3 -> 1 padded.
    assert sorted(starts.values()) == [1, 2, 5, 9]


def test_eval_covers_every_frame_exactly_once(data_dir):
    dataset = _eval(data_dir, "test", seq_len=4, batch_size=4)
    seen = _frames(dataset)
    expected = [(f"s{i}-test{i}", 100 + t) for i, n in enumerate(LENGTHS["test"]) for t in range(n)]
    assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen))
    assert seen == expected  # evaluation keeps file, video and time order
    labels = [lab for _, lab in dataset]
    last = labels[-1]
    assert last["valid"].shape[0] == 2  # 3 + 2 + 1 windows: the last batch is partial, not dropped
    padded = np.concatenate([lab["valid"].numpy().ravel() == 0 for lab in labels])
    masks = np.concatenate([lab["va_mask"].numpy().ravel() for lab in labels])
    frames = np.concatenate([lab["frame_index"].numpy().ravel() for lab in labels])
    assert padded.sum() > 0 and np.all(masks[padded] == 0) and np.all(frames[padded] == -1)
    videos = reader.per_video(dataset)
    assert sorted(videos) == [f"s{i}-test{i}" for i in range(3)]
    assert videos["s1-test1"]["frame_index"].tolist() == [100, 101, 102, 103, 104]


def test_masks_follow_missing_labels(data_dir):
    dataset = _eval(data_dir, "test", seq_len=16, batch_size=1)
    _, sequence = schema.read_videos(os.path.join(data_dir, "test", "a-0.tfrecord"), num_aus=8)[0]
    _, labels = next(iter(dataset))
    valence = sequence[schema.VALENCE].numpy()
    expression = sequence[schema.EXPRESSION].numpy()
    au = sequence[schema.AU].numpy()
    n = len(valence)
    np.testing.assert_array_equal(labels["va_mask"].numpy()[0, :n], np.isfinite(valence).astype(np.float32))
    assert np.all(np.isfinite(labels["va"].numpy()))
    assert np.all(labels["va"].numpy()[0, :n, 0][np.isnan(valence)] == 0)
    np.testing.assert_array_equal(labels["expression_mask"].numpy()[0, :n], (expression >= 0).astype(np.float32))
    np.testing.assert_array_equal(labels["expression"].numpy()[0, :n], np.maximum(expression, 0))
    np.testing.assert_array_equal(labels["au_mask"].numpy()[0, :n], (au >= 0).astype(np.float32))
    np.testing.assert_array_equal(labels["au"].numpy()[0, :n], np.maximum(au, 0))
    assert np.all(labels["au_mask"].numpy()[0, n:] == 0) and np.all(labels["expression_mask"].numpy()[0, n:] == 0)


def test_same_seed_same_batches(data_dir):
    def first(seed):
        dataset = _train(data_dir, seq_len=4, batch_size=2, seed=seed)
        return [(lab["video_id"].numpy().tolist(), lab["frame_index"].numpy().tolist(), float(f["images"].numpy().sum()))
                for f, lab in dataset.take(8)]

    assert first(5) == first(5)
    assert first(5) != first(6)


def test_gzip_and_glob_patterns(data_dir, tmp_path):
    rng = np.random.default_rng(1)
    os.makedirs(tmp_path / "validation")
    _write(str(tmp_path / "validation" / "x.tfrecord.gz"), [_video("g-1", 6, rng)], compression="GZIP")
    for data in (str(tmp_path), str(tmp_path / "{split}" / "*.tfrecord.gz")):
        seen = _frames(_eval(data, "validation", seq_len=4, batch_size=2))
        assert seen == [("g-1", 100 + t) for t in range(6)]
    with pytest.raises(ValueError, match="nothing-here"):
        _eval(str(tmp_path / "nothing-here" / "*.tfrecord"), "train")


def test_au_selection_and_mismatch(data_dir, tmp_path):
    _, labels = next(iter(_eval(data_dir, "test", seq_len=4, batch_size=1,
                                              au_names=schema.AUS_FBN_17)))
    assert labels["au"].shape == (1, 4, 17)
    present = [schema.AUS_FBN_17.index(n) for n in schema.AUS_AFFWILD2_8]
    absent = [i for i in range(17) if i not in present]
    assert np.all(labels["au_mask"].numpy()[..., absent] == 0)
    assert labels["au_mask"].numpy()[..., present].sum() > 0

    rng = np.random.default_rng(2)
    os.makedirs(tmp_path / "train")
    _write(str(tmp_path / "train" / "a.tfrecord"), [_video("m-1", 5, rng)])
    other = tuple(reversed(schema.AUS_AFFWILD2_8))
    _write(str(tmp_path / "train" / "b.tfrecord"), [_video("m-2", 5, rng, au_names=other)])
    with pytest.raises(tf.errors.InvalidArgumentError, match="b.tfrecord"):
        for _ in _eval(str(tmp_path), "train", seq_len=4, batch_size=1):
            pass


def test_spectrogram_and_resize(tmp_path):
    rng = np.random.default_rng(3)
    os.makedirs(tmp_path / "train")
    _write(str(tmp_path / "train" / "a.tfrecord"), [_video("sp-1", 9, rng, spectrogram_dim=5)])
    features, _ = next(iter(reader.make_train_dataset(str(tmp_path), "train", seq_len=4, batch_size=2, seed=0,
                                                spectrogram_dim=5, image_size=32)))
    assert features["spectrogram"].shape == (2, 4, 5)
    assert features["images"].shape == (2, 4, 32, 32, 3)


def test_bad_arguments_name_the_value(data_dir):
    with pytest.raises(ValueError, match="-1"):
        _train(data_dir, seq_len=4, stride=-1)
    with pytest.raises(ValueError, match="0"):
        _train(data_dir, seq_len=0)
    with pytest.raises(ValueError, match="2.5"):
        _train(data_dir, seq_len=4, epochs=2.5)
    with pytest.raises(ValueError, match="0"):
        _eval(data_dir, "test", batch_size=0)
    # Evaluation covers every frame once: no stride, oversampling or shuffling to ask for.
    with pytest.raises(TypeError):
        _eval(data_dir, "test", oversample=True)


# ---- transforms: eagerly and inside tf.data.map ------------------------------------------------


def _both(fn, *args):
    """fn(*args) eagerly and inside tf.data.Dataset.map, as numpy structures."""
    eager = fn(*args)
    mapped = next(iter(tf.data.Dataset.from_tensors(args).map(fn)))
    return tf.nest.map_structure(lambda t: t.numpy(), eager), tf.nest.map_structure(lambda t: t.numpy(), mapped)


def test_normalize_images_eager_and_mapped():
    images = tf.constant(np.arange(2 * 8 * 8 * 3).reshape(2, 8, 8, 3) % 256, tf.uint8)
    images = tf.tensor_scatter_nd_update(images, [[0, 0, 0, 0], [0, 0, 0, 1]], tf.constant([0, 255], tf.uint8))
    eager, mapped = _both(lambda x: transforms.normalize_images(x, 8), images)
    np.testing.assert_array_equal(eager, mapped)
    assert eager[0, 0, 0, 0] == -1.0 and eager[0, 0, 0, 1] == 1.0
    eager, mapped = _both(lambda x: transforms.normalize_images(x, 4), images)
    np.testing.assert_allclose(eager, mapped, atol=1e-6)
    assert eager.shape == (2, 4, 4, 3) and eager.min() >= -1 and eager.max() <= 1
    with pytest.raises(ValueError, match="float32"):
        transforms.normalize_images(tf.zeros([2, 2, 3]))


def test_normalize_landmarks_eager_mapped_and_xla():
    landmarks = np.array([[0.0, 96.0, 48.0, np.nan]], np.float32)
    eager, mapped = _both(lambda x: transforms.normalize_landmarks(x, 96), landmarks)
    np.testing.assert_array_equal(eager, [[-1.0, 1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(eager, mapped)
    jitted = tf.function(lambda x: transforms.normalize_landmarks(x, 96), jit_compile=True)(landmarks)
    np.testing.assert_allclose(jitted.numpy(), eager, atol=1e-6)
    images = tf.constant(np.full((1, 4, 4, 3), 255, np.uint8))
    jitted = tf.function(lambda x: transforms.normalize_images(x, 4), jit_compile=True)(images)
    assert np.all(jitted.numpy() == 1.0)


def _sequence(n, k=2):
    return {
        "encoded": tf.constant([f"img{i}".encode() for i in range(n)]),
        "landmarks": tf.constant(np.arange(n * 136, dtype=np.float32).reshape(n, 136)),
        "frame_index": tf.range(n, dtype=tf.int64),
        "valence": tf.constant(np.linspace(-1, 1, n), tf.float32),
        "arousal": tf.constant(np.linspace(1, -1, n), tf.float32),
        "expression": tf.constant(np.arange(n) % 8 - 1, tf.int64),
        "au": tf.constant((np.arange(n * k).reshape(n, k) % 3) - 1, tf.int64),
    }


@pytest.mark.parametrize("training,expected_starts", [(True, [0, 3]), (False, [0, 3, 6])])
def test_cut_windows_eager_and_mapped(training, expected_starts):
    def cut(seq):
        return transforms.cut_windows(tf.constant(b"v"), seq, 3, 3, training)

    eager, mapped = _both(cut, _sequence(7))
    for key in eager:
        np.testing.assert_array_equal(eager[key], mapped[key])
    assert eager["start"].tolist() == expected_starts
    assert eager["frame_index"][:, 0].tolist() == expected_starts
    if not training:
        assert eager["valid"][-1].tolist() == [1, 0, 0] and eager["frame_index"][-1].tolist() == [6, -1, -1]
        assert eager["encoded"][-1].tolist() == [b"img6", b"", b""]


def test_window_labels_and_quadrant_eager_and_mapped():
    window = transforms.cut_windows(tf.constant(b"v"), _sequence(5), 6, 6, False)
    window = {k: v[0] for k, v in window.items()}
    eager, mapped = _both(transforms.window_labels, window)
    for key in eager:
        np.testing.assert_array_equal(eager[key], mapped[key])
    assert eager["expression_mask"].tolist() == [0, 1, 1, 1, 1, 0]
    assert eager["au_mask"][:, 0].tolist() == [0, 1, 1, 0, 1, 0]
    q_eager, q_mapped = _both(transforms.window_quadrant, window)
    # mean valence 0, mean arousal 0 over the 5 real frames -> (+V, +A).
    assert q_eager == q_mapped == 0


def test_select_aus_eager_and_mapped():
    au = tf.constant([[1, 0], [0, -1]], tf.int64)
    eager, mapped = _both(lambda a: transforms.select_aus(a, ("AU1", "AU2"), ("AU2", "AU9", "AU1")), au)
    np.testing.assert_array_equal(eager, [[0, -1, 1], [-1, -1, 0]])
    np.testing.assert_array_equal(eager, mapped)


def _skewed_windows(counts, length=3):
    """Windows with constant VA in the given quadrant counts (QUADRANT_NAMES order)."""
    signs = {0: (0.5, 0.5), 1: (-0.5, 0.5), 2: (0.5, -0.5), 3: (-0.5, -0.5)}
    rows = [(q, i) for q, n in enumerate(counts) for i in range(n)]
    va = np.array([signs[q] for q, _ in rows], np.float32)
    return tf.data.Dataset.from_tensor_slices({
        "valence": np.repeat(va[:, :1], length, 1), "arousal": np.repeat(va[:, 1:], length, 1),
        "valid": np.ones((len(rows), length), np.float32),
        "video_id": np.array([f"q{q}-{i}".encode() for q, i in rows]),
        "start": np.zeros(len(rows), np.int64)})


def test_oversampling_reaches_target_shares():
    windows = _skewed_windows([700, 150, 100, 50])
    counts = transforms.quadrant_counts(windows)
    assert counts.tolist() == [700, 150, 100, 50]
    factors = transforms.oversample_factors(counts)
    assert factors.min() == 1.0
    balanced = transforms.oversample_quadrants(windows, factors, seed=1)
    achieved = transforms.quadrant_counts(balanced)
    shares = achieved / achieved.sum()
    np.testing.assert_allclose(shares, transforms.AW_QUADRANT_TARGETS, atol=0.02)
    again = transforms.quadrant_counts(transforms.oversample_quadrants(windows, factors, seed=1))
    np.testing.assert_array_equal(achieved, again)


def test_oversampling_in_the_reader(data_dir):
    dataset = _train(data_dir, seq_len=4, batch_size=1, seed=0, epochs=1,
                                  oversample=(0.25, 0.25, 0.25, 0.25))
    plain = _train(data_dir, seq_len=4, batch_size=1, seed=0, epochs=1)
    assert sum(1 for _ in dataset) >= sum(1 for _ in plain)


def test_multitask_batches_concatenate(data_dir):
    args = {"data": data_dir, "split": "train", "seq_len": 1, "seed": 0, "image_size": CROP}
    dataset = reader.make_multitask_dataset({"va": args, "au": args, "expression": args},
                                            batch_sizes={"va": 5, "au": 3, "expression": 2})
    features, labels = next(iter(dataset))
    assert features["images"].shape == (10, CROP, CROP, 3) and labels["va"].shape == (10, 2)
    assert labels["au"].shape == (10, 8) and labels["video_id"].shape == (10,)
    sequence_args = dict(args, seq_len=4)
    dataset = reader.make_multitask_dataset({"va": sequence_args, "expression": sequence_args},
                                            batch_sizes={"va": 2, "expression": 1})
    features, labels = next(iter(dataset))
    assert features["images"].shape == (3, 4, CROP, CROP, 3) and labels["expression_mask"].shape == (3, 4)
    with pytest.raises(ValueError, match="image_size"):
        reader.make_multitask_dataset({"va": args, "au": dict(args, image_size=16)},
                                      batch_sizes={"va": 1, "au": 1})


_DISTRIBUTED = textwrap.dedent("""
    import sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from data_pipeline.reader import input as reader
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    data = sys.argv[1]
    dataset = strategy.distribute_datasets_from_function(
        lambda ctx: reader.make_train_dataset(data, "train", seq_len=4, batch_size=4, seed=0, input_context=ctx))
    features, labels = next(iter(dataset))
    shapes = [tuple(t.shape) for t in strategy.experimental_local_results(features["images"])]
    assert shapes == [(2, 4, 96, 96, 3)] * 2, shapes

    @tf.function
    def step(features, labels):
        return tf.reduce_sum(features["images"]) * 0 + tf.reduce_sum(labels["valid"])

    total = strategy.reduce("SUM", strategy.run(step, args=(features, labels)), axis=None)
    assert float(total) > 0, total
    evaluation = strategy.experimental_distribute_dataset(
        reader.make_eval_dataset(data, "test", seq_len=4, batch_size=4))
    frames = 0
    for _, labels in evaluation:
        frames += sum(float(t.numpy().sum()) for t in strategy.experimental_local_results(labels["valid"]))
    print("OK", shapes, frames)
""")


@pytest.mark.slow
def test_distributed_over_two_logical_cpus(data_dir):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONPATH=root)
    result = subprocess.run([sys.executable, "-c", _DISTRIBUTED, data_dir], capture_output=True, text=True,
                            env=env, timeout=300, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout and f"{float(sum(LENGTHS['test']))}" in result.stdout, result.stdout


def test_records_without_au_columns_are_read(tmp_path):
    """Unlabelled preprocess output has zero AU columns (TF 2.21's unbatch crashed on it)."""
    rng = np.random.default_rng(4)
    os.makedirs(tmp_path / "test")
    _write(str(tmp_path / "test" / "a.tfrecord"), [_video("na-1", 7, rng, au_names=())])
    batches = list(reader.make_eval_dataset(str(tmp_path), "test", seq_len=4, batch_size=2, image_size=CROP))
    assert [labels["au"].shape for _, labels in batches] == [(2, 4, 0)]
    assert sorted(f for _, f in _frames(batches)) == list(range(100, 107))


def test_decode_window_eager_and_mapped():
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (3, CROP, CROP, 3), dtype=np.uint8)
    window = {"encoded": tf.constant([schema.encode_image(p, "png") for p in pixels] + [b""]),
              "landmarks": tf.constant(np.full((4, 136), CROP / 2.0), tf.float32),
              "valid": tf.constant([1.0, 1.0, 1.0, 0.0])}
    eager, mapped = _both(lambda w: transforms.decode_window(w, CROP), window)
    for key in ("images", "landmarks"):
        np.testing.assert_array_equal(eager[key], mapped[key])
    np.testing.assert_allclose(eager["images"][:3], (pixels - 127.5) / 127.5, atol=1e-6)
    assert np.all(eager["images"][3] == 0.0)  # The padding frame.
    np.testing.assert_allclose(eager["landmarks"], 0.0, atol=1e-6)  # The crop centre.


# ---- uint8 crops for the accelerator, unordered training reads ---------------------------------


def test_uint8_images_normalise_to_the_float_readers_bytes(data_dir):
    """uint8_images + model_images (on the device) = the float reader's images on every real frame
    (to a float32 rounding: graph optimisers may rewrite the affine map)."""
    floats = [f for f, _ in _eval(data_dir, "test", seq_len=4, batch_size=2)]
    uint8s = [f for f, _ in _eval(data_dir, "test", seq_len=4, batch_size=2, uint8_images=True)]
    assert len(floats) == len(uint8s) and uint8s[0]["images"].dtype == tf.uint8
    for f, u in zip(floats, uint8s):
        normalised = tf.function(transforms.model_images)(u["images"]).numpy()
        valid = np.any(f["images"].numpy() != 0, axis=(2, 3, 4))
        np.testing.assert_allclose(normalised[valid], f["images"].numpy()[valid], rtol=0, atol=1e-6)
        np.testing.assert_array_equal(u["landmarks"].numpy(), f["landmarks"].numpy())
    floats_again = transforms.model_images(floats[0]["images"])  # Already normalised: unchanged.
    np.testing.assert_array_equal(floats_again.numpy(), floats[0]["images"].numpy())


def test_uint8_resize_stays_within_half_a_grey_level(tmp_path):
    rng = np.random.default_rng(6)
    os.makedirs(tmp_path / "train")
    _write(str(tmp_path / "train" / "a.tfrecord"), [_video("rs-1", 8, rng)])
    common = dict(seq_len=4, batch_size=2, seed=0, image_size=32, deterministic=True)
    floats, _ = next(iter(reader.make_train_dataset(str(tmp_path), "train", **common)))
    uint8s, _ = next(iter(reader.make_train_dataset(str(tmp_path), "train", uint8_images=True, **common)))
    assert uint8s["images"].shape == (2, 4, 32, 32, 3) and uint8s["images"].dtype == tf.uint8
    difference = np.abs(transforms.model_images(uint8s["images"]).numpy() - floats["images"].numpy())
    assert difference.max() <= 0.5 / 127.5 + 1e-6


def test_unordered_training_reads_cover_every_window_once(data_dir):
    """deterministic=False changes the order only: one epoch still yields each training window once."""
    dataset = _train(data_dir, seq_len=4, batch_size=1, seed=0, epochs=1, deterministic=False,
                    uint8_images=True)
    windows = collections.Counter()
    for _, labels in dataset:
        windows[(labels["video_id"].numpy()[0].decode(), int(labels["frame_index"].numpy()[0, 0]))] += 1
    # 13 -> 3, 7 -> 1, 20 -> 5, 3 -> 1 (padded) windows of 4 at stride 4.
    assert len(windows) == 10 and set(windows.values()) == {1}

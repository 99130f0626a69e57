"""The tf.data reader: TFRecords of the one schema -> batches of frame windows.

Pipeline order (fixed):
  1. list files (sorted; shuffled with the seed each epoch when training)
  2. shard by `input_context` (files, or records when there are fewer files
     than input pipelines) for `distribute_datasets_from_function`
  3. read TFRecordDataset (GZIP for names ending in .gz), 4. parse
     (`schema.parse_video`, images still encoded) and 5. cut windows of
     `seq_len` consecutive frames inside one video: when training, inside a
     parallel interleave over `TRAIN_CYCLE_LENGTH` files that yields one
     window of each open video in turn, so windows of many videos enter the
     shuffle; at evaluation one file at a time, so videos arrive whole and in
     order
  6. optional [AW] VA-quadrant oversampling (training)
  7. shuffle windows (training) -> repeat (training)
  8. decode only the window's frames (+ normalise, unless `uint8_images`)
  9. batch (drop_remainder when training) -> prefetch

Memory of a training pipeline, roughly: `TRAIN_CYCLE_LENGTH` parsed videos
and up to as many opened ahead by the parallel interleave (encoded, ~5-8 KB
a 96x96 JPEG frame: 16 x 3,000 frames ~ 0.4 GB at Aff-Wild2's mean video
length, twice that at most) plus `shuffle_buffer` encoded windows (512 x 80
frames ~ 0.3 GB), plus the prefetched decoded batches (uint8: 8.8 MB each at
4 x 80 x 96 x 96).

Elements are `(features, labels)`:
  features {"images": (B, T, S, S, 3) f32 in [-1, 1] (uint8 with
  `uint8_images`, for `transforms.model_images` on the accelerator), "landmarks": (B, T, 136)
  f32 in [-1, 1], optional "spectrogram": (B, T, F)}; labels {"va" (B, T, 2),
  "va_mask" (B, T), "expression" (B, T) int32, "expression_mask" (B, T),
  "au" (B, T, K), "au_mask" (B, T, K), "valid" (B, T), "frame_index" (B, T)
  int64, "video_id" (B,) string}. Masks already include `valid`.
"""

import logging
import os
from typing import Dict, Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

from data_pipeline.base import checks
from data_pipeline.records import schema, shards
from data_pipeline.reader import transforms

AUTOTUNE = tf.data.AUTOTUNE
# Windows in the training shuffle buffer and videos (files) read at once: the
# shuffle mixes windows of >= 16 videos (see the memory note above).
DEFAULT_SHUFFLE_BUFFER = 512
TRAIN_CYCLE_LENGTH = 16
FBN_BATCH_SIZES = {"va": 401, "au": 247, "expression": 103}  # [FBN] Sec. VI


def list_files(data: str, split: str):
    """Sorted TFRecord shards of `split`.

    `data` is a directory (every shard under `data/<split>/`, recursively) or a
    glob (which may contain `{split}`). Only shard names count
    (`schema.is_shard`): the reports, manifests and temporaries that
    preprocessing and the adapters write beside their shards are never opened.
    """
    if tf.io.gfile.isdir(data):
        where = os.path.join(data, split)
        files = schema.list_shards(where) if tf.io.gfile.isdir(where) else []
        looked_for = f"{where}/**/*{{{','.join(schema.SHARD_SUFFIXES)}}}"
    else:
        looked_for = data.replace("{split}", split)
        files = sorted(f for f in tf.io.gfile.glob(looked_for) if schema.is_shard(f))
    if not files:
        raise ValueError(f"no TFRecord shards match {looked_for!r} (data={data!r}, split={split!r})")
    return files


compression_of = shards.compression_of


def file_au_names(files: Sequence[str]):
    """AU names in the context of the first record found (all records of one dataset share them)."""
    for path in files:
        try:
            for serialized in tf.data.TFRecordDataset(path, compression_type=compression_of(path)).take(1):
                context, _ = tf.io.parse_single_sequence_example(serialized, context_features=schema.context_spec(),
                                                                 example_name=path)
                return tuple(n.decode() for n in tf.sparse.to_dense(context[schema.AU_NAMES]).numpy())
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
            raise (shards.explain([path], error) or error) from None
    raise ValueError(f"no records in any of {list(files)!r}")


def usable_files(files: Sequence[str], split: str) -> Sequence[str]:
    """`files` without the shards `shards.problem` rejects, each skipped one logged (skip_corrupt_shards)."""
    good, bad = shards.partition(files)
    for line in bad:
        logging.warning("skipping corrupt shard: %s", line)
    if bad:
        logging.warning("skipped %d of %d shards of split %r (skip_corrupt_shards)", len(bad), len(files), split)
    if not good:
        raise ValueError(f"every shard of split {split!r} is unreadable; first: {bad[0]}")
    return good


def _parse_fn(seq_len, stride, training, file_aus, au_names, spectrogram_dim):
    """Steps 4-5: `(path, serialized) -> window dict` of one video (leading window axis)."""
    expected_aus = ",".join(file_aus)

    def parse(path, serialized):
        context, sequence = schema.parse_video(serialized, len(file_aus), spectrogram_dim)
        found = tf.strings.reduce_join(context[schema.AU_NAMES], separator=",")
        check = tf.debugging.Assert(tf.equal(found, expected_aus), [
            "AU columns differ from the first record's", expected_aus, "in file", path, "video",
            context[schema.VIDEO_ID], "has", found])
        with tf.control_dependencies([check]):
            video_id = tf.identity(context[schema.VIDEO_ID])
        columns = {
            "encoded": sequence[schema.IMAGE], "landmarks": sequence[schema.LANDMARKS],
            "frame_index": sequence[schema.FRAME_INDEX], "valence": sequence[schema.VALENCE],
            "arousal": sequence[schema.AROUSAL], "expression": sequence[schema.EXPRESSION],
            "au": transforms.select_aus(sequence[schema.AU], file_aus, au_names),
        }
        if spectrogram_dim:
            columns["spectrogram"] = sequence[schema.SPECTROGRAM]
        return transforms.cut_windows(video_id, columns, seq_len, stride, training)

    return parse


def _read_file(path):
    """(path, serialized) records of one TFRecord file."""
    compression = tf.where(tf.strings.regex_full_match(path, r".*\.gz"), "GZIP", "")
    return tf.data.TFRecordDataset(path, compression_type=compression).map(lambda s: (path, s))


def _window_dataset(files, seq_len, stride, training, seed, file_aus, au_names, spectrogram_dim,
                    input_context, deterministic):
    """Steps 1-5: a dataset of window dicts (images still encoded)."""
    parse = _parse_fn(seq_len, stride, training, file_aus, au_names, spectrogram_dim)
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    pipelines = input_context.num_input_pipelines if input_context else 1
    shard_files = pipelines > 1 and len(files) >= pipelines
    if shard_files:
        dataset = dataset.shard(pipelines, input_context.input_pipeline_id)
    # flat_map, not unbatch(): TF 2.21's unbatch crashes the process on the
    # zero-width "au" column of records written without AU labels.
    if training:
        def file_windows(path):
            records = _read_file(path)
            if pipelines > 1 and not shard_files:  # Fewer files than pipelines: each takes every n-th record.
                records = records.shard(pipelines, input_context.input_pipeline_id)
            return records.map(parse).flat_map(tf.data.Dataset.from_tensor_slices)

        windows = dataset.interleave(file_windows, cycle_length=min(len(files), TRAIN_CYCLE_LENGTH),
                                     block_length=1, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    else:
        records = dataset.interleave(_read_file, cycle_length=1)
        if pipelines > 1 and not shard_files:
            records = records.shard(pipelines, input_context.input_pipeline_id)
        windows = records.map(parse, num_parallel_calls=AUTOTUNE, deterministic=deterministic).flat_map(
            tf.data.Dataset.from_tensor_slices)
    return windows.filter(lambda w: tf.reduce_sum(w["valid"]) > 0)


def make_train_dataset(data: str, split: str = "train", seq_len: int = 80, batch_size: int = 4, *,
                       stride: Optional[int] = None, shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
                       seed: Optional[int] = None, image_size: int = 96, au_names: Optional[Sequence[str]] = None,
                       spectrogram_dim: int = 0, oversample=False, epochs: Optional[int] = None,
                       input_context: Optional[tf.distribute.InputContext] = None, deterministic: bool = True,
                       skip_corrupt_shards: bool = False, uint8_images: bool = False) -> tf.data.Dataset:
    """Training batches of `seq_len`-frame windows of `split` (module docstring): files and windows
    shuffled, repeated `epochs` times (None: forever), the last partial batch dropped.

    stride: window step, default `seq_len` (non-overlapping).
    batch_size: the global batch; with `input_context` each pipeline yields
      `input_context.get_per_replica_batch_size(batch_size)`.
    oversample: False, True ([AW] targets 43/24/19/14 %) or 4 target shares in
      `transforms.QUADRANT_NAMES` order. Costs one label-only pass over the split
      to count windows per quadrant.
    deterministic: the same seed gives the same batches; False lets parallel reads
      and decodes deliver in completion order (faster; the trainer's default,
      `data.deterministic_input`).
    Shared with `make_eval_dataset`: au_names (AU columns of labels["au"], default
    the records' own; names the records lack come out unlabelled), skip_corrupt_shards
    (read every shard once first and leave out bad ones, logging each; off: a bad
    shard stops the reader and `shards.explain` names it), uint8_images (images stay
    uint8, resized to `image_size` if needed, so the batch that reaches the
    accelerator is 4x smaller; the step normalises them, `transforms.model_images`).
    """
    stride = seq_len if stride is None else stride
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if epochs is not None and (int(epochs) != epochs or epochs < 1):
        raise ValueError(f"epochs must be a positive integer or None (forever), got {epochs!r}")
    return _batches(data, split, seq_len, batch_size, stride, True, seed, image_size, au_names, spectrogram_dim,
                    oversample, shuffle_buffer, epochs, input_context, deterministic, skip_corrupt_shards,
                    uint8_images)


def make_eval_dataset(data: str, split: str, seq_len: int = 80, batch_size: int = 4, *, image_size: int = 96,
                      au_names: Optional[Sequence[str]] = None, spectrogram_dim: int = 0,
                      input_context: Optional[tf.distribute.InputContext] = None,
                      skip_corrupt_shards: bool = False, uint8_images: bool = False) -> tf.data.Dataset:
    """Every frame of `split` exactly once, in file / video / time order: `seq_len`-frame windows,
    the last window of a video padded (labels["valid"] = 0 there), the last batch partial.
    Arguments as `make_train_dataset`'s."""
    return _batches(data, split, seq_len, batch_size, seq_len, False, None, image_size, au_names,
                    spectrogram_dim, False, 0, 1, input_context, True, skip_corrupt_shards, uint8_images)


def _batches(data, split, seq_len, batch_size, stride, training, seed, image_size, au_names, spectrogram_dim,
             oversample, shuffle_buffer, epochs, input_context, deterministic, skip_corrupt_shards, uint8_images):
    """The windowing core of both readers (the pipeline order of the module docstring)."""
    if seq_len < 1 or batch_size < 1:
        raise ValueError(f"seq_len and batch_size must be >= 1, got {seq_len} and {batch_size}")
    files = list_files(data, split)
    if skip_corrupt_shards:
        files = usable_files(files, split)
    file_aus = file_au_names(files)
    au_names = tuple(file_aus if au_names is None else au_names)
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)

    def windows_for(context):
        return _window_dataset(files, seq_len, stride, training, seed, file_aus, au_names, spectrogram_dim,
                               context, deterministic)

    windows = windows_for(input_context)
    if oversample is not False:
        targets = transforms.AW_QUADRANT_TARGETS if oversample is True else oversample
        # Factors come from the whole split (not this shard) so every replica balances alike.
        factors = transforms.oversample_factors(transforms.quadrant_counts(windows_for(None)), targets)
        windows = transforms.oversample_quadrants(windows, factors, seed=seed or 0)
    if training:
        windows = windows.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
        windows = windows.repeat(epochs)

    def to_example(window):
        return transforms.decode_window(window, image_size, uint8_images), transforms.window_labels(window)

    dataset = windows.map(to_example, num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    dataset = dataset.batch(batch_size, drop_remainder=training)
    options = tf.data.Options()
    options.deterministic = deterministic
    return dataset.with_options(options).prefetch(AUTOTUNE)


_TASK_MASKS = {"va": "va_mask", "expression": "expression_mask", "au": "au_mask"}


def keep_task_labels(task: str):
    """A `map` fn zeroing every label mask but `task`'s: a row of the VA set
    teaches only VA, as in [FBN] Sec. VI-B where each set has one annotation."""
    checks.check_choice(task, "task", _TASK_MASKS)

    def keep(features, labels):
        labels = dict(labels)
        for other, mask in _TASK_MASKS.items():
            if other != task and mask in labels:
                labels[mask] = tf.zeros_like(labels[mask])
        return features, labels

    return keep


def make_multitask_dataset(task_args: Mapping[str, Mapping], batch_sizes: Optional[Mapping[str, int]] = None,
                           squeeze_frames: Optional[bool] = None, task_labels_only: bool = False) -> tf.data.Dataset:
    """One dataset per task, zipped each step and concatenated along the batch axis ([FBN] Sec. VI).

    task_args: {task: make_train_dataset keyword arguments (data, split, ...)}.
    batch_sizes: {task: batch size}, default `FBN_BATCH_SIZES` (VA 401, AU 247,
      expression 103). Each task's own masks say which labels its rows carry.
    squeeze_frames: drop the time axis; default True when every task has
      seq_len 1 (frame-level MT-VGG / FaceBehaviorNet batches).
    task_labels_only: rows of a task's dataset keep only that task's labels
      (`keep_task_labels`); for tasks read from one multiply-annotated set.
    All tasks must share seq_len, image_size and the AU columns.
    """
    if not task_args:
        raise ValueError("task_args is empty")
    batch_sizes = dict(FBN_BATCH_SIZES if batch_sizes is None else batch_sizes)
    missing = [task for task in task_args if task not in batch_sizes]
    if missing:
        raise ValueError(f"no batch size for tasks {missing}; batch_sizes={batch_sizes}")
    datasets = []
    for i, (task, args) in enumerate(task_args.items()):
        args = dict(args)
        if args.get("seed") is not None:
            args["seed"] = int(args["seed"]) + i  # Decorrelate the tasks' shuffles.
        args["batch_size"] = batch_sizes[task]
        dataset = make_train_dataset(**args)
        datasets.append(dataset.map(keep_task_labels(task)) if task_labels_only else dataset)
    reference = datasets[0].element_spec
    for task, dataset in zip(task_args, datasets):
        for part, ref in zip(dataset.element_spec, reference):
            for key in ref:
                if key not in part or part[key].shape[1:] != ref[key].shape[1:]:
                    raise ValueError(f"task {task!r}: {key} has spec {part.get(key)} but the first task has "
                                     f"{ref[key]}; tasks must share seq_len, image_size and au_names")
    seq_lens = {int(d.element_spec[1]["valid"].shape[1]) for d in datasets}
    if squeeze_frames is None:
        squeeze_frames = seq_lens == {1}
    elif squeeze_frames and seq_lens != {1}:
        raise ValueError(f"squeeze_frames needs seq_len 1 for every task, got {sorted(seq_lens)}")

    def concat(*elements):
        features = {k: tf.concat([e[0][k] for e in elements], 0) for k in elements[0][0]}
        labels = {k: tf.concat([e[1][k] for e in elements], 0) for k in elements[0][1]}
        return features, labels

    dataset = tf.data.Dataset.zip(tuple(datasets)).map(concat, num_parallel_calls=AUTOTUNE)
    if squeeze_frames:
        dataset = dataset.map(transforms.squeeze_time, num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)


def per_video(dataset_or_batches) -> Dict[str, Dict[str, np.ndarray]]:
    """Gather evaluation batches back into per-video label arrays in frame order (valid frames only).

    Useful for per-video metrics; returns {video_id: {"frame_index", "va", ...}}.
    """
    videos: Dict[str, Dict[str, list]] = {}
    for _, labels in dataset_or_batches:
        valid = labels["valid"].numpy() > 0
        ids = labels["video_id"].numpy()
        for b, video_id in enumerate(ids):
            entry = videos.setdefault(video_id.decode(), {})
            for key, value in labels.items():
                if key != "video_id":
                    entry.setdefault(key, []).append(value.numpy()[b][valid[b]])
    return {vid: {k: np.concatenate(v) for k, v in entry.items()} for vid, entry in videos.items()}

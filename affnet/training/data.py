"""Where a run's data comes from: presence checks and the dataset functions.

The readers are `data_pipeline.reader.input.make_train_dataset` / `make_eval_dataset`; this module only adapts it to
a `TrainConfig` and to `tf.distribute` (each replica builds its own pipeline
with the per-replica batch; the input context shards the files).

Data position on resume: the training stream is reseeded by step. A run that
starts (or resumes) at step s shuffles with seed `(config.optimisation.seed, s)`, so a
resumed run does not replay the order it saw before the interruption; over
many steps every window is still drawn uniformly. This keeps resumption
exact in step, weights and optimizer state without checkpointing a
distributed iterator, which `distribute_datasets_from_function` cannot do.
"""

import contextlib
import os
from typing import List, Optional, Sequence

import tensorflow as tf

from affnet.models import describe
from affnet.training.config import TrainConfig
from data_pipeline.records import shards
from data_pipeline.reader.input import list_files, make_eval_dataset, make_multitask_dataset, make_train_dataset

# How to obtain and prepare each dataset a flagfile names.
_PREPARE = {
    "affwild2": ("Aff-Wild2 (ABAW) is released for research under an End User License Agreement signed "
                 "with Imperial College London (https://ibug.doc.ic.ac.uk/resources/aff-wild2/)."),
    "affwild": ("Aff-Wild is released for research under an End User License Agreement "
                "(https://ibug.doc.ic.ac.uk/resources/first-affect-wild-challenge/)."),
    "recola": ("RECOLA is released for research under the RECOLA EULA (https://diuf.unifr.ch/main/diva/recola/)."),
    "afewva": ("AFEW-VA is available for research from https://ibug.doc.ic.ac.uk/resources/afew-va-database/ "
               "(its frames already come as images)."),
    "omg": ("The OMG-Emotion dataset is available for research from "
            "https://github.com/knowledgetechnologyuhh/OMGEmotionChallenge (YouTube links + annotations)."),
    "synthetic": "The synthetic set is generated locally.",
}


def _dataset_key(path):
    name = os.path.basename(os.path.normpath(path)).lower().replace("-", "").replace("_", "")
    for key in sorted(_PREPARE, key=len, reverse=True):
        if key in name:
            return key
    return None


def split_files(data: str, split: str):
    """The TFRecord files of `split` as the reader finds them; [] when none."""
    try:
        return list_files(data, split)
    except ValueError:
        return []


def missing_data_message(data: str, split: str) -> str:
    """What is missing, where it was looked for, and how to prepare it."""
    key = _dataset_key(data)
    where = os.path.abspath(os.path.join(data, split))
    lines = [f"no TFRecords for split {split!r}: looked for shards (*.tfrecord, *.tfrecord.gz) under {where}."]
    if key == "synthetic" or key is None and "demo" in data:
        # All 17 AUs of FaceBehaviorNet: every model's AU list is a subset.
        lines.append(f"Generate it with: python -m data_pipeline.synthetic --output {data} --au_set 17")
    else:
        if key:
            lines.append(_PREPARE[key])
        lines.append("Prepare it from the downloaded videos with: python -m data_pipeline.preprocess "
                     f"--input <videos of the {split} split> --output {os.path.join(data, split)} "
                     "(or the dataset's adapter under data_pipeline/adapters to attach the labels).")
    return "\n".join(lines)


def check_data(config: TrainConfig, splits=None):
    """Raise `FileNotFoundError` with `missing_data_message` if a split is absent
    (the training split in every `task_data` directory too)."""
    for split in splits or (config.data.train_split, config.data.eval_split):
        if not split_files(config.data.dir, split):
            raise FileNotFoundError(missing_data_message(config.data.dir, split))
    if splits is None:
        for directory in train_data_dirs(config):
            if not split_files(directory, config.data.train_split):
                raise FileNotFoundError(missing_data_message(directory, config.data.train_split))


def image_size(config: TrainConfig) -> int:
    """The model's input size (the reader resizes the 96x96 crops to it)."""
    return int(config.build_overrides.get("input_size", describe(config.model.name).defaults.get("input_size", 96)))


def reader_arguments(model) -> dict:
    """The reader arguments `model` implies: the AU columns it predicts
    (multi-task models' `au_names`) and the width of its `spectrogram` input."""
    arguments = {}
    au_names = getattr(model, "au_names", None)
    if au_names:
        arguments["au_names"] = tuple(au_names)
    for tensor in model.inputs:
        if tensor.name.split(":")[0] == "spectrogram":
            arguments["spectrogram_dim"] = int(tensor.shape[-1])
    return arguments


def _seed(config: TrainConfig, start_step: int) -> int:
    return hash((config.optimisation.seed, start_step)) % (2 ** 31)


def train_dataset_fn(config: TrainConfig, start_step: int, reader: Optional[dict] = None):
    """`fn(input_context) -> dataset` of per-replica training batches.

    reader: extra reader arguments (`reader_arguments(model)`).
    Images come as uint8 (normalised inside the step, on the device) and in
    completion order unless `data.deterministic_input`.
    With `task_batch_sizes` ([FBN] Sec. VI-B), one dataset per task (from
    `task_data`, default `data`) is zipped each step and concatenated along
    the batch axis; each replica reads its share of every task batch, and a
    task's rows keep only that task's labels (the paper's sets carry one each).
    """
    reader = dict(reader or {})
    # uint8 crops: the step normalises them on the accelerator (`modeling.model_inputs`).
    common = dict(seq_len=config.data.seq_len, image_size=image_size(config),
                  oversample=config.data.oversample, skip_corrupt_shards=config.data.skip_corrupt_shards,
                  uint8_images=True, deterministic=config.data.deterministic_input, **reader)

    def dataset_fn(input_context):
        # The reader takes the global batch and divides it by the replicas.
        if not config.multitask.task_batch_sizes:
            return make_train_dataset(config.data.dir, config.data.train_split, batch_size=config.data.batch_size,
                                seed=_seed(config, start_step), input_context=input_context, **common)
        task_data = dict(config.multitask.task_data)
        sizes = dict(config.multitask.task_batch_sizes)
        task_args = {task: dict(data=task_data.get(task, config.data.dir), split=config.data.train_split,
                                seed=_seed(config, start_step), input_context=input_context, **common)
                     for task in sizes}
        # Frame models get squeezed (B, ...) batches from seq_len-1 windows:
        # modeling.call folds (B, T) either way, so keep the time axis.
        return make_multitask_dataset(task_args, sizes, squeeze_frames=False, task_labels_only=True)

    return dataset_fn


def train_data_dirs(config: TrainConfig):
    """Every data directory the training split is read from."""
    if not config.multitask.task_batch_sizes:
        return [config.data.dir]
    task_data = dict(config.multitask.task_data)
    return sorted({task_data.get(task, config.data.dir) for task, _ in config.multitask.task_batch_sizes})


def eval_dataset(config: TrainConfig, split: str, reader: Optional[dict] = None) -> tf.data.Dataset:
    """Every frame of `split` once, in `seq_len` windows (not distributed)."""
    return make_eval_dataset(config.data.dir, split, config.data.seq_len, config.data.eval_batch,
                             image_size=image_size(config), skip_corrupt_shards=config.data.skip_corrupt_shards,
                             **(reader or {}))


def _files(config: TrainConfig, split: str) -> List[str]:
    directories = train_data_dirs(config) if split == config.data.train_split else [config.data.dir]
    return [path for directory in directories for path in split_files(directory, split)]


def skipped_shards(config: TrainConfig, splits: Sequence[str]) -> List[str]:
    """Problem lines of the shards `skip_corrupt_shards` leaves out of `splits` ([] when it is off)."""
    if not config.data.skip_corrupt_shards:
        return []
    return [line for split in splits for line in shards.partition(_files(config, split))[1]]


@contextlib.contextmanager
def naming_bad_shards(config: TrainConfig, split: str):
    """Turn TensorFlow's nameless read/parse error of a bad shard of `split` into a one-line
    ValueError naming the shard and the record (`data_pipeline.records.shards`); other errors pass."""
    try:
        yield
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
        named = shards.explain(_files(config, split), error)
        if named is None:
            raise
        raise named from None

"""Check a whole `TrainConfig` before anything is written ([issue 15] item 1).

`TrainConfig` itself checks what needs no imports (ranges, choices, the keys
of the key=value settings it knows). This adds what needs the model registry,
the coupling readings or the file system, so that a typo stops the run before
its workdir exists and the corrected command runs in the same workdir.
Every failure is one ValueError or FileNotFoundError line naming the setting.
"""

import dataclasses
import os

from affnet import models
from affnet.objectives import couplings
from data_pipeline.base.checks import suggest
from affnet.training import config as config_lib
from affnet.training import data

# CouplingConfig fields `objective.coupling_config` sets itself (the switches
# from --couplings, the table from --relatedness, the AUs from the model).
_SET_BY_TRAINING = frozenset(couplings.COUPLINGS) | {"table", "au_names"}


def coupling_option_names():
    """The keys `--coupling_options` accepts."""
    return sorted(f.name for f in dataclasses.fields(couplings.CouplingConfig) if f.name not in _SET_BY_TRAINING)


def check_model(config: config_lib.TrainConfig):
    """The model name and every build override (and the strategy's freeze_backbone)."""
    try:
        models.check_arguments(config.model.name, **config.build_overrides)
    except ValueError as error:
        raise ValueError(f"--model / --model_overrides: {error}") from None


def check_coupling_options(config: config_lib.TrainConfig):
    known = coupling_option_names()
    for key, _ in config.multitask.coupling_options:
        if key not in known:
            raise ValueError(f"--coupling_options: unknown key {key!r}{suggest(key, known)}")


def check_sources(config: config_lib.TrainConfig):
    """Every run or weights file the model is initialised from exists (a
    directory must be a training workdir: its flags.json loads)."""
    sources = [("init_weights", config.init.init_weights), ("init_rnn_from", config.init.init_rnn_from)]
    sources += [(f"init_streams {stream}", source) for stream, source in config.init.init_streams]
    for flag, source in sources:
        if not source:
            continue
        if not os.path.exists(source):
            raise FileNotFoundError(f"--{flag}={source} does not exist; train that run first (see the flagfile "
                                    f"header)")
        if os.path.isdir(source):
            config_lib.load(source)


def replica_count(distribution: str):
    """The replicas `distribution.make_strategy(distribution)` will have on this machine,
    without building the strategy; None for "multi_worker", whose strategy must be created
    before TensorFlow lists any device (the Trainer checks it then)."""
    if distribution == "default":
        return 1
    if distribution == "multi_worker":
        return None
    import tensorflow as tf  # Deferred: the other checks need no TensorFlow.

    return len(tf.config.list_logical_devices("GPU")) or len(tf.config.list_logical_devices("CPU"))


def check_replicas(config: config_lib.TrainConfig, replicas: int):
    """Every global batch (`--batch_size`, each `--task_batch_sizes` entry) divides by the replicas."""
    batches = [(f"--task_batch_sizes {task}", size) for task, size in config.multitask.task_batch_sizes]
    batches = batches or [("--batch_size", config.data.batch_size)]
    for flag, size in batches:
        if size % replicas:
            lower, upper = size // replicas * replicas, (size // replicas + 1) * replicas
            sizes = [n for n in (lower, upper) if n > 0]
            raise ValueError(f"{flag}={size} is the global batch and does not divide over the {replicas} replicas of "
                             f"--distribution={config.runtime.distribution}: pass "
                             f"{' or '.join(str(n) for n in sizes)} "
                             f"({' or '.join(str(n // replicas) for n in sizes)} per replica)")


def check(config: config_lib.TrainConfig, replicas=None):
    """Raise on the first problem of `config`; touches nothing on disk. `replicas`
    defaults to what `--distribution` gives on this machine (`replica_count`)."""
    replicas = replica_count(config.runtime.distribution) if replicas is None else replicas
    if replicas is not None:
        check_replicas(config, replicas)
    check_model(config)
    check_coupling_options(config)
    check_sources(config)
    data.check_data(config)

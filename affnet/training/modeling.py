"""Build a run's model from its `TrainConfig`, and initialise it from other runs.

Mixed precision: "bfloat16" / "float16" build the model under Keras'
`mixed_bfloat16` / `mixed_float16` policy (float32 variables, low-precision
compute); evaluation and export rebuild it in float32 and load the same
float32 variables.
"""

import contextlib
import os

import keras

from affnet import models
from affnet.models import strategy as training_strategy
from affnet.training import checkpointing
from affnet.training.config import TrainConfig

_POLICIES = {"none": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


@contextlib.contextmanager
def precision(mixed_precision: str):
    """Keras dtype policy for the layers built inside the block."""
    if mixed_precision not in _POLICIES:
        raise ValueError(f"mixed_precision must be one of {tuple(_POLICIES)}, got {mixed_precision!r}")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(_POLICIES[mixed_precision])
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def build_model(config: TrainConfig, mixed_precision=None, initialise: bool = True) -> keras.Model:
    """`affnet.models.build(config.model.name, **config.build_overrides)` under the run's
    (or the given) precision policy; with `config.model.categorical` its output is
    replaced by 7 expression classes ([AW] Sec. 5.2).

    initialise=False drops a build-time `init_weights` override (model-level
    fusion loads its sub-networks from other runs, [MC] 5.4.1): a model about
    to be restored from its own checkpoint must not need those runs.
    """
    overrides = config.build_overrides
    if not initialise:
        overrides.pop("init_weights", None)
    with precision(config.runtime.mixed_precision if mixed_precision is None else mixed_precision):
        model = models.build(config.model.name, **overrides)
        if config.model.categorical:
            from affnet.models import categorical

            model = categorical.to_categorical(model, num_classes=config.model.categorical_classes)
        return model


def model_inputs(model, features):
    """The entries of `features` that `model` takes (its named inputs)."""
    names = [getattr(t, "name", None) for t in model.inputs]
    names = [n.split(":")[0] for n in names if n]
    missing = [n for n in names if n not in features]
    if missing:
        raise ValueError(f"model {model.name!r} needs inputs {names}; features lack {missing} "
                         f"(have {sorted(features)})")
    return {n: features[n] for n in names}


def _same_architecture(donor: TrainConfig, config: TrainConfig) -> bool:
    return donor.model == config.model


def load_weights(model, source: str, config: TrainConfig = None) -> str:
    """Initialise `model` from a workdir (its best checkpoint), a `.keras` or a
    `.weights.h5` file; returns what was loaded.

    A workdir of another architecture (its flags.json says) or a `.keras`
    file is copied by layer name: layers it lacks or shapes it does not share
    stay freshly initialised and are named in the returned text ([FBN] MT-VGG
    from a VA run with a new output layer; [AW] Sec. 5.2 categorical).
    """
    from affnet.models.fusion import copy_matching_weights
    from affnet.training import config as config_lib

    if not os.path.exists(source):
        raise ValueError(f"init weights {source!r} do not exist (expected a workdir, .keras or .weights.h5)")
    if os.path.isdir(source):
        donor_config = config_lib.load(source)
        if config is None or _same_architecture(donor_config, config):
            return checkpointing.restore_model(model, source, "best")
        donor = build_model(donor_config, mixed_precision="none", initialise=False)
        path = checkpointing.restore_model(donor, source, "best")
    elif source.endswith(".keras"):
        donor, path = keras.saving.load_model(source, compile=False), source
    elif source.endswith(".weights.h5"):
        model.load_weights(source)
        return source
    else:
        raise ValueError(f"init weights {source!r} are neither a workdir, a .keras nor a .weights.h5 file")
    copied, skipped = copy_matching_weights(donor, model)
    if not copied:
        raise ValueError(f"init weights {source!r}: no layer of {model.name!r} matches one of it by name and shape")
    return f"{path} by layer name ({len(copied)} layers; kept fresh: {', '.join(skipped) or 'none'})"


def init_streams(model, streams) -> list:
    """[FBN] A/V-MT-VGG-GRU: each stream's backbone, fc1 and GRU from a
    single-stream MT-VGG-GRU run ({stream: workdir, `.keras`}); returns log lines."""
    from affnet.models import multitask
    from affnet.training import config as config_lib

    lines = []
    for stream, source in streams:
        if os.path.isdir(source):
            donor = build_model(config_lib.load(source), mixed_precision="none", initialise=False)
            checkpointing.restore_model(donor, source, "best")
        else:
            donor = source
        copied = multitask.init_stream_from(model, stream, donor)
        lines.append(f"{stream} stream: {', '.join(copied)} from {source}")
    return lines


def init_rnn(model, source: str):
    """[AW2] strategy (iii): copy the RNN and output layers of a strategy-(i) run
    (workdir, `.keras` or `.weights.h5`) into `model`."""
    if os.path.isdir(source):
        donor = model.__class__.from_config(model.get_config())
        checkpointing.restore_model(donor, source, "best")
        source_model = donor
    else:
        source_model = source
    return training_strategy.restore_rnn_from(model, source_model, include_output=True)


def is_sequence_model(config: TrainConfig) -> bool:
    """Whether the configuration takes (B, T, ...) inputs ([AW] frame CNNs do not)."""
    return models.describe(config.model.name).sequence


def call(model, features, training: bool, sequence: bool = True):
    """Run `model` on (B, T, ...) features; a frame model ([AW] Tables 4, 7,
    [FBN] MT-VGG) sees the B*T frames folded into its batch and its (B*T, ...)
    output (or each output of a multi-task dict) is unfolded."""
    inputs = model_inputs(model, features)
    if sequence:
        return model(inputs, training=training)
    import tensorflow as tf

    leading = tf.shape(inputs["images"])[:2]
    flat = {k: tf.reshape(v, tf.concat([[-1], tf.shape(v)[2:]], 0)) for k, v in inputs.items()}
    outputs = model(flat, training=training)
    unfold = lambda y: tf.reshape(y, tf.concat([leading, tf.shape(y)[1:]], 0))  # noqa: E731
    if isinstance(outputs, dict):
        return {name: unfold(y) for name, y in outputs.items()}
    return unfold(outputs)


def is_multitask(model) -> bool:
    """Whether `model` returns a dict of task outputs ([FBN] `va`, `expression`, `au`)."""
    return isinstance(model.output, dict)

"""Build a run's model from its `TrainConfig` and call it on a batch (initialising it
from other runs is `affnet.training.init`).

Mixed precision: "bfloat16" / "float16" build the model under Keras'
`mixed_bfloat16` / `mixed_float16` policy (float32 variables, low-precision
compute); evaluation and export rebuild it in float32 and load the same
float32 variables.
"""

import contextlib

import keras
import tensorflow as tf

from data_pipeline.base import checks
from affnet import models
from affnet.models import categorical
from affnet.training.config import TrainConfig
from data_pipeline.reader import transforms

_POLICIES = {"none": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


@contextlib.contextmanager
def precision(mixed_precision: str):
    """Keras dtype policy for the layers built inside the block."""
    checks.check_choice(mixed_precision, "mixed_precision", _POLICIES)
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

    initialise=False drops a build-time `init_weights` override (the sources of
    model-level fusion's sub-networks, [MC] 5.4.1, loaded by
    `affnet.training.init.init_subnetworks`): a model about to be restored from
    its own checkpoint must not need those runs.
    """
    overrides = config.build_overrides
    if not initialise:
        overrides.pop("init_weights", None)
    with precision(config.runtime.mixed_precision if mixed_precision is None else mixed_precision):
        model = models.build(config.model.name, **overrides)
        if config.model.categorical:
            model = categorical.to_categorical(model, num_classes=config.model.categorical_classes)
        return model


def model_inputs(model, features):
    """The entries of `features` that `model` takes (its named inputs); uint8
    images (the training reader's) normalised to [-1, 1] here, on the device
    that runs the model (`transforms.model_images`, the one affine map of
    training and serving)."""
    names = [getattr(t, "name", None) for t in model.inputs]
    names = [n.split(":")[0] for n in names if n]
    missing = [n for n in names if n not in features]
    if missing:
        raise ValueError(f"model {model.name!r} needs inputs {names}; features lack {missing} "
                         f"(have {sorted(features)})")
    return {n: transforms.model_images(features[n]) if n == "images" else features[n] for n in names}


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

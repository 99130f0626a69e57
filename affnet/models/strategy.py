"""Training-strategy helpers of [AW2] Sec. III-B (also [MC] Sec. 5.2):

  (i)   freeze the CNN, train the RNN:  `freeze_backbone(model)` (or the
        `freeze_backbone=True` build override);
  (ii)  random RNN, train everything:   the default build;
  (iii) RNN initialised from (i), train everything: build a fresh model and
        `restore_rnn_from(model, model_or_file_from_i)`.

Keras 3 freezing a model also puts its batch-norm layers in inference mode;
recompile after changing `trainable`.
"""

import os

import keras

from affnet.models.affwildnet import RNN_NAME

_OUTPUT_NAME = "va_output"


def _backbone(model):
    name = getattr(model, "backbone_name", None)
    if name is None:
        raise ValueError(f"model {model.name!r} has no backbone_name; expected an affnet FrameCNN or CnnRnn")
    return model.get_layer(name)


def freeze_backbone(model, frozen=True):
    """Make `model`'s backbone non-trainable (`frozen=False` thaws it); returns `model`."""
    _backbone(model).trainable = not frozen
    return model


def _is_rnn_layer(name):
    return name == RNN_NAME or name.startswith(RNN_NAME + "_")


def _load_source(model, source):
    if isinstance(source, keras.Model):
        return source, f"model {source.name!r}"
    path = os.fspath(source)
    if not os.path.exists(path):
        raise ValueError(f"restore_rnn_from: {path!r} does not exist")
    if path.endswith(".keras"):
        return keras.models.load_model(path, compile=False), path
    if path.endswith(".weights.h5"):
        # Same configuration: rebuild it and load the weights by structure.
        clone = model.__class__.from_config(model.get_config())
        try:
            clone.load_weights(path)
        except Exception as error:
            raise ValueError(f"restore_rnn_from: {path!r} does not hold weights of this configuration "
                             f"({model.name!r}): {error}") from error
        return clone, path
    raise ValueError(f"restore_rnn_from: {path!r} is neither a .keras nor a .weights.h5 file")


def restore_rnn_from(model, source, include_output=False):
    """Copy the RNN-stack weights (layers named `rnn`, `rnn_*`) and, with
    `include_output`, `va_output` from `source` into `model`, by layer name.

    Args:
      model: the target `CnnRnn`.
      source: a `keras.Model`, or a `.keras` / `.weights.h5` file of the same
        configuration (e.g. trained with strategy (i)).
    Returns the names of the layers copied.
    """
    source_model, where = _load_source(model, source)
    names = [layer.name for layer in model.layers
             if _is_rnn_layer(layer.name) or (include_output and layer.name == _OUTPUT_NAME)]
    names = [name for name in names if model.get_layer(name).weights]
    if not any(_is_rnn_layer(name) for name in names):
        raise ValueError(f"restore_rnn_from: model {model.name!r} has no layer named {RNN_NAME!r}/{RNN_NAME}_*")
    for name in names:
        try:
            source_layer = source_model.get_layer(name)
        except ValueError:
            raise ValueError(f"restore_rnn_from: {where} has no layer {name!r}") from None
        target_layer = model.get_layer(name)
        source_shapes = [tuple(w.shape) for w in source_layer.weights]
        target_shapes = [tuple(w.shape) for w in target_layer.weights]
        if source_shapes != target_shapes:
            raise ValueError(f"restore_rnn_from: layer {name!r} of {where} has weights {source_shapes}, "
                             f"the model needs {target_shapes}")
        target_layer.set_weights(source_layer.get_weights())
    return names

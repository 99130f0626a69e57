"""Training-strategy helpers of [AW2] Sec. III-B (also [MC] Sec. 5.2):

  (i)   freeze the CNN, train the RNN:  `freeze_backbone(model)` (or the
        `freeze_backbone=True` build override);
  (ii)  random RNN, train everything:   the default build;
  (iii) RNN initialised from (i), train everything: build a fresh model and
        `restore_rnn_from(model, model_or_file_from_i)`.

Keras 3 freezing a model also puts its batch-norm layers in inference mode;
recompile after changing `trainable`.
"""

from affnet.models.affwildnet import RNN_NAME
from affnet.weights import transfer

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


def restore_rnn_from(model, source, include_output=False):
    """Copy the RNN-stack weights (layers named `rnn`, `rnn_*`) and, with
    `include_output`, `va_output` from `source` into `model`, by layer name.

    Args:
      model: the target `CnnRnn`.
      source: a `keras.Model`, or a `.keras` / `.weights.h5` file of the same
        configuration (e.g. trained with strategy (i)).
    Returns the names of the layers copied.
    """
    source_model, where = transfer.load_source(source, like=model, where="restore_rnn_from")
    names = [layer.name for layer in model.layers
             if _is_rnn_layer(layer.name) or (include_output and layer.name == _OUTPUT_NAME)]
    names = [name for name in names if model.get_layer(name).weights]
    if not any(_is_rnn_layer(name) for name in names):
        raise ValueError(f"restore_rnn_from: model {model.name!r} has no layer named {RNN_NAME!r}/{RNN_NAME}_*")
    return transfer.copy_layers(source_model, model, names, f"restore_rnn_from: {where}")

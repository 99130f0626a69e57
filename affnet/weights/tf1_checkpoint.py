"""The authors' released TF1 checkpoints (dkollias/Aff-Wild-models) mapped
onto our Keras models ([AW] Tables 7-8; [code] `vggface/vggface_4096x*.py`,
`affwildnet/vggface_gru.py`, `affwildnet/resnet-gru`).

TF1 variable names, and the layers they load into:

  VGG-Face CNNs (`vggface_4096x4096x2`, `vggface_4096x2000x2`)
    conv_1 .. conv_13/{weights [3,3,in,out], biases}  -> vggface/conv1_1 .. conv5_3
    linear_1/{weights, biases}   (flattened NHWC pool5 -> 4096, ReLU) -> fc1
    linear2_1/{weights, biases}  (4096 -> 4096 or 2000, ReLU)          -> fc2
    linear3_1/{weights, biases}  (-> 2, linear)                        -> va_output
  AffWildNet-VGGFace-GRU (no landmarks, no dropout at inference)
    conv_*, linear_1 as above
    rnn_1/rnn/multi_rnn_cell/cell_{0,1}/gru_cell/{gates,candidate}/{kernel,bias}
        (`dynamic_rnn` opens the scope "rnn" inside the author's `rnn_1`) -> the RNN stack
    rnn_1/weights_rnn, rnn_1/biases_rnn (128 -> 2)                      -> va_output
  AffWildNet-ResNet-GRU (no landmarks, no FC layer)
    resnet_v1_50/... (TF-slim, `slim_resnet.slim_scopes`)               -> resnet50_slim
    rnn/rnn/multi_rnn_cell/cell_{0,1}/gru_cell/...                      -> the RNN stack
    rnn/weights_output, rnn/biases_output                               -> va_output

The layout is chosen from the model's structure (its backbone and whether it
has an RNN), not from its registry name. TF1 flattens pool5 NHWC exactly as
Keras `Flatten` does, so FC kernels load unchanged. The GRU names of our
stack come from `affnet.layers.recurrent.tf1_weight_names`. Optimizer slots
(`.../Adam`, `global_step`, ...) are ignored; other unused checkpoint
variables are reported.
"""

import dataclasses
import os
from typing import Dict, List, Tuple

import keras
import numpy as np
import tensorflow as tf

from affnet.layers.recurrent import tf1_weight_names
from affnet.models.backbones import slim_resnet

VGG_CONV_LAYERS = tuple(f"conv{block}_{i}" for block, convs in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
                        for i in range(1, convs + 1))
# TF1 `get_variable` names of the released graphs ([code]).
VGG_SCOPE_FC = ("linear_1", "linear2_1")
VGG_SCOPE_OUTPUT = "linear3_1"
VGG_GRU_SCOPE = "rnn_1"
VGG_GRU_OUTPUT = ("rnn_1/weights_rnn", "rnn_1/biases_rnn")
RESNET_SCOPE = "resnet_v1_50"
RESNET_GRU_SCOPE = "rnn"
# Names a bare slim backbone carries: its registry name and slim's own.
_SLIM_BACKBONE_NAMES = ("resnet50_slim", RESNET_SCOPE)
RESNET_GRU_OUTPUT = ("rnn/weights_output", "rnn/biases_output")
# `tf.nn.dynamic_rnn` opens variable scope "rnn" under whatever scope the
# caller is in.
DYNAMIC_RNN_SCOPE = "rnn"
_BATCH_NORM = ("gamma", "beta", "moving_mean", "moving_variance")
_OPTIMIZER_SUFFIXES = ("/Adam", "/Adam_1", "/Momentum", "/RMSProp", "/RMSProp_1", "/ExponentialMovingAverage")
_BOOKKEEPING = ("global_step", "beta1_power", "beta2_power")


def resolve_checkpoint(path):
    """The checkpoint prefix for `path`: a prefix (`model.ckpt-1000`), a file
    of it (`.index`, `.data-*`, `.meta`) or a directory (its latest)."""
    if os.path.isdir(path):
        latest = tf.train.latest_checkpoint(path)
        if latest is None:
            raise ValueError(f"{path}: directory holds no TF checkpoint (no 'checkpoint' file)")
        return latest
    for suffix in (".index", ".meta"):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    if ".data-" in os.path.basename(path):
        return path[: path.rindex(".data-")]
    return path


def read_checkpoint(path) -> Dict[str, np.ndarray]:
    """`{variable name: value}` of a TF1 checkpoint; ValueError naming `path`
    when it cannot be read."""
    prefix = resolve_checkpoint(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as error:
        raise ValueError(f"{path}: cannot read a TF checkpoint at {prefix!r} "
                         f"({str(error).splitlines()[0]})") from None
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


@dataclasses.dataclass
class LoadReport:
    """`load_tf1_checkpoint`'s result: the layout used, `(TF1 name, Keras
    variable path)` pairs assigned, and checkpoint variables not used (other
    than optimizer slots and bookkeeping)."""

    layout: str
    assigned: List[Tuple[str, str]]
    unused: List[str]


def _layer(model, name):
    try:
        return model.get_layer(name)
    except ValueError:
        raise ValueError(f"model {model.name!r} has no layer {name!r} needed by the TF1 layout; its layers are "
                         f"{[layer.name for layer in model.layers]}") from None


def _dense(layer, weights_name, biases_name):
    return [(weights_name, layer.kernel), (biases_name, layer.bias)]


def vgg_assignments(backbone):
    """conv_1 .. conv_13 -> conv1_1 .. conv5_3 of the `vggface` backbone."""
    pairs = []
    for index, name in enumerate(VGG_CONV_LAYERS, start=1):
        pairs += _dense(_layer(backbone, name), f"conv_{index}/weights", f"conv_{index}/biases")
    return pairs


def slim_resnet_assignments(backbone, scope=RESNET_SCOPE):
    """Every slim `resnet_v1_50` variable -> the `resnet50_slim` backbone."""
    pairs = []
    for layer_name, variable_scope in slim_resnet.slim_scopes(backbone, scope).items():
        layer = backbone.get_layer(layer_name)
        if isinstance(layer, keras.layers.BatchNormalization):
            pairs += [(f"{variable_scope}/{part}", getattr(layer, part)) for part in _BATCH_NORM]
        else:
            pairs.append((f"{variable_scope}/weights", layer.kernel))
    return pairs


def rnn_layers(model):
    """The model's recurrent layers (`keras.layers.RNN` and subclasses), in order."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]


def rnn_assignments(model, scope):
    """The GRU stack's weights named as TF1's `dynamic_rnn` under `scope`."""
    layers = rnn_layers(model)
    if not layers:
        raise ValueError(f"model {model.name!r} has no recurrent layer to take the TF1 '{scope}' GRU weights")
    pairs = []
    for layer in layers:
        names = tf1_weight_names(layer, f"{scope}/{DYNAMIC_RNN_SCOPE}")
        if len(names) != len(layer.weights):
            raise ValueError(f"tf1_weight_names gave {len(names)} names for the {len(layer.weights)} weights of "
                             f"{layer.name!r}")
        pairs += list(zip(names, layer.weights))
    return pairs


def tf1_assignments(model) -> Tuple[str, List[Tuple[str, "keras.Variable"]]]:
    """(layout, [(TF1 variable name, Keras variable)]) for an affnet model
    with one of the released TF1 layouts (see the module docstring)."""
    layer_names = {layer.name for layer in model.layers}
    has_rnn = bool(rnn_layers(model))
    if "landmarks_concat" in layer_names:
        raise ValueError(f"model {model.name!r} concatenates landmarks; the released TF1 models have none: "
                         "build it with landmarks=False")
    if "vggface" in layer_names:
        backbone = model.get_layer("vggface")
        pairs = vgg_assignments(backbone)
        if has_rnn:
            pairs += _dense(_layer(model, "fc1"), "linear_1/weights", "linear_1/biases")
            if "fc2" in layer_names:
                raise ValueError(f"model {model.name!r} has fc2; AffWildNet-VGGFace-GRU has one FC layer")
            pairs += rnn_assignments(model, VGG_GRU_SCOPE)
            pairs += _dense(_layer(model, "va_output"), *VGG_GRU_OUTPUT)
            return "affwildnet_vggface_gru", pairs
        for index, scope in enumerate(VGG_SCOPE_FC, start=1):
            pairs += _dense(_layer(model, f"fc{index}"), f"{scope}/weights", f"{scope}/biases")
        if "fc3" in layer_names:
            raise ValueError(f"model {model.name!r} has fc3; the released VGG-Face CNNs have two hidden FC layers")
        pairs += _dense(_layer(model, "va_output"), f"{VGG_SCOPE_OUTPUT}/weights", f"{VGG_SCOPE_OUTPUT}/biases")
        return "vggface_cnn", pairs
    if model.name in _SLIM_BACKBONE_NAMES:
        return "slim_resnet_v1_50", slim_resnet_assignments(model)
    if "resnet50_slim" in layer_names:
        pairs = slim_resnet_assignments(model.get_layer("resnet50_slim"))
        if not has_rnn:
            raise ValueError(f"model {model.name!r} has a resnet50_slim backbone but no RNN; the released "
                             "AffWildNet-ResNet-GRU needs one")
        if "fc1" in layer_names:
            raise ValueError(f"model {model.name!r} has fc1; AffWildNet-ResNet-GRU feeds the pooled ResNet "
                             "features straight into the GRU: build it with fc_units=0")
        pairs += rnn_assignments(model, RESNET_GRU_SCOPE)
        pairs += _dense(_layer(model, "va_output"), *RESNET_GRU_OUTPUT)
        return "affwildnet_resnet_gru", pairs
    raise ValueError(f"model {model.name!r} has neither a 'vggface' nor a 'resnet50_slim' backbone; the released "
                     "TF1 models use one of them")


def _ignored(name):
    return name in _BOOKKEEPING or name.endswith(_OPTIMIZER_SUFFIXES)


def load_tf1_checkpoint(model, path) -> LoadReport:
    """Assign a released TF1 checkpoint to `model` (see `tf1_assignments`).

    Every needed variable must be in the checkpoint with the exact shape;
    otherwise ValueError naming `path`, the variable and the shapes, and
    nothing is assigned.
    """
    values = read_checkpoint(path)
    layout, pairs = tf1_assignments(model)
    missing = [(name, variable) for name, variable in pairs if name not in values]
    if missing:
        name, variable = missing[0]
        available = sorted(n for n in values if not _ignored(n))
        raise ValueError(f"{path}: variable {name!r} (for {variable.path}) is not in the checkpoint "
                         f"({len(missing)} of {len(pairs)} needed variables missing; the checkpoint holds "
                         f"{available[:8]}{' ...' if len(available) > 8 else ''}); is it a {layout} checkpoint?")
    for name, variable in pairs:
        if tuple(values[name].shape) != tuple(variable.shape):
            raise ValueError(f"{path}: variable {name!r} has shape {tuple(values[name].shape)}, but "
                             f"{variable.path} needs {tuple(variable.shape)} (input size or width differ?)")
    for name, variable in pairs:
        variable.assign(values[name].astype(variable.dtype))
    used = {name for name, _ in pairs}
    unused = sorted(name for name in values if name not in used and not _ignored(name))
    return LoadReport(layout=layout, assigned=[(name, variable.path) for name, variable in pairs], unused=unused)

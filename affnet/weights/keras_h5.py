"""Pre-trained backbone weights from Keras-2 HDF5 files: keras-vggface
(VGG-Face on VGGFace1, ResNet-50 on VGGFace2) and Keras applications
ImageNet (VGG-16, DenseNet-121) ([AW] Sec. 4.2.1; [AW2] Sec. III-B: VGGFACE1,
ResNet2, DenseNet on ImageNet).

File layout read here (Keras 2 `save_weights` / `model.save`): the root, or
its `model_weights` group, has the attribute `layer_names`; each layer's group
has `weight_names`, the dataset paths of its weights in the layer's order
(kernel, bias; gamma, beta, moving_mean, moving_variance). Keras 2 allowed "/"
in layer names (keras-vggface `conv1/7x7_s2/bn`, Keras DenseNet `conv1/conv`),
so groups nest; Keras 3 forbids it, and our backbones use "_" instead.

Weights are matched by layer name and by position within a layer (Keras 1
era files such as the VGG-16 ImageNet ones name weights `..._W_1:0`), and
every shape is checked before anything is assigned. Classifier layers are
skipped: keras-vggface's `fc6` takes the 7x7x512 pool5 of a 224x224 input
(25088 inputs) and cannot fit the 3x3x512 pool5 of our 96x96 faces, and the
identity classifiers have no meaning for affect; the papers train new FC
layers on top of the pre-trained conv part ([AW] Sec. 4.2.1).

Loading also sets the backbone's `input_preprocessing` to the normalisation
the weights were trained with (BGR mean subtraction for keras-vggface and
VGG-16, torch-style for DenseNet), because our inputs stay [-1, 1] RGB.
"""

import dataclasses
import os
import re
from typing import Callable, Dict, List, Optional, Tuple

import h5py
import numpy as np

from data_pipeline.base import checks


def _same(name):
    return name


def _slash_to_underscore(name):
    return name.replace("/", "_")


def _imagenet_vgg16(name):
    # keras.applications VGG16 `block{b}_conv{i}` -> keras-vggface `conv{b}_{i}`.
    match = re.fullmatch(r"block(\d)_conv(\d)", name)
    return f"conv{match.group(1)}_{match.group(2)}" if match else name


@dataclasses.dataclass(frozen=True)
class H5Layout:
    """How one family of .h5 files maps onto one of our backbones.

    Attributes:
      backbone: the backbone name (`affnet.models.backbones`) it loads into.
      rename: file layer name -> our layer name.
      skip: file layer names deliberately not loaded (classifiers).
      input_preprocessing: the mode the weights expect.
      source: where the files come from (see checkpoints/README.md).
    """

    backbone: str
    rename: Callable[[str], str]
    skip: Tuple[str, ...]
    input_preprocessing: str
    source: str


LAYOUTS: Dict[str, H5Layout] = {
    # keras-vggface VGG16 (VGGFace1): rcmalli_vggface_tf[_notop]_vgg16.h5.
    "vggface_vgg16": H5Layout("vggface", _same, ("fc6", "fc7", "fc8"), "vggface1",
                              "keras-vggface v2.0 rcmalli_vggface_tf_[notop_]vgg16.h5"),
    # keras-vggface RESNET50 (VGGFace2): rcmalli_vggface_tf[_notop]_resnet50.h5.
    "vggface_resnet50": H5Layout("resnet50", _slash_to_underscore, ("classifier",), "vggface2",
                                 "keras-vggface v2.0 rcmalli_vggface_tf_[notop_]resnet50.h5"),
    # Keras applications ImageNet VGG16 (Caffe-converted weights, BGR means).
    "imagenet_vgg16": H5Layout("vgg16", _imagenet_vgg16, ("fc1", "fc2", "predictions"), "caffe_imagenet",
                               "keras applications vgg16_weights_tf_dim_ordering_tf_kernels[_notop].h5"),
    # Keras applications ImageNet DenseNet-121 (torch-style normalisation).
    "imagenet_densenet121": H5Layout("densenet121", _slash_to_underscore, ("fc1000",), "torch_imagenet",
                                     "keras applications densenet121_weights_tf_dim_ordering_tf_kernels"
                                     "[_notop].h5"),
}

# A layer name only one layout's files have: tells them apart when `layout`
# is not given.
_SIGNATURES = (("conv1/7x7_s2", "vggface_resnet50"), ("block1_conv1", "imagenet_vgg16"),
               ("conv1/conv", "imagenet_densenet121"), ("conv1_1", "vggface_vgg16"))


def _decode(value):
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def read_keras_h5(path) -> Dict[str, List[Tuple[str, np.ndarray]]]:
    """`{file layer name: [(weight name, array), ...]}` from a Keras-2 .h5,
    layers in file order, weights in layer order; layers without weights
    are left out. ValueError naming `path` when it is not such a file."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no such weights file")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path}: not an HDF5 file ({error})") from None
    with handle:
        root = handle
        if "layer_names" not in root.attrs and "model_weights" in root:
            root = root["model_weights"]
        if "layer_names" not in root.attrs:
            raise ValueError(f"{path}: not a Keras-2 weights file (no 'layer_names' attribute at the root "
                             "or under 'model_weights')")
        layers = {}
        for layer_name in map(_decode, root.attrs["layer_names"]):
            if layer_name not in root:
                raise ValueError(f"{path}: layer {layer_name!r} is listed in 'layer_names' but has no group")
            group = root[layer_name]
            weights = []
            for weight_name in map(_decode, group.attrs.get("weight_names", [])):
                if weight_name not in group:
                    raise ValueError(f"{path}: weight {weight_name!r} of layer {layer_name!r} is listed but missing")
                weights.append((weight_name, np.asarray(group[weight_name])))
            if weights:
                layers[layer_name] = weights
    return layers


def detect_layout(layers, path="<weights>") -> str:
    """The `LAYOUTS` key whose signature layer the file holds."""
    for signature, layout in _SIGNATURES:
        if signature in layers:
            return layout
    raise ValueError(f"{path}: cannot tell which network these weights are for; its first layers are "
                     f"{list(layers)[:5]}; pass layout= one of {sorted(LAYOUTS)}")


def find_backbone(model, backbone_name):
    """`model` itself if it is the backbone `backbone_name`, else its nested
    layer of that name."""
    if model.name == backbone_name:
        return model
    try:
        return model.get_layer(backbone_name)
    except ValueError:
        raise ValueError(f"model {model.name!r} has no backbone {backbone_name!r}; its layers are "
                         f"{[layer.name for layer in model.layers]}") from None


@dataclasses.dataclass
class LoadReport:
    """What `load_keras_h5` did: our layer names loaded, file layers skipped
    (classifiers), and our weighted backbone layers left untouched."""

    layout: str
    loaded: List[str]
    skipped: List[str]
    untouched: List[str]


def set_input_preprocessing(model, backbone, mode):
    """Switch the backbone's `input_preprocessing` layer to `mode`.

    The layer reads its mode when traced, so the compiled functions of the
    enclosing model are reset; `model`'s recorded `input_preprocessing`
    argument (affnet models keep their constructor arguments in
    `_arguments`) is updated so `get_config` / `.keras` round trips rebuild
    the same preprocessing.
    """
    layer = backbone.get_layer("input_preprocessing")
    layer.mode = mode
    for owner in {id(model): model, id(backbone): backbone}.values():
        arguments = getattr(owner, "_arguments", None)
        if isinstance(arguments, dict) and "input_preprocessing" in arguments:
            arguments["input_preprocessing"] = mode
        for attribute in ("train_function", "test_function", "predict_function"):
            if getattr(owner, attribute, None) is not None:
                setattr(owner, attribute, None)


def load_keras_h5(model, path, layout: Optional[str] = None, set_preprocessing=True) -> LoadReport:
    """Load a keras-vggface / Keras ImageNet .h5 into `model`'s backbone.

    Args:
      model: a backbone (`affnet.models.backbones`) or a model nesting one.
      path: the .h5 file.
      layout: a `LAYOUTS` key; detected from the file's layer names if None.
      set_preprocessing: set the backbone's `input_preprocessing` to the
        layout's mode (see `set_input_preprocessing`); if False, a model built
        with another mode raises ValueError instead.

    Every file layer outside the layout's classifier must exist in the
    backbone with the same weight count and shapes (ValueError naming `path`,
    the layer and the shapes otherwise); nothing is assigned unless all match.
    """
    layers = read_keras_h5(path)
    if layout is None:
        layout = detect_layout(layers, path)
    checks.check_choice(layout, "layout", LAYOUTS)
    spec = LAYOUTS[layout]
    backbone = find_backbone(model, spec.backbone)
    targets = {layer.name: layer for layer in backbone.layers if layer.weights}
    plan, skipped = [], []
    for file_name, weights in layers.items():
        if file_name in spec.skip:
            skipped.append(file_name)
            continue
        ours = spec.rename(file_name)
        if ours not in targets:
            raise ValueError(f"{path}: layer {file_name!r} (ours: {ours!r}) has no counterpart in backbone "
                             f"{backbone.name!r}; is this a {layout} file?")
        variables = targets[ours].weights
        file_shapes = [tuple(array.shape) for _, array in weights]
        our_shapes = [tuple(variable.shape) for variable in variables]
        if file_shapes != our_shapes:
            raise ValueError(f"{path}: layer {file_name!r} has weights {[n for n, _ in weights]} of shapes "
                             f"{file_shapes}, but our layer {ours!r} needs {our_shapes} (width or input "
                             "size differ?)")
        plan.append((ours, variables, [array for _, array in weights]))
    if not plan:
        raise ValueError(f"{path}: no loadable layers for layout {layout!r}")
    preprocessing = backbone.get_layer("input_preprocessing")
    if preprocessing.mode != spec.input_preprocessing and not set_preprocessing:
        raise ValueError(f"{path}: {layout} weights expect input_preprocessing={spec.input_preprocessing!r}, "
                         f"but backbone {backbone.name!r} uses {preprocessing.mode!r}")
    for _, variables, arrays in plan:
        for variable, array in zip(variables, arrays):
            variable.assign(array.astype(variable.dtype))
    if preprocessing.mode != spec.input_preprocessing:
        set_input_preprocessing(model, backbone, spec.input_preprocessing)
    loaded = [name for name, _, _ in plan]
    return LoadReport(layout=layout, loaded=loaded, skipped=skipped,
                      untouched=sorted(set(targets) - set(loaded)))

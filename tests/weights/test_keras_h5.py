"""keras-vggface and Keras ImageNet .h5 loading, on files written here in the
Keras-2 HDF5 layout under the original layer names; outputs compared, to 1e-5,
with reference networks fed the originals' preprocessing: keras.applications
VGG16 / DenseNet121, and keras-vggface's RESNET50 transcribed in plain Keras
(plus a numpy forward of its stem). Our inputs come from the reader's
`normalize_images`."""

import h5py
import keras
import numpy as np
import pytest

from affnet.models import backbones
from affnet.models.frame_cnn import FrameCNN
from affnet.weights import keras_h5
from data_pipeline.reader import transforms

VGGFACE1_BGR_MEANS = np.array([93.5940, 104.7624, 129.1863], dtype="float32")


def write_keras2_h5(path, layers, full_model=False):
    """A Keras-2 `save_weights` file: root attr `layer_names`, one group per
    layer (nested when the name has "/") with attr `weight_names`; under
    `model_weights` when `full_model` (Keras-2 `model.save`)."""
    with h5py.File(path, "w") as handle:
        root = handle.create_group("model_weights") if full_model else handle
        root.attrs["layer_names"] = [name.encode("utf8") for name, _ in layers]
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.1.5"
        for name, weights in layers:
            group = root.create_group(name)
            group.attrs["weight_names"] = [weight_name.encode("utf8") for weight_name, _ in weights]
            for weight_name, array in weights:
                group.create_dataset(weight_name, data=array)


def conv_dense_layers(reference, kernel="{}/kernel:0", bias="{}/bias:0"):
    """`write_keras2_h5`'s layer list of a Keras model of conv / dense layers, each weight named
    by formatting `kernel` / `bias` with its layer's name (Keras 2: "<layer>/kernel:0")."""
    return [(layer.name, [(kernel.format(layer.name), np.asarray(layer.kernel)),
                          (bias.format(layer.name), np.asarray(layer.bias))] if layer.weights else [])
            for layer in reference.layers]


def _randomise(model):
    for weight in model.weights:
        weight.assign(np.random.normal(0.0, 0.05, weight.shape).astype("float32"))
    return model


def _pixels_and_x(n, size):
    """Random uint8 RGB frames as float pixels (the references' input) and as the
    reader gives them to affnet models."""
    pixels = np.random.randint(0, 256, (n, size, size, 3)).astype("uint8")
    return pixels.astype("float32"), np.asarray(transforms.normalize_images(pixels))


def _keras_vgg16_reference(size):
    return _randomise(keras.applications.VGG16(include_top=False, weights=None, input_shape=(size, size, 3)))


def _block_to_vggface(name):
    block, conv = name[len("block"):].split("_conv")
    return f"conv{block}_{conv}"


def test_keras_vggface_vgg16_matches_reference_with_vggface1_preprocessing(tmp_path):
    reference = _keras_vgg16_reference(32)
    layers = [("input_1", [])]
    for layer in reference.layers[1:]:
        if layer.weights:
            name = _block_to_vggface(layer.name)
            layers.append((name, [(f"{name}/kernel:0", np.asarray(layer.kernel)),
                                  (f"{name}/bias:0", np.asarray(layer.bias))]))
        else:
            layers.append((f"pool{layer.name[5]}", []))
    # The top (rcmalli_vggface_tf_vgg16.h5): fc6 takes 224's 7x7x512 pool5 and
    # is skipped; its shape is shrunk here only to keep the fixture small.
    layers += [("flatten", []), ("fc6", [("fc6/kernel:0", np.ones((8, 4), "float32")),
                                         ("fc6/bias:0", np.ones(4, "float32"))]),
               ("fc8", [("fc8/kernel:0", np.ones((4, 2622), "float32")), ("fc8/bias:0", np.ones(2622, "float32"))])]
    path = tmp_path / "rcmalli_vggface_tf_vgg16.h5"
    write_keras2_h5(path, layers)

    ours = backbones.vggface(input_size=32)
    report = keras_h5.load_keras_h5(ours, str(path))
    assert report.layout == "vggface_vgg16"
    assert report.skipped == ["fc6", "fc8"] and len(report.loaded) == 13 and report.untouched == []
    assert ours.get_layer("input_preprocessing").mode == "vggface1"
    pixels, x = _pixels_and_x(2, 32)
    # keras-vggface preprocess_input(version=1): RGB -> BGR, minus the BGR means.
    expected = reference(pixels[..., ::-1] - VGGFACE1_BGR_MEANS)
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(expected), rtol=1e-5, atol=1e-5)


def test_imagenet_vgg16_keras1_names_into_a_nested_frame_cnn(tmp_path):
    reference = _keras_vgg16_reference(32)
    # Keras-1 era files (vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5) name weights `<layer>_W_1:0`.
    layers = conv_dense_layers(reference, kernel="{}_W_1:0", bias="{}_b_1:0")
    path = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
    write_keras2_h5(path, layers)

    model = FrameCNN(backbone="vgg16", input_size=32, fc_units=(8,), dropout=0.0, landmarks=False)
    report = keras_h5.load_keras_h5(model, str(path))
    assert report.layout == "imagenet_vgg16" and len(report.loaded) == 13
    assert model.get_config()["input_preprocessing"] == "caffe_imagenet"
    pixels, x = _pixels_and_x(2, 32)
    expected = reference(keras.applications.vgg16.preprocess_input(pixels.copy()))
    np.testing.assert_allclose(np.asarray(model.backbone(x)), np.asarray(expected), rtol=1e-5, atol=1e-5)
    # The rebuilt model keeps the preprocessing the weights need.
    rebuilt = FrameCNN.from_config(model.get_config())
    assert rebuilt.backbone.get_layer("input_preprocessing").mode == "caffe_imagenet"


def test_imagenet_densenet121_full_model_file(tmp_path):
    reference = _randomise(keras.applications.DenseNet121(include_top=False, weights=None, input_shape=(32, 32, 3)))
    for layer in reference.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_variance.assign(np.random.uniform(0.5, 1.5, layer.moving_variance.shape))
    keras2_names = {"conv1_conv": "conv1/conv", "conv1_bn": "conv1/bn", "conv1_relu": "conv1/relu"}
    layers = []
    for layer in reference.layers:
        name = keras2_names.get(layer.name, layer.name)
        layers.append((name, [(f"{name}/{w.name}:0", np.asarray(w)) for w in layer.weights]))
    layers.append(("fc1000", [("fc1000/kernel:0", np.zeros((1024, 1000), "float32"))]))
    path = tmp_path / "densenet121_weights_tf_dim_ordering_tf_kernels.h5"
    write_keras2_h5(path, layers, full_model=True)

    ours = backbones.densenet121(input_size=32)
    report = keras_h5.load_keras_h5(ours, str(path))
    assert report.layout == "imagenet_densenet121" and report.skipped == ["fc1000"] and report.untouched == []
    pixels, x = _pixels_and_x(2, 32)
    expected = reference(keras.applications.densenet.preprocess_input(pixels.copy()))
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(expected), rtol=1e-5, atol=1e-5)


def _keras_vggface_resnet50_names():
    """keras-vggface RESNET50 weighted layer names, transcribed from its models.py."""
    names = ["conv1/7x7_s2", "conv1/7x7_s2/bn"]
    for stage, blocks in ((2, 3), (3, 4), (4, 6), (5, 3)):
        for block in range(1, blocks + 1):
            convs = ["1x1_reduce", "3x3", "1x1_increase"] + (["1x1_proj"] if block == 1 else [])
            for conv in convs:
                names += [f"conv{stage}_{block}_{conv}", f"conv{stage}_{block}_{conv}/bn"]
    return names


def test_keras_vggface_resnet50_loads_every_weight_and_sets_vggface2(tmp_path):
    ours = backbones.resnet50(input_size=32, width=1 / 8)
    layers, arrays = [], {}
    for name in _keras_vggface_resnet50_names():
        target = ours.get_layer(name.replace("/", "_"))
        weights = [(f"{name}/{w.name}:0", np.random.normal(0, 0.1, w.shape).astype("float32")) for w in target.weights]
        layers.append((name, weights))
        arrays[target.name] = [a for _, a in weights]
    layers.append(("classifier", [("classifier/kernel:0", np.zeros((16, 8631), "float32"))]))
    path = tmp_path / "rcmalli_vggface_tf_resnet50.h5"
    write_keras2_h5(path, layers)

    report = keras_h5.load_keras_h5(ours, str(path))
    assert report.layout == "vggface_resnet50" and report.skipped == ["classifier"] and report.untouched == []
    assert len(report.loaded) == 2 * 53
    for name, expected in arrays.items():
        for weight, array in zip(ours.get_layer(name).weights, expected):
            np.testing.assert_array_equal(np.asarray(weight), array)
    assert ours.get_layer("input_preprocessing").mode == "vggface2"


VGGFACE2_BGR_MEANS = np.array([91.4953, 103.8827, 131.0912], dtype="float32")


def _vggface_resnet50_file(path, model, seed=0):
    """A keras-vggface RESNET50 .h5 with random weights shaped for `model` (a
    narrow ResNet-50): He-scaled kernels, batch norms with positive variances
    (a negative one would give NaN). Returns {file layer name: arrays}."""
    rng = np.random.default_rng(seed)
    layers, arrays = [], {}
    for name in _keras_vggface_resnet50_names():
        target = model.get_layer(name.replace("/", "_"))
        if name.endswith("/bn"):
            channels = target.weights[0].shape[0]
            weights = [rng.uniform(0.5, 1.5, channels), rng.normal(0, 0.1, channels),
                       rng.normal(0, 0.1, channels), rng.uniform(0.5, 1.5, channels)]
        else:
            shape = target.weights[0].shape
            weights = [rng.normal(0, np.sqrt(2.0 / np.prod(shape[:3])), shape)]
        weights = [w.astype("float32") for w in weights]
        arrays[name] = weights
        layers.append((name, [(f"{name}/{w.name}:0", a) for w, a in zip(target.weights, weights)]))
    write_keras2_h5(path, layers)
    return arrays


def _keras_vggface_resnet50_reference(arrays, size):
    """keras-vggface `RESNET50(include_top=False)` transcribed in plain Keras
    (Conv2D without bias, BatchNormalization at Keras' default epsilon 1e-3,
    valid 3x3/2 max pool, the stride on the first 1x1), filter counts read from
    the file's kernels and weights set from its arrays by file name: nothing
    from our builder or loader. It stops before keras-vggface's 7x7
    `avg_pool`, which needs a 224 input; our backbone's output is that layer's
    input, the stage-5 feature map."""
    def conv_bn(x, name, strides=1, padding="valid", relu=True):
        kernel = arrays[name][0]
        conv = keras.layers.Conv2D(kernel.shape[-1], kernel.shape[:2], strides=strides, padding=padding,
                                   use_bias=False)
        x = conv(x)
        conv.set_weights(arrays[name])
        bn = keras.layers.BatchNormalization(axis=3)
        x = bn(x)
        bn.set_weights(arrays[name + "/bn"])
        return keras.layers.Activation("relu")(x) if relu else x

    def block(x, stage, index, strides):
        prefix = f"conv{stage}_{index}"
        y = conv_bn(x, f"{prefix}_1x1_reduce", strides=strides)
        y = conv_bn(y, f"{prefix}_3x3", padding="same")
        y = conv_bn(y, f"{prefix}_1x1_increase", relu=False)
        shortcut = conv_bn(x, f"{prefix}_1x1_proj", strides=strides, relu=False) if index == 1 else x
        return keras.layers.Activation("relu")(keras.layers.add([y, shortcut]))

    inputs = keras.Input((size, size, 3))
    x = conv_bn(inputs, "conv1/7x7_s2", strides=2, padding="same")
    x = keras.layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    for stage, blocks, stride in ((2, 3, 1), (3, 4, 2), (4, 6, 2), (5, 3, 2)):
        for index in range(1, blocks + 1):
            x = block(x, stage, index, stride if index == 1 else 1)
    return keras.Model(inputs, x)


def _numpy_stem(bgr, arrays):
    """conv1/7x7_s2 (TF "same" at stride 2: 2 rows/cols before, 3 after at
    32) -> batch norm (x - mean) / sqrt(var + 1e-3) * gamma + beta -> ReLU ->
    3x3/2 valid max pool, in float64."""
    kernel = arrays["conv1/7x7_s2"][0].astype("float64")
    gamma, beta, mean, var = (a.astype("float64") for a in arrays["conv1/7x7_s2/bn"])
    n, size = bgr.shape[0], bgr.shape[1]
    out = -(-size // 2)
    pad = max((out - 1) * 2 + 7 - size, 0)
    padded = np.pad(bgr.astype("float64"), ((0, 0), (pad // 2, pad - pad // 2), (pad // 2, pad - pad // 2), (0, 0)))
    conv = np.zeros((n, out, out, kernel.shape[-1]))
    for i in range(7):
        for j in range(7):
            conv += padded[:, i:i + 2 * out:2, j:j + 2 * out:2, :] @ kernel[i, j]
    y = np.maximum((conv - mean) / np.sqrt(var + 1e-3) * gamma + beta, 0.0)
    pooled = (out - 3) // 2 + 1
    return np.max([y[:, i:i + 2 * pooled:2, j:j + 2 * pooled:2] for i in range(3) for j in range(3)], axis=0)


def test_keras_vggface_resnet50_output_matches_an_independent_reference(tmp_path):
    ours = backbones.resnet50(input_size=32, width=1 / 8)
    path = tmp_path / "rcmalli_vggface_tf_notop_resnet50.h5"
    arrays = _vggface_resnet50_file(path, ours)
    report = keras_h5.load_keras_h5(ours, str(path))
    assert report.layout == "vggface_resnet50" and report.untouched == []
    pixels, x = _pixels_and_x(2, 32)
    # keras-vggface preprocess_input(version=2): RGB -> BGR, minus the VGGFace2 BGR means.
    bgr = pixels[..., ::-1] - VGGFACE2_BGR_MEANS
    stem = keras.Model(ours.input, ours.get_layer("pool1_3x3_s2").output)
    expected_stem = _numpy_stem(bgr, arrays)
    # float32 sums of 147 pixel-scale products against float64: the absolute error follows the range
    # of the activations (~400 here, error ~1e-4), not each value; a wrong epsilon is off by ~0.2.
    np.testing.assert_allclose(np.asarray(stem(x)), expected_stem, rtol=1e-5,
                               atol=1e-5 * np.abs(expected_stem).max())
    expected = np.asarray(_keras_vggface_resnet50_reference(arrays, 32)(bgr))
    assert expected.shape == (2, 1, 1, 256) and expected.std() > 0.1
    np.testing.assert_allclose(np.asarray(ours(x)), expected, rtol=1e-5, atol=1e-5)


def test_errors_name_the_file_and_the_problem(tmp_path):
    reference = _keras_vgg16_reference(32)
    layers = conv_dense_layers(reference)
    path = tmp_path / "vgg16_notop.h5"
    write_keras2_h5(path, layers)
    narrow = backbones.vgg16(input_size=32, width=0.5)
    with pytest.raises(ValueError, match=r"vgg16_notop\.h5: layer 'block1_conv1'.*\(3, 3, 3, 64\).*\(3, 3, 3, 32\)"):
        keras_h5.load_keras_h5(narrow, str(path))
    with pytest.raises(ValueError, match=r"vgg16_notop\.h5.*expect input_preprocessing='caffe_imagenet'"):
        keras_h5.load_keras_h5(backbones.vgg16(input_size=32), str(path), set_preprocessing=False)
    with pytest.raises(ValueError, match="has no backbone 'vgg16'"):
        keras_h5.load_keras_h5(backbones.vggface(input_size=32), str(path))
    with pytest.raises(ValueError, match=r"vgg16_notop\.h5: layer 'block1_conv1' .*no counterpart"):
        keras_h5.load_keras_h5(backbones.vggface(input_size=32), str(path), layout="vggface_vgg16")

    missing = tmp_path / "missing.h5"
    with pytest.raises(ValueError, match="missing.h5: no such weights file"):
        keras_h5.read_keras_h5(str(missing))
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(ValueError, match="text.h5: not an HDF5 file"):
        keras_h5.read_keras_h5(str(text))
    bare = tmp_path / "bare.h5"
    with h5py.File(bare, "w") as handle:
        handle.create_dataset("x", data=np.zeros(3))
    with pytest.raises(ValueError, match="bare.h5: not a Keras-2 weights file"):
        keras_h5.read_keras_h5(str(bare))
    unknown = tmp_path / "unknown.h5"
    write_keras2_h5(unknown, [("dense_1", [("dense_1/kernel:0", np.zeros((2, 2), "float32"))])])
    with pytest.raises(ValueError, match="unknown.h5: cannot tell which network"):
        keras_h5.load_keras_h5(backbones.vgg16(input_size=32), str(unknown))

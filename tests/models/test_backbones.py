"""Backbones: layouts and parameter counts from the papers' tables, names the
weight loaders rely on, input preprocessing, argument checks."""

import keras
import numpy as np
import pytest

from affnet.models import backbones
from affnet.models.backbones.preprocessing import InputPreprocessing
from data_pipeline.reader import transforms
from paper_counts import VGG_TABLE, cnn_m_params, resnet50_params, vgg_conv_params


def test_vgg_param_count_matches_table_7_and_the_stated_total():
    assert vgg_conv_params() == 14_714_688
    model = backbones.vggface()
    assert model.count_params() == vgg_conv_params()
    assert model.output.shape[1:] == (3, 3, 512)
    expected = [f"conv{b}_{i}" for b, (n, _) in enumerate(VGG_TABLE, 1) for i in range(1, n + 1)]
    convs = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs == expected
    assert [layer.name for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)] == [
        f"pool{b}" for b in range(1, 6)]
    assert model.layers[1].name == "input_preprocessing"


def test_resnet50_layout():
    model = backbones.resnet50()
    assert model.count_params() == resnet50_params() == 23_561_152
    assert model.output.shape[1:] == (3, 3, 2048)
    for name in ("conv1_7x7_s2", "conv1_7x7_s2_bn", "conv2_1_1x1_proj", "conv2_1_1x1_proj_bn",
                 "conv3_4_3x3", "conv4_6_1x1_increase_bn", "conv5_3_1x1_reduce"):
        model.get_layer(name)
    pooled = backbones.resnet50(input_size=32, width=1 / 16, pooling="avg")
    assert pooled.output.shape[1:] == (128,)


def test_densenet121_matches_keras_applications_weight_by_weight():
    ours = backbones.densenet121()
    reference = keras.applications.DenseNet121(include_top=False, weights=None, input_shape=(96, 96, 3))
    shapes = lambda m: {l.name: [tuple(w.shape) for w in l.weights] for l in m.layers if l.weights}  # noqa: E731
    assert shapes(ours) == shapes(reference)
    # Keras documents 8,062,504 parameters with the 1000-way top (1024 * 1000 + 1000).
    assert ours.count_params() == 8_062_504 - (1024 * 1000 + 1000)
    assert ours.output.shape[1:] == (3, 3, 1024)


def test_cnn_m_table_4():
    model = backbones.cnn_m()
    assert model.count_params() == cnn_m_params()
    # 96 -VALID 7/2-> 45 -VALID 3/2-> 22 -SAME /2-> 11 -SAME 3/2-> 6 -SAME 2/2-> 3
    assert [model.get_layer(n).output.shape[1] for n in ("conv1", "pool1", "conv2", "pool2", "pool5")] == [
        45, 22, 11, 6, 3]


@pytest.mark.parametrize("name", ["vggface", "vgg16", "resnet50", "densenet121", "cnn_m"])
def test_tiny_backbones_run_and_are_named(name):
    model = backbones.build_backbone(name, input_size=32, width=1 / 16)
    assert model.name == name
    out = model(np.random.uniform(-1, 1, (2, 32, 32, 3)).astype("float32"))
    assert out.shape[0] == 2 and len(out.shape) == 4
    assert np.all(np.isfinite(np.asarray(out)))


def test_vgg_pool_padding_same_vs_valid_at_48():
    same = backbones.vggface(input_size=48, width=1 / 16)
    valid = backbones.vggface(input_size=48, width=1 / 16, pool_padding="valid")
    assert same.output.shape[1:3] == (2, 2)
    assert valid.output.shape[1:3] == (1, 1)


VGGFACE1_BGR, VGGFACE2_BGR, CAFFE_BGR = (93.5940, 104.7624, 129.1863), (91.4953, 103.8827, 131.0912), \
    (103.939, 116.779, 123.68)
TORCH_MEAN, TORCH_STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def test_preprocessing_modes():
    pixels = np.array([[[[0, 128, 255]]]], dtype="uint8")  # one RGB pixel
    x = np.asarray(transforms.normalize_images(pixels))
    out = lambda mode: np.asarray(InputPreprocessing(mode)(x))[0, 0, 0]  # noqa: E731
    np.testing.assert_allclose(out("none"), x[0, 0, 0])
    for mode, means in (("vggface1", VGGFACE1_BGR), ("vggface2", VGGFACE2_BGR), ("caffe_imagenet", CAFFE_BGR)):
        np.testing.assert_allclose(out(mode), np.array([255, 128, 0]) - means, rtol=0, atol=1e-4)
    np.testing.assert_allclose(out("torch_imagenet"), (np.array([0, 128, 255]) / 255 - TORCH_MEAN) / TORCH_STD,
                               rtol=0, atol=1e-5)
    layer = InputPreprocessing.from_config(InputPreprocessing("vggface2", name="p").get_config())
    assert layer.mode == "vggface2"


def test_preprocessing_inverts_the_reader_normalisation():
    """Every uint8 value, normalised by the reader and de-normalised by the
    backbone, comes back before the mean subtraction (x * 128 + 128 would give
    256 for 255)."""
    ramp = np.arange(256)
    pixels = np.stack([ramp, ramp[::-1], np.roll(ramp, 85)], -1).astype("uint8").reshape(1, 16, 16, 3)
    x = transforms.normalize_images(pixels)
    for mode, means in (("vggface1", VGGFACE1_BGR), ("vggface2", VGGFACE2_BGR), ("caffe_imagenet", CAFFE_BGR)):
        bgr = np.asarray(InputPreprocessing(mode)(x)) + np.array(means, "float32")
        np.testing.assert_allclose(bgr[..., ::-1], pixels, rtol=0, atol=1e-4, err_msg=mode)
    rgb01 = np.asarray(InputPreprocessing("torch_imagenet")(x)) * TORCH_STD + TORCH_MEAN
    np.testing.assert_allclose(rgb01 * 255, pixels, rtol=0, atol=1e-4)


def test_preprocessing_runs_in_float32_under_mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = backbones.vggface(input_size=32, width=1 / 16, input_preprocessing="vggface1")
        assert model.get_layer("input_preprocessing").compute_dtype == "float32"
        assert model.get_layer("conv1_1").compute_dtype == "bfloat16"
        assert model(np.zeros((1, 32, 32, 3), "float32")).dtype == "bfloat16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="vgg19"), "vgg19"),
    (dict(name="vggface", input_size=16), "16"),
    (dict(name="vggface", width=0), "0"),
    (dict(name="resnet50", input_preprocessing="imagenet"), "imagenet"),
])
def test_bad_arguments_name_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        backbones.build_backbone(**kwargs)


def test_slim_backbone_refuses_preprocessing():
    with pytest.raises(ValueError, match="vggface2"):
        backbones.build_backbone("resnet50_slim", input_preprocessing="vggface2")

"""The conversion CLI end to end: source file -> saved affnet weights ->
rebuilt model with the same outputs as the source network."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import tf1_reference as ref
from affnet import models
from affnet.models import backbones
from affnet.weights import convert
from data_pipeline.base import key_values
from test_keras_h5 import write_keras2_h5

TINY_VGG = ["--set", "input_size=32", "--set", "width=0.125", "--set", "fc_units=(48, 20)"]
TINY_VGG_OVERRIDES = dict(input_size=32, width=0.125, fc_units=(48, 20))


def test_tf1_cli_writes_weights_that_reproduce_the_tf1_graph(tmp_path, capsys):
    images = np.random.uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    expected, path = ref.run_and_save(ref.vggface_cnn, ref.released_inputs(images),
                                      tmp_path / "released" / "model.ckpt-42",
                                      fc_units=(48, 20), width=0.125)
    output = tmp_path / "out" / "vggface_4096x2000x2.weights.h5"
    assert convert.main(["--format=tf1", f"--checkpoint={tmp_path / 'released'}", "--model=vggface_4096x2000x2",
                         f"--output={output}", *TINY_VGG]) == 0
    assert "(vggface_cnn): 32 tensors/layers loaded" in capsys.readouterr().out
    model = models.build("vggface_4096x2000x2", **TINY_VGG_OVERRIDES)
    model.load_weights(str(output))
    np.testing.assert_allclose(np.asarray(model({"images": images})), expected, rtol=1e-5, atol=1e-5)


def test_module_entry_point_runs(tmp_path):
    images = np.random.uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    _, path = ref.run_and_save(ref.vggface_cnn, images, tmp_path / "model.ckpt", fc_units=(48, 20), width=0.125)
    output = tmp_path / "converted.weights.h5"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run([sys.executable, "-m", "affnet.weights.convert", "--format=tf1", f"--checkpoint={path}",
                             "--model=vggface_4096x2000x2", f"--output={output}", *TINY_VGG],
                            capture_output=True, text=True, env=env, cwd=os.getcwd())
    assert result.returncode == 0, result.stderr[-2000:]
    assert output.exists() and "rebuild with affnet.models.build('vggface_4096x2000x2'" in result.stdout


def test_vggface_h5_into_a_keras_file(tmp_path):
    source = backbones.vggface(input_size=32, width=0.125)
    for weight in source.weights:
        weight.assign(np.random.normal(0, 0.1, weight.shape))
    layers = [(layer.name, [(f"{layer.name}/{w.name}:0", np.asarray(w)) for w in layer.weights])
              for layer in source.layers[2:]]
    path = tmp_path / "rcmalli_vggface_tf_notop_vgg16.h5"
    write_keras2_h5(path, layers)
    output = tmp_path / "vggface.keras"
    model, report, used = convert.convert("vggface_h5", str(path), "vggface_4096x2000x2", str(output),
                                          **TINY_VGG_OVERRIDES)
    assert report.layout == "vggface_vgg16" and used["input_preprocessing"] == "vggface1"
    restored = keras.saving.load_model(str(output))
    assert restored.backbone.get_layer("input_preprocessing").mode == "vggface1"
    np.testing.assert_array_equal(np.asarray(restored.backbone.get_layer("conv5_3").kernel),
                                  np.asarray(source.get_layer("conv5_3").kernel))
    with pytest.raises(ValueError, match=r"rcmalli_vggface_tf_notop_vgg16\.h5: holds vggface_vgg16 weights"):
        convert.convert("imagenet_h5", str(path), "vggface_4096x2000x2", **TINY_VGG_OVERRIDES)


def test_bad_arguments():
    with pytest.raises(ValueError, match="format must be one of .* got 'caffe'"):
        convert.convert("caffe", "x", "vggface_4096x2000x2")
    with pytest.raises(ValueError, match="output must end in '.weights.h5' or '.keras', got 'w.h5'"):
        convert.convert("tf1", "x", "vggface_4096x2000x2", "w.h5")
    with pytest.raises(ValueError, match="model 'cnn_m' has no released TF1 checkpoint"):
        convert.convert("tf1", "x", "cnn_m")
    with pytest.raises(ValueError, match="--set: 'width' is not of the form key=value"):
        key_values.parse(["width"], "--set")
    assert key_values.parse(["width=0.5", "backbone=resnet50_slim"], "--set") == dict(width=0.5,
                                                                                      backbone="resnet50_slim")


def test_export_command_parses_back_to_the_overrides():
    from affnet.training.config import parse_overrides

    overrides = dict(fc_units=(48, 20), width=0.125, backbone="resnet50_slim", input_preprocessing="tf1")
    command = convert.export_command("vggface_4096x2000x2", "w.weights.h5", overrides)
    assert command.startswith("python launch/export.py --weights=w.weights.h5 --output=exports/vggface_4096x2000x2 "
                              "--model=vggface_4096x2000x2 --model_overrides=")
    assert parse_overrides(command.split("--model_overrides=")[1]) == overrides
    assert "--model" not in convert.export_command("m", "m.keras", overrides)

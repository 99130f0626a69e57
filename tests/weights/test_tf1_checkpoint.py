"""The TF1 checkpoint converter against independent tf.compat.v1 graphs of the
released models: same random weights, same input, outputs equal to 1e-5."""

import time

import numpy as np
import pytest

import tf1_reference as ref
from affnet import models
from affnet.models.backbones import slim_resnet
from affnet.weights import tf1_checkpoint

TOLERANCE = dict(rtol=1e-5, atol=1e-5)


def _images(*shape):
    return np.random.uniform(-1, 1, shape).astype("float32")


def test_vggface_cnn_parity_at_32(tmp_path):
    images = _images(3, 32, 32, 3)
    expected, path = ref.run_and_save(ref.vggface_cnn, ref.released_inputs(images), tmp_path / "vgg.ckpt",
                                      fc_units=(48, 20),
                                      width=1 / 8)
    model = models.build("vggface_4096x2000x2", input_size=32, width=1 / 8, fc_units=(48, 20))
    report = tf1_checkpoint.load_tf1_checkpoint(model, path)
    assert report.layout == "vggface_cnn"
    assert len(report.assigned) == 2 * 13 + 3 * 2 and report.unused == []
    np.testing.assert_allclose(np.asarray(model({"images": images})), expected, **TOLERANCE)
    # Not vacuous: other random weights give other outputs.
    other, _ = ref.run_and_save(ref.vggface_cnn, ref.released_inputs(images), tmp_path / "other.ckpt", seed=1,
                                fc_units=(48, 20),
                                width=1 / 8)
    assert np.abs(other - expected).max() > 1e-3


def test_vggface_4096x2000x2_full_size_parity_at_96(tmp_path):
    start = time.time()
    images = _images(2, 96, 96, 3)
    expected, path = ref.run_and_save(ref.vggface_cnn, ref.released_inputs(images), tmp_path / "vgg.ckpt",
                                      fc_units=(4096, 2000))
    model = models.build("vggface_4096x2000x2")
    tf1_checkpoint.load_tf1_checkpoint(model, path)
    np.testing.assert_allclose(np.asarray(model({"images": images})), expected, **TOLERANCE)
    print(f"full-size VGG-Face parity: {time.time() - start:.1f} s")


def test_slim_resnet_v1_50_backbone_parity(tmp_path):
    images = _images(2, 64, 64, 3)
    expected, path = ref.run_and_save(ref.slim_resnet_v1_50, ref.released_inputs(images), tmp_path / "resnet.ckpt",
                                      width=1 / 8)
    backbone = slim_resnet.slim_resnet_v1_50(64, width=1 / 8)
    report = tf1_checkpoint.load_tf1_checkpoint(backbone, path)
    assert report.layout == "slim_resnet_v1_50" and report.unused == []
    # 53 conv layers (49 + 4 projections), each with a batch norm of 4 variables.
    assert len(report.assigned) == 53 * 5
    np.testing.assert_allclose(np.asarray(backbone(images)), expected, **TOLERANCE)


def test_affwildnet_vggface_gru_parity(tmp_path):
    sequences = _images(2, 5, 32, 32, 3)
    expected, path = ref.run_and_save(ref.affwildnet_vggface_gru, sequences, tmp_path / "gru.ckpt", fc_units=40,
                                      width=1 / 8, units=16)
    model = models.build("affwildnet_vggface", landmarks=False, dropout=0.0, input_size=32, width=1 / 8,
                         fc_units=40, rnn_units=16)
    report = tf1_checkpoint.load_tf1_checkpoint(model, path)
    assert report.layout == "affwildnet_vggface_gru" and report.unused == []
    assert "rnn_1/rnn/multi_rnn_cell/cell_1/gru_cell/candidate/kernel" in dict(report.assigned)
    np.testing.assert_allclose(np.asarray(model({"images": sequences})), expected, **TOLERANCE)


def test_affwildnet_resnet_gru_parity(tmp_path):
    sequences = _images(2, 4, 32, 32, 3)
    expected, path = ref.run_and_save(ref.affwildnet_resnet_gru, sequences, tmp_path / "resnet_gru.ckpt",
                                      width=1 / 8, units=16)
    model = models.build("affwildnet_resnet50", backbone="resnet50_slim", fc_units=0, landmarks=False,
                         dropout=0.0, input_size=32, rnn_units=16, width=1 / 8)
    report = tf1_checkpoint.load_tf1_checkpoint(model, path)
    assert report.layout == "affwildnet_resnet_gru" and report.unused == []
    assert "rnn/rnn/multi_rnn_cell/cell_0/gru_cell/gates/kernel" in dict(report.assigned)
    np.testing.assert_allclose(np.asarray(model({"images": sequences})), expected, **TOLERANCE)


def test_missing_variable_names_the_file_and_the_variable(tmp_path):
    images = _images(1, 32, 32, 3)
    _, path = ref.run_and_save(ref.vgg_convs, images, tmp_path / "convs_only.ckpt", width=1 / 8)
    model = models.build("vggface_4096x2000x2", input_size=32, width=1 / 8, fc_units=(8, 8))
    before = [np.array(w) for w in model.weights]
    with pytest.raises(ValueError, match=r"convs_only\.ckpt.*'linear_1/weights'.*not in the checkpoint"):
        tf1_checkpoint.load_tf1_checkpoint(model, path)
    # Nothing assigned when anything is missing.
    assert all(np.array_equal(a, np.array(w)) for a, w in zip(before, model.weights))


def test_wrong_shape_names_the_file_variable_and_shapes(tmp_path):
    images = _images(1, 32, 32, 3)
    _, path = ref.run_and_save(ref.vggface_cnn, images, tmp_path / "vgg.ckpt", fc_units=(48, 20), width=1 / 8)
    model = models.build("vggface_4096x2000x2", input_size=32, width=1 / 8, fc_units=(48, 21))
    with pytest.raises(ValueError, match=r"vgg\.ckpt.*'linear2_1/weights' has shape \(48, 20\).*\(48, 21\)"):
        tf1_checkpoint.load_tf1_checkpoint(model, path)


def test_unreadable_checkpoint_and_wrong_model(tmp_path):
    bogus = tmp_path / "nothing.ckpt"
    with pytest.raises(ValueError, match="nothing.ckpt"):
        tf1_checkpoint.load_tf1_checkpoint(models.build("vggface_4096x2000x2", input_size=32, width=1 / 16,
                                                        fc_units=(4, 4)), str(bogus))
    with pytest.raises(ValueError, match="directory holds no TF checkpoint"):
        tf1_checkpoint.read_checkpoint(str(tmp_path))
    with pytest.raises(ValueError, match="landmarks=False"):
        tf1_checkpoint.tf1_assignments(models.build("vggface_cnn", input_size=32, width=1 / 16, fc_units=(4, 4)))


def test_checkpoint_path_forms(tmp_path):
    images = _images(1, 32, 32, 3)
    _, path = ref.run_and_save(ref.vgg_convs, images, tmp_path / "model.ckpt-7", width=1 / 16)
    for form in (path, path + ".index", path + ".meta", path + ".data-00000-of-00001", str(tmp_path)):
        assert tf1_checkpoint.resolve_checkpoint(form) == path
    assert "conv_13/biases" in tf1_checkpoint.read_checkpoint(str(tmp_path))


def test_loads_under_mixed_bfloat16(tmp_path):
    import keras

    images = _images(2, 32, 32, 3)
    expected, path = ref.run_and_save(ref.vggface_cnn, ref.released_inputs(images), tmp_path / "vgg.ckpt",
                                      fc_units=(48, 20),
                                      width=1 / 8)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = models.build("vggface_4096x2000x2", input_size=32, width=1 / 8, fc_units=(48, 20))
        tf1_checkpoint.load_tf1_checkpoint(model, path)
        got = np.asarray(model({"images": images}), dtype="float32")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    # Variables stay float32; bfloat16 compute keeps ~3 significant digits over 16 layers.
    assert model.get_layer("fc1").kernel.dtype == "float32"
    np.testing.assert_allclose(got, expected, rtol=0.1, atol=0.05 * np.abs(expected).max())

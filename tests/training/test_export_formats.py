"""`--formats=saved_model,onnx,tflite` (issue 12.6): each file computes what
the SavedModel does, through onnxruntime (batch and sequence length dynamic)
and TensorFlow's TFLite interpreter (batch 1, sequence length dynamic, see
`export_formats`), for a valence-arousal and a multi-task export."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from affnet import models
from affnet.training import export

# Measured here (tiny models below): ONNX <= 1e-8, TFLite <= 1e-8 max abs diff.
TOLERANCE = 1e-5


def _inputs(rng, batch, steps):
    return {"images": rng.uniform(-1, 1, (batch, steps, 96, 96, 3)).astype(np.float32),
            "landmarks": rng.uniform(-1, 1, (batch, steps, 136)).astype(np.float32)}


def _tflite_run(path, inputs):
    interpreter = tf.lite.Interpreter(model_path=path)
    runner = interpreter.get_signature_runner("serving_default")
    return runner(**inputs)


@pytest.mark.slow
@pytest.mark.parametrize("name, overrides", [
    ("affwildnet_vggface_gru_released", dict(width=0.0625, fc_units=16, rnn_units=8, input_size=48)),
    ("mt_vgg_gru", dict(width=0.0625, fc_units=16, rnn_units=8)),
])
def test_onnx_and_tflite_match_the_saved_model(tmp_path, name, overrides):
    import onnxruntime

    model = models.build(name, **overrides)
    out = str(tmp_path / "export")
    info = export.export_model(model, out, {"model": name, "seq_len": 80},
                               formats=("saved_model", "onnx", "tflite"), log=lambda _: None)
    assert info["formats"] == {"saved_model": "saved_model", "onnx": "model.onnx", "tflite": "model.tflite"}
    assert info["format_details"]["tflite"] == {"batch": 1, "sequence": "dynamic"}
    assert json.load(open(os.path.join(out, "export.json")))["formats"] == info["formats"]
    serve, _ = export.load_serving(out)
    session = onnxruntime.InferenceSession(os.path.join(out, "model.onnx"))
    onnx_names = [o.name for o in session.get_outputs()]
    assert sorted(onnx_names) == info["outputs"]
    rng = np.random.default_rng(0)
    for batch, steps in ((2, 5), (1, 9)):
        inputs = _inputs(rng, batch, steps)
        reference = {k: v.numpy() for k, v in serve(**{k: tf.constant(v) for k, v in inputs.items()}).items()}
        onnx = dict(zip(onnx_names, session.run(None, inputs)))
        for key in info["outputs"]:
            assert onnx[key].shape == reference[key].shape
            np.testing.assert_allclose(onnx[key], reference[key], rtol=0, atol=TOLERANCE, err_msg=f"onnx {key}")
        if batch == 1:
            lite = _tflite_run(os.path.join(out, "model.tflite"), inputs)
            assert sorted(lite) == info["outputs"]
            for key in info["outputs"]:
                np.testing.assert_allclose(lite[key], reference[key], rtol=0, atol=TOLERANCE,
                                           err_msg=f"tflite {key}")
        assert np.abs(reference[info["outputs"][-1]]).max() > 1e-4  # Not a constant model.


def test_formats_are_checked():
    assert export.check_formats("saved_model,onnx") == ("saved_model", "onnx")
    with pytest.raises(ValueError, match="formats must include 'saved_model'"):
        export.check_formats(["onnx"])
    with pytest.raises(ValueError, match=r"formats must be among .* got \['pt'\]"):
        export.check_formats("saved_model,pt")

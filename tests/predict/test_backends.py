"""Predict reads every format `launch/export.py --formats` writes: the SavedModel, model.onnx
(onnxruntime) and model.tflite (TensorFlow's interpreter) give the same table for one video."""

import os
import subprocess
import sys

import numpy as np
import pytest

import affnet

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = "width=0.0625,input_size=32,fc_units=16,rnn_units=8"


@pytest.fixture(scope="module")
def export_all_formats(tmp_path_factory):
    from affnet import models

    root = tmp_path_factory.mktemp("formats")
    model = models.build("affwildnet_vggface", **dict(width=0.0625, input_size=32, fc_units=16, rnn_units=8))
    weights = str(root / "tiny.weights.h5")
    model.save_weights(weights)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "launch", "export.py"), "--model=affwildnet_vggface",
                           f"--model_overrides={TINY}", f"--weights={weights}", "--seq_len=5",
                           "--formats=saved_model,onnx,tflite", f"--output={root / 'export'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return str(root / "export")


@pytest.mark.slow
def test_onnx_and_tflite_predict_what_the_saved_model_predicts(export_all_formats, media):
    video = str(media / "sub" / "talk.mp4")
    tables = {backend: affnet.Predictor(export_all_formats, backend=backend, progress=False).predict(video)
              for backend in ("saved_model", "onnx", "tflite")}
    reference = tables["saved_model"]
    assert reference["success"].sum() >= len(reference) - 1 and reference["valence"].notna().any()
    for backend in ("onnx", "tflite"):
        table = tables[backend]
        assert list(table.columns) == list(reference.columns) and len(table) == len(reference)
        both = reference["valence"].notna()
        assert (table["valence"].notna() == both).all()
        for column in ("valence", "arousal"):
            np.testing.assert_allclose(table.loc[both, column], reference.loc[both, column], rtol=0, atol=1e-5)

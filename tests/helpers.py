"""Tiny models' inputs shared by the model, training and layer tests (tests/conftest.py
puts this directory on sys.path: `from helpers import ...`), and running the launch/ CLIs."""

import contextlib
import gc
import os
import subprocess
import sys

import keras
import numpy as np
import preloaded
import tensorflow as tf

from affnet.layers import build_rnn_stack
from affnet.models import build

LANDMARKS = 136


def sequence_inputs(batch=2, steps=3, size=32, landmarks=True, seed=0):
    """{"images": (B, T, size, size, 3) in [-1, 1], "landmarks": (B, T, 136) crop pixels}."""
    rng = np.random.default_rng(seed)
    x = {"images": rng.uniform(-1, 1, (batch, steps, size, size, 3)).astype("float32")}
    if landmarks:
        x["landmarks"] = rng.uniform(0, size, (batch, steps, LANDMARKS)).astype("float32")
    return x


def frame_inputs(batch=2, size=32, landmarks=True, seed=0):
    """{"images": (B, size, size, 3) in [-1, 1], "landmarks": (B, 136) crop pixels}."""
    rng = np.random.default_rng(seed)
    x = {"images": rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32")}
    if landmarks:
        x["landmarks"] = rng.uniform(0, size, (batch, LANDMARKS)).astype("float32")
    return x


def model_inputs(model, batch=2, steps=3, seed=0):
    """Random inputs in [-1, 1] for every input of `model`; sequence inputs get `steps` frames."""
    rng = np.random.default_rng(seed)
    x = {}
    for key, spec in model.input.items():
        shape = tuple(spec.shape[1:])
        if shape[0] is None:
            shape = (steps,) + shape[1:]
        x[key] = rng.uniform(-1, 1, (batch,) + shape).astype("float32")
    return x


def random_weights(model, seed=3):
    """`model` with every weight drawn from N(0, 0.05): outputs far from those of its initialiser."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.normal(0, 0.05, weight.shape).astype("float32"))
    return model


# ------------------------------------------------------------------ launching the CLIs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def subprocess_env():
    """The environment of a CLI run by a test: quiet TF, CPU only, no TF_CONFIG."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    return env


def launch_script(script, *args, with_stderr=False, fresh=False):
    """Run `launch/<script>` with `args` from the repository root; its stdout, followed by its stderr with
    `with_stderr` (asserts exit code 0). `fresh`: in a fresh interpreter, start-up under test
    (tests/preloaded.py)."""
    env = dict(subprocess_env(), **({preloaded.FRESH: "1"} if fresh else {}))
    done = subprocess.run([sys.executable, os.path.join(ROOT, "launch", script), *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-4000:])
    return done.stdout + done.stderr if with_stderr else done.stdout


_FRESH_LOAD = """
import sys, numpy as np, tensorflow as tf
serve = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
inputs = np.load(sys.argv[2])
out = serve(images=tf.constant(inputs["images"]), landmarks=tf.constant(inputs["landmarks"]))
np.save(sys.argv[3], out["valence_arousal"].numpy())
print(sorted(sys.modules.keys() & {"affnet", "data_pipeline"}))
"""


def serve_in_fresh_python(saved_model, images, landmarks, folder):
    """(valence_arousal, imported) of the SavedModel's `serving_default` on the inputs, computed
    by a fresh interpreter that imports only TensorFlow; `imported` lists the affnet and
    data_pipeline modules it loaded (an export must need none). Files go to `folder`."""
    inputs, output = os.path.join(folder, "inputs.npz"), os.path.join(folder, "out.npy")
    np.savez(inputs, images=images, landmarks=landmarks)
    loaded = subprocess.run([sys.executable, "-c", _FRESH_LOAD, str(saved_model), inputs, output],
                            env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    return np.load(output), loaded.stdout.strip().splitlines()[-1]


# ------------------------------------------------------------------ recurrent stacks

RNN_FEATURES, RNN_UNITS = 6, 4
# One stack per cell and attention variant ([AW2] GRU / LSTM / IndRNN, attention on a layer or on top).
RNN_CONFIGS = {
    "gru": dict(rnn="gru"),
    "lstm_dropout": dict(rnn="lstm", dropout=0.3),
    "indrnn": dict(rnn="indrnn"),
    "gru_attention": dict(rnn="gru", attention_length=3, dropout=0.3),
    "lstm_attention_top": dict(rnn="lstm", attention_length=2, attention_placement="top"),
}


def rnn_stack_model(**kwargs):
    """`build_rnn_stack(name="rnn")` over (B, T, RNN_FEATURES) features, as a model named "stack"."""
    inp = keras.Input((None, RNN_FEATURES), name="features")
    out = build_rnn_stack(inp, units=RNN_UNITS, name="rnn", **kwargs)
    return keras.Model(inp, out, name="stack")


def rnn_inputs(b, t, seed=0):
    """(b, t, RNN_FEATURES) standard-normal float32 features."""
    return np.random.default_rng(seed).normal(size=(b, t, RNN_FEATURES)).astype("float32")


def saved_model_signature(serve, model, spec, path):
    """Save `model` with `serving_default` = `serve(features)` over the input `spec` dict
    at `path`, reload it in this process, and return that signature."""
    function = tf.function(serve, input_signature=[spec])
    tf.saved_model.save(model, str(path), signatures={"serving_default": function.get_concrete_function()})
    return tf.saved_model.load(str(path)).signatures["serving_default"]


def assert_serves_any_length(model, path, lengths=(2, 7), batch=3):
    """Save `model` (sequence inputs images 32x32 + landmarks) as a SavedModel with a
    dynamic time axis, reload it, and check it computes the model's outputs at each length."""
    spec = {"images": tf.TensorSpec((None, None, 32, 32, 3), tf.float32, name="images"),
            "landmarks": tf.TensorSpec((None, None, LANDMARKS), tf.float32, name="landmarks")}
    reloaded = saved_model_signature(lambda features: {"va": model(features, training=False)}, model, spec, path)
    for steps in lengths:
        x = sequence_inputs(batch=batch, steps=steps, seed=steps)
        out = reloaded(**{k: tf.constant(v) for k, v in x.items()})["va"]
        assert out.shape == (batch, steps, 2)
        np.testing.assert_allclose(out, model(x), atol=1e-5)


def assert_keras_round_trip(model, path, cls, lengths):
    """`model` saved as `.keras` at `path` reloads as a `cls` computing the same outputs
    at every sequence length in `lengths`."""
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, cls)
    for steps in lengths:
        x = sequence_inputs(steps=steps, seed=steps)
        np.testing.assert_allclose(loaded(x), model(x), atol=1e-5)


def assert_mixed_bfloat16_xla(build_model, x, shape):
    """The model `build_model()` builds under the mixed_bfloat16 policy runs XLA-compiled on `x`
    and returns finite float32 outputs of `shape` (the policy is reset to float32 after)."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_model()
        out = tf.function(lambda features: model(features, training=False), jit_compile=True)(x)
        assert out.dtype == tf.float32 and out.shape == shape
        assert np.all(np.isfinite(np.asarray(out)))
    finally:
        keras.mixed_precision.set_global_policy("float32")


def fit_briefly(model, objective, x, y, steps, learning_rate):
    """(objective before, after) `steps` Adam steps of `objective(outputs, y)` on one batch."""
    optimizer = keras.optimizers.Adam(learning_rate)
    before = float(objective(model(x), y))
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = objective(model(x, training=True), y)
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
    return before, float(objective(model(x), y))


def loss_without_labels(loss, labels, outputs):
    """(total, components) of `loss(labels, outputs)` with every task's mask zeroed (no label
    at all), after asserting its gradients with respect to the outputs finite."""
    labels = dict(labels)
    for key in ("expression_mask", "au_mask", "va_mask"):
        labels[key] = np.zeros_like(labels[key])
    variables = {key: tf.Variable(value) for key, value in outputs.items()}
    with tf.GradientTape() as tape:
        total, components = loss(labels, dict(variables))
    for grad in tape.gradient(total, variables).values():
        assert grad is None or np.all(np.isfinite(grad.numpy()))
    return total, components


@contextlib.contextmanager
def full_size(name):
    """The registered configuration `name` at paper size, its memory freed on exit."""
    model = build(name)
    try:
        yield model
    finally:
        del model
        keras.backend.clear_session()
        gc.collect()

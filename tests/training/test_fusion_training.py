"""Model-level fusion ([MC] 5.4.1) through the Trainer: its two sub-networks
share layer names (`cnn_1rnn/vggface/conv1_1` and `cnn_3rnn/vggface/conv1_1`),
so checkpoint keys come from the nesting (checkpointing.variable_map). Train ->
checkpoint -> resume -> export on the tiny synthetic set."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from test_init_and_resume import _trainer  # noqa: E402
from test_loop import _config  # noqa: E402

from affnet.models import build  # noqa: E402
from affnet.training import checkpointing, export, schedules  # noqa: E402
from affnet.training.config import TrainConfig  # noqa: E402

FUSION = dict(width=0.0625, input_size=32, fc_units=16, rnn_units=8, fusion_units=8, dropout=0.0,
              rnn_dropout=0.0)


def test_fusion_keys_follow_the_nesting_and_pair_the_optimizer_slots():
    model = build("fusion_rnn", **FUSION)
    paths = [v.path for v in model.weights]
    assert paths.count("conv1_1/kernel") == 2  # What made the paths unusable as keys.
    keys = checkpointing.variable_map(model)
    assert len(keys) == len(model.weights)
    assert {"cnn_1rnn/vggface/conv1_1/kernel", "cnn_3rnn/vggface/conv1_1/kernel", "cnn_1rnn/fc1/kernel",
            "cnn_3rnn/rnn_pool2/rnn_pool2_cells/rnn_pool2_gru0/gates_kernel", "va_output/kernel"} <= set(keys)
    assert keys["cnn_3rnn/vggface/conv1_1/kernel"] is model.get_layer("cnn_3rnn").get_layer("vggface").get_layer(
        "conv1_1").kernel
    assert list(checkpointing.variable_map(build("fusion_rnn", **FUSION))) == list(keys)  # Deterministic.
    # A bare list (export's ServingModule) has no owners: a repeated path is numbered.
    listed = checkpointing.variable_map(model.weights)
    assert len(listed) == len(model.weights) and listed["conv1_1/kernel_1"] is keys["cnn_3rnn/vggface/conv1_1/kernel"]

    for precision in ("none", "float16"):  # float16: a LossScaleOptimizer around Adam.
        optimizer = schedules.make_optimizer(TrainConfig.from_flat(mixed_precision=precision))
        optimizer.build(model.trainable_variables)
        slots = {id(v): k for k, v in checkpointing.variable_map(optimizer, model).items()}
        assert len(slots) == len(optimizer.variables)
        # Keras' own pairing: the slot lists are indexed like the trainable variables.
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        model_keys = {id(v): k for k, v in keys.items()}
        for index, reference in enumerate(inner._trainable_variables):
            owner = model_keys[id(reference)][:-len(reference.path)]
            for slot in (inner._momentums[index], inner._velocities[index]):
                assert slots[id(slot)] == f"adam/{owner}{slot.name}"


def test_models_without_clashing_paths_keep_their_keys():
    model = build("cnn_3rnn", **{k: v for k, v in FUSION.items() if k != "fusion_units"})
    assert list(checkpointing.variable_map(model)) == [v.path for v in model.weights]
    assert "vggface/conv1_1/kernel" not in checkpointing.variable_map(model)
    optimizer = keras.optimizers.Adam(name="adam")
    optimizer.build(model.trainable_variables)
    assert list(checkpointing.variable_map(optimizer, model)) == [v.path for v in optimizer.variables]


@pytest.mark.slow
def test_fusion_trains_checkpoints_resumes_and_exports(synthetic_data, tmp_path):
    workdir = tmp_path / "fusion"
    config = _config(workdir, model="fusion_rnn", model_overrides=FUSION, data=synthetic_data, eval_every=2,
                     checkpoint_every=2, train_steps=2)
    first = _trainer(config)
    first.train()
    latest = tf.train.latest_checkpoint(str(workdir / checkpointing.LATEST_DIR))
    assert latest.endswith("ckpt-2") and os.path.exists(str(workdir / checkpointing.BEST_FILE))
    stored = {name for name, _ in tf.train.list_variables(latest)}
    for sub in ("cnn_1rnn", "cnn_3rnn"):
        assert f"model/{sub}.Svggface.Sconv1_1.Skernel/.ATTRIBUTES/VARIABLE_VALUE" in stored
    weights = [w.numpy() for w in first.model.weights]
    moments = {k: v.numpy() for k, v in checkpointing.variable_map(first.optimizer, first.model).items()}

    resumed = _trainer(config.replace(train_steps=3))
    assert int(resumed.step.numpy()) == 2 and int(resumed.optimizer.iterations.numpy()) == 2
    for a, b in zip(weights, resumed.model.weights):
        np.testing.assert_array_equal(a, b.numpy(), err_msg=b.path)
    for key, variable in checkpointing.variable_map(resumed.optimizer, resumed.model).items():
        np.testing.assert_array_equal(moments[key], variable.numpy(), err_msg=key)
    resumed.train(evaluate=False)
    assert [step for step, _ in resumed.history] == [3]

    # The export of the latest checkpoint computes what the trained model in memory does.
    info = export.export_run(str(workdir), str(tmp_path / "export"), checkpoint="latest")
    assert info["checkpoint"].endswith("ckpt-3")
    serve, _ = export.load_serving(str(tmp_path / "export"))
    rng = np.random.default_rng(1)
    images = rng.uniform(-1, 1, (2, 5, 96, 96, 3)).astype(np.float32)
    landmarks = rng.uniform(-1, 1, (2, 5, 136)).astype(np.float32)
    served = serve(images=tf.constant(images), landmarks=tf.constant(landmarks))["valence_arousal"].numpy()
    small = tf.image.resize(images.reshape(-1, 96, 96, 3), [32, 32]).numpy().reshape(2, 5, 32, 32, 3)
    expected = np.asarray(resumed.model({"images": small, "landmarks": landmarks}, training=False))
    np.testing.assert_allclose(served, expected, rtol=1e-4, atol=1e-5)

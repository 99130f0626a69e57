"""The training init step (`affnet.training.init`): model-level fusion's sub-networks
from their standalone runs ([MC] 5.4.1, [OMG] III-C). The model constructor only
checks the sources' names; loading them is a training step, so it reads nothing."""

import keras
import numpy as np
import pytest

from affnet.models import build
from affnet.training import init
from helpers import sequence_inputs as inputs

TINY = dict(input_size=32, width=1 / 16, rnn_units=8, fc_units=16)


def tiny(name, **overrides):
    return build(name, **{**TINY, **overrides})


def _perturbed(name, seed):
    model = tiny(name)
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        variable.assign(rng.normal(0.0, 0.05, variable.shape).astype("float32"))
    return model


@pytest.mark.slow
def test_fusion_initialises_sub_networks_from_their_runs(tmp_path):
    one, three = _perturbed("cnn_1rnn", 1), _perturbed("cnn_3rnn", 2)
    one.save_weights(tmp_path / "one.weights.h5")
    three.save(tmp_path / "three.keras")
    # The ";" string form, as `--model_overrides=init_weights=...` carries it.
    fused = tiny("fusion_rnn", init_weights=f"{tmp_path / 'one.weights.h5'};{tmp_path / 'three.keras'}")
    assert len(init.init_subnetworks(fused)) == 2
    for name, source in (("cnn_1rnn", one), ("cnn_3rnn", three)):
        sub = fused.subnetwork(name)
        for layer_name in ("vggface", "fc1", "rnn" if name == "cnn_1rnn" else "rnn_pool2"):
            for mine, theirs in zip(sub.get_layer(layer_name).weights, source.get_layer(layer_name).weights):
                np.testing.assert_array_equal(mine, theirs)
    # The fused model's own features equal the standalone networks' (same weights, no dropout).
    x = inputs()
    standalone = keras.Model(three.input, three.get_layer("va_output").input)
    np.testing.assert_allclose(fused.subnetwork("cnn_3rnn")(x), standalone(x), atol=1e-6)


def test_a_missing_sub_network_source_is_named():
    fused = tiny("fusion_rnn", init_weights={"cnn_1rnn": "/nonexistent.keras"})  # Builds: nothing is read.
    with pytest.raises(ValueError, match="nonexistent"):
        init.init_subnetworks(fused)


def test_other_models_have_no_sub_networks():
    assert init.init_subnetworks(tiny("cnn_1rnn")) == []

"""Every named configuration at full size (96x96, width 1) against the
parameter count computed by hand from its paper table (`paper_counts`).

Full-size builds take seconds each and ~0.5 GB at peak on a loaded 2-core
machine, hence slow; they build only, never train.
"""

import pytest

from affnet.models import affwildnet, build, describe, frame_cnn
from helpers import full_size
from paper_counts import FRAME_EXPECTED, RELEASED_RESNET_GRU, SEQUENCE_EXPECTED

pytestmark = pytest.mark.slow
EXPECTED = {**FRAME_EXPECTED, **SEQUENCE_EXPECTED, "affwildnet_resnet_gru_released": RELEASED_RESNET_GRU}


def test_every_configuration_has_a_count():
    assert (set(frame_cnn.CONFIGS) | set(affwildnet.CONFIGS)) - set(EXPECTED) == set()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_full_size_parameter_count(name):
    with full_size(name) as model:
        assert model.count_params() == EXPECTED[name]
        expected_shape = (None, None, 2) if describe(name).sequence else (None, 2)
        assert tuple(model.output.shape) == expected_shape


def test_released_resnet_gru_has_no_fc1():
    model = build("affwildnet_resnet_gru_released")
    assert "fc1" not in [layer.name for layer in model.layers]
    assert model.get_layer("va_output").kernel.shape == (128, 2)

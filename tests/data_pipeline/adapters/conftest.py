"""Adapter test fixtures: a real face (skimage's astronaut) and quick preprocessing options."""

import pytest
from skimage import data as skimage_data

from data_pipeline.jobs import preprocess


@pytest.fixture(scope="session")
def face():
    """A 200x190 RGB head-and-shoulders crop that dlib's HOG detector finds."""
    return skimage_data.astronaut()[40:240, 130:320]


@pytest.fixture
def quiet_options():
    """Source frame rate kept (no resampling) to keep the tests short."""
    return preprocess.PreprocessOptions(fps=0)

"""Session fixtures of the predict tests: tiny exports of every kind, a folder of real-photo media."""

import numpy as np
import pytest
from predict_fakes import make_export
from real_videos import write_media_folder

from data_pipeline.media import decode


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """kind -> export directory, built once per session on first use."""
    root = tmp_path_factory.mktemp("exports")

    class Exports(dict):
        def __missing__(self, kind):
            self[kind] = make_export(kind, str(root / kind))
            return self[kind]

    return Exports()


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    """A folder: sub/talk.mp4 (12 frames at 25 fps, the astronaut moving), still.png, empty.mp4 (no face)."""
    root = write_media_folder(tmp_path_factory.mktemp("media"), frames=12)
    decode.write_video(str(root / "empty.mp4"), [np.full((120, 160, 3), 90, np.uint8)] * 4, fps=25)
    return root

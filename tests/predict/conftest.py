"""Session fixtures of the predict tests: tiny exports of every kind, a folder of real-photo media."""

import cv2
import numpy as np
import pytest
from predict_fakes import face, make_export, moving_face_frames

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
    root = tmp_path_factory.mktemp("media")
    (root / "sub").mkdir()
    decode.write_video(str(root / "sub" / "talk.mp4"), moving_face_frames(), fps=25)
    cv2.imwrite(str(root / "still.png"), cv2.cvtColor(face(), cv2.COLOR_RGB2BGR))
    decode.write_video(str(root / "empty.mp4"), [np.full((120, 160, 3), 90, np.uint8)] * 4, fps=25)
    return root

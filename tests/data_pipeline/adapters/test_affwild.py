"""Aff-Wild adapter on a miniature copy of the release (videos + per-frame valence/arousal files)."""

import re

import numpy as np
import pytest
from adapter_fakes import moving_face_frames, write_text, write_video

from data_pipeline.records import schema
from data_pipeline.adapters import affwild, common


def _values(values):
    return "\n".join(f"{v:.3f}" for v in values) + "\n"


@pytest.fixture
def release(tmp_path, face):
    root = tmp_path / "Aff-Wild"
    write_video(root / "videos" / "train" / "105.avi", moving_face_frames(face, 8), fps=30)
    write_video(root / "videos" / "test" / "271.mp4", moving_face_frames(face, 3), fps=30)
    write_text(root / "annotations/train/valence/105.txt", _values(np.linspace(-1, 1, 8)))
    write_text(root / "annotations/train/arousal/105.txt", _values(np.linspace(0, 0.7, 8)))
    write_text(root / "annotations/test/valence/271.txt", _values([0.1, 0.2, 0.3]))
    write_text(root / "annotations/test/arousal/271.txt", _values([0.3, 0.2, 0.1]))
    return root


def test_discover_and_write(release, tmp_path):
    items = affwild.AffWildAdapter().discover(str(release))
    assert [(i.video_id, i.split) for i in items] == [("105", "train"), ("271", "test")]
    np.testing.assert_allclose(items[0].labels.valence, np.linspace(-1, 1, 8), atol=1e-3)
    manifest = affwild.AffWildAdapter().write(str(release), str(tmp_path / "out"), progress=None,
                                              only_splits=["train"])
    assert [e["video_id"] for e in manifest["videos"]] == ["105"]
    (record,) = common.item_records(items[0])[0]
    assert record.num_frames >= 6 and record.subject_id == "105"
    np.testing.assert_allclose(record.valence, np.linspace(-1, 1, 8)[record.frame_index], atol=1e-3)
    assert np.isfinite(record.landmarks).all() and record.landmarks.shape[1] == schema.LANDMARK_DIM


def _errors(release):
    """A bad label file fails its own video only: {video_id: error} of the discovered items."""
    return {i.video_id: i.error for i in affwild.AffWildAdapter().discover(str(release))}


def test_errors_name_the_file(release):
    write_text(release / "annotations/test/arousal/271.txt", _values([0.3, 0.2]))
    errors = _errors(release)
    assert errors["105"] == "" and re.search("271: 3 valence lines .* but 2 arousal lines", errors["271"])
    write_text(release / "annotations/test/arousal/271.txt", "0.1\nabc\n0.2\n")
    assert re.search(r"271.txt:2: not a number", _errors(release)["271"])
    write_text(release / "annotations/test/arousal/271.txt", "0.1\n0.1\n0.2\n")
    with pytest.raises(ValueError, match=r"no affwild videos in splits \[.validation.\]"):
        affwild.AffWildAdapter().write(str(release), str(release / "x"), only_splits=["validation"])

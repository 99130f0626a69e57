"""AFEW-VA adapter on a miniature copy of the release (clip folders with JSON and PNG frames)."""

import json

import numpy as np
import pytest
from adapter_fakes import afew_clip

from data_pipeline.faces import align
from data_pipeline.records import schema
from data_pipeline.adapters import afewva, common


@pytest.fixture
def release(tmp_path):
    root = tmp_path / "AFEW-VA"
    actors = ["Ann", "Ann", "Bob", "Cid", "Dee", "Eve", "Eve"]
    for k, actor in enumerate(actors):
        afew_clip(root, f"{k + 1:03d}", actor, labelled=[0, 1] if k == 0 else None)
    return root


def test_discover_rescales_labels_and_uses_person_folds(release):
    items = afewva.AfewVaAdapter(folds=5, seed=0).discover(str(release))
    assert [i.video_id for i in items] == [f"{k:03d}" for k in range(1, 8)]
    by_actor = {}
    for item in items:
        by_actor.setdefault(item.subject_id, set()).add(item.split)
    assert all(len(f) == 1 for f in by_actor.values()) and len(set().union(*by_actor.values())) == 5
    first = items[0]
    np.testing.assert_allclose(first.labels.valence[:2], [-0.1, 0.0])
    np.testing.assert_allclose(first.labels.arousal[:2], [1.0, 0.9])
    assert np.isnan(first.labels.valence[2])  # Frame 00002 has no JSON entry.
    assert np.isnan(first.frame_landmarks[2]).all() and np.isfinite(first.frame_landmarks[:2]).all()


def test_written_frames_are_aligned_with_the_dataset_landmarks(release, tmp_path):
    out = tmp_path / "out"
    manifest = afewva.AfewVaAdapter().write(str(release), str(out), landmarks="none", progress=None)
    entry = manifest["videos"][1]
    assert entry["status"] == "ok" and entry["frames_written"] == 3
    (record,) = common.item_records(afewva.AfewVaAdapter().discover(str(release))[1], landmarks="none")[0]
    points = record.landmarks.reshape(-1, 68, 2)
    anchors = np.stack([align.anchors(p) for p in points])
    # Template anchors scaled x2: the similarity alignment maps them back onto the template.
    np.testing.assert_allclose(anchors, np.broadcast_to(align.TEMPLATE_96, anchors.shape), atol=1e-3)
    np.testing.assert_allclose(record.valence, [-0.1, 0.0, 0.1], atol=1e-6)
    assert record.images is None and len(record.encoded_images) == 3
    # Clip 001's frame 2 has no landmarks and dlib is off: dropped, as [AW] drops faceless frames.
    first = manifest["videos"][0]
    assert first["frames_written"] == 2 and first["dropped"] == {"landmarks_failed": 1}
    assert sum(len(v) for v in manifest["subjects"].values()) == 5


def test_bad_json_is_named(tmp_path):
    root = tmp_path / "AFEW-VA"
    afew_clip(root, "009", "Zed")
    path = root / "01" / "009" / "009.json"
    data = json.loads(path.read_text())
    data["frames"]["00001"]["valence"] = 11
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"009.json: frame 00001 valence 11 not a number in \[-10, 10\]"):
        afewva.AfewVaAdapter().discover(str(root))
    data["frames"]["00001"].update(valence=1, landmarks=[[0, 0]] * 5)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="landmarks must be 68"):
        afewva.AfewVaAdapter().discover(str(root))
    assert schema.NUM_LANDMARKS == 68

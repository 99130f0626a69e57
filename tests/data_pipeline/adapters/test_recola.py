"""RECOLA adapter: per-annotator ratings fused ([AW2] II-D) and matched to frame times ([AW] 3.3)."""

import json

import numpy as np
import pytest
from adapter_fakes import moving_face_frames, write_text, write_video

from data_pipeline.records import annotations
from data_pipeline.adapters import common, recola

ANNOTATORS = ("FM1", "FM2", "FM3", "FF1", "FF2", "FF3")


def _ratings(seed, rows=100):
    rng = np.random.default_rng(seed)
    truth = np.tanh(np.cumsum(rng.normal(size=rows)) * 0.1)
    return np.clip(truth + rng.normal(scale=0.1, size=(len(ANNOTATORS), rows)), -1, 1)


def _csv(ratings, separator):
    padded = separator == ";"  # The original release pads names: "time;FM1 ;FM2 ;...".
    header = separator.join(["time"] + [n + (" " if padded else "") for n in ANNOTATORS])
    rows = [separator.join([f"{k * 0.04:.2f}"] + [f"{v:.4f}" for v in ratings[:, k]])
            for k in range(ratings.shape[1])]
    return header + "\n" + "\n".join(rows) + "\n"


def _release(root, face, subjects):
    traces = {}
    for k, subject in enumerate(subjects):
        for d, dimension in enumerate(recola.DIMENSIONS):
            traces[subject, dimension] = _ratings(10 * k + d)
            write_text(root / "RECOLA-Annotation/emotional_behaviour" / dimension / f"{subject}.csv",
                       _csv(traces[subject, dimension], ";" if k == 0 else ","))
        write_video(root / "RECOLA-Video-recordings" / f"{subject}.mp4", moving_face_frames(face, 10), fps=25)
    return traces


@pytest.fixture
def release(tmp_path, face):
    root = tmp_path / "RECOLA"
    return root, _release(root, face, ["P16", "P17", "P18"])


def test_read_ratings_both_separators(release):
    root, traces = release
    for subject in ("P16", "P17"):
        times, names, values = recola.read_ratings(
            str(root / "RECOLA-Annotation/emotional_behaviour/arousal" / f"{subject}.csv"))
        assert names == list(ANNOTATORS) and values.shape == (6, 100)
        np.testing.assert_allclose(times[:3], [0.0, 0.04, 0.08])
        np.testing.assert_allclose(values, traces[subject, "arousal"], atol=1e-4)


def test_mean_fusion_matched_to_frames(release):
    root, traces = release
    adapter = recola.RecolaAdapter(fusion="mean", seed=0)
    items = adapter.discover(str(root))
    assert sorted(i.split for i in items) == ["test", "train", "validation"]  # 16/15/15 of 46, scaled to 3.
    item = next(i for i in items if i.video_id == "P17")
    (record,), _ = common.item_records(item)
    # 25 fps frames on a 40 ms grid: frame k is at stamp k.
    expected = np.round(traces["P17", "valence"], 4).mean(axis=0)[record.frame_index]
    np.testing.assert_allclose(record.valence, expected, atol=1e-5)
    assert record.num_frames >= 8


def test_auto_fusion_reports_maic_and_splits_from_file(release, tmp_path):
    root, traces = release
    split_file = tmp_path / "splits.json"
    split_file.write_text(json.dumps({"train": ["P16", "P17"], "test": ["P18"]}))
    adapter = recola.RecolaAdapter(split_file=str(split_file))
    items = adapter.discover(str(root))
    assert {i.video_id: i.split for i in items} == {"P16": "train", "P17": "train", "P18": "test"}
    report = adapter.fusion_report["arousal"]
    assert set(report["maic"]) == {"mean", "median5", "median15", "median30"}
    expected = annotations.choose_fusion([np.round(traces[s, "arousal"], 4) for s in ("P16", "P17", "P18")])
    assert report["method"] == expected.method
    assert report["maic"]["mean"] == pytest.approx(expected.maic["mean"])
    np.testing.assert_allclose(items[2].timed_labels.arousal, expected.fused[2], atol=1e-6)


def test_avec_names_give_the_split(tmp_path, face):
    root = tmp_path / "AVEC"
    _release(root, face, ["train_1", "dev_1"])
    items = recola.RecolaAdapter(fusion="median5").discover(str(root))
    assert {i.video_id: i.split for i in items} == {"train_1": "train", "dev_1": "validation"}


def test_errors(release, tmp_path):
    root, _ = release
    with pytest.raises(ValueError, match="fusion method"):
        recola.RecolaAdapter(fusion="median")
    bad = root / "RECOLA-Annotation/emotional_behaviour/valence/P18.csv"
    bad.write_text("time,FM1\n0.0,0.1\n")
    with pytest.raises(ValueError, match="P18.csv: need at least 2 annotator columns"):
        recola.RecolaAdapter().discover(str(root))
    bad.write_text("time,FM1,FM2\n0.04,0.1,0.2\n0.0,0.1,0.2\n")
    with pytest.raises(ValueError, match="P18.csv: time column is not strictly increasing"):
        recola.RecolaAdapter().discover(str(root))
    bad.write_text("time,FM1,FM2\n0.0,0.1,0.2\n0.04,0.1,0.3\n")
    with pytest.raises(ValueError, match="same annotators everywhere"):
        recola.RecolaAdapter().discover(str(root))
    split_file = tmp_path / "s.json"
    split_file.write_text(json.dumps({"P16": "train"}))
    with pytest.raises(ValueError, match=r"no split for subjects \['P17', 'P18'\]"):
        recola.RecolaAdapter(fusion="mean", split_file=str(split_file)).discover(str(root))

"""Aff-Wild2 adapter on miniature copies of both ABAW annotation layouts."""

import json
import os
import re
import shutil

import cv2
import numpy as np
import pytest
from adapter_fakes import moving_face_frames, read_records, write_image, write_text, write_video

from data_pipeline.records import schema
from data_pipeline.adapters import affwild2, common

ABAW3 = "3rd ABAW Annotations/Third ABAW Annotations"
EXPR8 = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other"
AU12 = ",".join(schema.AUS_ABAW_12)


def _au_rows(rows):
    return "\n".join(",".join(str(v) for v in row) for row in rows)


@pytest.fixture
def abaw3(tmp_path, face):
    """vidA (train: VA, EXPR, AU; frame 3 missing from cropped_aligned), vidB (validation: VA only)."""
    root = tmp_path / "affwild2"
    ann = root / ABAW3
    write_text(ann / "VA_Estimation_Challenge/Train_Set/vidA.txt",
               "valence,arousal\n0.1,0.2\n-5,-5\n0.3,-0.4\n0.5,0.6\n1.0,-1.0\n")
    write_text(ann / "EXPR_Classification_Challenge/Train_Set/vidA.txt", EXPR8 + "\n0\n4\n7\n-1\n6\n")
    au = [[1] * 12, [0] * 12, [-1] * 12, [1, 0] * 6, [0, 1] * 6]
    write_text(ann / "AU_Detection_Challenge/Train_Set/vidA.txt", AU12 + "\n" + _au_rows(au) + "\n")
    write_text(ann / "VA_Estimation_Challenge/Validation_Set/vidB.txt", "valence,arousal\n0.0,0.5\n0.2,0.7\n")
    crop = cv2.resize(face, (112, 112))
    for k in (1, 2, 4, 5):  # 00003.jpg (frame 2) was not released: no face found.
        write_image(root / "cropped_aligned" / "vidA" / f"{k:05d}.jpg", crop)
    for k in (1, 2):
        write_image(root / "cropped_aligned" / "vidB" / f"{k:05d}.jpg", crop)
    return root


def test_discover_reads_labels_and_maps_expressions(abaw3):
    items = {i.video_id: i for i in affwild2.AffWild2Adapter().discover(str(abaw3))}
    assert sorted(items) == ["vidA", "vidB"]
    a, b = items["vidA"], items["vidB"]
    assert (a.split, b.split) == ("train", "validation")
    assert a.subject_id == "vidA" and a.frames_aligned and a.video_path is None
    np.testing.assert_array_equal(a.frame_index, [0, 1, 3, 4])
    np.testing.assert_allclose(a.labels.valence[[0, 2, 3, 4]], [0.1, 0.3, 0.5, 1.0], rtol=1e-6)
    assert np.isnan(a.labels.valence[1]) and np.isnan(a.labels.arousal[1])
    # Neutral, Happiness, Other -> unlabelled, unlabelled, Surprise.
    np.testing.assert_array_equal(a.labels.expression, [0, 4, -1, -1, 6])
    assert schema.EXPRESSIONS[4] == "happiness" and a.info["expr_other_frames"] == 1
    assert a.labels.au_names == schema.AUS_ABAW_12
    np.testing.assert_array_equal(a.labels.au[3], [1, 0] * 6)
    assert b.labels.expression is None and b.labels.au is None


def test_write_round_trip_and_resume(abaw3, tmp_path, quiet_options):
    out = tmp_path / "out"
    manifest = affwild2.AffWild2Adapter().write(str(abaw3), str(out), quiet_options, landmarks="none",
                                                progress=None)
    assert manifest["totals"]["ok"] == 2 and manifest["subjects"] == {"train": ["vidA"], "validation": ["vidB"]}
    (record,) = read_records(out / "train" / "vidA.tfrecord", num_aus=12)
    np.testing.assert_array_equal(record[schema.FRAME_INDEX], [0, 1, 3, 4])
    np.testing.assert_allclose(record[schema.VALENCE][[0, 2, 3]], [0.1, 0.5, 1.0], rtol=1e-6)
    assert np.isnan(record[schema.VALENCE][1])
    np.testing.assert_array_equal(record[schema.EXPRESSION], [0, 4, -1, 6])
    np.testing.assert_array_equal(record[schema.AU][2], [1, 0] * 6)
    assert [n.decode() for n in record[schema.AU_NAMES]] == list(schema.AUS_ABAW_12)
    assert record["images"].shape == (4, 96, 96, 3)
    assert np.isnan(record[schema.LANDMARKS]).all()  # landmarks="none": no dlib, none shipped.
    np.testing.assert_allclose(record[schema.ALIGNMENT][0], [96 / 112, 0, 0, 0, 96 / 112, 0], rtol=1e-6)
    np.testing.assert_allclose(record[schema.TIMESTAMP], np.array([0, 1, 3, 4]) / 30.0, rtol=1e-6)
    assert record[schema.SUBJECT_ID] == b"vidA"
    again = affwild2.AffWild2Adapter().write(str(abaw3), str(out), quiet_options, landmarks="none", progress=None)
    assert again["totals"]["skipped"] == 2
    with open(out / "manifest.json") as f:
        assert json.load(f)["totals"]["skipped"] == 2


def test_dlib_landmarks_on_cropped_frames(abaw3, quiet_options):
    (item,) = [i for i in affwild2.AffWild2Adapter(tasks=["va"]).discover(str(abaw3)) if i.video_id == "vidB"]
    records, report = common.item_records(item, quiet_options, landmarks="auto")
    points = records[0].landmarks.reshape(-1, 68, 2)
    assert np.isfinite(points).all() and report["frames_written"] == 2
    assert (points >= -5).all() and (points <= 101).all()  # In 96x96 crop pixels.


def test_older_layout_with_a_raw_video(tmp_path, face, quiet_options):
    root = tmp_path / "aw2"
    write_text(root / "annotations/VA_Set/Train_Set/clip.txt",
               "valence,arousal\n" + "\n".join(f"{k / 10:.1f},{-k / 10:.1f}" for k in range(8)) + "\n")
    write_text(root / "annotations/EXPR_Set/Training_Set/clip.txt",
               "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise\n" + "3\n" * 8)
    write_video(root / "batch1" / "clip.mp4", moving_face_frames(face, 8), fps=30)
    (item,) = affwild2.AffWild2Adapter().discover(str(root))
    assert item.video_path.endswith("batch1/clip.mp4") and item.face == "" and item.split == "train"
    records, report = common.item_records(item, quiet_options)
    (record,) = records
    assert report["frames_written"] >= 6
    np.testing.assert_allclose(record.valence, record.frame_index / 10, atol=1e-6)
    np.testing.assert_array_equal(record.expression, 3)


def test_left_and_right_people_of_one_video(tmp_path, face, quiet_options):
    root = tmp_path / "aw2"
    for side in ("left", "right"):
        write_text(root / f"annotations/VA_Set/Train_Set/duo_{side}.txt",
                   "valence,arousal\n" + "0.5,0.5\n" * 6)
    write_video(root / "batch2" / "duo.avi", moving_face_frames(face, 6, size=(240, 460), faces=2, step=2),
                fps=30)
    items = affwild2.AffWild2Adapter().discover(str(root))
    assert [(i.video_id, i.face) for i in items] == [("duo_left", "left"), ("duo_right", "right")]
    centres = {}
    for item in items:
        (record,), _ = common.item_records(item, quiet_options)
        assert record.video_id == item.video_id and record.num_frames >= 5
        centres[item.face] = common.face_centre_x(record)
    assert centres["left"] < 230 < centres["right"]


def _label_error(root):
    """A bad label file fails its own video only: the item carries the error (file:line)."""
    (item,) = affwild2.AffWild2Adapter().discover(str(root))
    return item.error


def test_layout_errors_name_the_file(tmp_path):
    root = tmp_path / "bad"
    write_image(root / "cropped_aligned/v/00001.jpg", np.full((16, 16, 3), 128, np.uint8))
    write_text(root / "annotations/VA_Set/Train_Set/v.txt", "valence,arousal\n0.1,2.0\n")
    assert re.search(r"v.txt:2: value outside \[-1, 1\]", _label_error(root))
    write_text(root / "annotations/VA_Set/Train_Set/v.txt", "valence,arousal\n0.1,0.2\n")
    write_text(root / "annotations/EXPR_Set/Training_Set/v.txt", "Neutral,Anger\n0\n")
    assert "Training_Set/v.txt: header 'Neutral,Anger' does not name the 7" in _label_error(root)
    os.remove(root / "annotations/EXPR_Set/Training_Set/v.txt")
    write_text(root / "annotations/EXPR_Set/Validation_Set/v.txt", EXPR8 + "\n0\n")
    assert "v: in train for one task and validation for another" in _label_error(root)
    shutil.rmtree(root / "cropped_aligned")
    with pytest.raises(ValueError, match="no a video named v"):
        affwild2.AffWild2Adapter(tasks=["va"]).discover(str(root))
    assert affwild2.AffWild2Adapter(tasks=["va"], missing="skip").discover(str(root)) == []
    with pytest.raises(ValueError, match="tasks must be"):
        affwild2.AffWild2Adapter(tasks=["valence"])

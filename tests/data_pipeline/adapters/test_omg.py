"""OMG-Emotion adapter: utterance CSVs, one label per utterance on all its frames."""

import numpy as np
import pytest
from adapter_fakes import moving_face_frames, read_records, write_text, write_video

from data_pipeline.records import schema
from data_pipeline.adapters import omg

HEADER = "link,start,end,video,utterance,arousal,valence,EmotionMaxVote\n"


@pytest.fixture
def release(tmp_path, face):
    root = tmp_path / "OMG"
    write_text(root / "omg_TrainVideos.csv", HEADER +
               "https://youtu.be/a,0.5,3.1,0a1b2c,utterance_1.mp4,0.61,-0.25,3\n"
               "https://youtu.be/a,3.1,6.0,0a1b2c,utterance_2.mp4,0.20,0.75,4\n")
    write_text(root / "omg_ValidationVideos.csv", HEADER +
               "https://youtu.be/b,1.0,2.0,9z8y,utterance_1.mp4,0.4,0.1,0\n")
    write_text(root / "omg_TestVideos_WithoutLabels.csv", "link,start,end,video,utterance\n")
    for video, utterance in (("0a1b2c", "utterance_1"), ("0a1b2c", "utterance_2"), ("9z8y", "utterance_1")):
        write_video(root / "Videos" / "Train" / video / f"{utterance}.mp4", moving_face_frames(face, 5), fps=25)
    return root


def test_discover_labels_every_frame_of_an_utterance(release):
    items = omg.OmgAdapter().discover(str(release))
    assert [(i.video_id, i.split, i.subject_id) for i in items] == [
        ("0a1b2c/utterance_1", "train", "0a1b2c"), ("0a1b2c/utterance_2", "train", "0a1b2c"),
        ("9z8y/utterance_1", "validation", "9z8y")]
    first = items[0]
    assert first.labels.num_frames >= 5
    np.testing.assert_allclose(first.labels.valence, -0.25)
    np.testing.assert_allclose(first.labels.arousal, 0.61)  # Arousal stays in [0, 1].
    np.testing.assert_array_equal(first.labels.expression, schema.EXPRESSIONS.index("happiness"))
    np.testing.assert_array_equal(items[1].labels.expression, schema.EXPRESSIONS.index("neutral"))
    assert first.info["utterance"] == "utterance_1.mp4"


def test_write_nests_utterances_under_their_video(release, tmp_path):
    manifest = omg.OmgAdapter().write(str(release), str(tmp_path / "out"), progress=None,
                                      only_splits=["validation"])
    assert manifest["totals"]["ok"] == 1
    (record,) = read_records(tmp_path / "out" / "validation" / "9z8y" / "utterance_1.tfrecord")
    assert record[schema.VIDEO_ID] == b"9z8y/utterance_1"
    np.testing.assert_allclose(record[schema.VALENCE], 0.1, rtol=1e-6)
    np.testing.assert_array_equal(record[schema.EXPRESSION], schema.EXPRESSIONS.index("anger"))


def test_errors_name_the_csv_line(release):
    path = release / "omg_ValidationVideos.csv"
    path.write_text(HEADER + "https://youtu.be/b,1.0,2.0,9z8y,utterance_1.mp4,-0.4,0.1,0\n")
    with pytest.raises(ValueError, match=r"omg_ValidationVideos.csv:2: arousal -0.4 outside \[0.0, 1.0\]"):
        omg.OmgAdapter().discover(str(release))
    path.write_text(HEADER + "https://youtu.be/b,1.0,2.0,9z8y,utterance_7.mp4,0.4,0.1,0\n")
    with pytest.raises(ValueError, match="no clip 9z8y/utterance_7.mp4"):
        omg.OmgAdapter().discover(str(release))
    assert len(omg.OmgAdapter(missing="skip").discover(str(release))) == 2
    path.write_text("video,start\n")
    with pytest.raises(ValueError, match=r"missing columns \['utterance'\]"):
        omg.OmgAdapter().discover(str(release))

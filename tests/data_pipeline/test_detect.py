"""dlib face detection, 68 landmarks and face tracks on a real face.

The face is scikit-image's bundled `astronaut.png` (Eileen Collins, public
domain), shipped inside the scikit-image wheel; no download.
"""

import cv2
import numpy as np
import pytest
from skimage import data

from data_pipeline.faces import align, detect

# Face box of astronaut.png found by the HOG detector, checked by eye once.
FACE_BOX = (179, 83, 267, 171)


@pytest.fixture(scope="module")
def astronaut():
    return data.astronaut()


@pytest.fixture(scope="module")
def landmarker():
    return detect.LandmarkDetector()


def _inside(points, box, margin=10):
    x0, y0, x1, y1 = box
    return np.all((points[:, 0] > x0 - margin) & (points[:, 0] < x1 + margin)
                  & (points[:, 1] > y0 - margin) & (points[:, 1] < y1 + margin))


def test_hog_finds_the_face_and_68_landmarks(astronaut, landmarker):
    faces = detect.FaceDetector("hog")(astronaut)
    assert len(faces) == 1
    assert detect.iou(faces[0].box, FACE_BOX) > 0.8
    points = landmarker(astronaut, faces[0].box)
    assert points.shape == (68, 2) and points.dtype == np.float32
    assert _inside(points, faces[0].box)
    left, right, nose, mouth_left, mouth_right = align.anchors(points)
    # Anatomy, image coordinates: eyes level and apart, nose below them, mouth below the nose.
    assert right[0] - left[0] > 25 and abs(right[1] - left[1]) < 10
    assert nose[1] > left[1] + 10 and mouth_left[1] > nose[1] and mouth_right[0] > mouth_left[0]


def test_score_threshold_and_no_face(astronaut):
    assert detect.FaceDetector("hog", score_threshold=5.0)(astronaut) == []
    assert detect.FaceDetector("hog")(np.full((200, 200, 3), 128, np.uint8)) == []


def test_upsampling_finds_a_small_face(astronaut):
    small = cv2.resize(astronaut, (160, 160), interpolation=cv2.INTER_AREA)  # Face about 28 px.
    assert detect.FaceDetector("hog", upsample=0)(small) == []
    faces = detect.FaceDetector("hog", upsample=2)(small)
    assert len(faces) >= 1
    scaled = tuple(v * 160 / 512 for v in FACE_BOX)
    assert max(detect.iou(f.box, scaled) for f in faces) > 0.5


def test_cnn_detector_finds_the_face(astronaut):
    # MMOD finds faces of 80 px and up; a 300x260 window keeps the face at full size and the test fast.
    window = np.ascontiguousarray(astronaut[:300, 100:360])
    faces = detect.FaceDetector("cnn")(window)
    assert len(faces) == 1 and faces[0].score > 0.5
    x0, y0, x1, y1 = FACE_BOX
    assert detect.iou(faces[0].box, (x0 - 100, y0, x1 - 100, y1)) > 0.6


def test_landmarks_on_a_pre_cropped_face(astronaut, landmarker):
    x0, y0, x1, y1 = FACE_BOX
    crop = np.ascontiguousarray(astronaut[y0:y1, x0:x1])
    on_crop = landmarker(crop)  # box=None: the whole image is the face.
    on_frame = landmarker(astronaut, FACE_BOX) - np.array([x0, y0], np.float32)
    assert np.abs(on_crop - on_frame).mean() < 2.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="'dpm'"):
        detect.FaceDetector("dpm")
    with pytest.raises(ValueError, match="-2"):
        detect.FaceDetector("hog", upsample=-2)  # -1 is AUTO_UPSAMPLE.
    with pytest.raises(ValueError, match="float64"):
        detect.FaceDetector()(np.zeros((5, 5, 3)))
    with pytest.raises(ValueError, match="'first'"):
        detect.FaceTracker("first")


def _face(x, y, size=50, score=1.0):
    return detect.Detection((x, y, x + size, y + size), score)


def test_iou_tracker_keeps_the_person_seen_most():
    tracker = detect.FaceTracker("iou")
    # Person 0 is in all 6 frames; person 1 (larger) in 3.
    for n in range(6):
        faces, persons = [_face(10 + 5 * n, 10)], [0]
        if n in (1, 2, 3):
            faces.append(_face(200, 100 + 3 * n, size=80))
            persons.append(1)
        assert [t for t, _ in tracker.update(n, faces, persons)] == persons
    assert tracker.main_track() == 0
    assert tracker.kept_tracks() == [0]
    assert detect.FaceTracker("all").kept_tracks() == []
    with pytest.raises(ValueError, match="person id"):
        detect.FaceTracker("all").update(0, [_face(0, 0)])


def test_largest_tracker_keeps_the_biggest_face_only():
    tracker = detect.FaceTracker("largest")
    out = tracker.update(0, [_face(0, 0, 30, score=2.0), _face(100, 100, 60, score=0.1)])
    assert [(t, d.box) for t, d in out] == [(0, (100, 100, 160, 160))]
    assert tracker.update(1, []) == []



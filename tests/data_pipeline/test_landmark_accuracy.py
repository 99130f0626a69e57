"""The pipeline's 68 landmarks on real faces turned 0-45 degrees, against references that move with a known warp.

Both real photographs (`data_pipeline.synthetic.face_scenes`), 60 and 120 px faces in
640x360 frames, frontal and turned 45 degrees both ways: a subset of the scenes
of `bench/landmarks.py` (`data_pipeline.synthetic.landmark_accuracy`), the same frames;
references are dlib HOG + shape predictor on the original photos. Targets: NME <= 0.06 at
every yaw, on average no worse than plain dlib (HOG detector + the same shape
predictor) on the faces it finds (within 0.002 on frontal faces, where both are at
their best: a one-pixel shift of HOG's box moves plain dlib's NME there by
0.0034 on average), aligned eye centres within 1.5 px of where the true points put
them and, on frontal faces, spread by at most 2 px (at every yaw with the affine alignment). `bench/landmarks.py` measures all detectors and sizes.

Where a detector's box is far from the box the shape predictor was trained on
(HOG's boxes of the 60 px Grace Hopper turned 15 degrees, the short-range
BlazeFace box of the 60 px astronaut turned 45 degrees), the fit checked against
its mirror-image fit is redone from shifted starts (`track.FaceFollower`
`recheck_disagreement`): each of those faces is then within NME 0.06 (plain
dlib: 0.19-0.27), and without the recheck it is not.
"""

import dataclasses

import numpy as np
import pytest

from data_pipeline.faces import detect, track
from data_pipeline.synthetic import face_scenes, landmark_accuracy

DETECTORS = ("blazeface", "hog")  # The default, and dlib's own detector (cheap; it misses some turned faces).


@pytest.fixture(scope="module")
def scenes():
    return landmark_accuracy.scenes()


@pytest.fixture(scope="module")
def rows(scenes):
    chosen = [s for s in scenes if abs(s.yaw) in (0, 45) and s.face_px in (60, 120)]
    return landmark_accuracy.evaluate(chosen, DETECTORS, plain=("dlib_hog",))


@pytest.mark.parametrize("yaw", [0, 45])
@pytest.mark.parametrize("path", [f"{d}/{step}" for d in DETECTORS for step in ("detect", "track")])
def test_landmarks_meet_the_targets_on_turned_real_faces(rows, yaw, path):
    entry = landmark_accuracy.summarise(rows)[str(yaw)][path]
    if path.startswith("blazeface"):
        assert entry["missed"] == 0
    assert entry["nme"] <= 0.06, entry  # Measured 0.022-0.023 frontal, 0.054-0.056 at 45 degrees.
    assert entry["minus_dlib_best_same_faces"] <= 0.002, entry
    assert entry["eye_error_px"] <= 1.5, entry
    if yaw == 0:
        assert entry["eye_spread_px"] <= 2.0, entry
    # [FBN]'s affine alignment (`--alignment affine`) of the same fits keeps the eyes within 2 px at 45
    # degrees too, where [MC]'s similarity map cannot undo the turn (true points: 2.35 px over all sizes).
    affine = landmark_accuracy.summarise(rows, "affine")[str(yaw)][path]
    assert affine["eye_spread_px"] <= 2.0 and affine["eye_error_px"] <= 1.5, affine


# Faces whose detector box is far off: (person, yaw, detector); all 60 px.
BAD_BOXES = (("grace_hopper", -15.0, "hog"), ("grace_hopper", 15.0, "hog"), ("astronaut", 45.0, "blazeface_short"))


@pytest.mark.parametrize("recheck", [True, False])
def test_fits_from_far_off_boxes_are_rechecked(scenes, recheck):
    options = {} if recheck else {"recheck_disagreement": np.inf}
    landmarker = detect.LandmarkDetector()
    for person, yaw, detector in BAD_BOXES:
        (scene,) = [s for s in scenes if (s.person, s.yaw, s.face_px) == (person, yaw, 60.0)]
        timing = {}
        (row,) = landmark_accuracy.evaluate([scene], [detector], landmarker, plain=("dlib_hog",), timing=timing,
                                            **options)
        errors = [row["nme"][f"{detector}/{step}"] for step in ("detect", "track")]
        if recheck:
            assert timing["rechecked"][-1] == 1, (person, yaw, timing)
            # Measured 0.029-0.049 (without the recheck 0.20-0.51; plain dlib 0.19-0.27 where HOG finds the face).
            assert max(errors) <= 0.06, (person, yaw, row["nme"])
            if row["nme"]["dlib_hog"] is not None:
                assert max(errors) < row["nme"]["dlib_hog"], (person, yaw, row["nme"])
        else:
            assert min(errors) > 0.09, (person, yaw, row["nme"])


def test_rechecked_fits_hold_through_redetections(scenes):
    """A face followed on still frames is re-detected every 10th frame from the same far-off box: each
    detection is rechecked, every frame stays within NME 0.06 (measured 0.029-0.049)."""
    landmarker = detect.LandmarkDetector()
    for person, yaw, detector in BAD_BOXES[1:]:
        (scene,) = [s for s in scenes if (s.person, s.yaw, s.face_px) == (person, yaw, 60.0)]
        follower = track.FaceFollower(detect.FaceDetector(detector), landmarker, detect_every=10)
        for _ in range(21):
            faces = follower(scene.frame)
            assert min(face_scenes.landmark_error(f.points, scene.truth) for f in faces) <= 0.06, (person, yaw)
        assert follower.detections_run == follower.rechecks == 3


def test_faces_that_always_disagree_a_little_are_not_rechecked_at_every_detection():
    """Grace Hopper's fits (glasses) disagree by 0.010-0.019 box sides from detection to detection; after
    one recheck that keeps its fit, re-detections of the followed face skip it (`track.RECHECK_REPEAT`)."""
    video, _ = face_scenes.talking_head(90, size=(360, 640), person="grace_hopper", face_px=70, seed=1)
    follower = track.FaceFollower(detect.FaceDetector("blazeface"), detect.LandmarkDetector())
    for frame in video:
        follower(frame)
    assert follower.detections_run >= 9
    assert follower.rechecks <= 1, (follower.rechecks, follower.detections_run)


def test_mirror_average_matches_mirrored_image():
    """Fitting the mirrored image in the mirrored box and mirroring back gives the same average."""
    image, truth = face_scenes.reference("astronaut")
    box = detect.box_from_landmarks(truth)
    landmarker = detect.LandmarkDetector()
    averaged = landmarker(image, box, mirror=True)
    width = image.shape[1]
    flipped = landmarker(np.ascontiguousarray(image[:, ::-1]), (width - box[2], box[1], width - box[0], box[3]),
                         mirror=True)
    flipped[:, 0] = width - 1 - flipped[:, 0]
    np.testing.assert_allclose(flipped[detect.MIRROR_68], averaged, atol=1.0)  # Box rounding only.
    assert face_scenes.landmark_error(averaged, truth) < 0.03


class _WithoutEyes:
    """A detector's boxes without its eye keypoints (as HOG and MMOD give them)."""

    def __init__(self, detector):
        self.kind, self._detector = detector.kind, detector

    def __call__(self, image):
        return [dataclasses.replace(d, eyes=None) for d in self._detector(image)]


def test_rolled_turned_faces_are_fitted_from_the_eye_keypoints():
    """The astronaut turned 15 degrees and rolled 30 in the image, 60 and 120 px, short-range BlazeFace: the
    fit in the box turned upright by the eye keypoints reaches NME 0.013-0.017 at the detection and tracked
    (`track.FaceFollower._rolled_fit`); from the axis-aligned box alone it is 0.39-0.68."""
    detector, landmarker = detect.FaceDetector("blazeface_short"), detect.LandmarkDetector()
    for scene in landmark_accuracy.scenes(angles=(30.0,)):  # The frames of `bench/landmarks.py --angles 30`.
        if (scene.person, scene.yaw) != ("astronaut", 15.0) or scene.face_px == 90:
            continue
        errors = [face_scenes.landmark_error(p, scene.truth) for p in landmark_accuracy.pipeline_points(
            detector, landmarker, scene.frame, scene.truth)]
        assert max(errors) <= 0.06, (scene.face_px, errors)
        without = [face_scenes.landmark_error(p, scene.truth) for p in landmark_accuracy.pipeline_points(
            _WithoutEyes(detector), landmarker, scene.frame, scene.truth)]
        assert min(without) > 0.2, (scene.face_px, without)

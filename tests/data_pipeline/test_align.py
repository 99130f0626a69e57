"""5-anchor alignment onto the frontal template ([MC] Sec. 4, [FBN] Sec. IV)."""

import numpy as np
import pytest

from data_pipeline.faces import align


def _landmarks_with_anchors(points5, rng):
    """68 landmarks whose 5 anchors equal `points5`: eye rings symmetric about the centres."""
    landmarks = rng.uniform(50, 150, size=(68, 2))
    ring = np.array([[-4, 0], [-2, -2], [2, -2], [4, 0], [2, 2], [-2, 2]], np.float64)
    landmarks[36:42] = points5[0] + ring
    landmarks[42:48] = points5[1] + ring
    landmarks[30], landmarks[48], landmarks[54] = points5[2], points5[3], points5[4]
    return landmarks


def _similarity(angle, scale, shift):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[scale * c, -scale * s, shift[0]], [scale * s, scale * c, shift[1]]])


@pytest.mark.parametrize("crop_size", [96, 64, 224])
@pytest.mark.parametrize("method", ["similarity", "affine"])
def test_known_similarity_maps_anchors_back_to_template(crop_size, method):
    rng = np.random.default_rng(1)
    target = align.template(crop_size)
    # Source face = the template moved by a known similarity (rotated 20 deg, scaled 1.7x).
    forward = _similarity(np.deg2rad(20), 1.7, (140.0, 60.0))
    source = align.apply_transform(forward, target)
    landmarks = _landmarks_with_anchors(source, rng)
    frame = rng.integers(0, 256, size=(360, 480, 3), dtype=np.uint8)
    crop, landmarks_crop, matrix = align.align_face(frame, landmarks, crop_size, method)
    assert crop.shape == (crop_size, crop_size, 3) and crop.dtype == np.uint8
    assert matrix.shape == (2, 3)
    assert np.abs(align.anchors(landmarks_crop) - target).max() < 0.5
    # The stored matrix maps every source landmark to its crop landmark.
    np.testing.assert_allclose(align.apply_transform(matrix, landmarks), landmarks_crop, atol=1e-6)
    # And it is the inverse of the known transform.
    inverse = np.linalg.inv(np.vstack([forward, [0, 0, 1]]))[:2]
    np.testing.assert_allclose(matrix, inverse, atol=1e-6)


def test_similarity_fit_is_least_squares_and_has_no_shear():
    rng = np.random.default_rng(2)
    source = rng.uniform(0, 100, size=(5, 2))
    target = align.apply_transform(_similarity(-0.3, 0.6, (10, -4)), source) + rng.normal(0, 0.5, (5, 2))
    matrix = align.similarity_transform(source, target)
    linear = matrix[:, :2]
    assert linear[0, 0] == pytest.approx(linear[1, 1]) and linear[0, 1] == pytest.approx(-linear[1, 0])
    residual = ((align.apply_transform(matrix, source) - target) ** 2).sum()
    for delta in np.eye(6) * 1e-3:  # Any small perturbation of (a, b, tx, ty) does no better.
        a, b = linear[0, 0] + delta[0], linear[1, 0] + delta[1]
        other = np.array([[a, -b, matrix[0, 2] + delta[2]], [b, a, matrix[1, 2] + delta[3]]])
        assert ((align.apply_transform(other, source) - target) ** 2).sum() >= residual - 1e-9


def test_mirrored_points_are_not_reflected():
    source = align.template(96) * np.array([-1.0, 1.0])  # A mirror image of the template.
    matrix = align.similarity_transform(source, align.template(96))
    assert np.linalg.det(matrix[:, :2]) > 0


@pytest.mark.parametrize("scale", [1.0, 0.2])
def test_crop_pixels_follow_the_matrix(scale):
    # A white dot in the frame lands where the matrix sends it, also when the
    # face is large and the frame is pre-reduced (scale 0.2 triggers it).
    target = align.template(96)
    forward = _similarity(0.1, 1 / scale, (50.0, 40.0))
    landmarks = _landmarks_with_anchors(align.apply_transform(forward, target), np.random.default_rng(3))
    frame = np.zeros((800, 900, 3), np.uint8)
    dot = align.apply_transform(forward, [[30.0, 70.0]])[0]
    half = int(round(3 / scale))
    x, y = int(round(dot[0])), int(round(dot[1]))
    frame[y - half:y + half + 1, x - half:x + half + 1] = 255
    crop, _, matrix = align.align_face(frame, landmarks, 96)
    expected = align.apply_transform(matrix, [[x, y]])[0]
    ys, xs = np.nonzero(crop[..., 0] > 127)
    assert len(xs) > 0
    assert abs(xs.mean() - expected[0]) < 1.0 and abs(ys.mean() - expected[1]) < 1.0


def test_bad_arguments_name_the_value():
    frame = np.zeros((10, 10, 3), np.uint8)
    good = _landmarks_with_anchors(align.template(96), np.random.default_rng(0))
    with pytest.raises(ValueError, match="'rigid'"):
        align.align_face(frame, good, 96, "rigid")
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        align.align_face(frame, good[:5], 96)
    with pytest.raises(ValueError, match="float32"):
        align.align_face(frame.astype(np.float32), good, 96)
    with pytest.raises(ValueError, match="3"):
        align.template(3)
    with pytest.raises(ValueError, match="coincide"):
        align.similarity_transform(np.zeros((5, 2)), align.template(96))

"""Decoding and timestamp resampling to 30 fps ([AW2] Sec. II-C)."""

import fractions

import cv2
import numpy as np
import pytest

from data_pipeline.media import decode


def _gray_frames(count, step=20, shape=(48, 64)):
    """Frame i is flat gray 10 + step * i, so its content identifies it after lossy coding."""
    return [np.full(shape + (3,), 10 + step * i, np.uint8) for i in range(count)]


def _expected(count, source_fps, target_fps):
    """Brute force: sample times k/target while < count/source, nearest source frame, ties earlier."""
    source = [fractions.Fraction(i) / source_fps for i in range(count)]
    end = fractions.Fraction(count) / source_fps
    out = []
    k = 0
    while fractions.Fraction(k) / target_fps < end:
        t = fractions.Fraction(k) / target_fps
        distances = [abs(s - t) for s in source]
        out.append((distances.index(min(distances)), float(t)))
        k += 1
    return out


@pytest.mark.parametrize("source_fps,count", [(25, 11), (60, 12), (30, 5)])
def test_resampled_indices_and_times_are_exact(tmp_path, source_fps, count):
    path = str(tmp_path / "clip.mp4")
    decode.write_video(path, _gray_frames(count, step=200 // count), fps=source_fps)
    frames = list(decode.decode(path, fps=30))
    expected = _expected(count, source_fps, 30)
    assert [(f.source_index, f.time) for f in frames] == expected
    for f in frames:
        assert f.source_time == pytest.approx(f.source_index / source_fps, abs=1e-9)
        # The index is the frame actually shown, not just arithmetic on times.
        assert abs(float(f.image.mean()) - (10 + (200 // count) * f.source_index)) < 4


def test_upsampling_25_to_30_repeats_every_fifth_frame(tmp_path):
    path = str(tmp_path / "clip.mp4")
    decode.write_video(path, _gray_frames(10), fps=25)
    indices = [f.source_index for f in decode.decode(path, fps=30)]
    assert len(indices) == 12
    assert indices == [0, 1, 2, 2, 3, 4, 5, 6, 7, 7, 8, 9]


def test_no_resampling_keeps_every_frame(tmp_path):
    path = str(tmp_path / "clip.mkv")
    decode.write_video(path, _gray_frames(7), fps=25)
    frames = list(decode.decode(path, fps=0))
    assert [f.source_index for f in frames] == list(range(7))
    assert [f.time for f in frames] == [f.source_time for f in frames]
    assert frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8


def test_resample_ntsc_rate_is_exact():
    source = [(None, i, fractions.Fraction(i * 1001, 30000)) for i in range(30)]
    frames = list(decode.resample(iter(source), 30000 / 1001))
    assert [f.source_index for f in frames] == list(range(30))


def test_image_is_one_frame_rgb(tmp_path):
    image = np.zeros((20, 30, 3), np.uint8)
    image[..., 0] = 255  # Red in RGB.
    path = str(tmp_path / "still.png")
    cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    frames = list(decode.decode(path))
    assert len(frames) == 1
    np.testing.assert_array_equal(frames[0].image, image)
    assert (frames[0].source_index, frames[0].time) == (0, 0.0)


def test_bad_files_raise_naming_the_file(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video")
    good = tmp_path / "good.mp4"
    decode.write_video(str(good), _gray_frames(10), fps=25)
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    # Matroska keeps its header at the front: half a file decodes, then stops short.
    good_mkv = tmp_path / "good.mkv"
    decode.write_video(str(good_mkv), [np.random.default_rng(i).integers(0, 255, (48, 64, 3), np.uint8)
                                       for i in range(30)], fps=25)
    truncated_mkv = tmp_path / "cut.mkv"
    truncated_mkv.write_bytes(good_mkv.read_bytes()[: good_mkv.stat().st_size // 2])
    assert len(list(decode.decode(str(good_mkv), fps=0))) == 30
    # A video that stops part way keeps its decodable frames and says where it stopped.
    with decode.collect_truncations() as found:
        kept = list(decode.decode(str(truncated_mkv), fps=0))
    assert 0 < len(kept) < 30
    assert [k.source_index for k in kept] == list(range(len(kept)))
    (truncation,) = found
    assert truncation.frames == len(kept) and str(truncated_mkv) in str(truncation)
    broken_image = tmp_path / "broken.jpg"
    broken_image.write_bytes(b"\xff\xd8 nope")
    for path in (text, truncated, broken_image, tmp_path / "missing.mp4"):
        with pytest.raises(decode.DecodeError, match=str(path)):
            list(decode.decode(str(path)))


def test_list_inputs_recurses_and_filters_by_extension(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/b/x.mp4", "a/y.PNG", "z.avi", "readme.txt"):
        (tmp_path / name).write_bytes(b"")
    found = [p[len(str(tmp_path)) + 1:] for p in decode.list_inputs(str(tmp_path))]
    assert sorted(found) == ["a/b/x.mp4", "a/y.PNG", "z.avi"]
    assert decode.list_inputs(str(tmp_path / "z.avi")) == [str(tmp_path / "z.avi")]
    with pytest.raises(FileNotFoundError, match="nowhere"):
        decode.list_inputs(str(tmp_path / "nowhere"))


def test_negative_fps_is_rejected():
    with pytest.raises(ValueError, match="-5"):
        list(decode.resample(iter([]), -5))


def test_opencv_fallback_when_pyav_cannot_open(tmp_path, monkeypatch):
    path = str(tmp_path / "clip.mp4")
    decode.write_video(path, _gray_frames(10), fps=25)

    def refuse(p, convert_from=None):
        raise decode.DecodeError(f"{p}: cannot open with PyAV: simulated")
        yield  # pragma: no cover - makes this a generator like the real one.

    monkeypatch.setattr(decode, "_pyav_frames", refuse)
    frames = list(decode.decode(path, fps=30))
    assert [f.source_index for f in frames] == [0, 1, 2, 2, 3, 4, 5, 6, 7, 7, 8, 9]
    assert abs(float(frames[-1].image.mean()) - (10 + 20 * 9)) < 4

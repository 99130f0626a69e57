"""Predict and preprocessing share one front-end (`data_pipeline.faces.frontend`): the crops and landmarks
predict feeds the model are the bytes preprocessing writes; turned and anamorphic clips predict as
the plain clip does, in displayed pixels."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import real_videos

from affnet.predict import outputs, sources, windows
from data_pipeline.faces import chunks, frontend
from data_pipeline.media import decode
from data_pipeline.jobs import preprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("shared")
    frames = real_videos.moving_face_frames(12)
    paths = {}
    for name, stored in {"plain": {}, "rot90": {"rotation": 90}, "anamorphic": {"sample_aspect_ratio": 2}}.items():
        paths[name] = str(root / f"{name}.mp4")
        decode.write_video(paths[name], frames, fps=25, **stored)
    return paths


def _fed(predictor, path, monkeypatch):
    """(table, stats, [(row, crop, crop landmarks)] handed to the model's windows) of predicting `path`."""
    fed = []
    add = windows.Windower.add

    def spy(self, track_id, row, crop, landmarks, spectrogram=None):
        fed.append((row, crop, landmarks))
        return add(self, track_id, row, crop, landmarks, spectrogram)

    monkeypatch.setattr(windows.Windower, "add", spy)
    table, stats = predictor.predict_source(_source(path))
    return table, stats, fed


def _source(path):
    found, = sources.expand([path])
    return found


def test_predict_feeds_the_model_preprocessings_crops_and_landmarks_byte_for_byte(exports, clips, monkeypatch):
    import affnet

    predictor = affnet.Predictor(exports["va"], progress=False)
    table, _, fed = _fed(predictor, clips["plain"], monkeypatch)
    records, _ = preprocess.process_video(clips["plain"], predictor.preprocess_options)
    record, = records
    written = {t: (image, points) for t, image, points in
               zip(record.timestamp, record.encoded_images, record.landmarks.reshape(-1, 136))}
    assert len(fed) == record.num_frames == 15  # 12 frames at 25 fps -> 15 at 30.
    for row, crop, points in fed:
        image, expected = written[table.timestamp[row]]
        assert frontend.encode_crop(crop, predictor.preprocess_options) == image
        assert points.tobytes() == expected.astype(np.float32).tobytes()


def test_predict_aligns_as_the_training_crops_were_aligned(clips, tmp_path, monkeypatch):
    # An export of a model trained on [FBN]'s affine crops (export.json alignment, from its data's report.json).
    import affnet
    from predict_fakes import make_export

    export = make_export("va", str(tmp_path / "affine_export"), extra={"alignment": "affine"})
    predictor = affnet.Predictor(export, progress=False)
    assert predictor.preprocess_options.alignment == "affine"
    table, _, fed = _fed(predictor, clips["plain"], monkeypatch)
    encoded = {}
    for alignment in ("affine", "similarity"):
        options = dataclasses.replace(predictor.preprocess_options, alignment=alignment)
        record, = preprocess.process_video(clips["plain"], options)[0]
        encoded[alignment] = dict(zip(record.timestamp, record.encoded_images))
    crops = [frontend.encode_crop(crop, predictor.preprocess_options) for _, crop, _ in fed]
    assert crops == [encoded["affine"][table.timestamp[row]] for row, _, _ in fed]
    assert crops != [encoded["similarity"][table.timestamp[row]] for row, _, _ in fed]

    info_path = os.path.join(export, "export.json")
    with open(info_path) as f:
        info = json.load(f)
    with open(info_path, "w") as f:
        json.dump({**info, "alignment": "afine"}, f)
    with pytest.raises(ValueError, match=r"affine_export: export.json alignment must be one of .*did you mean 'affine'"):
        affnet.Predictor(export, progress=False)


def test_turned_and_anamorphic_clips_predict_as_the_plain_clip_and_the_run_prints_no_warning(exports, clips):
    """launch/predict.py over the plain, turned (display matrix 90) and anamorphic (2:1) clips: the same
    boxes in displayed pixels and faces found, summary.json names the correction, stderr no warning."""
    folder = os.path.dirname(clips["plain"])
    out = os.path.join(folder, "predicted")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "launch", "predict.py"), f"--input={folder}",
                           f"--model={exports['va']}", f"--output={out}"], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT, AFFNET_TEST_FRESH_PYTHON="1"), timeout=600)
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr.lower(), done.stderr  # Start-up included: a fresh interpreter.
    entries = {os.path.basename(e["input"]): e for e in json.load(open(os.path.join(out, "summary.json")))["inputs"]}
    assert "display" not in entries["plain.mp4"]
    plain = outputs.read_table(os.path.join(out, "plain.csv"))
    for name, correction in (("rot90", {"rotation": 90}), ("anamorphic", {"sample_aspect_ratio": "2:1"})):
        assert {k: entries[f"{name}.mp4"]["display"][k] for k in correction} == correction
        table = outputs.read_table(os.path.join(out, f"{name}.csv"))
        assert table.success.sum() == plain.success.sum() == 15
        for column in ("face_x", "face_y", "face_w", "face_h"):  # Displayed pixels: the plain clip's boxes.
            assert np.abs(table[column] - plain[column]).max() < 6, (name, column)


@pytest.mark.parametrize("track", ["largest", "all"])
def test_a_file_split_in_time_chunks_gives_preprocessings_chunked_crops(exports, tmp_path, monkeypatch, track):
    """A file long enough to split runs the front-end in preprocessing's own time chunks over processes
    (`chunks.stream`) and still feeds the model preprocessing's bytes, in order (with "all", the later
    chunk's person ids joined by descriptor as preprocessing joins them)."""
    import affnet

    path = str(tmp_path / "long.mp4")
    decode.write_video(path, real_videos.moving_face_frames(40, size=(240, 448)), fps=25)  # 48 frames at 30 fps.
    monkeypatch.setattr(chunks, "MIN_CHUNK_SECONDS", 0.5)  # Read in this process when planning.
    cores = os.cpu_count() or 1
    if len(chunks.plan(path, cores)) < 2:
        pytest.skip("one core: nothing to split across")
    predictor = affnet.Predictor(exports["va"], progress=False, track=track, workers=cores)
    table, stats, fed = _fed(predictor, path, monkeypatch)
    records, report = preprocess.process_video(path, predictor.preprocess_options, cores=cores)
    assert set(table.face_id.dropna()) == {0}
    assert report["chunks"] >= 2 and stats["frames"] == report["frames_decoded"] == 48
    record, = records
    assert [row for row, _, _ in fed] == sorted(row for row, _, _ in fed)  # Frames in order.
    assert [table.timestamp[row] for row, _, _ in fed] == record.timestamp.tolist()
    for (_, crop, points), image, expected in zip(fed, record.encoded_images, record.landmarks.reshape(-1, 136)):
        assert frontend.encode_crop(crop, predictor.preprocess_options) == image
        assert points.tobytes() == expected.astype(np.float32).tobytes()

"""Every export kind predicts through `affnet.Predictor`: multi-task (VA + expressions + AUs),
categorical (expressions only, no VA columns) and audio-visual (spectrogram from the video's audio)."""

import json
import shutil

import numpy as np
import pytest
from predict_fakes import moving_face_frames

from data_pipeline.records import schema


def test_multitask_columns_hold_probabilities(exports):
    import affnet

    table = affnet.Predictor(exports["multitask"], progress=False).predict(moving_face_frames(count=7))
    expressions = [f"expression_{name}" for name in schema.EXPRESSIONS]
    info = json.load(open(f"{exports['multitask']}/export.json"))
    assert list(table.columns) == ["frame_index", "timestamp", "face_id", "success", "confidence", "face_x",
                                   "face_y", "face_w", "face_h", "valence", "arousal", *expressions,
                                   *info["au_names"]]
    face = table[table.success == 1]
    assert len(face) >= 6
    np.testing.assert_allclose(face[expressions].sum(axis=1), 1.0, rtol=1e-5)
    assert face[info["au_names"]].stack().between(0, 1).all()


def test_categorical_export_has_no_valence_arousal(exports, tmp_path):
    import affnet

    predictor = affnet.Predictor(exports["categorical"], progress=False)
    summary = predictor.run([str(_still(tmp_path))], str(tmp_path / "out"))
    assert summary["totals"]["ok"] == 1
    import pandas as pd

    table = pd.read_csv(tmp_path / "out" / "still.csv")
    assert "valence" not in table and "expression_neutral" in table
    assert table.success.iloc[0] == 1
    np.testing.assert_allclose(table.filter(like="expression_").sum(axis=1), 1.0, rtol=1e-4)


def _still(tmp_path):
    import cv2
    from predict_fakes import face

    path = tmp_path / "still.png"
    cv2.imwrite(str(path), cv2.cvtColor(face(), cv2.COLOR_RGB2BGR))
    return path


@pytest.mark.slow
def test_audio_visual_export_uses_the_video_audio(exports, tmp_path):
    import affnet
    from data_pipeline.media import audio, decode

    export = tmp_path / "export"
    shutil.copytree(exports["audio_visual"], export)
    info = json.loads((export / "export.json").read_text())
    info["audio"] = {"context": 16, "bins": 64, "scale": "mel", "normalization": "fixed"}
    (export / "export.json").write_text(json.dumps(info))
    frames = moving_face_frames(count=12)
    sr, fps = audio.SAMPLE_RATE, 30
    t = np.arange(int(len(frames) / fps * sr)) / sr
    tone = (0.5 * np.sin(2 * np.pi * 800 * t)).astype(np.float32)
    audio.write_video_with_audio(str(tmp_path / "talk.mp4"), frames, tone, fps=fps)
    decode.write_video(str(tmp_path / "mute.mp4"), frames, fps=fps)

    predictor = affnet.Predictor(str(export), progress=False)
    summary = predictor.run([str(tmp_path / "talk.mp4"), str(tmp_path / "mute.mp4")], str(tmp_path / "out"),
                            plots=False)
    by_name = {e["input"].rsplit("/", 1)[-1]: e for e in summary["inputs"]}
    assert by_name["talk.mp4"]["audio"] == "ok" and by_name["mute.mp4"]["audio"].startswith("missing")
    import pandas as pd

    talk = pd.read_csv(tmp_path / "out" / "talk.csv")
    mute = pd.read_csv(tmp_path / "out" / "mute.csv")
    assert talk.success.sum() >= 10 and talk.expression_neutral.notna().sum() == talk.success.sum()
    # Same pictures, different sound: the spectrogram input reaches the model.
    assert np.max(np.abs(talk.valence.to_numpy() - mute.valence.to_numpy())) > 1e-6

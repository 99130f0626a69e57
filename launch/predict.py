"""Predict per-frame valence/arousal of a video with an exported model.

  python launch/predict.py --input VIDEO --model EXPORT_DIR --output DIR

Writes DIR/<name>.csv (frame_index, timestamp, face_id, valence, arousal;
frames without a face have empty face_id/values), DIR/<name>_va.png (valence
and arousal over time) and DIR/<name>_va_hist.png (2-D histogram).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _paths  # noqa: E402

_paths.ensure_importable()
import _cli  # noqa: E402  (before TensorFlow: silences its C++ logs)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

_INPUT = flags.DEFINE_string("input", None, "Video (or image) file.", required=True)
_MODEL = flags.DEFINE_string("model", None, "Export directory of launch/export.py.", required=True)
_OUTPUT = flags.DEFINE_string("output", None, "Output directory.", required=True)
_SEQ_LEN = flags.DEFINE_integer("seq_len", 0, "Window length; 0 = the run's seq_len (export.json), else 80.")
_TRACK = flags.DEFINE_enum("track", "largest", ("largest", "iou", "all"), "Faces: the largest, or every track.")
_DETECTOR = flags.DEFINE_enum("detector", "hog", ("hog", "cnn"), "dlib detector.")
_UPSAMPLE = flags.DEFINE_integer("upsample", 0, "dlib detector upsampling (small faces).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from affnet.training import export, inference
    from data_pipeline import decode, preprocess

    if not os.path.exists(_INPUT.value):
        print(f"error: input {_INPUT.value} does not exist", file=sys.stderr)
        sys.exit(2)
    try:
        serve, info = export.load_serving(_MODEL.value)
        seq_len = _SEQ_LEN.value or int(info.get("seq_len", 80))
        options = preprocess.PreprocessOptions(detector=_DETECTOR.value, upsample=_UPSAMPLE.value,
                                               track=_TRACK.value, crop_size=int(info.get("crop_size", 96)))
        rows, report = inference.predict_video(_INPUT.value, serve, seq_len, options, options.crop_size)
    except (ValueError, decode.DecodeError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    os.makedirs(_OUTPUT.value, exist_ok=True)
    name = os.path.splitext(os.path.basename(_INPUT.value))[0]
    paths = {"csv": os.path.join(_OUTPUT.value, f"{name}.csv"),
             "plot": os.path.join(_OUTPUT.value, f"{name}_va.png"),
             "histogram": os.path.join(_OUTPUT.value, f"{name}_va_hist.png")}
    inference.write_csv(rows, paths["csv"])
    inference.plot(rows, paths["plot"], paths["histogram"], title=name)
    with_face = sum(r.face_id is not None for r in rows)
    print(json.dumps({**paths, "rows": len(rows), "rows_with_face": with_face,
                      "preprocess": report}, indent=1))


def run():
    """The `affnet-predict` console script."""
    from data_pipeline.decode import DecodeError

    _cli.run(main, user_errors=(DecodeError,))


if __name__ == "__main__":
    run()

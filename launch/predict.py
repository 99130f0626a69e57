"""Predict per-frame affect of videos, images, folders, globs or a live stream with an export.

  python launch/predict.py --input VIDEO_OR_DIR [--input ...] --model EXPORT_DIR --output DIR
      [--output_format csv|parquet|abaw] [--landmarks] [--annotated_video] [--report] [--postprocess auto|none]
      [--batch_size 8] [--precision auto|float32|bfloat16|float16] [--backend auto|saved_model|onnx|tflite]
      [--track largest|all] [--seq_len N] [--max_frames N] [--noprogress]

Writes DIR/<input>.csv (or .parquet) per input (columns: README, "Predict
output"), DIR/<input>_va.png and _va_hist.png (valence/arousal over time per
face, 2-D histogram; exports with valence/arousal), DIR/<input>_annotated.mp4
with --annotated_video, DIR/<input>.html and DIR/index.html with --report (offline
pages: the video beside its traces), DIR/summary.json (with per-input statistics)
and DIR/index.csv (the statistics, a row per input and face) for the run. --input=0 reads
camera 0, --input=rtsp://... a stream (stop with --max_frames or Ctrl-C).
Re-running the same command resumes: inputs finished with the same model and
options are skipped (DIR/<input>.done.json, written last, marks them), partial
ones redone; other options or another model are refused unless --overwrite.
User mistakes print one line on stderr and exit 2.
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

from affnet.predict import runtime  # noqa: E402  (numpy only: --help stays fast)
from data_pipeline.faces import detect  # noqa: E402  (cv2 and numpy only: --help stays fast)

_INPUT = flags.DEFINE_multi_string("input", None, "Video, image, folder (recursive), glob, camera index "
                                   "or stream URL; repeat for more.", required=True)
_MODEL = flags.DEFINE_string("model", None, "Export directory of launch/export.py.", required=True)
_OUTPUT = flags.DEFINE_string("output", None, "Output directory.", required=True)
_FORMAT = flags.DEFINE_enum("output_format", "csv", ("csv", "parquet", "abaw"), "Per-input table format; abaw: "
                            "<input>.txt in the Aff-Wild2 challenge layout (valence,arousal per source frame, -5 "
                            "without a face).")
_LANDMARKS = flags.DEFINE_bool("landmarks", False, "Add the 68 landmarks in frame pixels (x_0..x_67, y_0..y_67).")
_ANNOTATED = flags.DEFINE_bool("annotated_video", False, "Write <input>_annotated.mp4: boxes, ids, VA gauge.")
_REPORT = flags.DEFINE_bool("report", False, "Write <input>.html per input (video beside its traces, offline) "
                            "and index.html linking every input with its statistics.")
_PLOTS = flags.DEFINE_bool("plots", True, "Write the valence/arousal plots per input.")
_POSTPROCESS = flags.DEFINE_enum("postprocess", "auto", ("auto", "none"),
                                 "auto: the median filter export.json carries (chosen on validation).")
_BATCH = flags.DEFINE_integer("batch_size", 8, "Windows per model call (all faces and chunks together).")
_PRECISION = flags.DEFINE_enum("precision", "auto", runtime.PRECISIONS,
                               "bfloat16: oneDNN bf16 rewrite of the SavedModel (CPUs with AVX512-BF16/AMX); "
                               "float16: CUDA float16 rewrite (GPUs); auto (SavedModel): float16 on a GPU, "
                               "bfloat16 where the CPU has AVX512-BF16/AMX, else float32.")
_BACKEND = flags.DEFINE_enum("backend", "auto", runtime.BACKENDS,
                             "Model format; auto takes what the export holds (SavedModel first).")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 0, "Window length; 0 = the run's seq_len (export.json).")
_TRACK = flags.DEFINE_enum("track", "largest", ("largest", "all"), "Faces: the largest, or every person (one id per person, by face descriptor).")
_DETECTOR = flags.DEFINE_enum("detector", detect.DEFAULT_DETECTOR, detect.DETECTORS,
                              "Face detector, as in preprocessing (README: recall and speed of each).")
_UPSAMPLE = flags.DEFINE_integer("upsample", detect.AUTO_UPSAMPLE, "Image doublings for hog/cnn; -1: small frames to 300 px.")
_DETECT_EVERY = flags.DEFINE_integer("detect_every", 10, "Detect every k frames (and on cuts and lost faces), "
                                     "track by landmarks in between; 1 detects every frame.")
_FPS = flags.DEFINE_float("fps", 30.0, "Resample videos to this rate (0 keeps the source frames).")
_MAX_FRAMES = flags.DEFINE_integer("max_frames", None, "Stop each input after this many frames.")
_PROGRESS = flags.DEFINE_bool("progress", True, "Progress bar over frames (never when stderr is not a TTY).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Redo inputs predicted with another model or other options "
                                "(default: refuse; finished inputs of the same ones are skipped).")
_WORKERS = flags.DEFINE_integer("workers", os.cpu_count() or 1, "Processes for the face front-end of a long video "
                                "file (time chunks, as preprocessing); 1: one thread beside the model.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from affnet.predict import predictor
    from data_pipeline.media import decode

    try:
        if _SEQ_LEN.value < 0:
            raise ValueError(f"--seq_len must be positive (0: the export's), got {_SEQ_LEN.value}")
        runner = predictor.Predictor(
            _MODEL.value, seq_len=_SEQ_LEN.value, batch_size=_BATCH.value, precision=_PRECISION.value,
            backend=_BACKEND.value, postprocess=_POSTPROCESS.value, track=_TRACK.value,
            detector=_DETECTOR.value, upsample=_UPSAMPLE.value, detect_every=_DETECT_EVERY.value, fps=_FPS.value, landmarks=_LANDMARKS.value,
            max_frames=_MAX_FRAMES.value, progress=_PROGRESS.value, workers=_WORKERS.value,
            report=_REPORT.value)
        print(f"precision: {runner.runtime.precision} ({runner.runtime.precision_reason})", file=sys.stderr)
        summary = runner.run(_INPUT.value, _OUTPUT.value, _FORMAT.value, plots=_PLOTS.value,
                             annotated_video=_ANNOTATED.value, overwrite=_OVERWRITE.value)
    except (ValueError, FileNotFoundError, decode.DecodeError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps({"summary": os.path.join(_OUTPUT.value, "summary.json"), **summary["totals"],
                      "tables": [e.get("table") for e in summary["inputs"]]}, indent=1))
    sys.exit(0 if summary["totals"]["ok"] or summary["totals"].get("skipped") else 1)  # Skipped: finished earlier.


def run():
    """The `affnet-predict` console script."""
    from data_pipeline.media.decode import DecodeError

    _cli.run(main, user_errors=(DecodeError,))


if __name__ == "__main__":
    run()

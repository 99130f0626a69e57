"""Offline preprocessing: videos/images -> aligned faces + 68 landmarks in TFRecords.

The work itself is `data_pipeline.jobs.preprocess` (see its docstring: outputs, reports,
re-runs, audio).

Usage:
  python -m data_pipeline.preprocess --input PATH --output DIR [--workers N]
      [--detector blazeface|blazeface_short|mtcnn|hog|cnn] [--upsample K|-1]
      [--score_threshold X] [--detect_every 10] [--crop_size 96]
      [--alignment similarity|affine] [--track largest|iou|all] [--gzip]
      [--image_format jpeg|png] [--segment_frames N] [--fps 30]
      [--audio] [--audio_context 16] [--audio_bins 64] [--audio_scale mel|linear]
      [--audio_normalization fixed|per_video] [--audio_missing fail|silence] [--overwrite] [--noprogress]
"""

import dataclasses
import json
import os
import sys
from typing import List, Optional

from data_pipeline.base import cli
from data_pipeline.faces import align, detect
from data_pipeline.faces.options import AUDIO_MISSING, IMAGE_FORMATS, PreprocessOptions
from data_pipeline.jobs.preprocess import preprocess
from data_pipeline.media import audio as audio_features


def _parser() -> cli.ArgumentParser:
    defaults = PreprocessOptions()
    parser = cli.ArgumentParser(prog="python -m data_pipeline.preprocess", description=__doc__.split("\n")[0])
    parser.add_argument("--input", required=True, help="video, image, or folder of them (recursive)")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--detector", choices=detect.DETECTORS, default=defaults.detector,
                        help="face detector (README: recall and speed of each)")
    parser.add_argument("--upsample", type=int, default=defaults.upsample,
                        help=f"image doublings for hog/cnn; {detect.AUTO_UPSAMPLE}: small frames to 300 px")
    parser.add_argument("--score_threshold", type=float, default=defaults.score_threshold,
                        help="minimum detector score (default: the detector's own)")
    parser.add_argument("--detect_every", type=int, default=defaults.detect_every,
                        help="detect every k frames (and on scene cuts, lost faces), track by landmarks "
                             "in between; 1 detects every frame")
    parser.add_argument("--crop_size", type=int, default=defaults.crop_size)
    parser.add_argument("--alignment", choices=align.METHODS, default=defaults.alignment)
    parser.add_argument("--track", choices=detect.TRACK_MODES, default=defaults.track,
                        help="largest: the largest face of each frame; iou: the person seen most (one track); "
                             "all: every person, one track each (persons by face descriptor)")
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--noprogress", action="store_true",
                        help="no progress bar over frames (there is none when stderr is not a terminal)")
    parser.add_argument("--overwrite", action="store_true",
                        help="redo outputs made with other options (default: refuse such a run)")
    parser.add_argument("--image_format", choices=IMAGE_FORMATS, default=defaults.image_format)
    parser.add_argument("--jpeg_quality", type=int, default=defaults.jpeg_quality)
    parser.add_argument("--segment_frames", type=int, default=defaults.segment_frames)
    parser.add_argument("--fps", type=float, default=defaults.fps, help="0 keeps the source frame rate")
    parser.add_argument("--audio", action="store_true", help="write audio/spectrogram per frame ([FBN] A/V)")
    parser.add_argument("--audio_context", type=int, default=defaults.audio_context,
                        help="STFT frames per video frame (spectrogram rows)")
    parser.add_argument("--audio_bins", type=int, default=defaults.audio_bins, help="frequency bins (columns)")
    parser.add_argument("--audio_scale", choices=audio_features.SCALES, default=defaults.audio_scale)
    parser.add_argument("--audio_normalization", choices=audio_features.NORMALIZATIONS,
                        default=defaults.audio_normalization)
    parser.add_argument("--audio_missing", choices=AUDIO_MISSING, default=defaults.audio_missing,
                        help="an input without audio: fail it, or write silence")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """CLI; returns 0 if any input produced frames, 1 if none did; a user mistake raises ValueError
    (`run` prints it as one line and exits 2)."""
    args = _parser().parse_args(argv)
    fields = {f.name for f in dataclasses.fields(PreprocessOptions)}
    options = PreprocessOptions(**{k: v for k, v in vars(args).items() if k in fields})
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if not os.path.exists(args.input):
        raise FileNotFoundError(f"--input {args.input}: no such file or folder")
    report = preprocess(args.input, args.output, options, args.workers, overwrite=args.overwrite,
                        show_progress=not args.noprogress)
    totals = report["totals"]
    sys.stderr.write(json.dumps(totals) + "\n")
    return 0 if totals["with_frames"] else 1


def run() -> None:
    """Console-script entry point."""
    cli.run(main)


if __name__ == "__main__":
    run()

"""Dataset adapters: published layouts -> schema TFRecords with official splits.

  python -m data_pipeline.adapters <dataset> --root R --output DIR [--workers N]
      [--splits train,validation] [--landmarks auto|dlib|none] [preprocess options]
      [--max_label_gap 15] [--overwrite]
      [dataset options, see --help of each dataset] [--engine local|beam [Beam pipeline options]]

Datasets: affwild2 (ABAW layout), affwild, afewva, recola, omg. Each writes
DIR/<split>/<video_id>.tfrecord and DIR/manifest.json (`common.write_items`).
`--engine beam` runs the per-video work as an Apache Beam pipeline
(`data_pipeline.jobs.beam_pipeline.run_tasks`; DirectRunner with --workers
processes unless --runner says otherwise); any other flag is then Beam's.
"""

import dataclasses
import functools
import json
import sys
from typing import List, Optional

from data_pipeline.faces import align, detect
from data_pipeline.base import cli
from data_pipeline.jobs import preprocess
from data_pipeline.jobs import rules as job_rules
from data_pipeline.faces import options as preprocess_options
from data_pipeline.adapters import common
from data_pipeline.adapters.affwild import AffWildAdapter
from data_pipeline.adapters.affwild2 import AffWild2Adapter
from data_pipeline.adapters.afewva import AfewVaAdapter
from data_pipeline.adapters.common import Adapter, item_records, write_items
from data_pipeline.adapters.discovery import VideoItem
from data_pipeline.adapters.omg import OmgAdapter
from data_pipeline.adapters.recola import RecolaAdapter

ADAPTERS = {cls.name: cls for cls in (AffWild2Adapter, AffWildAdapter, AfewVaAdapter, RecolaAdapter, OmgAdapter)}


def get(name: str, **kwargs) -> Adapter:
    """An adapter by dataset name, e.g. get('afewva', folds=5)."""
    if name not in ADAPTERS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(ADAPTERS)}")
    return ADAPTERS[name](**kwargs)


def _add_common(parser: cli.ArgumentParser) -> None:
    defaults = preprocess.PreprocessOptions()
    parser.add_argument("--root", required=True, help="the dataset's folder as published")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--engine", choices=("local", "beam"), default="local",
                        help="local process pool, or an Apache Beam pipeline (pip install affnet[beam])")
    parser.add_argument("--splits", default="", help="comma-separated splits to write (default all)")
    parser.add_argument("--landmarks", choices=common.LANDMARK_MODES, default="auto",
                        help="for shipped frames: dataset landmarks, else dlib (auto); dlib only; no dlib")
    parser.add_argument("--detector", choices=detect.DETECTORS, default=defaults.detector)
    parser.add_argument("--upsample", type=int, default=defaults.upsample)
    parser.add_argument("--crop_size", type=int, default=defaults.crop_size)
    parser.add_argument("--alignment", choices=align.METHODS, default=defaults.alignment)
    parser.add_argument("--track", choices=detect.TRACK_MODES, default=defaults.track)
    parser.add_argument("--segment_frames", type=int, default=defaults.segment_frames)
    parser.add_argument("--fps", type=float, default=defaults.fps, help="raw-video resampling, 0 keeps the source")
    parser.add_argument("--image_format", choices=preprocess_options.IMAGE_FORMATS, default=defaults.image_format)
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--max_label_gap", type=int, default=common.DEFAULT_MAX_LABEL_GAP,
                        help="most frames a label file may differ from its video by (more fails that video)")
    parser.add_argument("--overwrite", action="store_true",
                        help="redo outputs made with other options (default: refuse such a run)")
    parser.add_argument("--noprogress", action="store_true",
                        help="no progress bar over frames (there is none when stderr is not a terminal)")


def _parser() -> cli.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m data_pipeline.adapters", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="dataset", required=True)
    for name, cls in ADAPTERS.items():
        child = sub.add_parser(name, help=(cls.__doc__ or "").split("\n")[0])
        _add_common(child)
        cls.add_arguments(child)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """CLI; 0 if any video was written (or already was), 1 if none, 2 on a usage or layout error."""
    parser = _parser()
    args, pipeline_args = parser.parse_known_args(argv)
    if pipeline_args and args.engine != "beam":
        parser.error(f"unrecognized arguments: {' '.join(pipeline_args)}")
    fields = {f.name for f in dataclasses.fields(preprocess.PreprocessOptions)}
    options = preprocess.PreprocessOptions(**{k: v for k, v in vars(args).items() if k in fields})
    adapter = ADAPTERS[args.dataset].from_args(args)
    run_tasks = job_rules.run_tasks
    if args.engine == "beam":
        # Lazy: apache-beam is an optional dependency (the `beam` extra).
        from data_pipeline.jobs import beam_pipeline

        beam_pipeline.pipeline_options(pipeline_args, args.workers)  # Unknown flags: usage error.
        run_tasks = functools.partial(beam_pipeline.run_tasks, pipeline_args=pipeline_args)
    # User mistakes raise ValueError / FileNotFoundError: `cli.run` prints one line and exits 2.
    manifest = adapter.write(args.root, args.output, options, args.workers, args.landmarks,
                             [s for s in args.splits.split(",") if s], max_label_gap=args.max_label_gap,
                             overwrite=args.overwrite, run_tasks=run_tasks, show_progress=not args.noprogress)
    sys.stderr.write(json.dumps(manifest["totals"]) + "\n")
    done = [e for e in manifest["videos"] if e["status"] in job_rules.DONE
            or e.get("previous_status") in job_rules.DONE]
    return 0 if done else 1


__all__ = ["ADAPTERS", "Adapter", "AfewVaAdapter", "AffWild2Adapter", "AffWildAdapter", "OmgAdapter", "RecolaAdapter",
           "VideoItem", "get", "item_records", "main", "write_items"]

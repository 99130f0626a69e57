"""Offline preprocessing on Apache Beam: the local tool's per-video work, on any Beam runner.

  python -m data_pipeline.beam_preprocess --input=GLOB_OR_DIR --output=DIR [preprocess options]
      [Beam pipeline options, e.g. --runner=FlinkRunner --flink_master=HOST:8081]

The pipeline is `data_pipeline.jobs.beam_pipeline` (its docstring: one element per
input, shards committed by rename, runners, remote paths); the preprocess flags are
the local tool's parser's, the rest are Beam's pipeline options.
"""

import dataclasses
import json
import os
import sys
from typing import List, Optional

from data_pipeline import preprocess as preprocess_cli
from data_pipeline.base import atomic
from data_pipeline.faces.options import PreprocessOptions
from data_pipeline.jobs import beam_pipeline
from data_pipeline.jobs import rules as job_rules


def main(argv: Optional[List[str]] = None) -> int:
    """CLI; 0 if any input produced frames, 1 if none did, 2 on a usage error."""
    # The local tool's parser: the preprocess flags are defined once; the rest is Beam's.
    parser = preprocess_cli._parser()
    parser.prog = "python -m data_pipeline.beam_preprocess"
    parser.description = __doc__.split("\n")[0]
    args, pipeline_args = parser.parse_known_args(argv)
    fields = {f.name for f in dataclasses.fields(PreprocessOptions)}
    try:
        options = PreprocessOptions(**{k: v for k, v in vars(args).items() if k in fields})
        if args.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {args.workers}")
        beam_pipeline.list_inputs(args.input)
        beam_pipeline.pipeline_options(pipeline_args, args.workers)
    except (ValueError, FileNotFoundError) as error:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"error: {error}\n")
        return 2
    try:
        report = beam_pipeline.beam_preprocess(args.input, args.output, options, args.workers, pipeline_args,
                                 overwrite=args.overwrite)
    except (atomic.LockedError, atomic.StorageError) as error:  # Another run's folder; the disk full.
        sys.stderr.write(f"error: {error}\n")
        return 2
    sys.stderr.write(json.dumps(report["totals"]) + "\n")
    produced = [e for e in report["inputs"]
                if e["status"] in job_rules.DONE
                or (e["status"] == "skipped" and e.get("previous_status") in job_rules.DONE)]
    return 0 if produced else 1



if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())

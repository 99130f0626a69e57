"""Offline preprocessing on Apache Beam: the local tool's per-video work, on any Beam runner
(the command line is `python -m data_pipeline.beam_preprocess`).

Every input is one Beam element handled by `preprocess.process_file`, the
function the local tool (`data_pipeline.preprocess`) runs per input: decode ->
detect/track -> landmarks -> align -> encode, the shard written as
`<output>.tmp` and committed by rename, its side report last (`job_rules.finished_output`:
a shard without it is redone), a finished output skipped, a bad input
reported as "failed". A retried bundle or a re-run pipeline therefore neither
duplicates nor truncates a shard. The entries the workers return are gathered
and `preprocess.assemble_report` turns them into DIR/report.json, as locally.

`--runner=DaskRunner` runs on dask.distributed (`pip install 'affnet[dask]'`):
on the scheduler at `--dask_address=HOST:8786`, else on a local cluster of
max(2, --workers) worker processes started for the run; each input is a Dask
partition, and a task lost with its worker is rerun elsewhere (finished
outputs are then skipped, so each input is written once).

Without --runner this runs Beam's DirectRunner in multi-processing mode with
`--workers` processes (default: all cores); `--direct_num_workers` and
`--direct_running_mode` override that. Paths go through Beam's FileSystems,
so gs:// and hdfs:// work where the runner has those filesystems: a remote
input is copied to the worker's local disk for decoding, and a remote output
is written locally, then copied to `<output>.tmp` and renamed (on a re-run of
a remote output, finished inputs are still downloaded before they are skipped,
because the skip decision is `process_file`'s).

`run_tasks` is the Beam twin of `job_rules.run_tasks` (same task shape,
results handed back to `on_result` in the launching process), which the
dataset adapters use with `--engine=beam`.
"""

import contextlib
import json
import os
import pickle
import shutil
import sys
import tempfile
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options import pipeline_options as pipeline_options_module
from apache_beam.options.pipeline_options import (DirectOptions, GoogleCloudOptions, PipelineOptions,
                                                  StandardOptions)

from data_pipeline.base import atomic
from data_pipeline.media import decode
from data_pipeline.jobs import preprocess
from data_pipeline.jobs import rules as job_rules
from data_pipeline.records import schema
from data_pipeline.records.record_io import is_remote  # Such paths go through Beam's FileSystems.

_GLOB_CHARACTERS = "*?["


def pipeline_options(pipeline_args: Sequence[str], workers: int) -> PipelineOptions:
    """Beam options from the command line; the DirectRunner defaults to `workers` processes.

    Raises ValueError on a flag no Beam options class defines (Beam itself
    only logs and drops it, which would hide a misspelt preprocess flag).
    """
    pipeline_args = _dask_arguments(pipeline_args)
    # Beam's own parser class: its options classes call add_value_provider_argument.
    parser = pipeline_options_module._BeamArgumentParser(allow_abbrev=False)
    for cls in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        cls._add_argparse_args(parser)
    unknown = [a for a in parser.parse_known_args(list(pipeline_args))[1] if a.startswith("-")]
    if unknown:
        raise ValueError(f"unknown flags (neither preprocess nor Beam options): {' '.join(unknown)}")
    options = PipelineOptions(list(pipeline_args))
    if _is_direct(options):
        given = " ".join(pipeline_args)
        direct = options.view_as(DirectOptions)
        if "--direct_running_mode" not in given:
            direct.direct_running_mode = "multi_processing"
        if "--direct_num_workers" not in given:  # in_memory is one worker by definition.
            direct.direct_num_workers = 1 if direct.direct_running_mode == "in_memory" else workers
    return options


def _is_direct(options: PipelineOptions) -> bool:
    return options.view_as(StandardOptions).runner in (None, "DirectRunner", "direct")


DASK_RUNNERS = ("DaskRunner", "apache_beam.runners.dask.dask_runner.DaskRunner")


def _dask_arguments(pipeline_args: Sequence[str]) -> List[str]:
    """`--dask_address` spelt as Beam's `--dask_client_address`; with --runner=DaskRunner, Beam's Dask
    module imported so that its options parse (it needs `pip install 'affnet[dask]'`)."""
    args = [a.replace("--dask_address", "--dask_client_address", 1) if a.startswith("--dask_address") else a
            for a in pipeline_args]
    if any(a.endswith(("=DaskRunner", "dask_runner.DaskRunner")) or a in DASK_RUNNERS for a in args):
        try:
            from apache_beam.runners.dask import dask_runner  # noqa: F401  Registers DaskOptions.
        except ImportError as error:
            raise ValueError(f"--runner=DaskRunner needs dask.distributed: pip install 'affnet[dask]' ({error})")
    return args


def _is_dask(options: PipelineOptions) -> bool:
    return options.view_as(StandardOptions).runner in DASK_RUNNERS


@contextlib.contextmanager
def _dask_cluster(options: PipelineOptions, workers: int):
    """For the DaskRunner without a scheduler address: a local dask.distributed cluster of
    max(2, workers) single-threaded worker processes for the run (yields whether one was started).
    Either way each input is a Dask partition of its own, so inputs spread over the workers."""
    if not _is_dask(options):
        yield False
        return
    from apache_beam.runners.dask.dask_runner import DaskOptions

    dask_options = options.view_as(DaskOptions)
    if dask_options.npartitions is None and dask_options.partition_size is None:
        dask_options.partition_size = 1  # Beam's default packs 128 elements, i.e. all inputs, on one worker.
    if dask_options.address or dask_options.scheduler_file:
        yield False
        return
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=max(2, workers), threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        dask_options.address = cluster.scheduler_address
        yield True


def _runner(options: PipelineOptions):
    """The runner `options` name; for the DirectRunner, its FnApiRunner directly.

    Beam 2.77's DirectRunner first tries the PrismRunner, which downloads a
    binary from GitHub at run time and has no direct_num_workers; its fallback,
    the FnApiRunner built as DirectRunner builds it, is what runs here.
    """
    if _is_dask(options):  # Not among the runners Beam finds by their short name.
        from apache_beam.runners.dask.dask_runner import DaskRunner

        return DaskRunner()
    if not _is_direct(options):
        return None  # Beam resolves --runner.
    # Lazy: Beam's runner internals, imported only for the local runner.
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))


def list_inputs(pattern: str) -> Tuple[List[str], str]:
    """(media files, root their relative output names start from) for a file, folder or glob.

    A local file or folder is listed by `decode.list_inputs`, as by the local
    tool; a glob or a remote folder (all files below it) by Beam's FileSystems,
    keeping media files by extension. Raises FileNotFoundError when nothing matches.
    """
    if not is_remote(pattern) and os.path.exists(pattern):
        root = pattern if os.path.isdir(pattern) else os.path.dirname(pattern)
        return decode.list_inputs(pattern), root
    if any(c in pattern for c in _GLOB_CHARACTERS):
        prefix = pattern[:min(pattern.index(c) for c in _GLOB_CHARACTERS if c in pattern)]
        root = prefix if prefix.endswith("/") else os.path.dirname(prefix)
    else:  # A remote folder.
        root = pattern.rstrip("/") + "/"
        pattern = root + "**"
    try:
        matched = FileSystems.match([pattern])[0].metadata_list
    except Exception as error:  # BeamIOError on a missing bucket or folder.
        raise FileNotFoundError(f"{pattern}: cannot list ({error})") from error
    found = sorted(m.path for m in matched if decode.is_media(m.path))
    if not found:
        raise FileNotFoundError(f"{pattern}: no video or image files")
    return found, root.rstrip("/") or "/"


def _copy(source: str, destination: str) -> None:
    with FileSystems.open(source) as reader, FileSystems.create(destination) as writer:
        shutil.copyfileobj(reader, writer, 1 << 22)


def _commit(local: str, destination: str) -> None:
    """Copy to `<destination>.tmp`, then rename: readers never see a partial file."""
    temp = destination + ".tmp"
    if FileSystems.exists(temp):
        FileSystems.delete([temp])
    _copy(local, temp)
    if FileSystems.exists(destination):
        FileSystems.delete([destination])
    FileSystems.rename([temp], [destination])


def _process_file_staged(source: str, relative: str, output_dir: str,
                         options: preprocess.PreprocessOptions, overwrite: bool = False) -> Dict[str, Any]:
    """`preprocess.process_file` for a remote input or output, through a local staging folder."""
    target = preprocess.output_path(relative, output_dir, options)
    stage = tempfile.mkdtemp(prefix="affnet_beam_")
    try:
        local_source = source
        if is_remote(source):
            local_source = os.path.join(stage, "input", os.path.basename(source))
            os.makedirs(os.path.dirname(local_source))
            _copy(source, local_source)
        local_dir = os.path.join(stage, "output")
        local_target = preprocess.output_path(relative, local_dir, options)
        if FileSystems.exists(target):  # Finished earlier: let process_file decide on its report.
            os.makedirs(os.path.dirname(local_target), exist_ok=True)
            if FileSystems.exists(schema.side_report_path(target)):
                _copy(schema.side_report_path(target), schema.side_report_path(local_target))
            open(local_target, "wb").close()
        entry = preprocess.process_file(local_source, relative, local_dir, options, overwrite)
        entry = json.loads(json.dumps(entry).replace(json.dumps(local_source)[1:-1], json.dumps(source)[1:-1]))
        entry.update(input=source, output=target)
        if entry["status"] in job_rules.DONE + ("empty",) and "previous_status" not in entry:
            with open(schema.side_report_path(local_target), "w") as f:
                json.dump(entry, f, indent=1)
            # The shard first, then its report (the report marks the shard finished).
            _commit(local_target, target)
            _commit(schema.side_report_path(local_target), schema.side_report_path(target))
        return entry
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def process_task(task) -> Dict[str, Any]:
    """One (source, relative, output_dir, options, overwrite) task of `preprocess.preprocess` -> its entry."""
    source, _, output_dir = task[:3]
    if is_remote(source) or is_remote(output_dir):
        return _process_file_staged(*task)
    return preprocess.process_file(*task)


class _RunTask(beam.DoFn):
    """`function(task)` for (index, task) elements; one thread per worker, as in `job_rules.run_tasks`."""

    def __init__(self, function: Callable):
        self._function = function

    def setup(self):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import cv2

        cv2.setNumThreads(1)  # Parallelism is across inputs.

    def process(self, element):
        index, task = element
        yield index, self._function(task)


def _write_results(results, path: str) -> None:
    with FileSystems.create(path + ".tmp") as f:
        f.write(pickle.dumps(sorted(results, key=lambda r: r[0])))
    FileSystems.rename([path + ".tmp"], [path])


def run_tasks(function: Callable, tasks: Sequence, workers: int, preload: str, on_result: Callable,
              pipeline_args: Sequence[str] = (), results_dir: Optional[str] = None) -> None:
    """`on_result(function(task))` for every task, each task one element of a Beam pipeline.

    Same contract as `job_rules.run_tasks` (`preload` names the module of
    `function`, which Beam pickles by reference). The results are gathered in
    the pipeline and written to one file under `results_dir` (default
    `--temp_location`, else a local temporary folder; on a cluster it must be
    a path the launcher and the workers share), read back here and removed.
    """
    del preload  # Beam workers import `function`'s module when they unpickle it.
    options = pipeline_options(pipeline_args, workers)
    with _dask_cluster(options, workers) as local_cluster:
        _run_pipeline(function, tasks, options, on_result, results_dir, local=_is_direct(options) or local_cluster)


def _run_pipeline(function, tasks, options, on_result, results_dir, local: bool) -> None:
    results_dir = results_dir or options.view_as(GoogleCloudOptions).temp_location
    if results_dir is None and not local:
        raise ValueError("--temp_location is needed with --runner: a folder the launcher and the workers share")
    own_dir = results_dir is None
    results_dir = results_dir or tempfile.mkdtemp(prefix="affnet_beam_results_")
    results_path = FileSystems.join(results_dir, f"affnet-results-{uuid.uuid4().hex}.pickle")
    try:
        pipeline = beam.Pipeline(runner=_runner(options), options=options)
        _ = (pipeline
             | "Tasks" >> beam.Create(list(enumerate(tasks)))
             | "Spread" >> beam.Reshuffle()  # One bundle per worker, not one for all.
             | "Run" >> beam.ParDo(_RunTask(function))
             | "Gather" >> beam.combiners.ToList()
             | "Write" >> beam.Map(_write_results, results_path))
        result = pipeline.run()
        try:
            result.wait_until_finish()
        finally:
            if getattr(result, "client", None) is not None:  # The DaskRunner's client of the scheduler.
                result.client.close()
        with FileSystems.open(results_path) as f:
            results = pickle.loads(f.read())
        FileSystems.delete([results_path])
    finally:
        if own_dir:
            shutil.rmtree(results_dir, ignore_errors=True)
    if len(results) != len(tasks):
        raise RuntimeError(f"{results_path}: {len(results)} results for {len(tasks)} tasks")
    for _, result in results:
        on_result(result)


def _write_json(path: str, value) -> None:
    with FileSystems.create(path + ".tmp") as f:
        f.write(json.dumps(value, indent=1).encode("utf-8"))
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([path + ".tmp"], [path])


def beam_preprocess(input_pattern: str, output_dir: str,
                    options: preprocess.PreprocessOptions = preprocess.PreprocessOptions(),
                    workers: Optional[int] = None, pipeline_args: Sequence[str] = (),
                    progress=sys.stderr, overwrite: bool = False) -> Dict[str, Any]:
    """`preprocess.preprocess` as a Beam pipeline; returns and writes DIR/report.json.

    The same checks as the local tool before anything runs (no media file; outputs made with
    other options, unless `overwrite`) and the same report.json, merged per input."""
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    inputs, root = list_inputs(input_pattern)
    if not inputs:
        raise ValueError(f"{input_pattern}: no video or image files match")
    tasks = [(path, os.path.relpath(path, root) if not is_remote(path) else path[len(root):].lstrip("/"),
              output_dir, options, overwrite) for path in inputs]
    # Earlier runs' report (read where the local tool can; a remote output starts a new one).
    previous_report = {} if is_remote(output_dir) else preprocess.read_report(output_dir)
    if not overwrite and not is_remote(output_dir):
        preprocess.check_rerun(tasks, output_dir, options, previous_report)
    if not FileSystems.exists(output_dir):
        FileSystems.mkdirs(output_dir)
    start = time.perf_counter()
    entries: List[Dict[str, Any]] = []
    # The output folder is one the launcher and the workers share (on a cluster, or when remote).
    shared = is_remote(output_dir) or not _is_direct(pipeline_options(pipeline_args, workers))
    results_dir = FileSystems.join(output_dir, "_beam_results") if shared else None
    # One run per local output folder (flock); a remote one needs a folder per run.
    with contextlib.ExitStack() as lock:
        if not is_remote(output_dir):
            lock.enter_context(atomic.OutputLock(output_dir, "beam_preprocess"))
        if shared and not is_remote(output_dir):  # A killed run's gathered results, never read.
            shutil.rmtree(results_dir, ignore_errors=True)
        run_tasks(process_task, tasks, workers, __name__, entries.append, pipeline_args, results_dir)
        if shared and not is_remote(output_dir):
            os.rmdir(results_dir)  # Empty now; object stores have no folders to remove.
        report = preprocess.assemble_report(input_pattern, inputs, entries, options, time.perf_counter() - start,
                                            workers, previous_report.get("inputs", []))
        _write_json(FileSystems.join(output_dir, "report.json"), report)
    if progress is not None:
        for k, entry in enumerate(report["inputs"]):
            detail = entry.get("error") or f"{entry['input']}: {entry.get('frames_written', 0)} frames written"
            progress.write(f"[{k + 1}/{len(inputs)}] {entry['status']}: {detail}\n")
    return report

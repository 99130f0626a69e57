"""The rules every offline job follows for its outputs (preprocess, Beam, the dataset
adapters; predict's resume records use the same option comparison).

An output is finished when its shard and its side report both exist: the side
report is written last, by rename (`data_pipeline.base.atomic`), and records the
options that made the output. A rerun skips a finished output made with the same
options, refuses one made with other options unless told to overwrite it
(`reuse_finished`, `refuse_changed_outputs`), and redoes anything unfinished,
removing what a killed writer left. Run files (report.json, manifest.json,
summary.json) are merged per input across runs (`merge_entries`) and count their
statuses the same way (`status_totals`). `run_tasks` is the process pool.
"""

import json
import multiprocessing
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

from data_pipeline.base import atomic
from data_pipeline.faces import face_pass
from data_pipeline.records import schema

STATUSES = ("ok", "truncated", "skipped", "empty", "failed")


def read_sidecar(target: str) -> Dict[str, Any]:
    """The side report of a finished output ({} when absent or unreadable)."""
    try:
        with open(schema.side_report_path(target)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def finished_output(target: str) -> Optional[Dict[str, Any]]:
    """The side report of `target` when the output is finished, else None.

    Finished means the shard and its side report are both there: the side report
    is written last (`write_output`), so a shard without one was cut off by a kill
    between the two renames and is redone. Stale temporaries of both files, left by
    a killed writer, are removed first: a finished output would otherwise keep them.
    """
    report = schema.side_report_path(target)
    atomic.remove_temporaries([target, report])
    if not (os.path.exists(target) and os.path.exists(report)):
        return None
    return read_sidecar(target) or None


def write_output(target: str, records, entry: Dict[str, Any], image_format: str) -> None:
    """The shard, then its side report (its completion record), each temp-then-rename."""
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    try:
        schema.write_shard(target, records, image_format)
    except OSError as error:  # E.g. the disk full mid-shard: no partial temporary stays.
        atomic.remove_temporaries([target])
        raise atomic.named(error, target) from error
    atomic.write_json(schema.side_report_path(target), entry)


def option_changes(made_with: Optional[Dict[str, Any]], options: Dict[str, Any]) -> Dict[str, Tuple[Any, Any]]:
    """{option: (old, new)} where an output made with `made_with` differs from `options` (None: unknown, {})."""
    if not made_with:
        return {}
    return {key: (made_with.get(key), value) for key, value in options.items()
            if key in made_with and made_with[key] != value}


def describe_changes(changes: Dict[str, Tuple[Any, Any]]) -> str:
    return ", ".join(f"--{key} {old!r} -> {new!r}" for key, (old, new) in sorted(changes.items()))


DONE = ("ok", "truncated")  # Statuses of an input whose frames are in its output.


def read_run_file(path: str, what: str = "report") -> Dict[str, Any]:
    """An earlier run's report.json / manifest.json ({} when there is none)."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}
    except ValueError as error:
        raise ValueError(f"{path}: not a readable {what} ({error}); move it away to start a new one") from None


def refuse_changed_outputs(targets: Sequence[str], output_dir: str, made: Dict[str, Any],
                           fallback: Optional[Dict[str, Any]]) -> None:
    """Raise ValueError when an existing output among `targets` was made with options other than `made`
    (its side report says how; `fallback` for outputs written before options were recorded per file)."""
    clashes = []
    for target in targets:
        if os.path.exists(target):
            changes = option_changes(read_sidecar(target).get("options", fallback), made)
            if changes:
                clashes.append((target, changes))
    if clashes:
        target, changes = clashes[0]
        raise ValueError(f"{output_dir}: {len(clashes)} output(s) were made with other options "
                         f"({describe_changes(changes)}; e.g. {target}); rerun with the same options, use a new "
                         f"--output, or pass --overwrite to redo them")


def merge_entries(previous: List[Dict[str, Any]], current: List[Dict[str, Any]],
                  key: str = "output") -> List[Dict[str, Any]]:
    """Per-input report entries: this run's replace the previous run's of the same `key`; others are kept."""
    replaced = {e[key] for e in current}
    return [e for e in previous if e.get(key) not in replaced] + list(current)


def run_tasks(function, tasks, workers: int, preload: str, on_result):
    """`on_result(function(task))` for every task, in this process or in a pool
    of `workers` processes (results in completion order).

    forkserver: workers fork from a fresh server that has imported `preload` but
    never run a TF op or loaded dlib models, neither of which is fork-safe once
    initialised in this process. TensorFlow is not preloaded: writing records and
    the default detector need none (`record_io`, LiteRT), and the options that do
    (--detector mtcnn, --audio) import it in each worker at once, in parallel.
    `function` must be a module-level function of `preload`. The module run as
    the command (`python -m data_pipeline.preprocess`) is not preloaded: each
    worker re-runs it as `__mp_main__`, and runpy warns when it finds it
    imported already; the face work's modules are preloaded instead.
    """
    if workers == 1 or len(tasks) <= 1:
        for task in tasks:
            on_result(function(task))
        return
    context = multiprocessing.get_context("forkserver")
    command = getattr(getattr(sys.modules["__main__"], "__spec__", None), "name", None)
    context.set_forkserver_preload([preload if preload != command else face_pass.__name__])
    with context.Pool(min(workers, len(tasks)), initializer=face_pass.init_worker) as pool:
        for result in pool.imap_unordered(function, tasks):
            on_result(result)


def status_totals(entries: Sequence[Dict[str, Any]]) -> Dict[str, int]:
    """{status: count} over `STATUSES` of a run's entries."""
    return {status: sum(e["status"] == status for e in entries) for status in STATUSES}


def reuse_finished(target: str, made: Dict[str, Any], overwrite: bool,
                   entry: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The entry of `target` when it need not be (re)made: "skipped" when finished with the
    options `made`, "failed" (kept, naming the changes) when finished with others and not
    `overwrite`; None when it must be made (unfinished, or other options and `overwrite`)."""
    previous = finished_output(target)
    if previous is None:
        return None
    changes = option_changes(previous.get("options"), made)
    kept = {**previous, **entry, "previous_status": previous.get("status", "ok")}
    if not changes:
        return {**kept, "status": "skipped"}
    if not overwrite:
        return {**kept, "status": "failed",
                "error": f"{target}: made with other options ({describe_changes(changes)}); kept, "
                         f"pass --overwrite to redo it"}
    return None

"""Which inputs of a predict run are finished: a per-input completion record, written last.

Each input's outputs (table, plots, annotated video) are written temp-then-rename
(`data_pipeline.base.atomic`); then `<output>/<name>.done.json` records the model
(a hash of every file of the export directory), the options that change the
outputs, and the input's summary entry. A rerun skips an input whose record
matches and whose listed files are all there, redoes one without a record (a
kill left it partial: nothing of it looks finished), and refuses a record made
with another model or other options unless `overwrite`, as preprocessing does
with its side reports (`data_pipeline.job_rules.refuse_changed_outputs`).
"""

import contextlib
import hashlib
import json
import os
from typing import Any, Dict, Optional, Sequence

from data_pipeline.base import atomic
from data_pipeline.jobs import rules as job_rules

DONE_SUFFIX = ".done.json"
OUTPUT_KEYS = ("table", "plot", "histogram", "annotated_video", "report")  # Entry keys naming an input's files.
# Temporaries a killed writer of an input's outputs can leave (the video keeps its container extension).
TEMPORARY_SUFFIXES = (atomic.TEMPORARY_SUFFIX, atomic.TEMPORARY_SUFFIX + ".mp4")


def model_fingerprint(export_dir: str) -> str:
    """sha256 over the relative paths and bytes of every file of an export directory."""
    digest = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(export_dir)):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            digest.update(os.path.relpath(path, export_dir).encode() + b"\0")
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def done_path(base: str) -> str:
    return base + DONE_SUFFIX


def _read(base: str) -> Dict[str, Any]:
    try:
        with open(done_path(base)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _changes(record: Dict[str, Any], model: str, made: Dict[str, Any]) -> Dict[str, Any]:
    changes = job_rules.option_changes(record.get("options"), made)
    if record.get("model_sha256") not in (None, model):
        changes["model"] = (record["model_sha256"][:12], model[:12])
    return changes


def finished(base: str, model: str, made: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The summary entry of the input written under `base`, when finished with this model and
    these options and all its files are there; else None. Stale temporaries are removed first."""
    record = _read(base)
    entry = record.get("entry", {})
    paths = [entry[k] for k in OUTPUT_KEYS if k in entry]
    atomic.remove_temporaries(paths + [done_path(base)], TEMPORARY_SUFFIXES)
    if not record or _changes(record, model, made) or not all(os.path.exists(p) for p in paths):
        return None
    return entry


def refuse_changed(bases: Sequence[str], output_dir: str, model: str, made: Dict[str, Any]) -> None:
    """ValueError when an input's record says another model or other options made its outputs."""
    clashes = [(base, changes) for base in bases for changes in [_changes(_read(base), model, made)] if changes]
    if clashes:
        base, changes = clashes[0]
        raise ValueError(f"{output_dir}: {len(clashes)} input(s) were predicted with another model or other "
                         f"options ({job_rules.describe_changes(changes)}; e.g. {done_path(base)}); rerun with "
                         f"the same ones, use a new --output, or pass --overwrite to redo them")


def start(base: str) -> None:
    """Before (re)writing an input's outputs: its record goes first, so a kill leaves nothing finished."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(done_path(base))


def finish(base: str, model: str, made: Dict[str, Any], entry: Dict[str, Any]) -> None:
    """The completion record, after every file of the input is in place."""
    atomic.write_json(done_path(base), {"model_sha256": model, "options": made, "entry": entry})

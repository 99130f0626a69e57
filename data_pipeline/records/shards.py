"""Is a TFRecord shard readable as affnet records? One line naming the shard when not.

A flipped byte or a truncated file makes TensorFlow's reader fail with
"corrupted record at <byte offset>" and no file name; a file of other records
(e.g. `tf.train.Example`s, or not TFRecords at all) fails in the parser with
"example id: <unknown>". `problem(path)` reads one shard record by record and
returns `"<path>: record <k> ...: <what is wrong>"` (the byte offset where the
reader reports one), or None for a good shard. Results are cached per
(path, size, mtime), so the reader and the training loop share one pass.

The reader (`data_pipeline.reader.input`, `skip_corrupt_shards`) scans every shard up front
only with `skip_corrupt_shards` (it then drops the bad ones); otherwise it
reads as usual and `explain` names the bad shard after TensorFlow fails.
"""

import os
import re
from typing import Dict, List, Optional, Sequence, Tuple

from google.protobuf import message as protobuf_message

from data_pipeline.records import schema
from data_pipeline.base.lazy_tensorflow import tf  # Imported when a shard is first read.

_CACHE: Dict[Tuple[str, int, int], Optional[str]] = {}
SKIP_HINT = "pass --skip_corrupt_shards to skip bad shards"


compression_of = schema.shard_compression


def record_problem(serialized: bytes) -> Optional[str]:
    """Why one serialized record is not a schema SequenceExample, or None."""
    try:
        example = tf.train.SequenceExample.FromString(serialized)
    except protobuf_message.DecodeError as error:
        return f"not a SequenceExample ({error})"
    if schema.VIDEO_ID not in example.context.feature or schema.IMAGE not in example.feature_lists.feature_list:
        # A tf.train.Example parses as a SequenceExample with no feature lists.
        return (f"not an affnet SequenceExample (no {schema.VIDEO_ID!r} context feature or "
                f"{schema.IMAGE!r} feature list; see data_pipeline/records/schema.py)")
    return None


def _first_line(error: Exception) -> str:
    text = getattr(error, "message", None) or str(error)
    line = next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)
    # TensorFlow wraps the reader's words in its op context: "{{function_node ...}} corrupted
    # record at 12 [Op:IteratorGetNext] name:"; keep the words.
    line = re.sub(r"\{\{[^}]*\}\}\s*|\s*\[Op:[^\]]*\](\s*name:\s*\S*)?", "", line)
    return line.strip() or type(error).__name__


def problem(path: str) -> Optional[str]:
    """`"<path>: record <k>: <problem>"` for a corrupt, truncated or foreign shard; None when it reads."""
    try:
        stat = os.stat(path)
    except OSError as error:
        return f"{path}: cannot read ({error})"
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _CACHE:
        _CACHE[key] = _scan(path)
    return _CACHE[key]


def _scan(path: str) -> Optional[str]:
    index = 0
    try:
        for serialized in tf.data.TFRecordDataset(path, compression_type=compression_of(path)):
            found = record_problem(serialized.numpy())
            if found:
                return f"{path}: record {index}: {found}"
            index += 1
    except tf.errors.OpError as error:
        # DataLossError "corrupted record at <offset>" (flipped byte, truncation, not TFRecord).
        return f"{path}: record {index}: {_first_line(error)}"
    return None


def partition(files: Sequence[str]) -> Tuple[List[str], List[str]]:
    """(good files, problem lines of the bad ones), in order."""
    good, bad = [], []
    for path in files:
        found = problem(path)
        (bad if found else good).append(found or path)
    return good, bad


def explain(files: Sequence[str], error: Exception) -> Optional[ValueError]:
    """After TensorFlow failed reading `files`: a one-line ValueError naming the first bad shard, or
    None when every shard reads (the error has another cause)."""
    for path in files:
        found = problem(path)
        if found:
            return ValueError(f"{found}; {SKIP_HINT}")
    return None

"""Checkpoints of a run: the latest N plus the best by validation mean CCC.

Layout in the workdir:
  checkpoints/ckpt-<step>.*   `tf.train.Checkpoint(model, optimizer, step)`,
                              the newest `keep` kept by `CheckpointManager`; a run
                              resumes in another precision (float16's loss scale
                              is the only optimizer state that depends on it)
  best/ckpt-<step>.*          model and step of the best validation mean CCC
  best.json                   {"step", "ccc_mean", ...} of that checkpoint

TF writes a checkpoint's files before it updates the `checkpoint` index file,
so a process killed mid-save leaves the previous checkpoint as the latest:
SIGKILL loses at most the steps since the last save. The run's JSON files
(`best.json`, the evaluation history) are written whole or not at all
(`data_pipeline.base.atomic`).
"""

import json
import os
from typing import Optional

import keras
import tensorflow as tf

from data_pipeline.base import atomic

LATEST_DIR = "checkpoints"
BEST_DIR = "best"
BEST_FILE = "best.json"


def _path(variable) -> str:
    return getattr(variable, "path", None) or variable.name.split(":")[0]


def _owners(model) -> dict:
    """{id(variable): "<nested model>/.../"} of every weight of `model`: the
    names of the nested `keras.Model`s that hold it ("" at the top level; the
    first holder in layer order for a shared layer)."""
    owners = {}

    def visit(layer, prefix):
        for sublayer in layer.layers:
            if isinstance(sublayer, keras.Model):
                visit(sublayer, f"{prefix}{sublayer.name}/")
            else:
                for variable in sublayer.weights:
                    owners.setdefault(id(variable), prefix)
        for variable in layer.weights:  # A model's own weights.
            owners.setdefault(id(variable), prefix)

    visit(model, "")
    return owners


def _unique(pairs, what):
    mapping = {}
    for key, variable in pairs:
        if key in mapping:
            raise ValueError(f"two {what} variables share the path {key!r}; checkpoint keys must be unique")
        mapping[key] = variable
    return mapping


def _clashes(variables) -> bool:
    paths = [_path(v) for v in variables]
    return len(set(paths)) != len(paths)


def _model_keys(model):
    """[(key, variable)] over `model.weights`: the variable paths, or, when two
    paths clash (a model-level fusion nests two sub-networks with the same
    backbone, [MC] 5.4.1), every path prefixed by its nested models
    (`cnn_1rnn/vggface/conv1_1/kernel`)."""
    variables = model.weights
    if not _clashes(variables):
        return [(_path(v), v) for v in variables]
    owners = _owners(model)
    return [(owners.get(id(v), "") + _path(v), v) for v in variables]


def _optimizer_keys(optimizer, model):
    """[(key, variable)] over `optimizer.variables`, the slot keys following
    their model variables' (`_model_keys`): a slot that Keras names
    `<model variable path with _>_<slot>` (`add_variable_from_reference`) of a
    nested model variable gets that model's prefix after the optimizer's
    (`adam/cnn_1rnn/vggface/conv1_1_kernel_momentum`). Slots of variables that
    share a path are paired with them in build (trainable variable) order."""
    variables = optimizer.variables
    if not _clashes(model.weights):
        return [(_path(v), v) for v in variables]
    owners = _owners(model)
    stems = {}  # slot-name stem -> [(owner prefix, model variable)] in build order
    for reference in model.trainable_variables:
        stems.setdefault(_path(reference).replace("/", "_") + "_", []).append(
            (owners.get(id(reference), ""), reference))
    used = {}
    pairs = []
    for variable in variables:
        key, name = _path(variable), getattr(variable, "name", "")
        cuts = [i + 1 for i, c in enumerate(name) if c == "_" and name[:i + 1] in stems]
        if cuts and key.endswith(name):
            stem = name[:max(cuts)]
            taken = used.setdefault((stem, name), set())
            for index, (owner, reference) in enumerate(stems[stem]):
                if index not in taken and tuple(reference.shape) == tuple(variable.shape):
                    taken.add(index)
                    key = f"{key[:len(key) - len(name)]}{owner}{name}"
                    break
        pairs.append((key, variable))
    return pairs


def _list_keys(variables):
    """[(key, variable)] of a bare variable list: the paths, a repeated path
    numbered by its occurrence (`conv1_1/kernel`, `conv1_1/kernel_1`): there
    is no model to name the owner (pass the model for the checkpoint keys)."""
    pairs, seen = [], set()
    for variable in variables:
        key = base = _path(variable)
        count = 0
        while key in seen:
            count += 1
            key = f"{base}_{count}"
        seen.add(key)
        pairs.append((key, variable))
    return pairs


def variable_map(source, model=None):
    """{key: variable}: what a checkpoint stores.

    `source` is a Keras model (its weights), an optimizer with the `model` it
    trains (its variables, slots keyed after their model variables), or a bare
    list of variables. Keys are the Keras variable paths (`fc1/kernel`),
    unchanged for every model whose paths are unique. A model whose paths
    clash gets every key prefixed by the nested models that hold the
    variable (`_model_keys`), deterministic for an architecture.

    Checkpoints hold explicit variable dicts instead of the Keras object graph:
    a layer that keeps its sublayers where TF's tracking does not look (the
    RNN stack's cells, found in this code base) would otherwise be silently
    missing from the checkpoint while `restore` still reports success.
    """
    if isinstance(source, keras.Model):
        return _unique(_model_keys(source), f"model {source.name!r}")
    if isinstance(source, keras.optimizers.Optimizer):
        if model is None:
            return _unique([(_path(v), v) for v in source.variables], "optimizer")
        return _unique(_optimizer_keys(source, model), f"optimizer {source.name!r}")
    return _unique(_list_keys(source), "listed")


def _model_checkpoint(model, **extra):
    return tf.train.Checkpoint(model=variable_map(model), **extra)


class RunCheckpoints:
    """Save/restore the latest and the best checkpoints of one run.

    `read_dir` is the run's workdir (where checkpoints are restored from, on
    every worker); `write_dir` is where this process saves (the workdir on the
    chief, a scratch directory on other workers: every worker must take part
    in a multi-worker save).
    """

    def __init__(self, model, optimizer, step, read_dir: str, write_dir: str, keep: int = 3):
        self.step = step
        self.read_dir = read_dir
        self.write_dir = write_dir
        optimizer_map = variable_map(optimizer, model)
        scale_ids = {id(v) for v in _loss_scale_variables(optimizer)}
        self.has_loss_scale = bool(scale_ids)
        self.checkpoint = _model_checkpoint(model, optimizer=optimizer_map, step=step)
        self._without_loss_scale = _model_checkpoint(
            model, optimizer={k: v for k, v in optimizer_map.items() if id(v) not in scale_ids}, step=step)
        self.best_checkpoint = _model_checkpoint(model, step=step)
        self.latest = tf.train.CheckpointManager(self.checkpoint, os.path.join(write_dir, LATEST_DIR),
                                                 max_to_keep=keep, step_counter=step)
        self.best = tf.train.CheckpointManager(self.best_checkpoint, os.path.join(write_dir, BEST_DIR),
                                               max_to_keep=1, step_counter=step)
        self.best_record = read_best(read_dir)

    def restore_latest(self) -> Optional[str]:
        """Restore model, optimizer and step from the run's latest checkpoint, if any."""
        path = tf.train.latest_checkpoint(os.path.join(self.read_dir, LATEST_DIR))
        if not path:
            return path
        stored_scale = _holds_loss_scale(path)
        if self.has_loss_scale and not stored_scale:
            # Resumed in float16 from another precision: the loss scale starts afresh.
            self._without_loss_scale.restore(path).assert_consumed()
        elif stored_scale and not self.has_loss_scale:
            # A float16 run resumed in another precision: its loss scale is left behind.
            self.checkpoint.restore(path).expect_partial().assert_existing_objects_matched()
        else:
            self.checkpoint.restore(path).assert_consumed()
        return path

    def save_latest(self) -> str:
        return self.latest.save(checkpoint_number=int(self.step.numpy()))

    def maybe_save_best(self, scores: dict, key: str = "ccc_mean") -> bool:
        """Save if `scores[key]` beats the best so far; returns whether it did."""
        value = float(scores[key])
        if self.best_record is not None and value <= self.best_record[key]:
            return False
        path = self.best.save(checkpoint_number=int(self.step.numpy()))
        self.best_record = {"step": int(self.step.numpy()), key: value, "checkpoint": os.path.basename(path),
                            **{k: v for k, v in scores.items() if isinstance(v, (int, float))}}
        if self.write_dir == self.read_dir:
            _write_json(os.path.join(self.write_dir, BEST_FILE), self.best_record)
        return True


def _loss_scale_variables(optimizer):
    """A `LossScaleOptimizer`'s own state (scale, good-step counter, ...): what float16
    adds to the optimizer's variables; the inner optimizer's keep their keys."""
    inner = getattr(optimizer, "inner_optimizer", None)
    if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer) or inner is None:
        return []
    inner_ids = {id(v) for v in inner.variables}
    return [v for v in optimizer.variables if id(v) not in inner_ids]


def _holds_loss_scale(path: str) -> bool:
    """Whether the checkpoint at `path` was written by a run with loss scaling (float16)."""
    return any(name.startswith("optimizer/") and "dynamic_scale" in name for name, _ in tf.train.list_variables(path))


def has_checkpoint(workdir: str) -> bool:
    """Whether `workdir` holds a latest checkpoint to resume from."""
    return tf.train.latest_checkpoint(os.path.join(workdir, LATEST_DIR)) is not None


def read_best(workdir: str) -> Optional[dict]:
    path = os.path.join(workdir, BEST_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _write_json(path, values):
    atomic.write_text(path, json.dumps(values, indent=2, sort_keys=True))


def record_eval(path: str, values: dict) -> None:
    """Add the evaluation `values` (with its "step") to the JSON-lines history at `path`.

    The file is rewritten whole (`atomic.write_text`), entries at `values["step"]` or later dropped:
    a run killed after an evaluation but before its checkpoint redoes those steps on resume and
    evaluates them again, and the history keeps one entry per step, as an uninterrupted run's.
    """
    kept = []
    if os.path.exists(path):
        with open(path) as f:
            kept = [line for line in f.read().splitlines() if line and json.loads(line)["step"] < values["step"]]
    atomic.write_text(path, "".join(line + "\n" for line in kept + [json.dumps(values, sort_keys=True)]))


def checkpoint_path(workdir: str, which: str = "best") -> str:
    """The checkpoint prefix of a run: "best" (falls back to latest), "latest",
    or an explicit prefix."""
    if which not in ("best", "latest"):
        if not tf.io.gfile.exists(which + ".index"):
            raise ValueError(f"checkpoint {which!r} does not exist (no {which}.index)")
        return which
    path = None
    if which == "best":
        path = tf.train.latest_checkpoint(os.path.join(workdir, BEST_DIR))
    path = path or tf.train.latest_checkpoint(os.path.join(workdir, LATEST_DIR))
    if not path:
        raise ValueError(f"no checkpoint in {os.path.join(workdir, BEST_DIR)} or "
                         f"{os.path.join(workdir, LATEST_DIR)}: train the run first")
    return path


def restore_model(model, workdir: str, which: str = "best") -> str:
    """Load a run's weights into `model` (optimizer slots ignored); returns the path."""
    path = checkpoint_path(workdir, which)
    step = tf.Variable(0, dtype=tf.int64, name="step")
    # Every model variable must come from the file (optimizer slots may be left).
    _model_checkpoint(model, step=step).restore(path).expect_partial().assert_existing_objects_matched()
    return path

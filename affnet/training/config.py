"""`TrainConfig`: the one resolved configuration of a run, built once from flags.

Library code receives this frozen dataclass and never reads absl FLAGS
(Model Garden `official/common/flags.py`). It is written to `<workdir>/flags.json`
so `evaluate`, `export` and a resumed run rebuild exactly the same model.

Defaults follow [AW2] Sec. IV-A (VGGFACE1-GRU-attention): batch 4 sequences x
80 frames, Adam, learning rate 1e-3 decayed by 0.97 every 400 steps (staircase).
"""

import ast
import dataclasses
import json
import os
from typing import Any, Dict, Optional, Tuple

from affnet.models.multitask import TASKS
from affnet.objectives.couplings import COUPLINGS

OPTIMIZERS = ("adam", "sgd", "rmsprop")
STRATEGIES = ("ii", "i", "iii")
DISTRIBUTIONS = ("default", "mirrored", "multi_worker")
MIXED_PRECISION = ("none", "bfloat16", "float16")
LOSSES = ("ccc", "sequence_ccc_mean", "sequence_ccc_median", "mse", "multitask")
RELATEDNESS = ("cognitive", "empirical")
FLAGS_FILE = "flags.json"
_PAIR_FIELDS = ("model_overrides", "task_weights", "task_data", "task_batch_sizes", "coupling_options",
                "init_streams")


def _top_level_items(text: str):
    """`text` split at the commas outside brackets: "a=1,b=(2,3)" -> ["a=1", "b=(2,3)"]."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [item.strip() for item in items if item.strip()]


def parse_overrides(text: str) -> Dict[str, Any]:
    """`"width=0.125,rnn_units=64,landmarks=False,fc_units=(128,128)"` -> dict
    of Python literals (commas inside brackets belong to the value).

    Values that are not Python literals stay strings (`backbone=resnet50`).
    """
    overrides = {}
    for item in _top_level_items(text or ""):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"model override {item!r} in {text!r} is not of the form key=value")
        try:
            overrides[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            overrides[key.strip()] = value.strip()
    return overrides


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run (see `launch/train.py` for the flags).

    strategy: [AW2] Sec. III-B training strategies: "i" frozen CNN, train the
      RNN; "ii" random RNN, train everything; "iii" like "ii" with the RNN
      (and output layer) initialised from a strategy-"i" run (`init_rnn_from`:
      a workdir, `.keras` or `.weights.h5`).
    init_weights: a workdir, `.keras` or `.weights.h5` whose weights initialise
      the whole model before training (fine-tuning on RECOLA / AFEW-VA [AW2]).
    loss: "ccc" = 1 - mean CCC over the batch's B*T frames [AW2] eq. 2;
      "sequence_ccc_mean|median" = CCC over per-sequence mean/median values
      [MC] Sec. 3 (OMG utterance labels); "mse" [AW] Table 4.
    lr_decay_steps: 0 keeps the learning rate constant.
    utterance_level: evaluate per utterance (video) as [MC]: mean of the
      medians of its `seq_len`-frame sequences. Defaults on for sequence losses.
    oversample: [AW] Sec. 4 VA-quadrant balancing of the training windows.
    loss "multitask": models with a dict output ([FBN] MT-VGG(-GRU),
      FaceBehaviorNet, `categorical`): task_weights {task: weight} over
      L_VA = 1 - mean CCC, L_Emo (masked categorical cross-entropy) and L_AU
      (masked binary cross-entropy) [FBN] eq. 4-7, default 1 each; FaceBehaviorNet's
      L_MT = L_Emo + l1 L_AU + l2 L_VA sets expression=1, au=l1, va=l2. The
      coupling terms ([FBN] Sec. VI-B, `couplings`) take their weights from
      the same dict (default 1), with the `relatedness` table of [FBN] Table V;
      `coupling_options` sets the readings of `affnet.coupling.CouplingConfig`
      (e.g. {"dm_form": "binary", "observational": "weight"}).
    task_data / task_batch_sizes: [FBN] Sec. VI-B feeding: one dataset per task
      (`task_data` {task: data dir}, default `data` for every task) zipped each
      step with its own batch size (401 / 247 / 103 in the paper); empty
      `task_batch_sizes` reads one dataset with `batch_size`.
    categorical: [AW] Sec. 5.2: replace the model's output by 7 expression
      classes (softmax) and fine-tune it (with `init_weights` from a VA run);
      evaluated per frame and per video. `categorical_classes` other than 7
      gives [FBN] Sec. VI-B's few-shot path: a C-way compound-expression head on
      the shared feature of a FaceBehaviorNet run (labels 0..C-1 in the
      records' `expression` column).
    init_streams: [FBN] A/V-MT-VGG-GRU: {"visual" | "audio": a single-stream
      MT-VGG-GRU workdir} initialising each stream (streams trained alone,
      then jointly).
    """

    model: str = "vggface_gru_attention"
    model_overrides: Tuple[Tuple[str, Any], ...] = ()
    data: str = "data/affwild2"
    train_split: str = "train"
    eval_split: str = "validation"
    seq_len: int = 80
    batch_size: int = 4
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_decay_steps: int = 400
    lr_decay_rate: float = 0.97
    strategy: str = "ii"
    init_rnn_from: str = ""
    init_weights: str = ""
    train_steps: int = 10000
    eval_every: int = 1000
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 50
    distribution: str = "default"
    jit_compile: bool = False
    mixed_precision: str = "none"
    seed: int = 0
    workdir: str = "runs/default"
    loss: str = "ccc"
    utterance_level: Optional[bool] = None
    eval_batch_size: int = 0
    oversample: bool = False
    task_weights: Tuple[Tuple[str, float], ...] = ()
    couplings: Tuple[str, ...] = ()
    coupling_options: Tuple[Tuple[str, Any], ...] = ()
    relatedness: str = "cognitive"
    task_data: Tuple[Tuple[str, str], ...] = ()
    task_batch_sizes: Tuple[Tuple[str, int], ...] = ()
    categorical: bool = False
    categorical_classes: int = 7
    init_streams: Tuple[Tuple[str, str], ...] = ()

    def __post_init__(self):
        def choose(name, options):
            value = getattr(self, name)
            if value not in options:
                raise ValueError(f"{name} must be one of {options}, got {value!r}")

        choose("optimizer", OPTIMIZERS)
        choose("strategy", STRATEGIES)
        choose("distribution", DISTRIBUTIONS)
        choose("mixed_precision", MIXED_PRECISION)
        choose("loss", LOSSES)
        for name in ("seq_len", "batch_size", "train_steps", "eval_every", "checkpoint_every",
                     "keep_checkpoints", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        for name in ("lr_decay_steps", "eval_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0 < self.lr_decay_rate <= 1:
            raise ValueError(f"lr_decay_rate must be in (0, 1], got {self.lr_decay_rate!r}")
        if self.strategy == "iii" and not self.init_rnn_from:
            raise ValueError("strategy 'iii' needs init_rnn_from (a strategy-'i' run's workdir or weights file)")
        if self.strategy != "iii" and self.init_rnn_from:
            raise ValueError(f"init_rnn_from={self.init_rnn_from!r} is only used by strategy 'iii', "
                             f"got strategy {self.strategy!r}")
        if not self.workdir:
            raise ValueError("workdir must not be empty")
        for name in _PAIR_FIELDS:
            value = getattr(self, name)
            pairs = value.items() if isinstance(value, dict) else value
            object.__setattr__(self, name, tuple(sorted(tuple(kv) for kv in pairs)))
        couplings = (self.couplings.split(",") if isinstance(self.couplings, str) else self.couplings)
        object.__setattr__(self, "couplings", tuple(sorted({c.strip() for c in couplings if c.strip()})))
        self._check_tasks()

    def _check_tasks(self):
        def choose(name, value, options):
            if value not in options:
                raise ValueError(f"{name} must be one of {options}, got {value!r}")
        choose("relatedness", self.relatedness, RELATEDNESS)
        for coupling in self.couplings:
            choose("couplings", coupling, COUPLINGS)
        for task, weight in self.task_weights:
            choose("task_weights key", task, TASKS + COUPLINGS)
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
                raise ValueError(f"task_weights[{task!r}] must be a number >= 0, got {weight!r}")
        for task, _ in self.task_data:
            choose("task_data key", task, TASKS)
        for task, size in self.task_batch_sizes:
            choose("task_batch_sizes key", task, TASKS)
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(f"task_batch_sizes[{task!r}] must be an int >= 1, got {size!r}")
        multitask_only = [name for name in ("task_weights", "couplings", "coupling_options", "task_data",
                                            "task_batch_sizes") if getattr(self, name)]
        if (multitask_only or self.categorical) and self.loss != "multitask":
            raise ValueError(f"{multitask_only or ['categorical']} need loss='multitask', got loss={self.loss!r}")
        for stream, _ in self.init_streams:
            choose("init_streams key", stream, ("visual", "audio"))
        if isinstance(self.categorical_classes, bool) or not isinstance(self.categorical_classes, int) or \
                self.categorical_classes < 2:
            raise ValueError(f"categorical_classes must be an int >= 2, got {self.categorical_classes!r}")
        if self.task_data and not self.task_batch_sizes:
            raise ValueError("task_data needs task_batch_sizes (one batch per task and step, [FBN] Sec. VI-B)")

    @property
    def overrides(self) -> Dict[str, Any]:
        """Model build overrides, with the strategy's `freeze_backbone`."""
        overrides = dict(self.model_overrides)
        if self.strategy == "i":
            overrides["freeze_backbone"] = True
        return overrides

    @property
    def task_weight(self) -> Dict[str, float]:
        """{task or coupling: weight}, 1 where `task_weights` does not say."""
        return {**{name: 1.0 for name in TASKS + COUPLINGS}, **{k: float(v) for k, v in self.task_weights}}

    @property
    def sequence_loss(self) -> bool:
        return self.loss.startswith("sequence_ccc")

    @property
    def utterance_eval(self) -> bool:
        return self.sequence_loss if self.utterance_level is None else bool(self.utterance_level)

    @property
    def eval_batch(self) -> int:
        return self.eval_batch_size or self.batch_size

    def to_json(self) -> str:
        values = dataclasses.asdict(self)
        for name in _PAIR_FIELDS:
            values[name] = dict(getattr(self, name))
        values["couplings"] = list(self.couplings)
        return json.dumps(values, indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "TrainConfig":
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown configuration keys {unknown}; known: {sorted(known)}")
        values = dict(values)
        for name in _PAIR_FIELDS:
            values[name] = tuple(sorted(dict(values.get(name, {})).items()))
        values["couplings"] = tuple(values.get("couplings", ()))
        return cls(**values)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def save(config: TrainConfig, workdir: Optional[str] = None) -> str:
    """Write `flags.json` (atomically) into `workdir` (default `config.workdir`)."""
    workdir = workdir or config.workdir
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, FLAGS_FILE)
    with open(path + ".tmp", "w") as f:
        f.write(config.to_json() + "\n")
    os.replace(path + ".tmp", path)
    return path


def load(workdir: str) -> TrainConfig:
    """The `TrainConfig` of a run from `<workdir>/flags.json`."""
    path = os.path.join(workdir, FLAGS_FILE)
    if not os.path.exists(path):
        raise ValueError(f"{path} does not exist: {workdir!r} is not a training workdir "
                         f"(run launch/train.py --workdir={workdir} first)")
    with open(path) as f:
        try:
            values = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from error
    return TrainConfig.from_dict(values)


def differences(saved: TrainConfig, requested: TrainConfig, ignore=("train_steps", "eval_every",
                                                                     "checkpoint_every", "log_every",
                                                                     "keep_checkpoints", "workdir")):
    """Settings that differ between a workdir's saved config and a resumed run's."""
    a, b = dataclasses.asdict(saved), dataclasses.asdict(requested)
    return {k: (a[k], b[k]) for k in a if k not in ignore and a[k] != b[k]}

"""`TrainConfig`: the one resolved configuration of a run, declared once.

Every setting is one dataclass field with its default, help and allowed values
(`setting(...)`), grouped into frozen dataclasses: `model`, `data`,
`optimisation`, `init`, `multitask` and `runtime`. `launch/train.py` generates
its absl flags from these declarations (`SETTINGS`) and library code only ever
receives the frozen `TrainConfig` (Model Garden `official/common/flags.py`).
A flag's name is its field's name unless the field declares another
(`--model` -> `model.name`, `--model_overrides` -> `model.overrides`,
`--data` -> `data.dir`).

The config is written to `<workdir>/flags.json` in the nested form so that
`evaluate`, `export` and a resumed run rebuild exactly the same model.

Defaults follow [AW2] Sec. IV-A (VGGFACE1-GRU-attention): batch 4 sequences x
80 frames, Adam, learning rate 1e-3 decayed by 0.97 every 400 steps (staircase).
"""

import dataclasses
import json
import os
import typing
from typing import Any, Dict, Mapping, Optional, Tuple

from data_pipeline.base import atomic, key_values
from data_pipeline.base.checks import suggest

from affnet.names import COUPLINGS, TASKS

OPTIMIZERS = ("adam", "sgd", "rmsprop")
STRATEGIES = ("ii", "i", "iii")
DISTRIBUTIONS = ("default", "mirrored", "multi_worker")
MIXED_PRECISION = ("none", "bfloat16", "float16")
LOSSES = ("ccc", "sequence_ccc_mean", "sequence_ccc_median", "mse", "multitask")
RELATEDNESS = ("cognitive", "empirical")
STREAMS = ("visual", "audio")
UTTERANCE_LEVELS = ("auto", "true", "false")
FLAGS_FILE = "flags.json"

# key=value settings: sorted (key, value) pairs, so the config stays hashable.
Pairs = Tuple[Tuple[str, Any], ...]
Names = Tuple[str, ...]


def parse_overrides(text: str) -> Dict[str, Any]:
    """`"width=0.125,rnn_units=64,landmarks=False,fc_units=(128,128)"` -> dict (`key_values.parse`)."""
    return key_values.parse(text, "key=value setting")


def setting(default, help: str, *, flag: str = "", choices: Tuple = (), keys: Tuple = (),
            minimum: Optional[float] = None):
    """One declared setting: a dataclass field whose metadata the flags are made of.

    flag: the command-line name when it is not the field's name.
    choices: the allowed values (an enum flag).
    keys: for key=value settings, the allowed keys (empty: checked elsewhere,
      e.g. model overrides against the builder's signature).
    minimum: the smallest allowed number (for key=value settings: of each value).
    """
    return dataclasses.field(default=default, metadata=dict(help=help, flag=flag, choices=tuple(choices),
                                                            keys=tuple(keys), minimum=minimum))


def _pairs(value, flag: str) -> Pairs:
    """A key=value setting from "k=v,..." text, a mapping or pairs, sorted."""
    if isinstance(value, str):
        try:
            value = parse_overrides(value)
        except ValueError as error:
            raise ValueError(f"--{flag}: {error}") from None
    items = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((str(k), _frozen(v)) for k, v in items))


def _frozen(value):
    """Lists as tuples: flags.json gives `[128, 128]` where the flag gave
    `(128, 128)`, and a resumed run must compare equal to its saved config."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def _names(value) -> Names:
    if isinstance(value, str):
        value = value.split(",")
    return tuple(sorted({str(v).strip() for v in value if str(v).strip()}))


def _check_number(name: str, value, kind: type, minimum):
    """`value` is a `kind` (int or float; bools are neither) >= `minimum`."""
    is_number = isinstance(value, (int, float)) if kind is float else isinstance(value, int)
    if isinstance(value, bool) or not is_number:
        raise ValueError(f"{name} must be {'an int' if kind is int else 'a number'}, got {value!r}")
    if minimum is not None and not value >= minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")


class _Group:
    """Normalises and checks every field of a group from its declaration."""

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for field in dataclasses.fields(self):
            name, meta, kind = field.metadata["flag"] or field.name, field.metadata, hints[field.name]
            value = getattr(self, field.name)
            if kind is Pairs:
                value = _pairs(value, name)
                for key, item in value:
                    if meta["keys"] and key not in meta["keys"]:
                        raise ValueError(f"--{name}: unknown key {key!r}{suggest(key, meta['keys'])}")
                    if meta["minimum"] is not None:
                        _check_number(f"--{name} {key}", item, float, meta["minimum"])
            elif kind is Names:
                value = _names(value)
                for item in value:
                    if meta["choices"] and item not in meta["choices"]:
                        raise ValueError(f"--{name}: unknown value {item!r}{suggest(item, meta['choices'])}")
            elif kind is bool:
                if not isinstance(value, bool):
                    raise ValueError(f"--{name} must be true or false, got {value!r}")
            elif kind in (int, float):
                _check_number(f"--{name}", value, kind, meta["minimum"])
                value = kind(value)
            elif meta["choices"] and value not in meta["choices"]:
                raise ValueError(f"--{name} must be one of {', '.join(meta['choices'])}, got {value!r}"
                                 f"{suggest(value, meta['choices'], list_known=False)}")
            object.__setattr__(self, field.name, value)


@dataclasses.dataclass(frozen=True)
class ModelConfig(_Group):
    """Which network: a registry name plus build overrides ([AW] Sec. 5.2 categorical)."""

    name: str = setting("vggface_gru_attention", "Registry name (affnet.models.names()).", flag="model")
    overrides: Pairs = setting((), "key=value,... build overrides, e.g. width=0.125,rnn_units=64 (checked "
                               "against the builder's arguments).", flag="model_overrides")
    categorical: bool = setting(False, "[AW] Sec. 5.2: replace the output by 7 expression classes and fine-tune "
                                "(with --init_weights from a VA run; loss=multitask).")
    categorical_classes: int = setting(7, "Classes of --categorical; e.g. 11 RAF-DB compound expressions for "
                                       "[FBN]'s few-shot path.", minimum=2)


@dataclasses.dataclass(frozen=True)
class DataConfig(_Group):
    """Where the frames come from and how they are cut ([AW2] Sec. IV-A 4 x 80)."""

    dir: str = setting("data/affwild2", "Directory with <split>/*.tfrecord[.gz].", flag="data")
    train_split: str = setting("train", "Training split.")
    eval_split: str = setting("validation", "Validation split (best checkpoint, median-filter windows).")
    seq_len: int = setting(80, "Frames per sequence ([AW2] 80).", minimum=1)
    batch_size: int = setting(4, "Sequences per step, global ([AW2] 4).", minimum=1)
    eval_batch_size: int = setting(0, "Sequences per evaluation batch; 0 = batch_size.", minimum=0)
    oversample: bool = setting(False, "[AW] Sec. 4 VA-quadrant oversampling of training windows "
                               "(targets 43/24/19/14 %).")
    skip_corrupt_shards: bool = setting(False, "Skip (and count) corrupt or foreign TFRecord shards instead of "
                                        "stopping at the first one.")
    utterance_level: str = setting("auto", "Evaluate per utterance ([MC]); auto = with the sequence CCC losses.",
                                   choices=UTTERANCE_LEVELS)
    deterministic_input: bool = setting(False, "Training reads in a fixed order for a seed (slower); default: "
                                        "parallel reads deliver in completion order. Evaluation is always ordered.")

    @property
    def eval_batch(self) -> int:
        return self.eval_batch_size or self.batch_size


@dataclasses.dataclass(frozen=True)
class OptimisationConfig(_Group):
    """Loss, optimizer and schedule ([AW2] Sec. IV-A; [AW2] Sec. III-B strategies).

    loss: "ccc" = 1 - mean CCC over the batch's B*T frames [AW2] eq. 2;
      "sequence_ccc_mean|median" = CCC over per-sequence mean/median values
      [MC] Sec. 3 (OMG utterance labels); "mse" [AW] Table 4; "multitask"
      for dict-output models ([FBN] eq. 4-7, see `MultitaskConfig`).
    strategy: "i" frozen CNN, train the RNN; "ii" random RNN, train
      everything; "iii" like "ii" with the RNN (and output layer) initialised
      from a strategy-"i" run (`init.init_rnn_from`).
    """

    loss: str = setting("ccc", "ccc (frames of the batch, [AW2]) | sequence_ccc_mean|median ([MC] utterance "
                        "level) | mse ([AW] CNN-M) | multitask ([FBN] eq. 4-7, dict-output models).", choices=LOSSES)
    optimizer: str = setting("adam", "Optimizer ([all] Adam).", choices=OPTIMIZERS)
    learning_rate: float = setting(1e-3, "Initial learning rate.")
    lr_decay_steps: int = setting(400, "Staircase exponential decay period; 0 = constant.", minimum=0)
    lr_decay_rate: float = setting(0.97, "Decay factor per period ([AW2] 0.97).")
    strategy: str = setting("ii", "[AW2] Sec. III-B: i frozen CNN, ii train all, iii RNN initialised from a run "
                            "of i.", choices=STRATEGIES)
    train_steps: int = setting(10000, "Total training steps.", minimum=1)
    seed: int = setting(0, "Initialisation and data-order seed.")
    adam_epsilon: float = setting(1e-8, "Adam's epsilon: 1e-8 as the authors' TF1 tf.train.AdamOptimizer "
                                  "(Keras' default is 1e-7).")

    def __post_init__(self):
        super().__post_init__()
        if not self.learning_rate > 0:
            raise ValueError(f"--learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0 < self.lr_decay_rate <= 1:
            raise ValueError(f"--lr_decay_rate must be in (0, 1], got {self.lr_decay_rate!r}")
        if not self.adam_epsilon > 0:
            raise ValueError(f"--adam_epsilon must be > 0, got {self.adam_epsilon!r}")

    @property
    def sequence_loss(self) -> bool:
        return self.loss.startswith("sequence_ccc")


@dataclasses.dataclass(frozen=True)
class InitConfig(_Group):
    """Weights that initialise the model before the first step (checked to exist
    by `affnet.training.preflight`); a resumed run restores its own instead."""

    init_weights: str = setting("", "Initialise the whole model from a workdir, .keras or .weights.h5 "
                                "(fine-tuning on RECOLA / AFEW-VA [AW2]).")
    init_rnn_from: str = setting("", "Strategy iii: a strategy-i workdir, .keras or .weights.h5.")
    init_streams: Pairs = setting((), "[FBN] A/V-MT-VGG-GRU: visual=<workdir>,audio=<workdir> of single-stream "
                                  "MT-VGG-GRU runs (streams trained alone, then jointly).", keys=STREAMS)


@dataclasses.dataclass(frozen=True)
class MultitaskConfig(_Group):
    """[FBN] multi-task settings; any of them set needs `--loss=multitask`.

    task_weights {task: weight} over L_VA = 1 - mean CCC, L_Emo (masked
    categorical cross-entropy) and L_AU (masked binary cross-entropy) [FBN]
    eq. 4-7, default 1 each; FaceBehaviorNet's L_MT = L_Emo + l1 L_AU + l2 L_VA
    sets expression=1, au=l1, va=l2. The coupling terms ([FBN] Sec. VI-B) take
    their weights from the same dict (default 1), with the `relatedness` table
    of [FBN] Table V; `coupling_options` sets the readings of
    `affnet.objectives.couplings.CouplingConfig` (e.g. dm_form=binary,observational=weight).
    task_data / task_batch_sizes: [FBN] Sec. VI-B feeding: one dataset per task
    (default `--data` for every task) zipped each step with its own batch size
    (401 / 247 / 103 in the paper); empty `task_batch_sizes` reads one dataset
    with `batch_size`.
    """

    task_weights: Pairs = setting((), "loss=multitask: task=weight,... over va, expression, au and the couplings "
                                  "([FBN] eq. 4-7: L_Emo + l1 L_AU + l2 L_VA); default 1.",
                                  keys=TASKS + COUPLINGS, minimum=0)
    couplings: Names = setting((), "FaceBehaviorNet couplings ([FBN] Sec. VI-B): co_annotation, "
                               "distribution_matching, soft_co_annotation.", choices=COUPLINGS)
    coupling_options: Pairs = setting((), "key=value,... readings of the couplings (affnet.objectives.couplings.CouplingConfig: "
                                      "observational, dm_form, dm_stop_gradient, dm_weighted, soft_neutral_score, "
                                      "...).")
    relatedness: str = setting("cognitive", "[FBN] Table V emotion-AU relatedness: cognitive study or empirical "
                               "Aff-Wild2.", choices=RELATEDNESS)
    task_data: Pairs = setting((), "task=data_dir,... one dataset per task ([FBN]); default --data.", keys=TASKS)
    task_batch_sizes: Pairs = setting((), "task=batch,... zipped per step ([FBN] va=401,au=247,expression=103); "
                                      "empty = one dataset of --batch_size.", keys=TASKS)

    def __post_init__(self):
        super().__post_init__()
        for task, size in self.task_batch_sizes:
            _check_number(f"--task_batch_sizes {task}", size, int, 1)
        if self.task_data and not self.task_batch_sizes:
            raise ValueError("--task_data needs --task_batch_sizes (one batch per task and step, [FBN] Sec. VI-B)")

    @property
    def task_weight(self) -> Dict[str, float]:
        """{task or coupling: weight}, 1 where `task_weights` does not say."""
        return {**{name: 1.0 for name in TASKS + COUPLINGS}, **{k: float(v) for k, v in self.task_weights}}


@dataclasses.dataclass(frozen=True)
class RuntimeConfig(_Group):
    """Where and how the run executes; the cadence settings may change on resume."""

    workdir: str = setting("runs/default", "One directory per run; re-running resumes.")
    distribution: str = setting("default", "default | mirrored (local devices) | multi_worker (TF_CONFIG).",
                                choices=DISTRIBUTIONS)
    jit_compile: bool = setting(False, "XLA-compile the forward/backward pass.")
    mixed_precision: str = setting("none", "none | bfloat16 | float16 (loss scaling).", choices=MIXED_PRECISION)
    eval_every: int = setting(1000, "Steps between validation runs.", minimum=1)
    checkpoint_every: int = setting(500, "Steps between checkpoints.", minimum=1)
    keep_checkpoints: int = setting(3, "Latest checkpoints kept.", minimum=1)
    log_every: int = setting(50, "Steps between progress lines / summaries.", minimum=1)

    def __post_init__(self):
        super().__post_init__()
        if not self.workdir:
            raise ValueError("--workdir must not be empty")


GROUPS = {"model": ModelConfig, "data": DataConfig, "optimisation": OptimisationConfig, "init": InitConfig,
          "multitask": MultitaskConfig, "runtime": RuntimeConfig}
# Settings a resumed run may change (train longer, log or evaluate more often, move the workdir).
# Settings a resumed run may change. Skipping unreadable shards changes nothing about the run:
# a run stopped by a corrupt shard resumes with --skip_corrupt_shards.
RESUMABLE = ("train_steps", "eval_every", "checkpoint_every", "log_every", "keep_checkpoints", "workdir",
             "skip_corrupt_shards",
             # How the same step is computed: the checkpoint holds float32 variables whatever these are
             # (README "Training on GPUs": resuming with other settings); the order training windows
             # arrive in is not part of a run's state either.
             "distribution", "jit_compile", "mixed_precision", "deterministic_input")


@dataclasses.dataclass(frozen=True)
class Setting:
    """One declared setting as the flag generator sees it."""

    flag: str
    group: str
    field: str
    kind: Any  # str, int, float, bool, Pairs or Names
    default: Any
    help: str
    choices: Tuple
    keys: Tuple


def _settings() -> Tuple[Setting, ...]:
    result = []
    for group, cls in GROUPS.items():
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            meta = field.metadata
            result.append(Setting(meta["flag"] or field.name, group, field.name, hints[field.name], field.default,
                                  meta["help"], meta["choices"], meta["keys"]))
    flags = [s.flag for s in result]
    assert len(flags) == len(set(flags)), f"a flag is declared twice: {flags}"
    return tuple(result)


SETTINGS = _settings()
_BY_FLAG = {s.flag: s for s in SETTINGS}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run, by group (flags: `launch/train.py`)."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    optimisation: OptimisationConfig = OptimisationConfig()
    init: InitConfig = InitConfig()
    multitask: MultitaskConfig = MultitaskConfig()
    runtime: RuntimeConfig = RuntimeConfig()

    def __post_init__(self):
        if self.optimisation.strategy == "iii" and not self.init.init_rnn_from:
            raise ValueError("--strategy=iii needs --init_rnn_from (a strategy-i run's workdir or weights file)")
        if self.optimisation.strategy != "iii" and self.init.init_rnn_from:
            raise ValueError(f"--init_rnn_from={self.init.init_rnn_from} is only used by --strategy=iii, "
                             f"got --strategy={self.optimisation.strategy}")
        multitask_only = [s.flag for s in SETTINGS if s.group == "multitask"
                          and getattr(self.multitask, s.field) != s.default]
        if self.model.categorical:
            multitask_only.append("categorical")
        if multitask_only and self.optimisation.loss != "multitask":
            raise ValueError(f"--{', --'.join(multitask_only)} need --loss=multitask, "
                             f"got --loss={self.optimisation.loss}")

    @classmethod
    def from_flat(cls, values: Mapping[str, Any] = None, **settings) -> "TrainConfig":
        """The config from {flag name: value} and/or `flag=value` keywords
        (absl flags, tests); settings not given keep
        their defaults."""
        values = {**(values or {}), **settings}
        unknown = sorted(set(values) - set(_BY_FLAG))
        if unknown:
            raise ValueError(f"unknown setting {unknown[0]!r}{suggest(unknown[0], _BY_FLAG)}")
        groups = {name: {} for name in GROUPS}
        for flag, value in values.items():
            groups[_BY_FLAG[flag].group][_BY_FLAG[flag].field] = value
        return cls(**{name: GROUPS[name](**fields) for name, fields in groups.items()})

    def flat(self) -> Dict[str, Any]:
        """{flag name: value} of every setting."""
        return {s.flag: getattr(getattr(self, s.group), s.field) for s in SETTINGS}

    def replace(self, **changes) -> "TrainConfig":
        """A copy with settings changed by flag name (checked together)."""
        return TrainConfig.from_flat({**self.flat(), **changes})

    @property
    def build_overrides(self) -> Dict[str, Any]:
        """`affnet.models.build` overrides: `model.overrides` plus the strategy's `freeze_backbone`."""
        overrides = dict(self.model.overrides)
        if self.optimisation.strategy == "i":
            overrides["freeze_backbone"] = True
        return overrides

    @property
    def utterance_eval(self) -> bool:
        """Evaluate per utterance ([MC]): as asked, or with the sequence CCC losses."""
        if self.data.utterance_level == "auto":
            return self.optimisation.sequence_loss
        return self.data.utterance_level == "true"

    def to_dict(self) -> Dict[str, Dict[str, Any]]:
        """The nested JSON form: key=value settings as objects, name lists as lists."""
        nested = {name: {} for name in GROUPS}
        for s in SETTINGS:
            value = getattr(getattr(self, s.group), s.field)
            nested[s.group][s.field] = dict(value) if s.kind is Pairs else list(value) if s.kind is Names else value
        return nested

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainConfig":
        """From `to_dict`'s nested form ({group: {field: value}})."""
        if not all(isinstance(v, Mapping) for v in values.values()) or not set(values) <= set(GROUPS):
            raise ValueError(f"not the nested form {{group: {{setting: value}}}} with groups {', '.join(GROUPS)}")
        flat = {}
        for group, fields in values.items():
            known = {s.field: s.flag for s in SETTINGS if s.group == group}
            for field, value in fields.items():
                if field not in known:
                    raise ValueError(f"unknown setting {group}.{field}{suggest(field, known)}")
                flat[known[field]] = value
        return cls.from_flat(flat)


def save(config: TrainConfig, workdir: Optional[str] = None) -> str:
    """Write `flags.json` (atomically) into `workdir` (default `config.runtime.workdir`)."""
    workdir = workdir or config.runtime.workdir
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, FLAGS_FILE)
    atomic.write_text(path, config.to_json() + "\n")
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
    try:
        return TrainConfig.from_dict(values)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def differences(saved: TrainConfig, requested: TrainConfig, ignore=RESUMABLE) -> Dict[str, Tuple[Any, Any]]:
    """{flag: (saved, requested)} of the settings a resumed run changes."""
    a, b = saved.flat(), requested.flat()
    return {k: (a[k], b[k]) for k in a if k not in ignore and a[k] != b[k]}

"""Train a named affnet configuration; re-running the same command resumes.

  python launch/train.py --flagfile=affwild2.flags [--workdir=runs/affwild2]

The flags are turned once into `affnet.training.config.TrainConfig` and saved
as `<workdir>/flags.json`. Outputs in the workdir: TensorBoard logs (`train/`,
`val/`), `checkpoints/` (latest N), `best/` + `best.json` (best validation mean
CCC), `eval_history.json`. See `affnet.training.loop`.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _paths  # noqa: E402

_paths.ensure_importable()
import _cli  # noqa: E402  (before TensorFlow: silences its C++ logs)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from affnet.training import config as config_lib  # noqa: E402

_MODEL = flags.DEFINE_string("model", "vggface_gru_attention", "Registry name (affnet.models.names()).")
_MODEL_OVERRIDES = flags.DEFINE_string("model_overrides", "", "key=value,... build overrides, "
                                       "e.g. width=0.125,rnn_units=64.")
_DATA = flags.DEFINE_string("data", "data/affwild2", "Directory with <split>/ holding TFRecord shards "
                             "(*.tfrecord, *.tfrecord.gz, in any sub-folder), or a glob with {split}.")
_TRAIN_SPLIT = flags.DEFINE_string("train_split", "train", "Training split.")
_EVAL_SPLIT = flags.DEFINE_string("eval_split", "validation", "Validation split (best checkpoint, "
                                  "median-filter windows).")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 80, "Frames per sequence ([AW2] 80).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 4, "Sequences per step, global ([AW2] 4).")
_EVAL_BATCH_SIZE = flags.DEFINE_integer("eval_batch_size", 0, "Sequences per evaluation batch; 0 = batch_size.")
_OPTIMIZER = flags.DEFINE_enum("optimizer", "adam", config_lib.OPTIMIZERS, "Optimizer ([all] Adam).")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Initial learning rate.")
_LR_DECAY_STEPS = flags.DEFINE_integer("lr_decay_steps", 400, "Staircase exponential decay period; 0 = constant.")
_LR_DECAY_RATE = flags.DEFINE_float("lr_decay_rate", 0.97, "Decay factor per period ([AW2] 0.97).")
_STRATEGY = flags.DEFINE_enum("strategy", "ii", config_lib.STRATEGIES, "[AW2] Sec. III-B: i frozen CNN, "
                              "ii train all, iii RNN initialised from a run of i.")
_INIT_RNN_FROM = flags.DEFINE_string("init_rnn_from", "", "Strategy iii: a strategy-i workdir, .keras or "
                                     ".weights.h5.")
_INIT_WEIGHTS = flags.DEFINE_string("init_weights", "", "Initialise the whole model from a workdir, .keras or "
                                    ".weights.h5 (fine-tuning).")
_TRAIN_STEPS = flags.DEFINE_integer("train_steps", 10000, "Total training steps.")
_EVAL_EVERY = flags.DEFINE_integer("eval_every", 1000, "Steps between validation runs.")
_CHECKPOINT_EVERY = flags.DEFINE_integer("checkpoint_every", 500, "Steps between checkpoints.")
_KEEP_CHECKPOINTS = flags.DEFINE_integer("keep_checkpoints", 3, "Latest checkpoints kept.")
_LOG_EVERY = flags.DEFINE_integer("log_every", 50, "Steps between progress lines / summaries.")
_DISTRIBUTION = flags.DEFINE_enum("distribution", "default", config_lib.DISTRIBUTIONS,
                                  "default | mirrored (local devices) | multi_worker (TF_CONFIG).")
_JIT_COMPILE = flags.DEFINE_bool("jit_compile", False, "XLA-compile the forward/backward pass.")
_MIXED_PRECISION = flags.DEFINE_enum("mixed_precision", "none", config_lib.MIXED_PRECISION,
                                     "none | bfloat16 | float16 (loss scaling).")
_SEED = flags.DEFINE_integer("seed", 0, "Initialisation and data-order seed.")
_WORKDIR = flags.DEFINE_string("workdir", "runs/default", "One directory per run; re-running resumes.")
_LOSS = flags.DEFINE_enum("loss", "ccc", config_lib.LOSSES, "ccc (frames of the batch, [AW2]) | "
                          "sequence_ccc_mean|median ([MC] utterance level) | mse ([AW] CNN-M) | "
                          "multitask ([FBN] eq. 4-7, dict-output models).")
_OVERSAMPLE = flags.DEFINE_bool("oversample", False, "[AW] Sec. 4 VA-quadrant oversampling of training windows "
                                "(targets 43/24/19/14 %).")
_TASK_WEIGHTS = flags.DEFINE_string("task_weights", "", "loss=multitask: task=weight,... over va, expression, au "
                                    "and the couplings ([FBN] eq. 4-7: L_Emo + l1 L_AU + l2 L_VA); default 1.")
_COUPLINGS = flags.DEFINE_list("couplings", [], "FaceBehaviorNet couplings ([FBN] Sec. VI-B): co_annotation, "
                               "distribution_matching, soft_co_annotation.")
_COUPLING_OPTIONS = flags.DEFINE_string("coupling_options", "", "key=value,... readings of the couplings "
                                        "(affnet.coupling.CouplingConfig: observational, dm_form, "
                                        "dm_stop_gradient, dm_weighted, soft_neutral_score, ...).")
_RELATEDNESS = flags.DEFINE_enum("relatedness", "cognitive", config_lib.RELATEDNESS,
                                 "[FBN] Table V emotion-AU relatedness: cognitive study or empirical Aff-Wild2.")
_TASK_DATA = flags.DEFINE_string("task_data", "", "task=data_dir,... one dataset per task ([FBN]); default --data.")
_TASK_BATCH_SIZES = flags.DEFINE_string("task_batch_sizes", "", "task=batch,... zipped per step ([FBN] "
                                        "va=401,au=247,expression=103); empty = one dataset of --batch_size.")
_CATEGORICAL = flags.DEFINE_bool("categorical", False, "[AW] Sec. 5.2: replace the output by 7 expression "
                                 "classes and fine-tune (with --init_weights from a VA run; loss=multitask).")
_CATEGORICAL_CLASSES = flags.DEFINE_integer("categorical_classes", 7, "Classes of --categorical; e.g. 11 "
                                            "RAF-DB compound expressions for [FBN]'s few-shot path.")
_INIT_STREAMS = flags.DEFINE_string("init_streams", "", "[FBN] A/V-MT-VGG-GRU: visual=<workdir>,audio=<workdir> "
                                    "of single-stream MT-VGG-GRU runs.")
_SKIP_CORRUPT_SHARDS = flags.DEFINE_bool("skip_corrupt_shards", False, "Leave out corrupt, truncated or foreign "
                                         "shards (logged, and counted in TensorBoard) instead of stopping.")
_UTTERANCE_LEVEL = flags.DEFINE_enum("utterance_level", "auto", ("auto", "true", "false"),
                                     "Evaluate per utterance ([MC]); auto = with the sequence CCC losses.")


def config_from_flags() -> config_lib.TrainConfig:
    """The one conversion of the flags into the frozen `TrainConfig`."""
    return config_lib.TrainConfig(
        model=_MODEL.value, model_overrides=config_lib.parse_overrides(_MODEL_OVERRIDES.value),
        data=_DATA.value, train_split=_TRAIN_SPLIT.value, eval_split=_EVAL_SPLIT.value, seq_len=_SEQ_LEN.value,
        batch_size=_BATCH_SIZE.value, eval_batch_size=_EVAL_BATCH_SIZE.value, optimizer=_OPTIMIZER.value,
        learning_rate=_LEARNING_RATE.value, lr_decay_steps=_LR_DECAY_STEPS.value,
        lr_decay_rate=_LR_DECAY_RATE.value, strategy=_STRATEGY.value, init_rnn_from=_INIT_RNN_FROM.value,
        init_weights=_INIT_WEIGHTS.value, train_steps=_TRAIN_STEPS.value, eval_every=_EVAL_EVERY.value,
        checkpoint_every=_CHECKPOINT_EVERY.value, keep_checkpoints=_KEEP_CHECKPOINTS.value,
        log_every=_LOG_EVERY.value, distribution=_DISTRIBUTION.value, jit_compile=_JIT_COMPILE.value,
        mixed_precision=_MIXED_PRECISION.value, seed=_SEED.value, workdir=_WORKDIR.value, loss=_LOSS.value,
        utterance_level=None if _UTTERANCE_LEVEL.value == "auto" else _UTTERANCE_LEVEL.value == "true",
        oversample=_OVERSAMPLE.value, task_weights=config_lib.parse_overrides(_TASK_WEIGHTS.value),
        couplings=tuple(_COUPLINGS.value), relatedness=_RELATEDNESS.value,
        coupling_options=config_lib.parse_overrides(_COUPLING_OPTIONS.value),
        task_data=config_lib.parse_overrides(_TASK_DATA.value),
        task_batch_sizes=config_lib.parse_overrides(_TASK_BATCH_SIZES.value), categorical=_CATEGORICAL.value,
        categorical_classes=_CATEGORICAL_CLASSES.value,
        init_streams=config_lib.parse_overrides(_INIT_STREAMS.value),
        skip_corrupt_shards=_SKIP_CORRUPT_SHARDS.value)


def train_and_report(config: config_lib.TrainConfig) -> dict:
    """Check the data, train, print and return the summary."""
    from affnet.training import data, loop

    try:
        data.check_data(config)
    except FileNotFoundError as missing:
        print(f"error: {missing}", file=sys.stderr)
        sys.exit(2)
    for source in (config.init_weights, config.init_rnn_from, *dict(config.init_streams).values()):
        if source and not os.path.exists(source):
            print(f"error: {source} does not exist (needed by --init_weights / --init_rnn_from); train that "
                  f"run first (see the flagfile header)", file=sys.stderr)
            sys.exit(2)
    result = loop.train(config)
    print(json.dumps({k: v for k, v in result.items() if k != "last_eval"}, indent=1, default=str))
    return result


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    train_and_report(config_from_flags())


def run():
    """The `affnet-train` console script."""
    _cli.run(main)


if __name__ == "__main__":
    run()

"""The declared configuration: one declaration per setting, the flags generated
from it, flags.json (the nested form; anything else is refused naming the file),
and the checks that run before anything is written, with the nearest valid names."""

import json
import os
import re
import subprocess
import sys

import pytest

from affnet import models
from affnet.training import config as config_lib
from affnet.training import preflight
from affnet.training.config import TrainConfig

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Flags a user's command lines and flagfiles rely on: none may disappear or change its name.
TODAYS_FLAGS = {
    "model", "model_overrides", "data", "train_split", "eval_split", "seq_len", "batch_size", "eval_batch_size",
    "optimizer", "learning_rate", "lr_decay_steps", "lr_decay_rate", "strategy", "init_rnn_from", "init_weights",
    "train_steps", "eval_every", "checkpoint_every", "keep_checkpoints", "log_every", "distribution", "jit_compile",
    "mixed_precision", "seed", "workdir", "loss", "oversample", "task_weights", "couplings", "coupling_options",
    "relatedness", "task_data", "task_batch_sizes", "categorical", "categorical_classes", "init_streams",
    "utterance_level"}


def test_every_setting_is_declared_once_with_help_in_a_group():
    flags = [s.flag for s in config_lib.SETTINGS]
    assert len(flags) == len(set(flags))
    assert set(flags) == TODAYS_FLAGS | {"skip_corrupt_shards", "deterministic_input", "adam_epsilon"}
    assert all(s.help and s.group in config_lib.GROUPS for s in config_lib.SETTINGS)
    by_flag = {s.flag: s for s in config_lib.SETTINGS}
    assert (by_flag["model"].group, by_flag["model"].field) == ("model", "name")
    assert (by_flag["data"].group, by_flag["data"].field) == ("data", "dir")
    assert (by_flag["skip_corrupt_shards"].group, by_flag["skip_corrupt_shards"].default) == ("data", False)
    defaults = TrainConfig()
    assert defaults.flat() == {s.flag: s.default for s in config_lib.SETTINGS}
    # [AW2] Sec. IV-A defaults.
    assert (defaults.data.batch_size, defaults.data.seq_len, defaults.optimisation.lr_decay_rate) == (4, 80, 0.97)


_FLAGS_PROBE = """
import json, sys
sys.argv = ["train"]
from launch import train
from absl import flags
from affnet.training import config as config_lib
from affnet import configs
flags.FLAGS(configs.expand_flagfiles(["train", "--flagfile=facebehaviornet.flags", "--utterance_level=true",
                                    "--skip_corrupt_shards"]))
defined = {s.flag: [type(flags.FLAGS[s.flag]).__name__, flags.FLAGS[s.flag].default, flags.FLAGS[s.flag].help]
           for s in config_lib.SETTINGS}
print("RESULT " + json.dumps({"defined": defined, "config": train.config_from_flags().to_dict()}, default=list))
"""


def test_flags_are_generated_from_the_declaration():
    done = subprocess.run([sys.executable, "-c", _FLAGS_PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads([line for line in done.stdout.splitlines() if line.startswith("RESULT ")][-1][7:])
    defined = result["defined"]
    by_flag = {s.flag: s for s in config_lib.SETTINGS}
    for flag, (kind, default, help_text) in defined.items():
        assert help_text.endswith(by_flag[flag].help), flag  # absl prefixes an enum's choices
    assert defined["seq_len"][:2] == ["Flag", 80] and defined["optimizer"][1] == "adam"
    assert defined["jit_compile"][0] == "BooleanFlag" and defined["couplings"][1] == []
    assert defined["task_weights"][1] == ""  # key=value flags stay strings on the command line
    config = result["config"]
    assert config["multitask"]["task_batch_sizes"] == {"va": 32, "au": 16, "expression": 16}
    assert config["data"]["utterance_level"] == "true" and config["data"]["skip_corrupt_shards"] is True
    assert config["model"]["overrides"]["fc_units"] == [128, 128]


def test_nested_round_trip_and_flat_names(tmp_path):
    config = TrainConfig.from_flat(model="mt_vgg", loss="multitask", task_weights="au=0.5,va=2",
                                   couplings="soft_co_annotation", task_batch_sizes={"va": 4, "au": 2},
                                   workdir=str(tmp_path), utterance_level="false")
    config_lib.save(config)
    saved = json.load(open(tmp_path / "flags.json"))
    assert set(saved) == set(config_lib.GROUPS)
    assert saved["multitask"]["task_weights"] == {"au": 0.5, "va": 2}
    assert config_lib.load(str(tmp_path)) == config
    assert config.multitask.task_weight == {"va": 2.0, "expression": 1.0, "au": 0.5, "co_annotation": 1.0,
                                            "distribution_matching": 1.0, "soft_co_annotation": 1.0}
    assert config.replace(seq_len=12).data.seq_len == 12 and config.replace(seq_len=12).model == config.model
    assert config_lib.differences(config, config.replace(train_steps=7, log_every=3)) == {}
    assert config_lib.differences(config, config.replace(seq_len=12)) == {"seq_len": (80, 12)}


def test_a_resumed_run_with_tuple_overrides_equals_its_saved_config(tmp_path):
    # facebehaviornet.flags: fc_units=(128,128) on the command line, [128, 128] in flags.json.
    requested = TrainConfig.from_flat(model="facebehaviornet", model_overrides="fc_units=(128,128),width=0.125",
                                      workdir=str(tmp_path))
    config_lib.save(requested)
    assert config_lib.differences(config_lib.load(str(tmp_path)), requested) == {}


def test_a_flags_json_not_in_the_nested_form_is_refused_naming_the_file(tmp_path):
    flat = TrainConfig.from_flat(model="affwildnet_vggface", seq_len=6).flat()
    (tmp_path / "flags.json").write_text(json.dumps(flat))
    with pytest.raises(ValueError, match=re.escape(str(tmp_path / "flags.json")) + ": not the nested form"):
        config_lib.load(str(tmp_path))


@pytest.mark.parametrize("settings, message", [
    (dict(optimizer="adma"), "--optimizer must be one of adam, sgd, rmsprop, got 'adma'; did you mean 'adam'?"),
    (dict(batch_size=0), "--batch_size must be >= 1, got 0"),
    (dict(seq_len=-3), "--seq_len must be >= 1, got -3"),
    (dict(train_steps=2.5), "--train_steps must be an int, got 2.5"),
    (dict(lr_decay_rate=1.5), "--lr_decay_rate must be in (0, 1], got 1.5"),
    (dict(strategy="iii"), "--strategy=iii needs --init_rnn_from"),
    (dict(init_rnn_from="runs/x"), "--init_rnn_from=runs/x is only used by --strategy=iii"),
    (dict(task_batch_sizes="va=4"), "--task_batch_sizes need --loss=multitask"),
    (dict(loss="multitask", task_weights="exprssion=2"), "--task_weights: unknown key 'exprssion'; did you mean "
                                                         "'expression'?"),
    (dict(loss="multitask", task_data="vaa=d"), "--task_data: unknown key 'vaa'; did you mean 'va'?"),
    (dict(loss="multitask", task_batch_sizes="au=0"), "--task_batch_sizes au must be >= 1, got 0"),
    (dict(loss="multitask", task_batch_sizes="au=2.5"), "--task_batch_sizes au must be an int, got 2.5"),
    (dict(loss="multitask", task_weights="au=-1"), "--task_weights au must be >= 0, got -1"),
    (dict(loss="multitask", couplings="soft_coannotation"), "--couplings: unknown value 'soft_coannotation'; did you mean 'soft_co_annotation'"),
    (dict(init_streams="visul=runs/v"), "--init_streams: unknown key 'visul'; did you mean 'visual'?"),
    (dict(model_overrides="width"), "not of the form key=value"),
    (dict(seq_lenn=3), "unknown setting 'seq_lenn'; did you mean 'seq_len'?"),
])
def test_config_errors_are_one_line_and_name_the_flag(settings, message):
    with pytest.raises(ValueError) as error:
        TrainConfig.from_flat(settings)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_build_refuses_unknown_arguments_with_the_nearest_names():
    with pytest.raises(ValueError, match="has no argument 'widht'; did you mean 'width'"):
        models.build("affwildnet_vggface", widht=3)
    with pytest.raises(ValueError, match="bogus_key"):
        models.build("affwildnet_vggface", width=0.125, bogus_key="x")
    with pytest.raises(ValueError, match="unknown model 'affwildnet_vgface'; did you mean 'affwildnet_vggface'"):
        models.build("affwildnet_vgface")
    # Model-level fusion passes the arguments it does not take to its sub-networks ([MC] 5.4.1).
    models.check_arguments("fusion_rnn", width=0.125, landmarks=False, fusion_units=8)
    with pytest.raises(ValueError, match="nor has its sub-network 'cnn_1rnn'; did you mean 'rnn_units'"):
        models.check_arguments("fusion_rnn", rnn_unit=8)
    for name in models.names():  # every registered configuration passes its own defaults
        models.check_arguments(name, **models.describe(name).defaults)


def _synthetic_split_dirs(root):
    for split in ("train", "validation"):
        os.makedirs(root / split)
        (root / split / "shard-00000.tfrecord").write_bytes(b"")
    return str(root)


def test_preflight_checks_model_options_sources_and_data(tmp_path):
    data = _synthetic_split_dirs(tmp_path / "data")
    good = dict(model="affwildnet_vggface", model_overrides="width=0.125", data=data, workdir=str(tmp_path / "w"))
    preflight.check(TrainConfig.from_flat(good))
    cases = [
        (dict(model="affwildnet_vgface"), ValueError, "--model / --model_overrides: unknown model 'affwildnet_vgface'"
                                                      "; did you mean 'affwildnet_vggface'"),
        (dict(model_overrides="widht=0.125"), ValueError, "has no argument 'widht'; did you mean 'width'?"),
        (dict(model="mt_vgg", loss="multitask", coupling_options="dm_frm=binary"), ValueError,
         "--coupling_options: unknown key 'dm_frm'; did you mean 'dm_form'?"),
        (dict(init_weights=str(tmp_path / "nowhere")), FileNotFoundError, "--init_weights="),
        (dict(init_weights=data), ValueError, "is not a training workdir"),
        (dict(data=str(tmp_path / "missing")), FileNotFoundError, "no TFRecords for split 'train'"),
        (dict(model="mt_vgg", loss="multitask", task_batch_sizes="va=2,au=2",
              task_data=f"au={tmp_path / 'au_set'}"), FileNotFoundError, str(tmp_path / "au_set")),
    ]
    for changes, kind, message in cases:
        with pytest.raises(kind) as error:
            preflight.check(TrainConfig.from_flat({**good, **changes}))
        assert message in str(error.value), (changes, str(error.value))
    assert not os.path.exists(tmp_path / "w")
    assert "dm_form" in preflight.coupling_option_names() and "table" not in preflight.coupling_option_names()


def test_preflight_names_a_global_batch_that_does_not_divide_over_the_replicas():
    config = TrainConfig.from_flat(model="affwildnet_vggface", data="unused", batch_size=4, distribution="mirrored")
    preflight.check_replicas(config, 2)
    preflight.check_replicas(config, 4)
    with pytest.raises(ValueError, match=r"--batch_size=4 is the global batch and does not divide over the 3 "
                                         r"replicas of --distribution=mirrored: pass 3 or 6 \(1 or 2 per replica\)"):
        preflight.check_replicas(config, 3)
    with pytest.raises(ValueError, match=r"pass 8 \(1 per replica\)"):
        preflight.check_replicas(config, 8)
    assert preflight.replica_count("default") == 1
    assert preflight.replica_count("multi_worker") is None  # its strategy comes first; the Trainer checks

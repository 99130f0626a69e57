"""Every flagfile parses into a valid TrainConfig naming a registered model with
overrides its builder takes, and starts with its header; train.py stops at once,
naming where it looked and how to prepare the data, when a flagfile's data is
missing."""

import json
import os
import subprocess
import sys

import pytest

from affnet import configs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FLAGFILES = ("affwild2.flags", "affwild.flags", "recola.flags", "afewva.flags", "omg.flags", "omg_1rnn.flags",
             "omg_fusion.flags", "demo.flags", "mt_vgg_gru.flags", "facebehaviornet.flags")

_PARSE_ALL = """
import json, sys
sys.argv = ["train"]
from launch import train
from absl import flags
import affnet.models
from affnet import configs
out = {}
for name in sys.argv[1:] or %r:
    flags.FLAGS.unparse_flags()
    flags.FLAGS(configs.expand_flagfiles(["train", "--flagfile=" + name]))
    config = train.config_from_flags()
    affnet.models.check_arguments(config.model.name, **config.build_overrides)
    out[name] = json.loads(config.to_json())
print("RESULT " + json.dumps(out))
""" % (FLAGFILES,)


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")


def test_flagfiles_have_headers_and_parse():
    for name in FLAGFILES:
        text = open(configs.path(name)).read()
        header = [line for line in text.splitlines() if line.startswith("#")]
        assert text.startswith("#") and "Command:" in text and "CCC" in "\n".join(header), name
    done = subprocess.run([sys.executable, "-c", _PARSE_ALL], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    parsed = json.loads([l for l in done.stdout.splitlines() if l.startswith("RESULT ")][-1][7:])
    aw2 = parsed["affwild2.flags"]
    # [AW2] Sec. IV-A: 4 x 80, Adam 1e-3, 400 x 0.97; attention length 32 is in the model config.
    assert (aw2["data"]["batch_size"], aw2["data"]["seq_len"], aw2["optimisation"]["optimizer"]) == (4, 80, "adam")
    optimisation = aw2["optimisation"]
    assert (optimisation["learning_rate"], optimisation["lr_decay_steps"], optimisation["lr_decay_rate"]) == (
        1e-3, 400, 0.97)
    assert aw2["model"]["name"] == "vggface_gru_attention"
    assert parsed["omg.flags"]["optimisation"]["loss"] == "sequence_ccc_median"
    assert parsed["recola.flags"]["init"]["init_weights"] == "runs/affwild2"
    assert parsed["afewva.flags"]["init"]["init_weights"] == "runs/affwild"
    assert parsed["demo.flags"]["model"]["overrides"]["width"] == 0.125
    fbn = parsed["facebehaviornet.flags"]
    assert fbn["optimisation"]["loss"] == "multitask"
    assert fbn["multitask"]["couplings"] == ["distribution_matching", "soft_co_annotation"]
    assert set(fbn["multitask"]["task_batch_sizes"]) == {"va", "au", "expression"}
    assert fbn["model"]["overrides"]["fc_units"] == [128, 128]
    assert parsed["mt_vgg_gru.flags"]["model"]["name"] == "mt_vgg_gru"


@pytest.mark.parametrize("flagfile, data_dir", [("affwild2.flags", "data/affwild2"), ("omg.flags", "data/omg"),
                                               ("facebehaviornet.flags", "data/synthetic")])
def test_missing_data_stops_with_instructions(tmp_path, flagfile, data_dir):
    if os.path.exists(os.path.join(ROOT, data_dir, "train")):
        pytest.skip(f"{data_dir} is present")
    done = subprocess.run([sys.executable, "launch/train.py", f"--flagfile={flagfile}",
                           f"--workdir={tmp_path / 'run'}"], cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2
    assert os.path.join(ROOT, data_dir, "train") in done.stderr
    prepare = "python -m data_pipeline.synthetic" if "synthetic" in data_dir else "python -m data_pipeline.preprocess"
    assert prepare in done.stderr
    assert not os.path.exists(tmp_path / "run" / "checkpoints")

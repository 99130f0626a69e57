"""Train a named affnet configuration; re-running the same command resumes.

  python launch/train.py --flagfile=affwild2.flags [--workdir=runs/affwild2]

The flags are generated from the settings declared in `affnet.training.config`,
turned once into its `TrainConfig`, checked whole (`affnet.training.preflight`:
a mistake exits 2 with one line and writes nothing) and saved as
`<workdir>/flags.json`. Outputs in the workdir: TensorBoard logs (`train/`,
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


def _define_flags():
    """One absl flag per declared setting (`config_lib.SETTINGS`): its name,
    default, help and choices come from the declaration, never written twice."""
    holders = {}
    for setting in config_lib.SETTINGS:
        name, default, help_text = setting.flag, setting.default, setting.help
        if setting.kind is config_lib.Pairs:
            holder = flags.DEFINE_string(name, ",".join(f"{k}={v}" for k, v in default), help_text)
        elif setting.kind is config_lib.Names:
            holder = flags.DEFINE_list(name, list(default), help_text)
        elif setting.choices:
            holder = flags.DEFINE_enum(name, default, setting.choices, help_text)
        else:
            define = {str: flags.DEFINE_string, int: flags.DEFINE_integer, float: flags.DEFINE_float,
                      bool: flags.DEFINE_bool}[setting.kind]
            holder = define(name, default, help_text)
        holders[name] = holder
    return holders


_SETTING_FLAGS = _define_flags()


def config_from_flags() -> config_lib.TrainConfig:
    """The one conversion of the flags into the frozen `TrainConfig`
    (key=value flags are parsed and checked by the config itself)."""
    return config_lib.TrainConfig.from_flat({name: holder.value for name, holder in _SETTING_FLAGS.items()})


def train_and_report(config: config_lib.TrainConfig) -> dict:
    """Check the whole configuration (before the workdir is touched), train,
    print and return the summary."""
    from affnet.training import loop, preflight

    preflight.check(config)
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

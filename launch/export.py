"""Export a trained run: `DIR/saved_model` (signature `serving_default`: images
(B, T, 96, 96, 3) float32 in [-1, 1], landmarks (B, T, 136) -> valence_arousal
(B, T, 2)), `DIR/model.keras`, `DIR/export.json`.

  python launch/export.py --workdir=runs/affwild2 --output=runs/affwild2/export
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

_WORKDIR = flags.DEFINE_string("workdir", None, "The run's workdir.", required=True)
_OUTPUT = flags.DEFINE_string("output", "", "Export directory; default <workdir>/export.")
_CHECKPOINT = flags.DEFINE_string("checkpoint", "best", "best | latest | a checkpoint prefix.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from affnet.training.export import export_run

    try:
        info = export_run(_WORKDIR.value, _OUTPUT.value or os.path.join(_WORKDIR.value, "export"),
                          _CHECKPOINT.value)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(info, indent=1))


def run():
    """The `affnet-export` console script."""
    _cli.run(main)


if __name__ == "__main__":
    run()

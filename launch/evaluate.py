"""Evaluate a trained run: whole-set CCC / MSE / PCC per dimension and per video,
the [MC] / [OMG] post-processing chain chosen on the run's validation split
(median filter; utterance smoothing for utterance-level runs), OMG utterance
scores for utterance-level runs; writes the result JSON, the per-frame (and
per-utterance) prediction files that `launch/fuse.py` reads, and a plot of the
worst and best videos, all beside the JSON (`affnet.training.evaluate`).

  python launch/evaluate.py --workdir=runs/affwild2 [--split=test] [--checkpoint=best]
      # -> runs/affwild2/eval.json, predictions_test.npz, predictions_test_raw.npz
  python launch/evaluate.py --workdir=runs/affwild2 --split=validation
      # -> runs/affwild2/eval_validation.json, predictions_validation{,_raw}.npz
      #    (the validation CCC that weights decision-level fusion)
  python launch/evaluate.py --workdir=runs/affwild2 --split=test --write_predictions=submission/
      # -> submission/<video>.txt per test video, the ABAW valence-arousal layout
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _paths  # noqa: E402

_paths.ensure_importable()
import _cli  # noqa: E402  (before TensorFlow: silences its C++ logs)

from absl import app, flags  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "The run's workdir.", required=True)
_SPLIT = flags.DEFINE_string("split", "test", "Split to score.")
_CHECKPOINT = flags.DEFINE_string("checkpoint", "best", "best | latest | a checkpoint prefix.")
_MEDIAN_FILTER = flags.DEFINE_bool("median_filter", True, "[MC] post-processing chain (median filter, and "
                                   "utterance smoothing at the utterance level), chosen on the run's eval_split.")
_SKIP_CORRUPT_SHARDS = flags.DEFINE_bool("skip_corrupt_shards", False, "Leave out corrupt, truncated or foreign "
                                         "shards (logged with a count) instead of stopping at the first.")
_WRITE_PREDICTIONS = flags.DEFINE_string("write_predictions", "", "Directory: one <video>.txt per video of the "
                                         "split in the Aff-Wild2 challenge layout (valence,arousal per frame, "
                                         "-5 where no face), after the chosen median filter.")
_OUTPUT = flags.DEFINE_string("output", "", "Result JSON path; the prediction files go beside it. Default "
                              "<workdir>/eval.json for --split=test, else <workdir>/eval_<split>.json.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from affnet.training.evaluate import evaluate_run

    # User errors: _cli prints one line, exit 2.
    evaluate_run(_WORKDIR.value, _SPLIT.value, _CHECKPOINT.value, _MEDIAN_FILTER.value, _OUTPUT.value,
                 skip_corrupt_shards=_SKIP_CORRUPT_SHARDS.value, write_predictions=_WRITE_PREDICTIONS.value)


def run():
    """The `affnet-eval` console script."""
    _cli.run(main)


if __name__ == "__main__":
    run()

r"""Decision-level fusion of saved predictions, formula (1) of [MC] Sec. 5.4.2.

Each network's weight on dimension i is its validation CCC t_i^n, taken from
(one of) `--validation_predictions` (computed here, at `--level`), the
`--validation_eval` result JSON of `launch/evaluate.py --split=validation`
(`utterance_level` CCC at `--level=utterance` when present, else the
top-level `ccc_valence`/`ccc_arousal`; a JSON of another split than the one
its post-processing was chosen on is refused), or `--validation_ccc=V:A,V:A`.
Weights come from validation, never from the fused split. Prediction files are
described in `affnet.evaluation.decision_fusion`; `launch/evaluate.py` writes them beside its
result JSON. At `--level=utterance` (OMG) each network's utterance estimates
(mean of its `--seq_len`-frame sequences' medians; a one-row-per-utterance
file passes through unchanged) are fused, as [MC] fuses "final estimates"; at
`--level=frame` frames are. Writes the fused predictions to `--output` and
`<output>.json` (weights, and the CCC of every network and of the fusion
where the files carry labels). [MC] Table 3: decision-level fusion of
CNN-1RNN and CNN-3RNN, 0.501 / 0.332 on OMG test.

OMG ([MC], utterance level; the two runs of omg_fusion.flags' header):

  python launch/train.py --flagfile=omg_1rnn.flags        # -> runs/omg_1rnn (CNN-1RNN)
  python launch/train.py --flagfile=omg.flags             # -> runs/omg      (CNN-3RNN)
  python launch/evaluate.py --workdir=runs/omg_1rnn --split=validation  # eval_validation.json, predictions_validation*
  python launch/evaluate.py --workdir=runs/omg_1rnn --split=test        # eval.json, predictions_test*
  python launch/evaluate.py --workdir=runs/omg --split=validation
  python launch/evaluate.py --workdir=runs/omg --split=test
  python launch/fuse.py --level=utterance \
      --predictions=runs/omg_1rnn/predictions_test_utterance.npz,runs/omg/predictions_test_utterance.npz \
      --validation_predictions=runs/omg_1rnn/predictions_validation_utterance.npz,runs/omg/predictions_validation_utterance.npz \
      --output=runs/omg_decision_fusion/predictions_test.csv

The `_utterance.npz` files hold each network's final estimates after its whole
post-processing chain (median filter, utterance smoothing); fusing the
per-frame `predictions_<split>.npz` at `--level=utterance` instead skips the
smoothing. Frame-level runs (e.g. Aff-Wild2): the same two evaluations per
run, then `--level=frame` with `predictions_test.npz` and
`predictions_validation.npz`.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _paths  # noqa: E402

_paths.ensure_importable()
import _cli  # noqa: E402  (before TensorFlow: silences its C++ logs)

from absl import app, flags  # noqa: E402

from data_pipeline.base import atomic  # noqa: E402  (standard library only)


_PREDICTIONS = flags.DEFINE_list("predictions", None, "Prediction files (.csv/.npz) to fuse, one per network.")
_VALIDATION_PREDICTIONS = flags.DEFINE_list(
    "validation_predictions", None, "Each network's validation prediction file (with labels): weights = their CCC.")
_VALIDATION_EVAL = flags.DEFINE_list("validation_eval", None,
                                     "Each network's validation eval JSON with ccc_valence, ccc_arousal.")
_VALIDATION_CCC = flags.DEFINE_list("validation_ccc", None, "Each network's validation CCC as VALENCE:AROUSAL.")
_LEVEL = flags.DEFINE_enum("level", "utterance", ["utterance", "frame"],
                           "Fuse utterance estimates (OMG, [MC]) or per-frame predictions.")
_SEQ_LEN = flags.DEFINE_integer("seq_len", 80, "Sequence length of the utterance estimate ([MC] 6.3: 80).")
_CLIP_NEGATIVE = flags.DEFINE_bool("clip_negative", False, "Zero the weight of a negative validation CCC.")
_OUTPUT = flags.DEFINE_string("output", None, "Fused prediction file (.csv or .npz).")
flags.mark_flags_as_required(["predictions", "output"])


def _fail(message):
    raise app.UsageError(message)


def _weights(decision_fusion, count, level, seq_len):
    sources = [s for s in (_VALIDATION_PREDICTIONS.value, _VALIDATION_EVAL.value, _VALIDATION_CCC.value) if s]
    if len(sources) != 1:
        _fail("give exactly one of --validation_predictions, --validation_eval, --validation_ccc")
    if len(sources[0]) != count:
        _fail(f"{count} prediction files but {len(sources[0])} validation entries")
    if _VALIDATION_PREDICTIONS.value:
        return decision_fusion.weights_from_predictions(_VALIDATION_PREDICTIONS.value, level, seq_len)
    if _VALIDATION_EVAL.value:
        return decision_fusion.weights_from_eval_reports(_VALIDATION_EVAL.value, level)
    return decision_fusion.weights_from_text(_VALIDATION_CCC.value)


def main(argv):
    del argv
    # Here, not at the top: the fusion code imports TensorFlow, which `--help` must not load.
    from affnet.evaluation import decision_fusion

    try:
        _fuse(decision_fusion)
    except ValueError as error:
        _fail(str(error))


def _fuse(decision_fusion):
    level, seq_len = _LEVEL.value, _SEQ_LEN.value
    networks = [decision_fusion.at_level(decision_fusion.read_predictions(path), level, seq_len)
                for path in _PREDICTIONS.value]
    if len(networks) < 2:
        _fail(f"decision-level fusion needs at least two prediction files, got {_PREDICTIONS.value}")
    weights = _weights(decision_fusion, len(networks), level, seq_len)
    fused = decision_fusion.fuse_videos(networks, weights, clip_negative=_CLIP_NEGATIVE.value)
    os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
    output = decision_fusion.write_predictions(_OUTPUT.value, fused)
    report = {"level": level, "seq_len": seq_len, "predictions": _PREDICTIONS.value, "weights": weights,
              "fused": decision_fusion.labelled_scores(fused) or {},
              "networks": [decision_fusion.labelled_scores(n) or {} for n in networks]}
    report_path = os.path.splitext(output)[0] + ".json"
    # Both files whole or absent, the report last: a report on disk means the fused file is complete.
    atomic.write_text(report_path, json.dumps(report, indent=2))
    fused_ccc = report["fused"]
    summary = (f"CCC valence {fused_ccc['ccc_valence']:.4f} arousal {fused_ccc['ccc_arousal']:.4f}"
               if fused_ccc else "no labels")
    print(f"fused {len(networks)} networks at {level} level -> {output} ({summary}); report {report_path}")


def run():
    """The `affnet-fuse` console script."""
    _cli.run(main)


if __name__ == "__main__":
    run()

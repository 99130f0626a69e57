r"""Decision-level fusion of saved predictions, formula (1) of [MC] Sec. 5.4.2.

Each network's weight on dimension i is its validation CCC t_i^n, taken from
(one of) `--validation_predictions` (computed here, at `--level`), the
`--validation_eval` result JSON of `launch/evaluate.py --split=validation`
(`utterance_level` CCC at `--level=utterance` when present, else the
top-level `ccc_valence`/`ccc_arousal`; a JSON of another split than the one
its post-processing was chosen on is refused), or `--validation_ccc=V:A,V:A`.
Weights come from validation, never from the fused split. Prediction files are
described in `affnet.fusion`; `launch/evaluate.py` writes them beside its
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


def _at_level(videos, level, seq_len):
    from affnet.training import evaluation

    return evaluation.utterances(videos, seq_len) if level == "utterance" else videos


def _scores(videos):
    import numpy as np

    from affnet.training import evaluation

    labels = np.concatenate([v.labels for v in videos.values()])
    if not np.isfinite(labels).any(axis=0).all():
        return None
    return evaluation.scores(videos, per_video=False)


def _weights(count, level, seq_len):
    sources = [s for s in (_VALIDATION_PREDICTIONS.value, _VALIDATION_EVAL.value, _VALIDATION_CCC.value) if s]
    if len(sources) != 1:
        _fail("give exactly one of --validation_predictions, --validation_eval, --validation_ccc")
    if len(sources[0]) != count:
        _fail(f"{count} prediction files but {len(sources[0])} validation entries")
    weights = []
    if _VALIDATION_PREDICTIONS.value:
        from affnet import fusion

        for path in _VALIDATION_PREDICTIONS.value:
            result = _scores(_at_level(fusion.read_predictions(path), level, seq_len))
            if result is None:
                _fail(f"{path}: validation predictions need labels in both dimensions")
            weights.append([result["ccc_valence"], result["ccc_arousal"]])
    elif _VALIDATION_EVAL.value:
        for path in _VALIDATION_EVAL.value:
            try:
                with open(path) as handle:
                    report = json.load(handle)
                chosen_on = (report.get("postprocess") or report.get("median_windows") or {}).get("chosen_on")
                scored = report["utterance_level"] if level == "utterance" and "utterance_level" in report else report
                weights.append([float(scored["ccc_valence"]), float(scored["ccc_arousal"])])
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
                _fail(f"{path}: cannot read ccc_valence/ccc_arousal ({error!r})")
            if chosen_on and report.get("split") != chosen_on:
                _fail(f"{path} scores split {report.get('split')!r}, not the validation split {chosen_on!r}: "
                      f"weights come from validation (launch/evaluate.py --split={chosen_on})")
    else:
        for entry in _VALIDATION_CCC.value:
            try:
                valence, arousal = (float(part) for part in entry.split(":"))
            except ValueError:
                _fail(f"--validation_ccc entries are VALENCE:AROUSAL, got {entry!r}")
            weights.append([valence, arousal])
    return weights


def main(argv):
    del argv
    from affnet import fusion

    level, seq_len = _LEVEL.value, _SEQ_LEN.value
    networks = [_at_level(fusion.read_predictions(path), level, seq_len) for path in _PREDICTIONS.value]
    if len(networks) < 2:
        _fail(f"decision-level fusion needs at least two prediction files, got {_PREDICTIONS.value}")
    weights = _weights(len(networks), level, seq_len)
    fused = fusion.fuse_videos(networks, weights, clip_negative=_CLIP_NEGATIVE.value)
    os.makedirs(os.path.dirname(os.path.abspath(_OUTPUT.value)), exist_ok=True)
    output = fusion.write_predictions(_OUTPUT.value, fused)
    report = {"level": level, "seq_len": seq_len, "predictions": _PREDICTIONS.value, "weights": weights,
              "fused": _scores(fused) or {}, "networks": [_scores(n) or {} for n in networks]}
    report_path = os.path.splitext(output)[0] + ".json"
    with open(report_path, "w") as handle:
        json.dump(report, handle, indent=2)
    fused_ccc = report["fused"]
    summary = (f"CCC valence {fused_ccc['ccc_valence']:.4f} arousal {fused_ccc['ccc_arousal']:.4f}"
               if fused_ccc else "no labels")
    print(f"fused {len(networks)} networks at {level} level -> {output} ({summary}); report {report_path}")


def run():
    """The `affnet-fuse` console script."""
    _cli.run(main)


if __name__ == "__main__":
    run()

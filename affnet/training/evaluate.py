"""Evaluate a run on a split, with the [MC] / [OMG] post-processing chain chosen on validation.

The chain (`affnet.evaluation.postprocess`) is chosen on the run's `eval_split` at the
level the run is scored at and applied unchanged to `split`: frame-level runs
get the per-dimension median filter chosen on frame CCC; utterance-level runs
(`config.utterance_eval`, OMG) the median filter and then the utterance
smoothing, both chosen on utterance CCC ([MC] Sec. 6.3: "kept when an
improvement was observed on the CCC over the validation set").

Result (`eval.json` for the test split, `eval_<split>.json` for another, or
`output`): top-level `ccc_valence`, `ccc_arousal`, `ccc_mean`, `mse_*`, `pcc_*`
and `per_video` of the per-frame predictions after the chosen median filter
(equal to the raw ones when no window helps on validation), plus `raw` (no
filter), `median_windows` (the chosen windows and the validation table they
were chosen from), `postprocess` (level, and per step and dimension whether it
was kept with the validation CCC without and with it), and `predictions` (the
prediction files below). Utterance-level runs add `utterance_level`: the
chain's utterance scores, the run's headline, with its `raw` utterance
scores. Multi-task runs add the expression / AU measures of
`scoring.scores` (F1, accuracy, E_total; per-video expression accuracy,
[AW] Sec. 5.2).

Prediction files (`affnet.evaluation.decision_fusion.write_predictions`, what `launch/fuse.py`
reads), beside the result JSON, for runs with a valence-arousal output:
`predictions_<split>.npz` per frame after the chosen median filter,
`predictions_<split>_raw.npz` per frame unfiltered, and for utterance-level
runs `predictions_<split>_utterance.npz`, one row per utterance (at its first
frame) holding the chain's final estimate.

Every file is written whole or not at all (`data_pipeline.base.atomic`), the result JSON last: it is
the completion record, and the same command finding it (same checkpoint and options, its files present)
skips the evaluation, so a killed run re-run redoes only what was not finished.
"""

import json
import os
import time

import tensorflow as tf

from affnet.evaluation import decision_fusion, postprocess, scoring
from affnet.training import data, export, modeling
from data_pipeline.adapters import affwild2
from data_pipeline.base import atomic


def _collect(config, model, split, jit_compile):
    sequence = modeling.is_sequence_model(config)
    predict = tf.function(lambda f: modeling.call(model, f, False, sequence), jit_compile=jit_compile)
    with data.naming_bad_shards(config, split):
        return scoring.collect(predict, data.eval_dataset(config, split, data.reader_arguments(model)))


def default_output(workdir: str, split: str) -> str:
    """`<workdir>/eval.json` for the test split, `<workdir>/eval_<split>.json` otherwise."""
    return os.path.join(workdir, "eval.json" if split == "test" else f"eval_{split}.json")


def _write_predictions(directory, split, filtered, raw, utterances):
    files = {"post_processed": (f"predictions_{split}.npz", filtered), "raw": (f"predictions_{split}_raw.npz", raw)}
    if utterances is not None:
        files["utterance"] = (f"predictions_{split}_utterance.npz", utterances)
    return {key: decision_fusion.write_predictions(os.path.join(directory, name), videos)
            for key, (name, videos) in files.items()}


def write_challenge_files(directory: str, videos) -> list:
    """One `<video>.txt` per video in the Aff-Wild2 (ABAW) valence-arousal layout (`affwild2.write_va`):
    a line per frame 0..last evaluated frame, -5 for frames the records lack (no face found)."""
    paths = []
    for name, video in sorted(videos.items()):
        path = os.path.join(directory, f"{name}.txt")
        affwild2.write_va(path, affwild2.va_per_frame(video.frame_index, video.predictions))
        paths.append(path)
    return paths


def _plot(videos, per_video_scores, path):
    # The temporary keeps the .png suffix: matplotlib picks the format by it.
    atomic.replace_atomically(path, lambda temporary: scoring.plot_videos(videos, per_video_scores, temporary),
                              atomic.temporary_path(path) + ".png")
    return path


def _finished(output: str, made_with: dict):
    """The result JSON at `output` if it was made with `made_with` and every file it lists is present."""
    try:
        with open(output) as f:
            result = json.load(f)
    except (OSError, ValueError):
        return None
    listed = [*(result.get("predictions") or {}).values(), *([result["plot"]] if result.get("plot") else [])]
    return result if result.get("made_with") == made_with and all(map(os.path.exists, listed)) else None


def evaluate_run(workdir: str, split: str = "test", checkpoint: str = "best", median_filter: bool = True,
                 output: str = "", plot: bool = True, log=print, skip_corrupt_shards: bool = False,
                 write_predictions: str = "") -> dict:
    """Score `workdir`'s model on `split`; writes the result JSON (module
    docstring; `output` or `default_output`), the prediction files and
    `eval_<split>_videos.png` beside it; returns the result dict.

    `median_filter=False` skips the post-processing chain (identity chain);
    `skip_corrupt_shards` leaves unreadable shards out (logged with a count); `write_predictions`, a
    directory, receives the post-processed predictions as challenge files (`write_challenge_files`).
    """
    start = time.perf_counter()
    output = output or default_output(workdir, split)
    config, model, path = export.load_run_model(workdir, checkpoint)
    # The same command again (a rerun after a kill) skips a finished evaluation: the result JSON, written
    # last, records what made it (the checkpoint's file time too: a retrained run's differs).
    made_with = {"split": split, "checkpoint": path, "checkpoint_time_ns": tf.io.gfile.stat(path + ".index").mtime_nsec,
                 "median_filter": median_filter, "plot": plot, "skip_corrupt_shards": skip_corrupt_shards,
                 "write_predictions": os.path.abspath(write_predictions) if write_predictions else ""}
    finished = _finished(output, made_with)
    if finished is not None:
        log(f"{output}: already evaluated {path} on {split!r} with these options; skipped (delete it to redo)")
        return finished
    if skip_corrupt_shards:
        config = config.replace(skip_corrupt_shards=True)
    splits = [split] + ([config.data.eval_split] if median_filter and config.data.eval_split != split else [])
    data.check_data(config, splits)
    log(f"evaluating {path} on {split!r}")
    videos = _collect(config, model, split, config.runtime.jit_compile)
    result = {"split": split, "checkpoint": path, "model": config.model.name}
    has_va = next(iter(videos.values())).has_va if videos else True
    level = "utterance" if config.utterance_eval else "frame"
    chain = postprocess.ChainConfig(level, config.data.seq_len, (1, 1), (0.0, 0.0))
    if median_filter and has_va:
        validation = videos if config.data.eval_split == split else _collect(
            config, model, config.data.eval_split, config.runtime.jit_compile)
        chain = postprocess.choose_chain(validation, level=level, seq_len=config.data.seq_len)
        result["median_windows"] = {"valence": chain.median_windows[0], "arousal": chain.median_windows[1],
                                    "chosen_on": config.data.eval_split,
                                    "validation_ccc": chain.scores["median_window"]}
        result["postprocess"] = {"level": level, "chosen_on": config.data.eval_split, "steps": chain.steps(),
                                 **({"seq_len": chain.seq_len, "radius": chain.radius,
                                     "smoothing_validation_ccc": chain.scores["smoothing"]}
                                    if level == "utterance" else {})}
    raw = scoring.scores(videos)
    filtered = scoring.median_filter(videos, chain.median_windows)
    final = scoring.scores(filtered)
    result["raw"] = {k: v for k, v in raw.items() if k != "per_video"}
    result.update(final)
    utterances = None
    if config.utterance_eval and has_va:
        utterances = postprocess.apply_chain(chain, videos)
        result["utterance_level"] = {
            **scoring.scores(utterances, per_video=False),
            "raw": scoring.scores(scoring.utterances(videos, config.data.seq_len), per_video=False)}
    result["made_with"] = made_with
    directory = os.path.dirname(os.path.abspath(output))
    os.makedirs(directory, exist_ok=True)
    if has_va:
        result["predictions"] = _write_predictions(directory, split, filtered, videos, utterances)
    if write_predictions:
        if not has_va:
            raise ValueError(f"--write_predictions: {config.model.name} has no valence-arousal output")
        result["challenge_files"] = {"directory": write_predictions,
                                     "videos": len(write_challenge_files(write_predictions, filtered))}
        log(f"{split}: {len(filtered)} challenge files (valence,arousal per frame) -> {write_predictions}")
    if plot and final.get("per_video"):
        result["plot"] = _plot(filtered, final["per_video"], os.path.join(directory, f"eval_{split}_videos.png"))
    result["seconds"] = round(time.perf_counter() - start, 1)
    # Last: the result JSON is the evaluation's completion record, written after every file it lists.
    atomic.write_text(output, json.dumps(result, indent=1, default=float))
    if has_va:
        log(f"{split}: CCC valence {result['ccc_valence']:.4f} arousal {result['ccc_arousal']:.4f} "
            f"(raw {raw['ccc_valence']:.4f} / {raw['ccc_arousal']:.4f}; median windows "
            f"{list(chain.median_windows)}) -> {output}")
    if utterances is not None:
        scored = result["utterance_level"]
        log(f"{split}: utterance CCC valence {scored['ccc_valence']:.4f} arousal {scored['ccc_arousal']:.4f} "
            f"(raw {scored['raw']['ccc_valence']:.4f} / {scored['raw']['ccc_arousal']:.4f}; smoothing "
            f"{list(chain.smoothing)})")
    tasks = [f"{name} {result[name]:.4f}" for name in ("expression_total", "expression_video_accuracy",
                                                        "au_total") if name in result]
    if tasks:
        log(f"{split}: {', '.join(tasks)} -> {output}")
    return result

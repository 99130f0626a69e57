"""The custom training loop: tf.function steps under any tf.distribute strategy.

Per step each replica runs the model on its share of the global batch
(`batch_size` sequences x `seq_len` frames, [AW2] Sec. IV-A 4 x 80), reduces
its frames to loss statistics (the forward and backward pass optionally
XLA-compiled: whole on one replica, around the all-reduces on several, see
`Trainer._split_gradients`), and the loss of the *global* batch is formed from the
summed statistics (`objective`); Keras' optimizer sums the replicas' gradients.
float16 uses loss scaling (`LossScaleOptimizer`), with a step applied only when
every replica's gradients are finite (`distribution.spoil_unless_all_finite`);
bfloat16 none. Replica r draws dropout masks from its own seeds
(`distribution.replica_seeds`).

Every `eval_every` steps (and at the end) the model is evaluated on the whole
`eval_split` (every frame once); the best validation mean CCC is kept as its
own checkpoint. Checkpoints of model, optimizer and step every
`checkpoint_every` steps; re-running with the same workdir resumes from the
latest one (see `data` for the data position semantics).
"""

import os
import time
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from affnet.evaluation import scoring
from affnet.training import checkpointing, data, distribution, init, modeling, objective, preflight, schedules
from affnet.training import summaries
from affnet.training import config as config_lib
from affnet.training.config import TrainConfig

_NUMERIC_LABELS = ("va", "va_mask", "valid", "expression", "expression_mask", "au", "au_mask")
EVAL_HISTORY = "eval_history.json"
# Multi-task validation scores logged beside the VA ones (scoring.scores).
_TASK_SCORES = ("expression_f1", "expression_accuracy", "expression_total", "au_f1", "au_accuracy", "au_total",
                "multitask_score")


def _prepare_workdir(config: TrainConfig, chief: bool):
    """Write flags.json, or check that a resumed run keeps the saved settings.

    A workdir without a checkpoint holds nothing trained: another configuration
    replaces its flags.json, so a run that failed before its first checkpoint
    never locks the workdir ([issue 15]).
    """
    path = os.path.join(config.runtime.workdir, config_lib.FLAGS_FILE)
    if os.path.exists(path) and checkpointing.has_checkpoint(config.runtime.workdir):
        changed = config_lib.differences(config_lib.load(config.runtime.workdir), config)
        if changed:
            raise ValueError(f"{path} holds another configuration; changed settings {changed}. "
                             f"Use a new --workdir, or the saved flags to resume.")
    if chief:
        config_lib.save(config)


def _check_loss(config: TrainConfig, multitask: bool):
    if multitask and config.optimisation.loss != "multitask":
        raise ValueError(f"model {config.model.name!r} returns task outputs (va, expression, au): train it with "
                         f"--loss=multitask, not --loss={config.optimisation.loss}")
    if not multitask and config.optimisation.loss == "multitask":
        raise ValueError(f"--loss=multitask needs a multi-task model (dict outputs, or --categorical); "
                         f"{config.model.name!r} returns valence-arousal only")


class Trainer:
    """Owns the strategy, model, optimizer, checkpoints and steps of one run.

    Args:
      config: the run's `TrainConfig`.
      model_fn: builds the model (default `modeling.build_model(config)`);
        called inside the strategy scope.
      train_dataset_fn: `fn(input_context) -> dataset` of per-replica
        `(features, labels)` batches (default `data.train_dataset_fn`).
      eval_dataset_fn: `fn() -> dataset` of the evaluation split (default
        `data.eval_dataset(config, config.data.eval_split)`); None with
        `evaluate=False` skips evaluation.
      log: a print-like function for progress lines.
    """

    def __init__(self, config: TrainConfig, model_fn: Optional[Callable] = None,
                 train_dataset_fn: Optional[Callable] = None, eval_dataset_fn: Optional[Callable] = None,
                 log: Callable = print):
        self.config = config
        self.log = log
        self.strategy = distribution.make_strategy(config.runtime.distribution)
        self.chief = distribution.is_chief(self.strategy)
        self.write_dir = distribution.write_dir(config.runtime.workdir, self.strategy)
        preflight.check_replicas(config, self.strategy.num_replicas_in_sync)
        _prepare_workdir(config, self.chief)
        keras.utils.set_random_seed(config.optimisation.seed)
        with self.strategy.scope():
            self.sequence = model_fn is not None or modeling.is_sequence_model(config)
            if model_fn is None:
                resuming = checkpointing.has_checkpoint(config.runtime.workdir)
                self.model = modeling.build_model(config, initialise=not resuming)
            else:
                with modeling.precision(config.runtime.mixed_precision):
                    self.model = model_fn()
            self.multitask = modeling.is_multitask(self.model)
            _check_loss(config, self.multitask)
            self.optimizer = schedules.make_optimizer(config)
            self.optimizer.build(self.model.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoints = checkpointing.RunCheckpoints(self.model, self.optimizer, self.step, config.runtime.workdir,
                                                        self.write_dir, config.runtime.keep_checkpoints)
        restored = self.checkpoints.restore_latest()
        if restored:
            self.log(f"resumed from {restored} at step {int(self.step.numpy())}")
        else:
            self._initialise()
        reader = data.reader_arguments(self.model)
        self.train_dataset_fn = train_dataset_fn or data.train_dataset_fn(config, int(self.step.numpy()), reader)
        self.eval_dataset_fn = eval_dataset_fn or (lambda: data.eval_dataset(config, config.data.eval_split, reader))
        self.train_writer, self.val_writer = summaries.writers(config.runtime.workdir, self.chief)
        summaries.write_hparams(config.runtime.workdir, config.flat(), self.chief)
        self._train_step = self._make_train_step()
        self.history = []  # (step, mean training loss since the previous log line)
        self._predict = tf.function(lambda f: modeling.call(self.model, f, False, self.sequence),
                                    jit_compile=config.runtime.jit_compile)

    def _initialise(self):
        config = self.config
        if config.init.init_weights:
            self.log(f"initialised the model from "
                     f"{init.load_weights(self.model, config.init.init_weights, config)}")
        for line in init.init_subnetworks(self.model):
            self.log(f"initialised the {line}")
        for line in init.init_streams(self.model, config.init.init_streams):
            self.log(f"initialised the {line}")
        if config.init.init_rnn_from:
            copied = init.init_rnn(self.model, config.init.init_rnn_from)
            self.log(f"strategy (iii): initialised {copied} from {config.init.init_rnn_from}")

    def _make_train_step(self):
        config, model, optimizer = self.config, self.model, self.optimizer
        couplings = objective.coupling_config(config, model)
        replicas = self.strategy.num_replicas_in_sync
        loss_scaling = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

        def loss_terms(labels, predictions):
            stats = objective.global_run_statistics(config, labels, predictions, couplings)
            loss, components = objective.loss_and_components(config, stats, couplings)
            monitor = objective.monitor_statistics(labels, tf.nest.map_structure(tf.stop_gradient, predictions))
            terms = {f"loss_{name}": value for name, value in components.items()}
            if monitor is not None:
                terms.update(objective.monitor_values(objective.global_sum(monitor)))
            return loss, terms

        def gradients(features, labels):
            with tf.GradientTape() as tape:
                predictions = modeling.call(model, features, True, self.sequence)
                loss, terms = loss_terms(labels, predictions)
                scaled = optimizer.scale_loss(loss)
            return loss, terms, tape.gradient(scaled, model.trainable_variables)

        if config.runtime.jit_compile and replicas == 1:
            gradients = tf.function(gradients, jit_compile=True)
        elif config.runtime.jit_compile:
            gradients = self._split_gradients(loss_terms)

        def replica_step(features, labels):
            labels = {k: labels[k] for k in _NUMERIC_LABELS if k in labels}
            with distribution.replica_seeds(model):
                loss, terms, grads = gradients(modeling.model_inputs(model, features), labels)
            if loss_scaling:
                grads = distribution.spoil_unless_all_finite(grads)
            optimizer.apply(grads, model.trainable_variables)
            return {"loss": loss, **terms}

        @tf.function
        def train_step(iterator):
            features, labels = next(iterator)
            # Every replica computes the same global loss, task terms and batch
            # CCC/MSE (from summed statistics); MEAN returns them.
            values = self.strategy.run(replica_step, args=(features, labels))
            return {name: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
                    for name, value in values.items()}

        return train_step

    def _split_gradients(self, loss_terms):
        """`gradients` for XLA on several replicas: compiled pieces around the all-reduces.

        An XLA cluster can hold neither the cross-replica all-reduce of the loss
        statistics nor (for the RNN's TensorLists) a boundary between a forward pass and
        its gradient. So a compiled forward gives the predictions; the global loss and its
        gradient with respect to each frame's prediction follow uncompiled (small: the
        statistics and their all-reduces); a compiled backward reruns the forward from the
        same random state and back-propagates that per-frame gradient. The loss gradient of
        a frame depends on the other replicas only through the global sums, so the
        replicas' parameter gradients add up to the single-device gradient exactly; the
        price is a second forward pass.
        """
        model, optimizer, sequence = self.model, self.optimizer, self.sequence

        def forward(features):
            return modeling.call(model, features, True, sequence)

        def backward(features, seed):
            with tf.GradientTape() as tape:
                predictions = modeling.call(model, features, True, sequence)
            return tape.gradient(predictions, model.trainable_variables, output_gradients=seed)

        forward = tf.function(forward, jit_compile=True)
        backward = tf.function(backward, jit_compile=True)

        def gradients(features, labels):
            state = distribution.snapshot(model.non_trainable_variables)
            predictions = forward(features)
            distribution.restore(model.non_trainable_variables, state)
            with tf.GradientTape() as tape:
                tape.watch(predictions)
                loss, terms = loss_terms(labels, predictions)
                scaled = optimizer.scale_loss(loss)
            seed = tape.gradient(scaled, predictions, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            seed = tf.nest.map_structure(lambda g, p: tf.cast(g, p.dtype), seed, predictions)
            return loss, terms, backward(features, seed)

        return gradients

    def predict(self, features):
        return self._predict(modeling.model_inputs(self.model, features))

    def evaluate(self) -> dict:
        """Whole-set scores of the current weights on the evaluation split."""
        with data.naming_bad_shards(self.config, self.config.data.eval_split):
            videos = scoring.collect(self.predict, self.eval_dataset_fn())
        if self.config.utterance_eval:
            videos = scoring.utterances(videos, self.config.data.seq_len)
        result = scoring.scores(videos, per_video=False)
        result["loss"] = 1.0 - result[self.selection_key]
        return result, videos

    @property
    def selection_key(self) -> str:
        """The validation score that picks the best checkpoint."""
        return "multitask_score" if self.multitask else "ccc_mean"

    def _log_eval(self, step):
        scores, videos = self.evaluate()
        has_va = "ccc_mean" in scores
        line = [f"step {step}: {self.config.data.eval_split}"]
        if has_va:
            line.append(f"CCC valence {scores['ccc_valence']:.4f} arousal {scores['ccc_arousal']:.4f} "
                        f"mean {scores['ccc_mean']:.4f}")
        line += [f"{name} {scores[name]:.4f}" for name in _TASK_SCORES if name in scores]
        self.log(" ".join(line))
        names = ("ccc_valence", "ccc_arousal", "ccc_mean", "mse_valence", "mse_arousal", "pcc_valence",
                 "pcc_arousal", "loss") + _TASK_SCORES
        summaries.scalars(self.val_writer, step, {n: scores[n] for n in names if n in scores})
        if self.chief:
            if has_va:
                labels = np.concatenate([v.labels for v in videos.values()])
                predictions = np.concatenate([v.predictions for v in videos.values()])
                summaries.image(self.val_writer, step, "va_scatter", summaries.va_scatter_png(
                    labels, predictions, f"{self.config.data.eval_split} step {step}"))
                summaries.image(self.val_writer, step, "va_traces", summaries.va_traces_png(
                    videos, f"{self.config.data.eval_split} step {step}"))
            checkpointing.record_eval(os.path.join(self.config.runtime.workdir, EVAL_HISTORY),
                                      {"step": step, **{k: v for k, v in scores.items() if not isinstance(v, list)}})
        key = self.selection_key
        if self.checkpoints.maybe_save_best(scores, key):
            self.log(f"step {step}: new best {self.config.data.eval_split} {key} {scores[key]:.4f}")
            summaries.scalars(self.val_writer, step, summaries.best_values(scores))
        return scores

    def train(self, evaluate: bool = True) -> dict:
        """Run until `config.optimisation.train_steps`; returns the last evaluation (or {})."""
        config = self.config
        step = int(self.step.numpy())
        if step >= config.optimisation.train_steps:
            self.log(f"already at step {step} >= train_steps {config.optimisation.train_steps}; nothing to train")
            return {"step": step}
        iterator = iter(self.strategy.distribute_datasets_from_function(self.train_dataset_fn))
        sequences = sum(dict(config.multitask.task_batch_sizes).values()) or config.data.batch_size
        progress = summaries.Progress(config.optimisation.train_steps, step, sequences * config.data.seq_len)
        losses, last_scores, evaluated_at = [], {}, None
        skipped = data.skipped_shards(config, sorted({config.data.train_split, config.data.eval_split}))
        if skipped:
            self.log(f"skip_corrupt_shards: {len(skipped)} shard(s) left out, first: {skipped[0]}")
        if config.data.skip_corrupt_shards:
            summaries.scalars(self.train_writer, step, {"skipped_corrupt_shards": len(skipped)})
        if step == 0 and self.chief:
            with data.naming_bad_shards(config, config.data.train_split):
                summaries.input_grid(self.train_writer, step, self.train_dataset_fn(tf.distribute.InputContext()))
        while step < config.optimisation.train_steps:
            with data.naming_bad_shards(config, config.data.train_split):
                losses.append(self._train_step(iterator))
            self.step.assign_add(1)
            step += 1
            if step % config.runtime.log_every == 0 or step == config.optimisation.train_steps:
                terms = {name: float(np.mean([float(x[name]) for x in losses])) for name in losses[0]}
                loss = terms.pop("loss")
                losses = []
                self.history.append((step, loss))
                steps_per_second, frames_per_second = progress.rates(step)
                rate = schedules.current_learning_rate(self.optimizer)
                progress.line(step, loss, steps_per_second, frames_per_second, rate)
                summaries.scalars(self.train_writer, step, {
                    "loss": loss, "learning_rate": rate, "steps_per_second": steps_per_second,
                    "frames_per_second": frames_per_second, **terms})
            # Evaluate before saving: a run killed between the two redoes the evaluation on resume.
            if evaluate and (step % config.runtime.eval_every == 0 or step == config.optimisation.train_steps):
                last_scores = self._log_eval(step)
                evaluated_at = step
                progress.rates(step)  # Evaluation time is not training throughput.
            if step % config.runtime.checkpoint_every == 0 or step == config.optimisation.train_steps:
                self.checkpoints.save_latest()
        result = {"step": step, "best": self.checkpoints.best_record}
        if evaluated_at is not None:
            result["last_eval"] = last_scores
        self._cleanup()
        return result

    def _cleanup(self):
        if not self.chief and tf.io.gfile.exists(self.write_dir):
            tf.io.gfile.rmtree(self.write_dir)


def train(config: TrainConfig, **kwargs) -> dict:
    """Build a `Trainer` for `config` and train it (see `Trainer`)."""
    start = time.perf_counter()
    result = Trainer(config, **kwargs).train()
    result["seconds"] = round(time.perf_counter() - start, 1)
    return result

"""Training, evaluation and export of affnet models (library side of `launch/`).

  config        `TrainConfig`: the settings declared once in frozen groups (flags.json)
  preflight     the whole configuration checked before a workdir is written
  schedules     [AW2] staircase exponential decay, optimizer (loss scaling for float16)
  distribution  default / MirroredStrategy / MultiWorkerMirroredStrategy (TF_CONFIG)
  objective     CCC / sequence-CCC / MSE losses over the global batch across replicas
  checkpointing latest-N and best-by-validation checkpoints of a workdir
  summaries     TensorBoard scalars, the VA scatter image, the progress line
  data          dataset functions over data_pipeline.reader.input, missing-data messages
  modeling      building a run's model (precision policy), initialising from other runs
  loop          `Trainer` / `train`: the custom tf.function training loop
  evaluation    whole-set scores, median filter (affnet.evaluation.smoothing), OMG utterance aggregation, plots
  evaluate      `evaluate_run`: eval JSON and prediction files of a workdir, [MC] post-processing chain
  export        SavedModel (`serving_default`) and .keras export, loading
No module here reads absl FLAGS.
"""

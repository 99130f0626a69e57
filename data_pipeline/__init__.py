"""Offline face preprocessing and the online tf.data reader, by stage.

Sub-packages, each importing only those below it (tests/test_architecture.py):
  adapters/   dataset layouts -> records with official splits and labels
  jobs/       output rules (finished, skip / refuse / overwrite), preprocessing's per-input
              work, the Beam pipeline
  synthetic/  the embedded synthetic set and real-photo detection scenes
  reader/     the tf.data reader (the only part training imports)
  faces/      detection, landmarks, tracking, identities, alignment, the per-frame pass
  records/    the TFRecord schema, record bytes, shard checks, labels, splits
  media/      video, image and audio decoding
  base/       argument checks (with "did you mean"), one-line CLI errors, quiet lazy
              TensorFlow, progress bars, background iteration
The command lines are the modules at this level: `python -m data_pipeline.preprocess`,
`python -m data_pipeline.beam_preprocess`, `python -m data_pipeline.adapters`,
`python -m data_pipeline.synthetic`.
"""

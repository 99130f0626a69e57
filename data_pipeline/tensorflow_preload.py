"""Imported by the forkserver of `preprocess.run_tasks`: TensorFlow loads once there, without
its start-up lines, and every worker forked from it shares the import (5-16 s each otherwise,
now that `schema` imports TensorFlow on first use)."""

from data_pipeline import cli

cli.import_tensorflow_quietly()

"""The offline jobs: the rules every job follows for its outputs (`rules`: finished,
skip / refuse / overwrite by recorded options, merged run files, status totals, the
process pool) and preprocessing's per-input work (`preprocess`), which the command line,
Beam and the dataset adapters run."""

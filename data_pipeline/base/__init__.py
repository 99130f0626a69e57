"""The bottom of the project: the argument checks of both packages (with "did you mean"),
and what every command line shares: one-line user errors, exit codes, TensorFlow imported
quietly and lazily, progress bars over frames, iteration in a background thread. Imports
nothing of the project."""

"""The bottom of the project: what every command line shares (one-line user errors, exit
codes, TensorFlow imported quietly and lazily, progress bars over frames, iteration in a
background thread). Imports nothing of the project."""

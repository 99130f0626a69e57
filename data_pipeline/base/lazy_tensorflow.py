"""`tf`, imported on first use.

TensorFlow takes 5-16 s to import here. The data modules that the offline
command lines import (`schema`, `audio`, `shards`) reach TensorFlow through
this proxy, so `python -m data_pipeline.preprocess --help` and argument
validation run without it; the first attribute access (`tf.io...`) imports
TensorFlow without its start-up log lines (`cli.import_tensorflow_quietly`).
"""

from data_pipeline.base import cli


class _TensorFlow:
    _module = None

    def __getattr__(self, name):
        if _TensorFlow._module is None:
            _TensorFlow._module = cli.import_tensorflow_quietly()
        return getattr(_TensorFlow._module, name)

    def __repr__(self):
        return "<tensorflow, imported on first use>"


tf = _TensorFlow()

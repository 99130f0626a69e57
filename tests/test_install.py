"""One TensorFlow per environment: the [cpu] and [cuda] extras install different
distributions of the same `tensorflow` module, and `import affnet` refuses both."""

import os
import re

import pytest

import affnet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_this_environment_has_one_tensorflow_build():
    found = affnet.installed_tensorflows()
    assert len(found) == 1, found
    affnet.check_one_tensorflow()


def test_two_builds_are_refused_with_the_fix():
    with pytest.raises(ImportError, match=r"tensorflow==2\.21\.0, tensorflow-cpu==2\.21\.0.*pip uninstall -y "
                                          r"tensorflow tensorflow-cpu && pip install"):
        affnet.check_one_tensorflow({"tensorflow-cpu": "2.21.0", "tensorflow": "2.21.0"})
    affnet.check_one_tensorflow({"tensorflow": "2.21.0"})


def test_extras_pin_the_tested_tensorflow_and_keras():
    import keras
    import tensorflow as tf

    def compatible(installed, pin):  # pip's ~=X.Y.Z: same X.Y, at least Z.
        have, want = [tuple(int(p) for p in v.split(".")[:3]) for v in (installed, pin)]
        return have[:2] == want[:2] and have >= want

    text = open(os.path.join(ROOT, "setup.py")).read()
    assert compatible(tf.__version__, re.search(r'_TENSORFLOW = "([\d.]+)"', text).group(1))
    assert compatible(keras.__version__, re.search(r'"keras~=([\d.]+)"', text).group(1))
    assert '"cpu": [f"tensorflow-cpu~={_TENSORFLOW}"]' in text
    assert '"cuda": [f"tensorflow[and-cuda]~={_TENSORFLOW}"]' in text

"""`affnet.Predictor` is a lazy attribute: `import affnet` imports no TensorFlow, dlib or pandas."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_CHECK = """
import sys
import affnet
heavy = [m for m in ("tensorflow", "keras", "dlib", "pandas", "av") if m in sys.modules]
assert not heavy, heavy
from affnet.predict.predictor import Predictor
assert affnet.Predictor is Predictor
try:
    affnet.NoSuchThing
except AttributeError as error:
    assert "NoSuchThing" in str(error)
else:
    raise AssertionError("affnet.NoSuchThing resolved")
print("ok")
"""


def test_import_affnet_is_light_and_predictor_resolves():
    result = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]

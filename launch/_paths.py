"""Put the repository root on sys.path when the package is not installed."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ensure_importable():
    try:
        import affnet  # noqa: F401
        import data_pipeline  # noqa: F401
    except ImportError:
        sys.path.insert(0, ROOT)

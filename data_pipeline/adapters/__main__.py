"""`python -m data_pipeline.adapters <dataset> --root R --output DIR`."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from data_pipeline.adapters import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())

"""`python -m data_pipeline.adapters <dataset> --root R --output DIR`."""

from data_pipeline.base import cli
from data_pipeline.adapters import main

if __name__ == "__main__":
    cli.run(main)

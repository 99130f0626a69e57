"""`python -m data_pipeline.synthetic --output DIR [--subjects 24 ...]`."""

from data_pipeline.synthetic import dataset

if __name__ == "__main__":
    dataset.main()

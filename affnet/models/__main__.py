"""List the named configurations: `python -m affnet.models [--counts] [--markdown]`.

With `--counts` every configuration is built at its paper size (96x96) to
count its parameters (a few minutes on a CPU); `--markdown` prints the table
the README carries.
"""

import argparse
import gc
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Before TensorFlow loads.

import keras  # noqa: E402

from affnet import models  # noqa: E402


def _ccc(spec):
    return "" if spec.paper_ccc is None else f"{spec.paper_ccc[0]:.3g} / {spec.paper_ccc[1]:.3g}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", action="store_true", help="build each configuration and count its parameters")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)

    rows = []
    for name in models.names():
        spec = models.describe(name)
        count = ""
        if args.counts:
            keras.backend.clear_session()
            count = f"{models.build(name).count_params():,}"
            gc.collect()
        rows.append((name, spec.reference, "sequence" if spec.sequence else "frame", count, _ccc(spec)))
    if args.markdown:
        print("| name | reference | input | parameters | paper test CCC (V / A) |")
        print("|---|---|---|---|---|")
        for row in rows:
            print("| `" + row[0] + "` | " + " | ".join(row[1:]) + " |")
    else:
        for row in rows:
            print("\t".join(row))


if __name__ == "__main__":
    main()

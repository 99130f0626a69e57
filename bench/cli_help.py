"""Seconds each command line takes to print --help (and whether it loaded TensorFlow); prints JSON.

  python bench/cli_help.py [--repeats 3]

Measured with this repository on PYTHONPATH; the median of --repeats runs.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMANDS = [["launch/train.py"], ["launch/evaluate.py"], ["launch/export.py"], ["launch/predict.py"],
            ["launch/fuse.py"], ["launch/demo.py"], ["-m", "data_pipeline.preprocess"],
            ["-m", "data_pipeline.adapters", "affwild2"], ["-m", "affnet.weights.convert"]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": ROOT}
    results = {}
    for command in COMMANDS:
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, *command, "--help"], capture_output=True, text=True, cwd=ROOT,
                                  env=env)
            seconds.append(time.perf_counter() - start)
        traced = subprocess.run([sys.executable, "-X", "importtime", *command, "--help"], capture_output=True,
                                text=True, cwd=ROOT, env=env)
        results[" ".join(command)] = {
            "seconds_median": round(statistics.median(seconds), 3), "exit_code": done.returncode,
            "imports_tensorflow": any(line.split("|")[-1].strip() == "tensorflow"
                                      for line in traced.stderr.splitlines() if "|" in line),
            "stderr_lines": len(done.stderr.splitlines())}
    print(json.dumps({"cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                      "repeats": args.repeats, "commands": results}, indent=1))


if __name__ == "__main__":
    main()

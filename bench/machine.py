"""What every figure must state: the CPU, whether it runs bfloat16 natively, and how busy it was.

Shared by the scripts of `bench/` (run as `python bench/<name>.py`, so this
directory is on the path). Machines are noisy: the load average is taken
when called, so call it before and after a measurement.
"""

import os
import subprocess


def describe() -> dict:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return {
        "cpu": next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line), ""),
        "cores": os.cpu_count(),
        "avx512_bf16": "avx512_bf16" in lscpu,
        "amx": "amx_bf16" in lscpu,
        "load_average": round(os.getloadavg()[0], 2),
    }

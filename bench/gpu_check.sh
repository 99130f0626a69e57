#!/usr/bin/env bash
# Device check on a fresh GPU machine (package registries only): a virtual
# environment with this package and CUDA TensorFlow (pip install -e .[cuda]),
# nvidia-smi, then bench/gpu_check.py with the arguments given (see its --help),
# predict's float16 (auto) against float32 included unless GPU_CHECK_PREDICT_FRAMES=0.
#   bench/gpu_check.sh [--steps 10] [--models affwildnet_vggface] ... > gpu_check.json
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${GPU_CHECK_VENV:-.venv-gpu}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV" >&2
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
"$VENV/bin/python" -m pip install --quiet -e ".[cuda]" >&2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >&2 || echo "nvidia-smi not found" >&2
exec "$VENV/bin/python" bench/gpu_check.py --predict_frames "${GPU_CHECK_PREDICT_FRAMES:-160}" "$@"

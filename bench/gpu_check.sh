#!/usr/bin/env bash
# The GPU check in one command (docs/deploy.md, "GPU check"): CUDA tests, GPU figures, one JSON.
#
#   bash bench/gpu_check.sh [--device cuda|cpu] [--quick] [--budget-s S] [--install-wheels] ...
#
# On a GPU machine without a package registry it first installs the wheels that
# bench/gpu_wheels.sh downloaded into .gpu_wheels/ (carried along with the call), into a
# private folder put first on PYTHONPATH; nothing else on that machine is changed. It does so when
# an import the package needs is missing, or always with --install-wheels (the CPU rehearsal uses
# it to check that the carried wheels install and import). The other arguments go to
# bench/gpu_check.py. The Python: $PYTHON, else the repository's .venv, else python3.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
export PYTHONUNBUFFERED=1

py=${PYTHON:-}
if [ -z "$py" ]; then
    if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
wheels=${GPU_WHEELS:-.gpu_wheels}
force=0
args=()
for arg in "$@"; do
    if [ "$arg" = "--install-wheels" ]; then force=1; else args+=("$arg"); fi
done

imports="import segment_anything, sam2, hydra, omegaconf, iopath"
if [ "$force" = 1 ] || ! "$py" -c "$imports" 2>/dev/null; then
    if ! ls "$wheels"/*.whl >/dev/null 2>&1; then
        echo "[gpu-check] missing packages ($imports) and no wheels in $wheels/:" \
            "run 'bash bench/gpu_wheels.sh' on a machine with a registry and carry $wheels" >&2
        exit 2
    fi
    site=${TMPDIR:-/tmp}/gpu_check_site
    rm -rf "$site"
    echo "[gpu-check] installing $(ls "$wheels"/*.whl | wc -l) wheels from $wheels/ into $site"
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" "$wheels"/*.whl || exit 2
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    "$py" -c "$imports" || { echo "[gpu-check] the wheels do not import" >&2; exit 2; }
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version \
    --format=csv,noheader
exec "$py" bench/gpu_check.py "${args[@]}"

#!/usr/bin/env bash
# Download (here, where a registry answers) the wheels bench/gpu_check.sh installs on a GPU
# machine that has none: what the package's model and bench code import beyond what that machine
# holds (torch, torchvision, numpy, onnx, onnxruntime, safetensors, OpenCV, PyYAML, tqdm, pillow,
# portalocker, pytest there). Versions are requirements.txt's pins; all are pure Python
# (py3-none-any). sam2, iopath and antlr4 publish only sdists: they are built into wheels here
# (sam2 without its optional CUDA extension, SAM2_BUILD_CUDA=0, as `make venv` builds it).
#
#   bash bench/gpu_wheels.sh [DEST]        # DEST: .gpu_wheels (git-ignored; name it in carry)
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
dest=${1:-.gpu_wheels}
limit_mib=8 # the working tree and everything carried must stay under 64 MiB per device call

pin() { # the requirements.txt line of a package, e.g. sam2==1.1.0
    grep -m1 -E "^$1==" requirements.txt || { echo "no pin for $1 in requirements.txt" >&2; exit 1; }
}

published=("$(pin segment-anything)" "$(pin hydra-core)" "$(pin omegaconf)")
# hydra-core 1.3 needs antlr4-python3-runtime 4.9.* (its metadata); 4.9.3 is the last 4.9.
built=("$(pin sam2)" "$(pin iopath)" antlr4-python3-runtime==4.9.3)
for spec in "${published[@]}" "${built[@]}"; do [ -n "$spec" ] || exit 1; done

rm -rf "$dest"
mkdir -p "$dest"
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d "$dest" "${published[@]}"
SAM2_BUILD_CUDA=0 "$py" -m pip wheel -q --no-deps --no-build-isolation -w "$dest" "${built[@]}"

status=0
for whl in "$dest"/*.whl; do
    case "$whl" in
    *-py3-none-any.whl | *-py2.py3-none-any.whl) ;;
    *) echo "not pure Python (would not run on the device's Python 3.12): $whl" >&2; status=1 ;;
    esac
done
names=$(ls "$dest" | sed -E 's/-[0-9].*//' | sort)
if [ -n "$(echo "$names" | uniq -d)" ]; then
    echo "two versions of one package (pip stops the whole install): $(echo "$names" | uniq -d)" >&2
    status=1
fi
ls -l "$dest"
kib=$(du -sk "$dest" | cut -f1)
echo "total: $(ls "$dest"/*.whl | wc -l) wheels, ${kib} KiB in $dest/"
if [ "$kib" -gt $((limit_mib * 1024)) ]; then
    echo "more than $limit_mib MiB: the device call carries at most 64 MiB in all" >&2
    status=1
fi
exit $status

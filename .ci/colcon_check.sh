#!/usr/bin/env bash
# Build and test sam_moelora_ros with colcon in a temporary ROS 2 workspace, then check that the
# install tree holds what `ros2 launch` / `ros2 run` need (share files, console scripts); then the
# same install checks on a `colcon build --symlink-install` of a second throw-away workspace.
set -euo pipefail
PY=${PY:-.venv/bin/python}
ROOT=$(pwd)
VENV_BIN=$(cd "$(dirname "$PY")" && pwd)
WS=$(mktemp -d /tmp/sam_moelora_ws.XXXXXX)
WS_SYMLINK=$(mktemp -d /tmp/sam_moelora_ws_symlink.XXXXXX)
trap 'rm -rf "$WS" "$WS_SYMLINK"' EXIT
mkdir -p "$WS/src/sam_moelora_ros"
# Copy the package sources (not the venv, not build outputs).
for item in package.xml setup.py setup.cfg pyproject.toml requirements.txt requirements-dev.txt requirements-robot.txt resource README.md sam_moelora_ros training launch config rviz foxglove test; do
  [ -e "$ROOT/$item" ] && cp -r "$ROOT/$item" "$WS/src/sam_moelora_ros/"
done
find "$WS/src" -name __pycache__ -prune -exec rm -rf {} +
# sam_moelora_ros/training is a symlink to ../training (setup.py): cp -r copies it as one.
[ -L "$WS/src/sam_moelora_ros/sam_moelora_ros/training" ] \
  || { echo "sam_moelora_ros/training is not a symlink to ../training"; exit 1; }
cp -a "$WS/src" "$WS_SYMLINK/src"
export PATH="$VENV_BIN:$PATH"

# check_install <workspace> <where sam_moelora_ros must be imported from>: what `ros2 run` and
# `ros2 launch` need in <workspace>/install, and that the console scripts start.
check_install() {
local ws=$1 origin=$2
cd "$ws"
SHARE=install/sam_moelora_ros/share/sam_moelora_ros
LIB=install/sam_moelora_ros/lib/sam_moelora_ros
# Every launch, config and visualisation file of the source tree must be installed into share/.
for f in package.xml $(cd "$ROOT" && ls launch/*.py config/* rviz/*.rviz foxglove/*.json 2>/dev/null); do
  [ -f "$SHARE/$f" ] || { echo "colcon install is missing $SHARE/$f"; exit 1; }
done
# The Fast DDS profile the launch file hands the node lives in the package; share/ has a copy.
[ -f "$SHARE/config/fastdds_large_messages.xml" ] \
  || { echo "colcon install is missing $SHARE/config/fastdds_large_messages.xml"; exit 1; }
for s in $(sed -n 's/^ *"\([a-z_]*\) = .*/\1/p' "$ROOT/setup.py"); do
  [ -x "$LIB/$s" ] || { echo "colcon install is missing console script $LIB/$s"; exit 1; }
done
[ -f install/sam_moelora_ros/share/ament_index/resource_index/packages/sam_moelora_ros ] \
  || { echo "ament index marker not installed"; exit 1; }
# A robot runs the scripts with the python3 on PATH (a venv made with --system-site-packages,
# activated after sourcing ROS), not the interpreter that ran colcon: check the shebang of every
# console script, then load perception_node's entry point through that very shebang with the venv
# first on PATH and the workspace sourced (no node is started: that would need a ROS graph).
for s in "$LIB"/*; do
  read -r shebang <"$s"
  [ "$shebang" = "#!/usr/bin/env python3" ] \
    || { echo "$s starts with '$shebang', not '#!/usr/bin/env python3'"; exit 1; }
done
read -r shebang <"$LIB/perception_node"
(
set +u; . install/setup.bash; set -u
VENV_PREFIX=$(cd "$VENV_BIN/.." && pwd -P) ORIGIN=$(cd "$origin" && pwd -P) ${shebang#\#!} - <<'PY' \
  || { echo "$ws: the entry points do not load with the venv's python3"; exit 1; }
import importlib.metadata as md
import os
import sys

real = os.path.realpath
scripts = md.distribution("sam_moelora_ros").entry_points.select(group="console_scripts")
main = scripts["perception_node"].load()  # imports the node module: rclpy, torch, ...
import torch  # noqa: E402

import sam_moelora_ros  # noqa: E402

venv, origin = os.environ["VENV_PREFIX"], os.environ["ORIGIN"]
training = {name: scripts[name].load() for name in ("sam_moelora_train", "sam_moelora_evaluate")}
import sam_moelora_ros.training  # noqa: E402

checks = {
    "python3 on PATH is the venv's": real(sys.prefix) == venv,
    "torch comes from the venv": real(torch.__file__).startswith(venv + os.sep),
    f"sam_moelora_ros comes from {origin}": real(sam_moelora_ros.__file__).startswith(origin),
    "perception_node is sam_moelora_ros.ros.node:main": main.__module__ == "sam_moelora_ros.ros.node",
    "sam_moelora_train/_evaluate are in sam_moelora_ros.training": all(
        f.__module__.startswith("sam_moelora_ros.training.") for f in training.values()
    ),
    "sam_moelora_ros.training has its configs": os.path.isfile(
        os.path.join(sam_moelora_ros.training.__path__[0], "configs", "synthetic_tiny.yaml")
    ),
}
for what, ok in checks.items():
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
sys.exit(0 if all(checks.values()) else 1)
PY
# A training console script starts (argparse's --help: no data, no model) through its shebang.
"$LIB/sam_moelora_train" --help >train_help.log 2>&1 \
  || { cat train_help.log; echo "$ws: sam_moelora_train --help failed"; exit 1; }
grep -q "^usage: " train_help.log || { cat train_help.log; echo "$ws: no usage line"; exit 1; }
)
}

cd "$WS"
colcon build --packages-select sam_moelora_ros --event-handlers console_direct- >build.log 2>&1 \
  || { cat build.log; exit 1; }
check_install "$WS" "$WS/install"
cd "$WS"
colcon test --packages-select sam_moelora_ros --event-handlers console_direct- \
  --pytest-args -m colcon >test.log 2>&1 || { cat test.log; exit 1; }
colcon test-result --verbose >result.log 2>&1 || { cat test.log result.log; exit 1; }
grep -qE "^Summary: [1-9][0-9]* tests, 0 errors, 0 failures" result.log \
  || { cat result.log; echo "colcon test ran no test"; exit 1; }
echo "colcon build + test: OK ($(ls "$LIB" | tr '\n' ' '))"

# --symlink-install (develop mode: the install tree links back to the sources), the same checks;
# the package is then imported from the workspace's src/ (through build/'s symlinks).
cd "$WS_SYMLINK"
colcon build --symlink-install --packages-select sam_moelora_ros --event-handlers console_direct- \
  >build.log 2>&1 || { cat build.log; exit 1; }
check_install "$WS_SYMLINK" "$WS_SYMLINK/src/sam_moelora_ros"
echo "colcon build --symlink-install: OK"

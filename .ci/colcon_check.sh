#!/usr/bin/env bash
# Build and test sam_moelora_ros with colcon in a temporary ROS 2 workspace, then check that the
# install tree holds what `ros2 launch` / `ros2 run` need (share files, console scripts).
set -euo pipefail
PY=${PY:-.venv/bin/python}
ROOT=$(pwd)
VENV_BIN=$(cd "$(dirname "$PY")" && pwd)
WS=$(mktemp -d /tmp/sam_moelora_ws.XXXXXX)
trap 'rm -rf "$WS"' EXIT
mkdir -p "$WS/src/sam_moelora_ros"
# Copy the package sources (not the venv, not build outputs).
for item in package.xml setup.py setup.cfg pyproject.toml requirements.txt requirements-dev.txt resource README.md sam_moelora_ros training launch config test; do
  [ -e "$ROOT/$item" ] && cp -r "$ROOT/$item" "$WS/src/sam_moelora_ros/"
done
find "$WS/src" -name __pycache__ -prune -exec rm -rf {} +
cd "$WS"
export PATH="$VENV_BIN:$PATH"
colcon build --packages-select sam_moelora_ros --event-handlers console_direct- >build.log 2>&1 \
  || { cat build.log; exit 1; }
SHARE=install/sam_moelora_ros/share/sam_moelora_ros
LIB=install/sam_moelora_ros/lib/sam_moelora_ros
# Every launch file and config file of the source tree must be installed into share/.
for f in package.xml $(cd "$ROOT" && ls launch/*.py config/* 2>/dev/null); do
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
colcon test --packages-select sam_moelora_ros --event-handlers console_direct- \
  --pytest-args -m colcon >test.log 2>&1 || { cat test.log; exit 1; }
colcon test-result --verbose >result.log 2>&1 || { cat test.log result.log; exit 1; }
grep -qE "^Summary: [1-9][0-9]* tests, 0 errors, 0 failures" result.log \
  || { cat result.log; echo "colcon test ran no test"; exit 1; }
echo "colcon build + test: OK ($(ls "$LIB" | tr '\n' ' '))"

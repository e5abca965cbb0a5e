#!/usr/bin/env bash
# Build the interface packages under ros_msgs/ (vision_msgs, event_camera_msgs, tf2_msgs: no PyPI
# wheels) with colcon and the pinned rosidl / ament_cmake wheels (requirements-msgs.txt), and
# install what they generate into the virtual environment, laid out as the ROS wheels are:
# libraries in <venv>/lib (on the wheels' LD_LIBRARY_PATH), Python packages in site-packages,
# CMake configs and the ament index in <venv>/share. `make venv` runs it; a robot never does (it
# has the distribution's packages).
#
#   PY=.venv/bin/python bash .ci/build_msgs.sh
#
# The build runs in a throw-away workspace (the packages are copied there: ros_msgs/ holds a
# COLCON_IGNORE, so a ROS workspace that contains this repository never builds them).
set -euo pipefail
PY=${PY:-.venv/bin/python}
ROOT=$(pwd)
VENV=$(cd "$(dirname "$PY")/.." && pwd)
PY="$VENV/bin/python"
PACKAGES="vision_msgs event_camera_msgs tf2_msgs"

for tool in cmake gcc g++; do
  command -v "$tool" >/dev/null || { echo "build_msgs: $tool is not installed (apt-get install cmake g++)"; exit 1; }
done
[ -x "$VENV/bin/colcon" ] || { echo "build_msgs: $VENV/bin/colcon missing (pip install -r requirements-dev.txt)"; exit 1; }
[ -d "$VENV/share/rosidl_default_generators" ] \
  || { echo "build_msgs: rosidl_default_generators missing (pip install -r requirements-msgs.txt)"; exit 1; }
GENERATOR=()
command -v ninja >/dev/null && GENERATOR=(-G Ninja)

WS=$(mktemp -d /tmp/sam_moelora_msgs.XXXXXX)
trap 'rm -rf "$WS"' EXIT
mkdir -p "$WS/src"
for pkg in $PACKAGES; do
  cp -r "$ROOT/ros_msgs/$pkg" "$WS/src/"
done

# The wheels install their CMake configs under <venv>/share; the std_msgs (...) wheels' exported
# Python include folders are the wheel builder's, replaced by this interpreter's
# (ros_msgs/cmake/wheel_python_includes.cmake says why).
PY_INCLUDES=$("$PY" -c 'import sysconfig, numpy; print(sysconfig.get_paths()["include"] + ";" + numpy.get_include())')
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
export LD_LIBRARY_PATH="$VENV/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONNOUSERSITE=1

start=$(date +%s)
cd "$WS"
colcon build --merge-install --base-paths src --event-handlers console_direct- \
  --cmake-args "${GENERATOR[@]}" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release \
  "-DPython3_EXECUTABLE=$PY" "-DSAM_PYTHON_INCLUDE_DIRS=$PY_INCLUDES" \
  "-DCMAKE_PROJECT_INCLUDE=$ROOT/ros_msgs/cmake/wheel_python_includes.cmake" \
  >build.log 2>&1 || { cat build.log; echo "build_msgs: colcon build failed"; exit 1; }

# Into the venv, as the ROS wheels lay themselves out.
SITE=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
INSTALL="$WS/install"
for pkg in $PACKAGES; do
  rm -rf "${SITE:?}/$pkg" "$VENV/share/$pkg" "$VENV/include/$pkg"
  cp -r "$INSTALL/lib/python"*/site-packages/"$pkg" "$SITE/"
  cp -r "$INSTALL/share/$pkg" "$VENV/share/"
  [ -d "$INSTALL/include/$pkg" ] && cp -r "$INSTALL/include/$pkg" "$VENV/include/"
  cp -a "$INSTALL/lib/lib${pkg}__"*.so "$VENV/lib/"
done
mkdir -p "$VENV/share/ament_index/resource_index"
cp -r "$INSTALL/share/ament_index/resource_index/." "$VENV/share/ament_index/resource_index/"
cd "$ROOT"

# Each message loads with its C type support (a missing library fails here, not in a test).
"$PY" - <<'EOF'
from rclpy.serialization import deserialize_message, serialize_message
from event_camera_msgs.msg import EventPacket
from tf2_msgs.msg import TFMessage
from vision_msgs.msg import LabelInfo, VisionClass

for msg in (LabelInfo(class_map=[VisionClass(class_id=3, class_name="car")]),
            EventPacket(encoding="evt3", events=b"\x01\x02"), TFMessage()):
    assert deserialize_message(serialize_message(msg), type(msg)) == msg, type(msg)
EOF
echo "build_msgs: $PACKAGES built and installed into $VENV in $(( $(date +%s) - start )) s"

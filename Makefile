# sam_moelora_ros: the two commands users need are `make demo` and `make test`.
# Every target creates the virtual environment it needs (.venv at the repo root) itself.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# The stamp is keyed on the requirement files and setup.py: re-running `make venv` with nothing
# changed is a no-op, and editing any of them triggers a re-install.
REQ_HASH := $(shell cat requirements.txt requirements-dev.txt setup.py | sha256sum | cut -c1-16)
STAMP  := $(VENV)/.stamp-$(REQ_HASH)
# The message packages PyPI lacks (ros_msgs/, built by .ci/build_msgs.sh) have a stamp of their
# own, keyed on their sources, the generator pins and the script; the main stamp's rule removes
# every stamp, so new ROS wheels rebuild them too.
MSGS_HASH := $(shell cat requirements-msgs.txt .ci/build_msgs.sh $$(find ros_msgs -type f | LC_ALL=C sort) | sha256sum | cut -c1-16)
MSGS_STAMP := $(VENV)/.stamp-msgs-$(MSGS_HASH)
PIP_FLAGS := --quiet --disable-pip-version-check
# A private network namespace with loopback up, for whatever starts rclpy nodes (DDS must not reach
# the machine's network): root makes one directly (`unshare -n`), anyone else inside a user
# namespace of their own (`unshare -rn`; plain `unshare -n` is "Operation not permitted" there).
UNSHARE_FLAGS := $(if $(filter 0,$(shell id -u)),-n,-rn)
NETNS  := unshare $(UNSHARE_FLAGS) sh -c 'ip link set lo up && exec "$$@"' sh

.PHONY: venv test lint pytest colcon format demo demo-live bench clean

venv: $(STAMP) $(MSGS_STAMP)

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# torch first: sam2 ships as an sdist and is built against the venv's torch (no isolation,
	@# no CUDA extension: segmentation does not need SAM 2's optional post-processing kernel).
	$(PY) -m pip install $(PIP_FLAGS) setuptools==79.0.1 wheel==0.48.0 \
	    $$(grep -E '^(torch|torchvision)==' requirements.txt)
	SAM2_BUILD_CUDA=0 $(PY) -m pip install $(PIP_FLAGS) --no-build-isolation \
	    -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install $(PIP_FLAGS) --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.stamp-*
	@touch $@

# vision_msgs, event_camera_msgs, tf2_msgs from their .msg files, with colcon and the pinned rosidl
# wheels, into the venv (about 1.5 min on 2 busy cores).
$(MSGS_STAMP): $(STAMP)
	$(PY) -m pip install $(PIP_FLAGS) -r requirements-msgs.txt
	PY=$(PY) bash .ci/build_msgs.sh
	@rm -f $(VENV)/.stamp-msgs-*
	@touch $@

test: venv lint pytest colcon

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

pytest: venv
	$(NETNS) $(PY) -m pytest

# Build and test the package the way a ROS 2 workspace would, in a throw-away workspace.
colcon: venv
	PY=$(PY) bash .ci/colcon_check.sh

# The package's main job end to end on the shipped default model (see docs/replay.md).
demo: venv
	$(PY) -m sam_moelora_ros.replay.demo --out demo_output

# A demo bag through the real node over DDS, inside a private network namespace (loopback only;
# see docs/replay.md, "Live replay").
demo-live: venv
	$(NETNS) $(PY) -m sam_moelora_ros.replay.live_cli --demo --out demo_output/live

# Benchmarks (not tests): ratios against baselines measured in the same run, JSON under
# bench/results/. BENCH_ARGS=--quick for a ~1 minute smoke run; --device cuda for GPU figures.
# bench/run.py puts the node benchmarks in a private network namespace itself (as NETNS does).
bench: venv
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf build install log .pytest_cache .ruff_cache demo_output

# sam_moelora_ros: the two commands users need are `make demo` and `make test`.
# Every target creates the virtual environment it needs (.venv at the repo root) itself.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# The stamp is keyed on the requirement files and setup.py: re-running `make venv` with nothing
# changed is a no-op, and editing any of them triggers a re-install.
REQ_HASH := $(shell cat requirements.txt requirements-dev.txt setup.py | sha256sum | cut -c1-16)
STAMP  := $(VENV)/.stamp-$(REQ_HASH)

.PHONY: venv test lint pytest colcon format demo bench clean

venv: $(STAMP)

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.stamp-*
	@touch $@

test: venv lint pytest colcon

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

pytest: venv
	unshare -n sh -c 'ip link set lo up && exec "$$@"' sh $(PY) -m pytest

# Build and test the package the way a ROS 2 workspace would, in a throw-away workspace.
colcon: venv
	PY=$(PY) bash .ci/colcon_check.sh

demo:
	@echo "make demo arrives with the replay-evaluation issue (see README: 'Status')."; exit 1

bench: venv
	@echo "make bench arrives with the performance issue (see README: 'Status')."; exit 1

clean:
	rm -rf build install log .pytest_cache .ruff_cache demo_output

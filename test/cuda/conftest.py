"""The CUDA tests: marked ``cuda``, skipped (with the reason) where torch sees no CUDA device.

``pytest -m cuda`` selects them; ``bench/gpu_check.sh`` runs this folder on a GPU machine (docs/
deploy.md, "GPU check"). A check that also means something on the CPU is parametrised over
``cuda_helpers.DEVICES`` (the CUDA case marked ``cuda``), so that it runs on every machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

# The test modules import cuda_helpers.py from this directory.
sys.path.insert(0, str(Path(__file__).resolve().parent))

CUDA = torch.cuda.is_available()
NO_CUDA = "needs CUDA (torch.cuda.is_available() is False on this machine)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test marked ``cuda`` is skipped without CUDA, with one clear reason."""
    if CUDA:
        return
    skip = pytest.mark.skip(reason=NO_CUDA)
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)

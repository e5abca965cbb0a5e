"""Shared by the test modules of this folder: helper modules on the path, the tiny Segmenter."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The test modules import their helpers (segmenter_helpers.py) from this directory.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="module")
def segmenter():
    """A CPU Segmenter on ``segmenter_helpers.tiny_model()`` (one per test module)."""
    from segmenter_helpers import tiny_model

    from sam_moelora_ros.inference.segmenter import Segmenter

    return Segmenter(tiny_model(), device="cpu")

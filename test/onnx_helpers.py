"""A tiny model exported to ONNX, for the export and ONNX Runtime backend tests.

The model is ``segmenter_helpers.tiny_model()`` (the ``tiny`` preset at 64 px, seeded, non-zero
LoRA B), saved as an adapter first so the export records a real source hash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from segmenter_helpers import tiny_model

from sam_moelora_ros.export.onnx_export import adapter_source, export_onnx
from sam_moelora_ros.model import save_adapter


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``{"model": merged torch model, "adapter": Path, "manifest": Manifest}``."""
    root: Path = tmp_path_factory.mktemp("tiny_export")
    model = tiny_model().eval()
    adapter = save_adapter(model, root / "tiny64.safetensors", include_backbone=True)
    manifest = export_onnx(model, root / "onnx", adapter_source(adapter))
    return {"model": model, "adapter": adapter, "manifest": manifest}

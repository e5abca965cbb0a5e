"""The real backbones export too: vit_b (SAM 1) and hiera_b+ (SAM 2) at a CPU-test size.

Full depth and width (12 ViT blocks of 768, 24 Hiera blocks), two modalities, 64 px input: the
structure (levels, one merged qkv per block and modality) and the numbers against torch, with a
modality missing, at a batch size the graphs were not traced at.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from sam_moelora_ros.export.onnx_export import export_onnx, weights_source
from sam_moelora_ros.inference.onnx_backend import OnnxRuntimeModel
from sam_moelora_ros.model import ModelConfig, MoELoRASegmentor

MODALITIES = ("rgb", "depth")


def _model(preset: str, size: int) -> MoELoRASegmentor:
    torch.manual_seed(0)
    cfg = ModelConfig.preset(preset, modalities=MODALITIES).replace(image_size=size)
    model = MoELoRASegmentor(cfg)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)
    return model.eval()


def _external(path: Path) -> set[tuple[tuple[str, str], ...]]:
    graph = onnx.load(str(path), load_external_data=False)
    return {
        tuple((e.key, e.value) for e in t.external_data)
        for t in graph.graph.initializer
        if t.data_location == onnx.TensorProto.EXTERNAL
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("preset", "levels", "blocks"),
    [
        ("vit_b", ((768, 4, 4),) * 4, 12),
        ("hiera_b+", ((256, 16, 16), (256, 8, 8), (256, 4, 4)), 24),
    ],
)
def test_backbone_exports_and_matches_torch(
    preset: str, levels: tuple[tuple[int, int, int], ...], blocks: int, tmp_path: Path
) -> None:
    model = _model(preset, 64)
    manifest = export_onnx(model, tmp_path, weights_source(model, preset))  # verify=True too
    assert manifest.levels == levels and manifest.modalities == MODALITIES
    assert manifest.config["name"] == preset
    rgb, depth = (_external(tmp_path / f"encoder_{m}.onnx") for m in MODALITIES)
    assert len(rgb - depth) == len(depth - rgb) == blocks  # each block's merged qkv differs
    assert _external(tmp_path / "encoder_all.onnx") <= rgb | depth  # no bytes of its own
    for name in manifest.files:
        if name.endswith(".onnx"):
            onnx.checker.check_model(str(tmp_path / name))
    runtime = OnnxRuntimeModel(tmp_path)
    generator = torch.Generator().manual_seed(3)
    images = {m: torch.randn(3, 3, 64, 64, generator=generator) for m in MODALITIES}
    for subset in (MODALITIES, ("depth",)):
        inputs = {m: images[m] for m in subset}
        with torch.no_grad():
            want, want_extras = model(inputs, return_extras=True)
            got, got_extras = runtime(inputs, return_extras=True)
        scale = float(want.abs().max())
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-3, atol=1e-4 * scale)
        assert set(got_extras["router_weights"]) == set(subset)
        for m in subset:
            np.testing.assert_allclose(
                got_extras["router_weights"][m].numpy(),
                want_extras["router_weights"][m].numpy(),
                atol=1e-5,
            )
    assert runtime.encoder_runs == {"rgb+depth": 1, "depth": 1}

"""The new recipe's model exports: linear router scores in the fusion graph, content geometry."""

from __future__ import annotations

from pathlib import Path

import torch

from sam_moelora_ros.export.onnx_export import export_onnx, weights_source
from sam_moelora_ros.model import ModelConfig, MoELoRASegmentor


def test_a_linear_router_content_model_exports_and_matches_torch(tmp_path: Path) -> None:
    cfg = ModelConfig.preset(
        "tiny",
        image_size=64,
        window_size=4,
        modalities=("rgb", "lidar"),
        router_scores="linear",
        input_geometry="content",
    )
    torch.manual_seed(0)
    model = MoELoRASegmentor(cfg)
    with torch.no_grad():  # a trained router: non-zero scores, so the weights are not uniform
        for router in model.routers:
            router.score.weight.normal_(0, 1.0)
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)
    # verify=True: ONNX Runtime's logits and router weights must match the torch model's on the
    # content box the graphs are traced at (2:1 frames at 64 px: 32 x 64), or it is refused.
    manifest = export_onnx(model, tmp_path, weights_source(model, "tiny"), camera_hw=(48, 96))
    assert manifest.input_hw == (32, 64)
    assert manifest.config["router_scores"] == "linear"
    assert manifest.config["input_geometry"] == "content"

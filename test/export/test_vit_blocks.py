"""The exported ViT block (``export/vit_blocks.py``) against SAM's own ``Block``.

SAM initialises its relative-position tables to zero, so a fresh preset cannot tell a correct
relative-position term from a missing one: every test here fills them with random values first.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from segment_anything.modeling.image_encoder import Block, add_decomposed_rel_pos

from sam_moelora_ros.export.vit_blocks import (
    LeanBlock,
    folded_rel_pos_scores,
    key_position_one_hot,
)


def _block(window: int, grid: int, seed: int = 0) -> Block:
    """A small SAM block (64 wide, 4 heads) on a ``grid x grid`` token map, random rel-pos."""
    torch.manual_seed(seed)
    block = Block(64, 4, use_rel_pos=True, window_size=window, input_size=(window or grid,) * 2)
    with torch.no_grad():
        block.attn.rel_pos_h.normal_(0, 0.5)
        block.attn.rel_pos_w.normal_(0, 0.5)
    return block.eval()


def test_one_hot_marks_each_key_s_row_and_column() -> None:
    code = key_position_one_hot(2, 3, torch.empty(0))
    assert code.shape == (6, 5)
    assert code.sum(dim=1).tolist() == [2.0] * 6
    assert code[4].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]  # key (1, 1): row 1, column 1


@pytest.mark.parametrize("size", [(14, 14), (5, 7)])
def test_folded_scores_equal_sam_s_two_additions(size: tuple[int, int]) -> None:
    generator = torch.Generator().manual_seed(1)
    tokens = size[0] * size[1]
    q, k = (torch.randn(6, tokens, 16, generator=generator) for _ in range(2))
    rel_h = torch.randn(2 * size[0] - 1, 16, generator=generator)
    rel_w = torch.randn(2 * size[1] - 1, 16, generator=generator)
    want = add_decomposed_rel_pos((q * 0.25) @ k.transpose(-2, -1), q, rel_h, rel_w, size, size)
    got = folded_rel_pos_scores(q, k, 0.25, rel_h, rel_w, size)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("window", "grid"), [(5, 8), (0, 6)])  # windowed (padded) and global
def test_lean_block_exports_checked_and_matches_sam_s_block(
    window: int, grid: int, tmp_path: Path
) -> None:
    """The exported block passes the checker, equals SAM's ``Block`` in ONNX Runtime, and has no
    addition over the 5-D score tensor left (the relative positions went into the matmul)."""
    block = _block(window, grid)
    x = torch.randn(2, grid, grid, 64, generator=torch.Generator().manual_seed(2))
    path = tmp_path / "block.onnx"
    with torch.no_grad():
        want = block(x)
        torch.onnx.export(
            LeanBlock(block),
            (x,),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["x"],
            output_names=["y"],
        )
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph, full_check=True)
    inferred = onnx.shape_inference.infer_shapes(graph).graph
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in inferred.value_info}
    five_d_adds = [
        n.name for n in inferred.node if n.op_type == "Add" and ranks.get(n.output[0]) == 5
    ]
    assert not five_d_adds, five_d_adds
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x.numpy()})
    scale = float(want.abs().max())
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-4, atol=1e-5 * scale)

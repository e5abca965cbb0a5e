"""SAM 1's ViT block rearranged for the exported graph: the same arithmetic, less of it.

``segment_anything``'s ``Block`` pads the token grid to a multiple of the window (vit_b at
512 px: 32 x 32 tokens -> 42 x 42) *before* the attention's ``qkv`` and ``proj`` projections, so
in the windowed blocks (8 of vit_b's 12) those two matmuls also run on 1764 - 1024 = 740 padding
tokens whose outputs are thrown away. :class:`LeanBlock` computes exactly what ``Block`` does,
in another order:

* ``qkv`` on the real tokens only, without its bias; pad (with zeros) and partition into windows;
  then add the bias. A padding token thus gets ``qkv(0) = bias``, as in ``Block`` (the padding is
  applied after ``norm1``, so it is an exact zero there), and takes part in the attention as the
  same key and value;
* the attention is ``Block``'s (scaled dot product, decomposed relative positions, softmax),
  window by window, with the relative positions folded into the ``q k^T`` matmul
  (:func:`folded_rel_pos_scores`) instead of two broadcast additions over the whole score
  tensor afterwards;
* un-partition and crop first, then ``proj`` (a per-token linear) on the real tokens only.

Every linear also runs on ``N x C`` (tokens flattened), which exports as ``Gemm`` with the bias
fused, rather than a batched ``MatMul`` followed by a separate ``Add`` over the whole output.
Within ONNX Runtime this cuts vit_b's encoder time by the share docs/deploy.md states; tests
compare the exported graphs with the torch model (which keeps ``Block``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from segment_anything.modeling.image_encoder import (
    Block,
    get_rel_pos,
    window_partition,
    window_unpartition,
)
from torch import nn

from sam_moelora_ros.model.lora import MoELoRALinear
from sam_moelora_ros.model.segmentor import MoELoRASegmentor
from sam_moelora_ros.onnx_format import ExportError


def _linear(x: torch.Tensor, layer: nn.Linear, bias: bool = True) -> torch.Tensor:
    """``layer`` on the last dimension of ``x``, as one 2-D matmul (exports as ``Gemm``)."""
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    out = F.linear(flat, layer.weight, layer.bias if bias else None)
    return out.reshape(*lead, out.shape[-1])


def _qkv_without_bias(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``B x H x W x C`` -> ``B x H x W x 3D``: a plain or merged MoE-LoRA qkv, bias left out.

    A merged :class:`MoELoRALinear` gets one 2-D matmul per modality chunk of the batch (its
    active modalities, modality-major), with that modality's merged weight, as its own forward.
    """
    if isinstance(layer, nn.Linear):
        return _linear(x, layer, bias=False)
    if isinstance(layer, MoELoRALinear) and layer.merged_weight is not None and layer.active:
        num = len(layer.active)
        chunks = x.reshape(num, -1, x.shape[-1])
        outs = [
            F.linear(chunks[i], layer.merged_weight[layer.merged_modalities.index(m)])
            for i, m in enumerate(layer.active)
        ]
        return torch.stack(outs).reshape(*x.shape[:-1], -1)
    raise ExportError(
        f"LeanBlock needs a plain Linear or a merged, active MoELoRALinear qkv, got "
        f"{type(layer).__name__}; merge the LoRA experts (model.merge_lora()) before export"
    )


def _qkv_bias(layer: nn.Module) -> torch.Tensor | None:
    base = layer.base_layer if isinstance(layer, MoELoRALinear) else layer
    bias = getattr(base, "bias", None)
    return bias if isinstance(bias, torch.Tensor) else None


def key_position_one_hot(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """``(height * width) x (height + width)``: key ``(i, j)`` has a 1 in column ``i`` and in
    column ``height + j`` (exact in any float dtype; a constant in the exported graph)."""
    rows = torch.arange(height, device=like.device).repeat_interleave(width)
    cols = torch.arange(width, device=like.device).repeat(height)
    eye_h = torch.eye(height, dtype=like.dtype, device=like.device)
    eye_w = torch.eye(width, dtype=like.dtype, device=like.device)
    return torch.cat([eye_h[rows], eye_w[cols]], dim=1)


def folded_rel_pos_scores(
    q: torch.Tensor,
    k: torch.Tensor,
    scale: float,
    rel_pos_h: torch.Tensor,
    rel_pos_w: torch.Tensor,
    size: tuple[int, int],
) -> torch.Tensor:
    """``scale q k^T`` plus SAM's decomposed relative positions, as one matmul.

    SAM adds ``rel_h[b, qh, qw, kh] + rel_w[b, qh, qw, kw]`` to every score afterwards: two
    broadcast additions that read and write the whole ``N x N`` score tensor (vit_b at 512 px:
    12 x 1024 x 1024 per global block). Both terms are the query's dot product with a one-hot
    code of the key's row and column, so appending ``[rel_h, rel_w]`` to the scaled query and that
    code (:func:`key_position_one_hot`) to the key gives the same scores from the matmul alone:
    the inner dimension grows from the head size (64) by ``h + w`` (28 in a 14 x 14 window).
    """
    height, width = size
    batch, tokens, dim = q.shape
    grid = q.reshape(batch, height, width, dim)
    rel_h = torch.einsum("bhwc,hkc->bhwk", grid, get_rel_pos(height, height, rel_pos_h))
    rel_w = torch.einsum("bhwc,wkc->bhwk", grid, get_rel_pos(width, width, rel_pos_w))
    query = torch.cat(
        [q * scale, rel_h.reshape(batch, tokens, height), rel_w.reshape(batch, tokens, width)],
        dim=-1,
    )
    code = key_position_one_hot(height, width, k).expand(batch, -1, -1)
    key = torch.cat([k, code], dim=-1)
    return query @ key.transpose(-2, -1)


class LeanBlock(nn.Module):
    """A ``segment_anything`` ViT ``Block`` computed in the order of the module docstring.

    ``block.attn.qkv`` is a plain ``nn.Linear`` (inside :func:`~.graphs.plain_qkv`) or a merged
    :class:`MoELoRALinear` (the all-modalities graph).
    """

    def __init__(self, block: Block) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        block, attn = self.block, self.block.attn
        shortcut = x
        height, width = x.shape[1], x.shape[2]
        qkv = _qkv_without_bias(attn.qkv, block.norm1(x))
        pad_hw = (height, width)
        if block.window_size > 0:
            qkv, pad_hw = window_partition(qkv, block.window_size)
        bias = _qkv_bias(attn.qkv)
        if bias is not None:
            qkv = qkv + bias
        x = self._attention(qkv)
        if block.window_size > 0:
            x = window_unpartition(x, block.window_size, pad_hw, (height, width))
        x = shortcut + _linear(x, attn.proj)
        hidden = block.mlp.act(_linear(block.norm2(x), block.mlp.lin1))
        return x + _linear(hidden, block.mlp.lin2)

    def _attention(self, qkv: torch.Tensor) -> torch.Tensor:
        """``Attention.forward`` after its ``qkv``: ``B x h x w x 3C`` -> ``B x h x w x C``."""
        attn = self.block.attn
        batch, height, width, _ = qkv.shape
        heads = attn.num_heads
        qkv = qkv.reshape(batch, height * width, 3, heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.reshape(3, batch * heads, height * width, -1).unbind(0)
        if attn.use_rel_pos:
            size = (height, width)
            scores = folded_rel_pos_scores(q, k, attn.scale, attn.rel_pos_h, attn.rel_pos_w, size)
        else:
            scores = (q * attn.scale) @ k.transpose(-2, -1)
        out = scores.softmax(dim=-1) @ v
        out = out.view(batch, heads, height, width, -1).permute(0, 2, 3, 1, 4)
        return out.reshape(batch, height, width, -1)


@contextlib.contextmanager
def lean_vit_blocks(model: MoELoRASegmentor) -> Iterator[None]:
    """Run a ViT segmentor's encoder with :class:`LeanBlock` s (a no-op for other backbones)."""
    vit = getattr(model.encoder, "vit", None)
    blocks = getattr(vit, "blocks", None)
    if not isinstance(blocks, nn.ModuleList):
        yield
        return
    originals = list(blocks)
    try:
        for index, block in enumerate(originals):
            if not isinstance(block, Block):
                raise ExportError(f"vit.blocks[{index}] is a {type(block).__name__}, not a Block")
            blocks[index] = LeanBlock(block)
        yield
    finally:
        for index, block in enumerate(originals):
            blocks[index] = block

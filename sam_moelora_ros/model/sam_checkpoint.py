"""Official SAM weights in: SAM 1 (``sam_vit_*.pth``) and SAM 2 / 2.1 (``sam2*_hiera_*.pt``).

Files are read with ``torch.load(weights_only=True)`` (or as safetensors holding the same keys),
never unpickled. The frozen encoder must match key for key (the error names the file and what
differs); SAM 1's absolute and relative position embeddings are interpolated when the model's
input size is not 1024 (SAM 2's Hiera interpolates its own at run time). Where the checkpoint
holds SAM's mask decoder and prompt encoder, their two-way transformer, upscaling layers,
high-resolution convolutions (SAM 2), random positional encoding and prompt-free embeddings
initialise our semantic decoder wherever the shapes agree.
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .errors import SamCheckpointError
from .safetensors_io import ensure_readable, read_safetensors
from .segmentor import MoELoRASegmentor

LOG = logging.getLogger(__name__)

# Names of the decoder parts we reuse -> ours (relative to ``decoder.``), per SAM generation.
_SAM1_DECODER = {
    "mask_decoder.output_upscaling.0.weight": "upscale1.weight",
    "mask_decoder.output_upscaling.0.bias": "upscale1.bias",
    "mask_decoder.output_upscaling.1.weight": "upscale_norm.weight",
    "mask_decoder.output_upscaling.1.bias": "upscale_norm.bias",
    "mask_decoder.output_upscaling.3.weight": "upscale2.weight",
    "mask_decoder.output_upscaling.3.bias": "upscale2.bias",
    "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix": (
        "pe_layer.positional_encoding_gaussian_matrix"
    ),
    "prompt_encoder.no_mask_embed.weight": "no_mask_embed.weight",
}
_SAM2_DECODER = {
    **{
        k.replace("mask_decoder.", "sam_mask_decoder.").replace(
            "prompt_encoder.", "sam_prompt_encoder."
        ): v
        for k, v in _SAM1_DECODER.items()
    },
    "sam_mask_decoder.conv_s0.weight": "high_res_s4.weight",
    "sam_mask_decoder.conv_s0.bias": "high_res_s4.bias",
    "sam_mask_decoder.conv_s1.weight": "high_res_s8.weight",
    "sam_mask_decoder.conv_s1.bias": "high_res_s8.bias",
}


# ---------------------------------------------------------------------- reading files
def _read_checkpoint(path: Path) -> Any:
    """The object stored in a ``.pth``/``.pt`` (weights only) or ``.safetensors`` file."""
    what, missing_fix = "SAM checkpoint", "pass the checkpoint path"
    if path.suffix == ".safetensors":
        contents = read_safetensors(
            path,
            what=what,
            error=SamCheckpointError,
            fix="re-download or re-export it",
            missing_fix=missing_fix,
        )
        return contents.tensors
    # torch.load would report an unreadable file (a directory, no permission) as a corrupt one.
    ensure_readable(path, what=what, error=SamCheckpointError, missing_fix=missing_fix)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" in str(exc).lower():
            raise SamCheckpointError(_not_plain_tensors(path, exc)) from exc
        raise SamCheckpointError(
            f"SAM checkpoint {path} is corrupt or not a PyTorch checkpoint ({exc}); "
            "re-download it (expected e.g. sam_vit_b_01ec64.pth or sam2.1_hiera_base_plus.pt)"
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise SamCheckpointError(
            f"SAM checkpoint {path} is corrupt or not a PyTorch checkpoint ({exc}); "
            "re-download it (expected e.g. sam_vit_b_01ec64.pth or sam2.1_hiera_base_plus.pt)"
        ) from exc


def _not_plain_tensors(path: Path, exc: Exception) -> str:
    """The message for a pickle that references code: what it wanted, and that it did not run.

    torch's own text ("Weights only load failed ... re-running with weights_only=False will likely
    succeed") invites exactly the unsafe step; ours names the object and the safe fixes.
    """
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    wanted = f" (it references {found.group(1)})" if found else ""
    return (
        f"SAM checkpoint {path} is not a plain tensor checkpoint: it holds pickled Python "
        f"objects{wanted}, which were NOT executed; use the official checkpoint "
        "(e.g. sam_vit_b_01ec64.pth) or convert a trusted file to safetensors"
    )


def _first_non_finite(state: Mapping[str, torch.Tensor]) -> str | None:
    """The first floating tensor (in the file's order) holding NaN or Inf, or None."""
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return key
    return None


def _state_dict_for(model: MoELoRASegmentor, path: Path) -> dict[str, torch.Tensor]:
    """Unwrap the checkpoint for the model's backbone, or explain the mismatch."""
    raw = _read_checkpoint(path)
    is_sam2 = isinstance(raw, Mapping) and isinstance(raw.get("model"), Mapping)
    state = raw["model"] if is_sam2 else raw
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise SamCheckpointError(f"{path} does not hold a SAM state dict (name -> tensor)")
    bad = _first_non_finite(state)
    if bad is not None:
        raise SamCheckpointError(
            f"SAM checkpoint {path}: {bad} holds NaN/Inf values; the file is damaged, "
            "re-download it"
        )
    has_hiera = any(k.startswith("image_encoder.trunk.") for k in state)
    if model.cfg.backbone == "sam_vit" and (is_sam2 or has_hiera):
        raise SamCheckpointError(
            f"{path} looks like a SAM 2 checkpoint (a dict holding 'model', Hiera keys), but "
            f"preset {model.cfg.name!r} uses SAM 1's ViT; use a sam_vit_*.pth checkpoint or a "
            "hiera_* preset"
        )
    if model.cfg.backbone == "sam2_hiera" and not has_hiera:
        raise SamCheckpointError(
            f"{path} is not a SAM 2 checkpoint (no 'image_encoder.trunk.*' keys), but preset "
            f"{model.cfg.name!r} uses SAM 2's Hiera; use a sam2.1_hiera_*.pt checkpoint"
        )
    return dict(state)


def _describe_variant(state: Mapping[str, torch.Tensor]) -> str:
    if any(k.startswith("image_encoder.trunk.") for k in state):
        weight = state.get("image_encoder.trunk.patch_embed.proj.weight")
        blocks = r"image_encoder\.trunk\.blocks\.(\d+)\."
    else:
        weight = state.get("image_encoder.patch_embed.proj.weight")
        blocks = r"image_encoder\.blocks\.(\d+)\."
    depth = len({m.group(1) for k in state if (m := re.match(blocks, k))})
    width = weight.shape[0] if weight is not None else "?"
    return f"embed_dim={width}, depth={depth}"


# ---------------------------------------------------------------------- position embeddings
def _resize_pos_embed(pos: torch.Tensor, grid: int) -> torch.Tensor:
    """``1 x g x g x C`` absolute position embedding -> ``1 x grid x grid x C`` (bicubic)."""
    if pos.shape[1] == grid:
        return pos
    resized = F.interpolate(
        pos.permute(0, 3, 1, 2).float(), size=(grid, grid), mode="bicubic", align_corners=False
    )
    return resized.permute(0, 2, 3, 1).to(pos.dtype)


def _resize_rel_pos(rel: torch.Tensor, length: int) -> torch.Tensor:
    """``L x C`` relative position table -> ``length x C`` (linear, as SAM's ``get_rel_pos``)."""
    if rel.shape[0] == length:
        return rel
    resized = F.interpolate(rel.t().unsqueeze(0).float(), size=length, mode="linear")
    return resized.squeeze(0).t().to(rel.dtype)


# ---------------------------------------------------------------------- writing
def sam_state_dict(model: MoELoRASegmentor) -> dict[str, torch.Tensor]:
    """The model's encoder and the decoder parts a SAM checkpoint holds, under SAM 1's names.

    The inverse of :func:`load_sam_checkpoint` for SAM 1's ViT: ``image_encoder.*`` (LoRA
    experts left out) plus ``mask_decoder.*`` / ``prompt_encoder.*`` for the decoder pieces that
    loading initialises. This is how the package's own RGB-pretrained ``tiny`` encoder
    (``training.pretrain``) becomes a checkpoint that ``model.sam_checkpoint`` loads like an
    official one.
    """
    if model.cfg.backbone != "sam_vit":
        raise SamCheckpointError(
            f"writing a SAM checkpoint is supported for SAM 1's ViT presets, not preset "
            f"{model.cfg.name!r} ({model.cfg.backbone})"
        )
    state = {k: v.detach().cpu().contiguous() for k, v in model.encoder.frozen_state_dict().items()}
    ours = model.decoder.state_dict()
    for theirs, name in _SAM1_DECODER.items():
        if name in ours:
            state[theirs] = ours[name].detach().cpu().contiguous()
    for name, tensor in ours.items():
        if name.startswith("transformer."):
            state["mask_decoder." + name] = tensor.detach().cpu().contiguous()
    return state


# ---------------------------------------------------------------------- loading
def load_sam_checkpoint(model: MoELoRASegmentor, path: str | Path) -> dict[str, list[str]]:
    """Load official SAM 1 or SAM 2 weights into ``model``'s frozen encoder (+ decoder parts).

    Returns ``{"decoder_loaded": [...], "decoder_skipped": [...]}`` (our decoder names).
    Raises :class:`~.errors.SamCheckpointError` (a ``CheckpointError``) naming the file for a
    missing, unreadable, non-regular (FIFO) or corrupt file, pickled objects (never executed),
    NaN/Inf weights (naming the first such tensor), the wrong SAM generation, a different
    variant, or missing encoder keys.
    """
    path = Path(path)
    state = _state_dict_for(model, path)
    expected = model.encoder.frozen_state_dict()
    variant_msg = (
        f"{path} is a different SAM variant ({_describe_variant(state)}) than the model "
        f"(preset {model.cfg.name!r}: embed_dim={model.cfg.embed_dim}, depth={model.cfg.depth})"
    )
    missing = sorted(k for k in expected if k not in state)
    if missing:
        if not any(k.startswith("image_encoder.") for k in state):
            raise SamCheckpointError(
                f"{path} has no SAM image encoder weights (no 'image_encoder.*' keys); "
                "expected an official SAM checkpoint such as sam_vit_b_01ec64.pth"
            )
        raise SamCheckpointError(
            f"{variant_msg}; missing {len(missing)} key(s), e.g. {missing[:3]}"
        )
    embed_key = next(k for k in expected if k.endswith("patch_embed.proj.weight"))
    if state[embed_key].shape != expected[embed_key].shape:
        raise SamCheckpointError(f"{variant_msg}; use the checkpoint that matches the preset")
    new_state: dict[str, torch.Tensor] = {}
    for key, target in expected.items():
        tensor = state[key]
        if model.cfg.backbone == "sam_vit":
            if key.endswith("pos_embed"):
                tensor = _resize_pos_embed(tensor, model.cfg.grid_size)
            elif key.endswith(("rel_pos_h", "rel_pos_w")):
                tensor = _resize_rel_pos(tensor, target.shape[0])
        if tensor.shape != target.shape:
            raise SamCheckpointError(
                f"{path}: {key} has shape {tuple(tensor.shape)} but the model expects "
                f"{tuple(target.shape)} (checkpoint {_describe_variant(state)}, model preset "
                f"{model.cfg.name!r}); use the checkpoint that matches the preset"
            )
        new_state[key] = tensor
    model.encoder.load_frozen(new_state)
    return _load_decoder_parts(model, state)


def _decoder_mapping(model: MoELoRASegmentor, state: Mapping[str, torch.Tensor]) -> dict:
    if model.cfg.backbone == "sam_vit":
        mapping, prefix = dict(_SAM1_DECODER), "mask_decoder.transformer."
        for key in state:
            if key.startswith(prefix):
                mapping[key] = "transformer." + key[len(prefix) :]
        return mapping
    mapping, prefix = dict(_SAM2_DECODER), "sam_mask_decoder.transformer."
    for key in state:
        if key.startswith(prefix):
            ours = "transformer." + key[len(prefix) :]
            # SAM 2's MLP names its linears layers.0/1; segment_anything's MLPBlock lin1/lin2.
            ours = ours.replace(".mlp.layers.0.", ".mlp.lin1.").replace(
                ".mlp.layers.1.", ".mlp.lin2."
            )
            mapping[key] = ours
    return mapping


def _load_decoder_parts(model: MoELoRASegmentor, state: Mapping[str, torch.Tensor]) -> dict:
    decoder_state = model.decoder.state_dict()
    state = dict(state)
    no_mem = state.get("no_mem_embed")
    no_mask = state.get("sam_prompt_encoder.no_mask_embed.weight")
    if no_mem is not None and no_mask is not None:
        # SAM 2 adds no_mem_embed to the image embedding and no_mask_embed as the dense prompt:
        # both are constants added to the same tensor, so their sum is exact.
        state["sam_prompt_encoder.no_mask_embed.weight"] = no_mask + no_mem.reshape(no_mask.shape)
    loaded, skipped = [], []
    with torch.no_grad():
        for theirs, ours in _decoder_mapping(model, state).items():
            if theirs not in state:
                continue
            if ours in decoder_state and decoder_state[ours].shape == state[theirs].shape:
                decoder_state[ours].copy_(state[theirs])
                loaded.append(ours)
            else:
                skipped.append(ours)
    if skipped:
        LOG.info("SAM decoder weights not used (shapes or names differ): %s", skipped)
    return {"decoder_loaded": loaded, "decoder_skipped": skipped}

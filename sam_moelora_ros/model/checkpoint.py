"""Checkpoints in, adapters out: official SAM weights and the project's safetensors adapters.

* :func:`load_sam_checkpoint` loads an official SAM checkpoint (``sam_vit_b_01ec64.pth`` and
  friends, ``segment_anything``'s key layout, read with ``torch.load(weights_only=True)``; or the
  same keys in a ``.safetensors`` file) into the frozen encoder, interpolating the absolute and
  relative position embeddings when ``image_size`` is not 1024. When the checkpoint has SAM's
  mask decoder and prompt encoder, their transformer, upscaling layers, positional encoding and
  ``no_mask_embed`` initialise the semantic decoder where the shapes agree.
* :func:`save_adapter` / :func:`load_adapter` write and read the trainable weights as
  safetensors, with the model config (and a format version) in the file's metadata, so an
  adapter cannot silently be loaded into a different model. ``include_backbone=True`` also
  stores the frozen encoder (needed for presets that have no official checkpoint, like ``tiny``).
* :func:`load_segmentor` builds a ready model from an adapter file alone.

Nothing here writes pickle.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import ModelConfig
from .errors import CheckpointError, ModelConfigError
from .segmentor import MoELoRASegmentor, is_frozen_name

LOG = logging.getLogger(__name__)
ADAPTER_FORMAT = "sam_moelora_ros.adapter"
ADAPTER_FORMAT_VERSION = "1"

# segment_anything names of the decoder parts we reuse -> our names (relative to ``decoder.``).
_DECODER_KEYS = {
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


# ---------------------------------------------------------------------- reading files
def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a SAM checkpoint (``.pth`` via ``weights_only`` torch.load, or ``.safetensors``)."""
    if not path.is_file():
        raise CheckpointError(f"SAM checkpoint {path} does not exist (pass the .pth file path)")
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as handle:
                return {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(
                f"SAM checkpoint {path} is not a readable safetensors file ({exc}); "
                "re-download or re-export it"
            ) from exc
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(
            f"SAM checkpoint {path} is corrupt or not a PyTorch checkpoint ({exc}); "
            "re-download it (expected e.g. sam_vit_b_01ec64.pth)"
        ) from exc
    if isinstance(state, Mapping) and "model" in state and isinstance(state["model"], Mapping):
        raise CheckpointError(
            f"{path} looks like a SAM 2 checkpoint (a dict holding 'model'), but this model uses "
            "SAM 1's ViT; use a sam_vit_*.pth checkpoint"
        )
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise CheckpointError(f"{path} does not hold a SAM state dict (name -> tensor)")
    return dict(state)


def _describe_variant(state: Mapping[str, torch.Tensor]) -> str:
    weight = state.get("image_encoder.patch_embed.proj.weight")
    depth = len({k.split(".")[2] for k in state if k.startswith("image_encoder.blocks.")})
    width = weight.shape[0] if weight is not None else "?"
    return f"embed_dim={width}, depth={depth}"


# ---------------------------------------------------------------------- SAM checkpoints
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


def load_sam_checkpoint(model: MoELoRASegmentor, path: str | Path) -> dict[str, list[str]]:
    """Load official SAM weights into ``model``'s frozen encoder (and decoder where they fit).

    Returns ``{"decoder_loaded": [...], "decoder_skipped": [...]}`` (our decoder names).
    Raises :class:`CheckpointError` naming the file for a missing file, a corrupt file, a SAM 2
    checkpoint, a different ViT variant or missing encoder keys.
    """
    path = Path(path)
    state = _read_state_dict(path)
    expected = model.encoder.frozen_state_dict()
    missing = sorted(k for k in expected if k not in state)
    if missing:
        if "image_encoder.patch_embed.proj.weight" not in state:
            raise CheckpointError(
                f"{path} has no SAM image encoder weights (no 'image_encoder.*' keys); "
                "expected an official SAM checkpoint such as sam_vit_b_01ec64.pth"
            )
        raise CheckpointError(
            f"{path} is a different SAM variant ({_describe_variant(state)}) than the model "
            f"(preset {model.cfg.name!r}: embed_dim={model.cfg.embed_dim}, depth="
            f"{model.cfg.depth}); missing {len(missing)} key(s), e.g. {missing[:3]}"
        )
    embed = state["image_encoder.patch_embed.proj.weight"]
    if embed.shape != expected["image_encoder.patch_embed.proj.weight"].shape:
        raise CheckpointError(
            f"{path} is a different SAM variant ({_describe_variant(state)}) than the model "
            f"(preset {model.cfg.name!r}: embed_dim={model.cfg.embed_dim}, depth="
            f"{model.cfg.depth}); use the checkpoint that matches the preset"
        )
    grid = model.cfg.grid_size
    new_state: dict[str, torch.Tensor] = {}
    for key, target in expected.items():
        tensor = state[key]
        if key.endswith("pos_embed"):
            tensor = _resize_pos_embed(tensor, grid)
        elif key.endswith(("rel_pos_h", "rel_pos_w")):
            tensor = _resize_rel_pos(tensor, target.shape[0])
        if tensor.shape != target.shape:
            raise CheckpointError(
                f"{path}: {key} has shape {tuple(tensor.shape)} but the model expects "
                f"{tuple(target.shape)} (checkpoint {_describe_variant(state)}, model preset "
                f"{model.cfg.name!r}); use the checkpoint that matches the preset"
            )
        new_state[key] = tensor
    with torch.no_grad():
        vit_state = model.encoder.vit.state_dict()
        for key, tensor in new_state.items():
            ours = key[len("image_encoder.") :]
            if ours not in vit_state:
                ours = ours.replace("attn.qkv.", "attn.qkv.base_layer.")
            vit_state[ours].copy_(tensor)
    return _load_decoder_parts(model, state)


def _load_decoder_parts(model: MoELoRASegmentor, state: Mapping[str, torch.Tensor]) -> dict:
    decoder_state = model.decoder.state_dict()
    mapping = dict(_DECODER_KEYS)
    prefix = "mask_decoder.transformer."
    mapping.update({k: "transformer." + k[len(prefix) :] for k in state if k.startswith(prefix)})
    loaded, skipped = [], []
    with torch.no_grad():
        for theirs, ours in mapping.items():
            if theirs not in state:
                continue
            if ours in decoder_state and decoder_state[ours].shape == state[theirs].shape:
                decoder_state[ours].copy_(state[theirs])
                loaded.append(ours)
            else:
                skipped.append(ours)
    if skipped:
        LOG.info("SAM decoder weights not used (shapes differ): %s", skipped)
    return {"decoder_loaded": loaded, "decoder_skipped": skipped}


# ---------------------------------------------------------------------- adapters
def save_adapter(model: MoELoRASegmentor, path: str | Path, include_backbone: bool = False) -> Path:
    """Write the trainable weights (plus the frozen encoder if asked) as safetensors.

    The metadata holds ``format``, ``format_version``, the model config as sorted JSON and
    whether the backbone is included. LoRA experts are saved unmerged (the factors are kept while
    merged, so saving a merged model is fine).
    """
    path = Path(path)
    tensors = model.trainable_state_dict() if not include_backbone else dict(model.state_dict())
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    metadata = {
        "format": ADAPTER_FORMAT,
        "format_version": ADAPTER_FORMAT_VERSION,
        "config": model.cfg.to_json(),
        "includes_backbone": json.dumps(include_backbone),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    tmp.replace(path)  # atomic: a crash never leaves a half-written adapter behind
    return path


def _open_adapter(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    if not path.is_file():
        raise CheckpointError(f"adapter file {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"adapter file {path} is truncated or not a safetensors file ({exc}); "
            "re-export it with save_adapter() or re-download it"
        ) from exc
    if metadata.get("format") != ADAPTER_FORMAT:
        raise CheckpointError(
            f"{path} is a safetensors file but not a sam_moelora_ros adapter "
            f"(metadata format={metadata.get('format')!r})"
        )
    if metadata.get("format_version") != ADAPTER_FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: adapter format_version {metadata.get('format_version')!r} is not "
            f"supported (this package reads {ADAPTER_FORMAT_VERSION})"
        )
    return metadata, tensors


def read_adapter_config(path: str | Path) -> ModelConfig:
    """The :class:`ModelConfig` stored in an adapter file."""
    path = Path(path)
    metadata, _ = _open_adapter(path)
    try:
        return ModelConfig.from_json(metadata.get("config", ""))
    except ModelConfigError as exc:
        raise CheckpointError(f"{path}: the stored model config is invalid: {exc}") from exc


def load_adapter(model: MoELoRASegmentor, path: str | Path) -> bool:
    """Load an adapter file into ``model``; returns whether it carried the frozen backbone.

    Raises :class:`CheckpointError` naming the file when it is missing, truncated, not an
    adapter, written for a different config (the differing fields are listed), or lacks weights.
    """
    path = Path(path)
    metadata, tensors = _open_adapter(path)
    stored = read_adapter_config(path)
    diffs = stored.differences(model.cfg)
    if diffs:
        listed = ", ".join(f"{k}: file={a!r} model={b!r}" for k, (a, b) in sorted(diffs.items()))
        raise CheckpointError(
            f"adapter {path} was trained for a different model ({listed}); build the model "
            "from the adapter's config (load_segmentor) or pass the matching adapter"
        )
    includes_backbone = metadata.get("includes_backbone") == "true"
    own = model.state_dict()
    wanted = {k for k in own if includes_backbone or not is_frozen_name(k)}
    missing = sorted(wanted - set(tensors))
    if missing:
        raise CheckpointError(
            f"adapter {path} lacks {len(missing)} weight(s) the model needs, e.g. {missing[:3]}"
        )
    unknown = sorted(set(tensors) - set(own))
    if unknown:
        LOG.warning(
            "adapter %s: ignoring %d unknown key(s), e.g. %s", path, len(unknown), unknown[:3]
        )
    was_merged = model.lora_merged
    model.unmerge_lora()
    with torch.no_grad():
        for key in wanted:
            value = tensors[key]
            if value.shape != own[key].shape:
                raise CheckpointError(
                    f"adapter {path}: {key} has shape {tuple(value.shape)}, the model expects "
                    f"{tuple(own[key].shape)}"
                )
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise CheckpointError(f"adapter {path}: {key} holds NaN/Inf values")
            own[key].copy_(value)
    if was_merged:
        model.merge_lora()
    return includes_backbone


def load_segmentor(
    adapter_path: str | Path,
    sam_checkpoint: str | Path | None = None,
    map_location: str | torch.device = "cpu",
) -> MoELoRASegmentor:
    """Build the model an adapter file describes and load it (ready for ``eval()``).

    The frozen encoder comes from ``sam_checkpoint``, or from the adapter when it includes the
    backbone (then the adapter's copy wins); when neither provides it, a
    :class:`CheckpointError` says what to pass.
    """
    cfg = read_adapter_config(adapter_path)
    model = MoELoRASegmentor(cfg)
    if sam_checkpoint is not None:
        load_sam_checkpoint(model, sam_checkpoint)
    # Loaded second: the adapter's decoder weights win over SAM's, and an adapter that carries
    # its backbone brings the encoder it was trained with.
    includes_backbone = load_adapter(model, adapter_path)
    if sam_checkpoint is None and not includes_backbone:
        raise CheckpointError(
            f"adapter {adapter_path} does not include the frozen SAM encoder; pass the official "
            f"SAM checkpoint of preset {cfg.name!r} (e.g. sam_vit_b_01ec64.pth for vit_b)"
        )
    return model.to(map_location).eval()


def count_parameters(model: torch.nn.Module) -> dict[str, float]:
    """``{"total", "trainable", "frozen", "trainable_share"}`` parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    share = trainable / total if total else math.nan
    return {
        "total": total,
        "trainable": trainable,
        "frozen": total - trainable,
        "trainable_share": share,
    }

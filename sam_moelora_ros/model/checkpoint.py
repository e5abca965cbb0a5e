"""Adapters out and in: the project's safetensors files, and ready models built from them.

* :func:`~.sam_checkpoint.load_sam_checkpoint` (re-exported here) loads official SAM 1 / SAM 2
  weights into the frozen encoder.
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
from pathlib import Path

import torch

from .config import ModelConfig
from .errors import CheckpointError, ModelConfigError
from .safetensors_io import SafetensorsFormat, read_safetensors, write_safetensors
from .sam_checkpoint import load_sam_checkpoint
from .segmentor import MoELoRASegmentor, build_segmentor, is_frozen_name

__all__ = [
    "count_parameters",
    "load_adapter",
    "load_sam_checkpoint",
    "load_segmentor",
    "read_adapter_config",
    "save_adapter",
]

LOG = logging.getLogger(__name__)
ADAPTER_FORMAT = "sam_moelora_ros.adapter"
ADAPTER_FORMAT_VERSION = "1"
ADAPTER = SafetensorsFormat(ADAPTER_FORMAT, ADAPTER_FORMAT_VERSION, writer="save_adapter()")


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
    return write_safetensors(tensors, path, metadata)


def _open_adapter(
    path: Path, with_tensors: bool = True
) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    contents = read_safetensors(
        path,
        what="adapter file",
        error=CheckpointError,
        fix="re-export it with save_adapter() or re-download it",
        expect=ADAPTER,
        with_tensors=with_tensors,
    )
    return contents.metadata, contents.tensors


def read_adapter_config(path: str | Path) -> ModelConfig:
    """The :class:`ModelConfig` stored in an adapter file.

    Reads the metadata alone: a config whose numbers would explode (``depth: 1000000``,
    ``lora_alpha: Infinity``) is refused, naming the field, before a tensor is allocated.
    """
    path = Path(path)
    metadata, _ = _open_adapter(path, with_tensors=False)
    return _stored_config(path, metadata)


def _stored_config(path: Path, metadata: dict[str, str]) -> ModelConfig:
    try:
        return ModelConfig.from_json(metadata.get("config", ""))
    except ModelConfigError as exc:
        raise CheckpointError(f"{path}: the stored model config is invalid: {exc}") from exc


def load_adapter(model: MoELoRASegmentor, path: str | Path, *, strict: bool = False) -> bool:
    """Load an adapter file into ``model``; returns whether it carried the frozen backbone.

    Raises :class:`CheckpointError` naming the file when it is missing, truncated, not an
    adapter, written for a different config (the differing fields are listed), or lacks weights.
    Weights the model has no place for are skipped with a warning, or with ``strict`` (what the
    export asks for: it must not drop a trained expert silently) refused: the file's config then
    disagrees with its tensors.
    """
    path = Path(path)
    metadata, tensors = _open_adapter(path)
    stored = _stored_config(path, metadata)  # from the same read: the file is not opened twice
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
    if unknown and strict:
        raise CheckpointError(
            f"adapter {path}: its config (preset {stored.name!r}, modalities "
            f"{list(stored.modalities)}) has no place for {len(unknown)} of its weight(s), e.g. "
            f"{unknown[:3]}: the config disagrees with the tensors; fix the config or use the "
            "adapter file training wrote"
        )
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
    *,
    strict: bool = False,
) -> MoELoRASegmentor:
    """Build the model an adapter file describes and load it (ready for ``eval()``); ``strict``:
    see :func:`load_adapter`.

    The frozen encoder comes from ``sam_checkpoint``, or from the adapter when it includes the
    backbone (then the adapter's copy wins); when neither provides it, a
    :class:`CheckpointError` says what to pass.
    """
    cfg = read_adapter_config(adapter_path)
    model = build_segmentor(cfg)
    if sam_checkpoint is not None:
        load_sam_checkpoint(model, sam_checkpoint)
    # Loaded second: the adapter's decoder weights win over SAM's, and an adapter that carries
    # its backbone brings the encoder it was trained with.
    includes_backbone = load_adapter(model, adapter_path, strict=strict)
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

"""Adapters out and in: the project's safetensors files, and ready models built from them.

* :func:`~.sam_checkpoint.load_sam_checkpoint` (re-exported here) loads official SAM 1 / SAM 2
  weights into the frozen encoder.
* :func:`save_adapter` / :func:`load_adapter` write and read the trainable weights as
  safetensors, with the model config (and a format version) in the file's metadata, so an
  adapter cannot silently be loaded into a different model. ``include_backbone=True`` also
  stores the frozen encoder (needed for presets that have no official checkpoint, like ``tiny``).
* :func:`load_segmentor` builds a ready model from an adapter file alone.
* Every adapter records its input contract (metadata ``input_encodings``, see
  ``sensors.encodings``): how each modality's network image was made in training, so the node
  builds the same images. :func:`read_adapter_encodings` reads it; an adapter written before the
  key existed gets the encodings of that time (``DEFAULT_CONTRACT``), and says so once.

Nothing here writes pickle.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import torch

from ..sensors.encodings import DEFAULT_CONTRACT, METADATA_KEY, EncodingError, InputContract
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
    "read_adapter_encodings",
    "save_adapter",
]

LOG = logging.getLogger(__name__)
ADAPTER_FORMAT = "sam_moelora_ros.adapter"
ADAPTER_FORMAT_VERSION = "1"
ADAPTER = SafetensorsFormat(ADAPTER_FORMAT, ADAPTER_FORMAT_VERSION, writer="save_adapter()")


# ---------------------------------------------------------------------- adapters
def save_adapter(
    model: MoELoRASegmentor,
    path: str | Path,
    include_backbone: bool = False,
    input_encodings: InputContract | None = None,
) -> Path:
    """Write the trainable weights (plus the frozen encoder if asked) as safetensors.

    The metadata holds ``format``, ``format_version``, the model config as sorted JSON, whether
    the backbone is included, and ``input_encodings``: the contract of the model's modalities
    (``input_encodings``, else the model's own ``input_encodings`` attribute, which training
    sets from its dataset and :func:`load_segmentor` from the file; else ``DEFAULT_CONTRACT``).
    LoRA experts are saved unmerged (the factors are kept while merged, so saving a merged model
    is fine).
    """
    path = Path(path)
    contract = input_encodings or getattr(model, "input_encodings", None) or DEFAULT_CONTRACT
    tensors = model.trainable_state_dict() if not include_backbone else dict(model.state_dict())
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    metadata = {
        "format": ADAPTER_FORMAT,
        "format_version": ADAPTER_FORMAT_VERSION,
        "config": model.cfg.to_json(),
        "includes_backbone": json.dumps(include_backbone),
        METADATA_KEY: contract.restrict(model.cfg.modalities).to_json(),
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


def read_adapter_encodings(path: str | Path) -> tuple[InputContract, bool]:
    """``(contract, recorded)``: the adapter's ``input_encodings`` for its modalities.

    ``recorded`` is False for an adapter written before the key existed: it gets
    ``DEFAULT_CONTRACT`` (the encodings every model of that time was trained with). A malformed
    or unknown encoding is a :class:`CheckpointError` naming the file.
    """
    path = Path(path)
    metadata, _ = _open_adapter(path, with_tensors=False)
    config = _stored_config(path, metadata)
    return _stored_encodings(path, metadata, config)


def _stored_encodings(
    path: Path, metadata: dict[str, str], config: ModelConfig
) -> tuple[InputContract, bool]:
    text = metadata.get(METADATA_KEY)
    if text is None:
        return DEFAULT_CONTRACT.restrict(config.modalities), False
    try:
        stored = InputContract.from_json(text, source=f"{path} metadata {METADATA_KEY!r}")
    except EncodingError as exc:
        raise CheckpointError(f"{exc}; re-save the adapter with a known encoding") from exc
    return stored.restrict(config.modalities), True


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
    path = Path(adapter_path)
    metadata, _ = _open_adapter(path, with_tensors=False)
    cfg = _stored_config(path, metadata)
    contract, recorded = _stored_encodings(path, metadata, cfg)
    if not recorded:
        LOG.info(
            "adapter %s records no input_encodings (written before models recorded them): "
            "using the encodings of that time, %s",
            path,
            contract.to_json(),
        )
    model = build_segmentor(cfg)
    model.input_encodings = contract
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

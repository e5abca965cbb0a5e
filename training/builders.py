"""What a :class:`~training.loop.Trainer` is made of, built from the config: model, DDP, data,
optimiser, precision. The loop itself (:mod:`training.loop`) only runs them.

Kept apart so each piece can be built (and tested) on its own, and so the trainer's constructor
reads as the list of its parts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from sam_moelora_ros.model import MoELoRASegmentor, load_sam_checkpoint

from . import distributed as D
from .config import TrainConfig, TrainConfigError
from .data import ResumableSampler, SeededDataset, ShardSampler, make_loader
from .optim import build_optimizer
from .seeding import seed_initialisation
from .standardise import input_statistics, standardise_stems

LOG = logging.getLogger(__name__)
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def unfreeze_encoder(model: MoELoRASegmentor) -> None:
    """Make the image encoder trainable and keep its LoRA experts at zero (pretraining).

    The experts' ``B`` factors start at zero, so with them frozen every block computes exactly the
    plain encoder: what pretraining learns lives in the official-name weights that
    :func:`~sam_moelora_ros.model.sam_state_dict` writes out.
    """
    for name, param in model.encoder.sam.named_parameters():
        param.requires_grad_(".experts." not in name)


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX): autocast pays there."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``run.amp`` on ``device`` (None: float32).

    ``bf16`` autocasts on GPUs and CPUs alike; ``fp16`` on GPUs only (CPU float16 matmuls are
    slow and its loss scaling is a GPU feature); ``auto`` is ``bf16`` where the hardware has it
    (a GPU with bfloat16, a CPU with AVX512-BF16/AMX), else float32. ``none`` keeps float32 for
    checks and bit-exact comparisons.
    """
    if amp == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if device.type == "cpu" and cpu_has_bf16() else None
    if amp == "fp16" and device.type != "cuda":
        return None
    return AMP_DTYPES.get(amp)


def build_model(
    cfg: TrainConfig, device: torch.device, train_set: torch.utils.data.Dataset | None = None
) -> tuple[MoELoRASegmentor, bool]:
    """The segmentor to train, on ``device`` in training mode; and whether SAM weights loaded.

    Seeded first (identical initialisation on every rank). ``model.stem_init: standardise``
    initialises the non-RGB stems from ``train_set``'s statistics (:mod:`training.standardise`).
    """
    seed_initialisation(cfg.run.seed)
    model = MoELoRASegmentor(cfg.model_config())
    sam_loaded = False
    if cfg.model.sam_checkpoint:
        load_sam_checkpoint(model, cfg.model.sam_checkpoint)
        sam_loaded = True
    if cfg.model.train_encoder:
        unfreeze_encoder(model)
    if cfg.model.stem_init == "standardise" and train_set is not None:
        stats = input_statistics(train_set, model.cfg.modalities)
        applied = standardise_stems(model.encoder.stems, stats)
        LOG.info("stems standardised from the training split (std per channel): %s", applied)
    return model.to(device).train(), sam_loaded


def wrap_ddp(model: nn.Module, info: D.DistInfo) -> Any:
    """``model`` itself, or DDP around it (sync batch norm on GPUs) when distributed."""
    if not info.enabled:
        return model
    device = info.device
    ids = [device.index] if device.type == "cuda" else None
    if device.type == "cuda":  # batch 4 per GPU: normalise over the global batch
        nn.SyncBatchNorm.convert_sync_batchnorm(model)
    # Dropped modalities leave their experts and stems without gradients this step.
    return DDP(model, device_ids=ids, find_unused_parameters=True)


def optimizer_for(cfg: TrainConfig, model: nn.Module) -> torch.optim.AdamW:
    o = cfg.optim
    betas = (float(o.betas[0]), float(o.betas[1]))
    return build_optimizer(model, o.lr, o.weight_decay, betas, o.router_lr_mult)


@dataclass
class TrainData:
    """The seeded training set, its resumable sampler and loader, and the validation loader."""

    train_set: SeededDataset
    sampler: ResumableSampler
    loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader | None
    steps_per_epoch: int


def build_data(
    cfg: TrainConfig,
    train_set: torch.utils.data.Dataset,
    val_set: torch.utils.data.Dataset | None,
    info: D.DistInfo,
) -> TrainData:
    """Loaders for one rank; refuses a set smaller than a batch, an epoch shorter than a step."""
    o = cfg.optim
    samples = len(train_set)  # type: ignore[arg-type]
    if samples < o.batch_size * info.world_size:
        raise TrainConfigError(
            f"optim.batch_size: the training set has {samples} samples, fewer than one batch "
            f"(optim.batch_size={o.batch_size} x {info.world_size} ranks)"
        )
    seeded = SeededDataset(train_set, cfg.run.seed)
    sampler = ResumableSampler(seeded, info.world_size, info.rank, cfg.run.seed)
    pin = info.device.type == "cuda"
    loader = make_loader(seeded, sampler, o.batch_size, cfg.data.num_workers, True, pin)
    val_loader = None
    if val_set is not None and len(val_set) > 0:  # type: ignore[arg-type]
        shard = ShardSampler(len(val_set), info.world_size, info.rank)  # type: ignore[arg-type]
        val_loader = make_loader(val_set, shard, o.batch_size, cfg.data.num_workers, False, pin)
    batches = sampler.num_samples // o.batch_size
    steps_per_epoch = batches // o.accumulate
    if steps_per_epoch < 1:
        raise TrainConfigError(
            f"optim.accumulate: one epoch has {batches} batches per rank, fewer than "
            f"optim.accumulate={o.accumulate}; lower accumulate or batch_size"
        )
    return TrainData(seeded, sampler, loader, val_loader, steps_per_epoch)

"""One training step at the paper's recipe scale: step time and peak GPU memory (``gpu_check``).

The recipe is ``training/configs/deliver_hiera_b+.yaml`` (Hiera-B+ at 1024 px, AdamW, bf16 AMP, CE
on the main and auxiliary heads) with batch 2 per GPU, all four modalities in every step (modality
dropout off: the largest step) and random weights and data (no SAM checkpoint or DELIVER here; the
cost does not depend on the values). It goes through :meth:`training.loop.Trainer.train_step`,
the code a real run uses, so the memory figure is that of training, not of a hand-made loop.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any

import torch
from common import REPO

RECIPE = REPO / "training" / "configs" / "deliver_hiera_b+.yaml"


def train_step_figures(
    device: str = "cuda",
    image_size: int = 1024,
    batch_size: int = 2,
    steps: int = 3,
    amp: str = "bf16",
) -> dict[str, Any]:
    """Warm-up step, then ``steps`` timed optimizer steps; seconds and peak memory.

    ``peak_allocated_gib``: tensors (torch's ``max_memory_allocated``) over all steps, the
    optimizer state included; ``peak_reserved_gib``: what the caching allocator took from the
    card, the figure to hold against a card's memory. On the CPU AMP is off (the Trainer's rule)
    and no memory is reported.
    """
    from training.config import TrainConfig
    from training.distributed import DistInfo
    from training.loop import Trainer

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    with tempfile.TemporaryDirectory(prefix="gpu_check_train_") as out:
        cfg = TrainConfig.load(
            RECIPE,
            [
                f"model.image_size={image_size}",
                "model.sam_checkpoint=null",
                f"optim.batch_size={batch_size}",
                "dropout.p=0",
                "dropout.p_rgb=0",
                "data.num_workers=0",
                f"run.amp={amp}",
                f"run.out={out}",
            ],
        )
        model_cfg = cfg.model_config()
        size, classes = model_cfg.image_size, model_cfg.num_classes
        names = model_cfg.modalities
        gen = torch.Generator().manual_seed(0)
        batch = {
            "inputs": {m: torch.randn(batch_size, 3, size, size, generator=gen) for m in names},
            "label": torch.randint(0, classes, (batch_size, size, size), generator=gen),
        }
        # The Trainer checks the set holds one batch; the step itself is fed ``batch`` directly.
        samples = [{"inputs": {m: batch["inputs"][m][i] for m in names},
                    "label": batch["label"][i]} for i in range(batch_size)]  # fmt: skip
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(dev)
        trainer = Trainer(cfg, samples, info=DistInfo(device=dev), out_dir=out)
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in trainer.model.parameters())

        def step() -> tuple[float, dict[str, float]]:
            start = time.perf_counter()
            parts = trainer.train_step([batch])
            if cuda:
                torch.cuda.synchronize(dev)
            return time.perf_counter() - start, parts

        first_s, _ = step()
        timed = [step() for _ in range(steps)]
        figures: dict[str, Any] = {
            "preset": model_cfg.name,
            "image_size": size,
            "batch_size": batch_size,
            "modalities": list(names),
            "amp": "none" if trainer.amp_dtype is None else amp,
            "device": torch.cuda.get_device_name(dev) if cuda else "cpu",
            "params_trainable": trainable,
            "params_total": total,
            "first_step_s": first_s,
            "steps": steps,
            "step_s_median": statistics.median(s for s, _ in timed),
            "step_s_min": min(s for s, _ in timed),
            "loss": [parts["loss"] for _, parts in timed],
            "peak_allocated_gib": None,
            "peak_reserved_gib": None,
        }
        if cuda:
            figures["peak_allocated_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
            figures["peak_reserved_gib"] = torch.cuda.max_memory_reserved(dev) / 2**30
    return figures

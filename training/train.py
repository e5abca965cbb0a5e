"""Command line: ``python -m sam_moelora_ros.training.train --config training/configs/<name>.yaml
[overrides]``.

Also the entry point of ``torchrun --nproc_per_node=N -m sam_moelora_ros.training.train ...`` (one
process per GPU; NCCL on GPUs, gloo on CPUs; see ``docs/training.md`` for multi-node rendezvous) and
of the ``sam_moelora_train`` console script. Overrides are ``section.key=value`` pairs (YAML
values), e.g. ``optim.lr=3e-4 run.seed=1 data.root=/data/DELIVER``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import torch

from . import distributed as D
from .cli_errors import one_line_errors, positive_int
from .config import TrainConfig, TrainConfigError
from .data import build_datasets
from .loop import Trainer, TrainingError


def parse_args(
    argv: Sequence[str] | None = None,
    prog: str = "python -m sam_moelora_ros.training.train",
    description: str = "Train the MoE-LoRA SAM segmentor (single process or under torchrun).",
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", required=True, help="training YAML (training/configs/...)")
    parser.add_argument("--out", help="output folder (overrides run.out)")
    parser.add_argument(
        "--resume",
        help="continue a run: its folder, checkpoints/ folder or last_state.safetensors",
    )
    parser.add_argument(
        "--max-steps",
        type=positive_int,
        help="stop after this optimizer step (the schedule still spans the configured length)",
    )
    parser.add_argument("overrides", nargs="*", help="section.key=value overrides")
    return parser.parse_args(argv)


def run(
    args: argparse.Namespace, require_encoder_training: bool = False
) -> tuple[TrainConfig, Trainer | None]:
    """Load the config, build the data and the :class:`Trainer`, train; ``None`` off rank 0.

    Shared by ``training.train`` and ``training.pretrain`` (which writes the encoder after and
    asks for ``model.train_encoder: true``).
    """
    overrides = list(args.overrides)
    if args.out:
        overrides.append(f"run.out={args.out}")
    cfg = TrainConfig.load(args.config, overrides)
    if require_encoder_training and not cfg.model.train_encoder:
        raise TrainConfigError(
            f"model.train_encoder: {args.config} does not train the encoder; pretraining needs "
            "model.train_encoder: true and model.modalities: [rgb] (see "
            "training/configs/pretrain_tiny.yaml)"
        )
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    info = D.setup(cfg.run.device)
    try:
        train_set, val_set = build_datasets(cfg)
        trainer = Trainer(cfg, train_set, val_set, info)
        if args.resume:
            trainer.resume(args.resume)
        if info.is_main:
            mods = "+".join(cfg.model.modalities)
            what = "pretraining the encoder of" if cfg.model.train_encoder else "training"
            print(
                f"{what} {cfg.model.preset} ({cfg.model.fusion}, {mods}) on "
                f"{len(train_set)} samples, {trainer.total_steps} steps "  # type: ignore[arg-type]
                f"({trainer.steps_per_epoch}/epoch), world size {info.world_size}, {info.device}",
                flush=True,
            )
        summary = trainer.train(stop_at=args.max_steps)
        if info.is_main:
            print(json.dumps(summary, indent=2, default=str), flush=True)
    finally:
        D.teardown()
    return cfg, trainer if info.is_main else None


@one_line_errors(run_errors=(TrainingError,))
def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when trained; 2 with one line for a bad config, dataset or checkpoint; 1 with one
    line when training had to stop (non-finite loss or weights, no usable labels)."""
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Command line: ``python -m sam_moelora_ros.training.pretrain --config
training/configs/pretrain_tiny.yaml``.

Pretrains the ``tiny`` preset's image encoder on RGB alone, as SAM's encoder was pretrained on
RGB photographs, so that the adapter stage starts from what the method assumes: a frozen encoder
that already sees, adapted to depth, events and LiDAR by LoRA experts. The objective is dense
semantic supervision of the encoder through the segmentor's own decoder (``model.train_encoder:
true``; docs/training.md says why this objective rather than SAM's promptable masks). The corpus
is synthetic daylight scenes whose seeds no training, validation or test split uses.

When training ends, the checkpoint chosen on the validation split (``best``, else ``last``) is
written as ``<run.out>/encoder.safetensors`` under SAM 1's key names (``image_encoder.*`` plus
the mask-decoder pieces a SAM checkpoint holds): the adapter stage loads it with
``model.sam_checkpoint`` exactly like an official ``sam_vit_*.pth``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from sam_moelora_ros.model import load_adapter, sam_state_dict
from sam_moelora_ros.model.safetensors_io import write_safetensors

from .cli_errors import one_line_errors
from .loop import Trainer, TrainingError
from .train import parse_args, run

ENCODER_FILE = "encoder.safetensors"
"""Name of the SAM-layout encoder checkpoint inside the pretraining run's folder."""


def write_encoder(trainer: Trainer, out: Path) -> Path:
    """Load the run's best (else last) checkpoint and write its encoder in SAM 1's layout."""
    ckpt = trainer.ckpt_dir / "best.safetensors"
    if not ckpt.is_file():
        ckpt = trainer.ckpt_dir / "last.safetensors"
    load_adapter(trainer.model, ckpt)
    cfg = trainer.model.cfg
    metadata = {
        "format": "sam_moelora_ros.sam_encoder",
        "source": str(ckpt),
        "preset": cfg.name,
        "image_size": str(cfg.image_size),
        "best_val_miou": json.dumps(trainer.best if trainer.best_step >= 0 else None),
        "best_step": str(trainer.best_step),
    }
    return write_safetensors(sam_state_dict(trainer.model), out / ENCODER_FILE, metadata)


@one_line_errors(run_errors=(TrainingError,))
def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 with the encoder written; 2 with one line for a bad config, dataset or
    checkpoint; 1 with one line when training had to stop."""
    args = parse_args(
        argv,
        prog="python -m sam_moelora_ros.training.pretrain",
        description="Pretrain the tiny image encoder on RGB and write it as a SAM checkpoint.",
    )
    cfg, trainer = run(args, require_encoder_training=True)
    if trainer is not None:
        path = write_encoder(trainer, Path(cfg.run.out) if not args.out else Path(args.out))
        print(
            f"wrote {path}: use it as model.sam_checkpoint for the adapter stage",
            flush=True,
        )
    return 0


__all__ = ["ENCODER_FILE", "main", "write_encoder"]

if __name__ == "__main__":
    raise SystemExit(main())

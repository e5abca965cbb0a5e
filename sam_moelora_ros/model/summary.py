"""``model_summary``: print a preset's parameter budget (total, trainable, trainable share).

Usage: ``model_summary --preset vit_b --classes 25 --modalities rgb,depth,event,lidar``, or
``model_summary --adapter FILE`` for a trained adapter: its architecture, parameter budget and the
input encodings it records (how the node must build each modality's network image).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .checkpoint import count_parameters, read_adapter_config, read_adapter_encodings
from .config import ModelConfig
from .errors import CheckpointError
from .presets import PRESETS
from .segmentor import MoELoRASegmentor, build_segmentor


def format_summary(model: MoELoRASegmentor) -> str:
    """A few lines describing the model and its parameter counts."""
    counts = count_parameters(model)
    cfg = model.cfg
    groups = {
        "LoRA experts": sum(
            p.numel() for n, p in model.named_parameters() if ".experts." in n and p.requires_grad
        ),
        "stems": sum(p.numel() for p in model.encoder.stems.parameters()),
        "routers": sum(p.numel() for p in model.routers.parameters()),
        "pyramid": sum(p.numel() for p in model.pyramid.parameters()),
        "aux head": sum(p.numel() for p in model.aux_head.parameters()),
        "mask decoder": sum(p.numel() for p in model.decoder.parameters()),
    }
    lines = [
        f"preset {cfg.name} ({cfg.backbone}), input {cfg.image_size}x{cfg.image_size}, "
        f"{cfg.num_classes} classes, modalities {','.join(cfg.modalities)}, "
        f"LoRA rank {cfg.lora_rank} on {'+'.join(cfg.lora_targets)}",
        f"  total parameters     {counts['total']:>12,}",
        f"  frozen (SAM encoder) {counts['frozen']:>12,}",
        f"  trainable            {counts['trainable']:>12,}  "
        f"({100 * counts['trainable_share']:.2f}% of all)",
    ]
    lines += [f"    {name:<18} {value:>12,}" for name, value in groups.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="vit_b", choices=sorted(PRESETS))
    parser.add_argument("--classes", type=int, default=25)
    parser.add_argument("--modalities", default="rgb,depth,event,lidar")
    parser.add_argument(
        "--adapter", help="an adapter .safetensors: summarise it (the other options are ignored)"
    )
    args = parser.parse_args(argv)
    if args.adapter:
        try:
            cfg = read_adapter_config(args.adapter)
            contract, recorded = read_adapter_encodings(args.adapter)
        except CheckpointError as exc:
            print(f"model_summary: {exc}", file=sys.stderr)
            return 2
        print(format_summary(build_segmentor(cfg)))
        note = "" if recorded else " (not recorded in the file: the encodings of older adapters)"
        print(f"input encodings{note}:")
        print("\n".join(f"  {line}" for line in contract.describe().splitlines()))
        return 0
    cfg = ModelConfig.preset(args.preset, args.classes, tuple(args.modalities.split(",")))
    print(format_summary(build_segmentor(cfg)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

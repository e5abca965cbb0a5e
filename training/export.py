"""Command line: turn a training checkpoint into a shippable model file.

``python -m sam_moelora_ros.training.export --adapter runs/x/checkpoints/best.safetensors --out
model.safetensors [--half] [--sam-checkpoint C]`` writes a self-contained adapter (the frozen
encoder included, so no SAM checkpoint is needed to load it). ``--half`` stores the tensors as
float16: half the size (the shipped default stays a few MB), and
:func:`~sam_moelora_ros.model.load_adapter` casts them back to the model's float32 on load. Evaluate
the exported file, not the checkpoint, when you report its numbers. A weight beyond float16's range
(65504) would become Inf: ``--half`` refuses it, naming the weight, rather than write a model that
computes NaNs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch

from sam_moelora_ros.model import CheckpointError, load_segmentor, save_adapter

from .cli_errors import one_line_errors


@one_line_errors()
def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when written; 2 with one line for a bad adapter, SAM checkpoint or --half."""
    parser = argparse.ArgumentParser(
        prog="python -m sam_moelora_ros.training.export", description=__doc__
    )
    parser.add_argument("--adapter", required=True, help="checkpoint adapter (.safetensors)")
    parser.add_argument("--sam-checkpoint", help="official SAM .pth if the adapter lacks it")
    parser.add_argument("--out", required=True, help="output .safetensors")
    parser.add_argument("--half", action="store_true", help="store float16 tensors")
    args = parser.parse_args(argv)
    model = load_segmentor(args.adapter, args.sam_checkpoint)
    if args.half:
        model = model.half()
        overflow = [
            name
            for name, value in model.state_dict().items()
            if value.is_floating_point() and not bool(torch.isfinite(value).all())
        ]
        if overflow:
            raise CheckpointError(
                f"--half: {args.adapter}: {overflow[0]} holds values beyond float16's range "
                f"(65504; {len(overflow)} weight(s) in all); export without --half"
            )
    path = save_adapter(model, args.out, include_backbone=True)
    size_mb = path.stat().st_size / 2**20
    print(f"wrote {path} ({size_mb:.1f} MiB, {'float16' if args.half else 'float32'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

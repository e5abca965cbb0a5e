"""Command line: turn a training checkpoint into a shippable model file.

``python -m training.export --adapter runs/x/checkpoints/best.safetensors --out model.safetensors
[--half] [--sam-checkpoint C]`` writes a self-contained adapter (the frozen encoder included, so
no SAM checkpoint is needed to load it). ``--half`` stores the tensors as float16: half the size
(the shipped default stays a few MB), and :func:`~sam_moelora_ros.model.load_adapter` casts them
back to the model's float32 on load. Evaluate the exported file, not the checkpoint, when you
report its numbers.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from sam_moelora_ros.model import load_segmentor, save_adapter


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.export", description=__doc__)
    parser.add_argument("--adapter", required=True, help="checkpoint adapter (.safetensors)")
    parser.add_argument("--sam-checkpoint", help="official SAM .pth if the adapter lacks it")
    parser.add_argument("--out", required=True, help="output .safetensors")
    parser.add_argument("--half", action="store_true", help="store float16 tensors")
    args = parser.parse_args(argv)
    model = load_segmentor(args.adapter, args.sam_checkpoint)
    if args.half:
        model = model.half()
    path = save_adapter(model, args.out, include_backbone=True)
    size_mb = path.stat().st_size / 2**20
    print(f"wrote {path} ({size_mb:.1f} MiB, {'float16' if args.half else 'float32'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Command line: export a model for deployment.

Examples::

    python -m sam_moelora_ros.export --adapter best.safetensors --out deploy/model --format onnx
    python -m sam_moelora_ros.export --adapter a.safetensors \\
        --sam-checkpoint sam_vit_b_01ec64.pth --out deploy/vit_b
    python -m sam_moelora_ros.export --preset vit_b --image-size 512 --out deploy/vit_b_random
    python -m sam_moelora_ros.export --out deploy/default      # the package's shipped model

The folder then holds ``manifest.json``, ``encoder_<modality>.onnx`` (one per modality),
``fusion.onnx`` and ``weights.bin``; run it with ``model.backend: onnxruntime`` and
``model.adapter: <folder>`` (node), ``replay_eval --backend onnxruntime --adapter <folder>``, or
compare it with the torch model: ``python -m sam_moelora_ros.export.check``. See docs/deploy.md.
Exit status: 0 written (and verified), 2 bad arguments or a model that cannot be exported.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

FORMATS = ("onnx",)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sam_moelora_ros.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--adapter", default="", help="adapter .safetensors (default: shipped model)")
    src.add_argument("--preset", default="", help="export a freshly initialised preset instead")
    p.add_argument(
        "--sam-checkpoint", default="", help="official SAM weights, if the adapter lacks them"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", default="onnx", choices=FORMATS)
    p.add_argument(
        "--exporter",
        default="torchscript",
        choices=("torchscript", "dynamo"),
        help="torch.onnx exporter: torchscript (opset 17, fast) or dynamo (opset 18)",
    )
    p.add_argument("--image-size", type=int, default=0, help="--preset only: input side (px)")
    p.add_argument("--seed", type=int, default=0, help="--preset only: initialisation seed")
    p.add_argument(
        "--inline-weights",
        action="store_true",
        help="keep every graph self-contained instead of sharing weights.bin",
    )
    p.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime vs torch check")
    p.add_argument(
        "--camera-hw",
        type=frame_size,
        default=None,
        help="HxW of the camera's frames (e.g. 480x640); needed by content-only models, whose "
        "graphs take that camera's content box",
    )
    return p


def frame_size(text: str) -> tuple[int, int]:
    """``HxW`` (e.g. ``480x640``) as two positive ints (argparse type)."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH such as 480x640, got {text!r}")
    return (int(parts[0]), int(parts[1]))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    from sam_moelora_ros.export.onnx_export import adapter_source, export_onnx, weights_source
    from sam_moelora_ros.inference.segmenter import default_adapter_path
    from sam_moelora_ros.model import (
        CheckpointError,
        ModelConfig,
        ModelConfigError,
        build_segmentor,
        load_segmentor,
    )
    from sam_moelora_ros.onnx_format import ExportError

    started = time.perf_counter()
    try:
        if args.preset:
            overrides = {"image_size": args.image_size} if args.image_size else {}
            cfg = ModelConfig.preset(args.preset).replace(**overrides)
            torch.manual_seed(args.seed)
            model = build_segmentor(cfg)
            source = weights_source(model, f"preset {args.preset} seed {args.seed}")
        else:
            if args.image_size:
                raise ExportError("--image-size applies to --preset; an adapter fixes its size")
            adapter = args.adapter or default_adapter_path()
            if adapter is None:
                raise ExportError("no --adapter given and this install ships no default model")
            model = load_segmentor(adapter, args.sam_checkpoint or None, strict=True)
            source = adapter_source(adapter)
        manifest = export_onnx(
            model,
            args.out,
            source,
            exporter=args.exporter,
            share_weights=not args.inline_weights,
            verify=not args.no_verify,
            camera_hw=args.camera_hw,
        )
    except (ExportError, CheckpointError, ModelConfigError, OSError) as exc:
        print(f"export: error: {exc}", file=sys.stderr)
        return 2
    cfg = model.cfg
    print(
        f"exported {source.label} ({cfg.name}, {cfg.image_size} px, K={cfg.num_classes}, "
        f"modalities {','.join(cfg.modalities)}) to {manifest.root} as ONNX opset "
        f"{manifest.opset} ({args.exporter}) in {time.perf_counter() - started:.0f} s"
    )
    for name in sorted(manifest.files):
        size = (manifest.root / name).stat().st_size / 2**20
        print(f"  {name:<24s} {size:8.1f} MiB")
    print(
        "verified against torch on CPU (all modalities, and without the first)"
        if not args.no_verify
        else "not verified (--no-verify)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

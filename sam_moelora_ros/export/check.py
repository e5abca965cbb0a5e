"""Command line: check an exported model against the torch model it came from.

``python -m sam_moelora_ros.export.check --model DIR [--adapter A] [--sam-checkpoint C]``

Runs both through the Segmenter (numpy frames in, labels out) on seeded synthetic frames, with
every non-empty subset of the model's modalities, and prints per subset the share of pixels whose
labels agree, the largest confidence difference and the largest router-weight difference.
``--adapter`` must be the file the export was made from (its sha256 is checked against the
manifest); an export of a preset is rebuilt from the preset and seed its manifest names.
Exit status: 0 when the labels agree on at least ``--min-agreement`` percent of the pixels of
every subset, 1 when not, 2 on bad arguments. For a whole recording, run ``replay_eval`` with
``--backend torch`` and ``--backend onnxruntime`` and compare the two reports (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from sam_moelora_ros.onnx_format import ExportError
from sam_moelora_ros.onnx_format.manifest import Manifest


def synthetic_frames(
    modalities: Sequence[str], count: int, size_hw: tuple[int, int], seed: int = 0
) -> list[dict[str, np.ndarray]]:
    """``count`` frames of smooth random images (blocks of 16 px plus a little noise)."""
    rng = np.random.default_rng(seed)
    h, w = size_hw
    frames = []
    for _ in range(count):
        frame = {}
        for m in modalities:
            coarse = rng.integers(0, 256, (-(-h // 16), -(-w // 16), 3)).astype(np.int16)
            image = np.kron(coarse, np.ones((16, 16, 1), np.int16))[:h, :w]
            image = image + rng.integers(-8, 9, image.shape)
            frame[m] = np.clip(image, 0, 255).astype(np.uint8)
        frames.append(frame)
    return frames


def compare(
    reference: Any, candidate: Any, frames: Sequence[dict[str, np.ndarray]]
) -> list[dict[str, Any]]:
    """Per non-empty modality subset: label agreement (%), max |confidence|, max |router| diff."""
    modalities = tuple(reference.modalities)
    rows = []
    for k in range(len(modalities), 0, -1):
        for subset in itertools.combinations(modalities, k):
            same = total = 0
            conf = weight = 0.0
            for frame in frames:
                images = {m: frame[m] for m in subset}
                a, b = reference(images), candidate(images)
                same += int((a.labels == b.labels).sum())
                total += a.labels.size
                conf = max(conf, float(np.abs(a.confidence - b.confidence).max()))
                weight = max(
                    weight,
                    max(abs(a.router_weights[m] - b.router_weights[m]) for m in subset),
                )
            rows.append(
                {
                    "sensors": "+".join(subset),
                    "agreement_%": 100.0 * same / total,
                    "max_conf_diff": conf,
                    "max_router_diff": weight,
                }
            )
    return rows


def _size(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH, e.g. 480x640; got {text!r}")
    return int(match.group(1)), int(match.group(2))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sam_moelora_ros.export.check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="the exported folder")
    p.add_argument("--adapter", default="", help="the adapter it was exported from")
    p.add_argument("--sam-checkpoint", default="", help="official SAM weights, if needed")
    p.add_argument("--providers", default="CPUExecutionProvider", help="comma-separated")
    p.add_argument("--frames", type=int, default=2, help="frames per modality subset")
    p.add_argument(
        "--size",
        type=_size,
        default=None,
        help="frame size HxW (default 480x640; a content-only export: its content box)",
    )
    p.add_argument("--min-agreement", type=float, default=99.9, help="percent of pixels")
    args = p.parse_args(argv)

    import torch

    from sam_moelora_ros.evaluation import format_table
    from sam_moelora_ros.inference.device import SegmenterError
    from sam_moelora_ros.inference.onnx_backend import OnnxRuntimeSegmenter
    from sam_moelora_ros.inference.segmenter import Segmenter, default_adapter_path
    from sam_moelora_ros.model import CheckpointError, ModelConfig, build_segmentor, load_segmentor
    from sam_moelora_ros.onnx_format.manifest import sha256_file

    try:
        manifest = Manifest.read(args.model)
        preset = re.fullmatch(r"preset (\S+) seed (\d+)", manifest.source)
        if preset and not args.adapter:
            torch.manual_seed(int(preset.group(2)))
            model = build_segmentor(ModelConfig.from_dict(manifest.config))
        else:
            adapter = args.adapter or default_adapter_path()
            if adapter is None:
                raise ExportError("pass --adapter: the file the model was exported from")
            if sha256_file(adapter) != manifest.source_sha256:
                raise ExportError(
                    f"{adapter} is not the adapter {manifest.root} was exported from (that was "
                    f"{manifest.source}, sha256 {manifest.source_sha256[:12]}...); pass that file"
                )
            model = load_segmentor(adapter, args.sam_checkpoint or None)
        reference = Segmenter(model, device="cpu")
        candidate = OnnxRuntimeSegmenter(manifest, providers=args.providers.split(","))
    except (ExportError, CheckpointError, SegmenterError, OSError) as exc:
        print(f"check: error: {exc}", file=sys.stderr)
        return 2
    # A content-only export takes one camera's box; a frame of exactly that size has that box.
    square = manifest.input_hw == (manifest.image_size, manifest.image_size)
    size = args.size or ((480, 640) if square else manifest.input_hw)
    frames = synthetic_frames(manifest.modalities, args.frames, size)
    rows = compare(reference, candidate, frames)
    print(f"{manifest.root} ({candidate.describe()}) vs torch on {args.frames} frame(s) per subset")
    print(format_table(rows, float_format="{:.4g}"))
    worst = min(row["agreement_%"] for row in rows)
    ok = worst >= args.min_agreement
    verdict = "OK" if ok else "FAILED"
    print(f"{verdict}: worst label agreement {worst:.3f} % (required {args.min_agreement} %)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

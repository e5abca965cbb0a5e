"""ONNX Runtime backend against torch eager on the CPU: the Segmenter on a 640x480 frame.

Run through ``bench/run.py`` (``make bench``; ``--only onnx`` for this module alone) or alone:
``.venv/bin/python bench/bench_onnx.py [--quick] [--threads N]``. For each model (``tiny`` at its
256 px; ``vit_b`` at 512 px, skipped by ``--quick``; random weights with non-zero LoRA B, all four
modalities) the model is exported to a temporary folder (``export_onnx``, merged LoRA), then the
torch Segmenter and the ONNX Runtime Segmenter segment the same 640x480 four-modality frame in
turn, round after round (``common.interleaved``). Rows:

* ``onnxruntime speed-up over torch eager`` = torch time / onnxruntime time, numpy frame in,
  labels out (target >= 1.5); the model forward alone (normalised tensors in, logits out) is
  kept in the JSON;
* ``onnxruntime, 1 of 4 modalities / 4`` (tiny): what a missing modality saves;
* the share of pixels whose labels agree between the two (info; tests require >= 99.9 %).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_model import MODALITIES, H, W, build_model, network_frame
from common import Ratio, interleaved, min_ms, paired_ratio, summary

from sam_moelora_ros.export.onnx_export import export_onnx, weights_source
from sam_moelora_ros.inference.onnx_backend import DEFAULT_PROVIDERS, OnnxRuntimeSegmenter
from sam_moelora_ros.inference.segmenter import Segmenter

TARGET = 1.5
"""Required speed-up of onnxruntime over torch eager (issue "Deployment backends")."""


def _compare(
    preset: str,
    image_size: int | None,
    rounds: int,
    threads: int,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    providers: Sequence[str] = DEFAULT_PROVIDERS,
    ort_dtype: str = "float32",
) -> dict[str, Any]:
    """Export ``preset``, time both Segmenters and both forwards; the figures of one model.

    ``device``/``dtype``: the torch Segmenter's (the CPU in float32 for ``make bench``; the GPU
    check compares bf16 on CUDA); ``providers``/``ort_dtype``: the ONNX Runtime Segmenter's
    (``float16``: TensorRT). Each side is warmed up on the four-modality set first, which with
    TensorRT builds its engines (``warmup_s``).
    """
    model = build_model(preset, image_size)
    size = model.cfg.image_size
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else None
    with tempfile.TemporaryDirectory(prefix="bench_onnx_") as tmp:
        start = time.perf_counter()
        export_onnx(model, tmp, weights_source(model, f"bench {preset}"), verify=False)
        export_s = time.perf_counter() - start
        torch_seg = Segmenter(model, device=device, dtype=dtype)
        onnx_seg = OnnxRuntimeSegmenter(
            tmp,
            providers=providers,
            threads=threads,
            verify_files=False,
            dtype=ort_dtype,
            device=device if device.startswith("cuda:") else "auto",
        )
        warmup_s = {
            "torch": torch_seg.warmup((H, W), modality_sets=[MODALITIES]),
            "onnxruntime": onnx_seg.warmup((H, W), modality_sets=[MODALITIES]),
        }
        frame = network_frame()
        _, prepared, _ = torch_seg._prepare(frame, (H, W))
        _, ort_inputs, _ = onnx_seg._prepare(frame, (H, W))  # on the CPU: ORT moves them
        rgb_only = {"rgb": ort_inputs["rgb"]}

        def forward(seg: Segmenter, net: Any, inputs: dict[str, torch.Tensor]) -> Any:
            def run() -> object:
                with torch.inference_mode(), seg._autocast():
                    return net(inputs)

            return run

        variants = {
            "torch": lambda: torch_seg(frame, (H, W)),
            "onnxruntime": lambda: onnx_seg(frame, (H, W)),
            "torch_forward": forward(torch_seg, torch_seg.model, prepared),
            "onnxruntime_forward": forward(onnx_seg, onnx_seg.runtime, ort_inputs),
        }
        if preset == "tiny":
            variants["onnxruntime_forward_rgb"] = forward(onnx_seg, onnx_seg.runtime, rgb_only)
        times = interleaved(variants, rounds, sync=sync)
        want, got = torch_seg(frame, (H, W)), onnx_seg(frame, (H, W))
    return {
        "preset": preset,
        "image_size": size,
        "rounds": rounds,
        "export_s": export_s,
        "warmup_s": warmup_s,
        "torch": torch_seg.describe(),
        "onnxruntime": onnx_seg.describe(),
        "ms": summary(times),
        "times": times,
        "label_agreement": float((want.labels == got.labels).mean()),
    }


def run_onnx(quick: bool = False, threads: int = 0) -> tuple[list[Ratio], dict[str, Any]]:
    """The rows of the module docstring; ``threads``: ONNX Runtime intra-op threads (0: all)."""
    threads = threads or os.cpu_count() or 1
    models = [("tiny", None, 3 if quick else 10)]
    if not quick:
        models.append(("vit_b", 512, 3))
    ratios: list[Ratio] = []
    figures: dict[str, Any] = {"threads": threads, "modalities": list(MODALITIES)}
    for preset, image_size, rounds in models:
        print(f"[bench] onnxruntime vs torch: {preset} ...", flush=True)
        result = _compare(preset, image_size, rounds, threads)
        times = result.pop("times")
        figures[preset] = result
        size = result["image_size"]
        value = paired_ratio(times, "torch", "onnxruntime")
        forward = paired_ratio(times, "torch_forward", "onnxruntime_forward")
        ratios.append(
            Ratio(
                f"onnxruntime speed-up over torch eager, {preset} {size} px, 4 mod.",
                value,
                f">= {TARGET}",
                value >= TARGET,
                f"Segmenter 640x480: torch {min_ms(times['torch']):.0f} ms, onnxruntime "
                f"{min_ms(times['onnxruntime']):.0f} ms; forward alone x{forward:.2f}",
                figures={"forward_speedup": forward},
            )
        )
        if "onnxruntime_forward_rgb" in times:
            value = paired_ratio(times, "onnxruntime_forward_rgb", "onnxruntime_forward")
            ratios.append(
                Ratio(
                    f"onnxruntime forward, 1 of 4 modalities / 4 ({preset})",
                    value,
                    "(info)",
                    None,
                    "a missing modality runs no encoder graph",
                )
            )
        agreement = 100 * result["label_agreement"]
        ratios.append(
            Ratio(
                f"onnxruntime = torch labels, % of pixels ({preset})",
                agreement,
                "(info)",
                None,
                f"export took {result['export_s']:.0f} s",
            )
        )
    return ratios, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny only, fewer rounds")
    parser.add_argument("--threads", type=int, default=0, help="torch and ORT threads (0: all)")
    args = parser.parse_args()
    from common import machine, print_table, write_json

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    ratios, figures = run_onnx(args.quick, args.threads)
    print_table(ratios)
    print(write_json(f"onnx-cpu{'-quick' if args.quick else ''}", machine(), ratios, figures))


if __name__ == "__main__":
    main()

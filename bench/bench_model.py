"""Model-side benchmarks: modality count, merged LoRA vs frozen SAM, preprocessing, GPU figures.

Run through ``bench/run.py`` (``make bench``) or alone: ``.venv/bin/python bench/bench_model.py
[--quick] [--device cuda]``. Every CPU figure is a ratio of two variants timed in turn in the same
rounds (``common.interleaved``); the model is the ``tiny`` preset (256 px, 25 classes, all four
modalities, random weights: speed does not depend on their values), LoRA merged as at run time.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Ratio, interleaved, min_ms, paired_ratio, percentile, summary, timed

from sam_moelora_ros.inference.segmenter import Segmenter
from sam_moelora_ros.model import ModelConfig, MoELoRASegmentor
from sam_moelora_ros.sensors import (
    events_to_representation,
    lidar_to_network_image,
    project_points,
    read_points_numpy,
)
from sam_moelora_ros.sensors.representation import depth_to_network_image

MODALITIES = ("rgb", "depth", "event", "lidar")
H, W = 480, 640
K_CAM = np.array([[525.0, 0, 320], [0, 525.0, 240], [0, 0, 1]])


def build_model(preset: str = "tiny", image_size: int | None = None) -> MoELoRASegmentor:
    """A random model of ``preset`` with non-zero LoRA B (so merging folds something in)."""
    torch.manual_seed(0)
    cfg = ModelConfig.preset(preset, num_classes=25, modalities=MODALITIES)
    if image_size is not None:
        cfg = cfg.replace(image_size=image_size)
    model = MoELoRASegmentor(cfg)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)
    return model.eval()


def frozen_copy(model: MoELoRASegmentor) -> MoELoRASegmentor:
    """The same network with LoRA removed: each block's qkv is SAM's plain frozen ``Linear``."""
    frozen = copy.deepcopy(model)
    for block in frozen.encoder.vit.blocks:
        block.attn.qkv = block.attn.qkv.base_layer
    return frozen


def lidar_cloud(n: int = 130_000, seed: int = 0, msg_type: Any = None) -> Any:
    """A Velodyne-like PointCloud2 (x y z intensity ring, 32-byte points) in the camera frame."""
    from sam_moelora_ros.sensors import FLOAT32, UINT16, create_cloud, make_fields

    rng = np.random.default_rng(seed)
    fields = make_fields(
        [("x", FLOAT32), ("y", FLOAT32), ("z", FLOAT32), ("intensity", FLOAT32), ("ring", UINT16)],
        msg_type=msg_type,
    )
    dtype = [("x", "f4"), ("y", "f4"), ("z", "f4"), ("intensity", "f4"), ("ring", "u2")]
    pts = np.zeros(n, dtype=dtype)
    az, r = rng.uniform(-np.pi, np.pi, n), rng.uniform(2, 60, n)
    # identity extrinsic: z forward (optical frame); half the points are behind the camera
    pts["x"], pts["z"] = r * np.sin(az), r * np.cos(az)
    pts["y"] = rng.uniform(-2, 2, n)
    pts["intensity"] = rng.uniform(0, 255, n)
    pts["ring"] = rng.integers(0, 64, n)
    return create_cloud(None, fields, pts, msg_type=msg_type, point_step=32)


def events(n: int = 1_000_000, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, W, n).astype(np.uint16)
    y = rng.integers(0, H, n).astype(np.uint16)
    t = np.sort(rng.integers(0, 50_000_000, n)).astype(np.int64)  # 50 ms in ns
    p = rng.integers(0, 2, n).astype(np.int8)
    return x, y, t, p


def network_frame(seed: int = 0) -> dict[str, np.ndarray]:
    """A 640x480 frame of all four network images, as the node builds them."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.5, 20, (H, W)).astype(np.float32)
    xyz = read_points_numpy(lidar_cloud(), ["x", "y", "z"], skip_nans=True)
    sparse, _ = project_points(xyz, K_CAM, np.eye(4), (H, W))
    return {
        "rgb": rng.integers(0, 256, (H, W, 3), dtype=np.uint8),
        "depth": depth_to_network_image(depth),
        "event": events_to_representation(*events(200_000), (H, W), kind="frame"),
        "lidar": lidar_to_network_image(sparse),
    }


def run_cpu(quick: bool = False) -> tuple[list[Ratio], dict[str, Any]]:
    """All CPU ratios of the issue except the node's (``bench_node.py``)."""
    rounds = 3 if quick else 10
    model = build_model()
    model.merge_lora()
    frozen = frozen_copy(model)
    size = model.cfg.image_size
    torch.manual_seed(1)
    inputs = {m: torch.randn(1, 3, size, size) for m in MODALITIES}
    figures: dict[str, Any] = {"preset": "tiny", "image_size": size, "rounds": rounds}
    ratios: list[Ratio] = []

    def forward(net: MoELoRASegmentor, names: tuple[str, ...], encoder_only: bool = False) -> Any:
        batch = {n: inputs[n] for n in names}

        def run() -> object:
            with torch.inference_mode():
                return net.encoder(batch, names) if encoder_only else net(batch)

        return run

    # --- cost with k of 4 modalities / cost with 4 (the canonical prefix subsets)
    for scope, enc in (("model", False), ("encoder", True)):
        variants = {f"k{k}": forward(model, MODALITIES[:k], enc) for k in (1, 2, 3, 4)}
        times = interleaved(variants, rounds)
        figures[f"{scope}_forward_ms_by_k"] = summary(times)
        for k in (1, 2, 3):
            value = paired_ratio(times, f"k{k}", "k4")
            ratios.append(
                Ratio(
                    f"{scope} forward, {k} of 4 modalities / 4",
                    value,
                    f"~{k / 4:.2f}",
                    abs(value - k / 4) <= 0.10,
                    f"4 modalities {min_ms(times['k4']):.0f} ms (tiny, 256 px, batch 1)",
                )
            )

    # --- merged LoRA / frozen SAM, one modality
    variants = {
        "merged": forward(model, ("rgb",)),
        "frozen": forward(frozen, ("rgb",)),
        "merged_enc": forward(model, ("rgb",), True),
        "frozen_enc": forward(frozen, ("rgb",), True),
    }
    times = interleaved(variants, rounds + 2)
    figures["merged_vs_frozen_ms"] = summary(times)
    for num, den, what in (("merged", "frozen", "model"), ("merged_enc", "frozen_enc", "encoder")):
        value = paired_ratio(times, num, den)
        ratios.append(
            Ratio(
                f"merged-LoRA / frozen-SAM {what} forward, rgb only",
                value,
                "<= 1.05",
                value <= 1.05,
                f"frozen {min_ms(times[den]):.0f} ms",
            )
        )

    # --- preprocessing against one tiny forward (all four modalities, batch 1)
    ev = events()
    cloud = lidar_cloud()

    def cloud_to_depth() -> object:
        xyz = read_points_numpy(cloud, ["x", "y", "z"], skip_nans=True)
        sparse, _ = project_points(xyz, K_CAM, np.eye(4), (H, W))
        return lidar_to_network_image(sparse)

    variants = {
        "events": lambda: events_to_representation(*ev, (H, W), kind="frame"),
        "voxel": lambda: events_to_representation(*ev, (H, W), kind="voxel"),
        "cloud": cloud_to_depth,
        "forward4": forward(model, MODALITIES),
    }
    times = interleaved(variants, rounds)
    figures["preprocessing_ms"] = summary(times)
    for key, name in (
        ("events", "1 M events -> frame 640x480"),
        ("voxel", "1 M events -> voxel grid 640x480"),
        ("cloud", "130 k-point cloud -> projected depth image"),
    ):
        value = paired_ratio(times, key, "forward4")
        ratios.append(
            Ratio(
                f"{name} / tiny forward",
                value,
                "< 0.10",
                value < 0.10,
                f"{min_ms(times[key]):.1f} ms vs {min_ms(times['forward4']):.0f} ms",
            )
        )

    # --- the Segmenter at 640x480 (numpy in, labels out): where its time goes
    seg = Segmenter(build_model(), device="cpu")
    frame = network_frame()
    _, prepared, box = seg._prepare(frame, (H, W))
    with torch.inference_mode():
        logits = seg.model(prepared)

    def with_extras() -> object:
        with torch.inference_mode():
            return seg.model(prepared, return_extras=True)

    def without_extras() -> object:
        with torch.inference_mode():
            return seg._run(prepared)

    def postprocess() -> object:
        with torch.inference_mode():
            return seg._postprocess_batch(logits, [box])

    variants = {
        "segmenter": lambda: seg(frame, (H, W)),
        "prepare": lambda: seg._prepare(frame, (H, W)),
        "forward": without_extras,
        "forward_extras": with_extras,
        "postprocess": postprocess,
    }
    times = interleaved(variants, rounds)
    figures["segmenter_640x480_ms"] = summary(times)
    value = paired_ratio(times, "forward", "forward_extras")
    ratios.append(
        Ratio(
            "forward via router hooks / forward with extras",
            value,
            "(info)",
            None,
            "what skipping the aux head saves per frame",
        )
    )
    value = paired_ratio(times, "segmenter", "forward")
    ratios.append(
        Ratio(
            "Segmenter 640x480 (numpy->labels) / model forward",
            value,
            "(info)",
            None,
            f"prepare {min_ms(times['prepare']):.1f} ms, "
            f"postprocess {min_ms(times['postprocess']):.1f} ms",
        )
    )
    return ratios, figures


def model_figures(
    preset: str = "vit_b",
    image_size: int | None = 512,
    device: str = "cuda",
    dtype: str = "bfloat16",
    compile_mode: str = "none",
    batch_sizes: Sequence[int] = (8, 16, 32),
    iters: int = 200,
) -> dict[str, Any]:
    """One model's serving figures, 4 modalities of a 640x480 frame: what ``run_cuda`` reports.

    The forward (``Segmenter._run``, autocast to ``dtype``) at batch 1: p50/p99 over ``iters``
    calls; at each of ``batch_sizes``: frames/s (median call); peak memory of each (CUDA only:
    ``None`` on the CPU); the Segmenter end to end (numpy frame in, labels out) p50; and the
    seconds the warm-up and each batch size's first call took (``torch.compile`` compiles there).
    Timing: CUDA events on CUDA, ``perf_counter`` on the CPU (where this is a rehearsal of the
    same code, not a figure to quote). ``compile_effective`` is the mode that ran: ``none`` when
    compiling failed and the Segmenter fell back to eager.
    """
    dev = torch.device(device)
    cuda = dev.type == "cuda"
    seg = Segmenter(build_model(preset, image_size), device=dev, dtype=dtype, compile=compile_mode)
    figures: dict[str, Any] = {
        "preset": preset,
        "image_size": seg.image_size,
        "dtype": dtype,
        "device": torch.cuda.get_device_name(dev) if cuda else "cpu",
        "compile": compile_mode,
        "iters": iters,
    }

    def peak_mib() -> float | None:
        return torch.cuda.max_memory_allocated(dev) / 2**20 if cuda else None

    def reset_peak() -> None:
        if cuda:
            torch.cuda.reset_peak_memory_stats(dev)

    figures["warmup_s"] = seg.warmup((H, W), modality_sets=[seg.modalities])
    frame = network_frame()
    _, prepared, _ = seg._prepare(frame, (H, W))

    def latency(batch: dict[str, torch.Tensor], n: int, key: str) -> list[float]:
        out = []
        with torch.inference_mode(), seg._autocast():
            first = time.perf_counter()
            seg._run(batch)  # a new shape: torch.compile compiles (or records a CUDA graph) here
            if cuda:
                torch.cuda.synchronize(dev)
            figures[f"{key}_first_call_s"] = time.perf_counter() - first
            for _ in range(min(5, n)):
                seg._run(batch)
            if not cuda:
                for _ in range(n):
                    out.append(timed(lambda: seg._run(batch)))
                return out
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            for _ in range(n):
                start.record()
                seg._run(batch)
                end.record()
                end.synchronize()
                out.append(start.elapsed_time(end) / 1e3)
        return out

    reset_peak()
    single = latency(prepared, iters, "batch1")
    figures["batch1_ms"] = {
        "p50": 1e3 * percentile(single, 50),
        "p99": 1e3 * percentile(single, 99),
    }
    figures["batch1_peak_mib"] = peak_mib()
    for batch_size in batch_sizes:
        big = {n: t.expand(batch_size, -1, -1, -1).contiguous() for n, t in prepared.items()}
        reset_peak()
        times = latency(big, max(2, iters // 10), f"batch{batch_size}")
        figures[f"batch{batch_size}_frames_per_s"] = batch_size / statistics.median(times)
        figures[f"batch{batch_size}_peak_mib"] = peak_mib()
        del big
    e2e = [seg(frame, (H, W)).inference_s for _ in range(max(2, iters // 2))]
    figures["segmenter_640x480_ms_p50"] = 1e3 * percentile(e2e, 50)
    figures["compile_effective"] = seg.compile_mode
    return figures


def run_cuda(quick: bool = False, compile_mode: str = "none") -> tuple[list[Ratio], dict[str, Any]]:
    """vit_b, 4 modalities, 512x512, bf16: latency p50/p99, batched throughput, peak memory."""
    if not torch.cuda.is_available():
        message = "no CUDA device on this machine: GPU figures (vit_b, bf16) skipped"
        print(f"[bench] {message}")
        return [Ratio("GPU vit_b figures", None, "p50<=10ms", None, message)], {"skipped": message}
    figures = model_figures("vit_b", 512, "cuda", "bfloat16", compile_mode, (8, 16, 32),
                            20 if quick else 200)  # fmt: skip
    p50 = figures["batch1_ms"]["p50"]
    best = max(figures[f"batch{b}_frames_per_s"] for b in (8, 16, 32))
    return [
        Ratio("GPU vit_b 512 bf16 batch-1 latency p50 (ms)", p50, "<= 10", p50 <= 10),
        Ratio("GPU vit_b 512 bf16 batched frames/s", best, ">= 200", best >= 200),
    ], figures


def run_backbones(quick: bool = False, device: str = "cpu") -> tuple[list[Ratio], dict[str, Any]]:
    """SAM 2 Hiera-B+ against SAM 1 ViT-B: one frame of four modalities at 512 px (issue 9).

    Both models are random (no weights can be downloaded here): the cost does not depend on the
    weights. Each forward is the whole segmentor, merged LoRA, batch 1; bf16 autocast on CUDA.
    """
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        message = "no CUDA device: Hiera-B+ vs ViT-B on the GPU skipped"
        return [Ratio("hiera_b+ / vit_b forward (GPU)", None, "(info)", None, message)], {}
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    torch.manual_seed(2)
    inputs = {m: torch.randn(1, 3, 512, 512, device=dev) for m in MODALITIES}
    nets = {}
    for preset in ("hiera_b+", "vit_b"):
        net = build_model(preset, image_size=512).to(dev)
        net.merge_lora()
        nets[preset] = net

    def forward(preset: str) -> Callable[[], object]:
        def run() -> object:
            autocast = torch.autocast("cuda", torch.bfloat16) if sync else contextlib.nullcontext()
            with torch.inference_mode(), autocast:
                return nets[preset](inputs)

        return run

    rounds = (1 if quick else 2) if dev.type == "cpu" else (10 if quick else 50)
    times = interleaved({p: forward(p) for p in nets}, rounds, warmup=0 if quick else 1, sync=sync)
    value = paired_ratio(times, "hiera_b+", "vit_b")
    figures = {"device": str(dev), "image_size": 512, "ms": summary(times)}
    detail = (
        f"hiera_b+ {min_ms(times['hiera_b+']):.0f} ms, vit_b {min_ms(times['vit_b']):.0f} ms "
        f"({dev.type}, 4 modalities, 512 px, batch 1)"
    )
    name = "hiera_b+ / vit_b forward, 4 modalities, 512 px"
    return [Ratio(name, value, "(info)", None, detail)], figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (fewer rounds)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--compile", default="none", help="Segmenter compile mode (cuda mode)")
    args = parser.parse_args()
    from common import machine, print_table, write_json

    if args.device == "cuda":
        ratios, figures = run_cuda(args.quick, args.compile)
    else:
        ratios, figures = run_cpu(args.quick)
    print_table(ratios)
    print(write_json(f"model-{args.device}", machine(), ratios, figures))


if __name__ == "__main__":
    main()

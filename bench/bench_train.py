"""Training-step benchmark: the shipped recipe against the new one, and how much of the CPU a
step uses (``make bench``'s training row).

Run through ``bench/run.py`` or alone: ``.venv/bin/python bench/bench_train.py [--quick]
[--data DELIVER_ROOT]``. Both recipes are the training configs themselves
(``training/configs/synthetic_tiny.yaml``, the shipped default model's, and
``synthetic_tiny_v2.yaml``), each with its own :class:`~training.loop.Trainer`, timed step by
step in turn in the same rounds (``common.interleaved``; the ratio of the fastest rounds). A step
includes fetching its batch (decode + augmentation, in-process). Without ``--data`` the frames
are random 384 x 192 images held in memory (so the shipped recipe's PNG decoding is not counted:
the ratio is, if anything, understated); the encoder is the ``tiny`` preset with random weights
(speed does not depend on them).

Figures: seconds per step of each recipe, the step's GFLOP (counted by
``torch.utils.flop_counter`` over one step, forward and backward) and GFLOP/s, against a
matmul peak measured in the same run (float32 1024^3 ``torch.mm``, and bfloat16 where the CPU
computes it natively): the share of the peak a step reaches.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, Ratio, interleaved, paired_ratio, summary

from sam_moelora_ros.datasets.common import SegmentationDataset
from sam_moelora_ros.training.builders import cpu_has_bf16
from sam_moelora_ros.training.config import TrainConfig
from sam_moelora_ros.training.data import build_datasets
from sam_moelora_ros.training.loop import Trainer

CONFIGS = {
    "shipped": REPO / "training" / "configs" / "synthetic_tiny.yaml",
    "v2": REPO / "training" / "configs" / "synthetic_tiny_v2.yaml",
}
TARGET = 3.0
"""Steps per second of the new recipe over the shipped one (issue 25)."""


class MemoryFrames(SegmentationDataset):
    """``count`` random 384 x 192 frames of every modality, with blocky labels, in memory."""

    num_classes = 25
    class_names = tuple(str(i) for i in range(25))

    def __init__(self, modalities: tuple[str, ...], transform: Any, count: int = 32) -> None:
        super().__init__(modalities, transform)
        rng = np.random.default_rng(0)
        self.frames = [
            {
                "images": {m: rng.integers(0, 256, (192, 384, 3), np.uint8) for m in modalities},
                "label": np.kron(rng.integers(0, 25, (12, 24)), np.ones((16, 16))).astype(np.uint8),
                "condition": "sun",
                "case": "clean",
                "name": f"mem{i}",
            }
            for i in range(count)
        ]

    def load(self, index: int) -> dict[str, Any]:
        frame = self.frames[index]
        return {**frame, "images": dict(frame["images"])}


def recipe(name: str, data: str | None, out: Path) -> Trainer:
    overrides = [
        "model.sam_checkpoint=null",
        "data.val_split=null",
        "data.num_workers=0",
        "run.progress=false",
        "run.log_every=0",
        f"run.out={out / name}",
    ]
    if data:
        overrides.append(f"data.root={data}")
    cfg = TrainConfig.load(CONFIGS[name], overrides)
    if data:
        train_set, _ = build_datasets(cfg)
    else:
        template, _ = build_datasets_memory(cfg)
        train_set = template
    return Trainer(cfg, train_set, None)


def build_datasets_memory(cfg: TrainConfig) -> tuple[SegmentationDataset, None]:
    """The config's own training transform over :class:`MemoryFrames`."""
    from sam_moelora_ros.datasets.augment import TrainAugment
    from sam_moelora_ros.model.preprocess import content_multiple

    model_cfg = cfg.model_config()
    transform = TrainAugment(
        model_cfg.image_size,
        scale_range=cfg.data.scale_range,
        content_multiple=content_multiple(model_cfg.input_geometry, model_cfg.patch_size),
        vertical=cfg.data.crop_vertical,
    )
    return MemoryFrames(tuple(model_cfg.modalities), transform), None


def stepper(trainer: Trainer, cpu_s: list[float]) -> Any:
    """One optimizer step of ``trainer`` on its next batch (the loader restarted when dry).

    Each step's process CPU time is appended to ``cpu_s``: on a machine shared with other
    work the wall time of a step mostly measures the wait for a core, its CPU time does not.
    """
    state: dict[str, Iterator[Any]] = {}

    def next_batch() -> Any:
        try:
            return next(state["it"])
        except (KeyError, StopIteration):
            state["it"] = iter(trainer.loader)
            return next(state["it"])

    def step() -> object:
        start = time.process_time()
        out = trainer.train_step([next_batch()])
        cpu_s.append(time.process_time() - start)
        print(f"[bench_train] {trainer.cfg.run.out}: step {len(cpu_s)}", flush=True)
        return out

    return step


def matmul_peak(dtype: torch.dtype, n: int = 1024, repeats: int = 5) -> float:
    """GFLOP/s of the fastest of ``repeats`` ``n^3`` matmuls (2 n^3 FLOP each)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def step_flops(step: Any) -> float:
    """FLOP of one step (forward + backward), as ``torch.utils.flop_counter`` counts them."""
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return float(counter.get_total_flops())


def run_train(quick: bool = False, data: str | None = None) -> tuple[list[Ratio], dict[str, Any]]:
    rounds = 3 if quick else 8
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {name: recipe(name, data, Path(tmp)) for name in CONFIGS}
        cpu: dict[str, list[float]] = {name: [] for name in CONFIGS}
        steps = {name: stepper(t, cpu[name]) for name, t in trainers.items()}
        flops = {name: step_flops(s) for name, s in steps.items()}
        times = interleaved(steps, rounds, warmup=1)
        cpu = {name: values[2:] for name, values in cpu.items()}  # the timed rounds only
    peak = {"float32": matmul_peak(torch.float32)}
    if cpu_has_bf16():
        peak["bfloat16"] = matmul_peak(torch.bfloat16)
    figures: dict[str, Any] = {"rounds": rounds, "data": data or "memory", "matmul_gflops": peak}
    figures["steps"] = summary(times)
    for name, t in trainers.items():
        best = min(times[name])
        dtype = "bfloat16" if t.amp_dtype == torch.bfloat16 else "float32"
        figures[name] = {
            "s_per_step": best,
            "cpu_s_per_step": min(cpu[name]),
            "gflop_per_step": flops[name] / 1e9,
            "gflops": flops[name] / 1e9 / best,
            "autocast": dtype,
            "share_of_matmul_peak": flops[name] / 1e9 / best / peak.get(dtype, peak["float32"]),
        }
    speedup = paired_ratio(times, "shipped", "v2")
    figures["speedup_cpu_time"] = min(cpu["shipped"]) / min(cpu["v2"])
    detail = (
        f"shipped {figures['shipped']['s_per_step']:.3f} s/step "
        f"({figures['shipped']['gflops']:.1f} GFLOP/s), v2 {figures['v2']['s_per_step']:.3f} "
        f"s/step ({figures['v2']['gflops']:.1f} GFLOP/s); matmul peak {peak['float32']:.0f} "
        f"GFLOP/s float32; CPU-time ratio {figures['speedup_cpu_time']:.2f}"
    )
    ratio = Ratio("training steps/s, v2 recipe / shipped", speedup, f">= {TARGET}", None, detail)
    ratio.met = speedup >= TARGET
    return [ratio], figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data", help="a DELIVER-layout root (default: frames in memory)")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    ratios, figures = run_train(args.quick, args.data)
    for r in ratios:
        print(f"{r.name}: {r.value:.2f} (target {r.target}) {r.detail}")
    for name in CONFIGS:
        print(name, {k: v for k, v in figures[name].items()})
    print("matmul peak GFLOP/s:", figures["matmul_gflops"])


if __name__ == "__main__":
    main()

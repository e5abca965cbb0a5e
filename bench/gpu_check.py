"""The GPU check: every CUDA path of the package and its GPU figures, in one device call.

Run through ``bench/gpu_check.sh`` (which installs the carried wheels first; docs/deploy.md, "GPU
check"): ``bash bench/gpu_check.sh [--device cuda|cpu] [--quick] [--budget-s S]``. Sections, in
this order, each timed and kept in one JSON (``bench/results/gpu-check-<card>-<UTC time>.json``,
also copied to ``$OUT`` when that is set, rewritten after every section so a run cut short keeps
what it measured):

1. ``environment``: the card (``torch.cuda.get_device_name``), CUDA/cuDNN, torch, ONNX Runtime
   and its providers, and where the carried packages were imported from.
2. ``cuda_tests``: ``pytest test/cuda`` (pinned uploads, bf16/fp16 agreement, compiled-graph
   replay across sensor subsets), in a subprocess; the JSON keeps every test's outcome.
3. ``model``: ``bench_model.model_figures`` (what ``bench/run.py --device cuda`` reports) for
   ``tiny``, ``vit_b`` and ``hiera_b+`` at 512 px, 4 modalities, bf16, eager: forward p50/p99 at
   batch 1, frames/s at batch 8 and 16, peak memory, the Segmenter end to end.
4. ``train``: one optimizer step of ``hiera_b+`` at 1024 px, batch 2, bf16 (``gpu_check_train``).
5. ``onnx``: ONNX Runtime's CUDA provider (and TensorRT fp16 where this onnxruntime has it) against
   torch bf16 on ``vit_b`` at 512 px (``bench_onnx._compare``); without the provider, why not.
6. ``compile``: section 3 again with ``compile="reduce-overhead"`` (CUDA graphs), the slowest
   (each batch size compiles once), so last.

Every section runs inside ``--budget-s`` (default 330 s on CUDA, so that a 400 s device call
leaves time for a rerun): one whose estimate no longer fits is skipped and says so, and a
section that fails records its error and the run goes on. ``--device cpu --quick`` is the dry
run for this CPU: small images, few iterations, every code path that needs no CUDA (the CUDA-only
parts say ``skipped`` with the reason); on the CPU with ``--quick`` the ``compile`` section runs
with ``torch.compile`` handing the model back (the compile code path, not compiling: that takes
minutes per graph on two cores), which the JSON records (``compile.not_compiled``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import gc
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from common import REPO, RESULTS, Ratio, machine, paired_ratio, print_table

CARRIED = ("segment_anything", "sam2", "hydra", "omegaconf", "antlr4", "iopath")
"""Imports the GPU machine lacks, installed by gpu_check.sh from the wheels of gpu_wheels.sh."""


@dataclass(frozen=True)
class Plan:
    """Sizes and counts of one run: the real ones on CUDA, small ones for the CPU rehearsal."""

    device: str
    quick: bool
    presets: tuple[tuple[str, int], ...]
    batch_sizes: tuple[int, ...]
    iters: int
    compile_mode: str
    compile_presets: tuple[str, ...]
    train_size: int
    train_steps: int
    onnx_model: tuple[str, int]
    onnx_rounds: int

    @property
    def cuda(self) -> bool:
        return self.device == "cuda"


def make_plan(device: str, quick: bool) -> Plan:
    if device == "cuda":
        return Plan(
            device, quick, (("vit_b", 512), ("hiera_b+", 512), ("tiny", 512)), (8, 16),
            20 if quick else 200, "reduce-overhead", ("vit_b", "hiera_b+", "tiny"),
            1024, 1 if quick else 3, ("vit_b", 512), 5 if quick else 20,
        )  # fmt: skip
    if quick:  # the rehearsal: one small model (a 64 px vit_b forward takes seconds on 2 cores)
        return Plan(
            device, quick, (("tiny", 64),), (2,), 2, "default", ("tiny",), 64, 1, ("tiny", 64), 2
        )
    return Plan(
        device, quick, (("vit_b", 64), ("hiera_b+", 64), ("tiny", 64)), (2,), 10, "default",
        ("vit_b", "hiera_b+", "tiny"), 128, 1, ("tiny", 64), 5,
    )  # fmt: skip


class Budget:
    """Seconds left of ``--budget-s``; a step that will not fit is skipped, not started."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def skip_reason(self, needs_s: float) -> str | None:
        left = self.left()
        if left >= needs_s:
            return None
        return f"time budget: {left:.0f} s left, this needs about {needs_s:.0f} s"


def card_name(device: str) -> str:
    """The card's name (``torch.cuda.get_device_name``), or ``cpu <model>`` for a CPU run."""
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return f"cpu {machine()['cpu']}"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "_", text).strip("_") or "unknown"


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class Report:
    """The one JSON of the run: machine, ratios, figures per section; rewritten as it grows."""

    def __init__(self, plan: Plan, card: str, out_dir: Path | None) -> None:
        stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        name = f"gpu-check-{slug(card)}{'-quick' if plan.quick else ''}-{stamp}.json"
        self.path = RESULTS / name
        self.copy = out_dir / name if out_dir is not None else None
        self.meta = machine()
        self.meta["card"] = card
        self.ratios: list[Ratio] = []
        self.sections: dict[str, Any] = {}
        self.figures: dict[str, Any] = {"card": card, "plan": asdict(plan), "sections": {}}
        self.start = time.monotonic()

    def save(self) -> None:
        self.figures["wall_s"] = time.monotonic() - self.start
        self.figures["sections"] = self.sections
        payload = {
            "machine": self.meta,
            "ratios": [asdict(r) for r in self.ratios],
            "figures": self.figures,
        }
        text = json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n"
        RESULTS.mkdir(parents=True, exist_ok=True)
        for path in (self.path, self.copy):
            if path is not None:
                tmp = path.with_suffix(".tmp")
                tmp.write_text(text)
                tmp.replace(path)

    def run(self, name: str, needs_s: float, budget: Budget, body: Callable[[], Any]) -> None:
        """Run one section (unless the budget says no), keep its figures or its error, save."""
        reason = budget.skip_reason(needs_s)
        if reason is not None:
            print(f"[gpu-check] {name}: skipped ({reason})", flush=True)
            self.sections[name] = {"status": "skipped", "reason": reason}
            self.save()
            return
        print(f"[gpu-check] {name} ... ({budget.left():.0f} s of budget left)", flush=True)
        start = time.monotonic()
        try:
            result = {"status": "ok", **body()}
        except Exception as exc:  # one broken section must not cost the others' figures
            traceback.print_exc()
            result = {"status": "error", "error": f"{type(exc).__name__}: {exc}",
                      "traceback": traceback.format_exc()[-4000:]}  # fmt: skip
        result["wall_s"] = time.monotonic() - start
        self.sections[name] = result
        free_memory()
        self.save()
        print(f"[gpu-check] {name}: {result['status']} in {result['wall_s']:.0f} s", flush=True)


# ----------------------------------------------------------------------------- sections
def environment(plan: Plan) -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort

    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "numpy": np.__version__,
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "carried_from": {},
    }
    for name in CARRIED:
        module = importlib.import_module(name)
        info["carried_from"][name] = str(Path(module.__file__ or "?").parent)
    if plan.cuda:
        props = torch.cuda.get_device_properties(0)
        info["cuda_device"] = {
            "name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "memory_gib": props.total_memory / 2**30,
            "multiprocessors": props.multi_processor_count,
            "count": torch.cuda.device_count(),
        }
    else:
        info["cuda_device"] = {"status": "skipped", "reason": "needs CUDA (the CPU rehearsal)"}
    return info


def cuda_tests(plan: Plan, budget: Budget) -> dict[str, Any]:
    """``pytest test/cuda`` in a subprocess; counts and every test's outcome from its JUnit XML."""
    with tempfile.TemporaryDirectory(prefix="gpu_check_pytest_") as tmp:
        xml_path = Path(tmp) / "junit.xml"
        timeout = max(30.0, min(budget.left() - 30, 300.0))
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
                f"--junitxml={xml_path}", "test/cuda"]  # fmt: skip
        try:
            run = subprocess.run(
                argv, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
            )
            code: int | str = run.returncode
            tail = (run.stdout + run.stderr)[-3000:]
        except subprocess.TimeoutExpired as exc:
            code, tail = f"timeout after {timeout:.0f} s", str(exc.stdout or "")[-3000:]
        result: dict[str, Any] = {"exit_code": code, "output_tail": tail, "tests": []}
        if xml_path.is_file():
            suite = ET.parse(xml_path).getroot()
            suite = suite if suite.tag == "testsuite" else suite[0]
            for key in ("tests", "failures", "errors", "skipped"):
                result[key + "_count"] = int(suite.get(key, 0))
            for case in suite.iter("testcase"):
                outcome, detail = "passed", ""
                for tag in ("failure", "error", "skipped"):
                    node = case.find(tag)
                    if node is not None:
                        outcome, detail = tag, (node.get("message") or "")[:500]
                seconds = float(case.get("time", 0))
                result["tests"].append(
                    {"name": case.get("name"), "outcome": outcome, "time_s": seconds,
                     "detail": detail}
                )  # fmt: skip
    print(tail[-1500:], flush=True)
    return result


def model_sections(plan: Plan, budget: Budget, compile_mode: str) -> dict[str, Any]:
    """``model_figures`` per preset (``compile_mode``: ``none``, or the plan's compile mode)."""
    from bench_model import model_figures

    eager = compile_mode == "none"
    presets = [p for p in plan.presets if eager or p[0] in plan.compile_presets]
    out: dict[str, Any] = {}
    needs = 20.0 if eager else 60.0
    for preset, size in presets:
        reason = budget.skip_reason(needs)
        if reason is not None:
            out[preset] = {"status": "skipped", "reason": reason}
            continue
        print(f"[gpu-check]   {preset} at {size} px, compile={compile_mode} ...", flush=True)
        start = time.monotonic()
        try:
            figures = model_figures(preset, size, plan.device, "bfloat16", compile_mode,
                                    plan.batch_sizes, plan.iters)  # fmt: skip
            out[preset] = {"status": "ok", **figures}
        except Exception as exc:
            traceback.print_exc()
            out[preset] = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
        spent = time.monotonic() - start
        out[preset]["wall_s"] = spent
        needs = max(needs, 1.2 * spent)  # the next model is no cheaper than this one was
        if not eager:  # its graphs go: dynamo's per-function cache limit (8) must not be reached
            import torch._dynamo

            torch._dynamo.reset()
        free_memory()
    return out


@contextlib.contextmanager
def compiling_skipped(skip: bool) -> Iterator[None]:
    """Inside, when asked, ``torch.compile`` hands the model back unchanged (the CPU rehearsal).

    Why not ``torch._dynamo.config.disable``: the Segmenter warms up on a thread of its own on
    the CPU, where that flag did not stop inductor from compiling.
    """
    if not skip:
        yield
        return
    real = torch.compile
    torch.compile = lambda model, *_, **__: model  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.compile = real


def compile_section(plan: Plan, budget: Budget) -> dict[str, Any]:
    rehearsal = not plan.cuda and plan.quick
    with compiling_skipped(rehearsal):
        out = model_sections(plan, budget, plan.compile_mode)
    if rehearsal:
        out["not_compiled"] = (
            "CPU rehearsal: torch.compile handed the model back unchanged, so this ran the compile "
            "code path eagerly (compiling takes minutes per graph on two cores); these figures "
            "are not compiled ones"
        )
    return out


def onnx_section(plan: Plan, budget: Budget) -> dict[str, Any]:
    """ONNX Runtime CUDA / TensorRT against torch bf16 (CPU rehearsal: the CPU provider)."""
    import onnxruntime as ort
    from bench_onnx import _compare

    available = ort.get_available_providers()
    out: dict[str, Any] = {"available_providers": available}
    cases: list[tuple[str, list[str], str, float]] = []
    if not plan.cuda:
        cases.append(("cpu", ["CPUExecutionProvider"], "float32", 30.0))
        out["cuda"] = out["tensorrt"] = {"status": "skipped", "reason": "needs CUDA"}
    else:
        for name, providers, precision, needs in (
            ("cuda", ["CUDAExecutionProvider"], "float32", 90.0),
            ("tensorrt", ["TensorrtExecutionProvider", "CUDAExecutionProvider"], "float16", 240.0),
        ):
            if providers[0] in available:
                cases.append((name, providers, precision, needs))
            else:
                out[name] = {"status": "skipped", "reason": (
                    f"{providers[0]} is not in this onnxruntime {ort.__version__} (available: "
                    f"{available}); it needs onnxruntime-gpu (about 240 MiB, more than the 64 MiB "
                    "that travels to the device machine) or a TensorRT build")}  # fmt: skip
    preset, size = plan.onnx_model
    for name, providers, precision, needs in cases:
        reason = budget.skip_reason(needs)
        if reason is not None:
            out[name] = {"status": "skipped", "reason": reason}
            continue
        print(f"[gpu-check]   onnxruntime {providers} {precision} vs torch bf16 ...", flush=True)
        try:
            result = _compare(
                preset, size, plan.onnx_rounds, 0, device=plan.device, dtype="bfloat16",
                providers=providers, ort_dtype=precision,
            )  # fmt: skip
            times = result.pop("times")
            result["speedup_over_torch_bf16"] = paired_ratio(times, "torch", "onnxruntime")
            result["forward_speedup_over_torch_bf16"] = paired_ratio(
                times, "torch_forward", "onnxruntime_forward"
            )
            out[name] = {"status": "ok", **result}
        except Exception as exc:
            traceback.print_exc()
            out[name] = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
        free_memory()
    return out


def train_figures(plan: Plan) -> dict[str, Any]:
    from gpu_check_train import train_step_figures

    return train_step_figures(plan.device, plan.train_size, 2, plan.train_steps, "bf16")


# ----------------------------------------------------------------------------- ratios
def skipped(node: Any, path: str = "") -> list[str]:
    """Every ``{"status": "skipped", "reason": ...}`` below ``node`` (and skipped tests), as
    ``path: reason``: what this run did not measure, and why."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("status") == "skipped" or node.get("outcome") == "skipped":
            found.append(f"{path or node.get('name')}: {node.get('reason') or node.get('detail')}")
        for key, value in node.items():
            found += skipped(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for item in node:
            found += skipped(item, f"{path}.{item.get('name')}" if isinstance(item, dict) else path)
    return found


def summarise(report: Report) -> None:
    """The targets of the issue, as ratios: met, missed, or ``None`` where not measured."""
    sections = report.sections
    model = sections.get("model", {})
    vit = model.get("vit_b", {})
    if vit.get("status") == "ok":
        p50 = vit["batch1_ms"]["p50"]
        best = max(vit[f"batch{b}_frames_per_s"] for b in report.figures["plan"]["batch_sizes"])
        report.ratios += [
            Ratio("vit_b 512 bf16 4 mod. batch-1 p50 (ms)", p50, "<= 10", p50 <= 10),
            Ratio("vit_b 512 bf16 4 mod. batched frames/s", best, ">= 200", best >= 200),
        ]
    compiled = sections.get("compile", {}).get("vit_b", {})
    if compiled.get("status") == "ok":
        p50 = compiled["batch1_ms"]["p50"]
        report.ratios.append(Ratio("vit_b compiled batch-1 p50 (ms)", p50, "<= 10", p50 <= 10))
    trt = sections.get("onnx", {}).get("tensorrt", {})
    if trt.get("status") == "ok":
        value = trt["speedup_over_torch_bf16"]
        report.ratios.append(Ratio("TensorRT fp16 / torch bf16 speed-up", value, ">= 1.5",
                                   value >= 1.5))  # fmt: skip
    else:
        reason = trt.get("reason") or trt.get("error") or "not run"
        report.ratios.append(Ratio("TensorRT fp16 / torch bf16 speed-up", None, ">= 1.5", None,
                                   reason[:100]))  # fmt: skip
    train = sections.get("train", {})
    if train.get("status") == "ok" and train.get("peak_reserved_gib") is not None:
        gb = train["peak_reserved_gib"] * 2**30 / 1e9
        report.ratios.append(Ratio(f"hiera_b+ {train['image_size']} b{train['batch_size']} train "
                                   "step peak (GB)", gb, "<= 40", gb <= 40,
                                   f"step {train['step_s_median']:.2f} s"))  # fmt: skip
    tests = sections.get("cuda_tests", {})
    if "tests_count" in tests:
        bad = tests["failures_count"] + tests["errors_count"]
        report.ratios.append(Ratio("CUDA tests failed", bad, "0", bad == 0,
                                   f"{tests['tests_count']} tests, "
                                   f"{tests['skipped_count']} skipped"))  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--quick", action="store_true", help="fewer iterations (CPU: tiny sizes)")
    parser.add_argument(
        "--budget-s", type=float, default=None,
        help="seconds for all sections (default 330 on CUDA, 900 on the CPU)",
    )  # fmt: skip
    parser.add_argument(
        "--out", default=os.environ.get("OUT") or None,
        help="also copy the JSON here (default: $OUT when set)",
    )  # fmt: skip
    parser.add_argument("--skip", nargs="*", default=[], help="sections to leave out")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("[gpu-check] --device cuda but torch sees no CUDA device; for the CPU rehearsal "
              "run: bash bench/gpu_check.sh --device cpu --quick", file=sys.stderr)  # fmt: skip
        return 2
    plan = make_plan(args.device, args.quick)
    budget = Budget(args.budget_s or (330.0 if plan.cuda else 900.0))
    out_dir = Path(args.out) if args.out else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    card = card_name(args.device)
    report = Report(plan, card, out_dir)
    print(f"[gpu-check] {card}; torch {torch.__version__}; JSON: {report.path}", flush=True)
    steps: list[tuple[str, float, Callable[[], Any]]] = [
        ("environment", 5, lambda: environment(plan)),
        ("cuda_tests", 60, lambda: cuda_tests(plan, budget)),
        ("model", 40, lambda: model_sections(plan, budget, "none")),
        ("train", 45, lambda: train_figures(plan)),
        ("onnx", 10, lambda: onnx_section(plan, budget)),
        ("compile", 60, lambda: compile_section(plan, budget)),
    ]
    for name, needs, body in steps:
        if name in args.skip:
            report.sections[name] = {"status": "skipped", "reason": "--skip"}
            continue
        report.run(name, needs, budget, body)
    summarise(report)
    notes = skipped(report.sections)
    if not plan.cuda:
        notes.append("model.*_peak_mib, train.peak_*_gib: needs CUDA (torch.cuda memory stats)")
    if "not_compiled" in report.sections.get("compile", {}):
        notes.append(f"compile: {report.sections['compile']['not_compiled']}")
    report.figures["not_measured"] = notes
    report.save()
    print_table(report.ratios)
    print(f"[gpu-check] {report.figures['wall_s']:.0f} s; results: {report.path}"
          + (f" (and {report.copy})" if report.copy else ""))  # fmt: skip
    broken = [n for n, s in report.sections.items() if s.get("status") == "error"]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared helpers of the benchmarks: interleaved timing, run metadata, the ratio table, JSON.

Why interleaved: the development machines are shared (training jobs, test replays), so absolute
times drift by 2-5x within a minute. Every comparison therefore times its variants in turn,
round after round, and reports the median of the per-round ratios: a load change hits both
sides of a ratio alike.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


@dataclass
class Ratio:
    """One line of the table: a measured ratio against its target."""

    name: str
    value: float | None
    target: str
    met: bool | None
    detail: str = ""
    figures: dict[str, Any] = field(default_factory=dict)


def timed(fn: Callable[[], object], sync: Callable[[], None] | None = None) -> float:
    """Seconds one call of ``fn`` takes (``sync`` waits for asynchronous devices)."""
    start = time.perf_counter()
    fn()
    if sync is not None:
        sync()
    return time.perf_counter() - start


def interleaved(
    variants: Mapping[str, Callable[[], object]],
    rounds: int,
    warmup: int = 1,
    sync: Callable[[], None] | None = None,
) -> dict[str, list[float]]:
    """Time every variant once per round, in a rotating order; return the seconds per round."""
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            times[name].append(timed(variants[name], sync))
    return times


def paired_ratio(times: Mapping[str, list[float]], num: str, den: str) -> float:
    """``min(num) / min(den)`` over the rounds.

    Load from other processes only ever adds time, so each variant's fastest round is its best
    estimate of the undisturbed cost (``timeit``'s rule); the variants ran in turn, round after
    round, so both minima come from the same stretch of the run. The median of per-round
    ratios is kept in the JSON (:func:`median_pair_ratio`) as a cross-check.
    """
    return min(times[num]) / min(times[den])


def median_pair_ratio(times: Mapping[str, list[float]], num: str, den: str) -> float:
    """Median over rounds of ``num / den`` (each round's pair ran back to back)."""
    return statistics.median(a / b for a, b in zip(times[num], times[den], strict=True))


def median_ms(values: list[float]) -> float:
    return 1e3 * statistics.median(values)


def min_ms(values: list[float]) -> float:
    return 1e3 * min(values)


def summary(times: Mapping[str, list[float]]) -> dict[str, dict[str, float]]:
    """Per variant: fastest and median round in ms (what the JSON keeps)."""
    return {k: {"min_ms": min_ms(v), "median_ms": median_ms(v)} for k, v in times.items()}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def machine() -> dict[str, Any]:
    """What the figures were measured on (and how busy it was)."""
    import numpy as np
    import torch

    def git(*args: str) -> str:
        run = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=5, check=False
        )
        return run.stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except OSError:
        commit, dirty = "unknown", ""
    cpu_model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu": cpu_model,
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": list(os.getloadavg()),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "cuda_available": torch.cuda.is_available(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit + ("+dirty" if dirty else ""),
    }
    if torch.cuda.is_available():
        info["cuda_device"] = torch.cuda.get_device_name(0)
    return info


def print_table(ratios: list[Ratio]) -> None:
    """The human summary: ratio, target, verdict, and what it was measured on."""
    print()
    print(f"{'benchmark':<52s} {'ratio':>8s}  {'target':<12s} {'verdict':<8s} detail")
    print("-" * 120)
    for r in ratios:
        value = "-" if r.value is None else f"{r.value:8.3f}"
        verdict = {True: "met", False: "MISSED", None: "info"}[r.met]
        print(f"{r.name:<52s} {value:>8s}  {r.target:<12s} {verdict:<8s} {r.detail}")
    print()


def write_json(kind: str, meta: Mapping[str, Any], ratios: list[Ratio], extra: Any) -> Path:
    """``bench/results/<kind>-<UTC date-time>.json`` with the metadata, ratios and raw figures."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{kind}-{stamp}.json"
    payload = {"machine": dict(meta), "ratios": [asdict(r) for r in ratios], "figures": extra}
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
    return path

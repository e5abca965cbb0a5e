"""Command line: train and test model variants over several seeds; mean and standard deviation.

``python -m sam_moelora_ros.training.study --config training/configs/study_tiny.yaml [--jobs 2]
[--seeds 0 1 2]``

One number from one training seed cannot tell a method's effect from the seed's luck. A study
trains every variant (a base training config plus overrides: the fusion ablation, the RGB-only
baseline) once per seed, picks each run's checkpoint on the validation split (``best``),
evaluates it on the held-out test split (never seen during training or selection), and writes:

* ``<out>/<variant>/seed<S>/``: the run (``checkpoints/``, ``metrics.jsonl``, ``train.log``)
  and ``eval_test/`` (``training.evaluate``'s report, tables and figures);
* ``<out>/study.json``: per variant, per set of sensors and condition, mIoU mean, standard
  deviation and the per-seed values; missing-sensor costs paired by seed; router weights;
* ``<out>/study.md``: the same as Markdown tables, with every comparison marked as beyond or
  within noise (see :func:`within_noise`), ready for a model card.

Runs that already finished (a ``done.json`` beside them) are not repeated, so an interrupted
study continues where it stopped. ``--jobs N`` runs N trainings side by side, each with
``cpu_count // N`` threads (two single-thread runs use a 2-core CPU better than one two-thread
run: much of a small model's step is not parallel).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from sam_moelora_ros.evaluation import format_table
from sam_moelora_ros.safe_yaml import load_yaml_file

from .cli_errors import one_line_errors, positive_int
from .config import TrainConfig, TrainConfigError

EVALUATIONS = ("subsets", "full")
"""What a variant is tested with: every set of its sensors, or all of them only."""


@dataclass(frozen=True)
class Variant:
    """One model of the study: a name, overrides of the base config, how it is tested."""

    name: str
    overrides: tuple[str, ...]
    evaluate: str


@dataclass(frozen=True)
class Study:
    """A parsed study file (see ``training/configs/study_tiny.yaml``)."""

    base: Path
    data: str
    test_split: str
    sam_checkpoint: str | None
    out: Path
    seeds: tuple[int, ...]
    variants: tuple[Variant, ...]
    reference: str
    baseline: str | None
    fusion_variants: tuple[str, ...]

    @classmethod
    def load(cls, path: str | Path) -> Study:
        """Read and check a study file; errors name the key and the fix."""
        path = Path(path)
        try:
            raw = load_yaml_file(path)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise TrainConfigError(f"study file {path}: cannot read it ({exc})") from exc
        if not isinstance(raw, Mapping):
            raise TrainConfigError(f"study file {path}: must be a mapping of keys to values")

        def need(key: str) -> Any:
            if key not in raw:
                raise TrainConfigError(f"study file {path}: '{key}' is missing")
            return raw[key]

        known = {
            "base_config",
            "data",
            "test_split",
            "sam_checkpoint",
            "out",
            "seeds",
            "variants",
            "reference",
            "baseline",
            "fusion_variants",
        }
        unknown = sorted(set(raw) - known)
        if unknown:
            raise TrainConfigError(f"study file {path}: unknown key(s) {unknown}")
        variants = []
        for name, spec in (need("variants") or {}).items():
            spec = spec or {}
            evaluate = spec.get("evaluate", "full")
            if evaluate not in EVALUATIONS:
                raise TrainConfigError(
                    f"study file {path}: variants.{name}.evaluate must be one of "
                    f"{list(EVALUATIONS)} (got {evaluate!r})"
                )
            variants.append(Variant(str(name), tuple(spec.get("overrides") or ()), evaluate))
        if not variants:
            raise TrainConfigError(f"study file {path}: 'variants' lists no variant")
        names = [v.name for v in variants]
        reference = str(raw.get("reference", names[0]))
        baseline = raw.get("baseline")
        fusion = tuple(raw.get("fusion_variants") or ())
        for key, value in [("reference", reference), ("baseline", baseline)] + [
            ("fusion_variants", f) for f in fusion
        ]:
            if value is not None and value not in names:
                raise TrainConfigError(
                    f"study file {path}: {key} names {value!r}, not one of the variants {names}"
                )
        seeds = tuple(int(s) for s in need("seeds"))
        if not seeds:
            raise TrainConfigError(f"study file {path}: 'seeds' is empty")
        return cls(
            base=Path(need("base_config")),
            data=str(need("data")),
            test_split=str(raw.get("test_split", "test")),
            sam_checkpoint=raw.get("sam_checkpoint"),
            out=Path(need("out")),
            seeds=seeds,
            variants=tuple(variants),
            reference=reference,
            baseline=baseline,
            fusion_variants=fusion,
        )

    def run_dir(self, variant: Variant, seed: int) -> Path:
        return self.out / variant.name / f"seed{seed}"

    def train_overrides(self, variant: Variant, seed: int, threads: int) -> list[str]:
        extra = [f"data.root={self.data}", f"run.seed={seed}", f"run.threads={threads}"]
        extra += ["run.progress=false", f"run.out={self.run_dir(variant, seed)}"]
        if self.sam_checkpoint:
            extra.append(f"model.sam_checkpoint={self.sam_checkpoint}")
        return [*variant.overrides, *extra]


# ---------------------------------------------------------------------- running
def _run(cmd: list[str], log: Path, threads: int) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        code = subprocess.call(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env)
    if code != 0:
        tail = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {code}: {tail[0]} (see {log})")


def run_one(study: Study, variant: Variant, seed: int, threads: int) -> dict[str, Any]:
    """Train (unless done), evaluate on the test split; returns ``done.json``'s content."""
    out = study.run_dir(variant, seed)
    done = out / "done.json"
    if done.is_file():
        return json.loads(done.read_text())
    started = time.perf_counter()
    py = sys.executable
    train = [py, "-m", "sam_moelora_ros.training.train", "--config", str(study.base)]
    _run(train + study.train_overrides(variant, seed, threads), out / "train.log", threads)
    train_s = time.perf_counter() - started
    ckpt = out / "checkpoints" / "best.safetensors"
    evaluate = [py, "-m", "sam_moelora_ros.training.evaluate", "--adapter", str(ckpt)]
    evaluate += ["--data", study.data]
    evaluate += ["--split", study.test_split, "--out", str(out / "eval_test")]
    evaluate += ["--batch-size", "8", "--no-progress"]
    if study.sam_checkpoint:
        evaluate += ["--sam-checkpoint", study.sam_checkpoint]
    if variant.evaluate == "full":
        evaluate.append("--full-only")
    _run(evaluate, out / "eval.log", threads)
    best = None
    for line in (out / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("kind") == "end":
            best = {"miou": record.get("best_miou"), "step": record.get("best_step")}
    result = {
        "variant": variant.name,
        "seed": seed,
        "train_s": round(train_s, 1),
        "total_s": round(time.perf_counter() - started, 1),
        "val_best": best,
    }
    done.write_text(json.dumps(result, indent=2) + "\n")
    return result


# ---------------------------------------------------------------------- statistics
def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def within_noise(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether the difference of two variants' means is within one standard deviation.

    The deviation is that of the difference of two independent means' spreads,
    ``sqrt(s_a^2 + s_b^2)``: with three seeds a rough yardstick, not a significance test.
    """
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    return abs(ma - mb) <= math.sqrt(sa**2 + sb**2)


def noise_verdict(a: Sequence[float], b: Sequence[float]) -> str:
    """``within noise`` / ``beyond noise`` (:func:`within_noise`), or, while either side has
    a single seed and so no spread, ``1 seed: noise unknown``: a gap is not beyond a spread
    nobody measured."""
    if min(len(a), len(b)) < 2:
        return "1 seed: noise unknown"
    return "within noise" if within_noise(a, b) else "beyond noise"


def fmt(values: Sequence[float]) -> str:
    mean, std = mean_std(values)
    return f"{mean:.1f} ± {std:.1f}"


def collect(study: Study) -> dict[str, dict[int, dict[str, Any]]]:
    """Every finished run's test report: ``{variant: {seed: report}}``."""
    reports: dict[str, dict[int, dict[str, Any]]] = {}
    for variant in study.variants:
        for seed in study.seeds:
            path = study.run_dir(variant, seed) / "eval_test" / "report.json"
            if path.is_file():
                reports.setdefault(variant.name, {})[seed] = json.loads(path.read_text())
    return reports


def _full(report: dict[str, Any]) -> str:
    return "+".join(report["modalities"])


def _miou(report: dict[str, Any], subset: str, condition: str | None) -> float:
    entry = report["subsets"][subset]
    return float(entry["miou"] if condition is None else entry["per_condition"][condition]["miou"])


def summarise_study(study: Study, reports: dict[str, dict[int, dict[str, Any]]]) -> dict:
    """``study.json``: per-variant statistics and the comparisons a model card states."""
    out: dict[str, Any] = {"seeds": list(study.seeds), "variants": {}}
    conditions: list[str] = []
    for name, by_seed in reports.items():
        runs = list(by_seed.values())
        conditions = sorted({c for r in runs for c in r["subsets"][_full(r)]["per_condition"]})
        subsets = [s for s in runs[0]["subsets"] if all(s in r["subsets"] for r in runs)]
        table: dict[str, Any] = {}
        for subset in subsets:
            for condition in [None, *conditions]:
                values = [_miou(r, subset, condition) for r in runs]
                mean, std = mean_std(values)
                key = condition or "all"
                table.setdefault(subset, {})[key] = {"mean": mean, "std": std, "values": values}
        router: dict[str, dict[str, float]] = {}
        for r in runs:
            for condition, weights in r.get("router", {}).items():
                for m, w in weights.items():
                    router.setdefault(condition, {}).setdefault(m, 0.0)
                    router[condition][m] += w / len(runs)
        out["variants"][name] = {
            "seeds": sorted(by_seed),
            "full": _full(runs[0]),
            "miou": table,
            "router": router,
        }
    out["conditions"] = conditions
    ref = reports.get(study.reference)
    if ref and len(next(iter(ref.values()))["modalities"]) > 1:
        out["missing_cost"] = _missing_costs(ref, conditions)
    return out


def _missing_costs(by_seed: dict[int, dict[str, Any]], conditions: list[str]) -> dict:
    """mIoU lost when one sensor is missing, paired by seed (same weights, one sensor fewer)."""
    runs = list(by_seed.values())
    full = _full(runs[0])
    costs: dict[str, Any] = {}
    for m in runs[0]["modalities"]:
        subset = "+".join(x for x in runs[0]["modalities"] if x != m)
        if subset not in runs[0]["subsets"]:
            continue
        for condition in [None, *conditions]:
            values = [_miou(r, full, condition) - _miou(r, subset, condition) for r in runs]
            mean, std = mean_std(values)
            costs.setdefault(m, {})[condition or "all"] = {
                "mean": mean,
                "std": std,
                "values": values,
            }
    return costs


def markdown(study: Study, summary: dict[str, Any]) -> str:
    """``study.md``: the tables a model card quotes (mean ± standard deviation over seeds)."""
    conditions = summary["conditions"]
    cols = ["all", *conditions]
    variants = summary["variants"]
    seeds = ", ".join(str(s) for s in summary["seeds"])
    lines = [f"# Study over seeds {seeds} (test split; mIoU %, mean ± std)", ""]
    rows = []
    for name, v in variants.items():
        cells = v["miou"][v["full"]]
        row = {"variant": name, "sensors": v["full"], "seeds": len(v["seeds"])}
        row.update({c: fmt(cells[c]["values"]) for c in cols if c in cells})
        rows.append(row)
    lines += ["## All sensors of each variant", "", format_table(rows), ""]
    ref = variants.get(study.reference)
    base = variants.get(study.baseline) if study.baseline else None
    if ref and base:
        rows = []
        for c in cols:
            a = ref["miou"][ref["full"]][c]["values"]
            b = base["miou"][base["full"]][c]["values"]
            gain = mean_std(a)[0] - mean_std(b)[0]
            noise = noise_verdict(a, b)
            row = {"condition": c, study.reference: fmt(a), str(study.baseline): fmt(b)}
            rows.append(row | {"gain": f"{gain:+.1f}", "verdict": noise})
        lines += [f"## {study.reference} vs {study.baseline}", "", format_table(rows), ""]
    if "missing_cost" in summary:
        rows = []
        for m, by_cond in summary["missing_cost"].items():
            row = {"missing": m}
            row.update({c: fmt(by_cond[c]["values"]) for c in cols if c in by_cond})
            rows.append(row)
        lines += [
            f"## Cost of one missing sensor ({study.reference}; paired by seed)",
            "",
            format_table(rows),
            "",
        ]
    fusion = [f for f in study.fusion_variants if f in variants]
    if len(fusion) > 1:
        rows = []
        first = fusion[0]
        a = variants[first]["miou"][variants[first]["full"]]["all"]["values"]
        for name in fusion:
            b = variants[name]["miou"][variants[name]["full"]]["all"]["values"]
            verdict = "" if name == first else noise_verdict(a, b)
            rows.append({"fusion": name, "all": fmt(b), f"vs {first}": verdict})
        lines += ["## Fusion ablation (all sensors)", "", format_table(rows), ""]
    router_rows = []
    if ref and ref["router"]:
        for condition, weights in sorted(ref["router"].items()):
            router_rows.append(
                {"condition": condition, **{m: f"{w:.3f}" for m, w in weights.items()}}
            )
        lines += [
            f"## Mean router weight ({study.reference}, all sensors, averaged over seeds)",
            "",
            format_table(router_rows),
            "",
        ]
    return "\n".join(lines)


# ---------------------------------------------------------------------- command line
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m sam_moelora_ros.training.study", description=__doc__.split("\n")[0]
    )
    p.add_argument("--config", required=True, help="study YAML (training/configs/study_*.yaml)")
    p.add_argument("--seeds", type=int, nargs="*", help="override the study's seeds")
    p.add_argument("--only", nargs="*", help="run only these variants (the summary reads all)")
    p.add_argument("--jobs", type=positive_int, default=1, help="trainings run side by side")
    p.add_argument(
        "--summarise-only", action="store_true", help="write study.json/.md from finished runs"
    )
    return p.parse_args(argv)


@one_line_errors()
def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 with the summary written; 2 for a bad study file; 1 when a run failed."""
    args = parse_args(argv)
    study = Study.load(args.config)
    if args.seeds:
        study = dataclasses.replace(study, seeds=tuple(args.seeds))
    for variant in study.variants:  # a bad config or override fails now, not in a job
        TrainConfig.load(study.base, list(variant.overrides))
    todo = [
        (v, s) for v in study.variants for s in study.seeds if not args.only or v.name in args.only
    ]
    if not args.summarise_only:
        threads = max(1, (os.cpu_count() or 1) // args.jobs)
        failures: list[str] = []
        with (
            tqdm(total=len(todo), desc="study", unit="run") as bar,
            ThreadPoolExecutor(args.jobs) as pool,
        ):
            futures = {pool.submit(run_one, study, v, s, threads): (v, s) for v, s in todo}
            for future, (v, s) in futures.items():
                try:
                    future.result()
                except RuntimeError as exc:
                    failures.append(f"{v.name} seed {s}: {exc}")
                bar.update(1)
        if failures:
            print("error: " + "; ".join(failures), file=sys.stderr)
            return 1
    reports = collect(study)
    if not reports:
        print(f"error: no finished run under {study.out}; run without --summarise-only")
        return 1
    summary = summarise_study(study, reports)
    study.out.mkdir(parents=True, exist_ok=True)
    (study.out / "study.json").write_text(json.dumps(summary, indent=2) + "\n")
    text = markdown(study, summary)
    (study.out / "study.md").write_text(text + "\n")
    print(text)
    print(f"wrote {study.out}/study.json and study.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

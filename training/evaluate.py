"""Command line: evaluate an adapter per condition and per set of present sensors.

``python -m sam_moelora_ros.training.evaluate --adapter A [--sam-checkpoint C] --data ROOT --dataset
deliver --split val`` scores the model with every non-empty subset of the modalities it was trained
on (the missing-modality setting), per condition, and writes to ``--out``:

* ``report.json``: per subset: mIoU, accuracy and per-class IoU overall and per condition; the
  mean router weights per condition (all sensors present);
* ``confusion.png``: the row-normalised confusion matrix with all sensors;
* ``robustness.png``: mIoU vs the sensors present, one line per condition;
* ``router.png``: mean router weight per modality and condition;

and prints the tables (Markdown, pasteable into a model card). Runs under ``torchrun`` too (each
rank scores a shard; rank 0 writes).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sam_moelora_ros.evaluation import (
    format_table,
    modality_subsets,
    percent,
    save_confusion_png,
)
from sam_moelora_ros.model import load_segmentor
from sam_moelora_ros.sensors.encodings import InputContract

from . import distributed as D
from .cli_errors import non_negative_int, one_line_errors, positive_int
from .data import (
    ShardSampler,
    dataset_encodings,
    eval_transform,
    evenly_spaced_subset,
    make_loader,
)
from .plots import robustness_plot, router_plot
from .validate import run_inference, summarise


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m sam_moelora_ros.training.evaluate", description=__doc__.split("\n")[0]
    )
    p.add_argument("--adapter", required=True, help="adapter .safetensors (best.safetensors)")
    p.add_argument("--sam-checkpoint", help="official SAM .pth when the adapter lacks the encoder")
    p.add_argument("--data", required=True, help="dataset root (e.g. the DELIVER folder)")
    p.add_argument("--dataset", default="deliver", help="deliver, mcubes or muses")
    p.add_argument("--split", default="val")
    p.add_argument("--conditions", nargs="*", help="conditions to read (default: all)")
    p.add_argument("--cases", nargs="*", help="failure cases besides clean (default: all)")
    p.add_argument("--modalities", nargs="*", help="subset of the trained modalities to test")
    p.add_argument("--full-only", action="store_true", help="only the all-sensors subset")
    p.add_argument("--out", help="output folder (default: <adapter folder>/eval_<split>)")
    p.add_argument("--batch-size", type=positive_int, default=4)
    p.add_argument("--workers", type=non_negative_int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--backend",
        default="torch",
        choices=("torch", "onnxruntime"),
        help="onnxruntime: --adapter is a folder python -m sam_moelora_ros.export wrote",
    )
    p.add_argument(
        "--providers",
        default="CPUExecutionProvider",
        help="--backend onnxruntime: comma-separated providers in priority order",
    )
    p.add_argument(
        "--max-samples",
        type=non_negative_int,
        default=0,
        help="evaluate an evenly spaced subset of this many frames (0 or absent: all)",
    )
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def subset_name(subset: Sequence[str]) -> str:
    return "+".join(subset)


def build_report(
    result: dict[str, Any], modalities: Sequence[str], class_names: Sequence[str]
) -> dict[str, Any]:
    """The JSON report (see module docstring) from :func:`~training.validate.run_inference`."""
    summary = summarise(result, len(class_names))
    subsets: dict[str, Any] = {}
    for subset, entry in sorted(summary.items(), key=lambda kv: (-len(kv[0]), kv[0])):
        subsets[subset_name(subset)] = {
            **entry["confusion"].summary(class_names),
            "miou": entry["miou"],
            "per_condition": {
                c: {**cm.summary(class_names), "miou": percent(cm.miou())}
                for c, cm in entry["per_condition"].items()
            },
        }
    router: dict[str, dict[str, float]] = {}
    for condition, mods in sorted(result["router"].items()):
        n = max(result["router_count"].get(condition, 1), 1)
        router[condition] = {m: float(sum(w) / len(w) / n) for m, w in mods.items()}
    return {"modalities": list(modalities), "subsets": subsets, "router": router}


def tables(report: dict[str, Any], class_names: Sequence[str]) -> str:
    """Markdown: subset x condition mIoU, per-class IoU (all sensors), router weights."""
    subsets = report["subsets"]
    conditions = sorted({c for s in subsets.values() for c in s["per_condition"]})
    rows = []
    for name, entry in subsets.items():
        row: dict[str, Any] = {"sensors": name, "all": entry["miou"]}
        row.update(
            {
                c: entry["per_condition"][c]["miou"]
                for c in conditions
                if c in entry["per_condition"]
            }
        )
        rows.append(row)
    out = [
        "mIoU (%) per set of sensors and condition",
        "",
        format_table(rows, ["sensors", "all", *conditions]),
    ]
    full = next(iter(subsets))
    iou_rows = [
        {
            "class": n,
            "IoU": percent(subsets[full]["iou"].get(n)),
            **{c: percent(subsets[full]["per_condition"][c]["iou"].get(n)) for c in conditions},
        }
        for n in class_names
    ]
    out += ["", f"per-class IoU (%) with {full}", "", format_table(iou_rows)]
    if report["router"]:
        r_rows = [{"condition": c, **w} for c, w in report["router"].items()]
        out += [
            "",
            "mean router weight (all sensors)",
            "",
            format_table(r_rows, float_format="{:.3f}"),
        ]
    return "\n".join(out)


def encoding_mismatch(model: InputContract, data: InputContract, modalities: Sequence[str]) -> str:
    """Why the dataset's images are not what the model was trained on ('' when they are)."""
    differ = [m for m in modalities if m in data and model.get(m) != data[m]]
    if not differ:
        return ""
    listed = "; ".join(
        f"{m}: model {model[m].describe()}, data {data[m].describe()}" for m in differ
    )
    return (
        f"the images are encoded otherwise than the model was trained on ({listed}); evaluate "
        "on data written with the model's input contract, or leave those modalities out"
    )


@one_line_errors()
def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 when the report is written; 2 with one line for a bad argument, adapter or
    dataset (argparse's usage errors are exit 2 as well)."""
    from sam_moelora_ros.datasets import DatasetError, build_dataset

    args = parse_args(argv)
    info = D.setup(args.device)
    try:
        model: Any
        if args.backend == "onnxruntime":
            from sam_moelora_ros.inference.device import SegmenterError
            from sam_moelora_ros.inference.onnx_backend import OnnxRuntimeModel

            try:
                model = OnnxRuntimeModel(args.adapter, providers=args.providers.split(","))
            except SegmenterError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
        else:
            model = load_segmentor(args.adapter, args.sam_checkpoint, map_location=info.device)
        cfg = model.cfg
        modalities = tuple(args.modalities or cfg.modalities)
        unknown = sorted(set(modalities) - set(cfg.modalities))
        if unknown:
            print(
                f"error: --modalities {unknown} not in the adapter's {list(cfg.modalities)}",
                file=sys.stderr,
            )
            return 2
        kwargs: dict[str, Any] = {"modalities": modalities}
        if args.conditions:
            kwargs["conditions"] = tuple(args.conditions)
        if args.cases is not None:
            kwargs["cases"] = tuple(args.cases)
        try:
            dataset: Any = build_dataset(
                args.dataset,
                args.data,
                args.split,
                transform=eval_transform(cfg),
                **kwargs,
            )
        except DatasetError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        problem = encoding_mismatch(model.input_encodings, dataset_encodings(dataset), modalities)
        if problem:
            print(f"error: {args.data}: {problem}", file=sys.stderr)
            return 2
        class_names = list(getattr(dataset, "class_names", range(cfg.num_classes)))
        if args.max_samples:
            dataset = evenly_spaced_subset(dataset, args.max_samples)
        loader = make_loader(
            dataset,
            ShardSampler(len(dataset), info.world_size, info.rank),
            args.batch_size,
            args.workers,
            drop_last=False,
        )
        subsets = [modalities] if args.full_only else modality_subsets(modalities)[::-1]
        result = run_inference(
            model,
            loader,
            subsets,
            cfg.num_classes,
            info.device,
            info,
            progress=not args.no_progress,
            desc="evaluate",
        )
        if not info.is_main:
            return 0
        report = build_report(result, modalities, class_names)
        report.update(
            {
                "adapter": str(args.adapter),
                "data": str(args.data),
                "dataset": args.dataset,
                "split": args.split,
                "frames": len(dataset),
            }
        )
        out = Path(args.out) if args.out else Path(args.adapter).parent / f"eval_{args.split}"
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        summary = summarise(result, cfg.num_classes)
        save_confusion_png(
            summary[tuple(modalities)]["confusion"],
            class_names,
            out / "confusion.png",
            title=f"{subset_name(modalities)} ({args.split})",
        )
        names = list(report["subsets"])
        table = {"all": {n: report["subsets"][n]["miou"] for n in names}}
        for n in names:
            for c, e in report["subsets"][n]["per_condition"].items():
                table.setdefault(c, {})[n] = e["miou"]
        robustness_plot(table, names, out / "robustness.png")
        if report["router"]:
            router_plot(report["router"], list(modalities), out / "router.png")
        text = tables(report, class_names)
        (out / "tables.md").write_text(text + "\n")
        print(text)
        print(f"\nwrote {out}/report.json, confusion.png, robustness.png, router.png, tables.md")
    finally:
        D.teardown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The figures: robustness to missing sensors, router weights per condition, training curves.

matplotlib with the Agg backend through ``Figure`` objects (no pyplot global state, no display),
so the evaluation runs headless in CI and on a robot. Training curves read a run folder's
``metrics.jsonl`` or its TensorBoard event files (:func:`training.tensorboard.load_run`)::

    python -m sam_moelora_ros.training.plots runs/x [--source auto|jsonl|tensorboard] \
        [--out curves.png]
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .tensorboard import Series, load_run


def _figure(width: float, height: float) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110)


def robustness_plot(
    table: Mapping[str, Mapping[str, float]], subsets: Sequence[str], path: str | Path
) -> Path:
    """mIoU (y) for each set of present sensors (x), one line per condition.

    Args:
        table: condition -> subset name (``rgb+depth``) -> mIoU in percent.
        subsets: the x-axis order (e.g. largest subset first, so the curve shows what is lost
            as sensors disappear).
    """
    fig = _figure(max(6.0, 0.55 * len(subsets) + 2.0), 4.5)
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(subsets))
    for condition, row in table.items():
        y = [row.get(s, np.nan) for s in subsets]
        style = {"linewidth": 2.5, "color": "black"} if condition == "all" else {}
        ax.plot(x, y, marker="o", label=condition, **style)
    ax.set_xticks(x, labels=list(subsets), rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("mIoU (%)")
    ax.set_xlabel("sensors present")
    ax.set_title("Robustness to missing sensors")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def router_plot(
    weights: Mapping[str, Mapping[str, float]], modalities: Sequence[str], path: str | Path
) -> Path:
    """Grouped bars: mean router weight of each modality (all sensors present) per condition.

    ``weights``: condition -> modality -> mean weight (averaged over frames and fused levels).
    A uniform router would put every bar at ``1 / len(modalities)`` (dashed line).
    """
    conditions = list(weights)
    fig = _figure(max(6.0, 1.2 * len(conditions) + 2.0), 4.0)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(len(modalities), 1)
    x = np.arange(len(conditions))
    for i, modality in enumerate(modalities):
        y = [weights[c].get(modality, np.nan) for c in conditions]
        ax.bar(x + (i - (len(modalities) - 1) / 2) * width, y, width, label=modality)
    if modalities:
        ax.axhline(1.0 / len(modalities), color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(x, labels=conditions)
    ax.set_ylabel("mean router weight")
    ax.set_title("Router weights per condition (all sensors present)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


CURVE_PANELS = (
    ("losses", ("train/loss", "train/loss_main", "train/loss_aux", "train/loss_avg"), None),
    ("learning rate", ("train/lr",), None),
    ("validation mIoU (%)", ("val/miou",), "val/per_condition/"),
    ("mean router weight (all sensors)", (), "val/router/"),
)
"""(title, tags, tag prefix of further curves) per panel of :func:`training_curves_plot`."""


def training_curves_plot(series: Series, path: str | Path, title: str = "") -> Path:
    """Losses, learning rate, validation mIoU per condition and router weights over steps.

    ``series``: tag -> [(step, value)] as :func:`training.tensorboard.load_run` returns (the
    same from ``metrics.jsonl`` and from event files).
    """
    fig = _figure(11.0, 7.5)
    for i, (name, tags, prefix) in enumerate(CURVE_PANELS):
        ax = fig.add_subplot(2, 2, i + 1)
        shown = [t for t in tags if t in series]
        shown += sorted(t for t in series if prefix and t.startswith(prefix))
        for tag in shown:
            steps, values = zip(*series[tag], strict=True) if series[tag] else ((), ())
            label = tag.removeprefix(prefix or "") if prefix and tag.startswith(prefix) else tag
            ax.plot(steps, values, marker="." if len(steps) < 30 else None, label=label)
        if not shown:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
        elif len(shown) > 1:
            ax.legend(fontsize=7)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("optimizer step")
        ax.grid(True, alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Plot a training run's curves (metrics.jsonl or TensorBoard event files)."
    )
    parser.add_argument("run", type=Path, help="run folder (run.out)")
    parser.add_argument("--source", choices=("auto", "jsonl", "tensorboard"), default="auto")
    parser.add_argument("--out", type=Path, help="PNG to write (default: RUN/curves.png)")
    args = parser.parse_args(argv)
    try:
        series = load_run(args.run, args.source)
    except (FileNotFoundError, RuntimeError) as exc:
        parser.error(str(exc))
    path = training_curves_plot(series, args.out or args.run / "curves.png", str(args.run))
    print(f"wrote {path} ({len(series)} curves)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

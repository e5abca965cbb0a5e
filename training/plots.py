"""The evaluation figures: robustness to missing sensors, and router weights per condition.

matplotlib with the Agg backend through ``Figure`` objects (no pyplot global state, no display),
so the evaluation runs headless in CI and on a robot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np


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

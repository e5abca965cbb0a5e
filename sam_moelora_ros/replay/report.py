"""The replay report: metrics over frames (overall, per condition, per sensor set, per window).

Why frames are accumulated into confusion matrices rather than averaging per-frame mIoU: the
dataset papers report mIoU over all pixels of a split, and a per-frame mean over-weights frames
where a class covers three pixels. Per-frame mIoU is kept as well, for the plot over time.

Everything timing-related lives under ``latency_ms`` and ``runtime_s`` so two runs can be compared
on the rest, which is deterministic. No rclpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.errors import SamMoeLoraError
from sam_moelora_ros.evaluation import ConfusionMatrix
from sam_moelora_ros.replay.pipeline import FrameResult, ReplayLog
from sam_moelora_ros.replay.scenarios import Scenario, Window

TIMING_KEYS = ("latency_ms", "runtime_s")
"""Top-level keys of metrics.json that vary between runs of the same replay."""


def _miou(cm: ConfusionMatrix) -> float | None:
    value = cm.miou() if cm.total else math.nan
    return None if math.isnan(value) else round(float(value), 6)


def _percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    arr = np.asarray(values, dtype=np.float64) * 1e3
    out: dict[str, float | None] = {
        f"p{q}": round(float(np.percentile(arr, q)), 3) for q in (50, 90, 99)
    }
    out["max"] = round(float(arr.max()), 3)
    out["mean"] = round(float(arr.mean()), 3)
    return out


def set_name(present: Sequence[str]) -> str:
    return "+".join(present) if present else "none"


@dataclass
class _WindowStats:
    window: Window
    inside: ConfusionMatrix
    outside: ConfusionMatrix
    frames: dict[str, int] = field(default_factory=lambda: {"inside": 0, "outside": 0})
    used: dict[str, int] = field(default_factory=lambda: {"inside": 0, "outside": 0})


class GroundTruthError(SamMoeLoraError, ValueError):
    """Ground truth that cannot be scored against the labels without guessing (e.g. its size)."""


class Evaluation:
    """Accumulates :class:`FrameResult` s into the report.

    Args:
        class_names: the model's classes (the confusion matrix's size).
        scenario: the replay's windows (for inside/outside mIoU); start time of the bag in ns.
        resize_labels: resize ground truth of another size to the camera's (nearest) instead of
            refusing it; the number of resized frames goes into the report.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        scenario: Scenario,
        start_ns: int,
        resize_labels: bool = False,
    ) -> None:
        self.class_names = list(class_names)
        self.resize_labels = resize_labels
        self.resized = 0
        self.k = len(self.class_names)
        self.start_ns = start_ns
        self.total = ConfusionMatrix(self.k)
        self.by_condition: dict[str, ConfusionMatrix] = {}
        self.by_set: dict[str, ConfusionMatrix] = {}
        self.with_sensor: dict[str, ConfusionMatrix] = {
            m: ConfusionMatrix(self.k) for m in MODALITIES
        }
        self.without_sensor: dict[str, ConfusionMatrix] = {
            m: ConfusionMatrix(self.k) for m in MODALITIES
        }
        self.windows = [
            _WindowStats(w, ConfusionMatrix(self.k), ConfusionMatrix(self.k))
            for w in scenario.windows
        ]
        self.frames: list[dict[str, Any]] = []
        self.set_counts: dict[str, int] = {}
        self.latency: list[float] = []
        self.inference: list[float] = []
        self.wait: list[float] = []
        self.segmented = 0
        self.evaluated = 0
        self.forced = 0

    def add(self, result: FrameResult, latency_s: float) -> float | None:
        """Count one frame; return its own mIoU (None without ground truth)."""
        self.segmented += 1
        self.forced += int(result.forced)
        name = set_name(result.present)
        self.set_counts[name] = self.set_counts.get(name, 0) + 1
        self.latency.append(latency_s)
        self.inference.append(result.inference_s)
        self.wait.append(result.wait_s)
        t_rel = (result.stamp_ns - self.start_ns) * 1e-9
        frame_miou = None
        truth = result.ground_truth
        if truth is not None:
            if truth.shape != result.labels.shape:
                h, w = result.labels.shape
                if not self.resize_labels:
                    raise GroundTruthError(
                        f"the ground truth of the frame at t={t_rel:.3f}s is "
                        f"{truth.shape[1]}x{truth.shape[0]} but the camera image is {w}x{h}: "
                        "label images must be the camera's size; pass --resize-labels to resize "
                        "them (nearest neighbour; the report records it)"
                    )
                truth = cv2.resize(truth, (w, h), interpolation=cv2.INTER_NEAREST)
                self.resized += 1
            cm = ConfusionMatrix(self.k).update(result.labels, truth)
            frame_miou = _miou(cm)
            self.evaluated += 1
            self.total += cm
            cond = result.condition or "unknown"
            self.by_condition.setdefault(cond, ConfusionMatrix(self.k))
            self.by_condition[cond] += cm
            self.by_set.setdefault(name, ConfusionMatrix(self.k))
            self.by_set[name] += cm
            for m in MODALITIES:
                (self.with_sensor if m in result.present else self.without_sensor)[m] += cm
            for ws in self.windows:
                side = "inside" if ws.window.contains(t_rel) else "outside"
                ws.frames[side] += 1
                ws.used[side] += int(ws.window.sensor in result.present)
                (ws.inside if side == "inside" else ws.outside).__iadd__(cm)
        self.frames.append(
            {
                "stamp": round(result.stamp_ns * 1e-9, 9),
                "t": round(t_rel, 6),
                "anchor": result.anchor,
                "present": list(result.present),
                "absent": result.absent,
                "condition": result.condition,
                "miou": frame_miou,
                "forced": result.forced,
            }
        )
        return frame_miou

    def metrics(self, log: ReplayLog, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON-ready report (see docs/replay.md, "Reading the report")."""
        summary = self.total.summary(self.class_names)
        windows = []
        for ws in self.windows:
            windows.append(
                {
                    "window": ws.window.label,
                    "kind": ws.window.kind,
                    "sensor": ws.window.sensor,
                    "start_s": ws.window.start,
                    "end_s": ws.window.end,
                    "frames_inside": ws.frames["inside"],
                    "frames_outside": ws.frames["outside"],
                    "miou_inside": _miou(ws.inside),
                    "miou_outside": _miou(ws.outside),
                    "sensor_used_inside": _fraction(ws.used["inside"], ws.frames["inside"]),
                    "sensor_used_outside": _fraction(ws.used["outside"], ws.frames["outside"]),
                }
            )
        rejected: dict[str, int] = {}
        for item in log.rejected:
            rejected[item["sensor"]] = rejected.get(item["sensor"], 0) + 1
        return {
            **(extra or {}),
            "miou": _miou(self.total),
            "accuracy": summary["accuracy"],
            "pixels": summary["pixels"],
            "per_class_iou": summary["iou"],
            "per_condition": {
                c: {"miou": _miou(cm), "pixels": cm.total}
                for c, cm in sorted(self.by_condition.items())
            },
            "per_sensor_set": {
                s: {"miou": _miou(cm), "frames": self.set_counts.get(s, 0)}
                for s, cm in sorted(self.by_set.items())
            },
            "with_without_sensor": {
                m: {"with": _miou(self.with_sensor[m]), "without": _miou(self.without_sensor[m])}
                for m in MODALITIES
            },
            "windows": windows,
            "frames": {
                "anchor_messages": log.anchor_messages,
                "segmented": self.segmented,
                "evaluated": self.evaluated,
                "without_ground_truth": self.segmented - self.evaluated,
                "dropped": max(0, log.anchor_messages - self.segmented),
                "forced": self.forced,
                "ground_truth_resized": self.resized,
                "per_sensor_set": dict(sorted(self.set_counts.items())),
            },
            "messages": {
                "read": dict(sorted(log.messages.items())),
                "rejected": dict(sorted(rejected.items())),
                "rejected_detail": log.rejected[:200],
                "dropped_by_scenario": dict(sorted(log.dropped_by_scenario.items())),
                "corrupted_by_scenario": dict(sorted(log.corrupted_by_scenario.items())),
            },
            "latency_ms": {
                "frame": _percentiles(self.latency),
                "inference": _percentiles(self.inference),
                "sync_wait_bag_time": _percentiles(self.wait),
            },
        }


def _fraction(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def summary_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for :func:`evaluation.format_table`: overall, per condition, with/without sensors."""

    def pct(v: float | None) -> float | None:
        return None if v is None else 100.0 * v

    rows: list[dict[str, Any]] = [{"slice": "all frames", "mIoU %": pct(metrics["miou"])}]
    for cond, item in metrics["per_condition"].items():
        rows.append({"slice": f"condition {cond}", "mIoU %": pct(item["miou"])})
    for m, item in metrics["with_without_sensor"].items():
        rows.append({"slice": f"with {m}", "mIoU %": pct(item["with"])})
        rows.append({"slice": f"without {m}", "mIoU %": pct(item["without"])})
    for w in metrics["windows"]:
        rows.append({"slice": f"{w['window']} inside", "mIoU %": pct(w["miou_inside"])})
        rows.append({"slice": f"{w['window']} outside", "mIoU %": pct(w["miou_outside"])})
    return rows

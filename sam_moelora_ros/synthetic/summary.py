"""Run statistics: frames per condition, class pixel shares and presence, throughput.

The class table is the evidence that every class the generator knows really appears: for each
class, the share of labelled pixels and the share of frames that contain it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from sam_moelora_ros.classes import DELIVER_CLASSES


@dataclass
class RunStats:
    """Accumulates per-frame label statistics and counts while a run progresses."""

    pixels: np.ndarray = field(default_factory=lambda: np.zeros(len(DELIVER_CLASSES), np.int64))
    present: np.ndarray = field(default_factory=lambda: np.zeros(len(DELIVER_CLASSES), np.int64))
    frames: int = 0
    per_tag: Counter = field(default_factory=Counter)
    lidar_points: int = 0
    events: int = 0

    def add(self, labels: np.ndarray, tag: str, lidar_points: int, events: int) -> None:
        """Count one frame's labels (training ids; 255 ignored) under its condition tag."""
        counts = np.bincount(labels.reshape(-1), minlength=256)[: len(DELIVER_CLASSES)]
        self.pixels += counts
        self.present += counts > 0
        self.frames += 1
        self.per_tag[tag] += 1
        self.lidar_points += lidar_points
        self.events += events

    def class_table(self) -> list[tuple[str, float, float]]:
        """(class, % of labelled pixels, % of frames containing it) for classes that appear."""
        total = max(int(self.pixels.sum()), 1)
        return [
            (name, 100.0 * self.pixels[i] / total, 100.0 * self.present[i] / max(self.frames, 1))
            for i, name in enumerate(DELIVER_CLASSES)
            if self.present[i]
        ]

    def format(self, seconds: float, outputs: list[str]) -> str:
        """A human-readable summary for the end of a CLI run."""
        lines = [
            f"wrote {self.frames} frames in {seconds:.1f} s "
            f"({self.frames / max(seconds, 1e-9):.2f} frames/s)"
        ]
        lines += [f"  {tag:<28} {n:6d} frames" for tag, n in sorted(self.per_tag.items())]
        if self.frames:
            lines.append(
                f"  mean LiDAR points/frame {self.lidar_points / self.frames:.0f}, "
                f"events/frame {self.events / self.frames:.0f}"
            )
        lines.append("  class            pixels%  frames%")
        lines += [f"  {n:<15} {p:7.2f}  {f:7.1f}" for n, p, f in self.class_table()]
        lines += [f"  output: {o}" for o in outputs]
        return "\n".join(lines)

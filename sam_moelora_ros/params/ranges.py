"""Ranges of the node's numeric parameters, and the ``limits.*`` decode budgets. No rclpy.

Why ranges and not just "> 0": a value the type allows can still stop the node. A
``sensors.event.window`` of 1e12 s overflows the nanosecond clock, 1e-10 s is no window at all,
a ``diagnostics.period`` of 1e-9 s floods /diagnostics and starves labelling, and
``model.torch_threads`` of 100000 fails deep inside the model loader. So every number is checked
against a range at start-up and on set (``specs.check_value``), and the error names the
parameter and the range.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from sam_moelora_ros.sensors.limits import MAX_EVENTS, MAX_IMAGE_PIXELS, MAX_POINTS, Limits

__all__ = ["MAX_TORCH_THREADS", "RANGES", "limits_from", "within"]

MAX_TORCH_THREADS = 1024
"""``model.torch_threads`` bound: more than any machine the node runs on has cores."""


def within(low: float, high: float, unit: str = "") -> Callable[[Any], str | None]:
    """A check that the value is a finite number in ``[low, high]``."""
    suffix = f" {unit}" if unit else ""

    def check(value: Any) -> str | None:
        try:
            ok = math.isfinite(value) and low <= value <= high
        except TypeError:
            ok = False
        return None if ok else f"must be within [{low:g}, {high:g}]{suffix}"

    return check


RANGES: dict[str, tuple[float, float, str]] = {
    "model.torch_threads": (0, MAX_TORCH_THREADS, "threads (0: torch's default)"),
    "anchor_timeout": (1e-3, 3600.0, "s"),
    "sensors.event.window": (1e-6, 10.0, "s"),
    "diagnostics.period": (0.05, 3600.0, "s"),
    "sync.poll_period": (1e-3, 10.0, "s"),
    "tolerance": (1e-6, 10.0, "s"),
    "max_wait": (0.0, 10.0, "s"),
    "stale_timeout": (1e-3, 3600.0, "s"),
    "limits.max_image_pixels": (1, 2**31 - 1, "pixels"),
    "limits.max_points": (1, 2**31 - 1, "points"),
    "limits.max_events": (1, 2**31 - 1, "events"),
}
"""Parameter (or ``sensors.<s>.`` suffix) -> ``(low, high, unit)``."""


def range_check(name: str, *, zero_means_auto: bool = False) -> Callable[[Any], str | None]:
    """The range check of parameter ``name`` (a sensor's own by its last part).

    ``zero_means_auto``: ``0`` is accepted too ("take the model's", e.g. ``sensors.event.window``).
    """
    low, high, unit = RANGES[name]
    check = within(low, high, unit)
    if not zero_means_auto:
        return check

    def zero_or_within(value: Any) -> str | None:
        problem = None if value == 0 else check(value)
        return None if problem is None else f"{problem} (or 0: the model's)"

    return zero_or_within


LIMIT_DEFAULTS = {
    "limits.max_image_pixels": (
        MAX_IMAGE_PIXELS,
        "Largest image (width x height) a message may declare: Image, JPEG/PNG headers, RVL, "
        "camera_info. Larger ones are refused before decoding.",
    ),
    "limits.max_points": (
        MAX_POINTS,
        "Largest PointCloud2 (width x height points) a message may declare.",
    ),
    "limits.max_events": (
        MAX_EVENTS,
        "Most events one event packet may declare, and the most the event window holds (the "
        "oldest go first).",
    ),
}
"""The ``limits.*`` parameters: default and description."""


def limits_from(values: Any) -> Limits:
    """The :class:`~sam_moelora_ros.sensors.limits.Limits` of checked parameter values."""
    return Limits(
        max_image_pixels=int(values["limits.max_image_pixels"]),
        max_points=int(values["limits.max_points"]),
        max_events=int(values["limits.max_events"]),
    )

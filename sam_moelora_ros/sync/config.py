"""Typed configuration of the multi-sensor synchroniser (:mod:`sam_moelora_ros.sync.synchronizer`).

Kept apart from the synchroniser so the node can build and validate a configuration from its
parameters (in an on-set-parameters callback) without touching any running state. Every check
raises ``ValueError`` naming the field, the value and what would be accepted, because a wrong
tolerance or anchor name otherwise shows up much later as "the depth is never used".

All times are seconds (float). See :mod:`.synchronizer` for what each timeout means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def _check_number(owner: str, field_name: str, value: float, *, positive: bool) -> None:
    """Reject NaN/inf, negatives, and (when ``positive``) zero, naming the field."""
    bound = "> 0" if positive else ">= 0"
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (value > 0 if positive else value >= 0)
    )
    if not ok:
        raise ValueError(f"{owner}.{field_name} must be a finite number {bound}, got {value!r}")


@dataclass(frozen=True)
class SensorSpec:
    """How one sensor takes part in frames.

    Attributes:
        name: the sensor's key in frames and status (e.g. ``"rgb"``, ``"lidar"``).
        tolerance_s: a message matches an anchor stamp ``t`` when ``|stamp - t| <= tolerance_s``.
            Half the sensor's period is a good start (0.05 s for a 10 Hz LiDAR).
        max_wait_s: how long (receive clock) an anchor may wait for this sensor to deliver a
            message at or after the anchor stamp. 0 means "use what is buffered, never wait".
        stale_timeout_s: silence (receive clock) after which the sensor counts as down: it is
            no longer waited for, and diagnostics report it ``stale``. Make it a few periods.
        enabled: a disabled sensor is ignored (its messages are rejected, frames mark it
            ``disabled``); the node can toggle this at run time.
    """

    name: str
    tolerance_s: float = 0.05
    max_wait_s: float = 0.05
    stale_timeout_s: float = 0.5
    enabled: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"SensorSpec.name must be a non-empty string, got {self.name!r}")
        owner = f"SensorSpec({self.name!r})"
        _check_number(owner, "tolerance_s", self.tolerance_s, positive=False)
        _check_number(owner, "max_wait_s", self.max_wait_s, positive=False)
        _check_number(owner, "stale_timeout_s", self.stale_timeout_s, positive=True)
        if not isinstance(self.enabled, bool):
            raise ValueError(f"{owner}.enabled must be a bool, got {self.enabled!r}")


@dataclass(frozen=True)
class SyncConfig:
    """The synchroniser's configuration: sensors, anchor chain, and the memory bounds.

    Attributes:
        sensors: one :class:`SensorSpec` per sensor; their order is the order of
            ``Frame.present`` and of the status report. A list is accepted and stored as a tuple.
        anchor: the sensor whose messages drive frames (one frame per anchor message).
        fallback_anchors: in order of preference, the sensors that drive frames while the anchor
            has been silent for longer than ``anchor_timeout_s``.
        anchor_timeout_s: silence (receive clock) after which the next alive member of the
            anchor chain takes over.
        max_buffer: most messages kept per sensor (the oldest are dropped and counted).
        max_age_s: a sensor's messages older than its own newest stamp minus this are dropped;
            arrivals that old are rejected as ``too_old``.
        max_pending: most anchor messages waiting for late sensors; on overflow the oldest is
            emitted at once with what is buffered (``Frame.forced``).
        time_jump_s: a stamp that goes back by more than this against the same sensor's newest
            stamp, or a ``now`` that goes back by more than this, is a time reset (bag loop):
            pending frames are flushed and the buffers are cleared. Smaller steps back are
            ordinary reordering.
        rate_window_s: the window over which status reports message rates.
    """

    sensors: tuple[SensorSpec, ...]
    anchor: str = "rgb"
    fallback_anchors: tuple[str, ...] = ()
    anchor_timeout_s: float = 0.5
    max_buffer: int = 32
    max_age_s: float = 2.0
    max_pending: int = 16
    time_jump_s: float = 1.0
    rate_window_s: float = 2.0
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sensors = tuple(self.sensors)
        fallbacks = tuple(self.fallback_anchors)
        object.__setattr__(self, "sensors", sensors)
        object.__setattr__(self, "fallback_anchors", fallbacks)
        if not sensors:
            raise ValueError("SyncConfig.sensors is empty; give at least the anchor's SensorSpec")
        for spec in sensors:
            if not isinstance(spec, SensorSpec):
                raise ValueError(f"SyncConfig.sensors must hold SensorSpec, got {spec!r}")
        names = tuple(s.name for s in sensors)
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"SyncConfig.sensors names must be unique; repeated: {dupes}")
        object.__setattr__(self, "_names", names)
        known = ", ".join(names)
        if self.anchor not in names:
            raise ValueError(
                f"SyncConfig.anchor {self.anchor!r} is not a configured sensor (known: {known})"
            )
        for fb in fallbacks:
            if fb == self.anchor:
                raise ValueError(
                    f"SyncConfig.fallback_anchors contains the anchor {fb!r} itself; "
                    "list only other sensors"
                )
            if fb not in names:
                raise ValueError(
                    f"SyncConfig.fallback_anchors: {fb!r} is not a configured sensor "
                    f"(known: {known})"
                )
        if len(set(fallbacks)) != len(fallbacks):
            raise ValueError(f"SyncConfig.fallback_anchors has duplicates: {list(fallbacks)}")
        by_name = {s.name: s for s in sensors}
        if not any(by_name[n].enabled for n in (self.anchor, *fallbacks)):
            raise ValueError(
                "SyncConfig.anchor: the anchor and every fallback anchor are disabled; "
                "enable at least one of them"
            )
        _check_number("SyncConfig", "anchor_timeout_s", self.anchor_timeout_s, positive=True)
        _check_number("SyncConfig", "max_age_s", self.max_age_s, positive=True)
        _check_number("SyncConfig", "time_jump_s", self.time_jump_s, positive=True)
        _check_number("SyncConfig", "rate_window_s", self.rate_window_s, positive=True)
        for name in ("max_buffer", "max_pending"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"SyncConfig.{name} must be an int >= 1, got {value!r}")

    @property
    def names(self) -> tuple[str, ...]:
        """Sensor names in configured order."""
        return self._names

    @property
    def anchor_chain(self) -> tuple[str, ...]:
        """The anchor followed by the fallback anchors, in order of preference."""
        return (self.anchor, *self.fallback_anchors)

    def spec(self, name: str) -> SensorSpec:
        """The spec of sensor ``name``; ``ValueError`` listing the known names otherwise."""
        for s in self.sensors:
            if s.name == name:
                return s
        raise ValueError(f"unknown sensor {name!r} (known: {', '.join(self._names)})")

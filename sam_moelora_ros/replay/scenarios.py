"""Sensor-failure scenarios applied to a bag while it is replayed (offline or live). No rclpy.

Why here and not in the bag: the same recording answers "what if the LiDAR died from 4 s to 9 s"
without re-recording, and the report can then compare mIoU inside and outside each window.

* ``--drop lidar@4:9``: every ``lidar`` message whose stamp lies in ``[4, 9)`` seconds from the
  bag start is withheld (the sensor goes silent, as a cut cable).
* ``--drop-rate event=0.5``: each ``event`` message is withheld with probability 0.5 (a flaky
  link); the draws come from a seeded generator, so two runs drop the same messages.
* ``--corrupt depth@2:3``: ``depth`` messages in the window keep their header but lose half of
  their payload (a truncated transfer), so the decoder rejects them: they are reported and
  skipped like any bad message on a robot.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from sam_moelora_ros import MODALITIES

KEEP, DROP, CORRUPT = "keep", "drop", "corrupt"


@dataclass(frozen=True)
class Window:
    """``kind`` (drop/corrupt) of ``sensor`` for bag-relative seconds ``[start, end)``."""

    kind: str
    sensor: str
    start: float
    end: float

    @property
    def label(self) -> str:
        return f"{self.kind} {self.sensor}@{self.start:g}:{self.end:g}"

    def contains(self, t_rel: float) -> bool:
        return self.start <= t_rel < self.end

    @classmethod
    def parse(cls, kind: str, text: str) -> Window:
        """``lidar@4:9`` -> Window(kind, "lidar", 4.0, 9.0); errors say what is expected."""
        sensor, _, span = text.partition("@")
        try:
            start, end = (float(v) for v in span.split(":"))
        except ValueError:
            raise ValueError(
                f"--{kind} {text!r}: expected SENSOR@START:END seconds, e.g. lidar@4:9"
            ) from None
        if sensor not in MODALITIES:
            raise ValueError(f"--{kind} {text!r}: sensor must be one of {list(MODALITIES)}")
        if not 0 <= start < end:
            raise ValueError(f"--{kind} {text!r}: need 0 <= START < END")
        return cls(kind, sensor, start, end)


def parse_rate(text: str) -> tuple[str, float]:
    """``event=0.5`` -> ("event", 0.5)."""
    sensor, _, value = text.partition("=")
    try:
        rate = float(value)
    except ValueError:
        raise ValueError(f"--drop-rate {text!r}: expected SENSOR=P, e.g. event=0.5") from None
    if sensor not in MODALITIES or not 0.0 <= rate <= 1.0:
        raise ValueError(
            f"--drop-rate {text!r}: sensor must be one of {list(MODALITIES)}, 0 <= P <= 1"
        )
    return sensor, rate


@dataclass
class Scenario:
    """The windows and drop rates of one replay, with a seeded generator per sensor."""

    windows: tuple[Window, ...] = ()
    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    _rngs: dict[str, np.random.Generator] = field(default_factory=dict, repr=False)

    @classmethod
    def parse(
        cls,
        drop: list[str] | None = None,
        drop_rate: list[str] | None = None,
        corrupt: list[str] | None = None,
        seed: int = 0,
    ) -> Scenario:
        windows = [Window.parse("drop", t) for t in drop or ()]
        windows += [Window.parse("corrupt", t) for t in corrupt or ()]
        return cls(tuple(windows), dict(parse_rate(t) for t in drop_rate or ()), seed)

    def action(self, sensor: str, t_rel: float) -> str:
        """What happens to a ``sensor`` message at ``t_rel`` s: keep, drop or corrupt.

        Call it once per message, in replay order: the drop-rate draw advances the generator.
        """
        rate = self.rates.get(sensor)
        if rate:
            rng = self._rngs.get(sensor)
            if rng is None:
                rng = self._rngs[sensor] = np.random.default_rng(
                    [self.seed, MODALITIES.index(sensor)]
                )
            if rng.random() < rate:
                return DROP
        for window in self.windows:
            if window.sensor == sensor and window.contains(t_rel):
                return DROP if window.kind == "drop" else CORRUPT
        return KEEP

    def describe(self) -> list[str]:
        return [w.label for w in self.windows] + [
            f"drop-rate {s}={r:g}" for s, r in self.rates.items()
        ]


def corrupt_message(msg: object) -> object:
    """A copy of ``msg`` whose ``data`` payload is cut in half (header and sizes kept)."""
    out = copy.copy(msg)
    data = getattr(msg, "data", None)
    if data is not None:
        out.data = np.asarray(data, dtype=np.uint8)[: max(1, len(data) // 2)].copy()  # type: ignore[attr-defined]
    return out

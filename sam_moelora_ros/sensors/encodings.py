"""The input contract: how every modality's network image is made, by name and parameters.

Why a contract: a model learns the pixels it was trained on. If a dataset reader made depth
images over 80 m and the robot made them over 10 m, or a dataset shipped pre-rendered LiDAR images
that the node cannot reproduce from a point cloud, the served model would see other inputs than
it learned, and nothing would fail. So each modality's encoding is a *name* plus its *parameters*
(``depth: {"name": "linear", "max_range": 80.0}``); dataset readers say which encoding their files
hold, training records it in the adapter (safetensors metadata ``input_encodings``), and the node,
replay and evaluation build every network image from the adapter's contract. The encoders
themselves are in :mod:`.representation` (``encode_depth``, ``encode_lidar``, ``encode_events``);
this module holds the names, the parameters, their defaults and their checks, and nothing else
in the package repeats a constant of them.

Encodings (``live``: the node can compute it from its messages; the others exist only in datasets
and a model trained on them is refused on the robot, see :meth:`InputContract.check_servable`):

========  ===================  =====  =====================================================
modality  name                 live   parameters (default)
========  ===================  =====  =====================================================
rgb       ``rgb8``             yes    -- (8-bit RGB; the model standardises it itself)
depth     ``linear``           yes    ``max_range`` (80 m): ``1 + round(254 d / max_range)``
depth     ``hha``              no     -- (DELIVER's ``hha/`` folder: HHA needs the camera's
                                      height and gravity, which the node does not compute)
lidar     ``range_intensity``  yes    ``max_range`` (80 m), ``max_intensity`` (255),
                                      ``fill_radius`` (1 px)
lidar     ``deliver_png``      no     -- (DELIVER's pre-rendered LiDAR images: undocumented)
event     ``frame``            yes    ``window`` (0.05 s), ``max_count`` (0 = 99th percentile
                                      of the frame's counts)
event     ``voxel``            yes    ``bins`` (3), ``window``, ``max_count``
event     ``deliver_png``      no     -- (DELIVER's pre-rendered event images)
any       ``dataset_png``      no     ``dataset`` -- a dataset's own stored images (MUSES,
                                      MCubeS) that no sensor message reproduces
========  ===================  =====  =====================================================
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sam_moelora_ros.errors import SamMoeLoraError

__all__ = [
    "DEFAULT_CONTRACT",
    "DEPTH_MAX_RANGE",
    "ENCODINGS",
    "EVENT_WINDOW",
    "LIDAR_FILL_RADIUS",
    "LIDAR_MAX_INTENSITY",
    "LIDAR_MAX_RANGE",
    "METADATA_KEY",
    "Encoding",
    "EncodingError",
    "InputContract",
]

METADATA_KEY = "input_encodings"
"""The adapter's safetensors metadata key (and the ONNX manifest's, the dataset file's stem)."""

DEPTH_MAX_RANGE = 80.0
"""Metres at which linear depth saturates (one grey level ~0.31 m)."""
LIDAR_MAX_RANGE = 80.0
"""Metres at which the LiDAR range channels saturate."""
LIDAR_MAX_INTENSITY = 255.0
"""LiDAR intensity at which channel 2 saturates (drivers' 8-bit reflectivity scale)."""
LIDAR_FILL_RADIUS = 1
"""Pixels over which holes between projected LiDAR returns are filled (3x3 window)."""
EVENT_WINDOW = 0.05
"""Seconds of events in one event image (the synthetic generator's 20 Hz frame interval)."""
EVENT_MAX_COUNT = 0.0
"""Event count mapped to full brightness; 0: the 99th percentile of the image's own counts."""
EVENT_VOXEL_BINS = 3
"""Time bins of the voxel grid (one per channel of the 3-channel image)."""

MAX_RANGE_LIMIT = 10_000.0
"""Largest accepted ``max_range`` (m); anything beyond is a unit mistake (mm for m)."""


class EncodingError(SamMoeLoraError, ValueError):
    """An input encoding is unknown, malformed, or cannot be served (the message says which)."""


@dataclass(frozen=True)
class EncodingSpec:
    """A known encoding: its parameters' defaults, whether the node computes it, and why not."""

    name: str
    defaults: Mapping[str, float | int | str]
    live: bool
    not_live_reason: str = ""


_PNG_REASON = "its images are pre-rendered by the dataset and no sensor message reproduces them"
ENCODINGS: dict[str, dict[str, EncodingSpec]] = {
    "rgb": {"rgb8": EncodingSpec("rgb8", {}, live=True)},
    "depth": {
        "linear": EncodingSpec("linear", {"max_range": DEPTH_MAX_RANGE}, live=True),
        "hha": EncodingSpec(
            "hha",
            {},
            live=False,
            not_live_reason="HHA needs the camera's height above ground and the gravity "
            "direction per frame, which the node does not compute from depth and camera_info",
        ),
    },
    "lidar": {
        "range_intensity": EncodingSpec(
            "range_intensity",
            {
                "max_range": LIDAR_MAX_RANGE,
                "max_intensity": LIDAR_MAX_INTENSITY,
                "fill_radius": LIDAR_FILL_RADIUS,
            },
            live=True,
        ),
        "deliver_png": EncodingSpec(
            "deliver_png",
            {},
            live=False,
            not_live_reason="DELIVER does not document how " + _PNG_REASON,
        ),
    },
    "event": {
        "frame": EncodingSpec(
            "frame", {"window": EVENT_WINDOW, "max_count": EVENT_MAX_COUNT}, live=True
        ),
        "voxel": EncodingSpec(
            "voxel",
            {"bins": EVENT_VOXEL_BINS, "window": EVENT_WINDOW, "max_count": EVENT_MAX_COUNT},
            live=True,
        ),
        "deliver_png": EncodingSpec(
            "deliver_png", {}, live=False, not_live_reason="DELIVER's event images: " + _PNG_REASON
        ),
    },
}
"""modality -> encoding name -> spec. Every modality also takes ``dataset_png`` (not live)."""
DATASET_PNG = EncodingSpec("dataset_png", {"dataset": ""}, live=False, not_live_reason=_PNG_REASON)


def _spec(modality: str, name: str) -> EncodingSpec:
    if name == DATASET_PNG.name:
        return DATASET_PNG
    known = ENCODINGS.get(modality, {})
    if name not in known:
        names = sorted([*known, DATASET_PNG.name])
        raise EncodingError(
            f"unknown {modality} input encoding {name!r}; known: {names} (see docs/method.md, "
            "'The input contract')"
        )
    return known[name]


def _check_value(modality: str, name: str, key: str, value: Any, default: Any) -> Any:
    """A parameter value of the default's type and in its range, or :class:`EncodingError`."""
    where = f"{modality} encoding {name!r} parameter {key!r}"
    if isinstance(default, str):
        if not isinstance(value, str) or len(value) > 200:
            raise EncodingError(f"{where} must be a short string, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EncodingError(f"{where} must be a number, got {value!r}")
    if isinstance(default, int):
        if float(value) != int(value) or not 0 <= int(value) <= 127:
            raise EncodingError(f"{where} must be an integer in [0, 127], got {value!r}")
        if key == "bins" and int(value) != EVENT_VOXEL_BINS:
            raise EncodingError(f"{where} must be {EVENT_VOXEL_BINS} (one bin per channel)")
        return int(value)
    number = float(value)
    low_ok = number >= 0 if key == "max_count" else number > 0
    if not (math.isfinite(number) and low_ok and number <= MAX_RANGE_LIMIT):
        bound = ">= 0" if key == "max_count" else "> 0"
        raise EncodingError(f"{where} must be a finite number {bound} and <= {MAX_RANGE_LIMIT:g}")
    return number


@dataclass(frozen=True)
class Encoding:
    """One modality's encoding: a known name and every one of its parameters (defaults filled)."""

    modality: str
    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def make(cls, modality: str, name: str, **params: Any) -> Encoding:
        """The encoding with ``params`` checked and the missing ones at their defaults."""
        spec = _spec(modality, name)
        unknown = sorted(set(params) - set(spec.defaults))
        if unknown:
            raise EncodingError(
                f"{modality} encoding {name!r} has no parameter(s) {unknown}; it takes "
                f"{sorted(spec.defaults) or 'none'}"
            )
        values = {
            key: _check_value(modality, name, key, params.get(key, default), default)
            for key, default in spec.defaults.items()
        }
        return cls(modality, name, dict(sorted(values.items())))

    @property
    def live(self) -> bool:
        """Whether the node can compute this encoding from its sensor messages."""
        return _spec(self.modality, self.name).live

    def __getitem__(self, key: str) -> Any:
        return self.params[key]

    def to_dict(self) -> dict[str, Any]:
        """``{"name": ..., <parameters>}``: the JSON form stored in adapters."""
        return {"name": self.name, **self.params}

    def describe(self) -> str:
        """``linear(max_range=80)``: for logs and ``model_summary``."""
        inner = ", ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.params.items()
        )
        return f"{self.name}({inner})"


@dataclass(frozen=True)
class InputContract(Mapping[str, Encoding]):
    """Every modality's :class:`Encoding` of one model or one dataset (a read-only mapping)."""

    encodings: Mapping[str, Encoding]

    def __getitem__(self, modality: str) -> Encoding:
        return self.encodings[modality]

    def __iter__(self) -> Iterator[str]:
        return iter(self.encodings)

    def __len__(self) -> int:
        return len(self.encodings)

    @classmethod
    def from_dict(cls, data: Any, source: str = "input_encodings") -> InputContract:
        """``{modality: {"name": ..., <parameters>}}`` -> contract; :class:`EncodingError` names
        ``source``, the modality and the field when anything is off."""
        if not isinstance(data, Mapping):
            raise EncodingError(f"{source} must be an object {{modality: {{name, ...}}}}")
        out: dict[str, Encoding] = {}
        for modality, entry in data.items():
            if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
                raise EncodingError(f"{source}: {modality!r} must be an object with a 'name'")
            params = {k: v for k, v in entry.items() if k != "name"}
            try:
                out[str(modality)] = Encoding.make(str(modality), entry["name"], **params)
            except EncodingError as exc:
                raise EncodingError(f"{source}: {exc}") from exc
        return cls(out)

    @classmethod
    def from_json(cls, text: str, source: str = "input_encodings") -> InputContract:
        if len(text) > 100_000:
            raise EncodingError(f"{source} is {len(text)} characters; a contract is a few hundred")
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise EncodingError(f"{source} is not valid JSON: {exc}") from exc
        return cls.from_dict(data, source)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {m: e.to_dict() for m, e in self.encodings.items()}

    def to_json(self) -> str:
        """Sorted, compact JSON (the adapter metadata value)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def restrict(self, modalities: Sequence[str]) -> InputContract:
        """This contract for ``modalities`` alone; a modality it lacks gets its default."""
        return InputContract({m: self.get(m) or default_encoding(m) for m in modalities})

    def replace(self, modality: str, name: str | None = None, **params: Any) -> InputContract:
        """A copy with one modality's encoding (name and/or parameters) changed, checked."""
        current = self.encodings[modality]
        merged = {**current.params, **params} if name in (None, current.name) else params
        new = Encoding.make(modality, name or current.name, **merged)
        return InputContract({**self.encodings, modality: new})

    def check_servable(self, modalities: Sequence[str], what: str = "the model") -> None:
        """Refuse, in one line, the first enabled modality whose encoding the node cannot compute.

        ``modalities``: the sensors that will feed the model (enabled and known to it).
        """
        for modality in modalities:
            enc = self.encodings.get(modality)
            if enc is not None and not enc.live:
                reason = _spec(modality, enc.name).not_live_reason
                raise EncodingError(
                    f"{what} takes {modality} as input encoding {enc.name!r}, which the node "
                    f"cannot compute from sensor messages ({reason}); retrain with a live "
                    f"{modality} encoding ({', '.join(live_names(modality)) or 'none'}) or "
                    f"disable the {modality} sensor (sensors.{modality}.enabled: false)"
                )

    def describe(self) -> str:
        """One line per modality, for ``model_summary`` and logs."""
        return "\n".join(f"{m}: {e.describe()}" for m, e in self.encodings.items())


def live_names(modality: str) -> list[str]:
    """The encodings of ``modality`` the node can compute."""
    return [n for n, s in ENCODINGS.get(modality, {}).items() if s.live]


def default_encoding(modality: str) -> Encoding:
    """Today's live encoding of ``modality`` (the first listed), or ``dataset_png`` for others."""
    names = live_names(modality)
    if names:
        return Encoding.make(modality, names[0])
    return Encoding.make(modality, DATASET_PNG.name, dataset="unknown")


DEFAULT_CONTRACT = InputContract(
    {m: default_encoding(m) for m in ("rgb", "depth", "event", "lidar")}
)
"""The encodings the node used before models recorded theirs: what adapters without
``input_encodings`` (and the synthetic generator) get."""

"""Scene primitives as flat numpy arrays: boxes, vertical cylinders and ellipsoids.

Storing each shape kind as one set of arrays (instead of a list of objects) is what lets the ray
caster intersect all rays with all candidate primitives in a handful of vectorised numpy calls.
Every primitive carries its DELIVER class, an object id, a colour, a texture kind, a LiDAR
reflectivity and an x velocity (moving traffic); materials are chosen per object so that colour
alone does not give the class away.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from sam_moelora_ros.classes import DELIVER_CLASSES, DELIVER_ID


class Texture(IntEnum):
    """Procedural texture kinds evaluated by the shader (see ``shading.py``)."""

    PLAIN = 0
    ASPHALT = 1
    CONCRETE = 2
    FACADE = 3
    FOLIAGE = 4
    GRASS = 5
    STRIPES = 6
    PAINT = 7
    BRICK = 8
    GRAVEL = 9
    RAILS = 10
    CLOTH = 11
    LAMP = 12


class Kind(IntEnum):
    """Shape kinds; ``GROUND`` and ``SKY`` are the analytic plane and the miss case."""

    BOX = 0
    CYLINDER = 1
    ELLIPSOID = 2
    GROUND = 3
    SKY = 4


# LiDAR reflectivity in [0, 1] per class (lane paint and signs are retro-reflective).
REFLECTIVITY = {
    "Building": 0.35,
    "Fence": 0.3,
    "Pedestrian": 0.3,
    "Pole": 0.4,
    "RoadLine": 0.9,
    "Road": 0.12,
    "SideWalk": 0.3,
    "Vegetation": 0.22,
    "Cars": 0.45,
    "Wall": 0.35,
    "TrafficSign": 1.0,
    "Ground": 0.2,
    "Bridge": 0.35,
    "RailTrack": 0.25,
    "GroundRail": 0.7,
    "TrafficLight": 0.5,
    "Static": 0.35,
    "Dynamic": 0.4,
    "Terrain": 0.2,
    "TwoWheeler": 0.5,
    "Bus": 0.5,
    "Truck": 0.5,
}

SCENE_CLASSES: tuple[str, ...] = tuple(c for c in DELIVER_CLASSES if c not in ("Other", "Water"))
"""DELIVER classes the generator can produce; ``Other`` and ``Water`` never appear."""


@dataclass
class ShapeArrays:
    """One shape kind's primitives. ``geom`` columns depend on the kind.

    - box: (P, 6) ``xmin, ymin, zmin, xmax, ymax, zmax`` (axis-aligned, street-aligned)
    - cylinder: (P, 5) ``cx, cy, radius, zmin, zmax`` (vertical axis, capped)
    - ellipsoid: (P, 6) ``cx, cy, cz, rx, ry, rz``
    """

    geom: np.ndarray
    label: np.ndarray
    obj: np.ndarray
    colour: np.ndarray
    texture: np.ndarray
    reflectivity: np.ndarray
    emissive: np.ndarray
    velocity: np.ndarray

    def __len__(self) -> int:
        return int(self.geom.shape[0])

    def at(self, t: float, kind: Kind) -> np.ndarray:
        """Geometry at time ``t``: moving objects shifted along x by ``velocity * t``."""
        geom = self.geom.copy()
        shift = self.velocity * t
        if kind == Kind.BOX:
            geom[:, 0] += shift
            geom[:, 3] += shift
        else:
            geom[:, 0] += shift
        return geom


def bounding_spheres(kind: Kind, geom: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres (P, 3) and radii (P,) enclosing each primitive, for cone culling."""
    if kind == Kind.BOX:
        lo, hi = geom[:, :3], geom[:, 3:]
        return (lo + hi) / 2.0, np.linalg.norm(hi - lo, axis=1) / 2.0
    if kind == Kind.CYLINDER:
        centre = np.stack([geom[:, 0], geom[:, 1], (geom[:, 3] + geom[:, 4]) / 2.0], axis=1)
        return centre, np.hypot(geom[:, 2], (geom[:, 4] - geom[:, 3]) / 2.0)
    return geom[:, :3].copy(), geom[:, 3:].max(axis=1)


@dataclass
class SceneBuilder:
    """Accumulates primitives object by object, then freezes them into :class:`ShapeArrays`."""

    rows: dict[Kind, list[tuple]] = field(
        default_factory=lambda: {Kind.BOX: [], Kind.CYLINDER: [], Kind.ELLIPSOID: []}
    )
    next_obj: int = 0

    def new_object(self) -> int:
        """Reserve an object id (shared by the primitives of one car, tree, lamp, ...)."""
        self.next_obj += 1
        return self.next_obj

    def add(
        self,
        kind: Kind,
        geom: tuple[float, ...],
        cls: str,
        obj: int,
        colour: tuple[float, float, float],
        texture: Texture,
        emissive: float = 0.0,
        velocity: float = 0.0,
    ) -> None:
        """Add one primitive of class ``cls`` (a DELIVER class name) to object ``obj``."""
        if cls not in REFLECTIVITY:
            raise ValueError(f"class {cls!r} is not a scene class; use one of {SCENE_CLASSES}")
        row = (geom, DELIVER_ID[cls], obj, colour, int(texture), REFLECTIVITY[cls], emissive)
        self.rows[kind].append((*row, velocity))

    def box(self, lo: tuple[float, ...], hi: tuple[float, ...], cls: str, obj: int, **kw) -> None:
        """Add an axis-aligned box from its min and max corners."""
        self.add(Kind.BOX, (*lo, *hi), cls, obj, **kw)

    def build(self) -> dict[Kind, ShapeArrays]:
        """Freeze into per-kind arrays (empty kinds get zero-length arrays)."""
        width = {Kind.BOX: 6, Kind.CYLINDER: 5, Kind.ELLIPSOID: 6}
        out: dict[Kind, ShapeArrays] = {}
        for kind, rows in self.rows.items():
            n = len(rows)
            out[kind] = ShapeArrays(
                geom=np.array([r[0] for r in rows], dtype=np.float64).reshape(n, width[kind]),
                label=np.array([r[1] for r in rows], dtype=np.uint8),
                obj=np.array([r[2] for r in rows], dtype=np.int32),
                colour=np.array([r[3] for r in rows], dtype=np.float64).reshape(n, 3),
                texture=np.array([r[4] for r in rows], dtype=np.int16),
                reflectivity=np.array([r[5] for r in rows], dtype=np.float64),
                emissive=np.array([r[6] for r in rows], dtype=np.float64),
                velocity=np.array([r[7] for r in rows], dtype=np.float64),
            )
        return out

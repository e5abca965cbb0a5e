"""Road users: cars, buses, trucks, pedestrians and two-wheelers (the classes that move).

Each builder adds a few primitives sharing one object id and one x velocity, so a whole vehicle
moves rigidly. Colours come from the shared, deliberately overlapping palettes in ``objects``.
"""

from __future__ import annotations

import numpy as np

from sam_moelora_ros.synthetic.objects import CLOTH_COLOURS, FACADE_COLOURS, VEHICLE_COLOURS, pick
from sam_moelora_ros.synthetic.primitives import Kind, SceneBuilder, Texture


def car(b: SceneBuilder, rng: np.random.Generator, x: float, y: float, v: float = 0.0) -> None:
    """A car: body, cabin (glass-dark) and a dark undercarriage; lights glow at night."""
    obj = b.new_object()
    length, width = rng.uniform(4.0, 4.9), rng.uniform(1.7, 1.95)
    col = pick(rng, VEHICLE_COLOURS)
    x0, hw = x - length / 2.0, width / 2.0
    kw = {"velocity": v}
    b.box(
        (x0, y - hw, 0.3),
        (x0 + length, y + hw, 1.0),
        "Cars",
        obj,
        colour=col,
        texture=Texture.PAINT,
        **kw,
    )
    c0 = x0 + length * rng.uniform(0.25, 0.35)
    b.box(
        (c0, y - hw + 0.1, 1.0),
        (c0 + length * 0.45, y + hw - 0.1, 1.45),
        "Cars",
        obj,
        colour=tuple(0.4 * np.array(col) + 0.03),
        texture=Texture.PAINT,
        **kw,
    )
    b.box(
        (x0 + 0.3, y - hw + 0.05, 0.02),
        (x0 + length - 0.3, y + hw - 0.05, 0.3),
        "Cars",
        obj,
        colour=(0.03, 0.03, 0.03),
        texture=Texture.PLAIN,
        **kw,
    )
    for end, lamp in ((x0 - 0.02, (0.9, 0.1, 0.05)), (x0 + length - 0.04, (1.0, 0.95, 0.8))):
        for dy in (-hw + 0.15, hw - 0.45):
            b.box(
                (end, y + dy, 0.7),
                (end + 0.06, y + dy + 0.3, 0.85),
                "Cars",
                obj,
                colour=lamp,
                texture=Texture.LAMP,
                emissive=0.6,
                **kw,
            )


def big_vehicle(
    b: SceneBuilder, rng: np.random.Generator, x: float, y: float, cls: str, v: float = 0.0
) -> float:
    """A bus (one long box with a window band) or a truck (cab + cargo box); returns its length."""
    obj = b.new_object()
    col = pick(rng, VEHICLE_COLOURS, 0.08)
    hw, kw = 1.25, {"velocity": v}
    if cls == "Bus":
        length = rng.uniform(10.0, 12.5)
        x0 = x - length / 2.0
        b.box(
            (x0, y - hw, 0.35),
            (x0 + length, y + hw, 3.2),
            "Bus",
            obj,
            colour=col,
            texture=Texture.PAINT,
            **kw,
        )
        b.box(
            (x0 + 0.5, y - hw - 0.02, 1.5),
            (x0 + length - 0.3, y + hw + 0.02, 2.6),
            "Bus",
            obj,
            colour=(0.06, 0.07, 0.08),
            texture=Texture.PAINT,
            emissive=0.08,
            **kw,
        )
    else:
        length = rng.uniform(8.0, 10.5)
        x0 = x - length / 2.0
        b.box(
            (x0, y - hw, 1.0),
            (x0 + length - 2.4, y + hw, rng.uniform(3.2, 3.8)),
            "Truck",
            obj,
            colour=pick(rng, FACADE_COLOURS),
            texture=Texture.CONCRETE,
            **kw,
        )
        b.box(
            (x0 + length - 2.3, y - hw, 0.5),
            (x0 + length, y + hw, 3.0),
            "Truck",
            obj,
            colour=col,
            texture=Texture.PAINT,
            **kw,
        )
    b.box(
        (x0 + 0.5, y - hw + 0.1, 0.02),
        (x0 + length - 0.5, y + hw - 0.1, 1.0),
        cls,
        obj,
        colour=(0.04, 0.04, 0.04),
        texture=Texture.PLAIN,
        **kw,
    )
    return length


def pedestrian(b: SceneBuilder, rng: np.random.Generator, x: float, y: float, z0: float) -> None:
    """A person: a cylinder for legs and torso (two cloth colours), an ellipsoid head."""
    obj = b.new_object()
    h = rng.uniform(1.5, 1.9)
    r = rng.uniform(0.18, 0.26)
    v = float(rng.choice([0.0, 1.3, -1.3])) * rng.uniform(0.7, 1.1)
    b.add(
        Kind.CYLINDER,
        (x, y, r, z0, z0 + h * 0.86),
        "Pedestrian",
        obj,
        colour=pick(rng, CLOTH_COLOURS, 0.1),
        texture=Texture.CLOTH,
        velocity=v,
    )
    skin = pick(rng, np.array([[0.6, 0.45, 0.35], [0.35, 0.22, 0.15], [0.75, 0.6, 0.5]]))
    b.add(
        Kind.ELLIPSOID,
        (x, y, z0 + h * 0.93, 0.11, 0.11, h * 0.07),
        "Pedestrian",
        obj,
        colour=skin,
        texture=Texture.PLAIN,
        velocity=v,
    )


def two_wheeler(
    b: SceneBuilder, rng: np.random.Generator, x: float, y: float, z0: float, v: float
) -> None:
    """A bicycle or motorbike with its rider; the whole actor is TwoWheeler (CARLA's labelling)."""
    obj = b.new_object()
    col = pick(rng, VEHICLE_COLOURS)
    b.box(
        (x - 0.85, y - 0.15, z0 + 0.05),
        (x + 0.85, y + 0.15, z0 + 0.95),
        "TwoWheeler",
        obj,
        colour=col,
        texture=Texture.STRIPES,
        velocity=v,
    )
    if v != 0.0 or rng.random() < 0.3:
        b.add(
            Kind.CYLINDER,
            (x, y, 0.22, z0 + 0.9, z0 + 1.6),
            "TwoWheeler",
            obj,
            colour=pick(rng, CLOTH_COLOURS),
            texture=Texture.CLOTH,
            velocity=v,
        )
        b.add(
            Kind.ELLIPSOID,
            (x + 0.1, y, z0 + 1.72, 0.13, 0.13, 0.14),
            "TwoWheeler",
            obj,
            colour=pick(rng, VEHICLE_COLOURS),
            texture=Texture.PAINT,
            velocity=v,
        )

"""Builders for the street's static objects: each adds a few primitives of one DELIVER class.

Colours come from overlapping palettes on purpose (grey cars on grey asphalt, beige walls beside
beige facades, green buses beside hedges) so that a segmenter has to use shape, context and the
other modalities, not a colour lookup. All coordinates are world metres, x along the street,
y to the left, z up; ``side`` is +1 (left) or -1 (right) of the street centre.
"""

from __future__ import annotations

import itertools

import numpy as np

from sam_moelora_ros.synthetic.primitives import Kind, SceneBuilder, Texture

FACADE_COLOURS = np.array(
    [
        [0.55, 0.52, 0.48],
        [0.62, 0.55, 0.42],
        [0.45, 0.25, 0.2],
        [0.7, 0.7, 0.68],
        [0.35, 0.36, 0.38],
    ]
)
VEHICLE_COLOURS = np.array(
    [
        [0.05, 0.05, 0.05],
        [0.7, 0.7, 0.72],
        [0.35, 0.35, 0.37],
        [0.5, 0.06, 0.05],
        [0.08, 0.15, 0.4],
        [0.8, 0.8, 0.78],
        [0.15, 0.3, 0.12],
        [0.6, 0.45, 0.1],
    ]
)
CLOTH_COLOURS = np.array(
    [[0.05, 0.05, 0.06], [0.2, 0.22, 0.35], [0.5, 0.1, 0.1], [0.6, 0.6, 0.55], [0.3, 0.25, 0.15]]
)


def pick(rng: np.random.Generator, palette: np.ndarray, jitter: float = 0.06) -> tuple:
    """A palette colour with per-object jitter, clipped to valid albedo."""
    base = palette[rng.integers(len(palette))]
    return tuple(np.clip(base + rng.normal(0.0, jitter, 3), 0.02, 0.95).tolist())


def street_lamp(b: SceneBuilder, x: float, y: float, side: int, z0: float) -> tuple:
    """A lamp post with an arm over the road; returns the lamp head position (a night light)."""
    obj = b.new_object()
    grey = (0.3, 0.31, 0.32)
    b.add(Kind.CYLINDER, (x, y, 0.1, z0, z0 + 7.5), "Pole", obj, colour=grey, texture=Texture.PAINT)
    ya, yb = sorted((y, y - side * 1.8))
    b.box(
        (x - 0.06, ya, z0 + 7.3),
        (x + 0.06, yb, z0 + 7.45),
        "Pole",
        obj,
        colour=grey,
        texture=Texture.PAINT,
    )
    yh = y - side * 1.7
    b.box(
        (x - 0.3, yh - 0.18, z0 + 7.1),
        (x + 0.3, yh + 0.18, z0 + 7.3),
        "Pole",
        obj,
        colour=(0.9, 0.85, 0.7),
        texture=Texture.LAMP,
        emissive=1.0,
    )
    return (x, yh, z0 + 7.05)


def tree(b: SceneBuilder, rng: np.random.Generator, x: float, y: float, z0: float) -> None:
    """A trunk and an ellipsoid crown, both Vegetation (as CARLA labels trees)."""
    obj = b.new_object()
    h = rng.uniform(2.0, 3.5)
    bark = tuple((np.array([0.25, 0.18, 0.12]) * rng.uniform(0.7, 1.3)).tolist())
    b.add(
        Kind.CYLINDER,
        (x, y, rng.uniform(0.12, 0.25), z0, z0 + h + 0.5),
        "Vegetation",
        obj,
        colour=bark,
        texture=Texture.PLAIN,
    )
    r = rng.uniform(1.5, 3.0)
    leaf = pick(rng, np.array([[0.12, 0.3, 0.08], [0.2, 0.32, 0.1], [0.3, 0.35, 0.12]]), 0.04)
    b.add(
        Kind.ELLIPSOID,
        (x, y, z0 + h + r * 0.8, r, r, r * rng.uniform(0.8, 1.3)),
        "Vegetation",
        obj,
        colour=leaf,
        texture=Texture.FOLIAGE,
    )


def traffic_sign(b: SceneBuilder, rng: np.random.Generator, x: float, y: float, z0: float) -> None:
    """A thin pole and a plate facing the traffic (normal along -x)."""
    obj = b.new_object()
    h = rng.uniform(2.2, 3.0)
    b.add(
        Kind.CYLINDER,
        (x, y, 0.04, z0, z0 + h),
        "Pole",
        obj,
        colour=(0.5, 0.5, 0.5),
        texture=Texture.PAINT,
    )
    col = pick(
        rng,
        np.array([[0.7, 0.05, 0.05], [0.05, 0.15, 0.6], [0.85, 0.75, 0.1], [0.9, 0.9, 0.9]]),
        0.03,
    )
    s = rng.uniform(0.3, 0.45)
    b.box(
        (x - 0.07, y - s, z0 + h - 0.1),
        (x - 0.04, y + s, z0 + h + 2 * s - 0.1),
        "TrafficSign",
        obj,
        colour=col,
        texture=Texture.PLAIN,
    )


def traffic_light(b: SceneBuilder, x: float, y: float, side: int, z0: float, arm: float) -> None:
    """A signal pole with a housing at head height and one hanging over the road on an arm."""
    obj = b.new_object()
    dark = (0.08, 0.08, 0.07)
    b.add(
        Kind.CYLINDER,
        (x, y, 0.12, z0, z0 + 5.6),
        "Pole",
        obj,
        colour=(0.35, 0.35, 0.33),
        texture=Texture.PAINT,
    )
    ya, yb = sorted((y, y - side * arm))
    b.box(
        (x - 0.08, ya, z0 + 5.4),
        (x + 0.08, yb, z0 + 5.55),
        "Pole",
        obj,
        colour=(0.35, 0.35, 0.33),
        texture=Texture.PAINT,
    )
    for yc, zc in ((y - side * 0.35, z0 + 2.6), (y - side * (arm - 0.5), z0 + 4.3)):
        b.box(
            (x - 0.35, yc - 0.18, zc),
            (x - 0.1, yc + 0.18, zc + 1.0),
            "TrafficLight",
            obj,
            colour=dark,
            texture=Texture.PLAIN,
        )
        b.box(
            (x - 0.38, yc - 0.1, zc + 0.1),
            (x - 0.34, yc + 0.1, zc + 0.3),
            "TrafficLight",
            obj,
            colour=(0.1, 0.9, 0.3),
            texture=Texture.LAMP,
            emissive=0.9,
        )


def street_furniture(
    b: SceneBuilder, rng: np.random.Generator, x: float, y: float, z0: float, side: int
) -> None:
    """Static (bench, bus shelter, planter) or Dynamic (bins, carts, scooters' racks) clutter."""
    obj = b.new_object()
    col = pick(rng, np.vstack([FACADE_COLOURS, VEHICLE_COLOURS]), 0.08)
    if rng.random() < 0.55:
        kind = rng.integers(3)
        if kind == 0:  # bench
            b.box(
                (x - 0.9, y - 0.25, z0 + 0.35),
                (x + 0.9, y + 0.25, z0 + 0.9),
                "Static",
                obj,
                colour=col,
                texture=Texture.STRIPES,
            )
        elif kind == 1:  # bus shelter
            yb = y + side * 0.6
            ya, yc = sorted((y, yb + side * 0.1))
            b.box(
                (x - 2.0, ya, z0),
                (x + 2.0, yc, z0 + 2.5),
                "Static",
                obj,
                colour=col,
                texture=Texture.CONCRETE,
            )
        else:  # planter / electrical box
            b.box(
                (x - 0.5, y - 0.4, z0),
                (x + 0.5, y + 0.4, z0 + 1.1),
                "Static",
                obj,
                colour=col,
                texture=Texture.CONCRETE,
            )
    else:
        if rng.random() < 0.5:  # wheelie bin
            b.box(
                (x - 0.35, y - 0.35, z0),
                (x + 0.35, y + 0.35, z0 + 1.05),
                "Dynamic",
                obj,
                colour=col,
                texture=Texture.PAINT,
            )
        else:  # round bin / cart
            b.add(
                Kind.CYLINDER,
                (x, y, 0.3, z0, z0 + 0.95),
                "Dynamic",
                obj,
                colour=col,
                texture=Texture.PAINT,
            )


def building(
    b: SceneBuilder, rng: np.random.Generator, x0: float, x1: float, y_front: float, side: int
) -> None:
    """A block with a windowed facade; sometimes a set-back upper part for a varied skyline."""
    obj = b.new_object()
    depth = rng.uniform(10.0, 20.0)
    height = float(rng.choice([rng.uniform(5.0, 12.0), rng.uniform(12.0, 35.0)]))
    ya, yb = sorted((y_front, y_front + side * depth))
    tex = Texture.FACADE if rng.random() < 0.75 else Texture.BRICK
    col = pick(rng, FACADE_COLOURS, 0.07)
    b.box((x0, ya, 0.0), (x1, yb, height), "Building", obj, colour=col, texture=tex)
    if height > 10.0 and rng.random() < 0.4:
        ya2, yb2 = sorted((y_front + side * 3.0, y_front + side * depth))
        b.box(
            (x0 + 1.0, ya2, height),
            (x1 - 1.0, yb2, height + rng.uniform(4.0, 12.0)),
            "Building",
            obj,
            colour=pick(rng, FACADE_COLOURS),
            texture=Texture.FACADE,
        )


def boundary(
    b: SceneBuilder, rng: np.random.Generator, x0: float, x1: float, y: float, cls: str
) -> None:
    """A fence, wall, guard rail or hedge along x (split into <= 20 m pieces for culling)."""
    spec = {
        "Fence": (0.05, (1.0, 2.0), Texture.STRIPES, np.array([[0.3, 0.3, 0.3], [0.4, 0.3, 0.2]])),
        "Wall": (0.25, (0.8, 2.6), Texture.BRICK, FACADE_COLOURS),
        "GroundRail": (0.08, (0.75, 0.8), Texture.PAINT, np.array([[0.6, 0.6, 0.62]])),
        "Vegetation": (0.5, (0.9, 1.8), Texture.FOLIAGE, np.array([[0.12, 0.28, 0.08]])),
    }[cls]
    half, (hmin, hmax), tex, palette = spec
    obj = b.new_object()
    h, col = rng.uniform(hmin, hmax), pick(rng, palette, 0.05)
    zmin = 0.35 if cls == "GroundRail" else 0.0
    edges = [*np.arange(x0, x1, 20.0).tolist(), x1]
    for a, c in itertools.pairwise(edges):
        if c - a > 0.2:
            b.box((a, y - half, zmin), (c, y + half, h), cls, obj, colour=col, texture=tex)
    if cls == "GroundRail":
        for xp in np.arange(x0, x1, 4.0):
            b.box(
                (xp, y - 0.05, 0.0),
                (xp + 0.1, y + 0.05, zmin),
                cls,
                obj,
                colour=col,
                texture=Texture.PAINT,
            )


def bridge(b: SceneBuilder, rng: np.random.Generator, x: float, pillar_y: float) -> None:
    """An overpass across the street: deck, parapets and pillars beside the road."""
    obj = b.new_object()
    width = rng.uniform(8.0, 14.0)
    z = rng.uniform(5.5, 7.5)
    col = pick(rng, FACADE_COLOURS[[0, 1, 3]], 0.05)
    for y0 in np.arange(-90.0, 90.0, 20.0):
        b.box(
            (x, y0, z),
            (x + width, y0 + 20.0, z + 1.2),
            "Bridge",
            obj,
            colour=col,
            texture=Texture.CONCRETE,
        )
        for xe in (x, x + width - 0.3):
            b.box(
                (xe, y0, z + 1.2),
                (xe + 0.3, y0 + 20.0, z + 2.2),
                "Bridge",
                obj,
                colour=col,
                texture=Texture.CONCRETE,
            )
    for s in (-1, 1):
        y0 = s * pillar_y
        b.box(
            (x + 1.0, y0 - 0.6, 0.0),
            (x + width - 1.0, y0 + 0.6, z),
            "Bridge",
            obj,
            colour=col,
            texture=Texture.CONCRETE,
        )

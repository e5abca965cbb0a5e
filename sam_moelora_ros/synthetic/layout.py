"""Street layouts: a random street cross-section plus the objects along it, from one seed.

A scene is a straight street along +x (so every box stays axis-aligned and the ray caster can use
slab tests): road with lane markings (optionally a tram strip and parking lanes), raised
sidewalks with a curb, front yards of terrain or gravel, buildings with gaps, street furniture,
parked and moving traffic, pedestrians, and sometimes an overpass. Densities are set so that
every class in :data:`~sam_moelora_ros.synthetic.primitives.SCENE_CLASSES` shows up in a good
share of frames (the CLI summary prints the frequencies).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam_moelora_ros.classes import DELIVER_ID
from sam_moelora_ros.synthetic import objects as ob
from sam_moelora_ros.synthetic import road_users as ru
from sam_moelora_ros.synthetic.primitives import Kind, SceneBuilder, ShapeArrays, Texture

CURB_HEIGHT = 0.15


@dataclass
class Street:
    """Cross-section (metres from the street centre line, symmetric left/right)."""

    lanes: int
    tram: float
    parking: float
    sidewalk: float
    yard_breaks: tuple[np.ndarray, np.ndarray]
    yard_ground: tuple[np.ndarray, np.ndarray]
    yard_depth: float
    dashed_centre: bool

    @property
    def carriage_half(self) -> float:
        """Half width of the driven lanes plus the tram strip (where the edge lines are)."""
        return self.tram / 2.0 + 3.5 * self.lanes

    @property
    def road_half(self) -> float:
        """Half width of the asphalt up to the curb."""
        return self.carriage_half + self.parking

    @property
    def sidewalk_outer(self) -> float:
        """Distance of the back of the sidewalk from the centre line."""
        return self.road_half + self.sidewalk

    def ground(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Class id, texture and albedo for ground-plane hits at (x, y), vectorised.

        The sidewalk itself is a raised box; under it (never visible) the plane says SideWalk.
        """
        ay = np.abs(y)
        label = np.full(x.shape, DELIVER_ID["Terrain"], dtype=np.uint8)
        tex = np.full(x.shape, int(Texture.GRASS), dtype=np.int16)
        yard = (ay >= self.road_half) & (ay < self.sidewalk_outer + self.yard_depth)
        for side, idx in ((1, 0), (-1, 1)):
            m = yard & (np.sign(y) == side)
            seg = np.searchsorted(self.yard_breaks[idx], x[m])
            gravel = self.yard_ground[idx][np.clip(seg, 0, len(self.yard_ground[idx]) - 1)]
            label[m] = np.where(gravel, DELIVER_ID["Ground"], DELIVER_ID["Terrain"])
            tex[m] = np.where(gravel, int(Texture.GRAVEL), int(Texture.GRASS))
        road = ay < self.road_half
        label[road] = DELIVER_ID["Road"]
        tex[road] = int(Texture.ASPHALT)
        line = np.zeros(x.shape, dtype=bool)
        edge = self.carriage_half - 0.25
        line |= np.abs(ay - edge) < 0.08
        inner = self.tram / 2.0
        for k in range(1, self.lanes):
            lane_y = inner + 3.5 * k
            line |= (np.abs(ay - lane_y) < 0.07) & (np.mod(x, 9.0) < 3.0)
        if self.tram > 0:
            rail = ay < inner
            label[rail] = DELIVER_ID["RailTrack"]
            tex[rail] = int(Texture.RAILS)
            line |= np.abs(ay - inner - 0.1) < 0.08
        elif self.dashed_centre:
            line |= (ay < 0.07) & (np.mod(x, 6.0) < 3.0)
        else:
            line |= np.abs(ay - 0.12) < 0.06
        line &= road
        label[line] = DELIVER_ID["RoadLine"]
        tex[line] = int(Texture.PLAIN)
        colour = GROUND_ALBEDO[tex]
        paint = line & (ay < self.tram / 2.0 + 0.3) & ~self.dashed_centre
        colour[paint] = (0.75, 0.6, 0.1)
        return label, tex, colour


GROUND_ALBEDO = np.zeros((len(Texture), 3))
GROUND_ALBEDO[Texture.GRASS] = (0.14, 0.24, 0.07)
GROUND_ALBEDO[Texture.GRAVEL] = (0.36, 0.31, 0.25)
GROUND_ALBEDO[Texture.ASPHALT] = (0.14, 0.14, 0.15)
GROUND_ALBEDO[Texture.RAILS] = (0.22, 0.2, 0.18)
GROUND_ALBEDO[Texture.PLAIN] = (0.8, 0.8, 0.78)


@dataclass
class Scene:
    """Everything that does not change during a sequence (moving objects move via velocity)."""

    street: Street
    shapes: dict[Kind, ShapeArrays]
    lights: np.ndarray
    lane_y: float
    speed: float
    sway: float
    sway_phase: float
    sun_azimuth: float
    sun_elevation: float
    seed: int


def _segments(rng: np.random.Generator, x0: float, x1: float) -> tuple[np.ndarray, np.ndarray]:
    """Random yard segments: break positions and whether each segment is gravel (Ground)."""
    breaks = np.cumsum(rng.uniform(8.0, 30.0, size=64)) + x0
    breaks = breaks[breaks < x1]
    return breaks, rng.random(len(breaks) + 1) < 0.4


def generate_scene(seed: int, x_min: float, x_max: float, duration: float = 10.0) -> Scene:
    """Lay out a street covering ``[x_min, x_max]`` for ``duration`` s, deterministically."""
    rng = np.random.default_rng(seed)
    lanes = int(rng.choice([1, 2], p=[0.6, 0.4]))
    street = Street(
        lanes=lanes,
        tram=3.2 if rng.random() < 0.35 else 0.0,
        parking=2.4 if rng.random() < 0.6 else 0.0,
        sidewalk=float(rng.uniform(2.5, 5.0)),
        yard_breaks=(np.empty(0), np.empty(0)),
        yard_ground=(np.zeros(1, bool), np.zeros(1, bool)),
        yard_depth=float(rng.uniform(0.0, 7.0)),
        dashed_centre=bool(rng.random() < 0.5),
    )
    left, right = _segments(rng, x_min, x_max), _segments(rng, x_min, x_max)
    street.yard_breaks = (left[0], right[0])
    street.yard_ground = (left[1], right[1])
    b = SceneBuilder()
    lights: list[tuple] = []
    z_sw = CURB_HEIGHT
    for side in (1, -1):
        _sidewalk(b, street, side, x_min, x_max)
        _frontage(b, rng, street, side, x_min, x_max)
        lights += _furniture(b, rng, street, side, x_min, x_max, z_sw)
    lane_k = int(rng.integers(lanes))
    lane_y = -(street.tram / 2.0 + 3.5 * (lane_k + 0.5))
    speed = float(rng.uniform(7.0, 13.0))
    _traffic(b, rng, street, lane_k, speed, x_min, x_max, duration)
    if rng.random() < 0.55:
        ob.bridge(b, rng, float(rng.uniform(25.0, 70.0)), street.road_half + 0.8)
    return Scene(
        street=street,
        shapes=b.build(),
        lights=np.array(lights, dtype=np.float64).reshape(-1, 3),
        lane_y=lane_y,
        speed=speed,
        sway=float(rng.uniform(0.0, 0.4)),
        sway_phase=float(rng.uniform(0, 2 * np.pi)),
        sun_azimuth=float(rng.uniform(0, 2 * np.pi)),
        sun_elevation=float(rng.uniform(np.deg2rad(20), np.deg2rad(60))),
        seed=seed,
    )


def _sidewalk(b: SceneBuilder, street: Street, side: int, x_min: float, x_max: float) -> None:
    """Raised sidewalk slabs (the curb is their road-facing side), 20 m pieces."""
    obj = b.new_object()
    ya, yb = sorted((side * street.road_half, side * street.sidewalk_outer))
    for x in np.arange(x_min, x_max, 20.0):
        b.box(
            (x, ya, 0.0),
            (min(x + 20.0, x_max), yb, CURB_HEIGHT),
            "SideWalk",
            obj,
            colour=(0.45, 0.44, 0.42),
            texture=Texture.CONCRETE,
        )


def _frontage(
    b: SceneBuilder, rng: np.random.Generator, st: Street, side: int, x_min: float, x_max: float
) -> None:
    """Buildings with gaps; gaps and some yards get walls, fences, hedges or trees."""
    x = x_min
    y_front = side * (st.sidewalk_outer + st.yard_depth)
    while x < x_max:
        if rng.random() < 0.78:
            w = float(rng.uniform(8.0, 28.0))
            ob.building(b, rng, x, x + w, y_front, side)
            if st.yard_depth > 1.5 and rng.random() < 0.5:
                cls = str(rng.choice(["Fence", "Wall", "Vegetation"]))
                ob.boundary(b, rng, x, x + w, side * (st.sidewalk_outer + 0.3), cls)
        else:
            w = float(rng.uniform(5.0, 14.0))
            cls = str(rng.choice(["Wall", "Wall", "Fence", "Vegetation"]))
            ob.boundary(b, rng, x, x + w, y_front + side * 0.5, cls)
            for xt in np.arange(x + 2.0, x + w - 1.0, 5.0):
                ob.tree(b, rng, float(xt), y_front + side * rng.uniform(3.0, 8.0), 0.0)
        x += w + float(rng.uniform(0.0, 3.0))


def _furniture(
    b: SceneBuilder,
    rng: np.random.Generator,
    st: Street,
    side: int,
    x_min: float,
    x_max: float,
    z0: float,
) -> list[tuple]:
    """Lamps, trees, signs, signals, clutter, pedestrians, parked two-wheelers on the sidewalk."""
    lights: list[tuple] = []
    curb_y = side * (st.road_half + 0.45)
    for x in np.arange(x_min + rng.uniform(0, 25), x_max, rng.uniform(20.0, 30.0)):
        lights.append(ob.street_lamp(b, float(x), curb_y, side, z0))
    if rng.random() < 0.65:
        for x in np.arange(x_min + rng.uniform(0, 8), x_max, rng.uniform(8.0, 12.0)):
            ob.tree(b, rng, float(x) + 3.0, side * (st.road_half + 1.2), z0)
    for x in np.arange(x_min + rng.uniform(0, 20), x_max, rng.uniform(18.0, 32.0)):
        ob.traffic_sign(b, rng, float(x) + 1.5, curb_y + side * 0.1, z0)
    for x in np.arange(x_min + rng.uniform(0, 40), x_max, rng.uniform(45.0, 70.0)):
        ob.traffic_light(b, float(x), curb_y, side, z0, st.carriage_half * rng.uniform(0.5, 0.9))
    for x in np.arange(x_min, x_max, rng.uniform(6.0, 12.0)):
        ys = side * (st.sidewalk_outer - rng.uniform(0.5, 1.0))
        ob.street_furniture(b, rng, float(x) + rng.uniform(0, 4), ys, z0, side)
    for x in np.arange(x_min, x_max, rng.uniform(4.0, 8.0)):
        yp = side * (st.road_half + rng.uniform(1.0, st.sidewalk - 0.4))
        ru.pedestrian(b, rng, float(x) + rng.uniform(0, 3), yp, z0)
    for x in np.arange(x_min + rng.uniform(0, 10), x_max, rng.uniform(15.0, 30.0)):
        ru.two_wheeler(b, rng, float(x), side * (st.road_half + 0.9), z0, 0.0)
    for start in np.arange(x_min + rng.uniform(0, 60), x_max, rng.uniform(60.0, 120.0)):
        ob.boundary(
            b,
            rng,
            float(start),
            float(start) + rng.uniform(15.0, 40.0),
            curb_y - side * 0.1,
            "GroundRail",
        )
    return lights


def _traffic(
    b: SceneBuilder,
    rng: np.random.Generator,
    st: Street,
    ego_lane: int,
    ego_speed: float,
    x_min: float,
    x_max: float,
    duration: float,
) -> None:
    """Parked cars, moving traffic in every lane (faster than the ego in its own lane), buses."""
    if st.parking > 0:
        for side in (1, -1):
            y = side * (st.road_half - st.parking / 2.0)
            x = x_min + rng.uniform(0, 5)
            while x < x_max:
                r = rng.random()
                if r < 0.08:
                    x += ru.big_vehicle(b, rng, x + 6, y, str(rng.choice(["Bus", "Truck"]))) + 2.0
                elif r < 0.8:
                    ru.car(b, rng, x + 2.5, y)
                    x += 5.0 + rng.uniform(0.5, 2.0)
                else:
                    x += rng.uniform(3.0, 8.0)
    for side in (1, -1):
        for k in range(st.lanes):
            y = side * (st.tram / 2.0 + 3.5 * (k + 0.5))
            own = side < 0 and k == ego_lane
            if own:
                v = ego_speed + float(rng.uniform(1.5, 4.0))
            elif side > 0:
                v = -float(rng.uniform(6.0, 14.0))
            else:
                v = float(rng.uniform(4.0, 14.0))
            # Vehicles must cover the whole sequence: spawn beyond the far end for oncoming ones.
            lo = 15.0 if own else x_min - max(v, 0.0) * duration
            hi = x_max + max(-v, 0.0) * duration
            x = lo + rng.uniform(0, 10)
            while x < hi:
                r = rng.random()
                if r < 0.25:
                    cls = str(rng.choice(["Bus", "Truck"]))
                    x += ru.big_vehicle(b, rng, x + 6, y, cls, v=v) + rng.uniform(5, 25)
                elif r < 0.85:
                    ru.car(b, rng, x + 2.5, y, v=v)
                    x += 5.0 + rng.uniform(4.0, 25.0)
                else:
                    ru.two_wheeler(b, rng, x + 1, y + side * 0.8, 0.0, v)
                    x += rng.uniform(6.0, 20.0)

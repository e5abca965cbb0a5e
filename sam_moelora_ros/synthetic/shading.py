"""Surface appearance and lighting: procedural textures, sun/sky, night lights, fog.

The shader turns ray-cast hits into linear radiance (H*W, 3). Textures are hashed value noise and
simple patterns (windows, bricks, slabs, bars, rails) evaluated at the hit point in the object's
frame, so they stay attached to moving objects and look the same to every camera. Lighting is a
Lambertian sun plus a hemispherical sky term; at night the sun is replaced by street lamps
(inverse-square point lights) and the ego vehicle's headlights, so everything outside the light
pools is close to black. Fog follows Koschmieder's law: transmission exp(-3 r / V) for
visibility V (the sequence's own, see :func:`conditions.sequence_condition`), blending towards
the airlight (the fog colour lit by sky and sun).
No cast shadows: a documented simplification that keeps one ray per pixel.
"""

from __future__ import annotations

import numpy as np

from sam_moelora_ros.synthetic.conditions import Condition
from sam_moelora_ros.synthetic.primitives import Texture
from sam_moelora_ros.synthetic.raycast import Hits

_P1, _P2, _P3 = np.uint64(73856093), np.uint64(19349663), np.uint64(83492791)


def hash01(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic pseudo-random value in [0, 1) per integer lattice point (vectorised)."""
    h = (ix.astype(np.int64).view(np.uint64) * _P1) ^ (iy.astype(np.int64).view(np.uint64) * _P2)
    h ^= iz.astype(np.int64).view(np.uint64) * _P3 ^ np.uint64(seed * 2654435761 % 2**32)
    h ^= h >> np.uint64(13)
    h *= np.uint64(0x5BD1E995)
    h ^= h >> np.uint64(15)
    return (h & np.uint64(0xFFFFFF)).astype(np.float64) / float(0x1000000)


def value_noise(p: np.ndarray, scale: float, seed: int) -> np.ndarray:
    """Trilinear value noise in [0, 1) at points ``p`` (n, 3) with feature size ``scale`` metres."""
    q = p / scale
    i = np.floor(q)
    f = q - i
    f = f * f * (3.0 - 2.0 * f)
    ix, iy, iz = i[:, 0], i[:, 1], i[:, 2]
    out = np.zeros(len(p))
    for dx in (0, 1):
        wx = f[:, 0] if dx else 1.0 - f[:, 0]
        for dy in (0, 1):
            wy = f[:, 1] if dy else 1.0 - f[:, 1]
            for dz in (0, 1):
                wz = f[:, 2] if dz else 1.0 - f[:, 2]
                out += wx * wy * wz * hash01(ix + dx, iy + dy, iz + dz, seed)
    return out


def albedo(hits: Hits, seed: int, night: bool) -> tuple[np.ndarray, np.ndarray]:
    """Textured albedo (n, 3) and extra emission (n,) (lit windows at night) per hit."""
    p, n, tex = hits.local, hits.normal, hits.texture
    col = hits.colour.copy()
    emit = np.zeros(len(p))
    fine = value_noise(p, 0.35, seed) - 0.5
    coarse = value_noise(p, 3.0, seed + 1) - 0.5
    amp = {
        Texture.ASPHALT: (0.45, 0.5),
        Texture.CONCRETE: (0.2, 0.25),
        Texture.FOLIAGE: (0.9, 0.4),
        Texture.GRASS: (0.6, 0.6),
        Texture.GRAVEL: (0.6, 0.3),
        Texture.BRICK: (0.2, 0.2),
        Texture.FACADE: (0.15, 0.3),
        Texture.PAINT: (0.05, 0.08),
        Texture.PLAIN: (0.1, 0.1),
        Texture.CLOTH: (0.2, 0.1),
        Texture.RAILS: (0.3, 0.2),
        Texture.STRIPES: (0.15, 0.1),
        Texture.LAMP: (0.0, 0.0),
    }
    lut = np.zeros((len(Texture), 2))
    for k, v in amp.items():
        lut[k] = v
    gain = 1.0 + lut[tex, 0] * fine + lut[tex, 1] * coarse
    u = np.where(np.abs(n[:, 1]) > 0.5, p[:, 0], p[:, 1])
    m = tex == Texture.FACADE
    if m.any():
        wu, wz = np.mod(u[m] / 3.0, 1.0), np.mod(p[m, 2] / 3.2, 1.0)
        win = (wu > 0.22) & (wu < 0.72) & (wz > 0.35) & (wz < 0.82) & (p[m, 2] > 3.0)
        win &= np.abs(n[m, 2]) < 0.5
        glass = np.array([0.05, 0.06, 0.08]) * (1 + 0.5 * fine[m, None])
        col[m] = np.where(win[:, None], glass, col[m])
        gain[m] = np.where(win, 1.0, gain[m])
        if night:
            cell = hash01(np.floor(u[m] / 3.0), np.floor(p[m, 2] / 3.2), hits.obj[m], seed + 7)
            emit[m] = np.where(win & (cell < 0.3), 0.35 + 0.3 * cell, 0.0)
    for kind, size, mortar in (
        (Texture.BRICK, (0.25, 0.065), 0.012),
        (Texture.CONCRETE, (1.5, 1.5), 0.03),
    ):
        m = tex == kind
        if m.any():
            a = u[m] if kind == Texture.BRICK else p[m, 0]
            b = p[m, 2] if kind == Texture.BRICK else p[m, 1]
            row = np.floor(b / size[1])
            a = a + 0.5 * size[0] * np.mod(row, 2)
            joint = (np.mod(a, size[0]) < mortar) | (np.mod(b, size[1]) < mortar)
            joint &= np.abs(n[m, 2]) < 0.5 if kind == Texture.BRICK else np.abs(n[m, 2]) > 0.5
            gain[m] = np.where(joint, 0.55, gain[m])
    m = tex == Texture.STRIPES
    gain[m] *= np.where(np.mod(u[m], 0.16) < 0.07, 0.45, 1.0)
    m = tex == Texture.RAILS
    if m.any():
        rail = np.abs(np.abs(np.mod(p[m, 1] + 0.8, 1.6) - 0.8) - 0.72) < 0.05
        sleeper = np.mod(p[m, 0], 0.65) < 0.25
        col[m] = np.where(rail[:, None], (0.55, 0.55, 0.58), col[m])
        gain[m] = np.where(sleeper & ~rail, 0.6, gain[m])
    m = tex == Texture.CLOTH
    if m.any():
        legs = np.mod(p[m, 2], 100.0) < 1.0
        trousers = hash01(hits.obj[m], hits.obj[m], hits.obj[m], seed + 3)[:, None]
        col[m] = np.where(legs[:, None], 0.1 + 0.3 * trousers * (0.6, 0.7, 1.0), col[m])
    return np.clip(col * gain[:, None], 0.0, 1.0), emit


def sky_radiance(dirs: np.ndarray, cond: Condition, sun_dir: np.ndarray, seed: int) -> np.ndarray:
    """Sky colour for world directions ``dirs`` (n, 3): gradient, sun glow and cloud noise."""
    elev = np.clip(dirs[:, 2], 0.0, 1.0)[:, None]
    zen, hor = np.array(cond.sky_zenith), np.array(cond.sky_horizon)
    sky = hor + (zen - hor) * np.sqrt(elev)
    cloud = value_noise(dirs * 40.0 / np.maximum(dirs[:, 2:3], 0.05), 6.0, seed + 11)
    cover = np.clip((cloud - (1.0 - cond.clouds)) * 3.0, 0.0, 1.0)[:, None]
    grey = np.full(3, 0.85 if not cond.night else 0.02)
    sky = sky * (1 - cover * 0.8) + grey * cover * 0.8
    if cond.sun > 1.0:
        glow = np.clip(dirs @ sun_dir, 0.0, 1.0) ** 64
        sky += glow[:, None] * np.array([1.5, 1.4, 1.1])
    return sky * (1.5 if not cond.night else 1.0)


def shade(
    hits: Hits,
    dirs: np.ndarray,
    cond: Condition,
    sun_dir: np.ndarray,
    lights: np.ndarray,
    headlight: tuple[np.ndarray, np.ndarray] | None,
    seed: int,
) -> np.ndarray:
    """Linear radiance (n, 3) seen along unit world ``dirs`` for the given hits and condition."""
    alb, emit = albedo(hits, seed, cond.night)
    n = hits.normal
    irr = np.full(len(n), cond.sun) * np.clip(n @ sun_dir, 0.0, None)
    irr += cond.sky * (0.55 + 0.45 * n[:, 2])
    colour_irr = irr[:, None] * np.ones(3)
    if cond.night:
        colour_irr += _night_lights(hits, lights, headlight)
    rad = alb * colour_irr + (hits.emissive + emit)[:, None] * np.array([1.0, 0.9, 0.75]) * (
        1.5 if cond.night else 0.6
    )
    if cond.rain > 0:  # wet ground: a glossy sky reflection at grazing angles
        ground = n[:, 2] > 0.9
        fres = (1.0 - np.abs(dirs[:, 2])) ** 5
        rad[ground] += 0.6 * fres[ground, None] * np.array(cond.sky_horizon) * cond.sky
    sky = hits.sky
    rad[sky] = sky_radiance(dirs[sky], cond, sun_dir, seed)
    if np.isfinite(cond.fog_visibility):
        beta = 3.0 / cond.fog_visibility
        trans = np.exp(-beta * np.where(sky, 1e6, hits.t))[:, None]
        airlight = np.array(cond.fog_colour) * (cond.sky + cond.sun * 0.3) * 0.6
        rad = rad * trans + airlight * (1.0 - trans)
    return rad


def _night_lights(
    hits: Hits, lights: np.ndarray, headlight: tuple[np.ndarray, np.ndarray] | None
) -> np.ndarray:
    """Irradiance from street lamps (warm, inverse square) and the ego headlights (a spot)."""
    p, n = hits.point, hits.normal
    out = np.zeros((len(p), 3))
    valid = np.isfinite(hits.t)
    if len(lights):
        near = lights[np.argsort(np.linalg.norm(lights[:, :2] - p[valid, :2].mean(0), axis=1))[:16]]
        acc = np.zeros(len(p))
        for light in near:
            v = light - p
            d2 = np.maximum((v * v).sum(axis=1), 1.0)
            cos = np.clip((v * n).sum(axis=1) / np.sqrt(d2), 0.0, None)
            down = v[:, 2] > 0.0  # lamps shine downwards only
            acc += 7.0 * cos / d2 * down
        out += acc[:, None] * np.array([1.0, 0.8, 0.55])
    if headlight is not None:
        pos, fwd = headlight
        v = p - pos
        d2 = np.maximum((v * v).sum(axis=1), 1.0)
        d = np.sqrt(d2)
        cone = np.exp(-(((1.0 - np.clip((v @ fwd) / d, -1, 1)) / 0.02) ** 1))
        cos = np.clip(-(v * n).sum(axis=1) / d, 0.0, None)
        out += (60.0 * cone * cos / d2)[:, None] * np.array([0.95, 0.95, 1.0])
    out[~valid] = 0.0
    return out

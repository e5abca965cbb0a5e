"""Vectorised ray casting of a grid of rays that share one origin (a camera or a LiDAR head).

How it stays fast without per-pixel loops:

1. The ray grid is cut into small tiles; each tile gets a bounding cone (mean direction and the
   largest angle to any of its rays).
2. Every primitive gets a bounding sphere; a (tiles x primitives) cone/sphere test, all in numpy,
   keeps only the pairs that can intersect (plus a range cut).
3. The surviving (ray, primitive) pairs of one shape kind are intersected all at once with the
   analytic ray-box (slab), ray-cylinder (quadratic + caps) and ray-ellipsoid formulas, and the
   nearest hit per ray is reduced with ``np.minimum.at``.
4. The ground plane z = 0 is intersected analytically for every ray; its class comes from the
   street's cross-section at the hit point.

Only the winners' normals and materials are computed afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam_moelora_ros.classes import DELIVER_ID
from sam_moelora_ros.synthetic.layout import Scene
from sam_moelora_ros.synthetic.primitives import Kind, Texture, bounding_spheres

TILE = 8
CHUNK = 1 << 21
EPS = 1e-6
GROUND_FAR = 2000.0
BIG_RADIUS = 4.0
SKY = DELIVER_ID["Sky"]


@dataclass
class Hits:
    """Per-ray results, flattened to N = H * W (the caller reshapes).

    ``t`` is the distance along the unit ray (inf for sky); ``local`` is the hit point in the
    object's own moving frame (textures stick to moving cars); ``obj`` is -1 for ground and sky.
    """

    t: np.ndarray
    point: np.ndarray
    local: np.ndarray
    normal: np.ndarray
    label: np.ndarray
    colour: np.ndarray
    texture: np.ndarray
    emissive: np.ndarray
    reflectivity: np.ndarray
    obj: np.ndarray

    @property
    def sky(self) -> np.ndarray:
        """Rays that hit nothing."""
        return ~np.isfinite(self.t)


def _tiles(h: int, w: int) -> tuple[np.ndarray, int, int]:
    """Flat ray indices per tile, (n_tiles, TILE*TILE), edge tiles padded by repetition."""
    ys = np.minimum(np.arange(-(-h // TILE) * TILE), h - 1)
    xs = np.minimum(np.arange(-(-w // TILE) * TILE), w - 1)
    idx = ys[:, None] * w + xs[None, :]
    nty, ntx = len(ys) // TILE, len(xs) // TILE
    idx = idx.reshape(nty, TILE, ntx, TILE).transpose(0, 2, 1, 3).reshape(nty * ntx, TILE * TILE)
    return idx, nty, ntx


def _candidate_pairs(
    dirs: np.ndarray,
    tiles: np.ndarray,
    origin: np.ndarray,
    geom: np.ndarray,
    kind: Kind,
    far: float,
    tile_far: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(ray index, primitive index) pairs whose tile cone meets the primitive's bounding sphere.

    ``tile_far`` is the farthest ground hit in each tile (inf if a ray misses the ground): a
    primitive whose bounding sphere starts beyond it is hidden behind the ground for the tile.
    """
    if len(geom) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    tdirs = dirs[tiles]
    axis = tdirs.mean(axis=1)
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    cos_half = np.einsum("tkc,tc->tk", tdirs, axis).min(axis=1)
    half = np.arccos(np.clip(cos_half, -1.0, 1.0))
    centre, radius = bounding_spheres(kind, geom)
    rel = centre - origin
    dist = np.linalg.norm(rel, axis=1)
    keep = dist - radius < far
    rel, dist, radius, prim = rel[keep], dist[keep], radius[keep], np.nonzero(keep)[0]
    inside = dist <= radius
    alpha = np.arcsin(np.clip(radius / np.maximum(dist, EPS), 0.0, 1.0))
    cos_theta = (axis @ rel.T) / np.maximum(dist, EPS)
    theta = np.arccos(np.clip(cos_theta, -1.0, 1.0))
    hit = (theta <= half[:, None] + alpha[None, :] + 1e-4) | inside[None, :]
    hit &= (dist - radius)[None, :] < tile_far[:, None]
    ti, pj = np.nonzero(hit)
    rays = tiles[ti].reshape(-1)
    prims = np.repeat(prim[pj], tiles.shape[1])
    return rays, prims


def _intersect(kind: Kind, o: np.ndarray, d: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Nearest positive hit distance of rays (origin ``o`` shared) with primitives ``g`` (n, .)."""
    if kind == Kind.BOX:
        # Slab test, one axis at a time on 1-D columns (reductions over a length-3 axis are slow).
        tmin = np.full(len(d), -np.inf)
        tmax = np.full(len(d), np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            for a in range(3):
                da = d[:, a]
                inv = 1.0 / np.where(np.abs(da) < EPS, EPS, da)
                t1 = (g[:, a] - o[a]) * inv
                t2 = (g[:, a + 3] - o[a]) * inv
                np.maximum(tmin, np.minimum(t1, t2), out=tmin)
                np.minimum(tmax, np.maximum(t1, t2), out=tmax)
        t = np.where(tmin > EPS, tmin, tmax)
        return np.where((tmax >= tmin) & (t > EPS), t, np.inf)
    if kind == Kind.CYLINDER:
        ox, oy = o[0] - g[:, 0], o[1] - g[:, 1]
        a = d[:, 0] ** 2 + d[:, 1] ** 2
        bh = ox * d[:, 0] + oy * d[:, 1]
        c = ox * ox + oy * oy - g[:, 2] ** 2
        disc = bh * bh - a * c
        with np.errstate(divide="ignore", invalid="ignore"):
            ts = (-bh - np.sqrt(np.maximum(disc, 0.0))) / a
            zs = o[2] + ts * d[:, 2]
            side = np.where(
                (disc >= 0) & (ts > EPS) & (zs >= g[:, 3]) & (zs <= g[:, 4]), ts, np.inf
            )
            best = side
            for zc in (g[:, 3], g[:, 4]):
                tc = (zc - o[2]) / d[:, 2]
                px, py = ox + tc * d[:, 0], oy + tc * d[:, 1]
                ok = (tc > EPS) & (px * px + py * py <= g[:, 2] ** 2)
                best = np.minimum(best, np.where(ok, tc, np.inf))
        return best
    r = g[:, 3:]
    oc = (o - g[:, :3]) / r
    dd = d / r
    a = (dd * dd).sum(axis=1)
    bh = (oc * dd).sum(axis=1)
    c = (oc * oc).sum(axis=1) - 1.0
    disc = bh * bh - a * c
    sq = np.sqrt(np.maximum(disc, 0.0))
    t0, t1 = (-bh - sq) / a, (-bh + sq) / a
    t = np.where(t0 > EPS, t0, t1)
    return np.where((disc >= 0) & (t > EPS), t, np.inf)


def _normals(kind: Kind, p: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Outward unit normals at hit points ``p`` (n, 3) on primitives ``g`` (n, .)."""
    if kind == Kind.BOX:
        dist = np.abs(np.concatenate([p - g[:, :3], p - g[:, 3:]], axis=1))
        face = dist.argmin(axis=1)
        n = np.zeros_like(p)
        n[np.arange(len(p)), face % 3] = np.where(face < 3, -1.0, 1.0)
        return n
    if kind == Kind.CYLINDER:
        rx, ry = p[:, 0] - g[:, 0], p[:, 1] - g[:, 1]
        radial = np.hypot(rx, ry)
        n = np.stack([rx, ry, np.zeros_like(rx)], axis=1) / np.maximum(radial, EPS)[:, None]
        cap = radial < g[:, 2] * 0.999
        n[cap] = 0.0
        n[cap, 2] = np.where(np.abs(p[cap, 2] - g[cap, 4]) < np.abs(p[cap, 2] - g[cap, 3]), 1, -1)
        return n
    n = (p - g[:, :3]) / g[:, 3:] ** 2
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def cast(scene: Scene, time: float, origin: np.ndarray, dirs: np.ndarray, far: float) -> Hits:
    """Cast the (H, W, 3) unit ``dirs`` from world point ``origin`` into the scene at ``time``.

    Primitives whose bounding sphere starts beyond ``far`` metres are skipped; the ground plane
    is kept out to 2 km so the horizon stays continuous.
    """
    h, w = dirs.shape[:2]
    flat = dirs.reshape(-1, 3)
    n = len(flat)
    tiles, _, _ = _tiles(h, w)
    best = np.full(n, np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        tg = -origin[2] / flat[:, 2]
    ground_ok = (flat[:, 2] < -EPS) & (tg < GROUND_FAR)
    best[ground_ok] = tg[ground_ok]
    win_kind = np.where(ground_ok, int(Kind.GROUND), int(Kind.SKY)).astype(np.int8)
    win_idx = np.full(n, -1, dtype=np.int64)
    geoms = {k: s.at(time, k) for k, s in scene.shapes.items()}
    # Big boxes (buildings, sidewalks, bridges) first: their hits tighten each tile's farthest
    # visible distance, which then culls the many small objects hidden behind them.
    big = bounding_spheres(Kind.BOX, geoms[Kind.BOX])[1] > BIG_RADIUS
    passes = [(Kind.BOX, np.nonzero(big)[0]), (Kind.BOX, np.nonzero(~big)[0])]
    passes += [(k, np.arange(len(geoms[k]))) for k in (Kind.CYLINDER, Kind.ELLIPSOID)]
    for kind, subset in passes:
        tile_far = best[tiles].max(axis=1)
        geom = geoms[kind]
        rays, sub = _candidate_pairs(flat, tiles, origin, geom[subset], kind, far, tile_far)
        prims = subset[sub]
        for s in range(0, len(rays), CHUNK):
            r, p = rays[s : s + CHUNK], prims[s : s + CHUNK]
            t = _intersect(kind, origin, flat[r], geom[p])
            ok = t < best[r]
            r, p, t = r[ok], p[ok], t[ok]
            np.minimum.at(best, r, t)
            won = t == best[r]
            win_kind[r[won]] = int(kind)
            win_idx[r[won]] = p[won]
    point = origin + flat * np.where(np.isfinite(best), best, 0.0)[:, None]
    return _materials(scene, time, geoms, point, best, win_kind, win_idx)


def _materials(
    scene: Scene,
    time: float,
    geoms: dict[Kind, np.ndarray],
    point: np.ndarray,
    t: np.ndarray,
    win_kind: np.ndarray,
    win_idx: np.ndarray,
) -> Hits:
    """Gather normals, classes and materials of the winning primitive (or ground / sky)."""
    n = len(t)
    hits = Hits(
        t=t,
        point=point,
        local=point.copy(),
        normal=np.zeros((n, 3)),
        label=np.full(n, SKY, dtype=np.uint8),
        colour=np.zeros((n, 3)),
        texture=np.zeros(n, dtype=np.int16),
        emissive=np.zeros(n),
        reflectivity=np.zeros(n),
        obj=np.full(n, -1, dtype=np.int32),
    )
    g = win_kind == int(Kind.GROUND)
    hits.normal[g] = (0.0, 0.0, 1.0)
    label, tex, colour = scene.street.ground(point[g, 0], point[g, 1])
    hits.label[g], hits.texture[g], hits.colour[g] = label, tex, colour
    refl = np.full(len(label), 0.12)
    refl[label == DELIVER_ID["RoadLine"]] = 0.9
    refl[(label == DELIVER_ID["Terrain"]) | (label == DELIVER_ID["Ground"])] = 0.2
    hits.reflectivity[g] = refl
    hits.texture[~g & (win_kind == int(Kind.SKY))] = int(Texture.PLAIN)
    for kind, geom in geoms.items():
        m = win_kind == int(kind)
        if not m.any():
            continue
        idx = win_idx[m]
        arr = scene.shapes[kind]
        hits.normal[m] = _normals(kind, point[m], geom[idx])
        hits.label[m] = arr.label[idx]
        hits.colour[m] = arr.colour[idx]
        hits.texture[m] = arr.texture[idx]
        hits.emissive[m] = arr.emissive[idx]
        hits.reflectivity[m] = arr.reflectivity[idx]
        hits.obj[m] = arr.obj[idx]
        hits.local[m, 0] -= arr.velocity[idx] * time
    return hits

"""LiDAR points -> a sparse depth image in a camera (pinhole + CameraInfo distortion), vectorised.

Distortion models are those of ``camera_models.py`` (``plumb_bob``, ``rational_polynomial``,
``equidistant``); an unknown model or a ``D`` that does not fit it is an error. A point at
exactly (0, 0, 0) is how drivers (Ouster, Hesai, Livox) write "no return" into fixed-size clouds:
it is dropped, as are non-finite points, whatever the cloud's ``is_dense`` says.

Conventions (ROS ``sensor_msgs/CameraInfo`` and OpenCV): the camera looks along +z, ``K`` maps
normalised coordinates to pixels with the centre of pixel ``(row, col)`` at ``(u, v) = (col,
row)``, so a point lands in column ``floor(u + 0.5)``. The depth stored is the camera-frame
``z`` (REP 118 depth, not Euclidean range). Where several points land in one pixel the nearest
wins (ties: the lower point index), which is what a real depth camera would see.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .camera_models import CameraModelError, distort, distortion_coefficients

__all__ = [
    "distort_normalized",
    "nearest_per_pixel",
    "project_pixel_depths",
    "project_pixels",
    "project_point_indices",
    "project_points",
]

MIN_DEPTH = 1e-6
"""Points with camera-frame z at or below this (behind or on the camera plane) are dropped."""


def _matrix_k(K: np.ndarray | Sequence[float]) -> np.ndarray:
    k = np.asarray(K, dtype=np.float64)
    if k.size == 9:
        return k.reshape(3, 3)
    if k.size == 12:  # a CameraInfo P matrix: its left 3 x 3 block is the intrinsics
        return k.reshape(3, 4)[:, :3]
    raise ValueError(f"K must be 3 x 3 (or 9 values, or a 3 x 4 P), got {k.size} values")


def _matrix_t(T: np.ndarray | Sequence[float]) -> np.ndarray:
    t = np.asarray(T, dtype=np.float64)
    if t.shape == (4, 4) or t.shape == (3, 4):
        return t[:3]
    if t.size == 16:
        return t.reshape(4, 4)[:3]
    raise ValueError(f"T_cam_from_lidar must be 4 x 4 or 3 x 4, got shape {t.shape}")


def _model_for(D: np.ndarray | Sequence[float], model: str | None) -> tuple[str, np.ndarray | None]:
    """(model, checked coefficients or None): ``model`` None picks plumb_bob / rational by size."""
    coeffs = np.asarray(D, dtype=np.float64).reshape(-1)
    if model is None:
        if coeffs.size == 0 or (not np.any(coeffs) and np.all(np.isfinite(coeffs))):
            return "plumb_bob", None  # no distortion, whatever the length
        if coeffs.size not in (4, 5, 8):
            raise CameraModelError(
                f"D must hold 4, 5 (plumb_bob) or 8 (rational_polynomial) values, got "
                f"{coeffs.size}; name distortion_model for other models (equidistant)"
            )
        model = "rational_polynomial" if coeffs.size == 8 else "plumb_bob"
    return model, distortion_coefficients(model, coeffs)


def distort_normalized(
    x: np.ndarray,
    y: np.ndarray,
    D: np.ndarray | Sequence[float],
    distortion_model: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Distort normalised image coordinates (``X/Z``, ``Y/Z``, any equal shapes).

    ``distortion_model``: a CameraInfo model name; None = plumb_bob for 4 or 5 values of
    ``D``, rational_polynomial for 8 (OpenCV's ``projectPoints`` model).
    """
    model, coeffs = _model_for(D, distortion_model)
    if coeffs is None:
        return x, y
    return distort(x, y, model, coeffs)


def _project(
    xyz: np.ndarray,
    K: np.ndarray | Sequence[float],
    T_cam_from_lidar: np.ndarray | Sequence[float],
    size: tuple[int, int],
    D: np.ndarray | Sequence[float] | None,
    distortion_model: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(linear pixel index, depth z, point index) of every point that lands in the image."""
    pts = np.asarray(xyz)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"xyz must be N x 3, got shape {pts.shape}")
    h, w = int(size[0]), int(size[1])
    k = _matrix_k(K)
    t = _matrix_t(T_cam_from_lidar)
    dtype = pts.dtype if pts.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    # OpenCV's affine transform is one SIMD pass over the cloud (numpy's column arithmetic took
    # 20x longer on 130 k points), in the cloud's own float type: float32 for LiDAR drivers is
    # sub-millimetre at 100 m and 1e-4 px at 1000 px; no float64 copy of the cloud. Every
    # per-point array is computed for all points and filtered once at the end: gathering the
    # points in front of the camera first cost more than it saved.
    if pts.shape[0] == 0:  # (OpenCV returns None for an empty input)
        empty = np.zeros(0, dtype=np.int64)
        return empty, np.zeros(0, dtype=dtype), empty
    model, coeffs = (None, None) if D is None else _model_for(D, distortion_model)
    if D is None and distortion_model is not None:
        distortion_coefficients(distortion_model, [])  # an unknown model name still fails
    flat = np.ascontiguousarray(pts, dtype=dtype).reshape(-1, 1, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        if model is not None and coeffs is not None:
            cam = cv2.transform(flat, t.astype(dtype)).reshape(-1, 3)
            z = cam[:, 2]
            xn, yn = distort(cam[:, 0] / z, cam[:, 1] / z, model, coeffs)
            col = k[0, 0] * xn + k[0, 1] * yn + (k[0, 2] + 0.5)
            row = k[1, 1] * yn + (k[1, 2] + 0.5)
        else:  # K [R | t] at once: (u z, v z, z) per point
            uvz = cv2.transform(flat, (k @ t).astype(dtype)).reshape(-1, 3)
            z = uvz[:, 2]
            col, row = uvz[:, 0] / z, uvz[:, 1] / z
            np.add(col, 0.5, out=col)
            np.add(row, 0.5, out=row)
        # Pixel (floor(v + 0.5), floor(u + 0.5)) inside the image, tested on the very values
        # that are truncated below; NaN compares False, so non-finite points drop out here too.
        keep = (z > MIN_DEPTH) & (z < np.inf)
        keep &= (col >= 0) & (col < w) & (row >= 0) & (row < h)
        keep &= (pts[:, 0] != 0) | (pts[:, 1] != 0) | (pts[:, 2] != 0)  # (0, 0, 0): no return
    idx = np.flatnonzero(keep)
    col = col[idx].astype(np.int64)  # non-negative here, so truncation is floor
    row = row[idx].astype(np.int64)
    row *= w
    row += col
    return row, z[idx], idx


def nearest_per_pixel(pixel: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(pixels, first)``: each pixel that ``pixel`` hits once, and the position in ``pixel`` /
    ``depth`` of its nearest point (smallest depth; ties: the lower position).

    ``pixel`` and ``depth`` as :func:`project_pixel_depths` returns them (its positions ascend
    with the point index, so ties go to the lower point index). Two unbuffered passes, a
    minimum depth per pixel and then the lowest position among the points at it: the same
    answer as sorting by (pixel, depth), 3.05 -> 0.56 ms for the 22 k points of the node
    benchmark's 130 k-point cloud that land in its 640x480 camera (2-core development VM).
    """
    if pixel.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    size = int(pixel.max()) + 1
    nearest = np.full(size, np.inf, dtype=depth.dtype)
    np.minimum.at(nearest, pixel, depth)  # projected depths are finite and positive
    at_nearest = np.flatnonzero(depth == nearest[pixel])
    none = np.iinfo(np.int64).max
    first = np.full(size, none, dtype=np.int64)
    np.minimum.at(first, pixel[at_nearest], at_nearest)
    pixels = np.flatnonzero(first != none)
    return pixels, first[pixels]


def project_point_indices(
    xyz: np.ndarray,
    K: np.ndarray | Sequence[float],
    T_cam_from_lidar: np.ndarray | Sequence[float],
    size: tuple[int, int],
    D: np.ndarray | Sequence[float] | None = None,
    *,
    distortion_model: str | None = None,
) -> np.ndarray:
    """``H x W`` int64: index into ``xyz`` of the nearest point per pixel, -1 where none.

    Use it to build an image of any per-point attribute, e.g. intensity:
    ``np.where(idx >= 0, intensity[idx], np.nan)``.
    """
    h, w = int(size[0]), int(size[1])
    lin, z, point_idx = _project(xyz, K, T_cam_from_lidar, size, D, distortion_model)
    pixels, first = nearest_per_pixel(lin, z)
    out = np.full(h * w, -1, dtype=np.int64)
    out[pixels] = point_idx[first]
    return out.reshape(h, w)


def project_points(
    xyz: np.ndarray,
    K: np.ndarray | Sequence[float],
    T_cam_from_lidar: np.ndarray | Sequence[float],
    size: tuple[int, int],
    D: np.ndarray | Sequence[float] | None = None,
    *,
    distortion_model: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Project LiDAR points into a camera as a sparse depth image.

    ``xyz``: ``N x 3`` points in the LiDAR frame (any float dtype; non-finite rows dropped).
    ``K``: ``3 x 3`` intrinsics (or CameraInfo's flat ``k``). ``T_cam_from_lidar``: ``4 x 4``
    (or ``3 x 4``) transform taking LiDAR coordinates to camera coordinates. ``size``:
    ``(H, W)``. ``D``: CameraInfo ``d``; None or all zeros = no distortion.
    ``distortion_model``: CameraInfo's model name (``camera_models.DISTORTION_MODELS``); None
    = plumb_bob for 4 or 5 values of ``D``, rational_polynomial for 8. Points behind the camera,
    outside the image, non-finite or at exactly (0, 0, 0) are dropped; the nearest point wins
    per pixel.

    Returns ``(depth, mask)``: ``H x W`` float32 camera-frame z in metres (NaN where no point),
    and ``H x W`` bool (True where a point landed).
    """
    h, w = int(size[0]), int(size[1])
    lin, z, _ = _project(xyz, K, T_cam_from_lidar, size, D, distortion_model)
    depth = np.full(h * w, np.nan, dtype=z.dtype)  # same dtype: ufunc.at then needs no casts
    # Unbuffered, so points sharing a pixel are all compared: about 40x faster than sorting by
    # (pixel, depth) for a 130 k-point cloud. fmin ignores the NaN of a still empty pixel.
    np.fmin.at(depth, lin, z)
    mask = ~np.isnan(depth)
    return depth.astype(np.float32, copy=False).reshape(h, w), mask.reshape(h, w)


def project_pixels(
    xyz: np.ndarray,
    K: np.ndarray | Sequence[float],
    T_cam_from_lidar: np.ndarray | Sequence[float],
    size: tuple[int, int],
    D: np.ndarray | Sequence[float] | None = None,
    *,
    distortion_model: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(pixel, point)``: for every point of ``xyz`` that lands in the image (not only the
    nearest per pixel), its linear pixel index ``row * W + col`` and its index into ``xyz``.

    The same projection and drop rules as :func:`project_points` (one code path), for reading a
    per-pixel image back at each point, e.g. the labels of a labelled cloud.
    """
    lin, _, point_idx = _project(xyz, K, T_cam_from_lidar, size, D, distortion_model)
    return lin, point_idx


def project_pixel_depths(
    xyz: np.ndarray,
    K: np.ndarray | Sequence[float],
    T_cam_from_lidar: np.ndarray | Sequence[float],
    size: tuple[int, int],
    D: np.ndarray | Sequence[float] | None = None,
    *,
    distortion_model: str | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pixel, depth, point)``: :func:`project_pixels` with each point's camera-frame z (in
    the cloud's float type), for callers that pick the nearest point per pixel themselves
    (:func:`nearest_per_pixel`) and keep every point's pixel too (the labelled cloud)."""
    return _project(xyz, K, T_cam_from_lidar, size, D, distortion_model)

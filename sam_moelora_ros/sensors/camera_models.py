"""CameraInfo distortion models: ``plumb_bob``, ``rational_polynomial`` and ``equidistant``.

Why: LiDAR points are projected into real cameras, whose ``sensor_msgs/CameraInfo`` names a
distortion model (``sensor_msgs/distortion_models.hpp``); a fisheye read as plumb_bob, or a
model ignored, puts every point in the wrong pixel without any error. So an unknown model, or
a ``d`` of the wrong length for its model, is a :class:`CameraModelError`, never a fallback.

The models are OpenCV's, applied to normalised coordinates ``x = X/Z, y = Y/Z``:

- ``plumb_bob`` (``k1 k2 p1 p2 k3``; 4 values accepted, k3 = 0) and ``rational_polynomial``
  (``k1 k2 p1 p2 k3 k4 k5 k6``): ``cv2.projectPoints``' radial (a ratio of polynomials in
  ``r^2``) and tangential terms.
- ``equidistant`` (``k1 k2 k3 k4``): ``cv2.fisheye.projectPoints``: ``theta = atan(r)``,
  ``theta_d = theta (1 + k1 theta^2 + k2 theta^4 + k3 theta^6 + k4 theta^8)``, ``x_d = x
  theta_d / r``. Only points in front of the camera (Z > 0) are meaningful, as in OpenCV.

An empty or all-zero ``d`` means no distortion under any known model (and under an empty
model name, which rectified and simulated cameras publish).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sam_moelora_ros.errors import SamMoeLoraError

from .limits import DEFAULT_LIMITS, LimitError, Limits

__all__ = [
    "DISTORTION_MODELS",
    "CameraModel",
    "CameraModelError",
    "distort",
    "distortion_coefficients",
]

DISTORTION_MODELS: dict[str, tuple[int, ...]] = {
    "plumb_bob": (4, 5),
    "rational_polynomial": (8,),
    "equidistant": (4,),
}
"""Supported ``distortion_model`` names and the ``d`` lengths each accepts."""


PRINCIPAL_POINT_MARGIN = 1.0
"""cx, cy may lie this many image widths / heights outside the image (off-centre crops)."""


class CameraModelError(SamMoeLoraError, ValueError):
    """A CameraInfo whose distortion model, coefficients, K or size cannot be used."""


def distortion_coefficients(model: str, d: Sequence[float] | np.ndarray) -> np.ndarray | None:
    """``d`` checked against ``model``: float64 coefficients, or None for no distortion.

    Raises CameraModelError for an unknown model, a ``d`` length the model does not have, or
    non-finite values.
    """
    coeffs = np.asarray(d, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(coeffs)):
        raise CameraModelError(f"CameraInfo d holds non-finite values: {coeffs.tolist()}")
    zero = not np.any(coeffs)
    if model == "" and zero:
        return None
    if model not in DISTORTION_MODELS:
        known = ", ".join(DISTORTION_MODELS)
        raise CameraModelError(
            f"distortion_model {model!r} is not supported (d = {coeffs.tolist()}); supported: "
            f"{known}. Rectify the image (image_proc) or calibrate with one of these models."
        )
    if zero:
        return None
    sizes = DISTORTION_MODELS[model]
    if coeffs.size not in sizes:
        raise CameraModelError(
            f"distortion_model {model!r} takes {' or '.join(map(str, sizes))} coefficients, "
            f"d holds {coeffs.size}: {coeffs.tolist()}"
        )
    return coeffs


def distort(
    x: np.ndarray, y: np.ndarray, model: str, d: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distorted normalised coordinates of ``x, y`` (any equal shapes) under ``model``.

    ``d`` as returned by :func:`distortion_coefficients` (not None). Vectorised numpy in the
    inputs' float type.
    """
    coeffs = np.asarray(d, dtype=np.float64)
    if model == "equidistant":
        k1, k2, k3, k4 = coeffs
        r = np.sqrt(x * x + y * y)
        theta = np.arctan(r)
        t2 = theta * theta
        theta_d = theta * (1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4))))
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(r > 1e-8, theta_d / r, 1.0)
        return x * scale, y * scale
    if model not in ("plumb_bob", "rational_polynomial"):
        raise CameraModelError(f"distortion_model {model!r} is not supported")
    full = np.zeros(8)
    full[: coeffs.size] = coeffs
    k1, k2, p1, p2, k3, k4, k5, k6 = full
    r2 = x * x + y * y
    radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    xy = x * y
    xd = x * radial + 2 * p1 * xy + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * xy
    return xd, yd


@dataclass(frozen=True)
class CameraModel:
    """What projection needs from a CameraInfo: size, intrinsics and a checked distortion."""

    height: int
    width: int
    K: np.ndarray
    D: np.ndarray | None
    distortion_model: str
    frame_id: str = ""

    @classmethod
    def from_camera_info(cls, msg: Any, limits: Limits = DEFAULT_LIMITS) -> CameraModel:
        """Read a CameraInfo (any flavour). Raises CameraModelError naming the bad field.

        The size must be within ``limits.max_image_pixels`` (projection allocates images of
        it); K must be finite with positive focal lengths, last row ``0 0 1`` and the principal
        point within ``PRINCIPAL_POINT_MARGIN`` image sizes of the image.
        """
        height, width = int(msg.height), int(msg.width)
        if height <= 0 or width <= 0:
            raise CameraModelError(f"CameraInfo has no image size ({height} x {width})")
        try:
            limits.check_image("CameraInfo", height, width)
        except LimitError as exc:
            raise CameraModelError(str(exc)) from None
        flat = np.asarray(msg.k, dtype=np.float64).reshape(-1)
        if flat.size != 9:
            raise CameraModelError(f"CameraInfo k must hold 9 values, got {flat.size}")
        k = flat.reshape(3, 3)
        if not np.all(np.isfinite(k)) or k[0, 0] <= 0 or k[1, 1] <= 0:
            raise CameraModelError(
                f"CameraInfo k has no valid focal length (fx={k[0, 0]}, fy={k[1, 1]}); is the "
                "camera calibrated?"
            )
        if not np.allclose(k[2], (0.0, 0.0, 1.0)) or k[1, 0] != 0:
            raise CameraModelError(
                f"CameraInfo k = {flat.tolist()} is not a camera matrix (row 2 must be 0 0 1 "
                "and k[3] 0)"
            )
        m = PRINCIPAL_POINT_MARGIN
        if not (-m * width <= k[0, 2] <= (1 + m) * width) or not (
            -m * height <= k[1, 2] <= (1 + m) * height
        ):
            raise CameraModelError(
                f"CameraInfo principal point (cx={k[0, 2]}, cy={k[1, 2]}) is far outside the "
                f"{width}x{height} image; K and the size do not belong together"
            )
        model = str(getattr(msg, "distortion_model", "") or "")
        d = distortion_coefficients(model, np.asarray(msg.d, dtype=np.float64))
        frame = str(getattr(getattr(msg, "header", None), "frame_id", "") or "")
        return cls(height, width, k, d, model, frame)

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)``, the order ``project_points`` takes."""
        return self.height, self.width

"""RGB camera sensor model: exposure, rain on the lens, motion blur, noise, tone curve.

Works on the linear radiance from :mod:`shading` and produces what a real camera driver would
publish (rgb8). Noise is added in linear space (shot noise grows with signal, read noise is
constant and dominates at night, where the gain is high); night colours are washed out by
pulling them towards luminance; rain adds slanted streaks and blurred droplets on the lens.
Failure cases (DELIVER's motionblur / over- / underexposure) are applied here too.
"""

from __future__ import annotations

import cv2
import numpy as np

from sam_moelora_ros.synthetic.conditions import Condition, Failure

LUMA = np.array([0.2126, 0.7152, 0.0722])


def motion_blur(img: np.ndarray, length_px: int, angle: float) -> np.ndarray:
    """Linear motion blur with a normalised line kernel of ``length_px`` pixels at ``angle``."""
    if length_px < 2:
        return img
    k = np.zeros((length_px, length_px), np.float32)
    c = (length_px - 1) / 2.0
    dx, dy = np.cos(angle) * c, np.sin(angle) * c
    cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
    k /= k.sum()
    return cv2.filter2D(img.astype(np.float32), -1, k, borderType=cv2.BORDER_REFLECT)


def rain_layer(h: int, w: int, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Additive rain streaks (H, W): sparse drops smeared along a slanted line kernel."""
    drops = (rng.random((h, w)) < 0.004 * amount).astype(np.float32)
    length = max(3, h // 12)
    angle = np.deg2rad(75.0 + rng.uniform(-8.0, 8.0))
    streaks = motion_blur(drops, length, angle) * length * 0.25
    return np.clip(streaks, 0.0, 1.0)


def droplets(img: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """Blur a few round lens droplets into the image (blend with a heavily blurred copy)."""
    h, w = img.shape[:2]
    n = int(rng.poisson(6 * amount))
    if n == 0:
        return img
    blurred = cv2.GaussianBlur(img, (0, 0), sigmaX=max(2.0, w / 80.0))
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy = rng.uniform(0, w, n), rng.uniform(0, h, n)
    r = rng.uniform(0.02, 0.06, n) * w
    d = np.min(((xx[..., None] - cx) ** 2 + (yy[..., None] - cy) ** 2) / r**2, axis=-1)
    mask = np.clip(1.5 - d, 0.0, 1.0)[..., None]
    return img * (1 - mask) + blurred * mask


def expose(
    radiance: np.ndarray,
    cond: Condition,
    failure: Failure,
    rng: np.random.Generator,
    blur_angle: float = 0.0,
) -> np.ndarray:
    """Linear radiance (H, W, 3) -> rgb8 (H, W, 3) as the camera would record it."""
    h, w = radiance.shape[:2]
    img = radiance.astype(np.float32) * np.float32(cond.exposure * failure.exposure_gain)
    if failure.motion_blur_px > 0:
        img = motion_blur(img, max(2, round(failure.motion_blur_px * w)), blur_angle)
    if cond.rain > 0:
        img = img * 0.9 + rain_layer(h, w, rng, cond.rain)[..., None] * 0.35
        img = droplets(img, rng, cond.rain)
    luma = img @ LUMA.astype(np.float32)
    img = luma[..., None] + (img - luma[..., None]) * np.float32(cond.saturation)
    sigma = np.sqrt(cond.read_noise**2 + cond.shot_noise**2 * np.clip(img, 0, None))
    img = img + rng.standard_normal(img.shape, dtype=np.float32) * sigma.astype(np.float32)
    img = np.clip(img, 0.0, 1.0) ** (1.0 / 2.2)
    return np.round(img * 255.0).astype(np.uint8)

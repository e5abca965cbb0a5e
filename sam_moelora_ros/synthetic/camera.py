"""RGB camera sensor model: exposure, rain on the lens, motion blur, noise, tone curve.

Works on the linear radiance from :mod:`shading` and produces what a real camera driver would
publish (rgb8). Noise follows the Poisson-Gaussian sensor model (Foi et al. 2008, "Practical
Poissonian-Gaussian noise modeling"; EMVA 1288): the signal in electrons is the physical
irradiance times the exposure time times a sensor scale, photon (shot) noise is Poisson in it
(std = sqrt(electrons)), read noise is a constant Gaussian in electrons, and a gain maps
electrons to digital numbers. At night few electrons are collected even with a long exposure,
so the gain is high and the noise strong. The long night exposure also blurs (rendered in
:mod:`frames` by averaging sub-times of the exposure window). Night colours are washed out by
pulling them towards luminance; rain adds slanted streaks and blurred droplets on the lens.
Failure cases (DELIVER's motionblur / over- / underexposure) are applied here too.
"""

from __future__ import annotations

import cv2
import numpy as np

from sam_moelora_ros.synthetic.conditions import Condition, Failure

LUMA = np.array([0.2126, 0.7152, 0.0722])
ELECTRONS_PER_UNIT_S = 1.0e7
"""Electrons per second per unit of physical irradiance (rendered radiance x ``light_scale``):
a daylight pixel of radiance 1 collects 20 000 electrons in 1/500 s (about a full well)."""


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
    img = sensor_noise(img, cond, rng)
    luma = img @ LUMA.astype(np.float32)
    img = luma[..., None] + (img - luma[..., None]) * np.float32(cond.saturation)
    img = np.clip(img, 0.0, 1.0) ** (1.0 / 2.2)
    return np.round(img * 255.0).astype(np.uint8)


def digital_gain(cond: Condition) -> float:
    """Normalised digital numbers per electron (high at night: little light, same brightness)."""
    return cond.exposure / (cond.light_scale * cond.exposure_s * ELECTRONS_PER_UNIT_S)


def sensor_noise(signal: np.ndarray, cond: Condition, rng: np.random.Generator) -> np.ndarray:
    """Poisson-Gaussian noise on a normalised linear signal (float32, same shape).

    ``signal`` / gain is the mean electron count; the result is (Poisson(electrons) + read noise)
    times the gain. Over- / underexposure failures change the signal, hence the electron count.
    """
    gain = digital_gain(cond)
    electrons = np.clip(signal, 0.0, None).astype(np.float64) / gain
    noisy = rng.poisson(electrons).astype(np.float32)
    noisy += rng.standard_normal(signal.shape, dtype=np.float32) * np.float32(cond.read_noise)
    return noisy * np.float32(gain)

"""Physical behaviour of the adverse conditions: fog visibility, night camera, depth, LiDAR."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np
import pytest

from sam_moelora_ros.synthetic import camera
from sam_moelora_ros.synthetic.conditions import Failure, condition_params, sequence_condition
from sam_moelora_ros.synthetic.depth_sensor import DepthConfig, render_depth
from sam_moelora_ros.synthetic.frames import GeneratorConfig, SequenceRenderer, SequenceSpec
from sam_moelora_ros.synthetic.lidar_sensor import lidar_points
from sam_moelora_ros.synthetic.raycast import Hits
from sam_moelora_ros.synthetic.transforms import LidarConfig, Rig

CONFIG = GeneratorConfig(
    rig=Rig(width=160, height=80, lidar=LidarConfig(rings=8, columns=256)), sync_lidar=False
)


def luma(rad: np.ndarray) -> np.ndarray:
    return rad @ camera.LUMA


def test_fog_visibility_is_drawn_per_sequence():
    vis = [sequence_condition("fog", seed).fog_visibility for seed in range(12)]
    assert all(15.0 <= v <= 60.0 for v in vis)  # dense fog: a test of fusion, not a haze
    assert len(set(vis)) == len(vis) and max(vis) / min(vis) > 2.0
    assert sequence_condition("fog", 7) == sequence_condition("fog", 7)
    assert sequence_condition("rain", 7).fog_visibility == condition_params("rain").fog_visibility
    assert sequence_condition("sun", 7) == condition_params("sun")
    renderer = SequenceRenderer(SequenceSpec("f", 7, "fog", None, 1), CONFIG)
    assert renderer.cond.fog_visibility == sequence_condition("fog", 7).fog_visibility


def test_denser_fog_lowers_far_contrast():
    renderer = SequenceRenderer(SequenceSpec("f", 21, "fog", None, 1), CONFIG)
    t = float(renderer.times[0])
    contrast = {}
    for vis in (15.0, 60.0, 150.0):
        renderer.cond = replace(renderer.cond, fog_visibility=vis)
        hits, rad = renderer.radiance(t, renderer.cam_dirs)
        dist = hits.t.reshape(rad.shape[:2])
        far = np.isfinite(dist) & (dist > 25.0)
        assert far.sum() > 50
        sky = luma(rad)[~np.isfinite(dist)]
        contrast[vis] = np.abs(luma(rad)[far] - np.median(sky)).mean()
    assert contrast[15.0] < 0.6 * contrast[60.0]
    # Even the clearest fog drawn (60 m) leaves far objects under half their 150 m contrast.
    assert contrast[60.0] < 0.5 * contrast[150.0]


def test_night_camera_noise_is_stronger_than_by_day():
    stds = {}
    for name in ("sun", "night"):
        cond = condition_params(name)
        flat = np.full((64, 64, 3), 0.05 / cond.exposure, np.float32)  # same output level
        rgb = camera.expose(flat, cond, Failure(), np.random.default_rng(0))
        stds[name] = rgb.astype(np.float64).std()
        assert abs(rgb.mean() - 255 * 0.05 ** (1 / 2.2)) < 3.0, name
    assert stds["night"] > 2.5 * stds["sun"] and stds["sun"] > 0.2
    assert camera.digital_gain(condition_params("night")) > 5 * camera.digital_gain(
        condition_params("sun")
    )


def high_freq(rad: np.ndarray) -> float:
    img = np.clip(luma(rad), 0, None).astype(np.float32) ** (1 / 2.2)
    return float(np.abs(cv2.Laplacian(img, cv2.CV_32F)).mean())


def test_night_frames_are_motion_blurred():
    renderer = SequenceRenderer(SequenceSpec("n", 21, "night", None, 2), CONFIG)
    assert renderer.cond.exposure_s >= 1 / 30 and renderer.cond.blur_samples >= 3
    t = float(renderer.times[1])
    hits, blurred = renderer.exposed_radiance(t)
    sharp_hits, sharp = renderer.radiance(t, renderer.cam_dirs)
    assert np.array_equal(hits.label, sharp_hits.label)  # labels from the centre time
    assert high_freq(blurred) < 0.95 * high_freq(sharp)
    assert np.abs(blurred - sharp).mean() > 0.02 * np.abs(sharp).mean()
    day = SequenceRenderer(SequenceSpec("d", 21, "sun", None, 2), CONFIG)
    assert day.cond.blur_samples == 1
    assert np.array_equal(day.exposed_radiance(t)[1], day.radiance(t, day.cam_dirs)[1])


def test_depth_range_shrinks_at_night_and_in_fog():
    z = np.linspace(0.5, 59.0, 20000).reshape(100, 200)
    cos = np.ones_like(z)
    cfg = DepthConfig()
    day = render_depth(z, cos, condition_params("sun"), np.random.default_rng(0), cfg)
    night = render_depth(z, cos, condition_params("night"), np.random.default_rng(0), cfg)
    assert np.isfinite(day[z > 30]).mean() > 0.9
    assert not np.isfinite(night[z > 11.0 * 1.2]).any()
    assert np.isfinite(night[(z > 1.0) & (z < 8.0)]).mean() > 0.9
    soft = np.isfinite(night[(z > 10.0) & (z < 12.0)]).mean()
    assert 0.1 < soft < 0.9  # a soft, random fall-off
    fog = replace(condition_params("fog"), fog_visibility=40.0)
    foggy = render_depth(z, cos, fog, np.random.default_rng(0), cfg)
    assert not np.isfinite(foggy[z > 20.0 * 1.2]).any()
    assert np.isfinite(foggy[(z > 1.0) & (z < 15.0)]).mean() > 0.9
    frame = SequenceRenderer(SequenceSpec("n", 21, "night", None, 1), CONFIG).frame(0)
    assert np.nanmax(frame.depth) < 11.0 * 1.2 and np.isfinite(frame.depth).mean() > 0.05


def synthetic_hits(r: float, n: int) -> Hits:
    """``n`` rays all hitting a grey wall at range ``r`` (inf: nothing, sky)."""
    return Hits(
        t=np.full(n, r),
        point=np.zeros((n, 3)),
        local=np.zeros((n, 3)),
        normal=np.tile([-1.0, 0.0, 0.0], (n, 1)),
        label=np.zeros(n, np.int64),
        colour=np.full((n, 3), 0.5),
        texture=np.zeros(n, np.int64),
        emissive=np.zeros(n),
        reflectivity=np.full(n, 0.5),
        obj=np.full(n, -1),
    )


@pytest.mark.parametrize("r", [float("inf"), 70.0])
def test_lidar_fog_backscatter_is_near_and_grows_with_density(r: float):
    cfg = LidarConfig(rings=16, columns=1024)
    dirs = np.zeros((cfg.rings, cfg.columns, 3))
    dirs[..., 0] = 1.0
    n = cfg.rings * cfg.columns
    hits = synthetic_hits(r, n)
    fog = condition_params("fog")
    counts = {}
    for vis in (30.0, 150.0):
        cond = replace(fog, fog_visibility=vis)
        pts = lidar_points(hits, dirs, dirs, cfg, cond, Failure(), np.random.default_rng(1))
        rng_m = np.sqrt(pts["x"] ** 2 + pts["y"] ** 2 + pts["z"] ** 2)
        near = rng_m < 8.0
        assert np.all(rng_m[near] >= cfg.min_range)
        counts[vis] = int(near.sum())
        assert np.median(rng_m[near]) < 3.0
        if vis == 30.0:  # dense fog: the far wall is lost entirely
            assert not (rng_m > 50).any()
    assert counts[30.0] > 2.5 * counts[150.0] > 0
    sun = lidar_points(
        hits, dirs, dirs, cfg, condition_params("sun"), Failure(), np.random.default_rng(1)
    )
    assert len(sun) == (0 if not np.isfinite(r) else len(sun))
    assert not (np.sqrt(sun["x"] ** 2 + sun["y"] ** 2 + sun["z"] ** 2) < 8.0).any()


def test_lidar_rain_drops_returns_and_adds_near_clutter():
    cfg = LidarConfig(rings=16, columns=1024)
    dirs = np.zeros((cfg.rings, cfg.columns, 3))
    dirs[..., 0] = 1.0
    hits = synthetic_hits(20.0, cfg.rings * cfg.columns)
    out = {}
    for name in ("sun", "rain"):
        pts = lidar_points(
            hits, dirs, dirs, cfg, condition_params(name), Failure(), np.random.default_rng(2)
        )
        out[name] = np.sqrt(pts["x"] ** 2 + pts["y"] ** 2 + pts["z"] ** 2)
    wall = {k: int((np.abs(v - 20.0) < 0.5).sum()) for k, v in out.items()}
    assert wall["rain"] < wall["sun"]
    clutter = out["rain"][np.abs(out["rain"] - 20.0) >= 0.5]
    assert len(clutter) > 10 and clutter.max() <= 12.0
    assert not (np.abs(out["sun"] - 20.0) >= 0.5).any()

"""Conditions, class balance and the event simulator."""

from __future__ import annotations

import numpy as np
import pytest

from sam_moelora_ros.classes import DELIVER_ID
from sam_moelora_ros.synthetic import SCENE_CLASSES
from sam_moelora_ros.synthetic.conditions import CONDITIONS
from sam_moelora_ros.synthetic.event_sensor import EventConfig, EventSimulator
from sam_moelora_ros.synthetic.frames import GeneratorConfig, SequenceRenderer, SequenceSpec
from sam_moelora_ros.synthetic.transforms import LidarConfig, Rig

CONFIG = GeneratorConfig(rig=Rig(width=160, height=80, lidar=LidarConfig(rings=8, columns=256)))


@pytest.fixture(scope="module")
def by_condition() -> dict:
    """The same street and frame rendered under every condition."""
    out = {}
    for cond in CONDITIONS:
        frames = list(SequenceRenderer(SequenceSpec("t", 21, cond, None, 2), CONFIG))
        out[cond] = frames[-1]
    return out


def grey(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) / 255.0


def test_every_condition_renders_and_differs(by_condition: dict):
    labels = by_condition["sun"].labels
    for cond, frame in by_condition.items():
        assert frame.rgb.shape == (80, 160, 3) and frame.rgb.std() > 3, cond
        assert np.array_equal(frame.labels, labels), "conditions must not move the geometry"
        assert np.isfinite(frame.depth).mean() > 0.3 and len(frame.lidar) > 500
    for a in CONDITIONS:
        for b in CONDITIONS:
            if a < b:
                assert np.abs(grey(by_condition[a].rgb) - grey(by_condition[b].rgb)).mean() > 0.02


def test_night_is_dark_and_ambiguous(by_condition: dict):
    night, sun = grey(by_condition["night"].rgb), grey(by_condition["sun"].rgb)
    assert night.mean() < 0.4 * sun.mean()
    # Outside the light pools most of the non-sky image is nearly black: RGB alone cannot tell.
    ground = by_condition["night"].labels != DELIVER_ID["Sky"]
    assert np.mean(night[ground] < 0.12) > 0.3


def test_fog_contrast_falls_with_distance(by_condition: dict):
    fog = grey(by_condition["fog"].rgb)
    # Distances from the clear-weather depth (same geometry): fog shortens the depth camera's range.
    depth = by_condition["sun"].depth
    assert not (by_condition["fog"].depth > 0.5 * 60.0 * 1.2).any()  # visibility <= 60 m
    sun = grey(by_condition["sun"].rgb)
    fog_colour = np.median(fog[by_condition["fog"].labels == DELIVER_ID["Sky"]])
    near, far = depth < 8.0, (depth > 30.0) & np.isfinite(depth)
    assert near.sum() > 50 and far.sum() > 50
    assert np.abs(fog[far] - fog_colour).mean() < 0.4 * np.abs(fog[near] - fog_colour).mean()
    assert np.abs(fog[far] - fog_colour).mean() < 0.5 * np.abs(sun[far] - fog_colour).mean()


def test_every_scene_class_appears_often_enough():
    cfg = GeneratorConfig(
        rig=Rig(width=128, height=64, lidar=LidarConfig(rings=4, columns=64)), sync_lidar=False
    )
    present = np.zeros(len(DELIVER_ID))
    n = 0
    for i in range(16):
        renderer = SequenceRenderer(SequenceSpec("b", 1000 + i, "sun", None, 1), cfg)
        labels = renderer.frame(0).labels
        present[np.unique(labels)] += 1
        n += 1
    share = {name: present[DELIVER_ID[name]] / n for name in SCENE_CLASSES}
    assert all(v > 0 for v in share.values()), share
    common = ("Building", "Road", "RoadLine", "Sky", "Cars", "Pole", "Pedestrian", "Vegetation")
    assert all(share[c] >= 0.75 for c in common), share
    assert present[DELIVER_ID["Other"]] == 0 and present[DELIVER_ID["Water"]] == 0


def test_esim_emits_threshold_crossings_with_polarity():
    cfg = EventConfig(threshold=0.2, threshold_sigma=0.0, refractory_s=0.0)
    base = np.full((4, 5, 3), 0.2)
    sim = EventSimulator(base, 0.0, seed=0, config=cfg)
    brighter = base.copy()
    brighter[1, 2] *= np.exp(0.65)  # three crossings (0.2, 0.4, 0.6) up at one pixel
    ev = sim.step(brighter, 0.01)
    assert len(ev) == 3 and set(ev.p.tolist()) == {1}
    assert (ev.x == 2).all() and (ev.y == 1).all() and np.all(np.diff(ev.t) >= 0)
    assert ev.t.min() > 0.0 and ev.t.max() <= 0.01
    ev = sim.step(base, 0.02)
    assert len(ev) == 3 and set(ev.p.tolist()) == {-1}

"""Sequence generation: one street, one condition, all sensors rendered from one geometry.

A sequence is a short drive along a generated street. For every camera frame (``fps``) it renders
the RGB image, the registered depth image and the labels from one ray cast, runs the event
simulator over sub-sampled poses since the previous frame, and casts the LiDAR: a sweep at the
camera time for the synchronised DELIVER output (as CARLA records DELIVER) and/or sweeps at the
LiDAR's own rate and jittered stamps for bags. A fog sequence draws its own visibility from the
sequence seed (:func:`conditions.sequence_condition`); night frames average the radiance over
sub-times of their long exposure (motion blur), while labels and depth come from the frame's
centre time. All randomness comes from seeds derived from the sequence seed, so the same seed
gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sam_moelora_ros.sensors.encodings import DEFAULT_CONTRACT
from sam_moelora_ros.sensors.representation import encode_events
from sam_moelora_ros.synthetic import camera
from sam_moelora_ros.synthetic.conditions import (
    Condition,
    Failure,
    failure_params,
    sequence_condition,
)
from sam_moelora_ros.synthetic.depth_sensor import DepthConfig, render_depth
from sam_moelora_ros.synthetic.event_sensor import (
    EventConfig,
    Events,
    EventSimulator,
    merge,
    noise_events,
)
from sam_moelora_ros.synthetic.layout import Scene, generate_scene
from sam_moelora_ros.synthetic.lidar_sensor import lidar_points
from sam_moelora_ros.synthetic.raycast import Hits, cast
from sam_moelora_ros.synthetic.shading import shade
from sam_moelora_ros.synthetic.transforms import Rig, ego_pose, rotate_dirs, transform_points

CAMERA_FAR = 300.0

GENERATOR_CONTRACT = DEFAULT_CONTRACT
"""The input encodings the generator renders (its event frames span one frame interval, 1/20 s
at the default 20 Hz); written beside its DELIVER-layout folders as ``input_encodings.json``."""


@dataclass(frozen=True)
class SequenceSpec:
    """What to render: which street (seed), condition, failure, how many frames, when."""

    name: str
    seed: int
    condition: str
    failure: str | None
    frames: int
    start: float = 0.0

    @property
    def tag(self) -> str:
        """``condition`` or ``condition+failure`` (the bag's /synthetic/condition string)."""
        return self.condition if not self.failure else f"{self.condition}+{self.failure}"


@dataclass(frozen=True)
class GeneratorConfig:
    """Rig, rates and which LiDAR products to render."""

    rig: Rig = field(default_factory=Rig)
    fps: float = 20.0
    lidar_hz: float = 10.0
    camera_jitter_s: float = 0.0005
    lidar_jitter_s: float = 0.0003
    depth: DepthConfig = field(default_factory=DepthConfig)
    events: EventConfig = field(default_factory=EventConfig)
    sync_lidar: bool = True
    lidar_sweeps: bool = False


@dataclass
class Frame:
    """One camera frame and everything rendered with it (stamps in seconds on the bag clock)."""

    spec: SequenceSpec
    index: int
    stamp: float
    rgb: np.ndarray
    depth: np.ndarray
    labels: np.ndarray
    events: Events
    event_frame: np.ndarray
    lidar: np.ndarray | None
    sweeps: list[tuple[float, np.ndarray]]


class SequenceRenderer:
    """Renders the frames of one :class:`SequenceSpec` in order (stateful: events carry over)."""

    def __init__(self, spec: SequenceSpec, config: GeneratorConfig) -> None:
        self.spec, self.config = spec, config
        self.cond: Condition = sequence_condition(spec.condition, spec.seed)
        self.failure: Failure = failure_params(spec.failure)
        duration = spec.frames / config.fps + 1.0
        self.scene: Scene = generate_scene(spec.seed, -110.0, 13.0 * duration + 130.0, duration)
        self.rng = np.random.default_rng([spec.seed, 1])
        rig = config.rig
        self.cam_dirs = rig.camera_directions()
        self.cos_axis = self.cam_dirs[..., 2]
        self.event_scale = rig.event_scale * self.failure.event_scale
        self.event_dirs = rig.camera_directions(self.event_scale)
        self.lidar_dirs = rig.lidar.directions()
        el, az = self.scene.sun_elevation, self.scene.sun_azimuth
        self.sun = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
        period = 1.0 / config.fps
        jit = self.rng.uniform(-1, 1, spec.frames) * config.camera_jitter_s
        self.times = np.arange(spec.frames) * period + jit
        t_prev = -period
        _, rad = self.radiance(t_prev, self.event_dirs)
        self.events = EventSimulator(rad, t_prev, spec.seed + 17, config.events)
        self.t_event = t_prev
        self.blur_angle = float(self.rng.uniform(-0.3, 0.3))

    def pose(self, t: float) -> np.ndarray:
        """T_world_base at scene time ``t``."""
        s = self.scene
        return ego_pose(t, s.speed, s.lane_y, s.sway, s.sway_phase)

    def radiance(self, t: float, dirs_cam: np.ndarray) -> tuple[Hits, np.ndarray]:
        """Cast and shade camera rays ``dirs_cam`` (H, W, 3, optical frame) at scene time ``t``."""
        base = self.pose(t)
        t_wc = base @ self.config.rig.base_from_camera
        world = rotate_dirs(t_wc, dirs_cam)
        hits = cast(self.scene, t, t_wc[:3, 3], world, CAMERA_FAR)
        head = None
        if self.cond.night:
            pos = transform_points(base, np.array([3.6, 0.0, 0.7]))
            fwd = rotate_dirs(base, np.array([0.999, 0.0, -0.045]))
            head = (pos, fwd / np.linalg.norm(fwd))
        rad = shade(
            hits, world.reshape(-1, 3), self.cond, self.sun, self.scene.lights, head, self.spec.seed
        )
        return hits, rad.reshape(*dirs_cam.shape[:2], 3)

    def exposed_radiance(self, t: float) -> tuple[Hits, np.ndarray]:
        """Camera hits at ``t`` and the radiance integrated over the exposure window around it.

        With ``cond.blur_samples`` > 1 (night) the radiance is averaged over that many poses
        spread evenly across ``cond.exposure_s`` (centred on ``t``): the long exposure's blur.
        """
        hits, rad = self.radiance(t, self.cam_dirs)
        n = self.cond.blur_samples
        if n > 1:
            offsets = (np.arange(n) - (n - 1) / 2.0) / n * self.cond.exposure_s
            # odd count: t itself is the middle sample; even: only the labels' time
            total = rad.copy() if n % 2 else np.zeros_like(rad)
            for dt in offsets[offsets != 0.0]:
                total += self.radiance(t + float(dt), self.cam_dirs)[1]
            rad = total / n
        return hits, rad

    def lidar(self, t: float) -> np.ndarray:
        """One sweep (structured points in the LiDAR frame) from the pose at scene time ``t``."""
        rig = self.config.rig
        t_wl = self.pose(t) @ rig.base_from_lidar
        world = rotate_dirs(t_wl, self.lidar_dirs)
        hits = cast(self.scene, t, t_wl[:3, 3], world, rig.lidar.max_range)
        return lidar_points(
            hits, self.lidar_dirs, world, rig.lidar, self.cond, self.failure, self.rng
        )

    def frame(self, k: int) -> Frame:
        """Render camera frame ``k`` (call in order: the event simulator is stateful)."""
        cfg, spec = self.config, self.spec
        t = float(self.times[k])
        hits, rad = self.exposed_radiance(t)
        h, w = self.cam_dirs.shape[:2]
        rgb = camera.expose(rad, self.cond, self.failure, self.rng, self.blur_angle)
        depth = render_depth(hits.t.reshape(h, w), self.cos_axis, self.cond, self.rng, cfg.depth)
        labels = hits.label.reshape(h, w)
        parts = []
        sub = np.linspace(self.t_event, t, cfg.events.substeps + 1)[1:]
        for ts in sub:
            parts.append(self.events.step(self.radiance(float(ts), self.event_dirs)[1], float(ts)))
        eh, ew = self.event_dirs.shape[:2]
        parts.append(noise_events(eh, ew, self.t_event, t, self.cond.event_noise_hz, self.rng))
        ev = merge(parts)
        ev.t = ev.t + spec.start
        self.t_event = t
        ev_frame = encode_events(ev.x, ev.y, ev.t, ev.p, (eh, ew), GENERATOR_CONTRACT["event"])
        lidar = self.lidar(t) if cfg.sync_lidar else None
        sweeps: list[tuple[float, np.ndarray]] = []
        per = max(1, round(cfg.fps / cfg.lidar_hz))
        if cfg.lidar_sweeps and k % per == 0:
            tl = k / cfg.fps + float(self.rng.uniform(-1, 1)) * cfg.lidar_jitter_s
            sweeps.append((spec.start + tl, self.lidar(tl)))
        return Frame(spec, k, spec.start + t, rgb, depth, labels, ev, ev_frame, lidar, sweeps)

    def __iter__(self):
        """Yield every frame of the sequence in order."""
        for k in range(self.spec.frames):
            yield self.frame(k)

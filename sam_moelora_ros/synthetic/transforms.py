"""Rigid transforms and the sensor rig: where each sensor sits and which rays it casts.

Frames follow REP 103/105: the world and ``base_link`` are x forward, y left, z up; the camera's
optical frame is x right, y down, z forward (what ``CameraInfo`` and image pixels assume). The rig
is the single source of the calibration: the same 4x4 matrices generate the rays, fill
``CameraInfo`` and are published on ``/tf_static``, so the LiDAR->camera extrinsic in a bag is
exact by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Columns are the optical axes (x right, y down, z forward) expressed in a REP 103 body frame.
OPTICAL_FROM_BODY = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])


def rot_z(yaw: float) -> np.ndarray:
    """Rotation about z (yaw), 3x3."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rot_y(pitch: float) -> np.ndarray:
    """Rotation about y (pitch; positive tilts x down towards -z), 3x3."""
    c, s = np.cos(pitch), np.sin(pitch)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_x(roll: float) -> np.ndarray:
    """Rotation about x (roll), 3x3."""
    c, s = np.cos(roll), np.sin(roll)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def make_transform(rotation: np.ndarray, translation: np.ndarray | tuple[float, ...]) -> np.ndarray:
    """Build a 4x4 homogeneous transform ``T_parent_child`` from R (3x3) and t (3,)."""
    out = np.eye(4)
    out[:3, :3] = rotation
    out[:3, 3] = np.asarray(translation, dtype=np.float64)
    return out


def invert(transform: np.ndarray) -> np.ndarray:
    """Invert a rigid 4x4 transform without a general matrix inverse (exact for rotations)."""
    rot = transform[:3, :3]
    out = np.eye(4)
    out[:3, :3] = rot.T
    out[:3, 3] = -rot.T @ transform[:3, 3]
    return out


def quaternion_xyzw(rotation: np.ndarray) -> tuple[float, float, float, float]:
    """Rotation matrix -> unit quaternion (x, y, z, w) as geometry_msgs expects, w >= 0."""
    m = rotation
    trace = float(m[0, 0] + m[1, 1] + m[2, 2])
    if trace > 0.0:
        s = 2.0 * np.sqrt(trace + 1.0)
        w, x = 0.25 * s, (m[2, 1] - m[1, 2]) / s
        y, z = (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        w, x = (m[2, 1] - m[1, 2]) / s, 0.25 * s
        y, z = (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        w, x = (m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s
        y, z = 0.25 * s, (m[1, 2] + m[2, 1]) / s
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        w, x = (m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s
        y, z = (m[1, 2] + m[2, 1]) / s, 0.25 * s
    q = np.array([x, y, z, w], dtype=np.float64)
    q /= np.linalg.norm(q)
    if q[3] < 0:
        q = -q
    return float(q[0]), float(q[1]), float(q[2]), float(q[3])


def quaternion_to_matrix(x: float, y: float, z: float, w: float) -> np.ndarray:
    """Unit quaternion (x, y, z, w) -> 3x3 rotation (used by tests reading /tf_static back)."""
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


@dataclass(frozen=True)
class LidarConfig:
    """A spinning multi-beam LiDAR (VLP-32C-like defaults: 32 rings over -25..+15 degrees)."""

    rings: int = 32
    columns: int = 1024
    min_elevation_deg: float = -25.0
    max_elevation_deg: float = 15.0
    max_range: float = 100.0
    min_range: float = 0.5
    range_noise_m: float = 0.02
    dropout: float = 0.01

    def directions(self) -> np.ndarray:
        """Unit ray directions in the LiDAR frame, shape (rings, columns, 3); ring 0 is lowest.

        Columns sweep azimuth from +180 degrees (behind) counter-clockwise, as a spinning head does.
        """
        elev = np.deg2rad(np.linspace(self.min_elevation_deg, self.max_elevation_deg, self.rings))
        azim = np.pi - 2.0 * np.pi * (np.arange(self.columns) + 0.5) / self.columns
        ce = np.cos(elev)[:, None]
        return np.stack(
            [
                ce * np.cos(azim)[None, :],
                ce * np.sin(azim)[None, :],
                np.broadcast_to(np.sin(elev)[:, None], (self.rings, self.columns)),
            ],
            axis=-1,
        )


@dataclass(frozen=True)
class Rig:
    """Sensor rig: pinhole camera (RGB, registered depth and event camera) and a LiDAR.

    The depth and event cameras are registered to the RGB camera (same optical frame and
    intrinsics), as in DELIVER where every modality is aligned to the RGB image; the event camera
    may run at a lower resolution (``event_scale``), which scales ``K``.
    """

    width: int = 512
    height: int = 256
    hfov_deg: float = 90.0
    event_scale: float = 0.5
    camera_xyz: tuple[float, float, float] = (1.6, 0.0, 1.55)
    camera_pitch_deg: float = 4.0
    lidar_xyz: tuple[float, float, float] = (1.1, 0.05, 1.95)
    lidar_rpy_deg: tuple[float, float, float] = (0.0, 0.5, 1.5)
    lidar: LidarConfig = field(default_factory=LidarConfig)

    def intrinsics(self, scale: float = 1.0) -> np.ndarray:
        """3x3 camera matrix for the (scaled) image; pixel centres at integer coordinates."""
        w, h = self.size(scale)
        fx = (w / 2.0) / np.tan(np.deg2rad(self.hfov_deg) / 2.0)
        return np.array([[fx, 0.0, (w - 1) / 2.0], [0.0, fx, (h - 1) / 2.0], [0.0, 0.0, 1.0]])

    def size(self, scale: float = 1.0) -> tuple[int, int]:
        """(width, height) of an image at ``scale`` of the RGB resolution (at least 8x4)."""
        return max(8, round(self.width * scale)), max(4, round(self.height * scale))

    @property
    def base_from_camera(self) -> np.ndarray:
        """T_base_camera-optical (4x4): REP 103 camera link pitched down, then the optical axes."""
        rot = rot_y(np.deg2rad(self.camera_pitch_deg)) @ OPTICAL_FROM_BODY
        return make_transform(rot, self.camera_xyz)

    @property
    def base_from_lidar(self) -> np.ndarray:
        """T_base_lidar (4x4): a slightly rotated mount so the extrinsic is not trivial."""
        r, p, y = np.deg2rad(self.lidar_rpy_deg)
        return make_transform(rot_z(y) @ rot_y(p) @ rot_x(r), self.lidar_xyz)

    @property
    def camera_from_lidar(self) -> np.ndarray:
        """T_camera_lidar: maps LiDAR-frame points into the camera optical frame."""
        return invert(self.base_from_camera) @ self.base_from_lidar

    def camera_directions(self, scale: float = 1.0) -> np.ndarray:
        """Unit ray directions in the optical frame through each pixel centre, (H, W, 3)."""
        w, h = self.size(scale)
        k = self.intrinsics(scale)
        u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        d = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], axis=-1)
        return d / np.linalg.norm(d, axis=-1, keepdims=True)


def ego_pose(t: float, speed: float, lane_y: float, sway: float, phase: float) -> np.ndarray:
    """T_world_base at time ``t``: driving along +x in a lane with a gentle lateral sway.

    The sway (and the matching yaw) keeps consecutive frames from being pure translations, which
    would make event and LiDAR patterns unrealistically regular.
    """
    omega = 2.0 * np.pi / 6.0
    y = lane_y + sway * np.sin(omega * t + phase)
    yaw = np.arctan2(sway * omega * np.cos(omega * t + phase), max(speed, 0.1))
    return make_transform(rot_z(yaw), (speed * t, y, 0.0))


def transform_points(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform to (..., 3) points."""
    return points @ transform[:3, :3].T + transform[:3, 3]


def rotate_dirs(transform: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Rotate (..., 3) direction vectors by a 4x4 transform's rotation."""
    return dirs @ transform[:3, :3].T

"""Sensor messages -> network images: decode each sensor's message for the frame pipeline. No rclpy.

Everything here works on message *fields* (duck-typed), so it takes rclpy messages and rosbags
messages alike and is unit-tested without DDS. The hard parts live in :mod:`sensors` (codecs,
projection, representations); this module only chooses which codec applies to which sensor and
turns codec errors into :class:`BadMessage` with a reason fit for a warning and /diagnostics.

Every decoder returns a :class:`Decoded`: the sensor's network image (``H x W x 3`` uint8, what
the Segmenter takes) plus the header, so the labels can carry the anchor's header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sam_moelora_ros.sensors.depth import depth_to_meters
from sam_moelora_ros.sensors.events import events_from_cloud
from sam_moelora_ros.sensors.image import converts_to_rgb, decoded_channel_order, image_to_numpy
from sam_moelora_ros.sensors.lidar import read_points_numpy
from sam_moelora_ros.sensors.network_input import event_frame_to_network_image, to_network_image
from sam_moelora_ros.sensors.projection import project_points
from sam_moelora_ros.sensors.representation import (
    depth_to_network_image,
    events_to_representation,
    lidar_to_network_image,
)

ASPECT_TOLERANCE = 0.02
"""Relative aspect-ratio difference beyond which an image cannot be the camera's view."""

RGB_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "rgb16", "bgr16", "rgba16", "bgra16")
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1", "64FC1")


class BadMessage(ValueError):
    """A message the node rejects (the text goes to the throttled warning and /diagnostics)."""


@dataclass(frozen=True)
class Camera:
    """What a CameraInfo tells the node: image size, intrinsics, distortion, frame."""

    height: int
    width: int
    K: np.ndarray
    D: np.ndarray | None
    frame_id: str


@dataclass(frozen=True)
class Decoded:
    """One sensor message, decoded: its network image and the header it came with."""

    image: np.ndarray
    header: Any

    @property
    def size_hw(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])


def stamp_seconds(header: Any) -> float:
    """``header.stamp`` (sec + nanosec) as float seconds."""
    return float(header.stamp.sec) + float(header.stamp.nanosec) * 1e-9


def _decode_image(msg: Any, what: str) -> np.ndarray:
    if int(msg.height) <= 0 or int(msg.width) <= 0:
        raise BadMessage(f"{what} image is empty ({msg.height}x{msg.width})")
    try:
        return image_to_numpy(msg)
    except Exception as exc:  # the codecs raise ValueError/TypeError with the detail
        raise BadMessage(f"{what} image ({msg.encoding}, {msg.height}x{msg.width}): {exc}") from exc


def check_aspect(size_hw: tuple[int, int], reference_hw: tuple[int, int] | None, what: str) -> None:
    """Reject an image whose aspect ratio cannot match the camera's (it would be distorted)."""
    if reference_hw is None:
        return
    ratio = (size_hw[1] / size_hw[0]) / (reference_hw[1] / reference_hw[0])
    if abs(ratio - 1.0) > ASPECT_TOLERANCE:
        raise BadMessage(
            f"{what} image is {size_hw[0]}x{size_hw[1]} but the camera is "
            f"{reference_hw[0]}x{reference_hw[1]}: aspect ratios differ (size mismatch)"
        )


def to_rgb8(array: np.ndarray, encoding: str) -> np.ndarray:
    """A decoded colour/mono image in ``encoding`` -> ``H x W x 3`` uint8 RGB.

    Which encodings an rgb camera may use is decided here; how the pixels become the network's
    input (16 -> 8 bit, channels, BGR) is ``sensors.network_input``'s one rule, the same one the
    dataset readers apply, so a camera frame and the training file of that frame agree byte for
    byte.
    """
    enc = encoding.lower()
    if (
        enc not in RGB_ENCODINGS
        and enc not in ("8uc1", "8uc3", "8uc4", "mono16")
        and not converts_to_rgb(enc)
    ):
        raise BadMessage(f"rgb image encoding {encoding!r} is not a colour/mono encoding")
    try:
        return to_network_image(array, decoded_channel_order(enc))
    except ValueError as exc:
        raise BadMessage(
            f"rgb image encoding {encoding!r} decodes to an unusable image: {exc}"
        ) from exc


def decode_rgb(msg: Any, reference_hw: tuple[int, int] | None = None) -> Decoded:
    """RGB camera Image (rgb8/bgr8/mono8/rgba8/bgra8, 16-bit, YUV, Bayer) -> RGB network image."""
    array = _decode_image(msg, "rgb")
    image = to_rgb8(array, str(msg.encoding))
    check_aspect(image.shape[:2], reference_hw, "rgb")
    return Decoded(image=image, header=msg.header)


def decode_depth(msg: Any, reference_hw: tuple[int, int] | None = None) -> Decoded:
    """Depth Image (16UC1 mm, 32FC1 m; 0/NaN invalid) -> depth network image.

    An image without a single valid pixel (a NaN flood) is rejected: it carries no information
    and usually means a driver fault the user should see.
    """
    if str(msg.encoding) not in DEPTH_ENCODINGS:
        raise BadMessage(
            f"depth image encoding {msg.encoding!r} is not one of {list(DEPTH_ENCODINGS)}"
        )
    array = _decode_image(msg, "depth")
    try:
        meters = depth_to_meters(array, str(msg.encoding))
    except Exception as exc:
        raise BadMessage(f"depth image: {exc}") from exc
    if meters.ndim != 2:
        raise BadMessage(f"depth image must have one channel, got shape {meters.shape}")
    if not np.any(np.isfinite(meters) & (meters > 0)):
        raise BadMessage("depth image has no valid pixel (all 0/NaN/Inf)")
    check_aspect(meters.shape, reference_hw, "depth")
    return Decoded(image=depth_to_network_image(meters), header=msg.header)


def decode_event_image(msg: Any, reference_hw: tuple[int, int] | None = None) -> Decoded:
    """A rendered event frame (Image, any codec encoding) -> event network image."""
    array = _decode_image(msg, "event")
    try:
        image = event_frame_to_network_image(array, str(msg.encoding))
    except Exception as exc:
        raise BadMessage(f"event image: {exc}") from exc
    check_aspect(image.shape[:2], reference_hw, "event")
    return Decoded(image=image, header=msg.header)


def decode_event_cloud(msg: Any, size_hw: tuple[int, int] | None, kind: str = "frame") -> Decoded:
    """Events as a PointCloud2 (x, y, t, polarity) -> event network image at the camera size."""
    if size_hw is None:
        raise BadMessage(
            "event cloud arrived before the image size is known (no camera_info, no camera image)"
        )
    if int(msg.width) * int(msg.height) == 0:
        raise BadMessage("event cloud is empty")
    try:
        x, y, t, p = events_from_cloud(msg)
        image = events_to_representation(x, y, t, p, size=size_hw, kind=kind)
    except Exception as exc:
        raise BadMessage(f"event cloud: {exc}") from exc
    return Decoded(image=image, header=msg.header)


def decode_camera_info(msg: Any) -> Camera:
    """CameraInfo -> :class:`Camera`; rejects zero sizes and non-positive focal lengths."""
    height, width = int(msg.height), int(msg.width)
    K = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    if height <= 0 or width <= 0:
        raise BadMessage(f"camera_info has no image size ({height}x{width})")
    if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise BadMessage(f"camera_info K has no valid focal length (fx={K[0, 0]}, fy={K[1, 1]})")
    D = np.asarray(msg.d, dtype=np.float64)
    if D.size and not np.all(np.isfinite(D)):
        raise BadMessage("camera_info D holds non-finite numbers")
    model = str(getattr(msg, "distortion_model", "") or "")
    use_d = D.size > 0 and np.any(D != 0) and model in ("plumb_bob", "rational_polynomial", "")
    return Camera(
        height=height, width=width, K=K, D=D if use_d else None, frame_id=msg.header.frame_id
    )


def decode_lidar(msg: Any, camera: Camera | None, T_cam_from_lidar: np.ndarray) -> Decoded:
    """LiDAR PointCloud2 (x, y, z) -> projected range network image at the camera size.

    Rejected: no camera_info yet, empty clouds, clouds without one finite point, and clouds of
    which no point lands in the image (usually a wrong extrinsic; diagnostics shows why).
    """
    if camera is None:
        raise BadMessage("lidar cloud arrived but no camera_info has been received (needed for K)")
    if int(msg.width) * int(msg.height) == 0:
        raise BadMessage("lidar cloud is empty")
    try:
        # N x 3 in the cloud's own float type (float32 for every common driver): no float64
        # copy; project_points drops the non-finite rows itself.
        xyz = read_points_numpy(msg, field_names=("x", "y", "z"), skip_nans=True)
    except Exception as exc:
        raise BadMessage(f"lidar cloud: {exc}") from exc
    try:
        sparse, hit = project_points(
            xyz, camera.K, T_cam_from_lidar, (camera.height, camera.width), D=camera.D
        )
    except Exception as exc:
        raise BadMessage(f"lidar projection: {exc}") from exc
    if not hit.any():
        # Told apart only on this error path, so the hot path scans the cloud once.
        if not np.isfinite(xyz).all(axis=1).any():
            raise BadMessage("lidar cloud has no finite point (all NaN/Inf)")
        raise BadMessage(
            f"no lidar point projects into the {camera.height}x{camera.width} camera image "
            "(check lidar.extrinsic: it is T_cam_from_lidar)"
        )
    return Decoded(image=lidar_to_network_image(sparse), header=msg.header)

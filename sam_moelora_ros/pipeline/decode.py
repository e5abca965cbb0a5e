"""Sensor messages -> network images: decode each sensor's message for the frame pipeline. No rclpy.

Everything here works on message *fields* (duck-typed), so it takes rclpy messages and rosbags
messages alike and is unit-tested without DDS. The hard parts live in :mod:`sam_moelora_ros.sensors`
(codecs, projection, representations); this module only chooses which codec applies to which sensor
and turns codec errors into :class:`BadMessage` with a reason fit for a warning and /diagnostics.

Every decoder returns a :class:`Decoded`: the sensor's network image (``H x W x 3`` uint8, what
the Segmenter takes) plus the header, so the labels can carry the anchor's header. The image
decoders take a ``sensor_msgs/Image`` or a ``sensor_msgs/CompressedImage`` (image_transport's
``compressed`` JPEG/PNG and ``compressedDepth`` PNG/RVL, via ``sensors.compressed``); a
compressed message is told apart by its ``format`` field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sam_moelora_ros.errors import SamMoeLoraError
from sam_moelora_ros.sensors.camera_models import CameraModel, CameraModelError
from sam_moelora_ros.sensors.compressed import (
    CompressedImageError,
    decode_compressed,
    decode_compressed_image,
)
from sam_moelora_ros.sensors.depth import depth_to_meters
from sam_moelora_ros.sensors.encodings import DEFAULT_CONTRACT, Encoding
from sam_moelora_ros.sensors.events import events_from_cloud
from sam_moelora_ros.sensors.image import converts_to_rgb, decoded_channel_order, image_to_numpy
from sam_moelora_ros.sensors.lidar import lidar_returns
from sam_moelora_ros.sensors.limits import DEFAULT_LIMITS, Limits
from sam_moelora_ros.sensors.network_input import event_frame_to_network_image, to_network_image
from sam_moelora_ros.sensors.projection import nearest_per_pixel, project_pixel_depths
from sam_moelora_ros.sensors.representation import encode_depth, encode_events, encode_lidar

ASPECT_TOLERANCE = 0.02
"""Relative aspect-ratio difference beyond which an image cannot be the camera's view."""
MAX_SCALE = 8
"""An image may be at most this many times smaller or larger (per side) than the camera."""

RGB_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "rgb16", "bgr16", "rgba16", "bgra16")
DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1", "64FC1")


class BadMessage(SamMoeLoraError, ValueError):
    """A message the node rejects (the text goes to the throttled warning and /diagnostics)."""


@dataclass(frozen=True)
class Camera:
    """What a CameraInfo tells the node: image size, intrinsics, distortion, frame.

    ``D`` is None for no distortion, else the coefficients checked against
    ``distortion_model`` (``plumb_bob``, ``rational_polynomial`` or ``equidistant``; see
    ``sensors.camera_models``), which projection applies.
    """

    height: int
    width: int
    K: np.ndarray
    D: np.ndarray | None
    frame_id: str
    distortion_model: str = ""
    msg: Any = field(default=None, compare=False, repr=False)
    """The CameraInfo message itself (``~/labels/camera_info`` is made from it)."""


@dataclass(frozen=True)
class Decoded:
    """One sensor message, decoded: its network image and the header it came with.

    ``outside``: events the message held outside the camera image (event clouds and packets),
    dropped from the image and counted on /diagnostics (``events_outside_sensor``).
    """

    image: np.ndarray
    header: Any
    outside: int = 0

    @property
    def size_hw(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])


def stamp_seconds(header: Any) -> float:
    """``header.stamp`` (sec + nanosec) as float seconds."""
    return float(header.stamp.sec) + float(header.stamp.nanosec) * 1e-9


def is_compressed(msg: Any) -> bool:
    """A ``sensor_msgs/CompressedImage`` (it has ``format``; an Image has ``encoding``)."""
    return hasattr(msg, "format")


def _decode_image(msg: Any, what: str, limits: Limits) -> np.ndarray:
    if int(msg.height) <= 0 or int(msg.width) <= 0:
        raise BadMessage(f"{what} image is empty ({msg.height}x{msg.width})")
    try:
        return image_to_numpy(msg, limits=limits)
    except Exception as exc:  # the codecs raise ValueError/TypeError with the detail
        raise BadMessage(f"{what} image ({msg.encoding}, {msg.height}x{msg.width}): {exc}") from exc


def _decode_any(
    msg: Any, what: str, limits: Limits, *, depth: bool = False
) -> tuple[np.ndarray, str]:
    """``(array, encoding)`` of an Image or a CompressedImage (``depth``: compressedDepth too)."""
    if not is_compressed(msg):
        return _decode_image(msg, what, limits), str(msg.encoding)
    fmt = str(msg.format)
    if not depth and "compressedDepth" in fmt:
        raise BadMessage(
            f"{what} image: CompressedImage format {fmt!r} is a compressedDepth depth image; "
            f"remap the {what} topic to the camera's colour stream"
        )
    try:
        return decode_compressed(msg, limits) if depth else decode_compressed_image(msg, limits)
    except CompressedImageError as exc:
        raise BadMessage(f"{what} image: {exc}") from exc


def check_aspect(size_hw: tuple[int, int], reference_hw: tuple[int, int] | None, what: str) -> None:
    """Reject an image whose aspect ratio cannot match the camera's (it would be distorted), or
    whose size is more than :data:`MAX_SCALE` times off the camera's (a camera_info that lies)."""
    if reference_hw is None:
        return
    scale = max(size_hw[0] / reference_hw[0], reference_hw[0] / size_hw[0])
    if scale > MAX_SCALE:
        raise BadMessage(
            f"{what} image is {size_hw[0]}x{size_hw[1]} but the camera is "
            f"{reference_hw[0]}x{reference_hw[1]}: more than {MAX_SCALE} times off (is "
            "camera_info the camera's?)"
        )
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


def decode_rgb(
    msg: Any, reference_hw: tuple[int, int] | None = None, limits: Limits = DEFAULT_LIMITS
) -> Decoded:
    """RGB camera Image (rgb8/bgr8/mono8/rgba8/bgra8, 16-bit, YUV, Bayer) or CompressedImage
    (JPEG/PNG, e.g. ``"rgb8; jpeg compressed bgr8"``) -> RGB network image."""
    array, encoding = _decode_any(msg, "rgb", limits)
    image = to_rgb8(array, encoding)
    check_aspect(image.shape[:2], reference_hw, "rgb")
    return Decoded(image=image, header=msg.header)


def decode_depth(
    msg: Any,
    reference_hw: tuple[int, int] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    *,
    encoding: Encoding = DEFAULT_CONTRACT["depth"],
) -> Decoded:
    """Depth Image (16UC1 mm, 32FC1 m; 0/NaN invalid) or CompressedImage -> depth network image.

    Compressed: ``"16UC1; compressedDepth png"`` / ``rvl`` (millimetres), ``"32FC1;
    compressedDepth ..."`` (metres, quantised inverse depth) and plain 16-bit PNGs (``"png"``,
    ``"16UC1; png compressed 16UC1"``: millimetres, REP 118). An image without a single valid
    pixel (a NaN flood) is rejected: it carries no information and usually means a driver fault
    the user should see.
    """
    if not is_compressed(msg) and str(msg.encoding) not in DEPTH_ENCODINGS:
        raise BadMessage(
            f"depth image encoding {msg.encoding!r} is not one of {list(DEPTH_ENCODINGS)}"
        )
    array, stored = _decode_any(msg, "depth", limits, depth=True)
    if stored not in DEPTH_ENCODINGS:
        raise BadMessage(
            f"depth image: CompressedImage format {msg.format!r} decodes to {stored!r}, not "
            f"one of {list(DEPTH_ENCODINGS)} (a colour image on the depth topic?)"
        )
    try:
        meters = depth_to_meters(array, stored)
    except Exception as exc:
        raise BadMessage(f"depth image: {exc}") from exc
    if meters.ndim != 2:
        raise BadMessage(f"depth image must have one channel, got shape {meters.shape}")
    if not np.any(np.isfinite(meters) & (meters > 0)):
        raise BadMessage("depth image has no valid pixel (all 0/NaN/Inf)")
    check_aspect(meters.shape, reference_hw, "depth")
    return Decoded(image=encode_depth(meters, encoding), header=msg.header)


def decode_event_image(
    msg: Any, reference_hw: tuple[int, int] | None = None, limits: Limits = DEFAULT_LIMITS
) -> Decoded:
    """A rendered event frame (Image, any codec encoding, or a JPEG/PNG CompressedImage) -> event
    network image."""
    array, encoding = _decode_any(msg, "event", limits)
    try:
        image = event_frame_to_network_image(array, encoding)
    except Exception as exc:
        raise BadMessage(f"event image: {exc}") from exc
    check_aspect(image.shape[:2], reference_hw, "event")
    return Decoded(image=image, header=msg.header)


def decode_event_cloud(
    msg: Any,
    size_hw: tuple[int, int] | None,
    encoding: Encoding = DEFAULT_CONTRACT["event"],
    limits: Limits = DEFAULT_LIMITS,
) -> Decoded:
    """Events as a PointCloud2 (x, y, t, polarity) -> event network image at the camera size
    (every event of the cloud, in ``encoding``: the model's ``frame`` or ``voxel``)."""
    if size_hw is None:
        raise BadMessage(
            "event cloud arrived before the image size is known (no camera_info, no camera image)"
        )
    if int(msg.width) * int(msg.height) == 0:
        raise BadMessage("event cloud is empty")
    try:
        limits.check_events("event cloud", int(msg.width) * int(msg.height))
        x, y, t, p = events_from_cloud(msg)
        image = encode_events(x, y, t, p, size_hw, encoding)
        outside = _outside_image(x, y, size_hw)
    except Exception as exc:
        raise BadMessage(f"event cloud: {exc}") from exc
    return Decoded(image=image, header=msg.header, outside=outside)


def _outside_image(x: np.ndarray, y: np.ndarray, size_hw: tuple[int, int]) -> int:
    """Events whose (rounded) pixel is not in the ``H x W`` image (NaN counts as outside)."""
    xs = np.rint(x) if np.issubdtype(np.asarray(x).dtype, np.floating) else np.asarray(x)
    ys = np.rint(y) if np.issubdtype(np.asarray(y).dtype, np.floating) else np.asarray(y)
    inside = (xs >= 0) & (xs < size_hw[1]) & (ys >= 0) & (ys < size_hw[0])
    return int(inside.size - np.count_nonzero(inside))


def decode_camera_info(msg: Any, limits: Limits = DEFAULT_LIMITS) -> Camera:
    """CameraInfo -> :class:`Camera` through ``sensors.camera_models.CameraModel``.

    Rejected (never a silent fallback): zero sizes, non-positive focal lengths, a
    ``distortion_model`` other than plumb_bob, rational_polynomial or equidistant (unless ``d``
    is empty or all zero: no distortion), and a ``d`` whose length the model does not have.
    """
    try:
        model = CameraModel.from_camera_info(msg, limits)
    except CameraModelError as exc:
        raise BadMessage(f"camera_info: {exc}") from exc
    frame = str(getattr(getattr(msg, "header", None), "frame_id", "") or "")
    return Camera(
        height=model.height,
        width=model.width,
        K=model.K,
        D=model.D,
        frame_id=frame,
        distortion_model=model.distortion_model,
        msg=msg,
    )


@dataclass(frozen=True)
class LidarHits:
    """Where a cloud's returns land in the camera image it was decoded for: every return that
    projects (not only the nearest per pixel), its linear pixel ``row * W + col`` in an image of
    ``size_hw`` and its index in the cloud (``row * width + column``). The labelled cloud reads
    its labels back at these pixels instead of projecting the cloud a second time."""

    size_hw: tuple[int, int]
    pixel: np.ndarray
    cloud_index: np.ndarray


@dataclass(frozen=True)
class LidarDecoded(Decoded):
    """A decoded LiDAR cloud with the :class:`LidarHits` its image was made from."""

    hits: LidarHits | None = None


def decode_lidar(
    msg: Any,
    camera: Camera | None,
    T_cam_from_lidar: np.ndarray,
    limits: Limits = DEFAULT_LIMITS,
    *,
    encoding: Encoding = DEFAULT_CONTRACT["lidar"],
) -> LidarDecoded:
    """LiDAR PointCloud2 -> projected range (+ intensity) network image at the camera size.

    Points as drivers publish them: only real returns are used (``sensors.lidar.lidar_returns``:
    non-finite points and the ``(0, 0, 0)`` no-return marker of organised Ouster / Hesai / Livox
    clouds are dropped whatever ``is_dense`` says; padded rows and either byte order are read).
    Projection applies the camera's distortion model; the nearest point wins per pixel.

    Channels as the synthetic generator writes its training images
    (``synthetic.deliver.lidar_image``): 0 and 1 the winning point's camera-frame depth, 2 its
    ``intensity`` field (scaled over 0..255, higher values saturate). A cloud without an
    ``intensity`` field gets the depth in channel 2 too (``lidar_to_network_image``'s rule
    without intensity): the closest the model can get, though it was trained with intensity.

    Rejected: no camera_info yet, empty clouds, clouds without one return, and clouds of which
    no point lands in the image (usually a wrong extrinsic; diagnostics shows why). The result
    keeps every projected point's pixel (:class:`LidarHits`) for the labelled cloud.
    """
    if camera is None:
        raise BadMessage("lidar cloud arrived but no camera_info has been received (needed for K)")
    if int(msg.width) * int(msg.height) == 0:
        raise BadMessage("lidar cloud is empty")
    has_intensity = any(str(f.name) == "intensity" for f in msg.fields)
    names = ("x", "y", "z", "intensity") if has_intensity else ("x", "y", "z")
    try:
        points, grid = lidar_returns(msg, names, limits=limits)
    except Exception as exc:
        raise BadMessage(f"lidar cloud: {exc}") from exc
    if points.shape[0] == 0:
        raise BadMessage(
            "lidar cloud has no finite point that is a return (all NaN/Inf or the (0, 0, 0) "
            "no-return marker)"
        )
    xyz = np.ascontiguousarray(points[:, :3])
    size = (camera.height, camera.width)
    model = camera.distortion_model or None
    T = np.asarray(T_cam_from_lidar, dtype=np.float64)
    try:
        pixel, z, point = project_pixel_depths(
            xyz, camera.K, T, size, D=camera.D, distortion_model=model
        )
    except Exception as exc:
        raise BadMessage(f"lidar projection: {exc}") from exc
    if pixel.size == 0:
        raise BadMessage(
            f"no lidar point projects into the {camera.height}x{camera.width} camera image "
            "(check lidar.extrinsic: it is T_cam_from_lidar)"
        )
    pixels, first = nearest_per_pixel(pixel, z)
    sparse = np.full(size, np.nan, dtype=np.float32)
    intensity = None
    if has_intensity:
        winners = point[first]
        # The winners' camera-frame depth, computed as the generator does (float64, then float32).
        cam = xyz[winners] @ T[:3, :3].T + T[:3, 3]
        sparse.reshape(-1)[pixels] = cam[:, 2]
        intensity = np.full(size, np.nan, dtype=np.float32)
        intensity.reshape(-1)[pixels] = points[winners, 3]
    else:
        sparse.reshape(-1)[pixels] = z[first]
    hits = LidarHits(size, pixel, grid[point])
    image = encode_lidar(sparse, intensity, encoding)
    return LidarDecoded(image=image, header=msg.header, hits=hits)

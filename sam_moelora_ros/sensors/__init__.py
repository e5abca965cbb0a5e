"""Sensor codecs: ROS message fields <-> numpy, and the network-input images (numpy + OpenCV).

No rclpy and no torch here (docs/design.md): the codecs read message *fields*, so rclpy messages,
rosbags dataclasses and plain objects share one code path, and they build messages of whichever
flavour the caller names (see ``messages.py``).

Modules: ``image`` (Image <-> numpy, all cv_bridge encodings), ``depth`` (REP 118 metres),
``lidar`` (PointCloud2 <-> structured arrays), ``projection`` (points -> sparse depth image),
``events`` (event streams -> frame / voxel grid), ``representation`` (every modality as the
``H x W x 3 uint8`` image the network and DELIVER-layout PNGs hold).
"""

from __future__ import annotations

from .depth import depth_msg_to_meters, depth_to_meters, meters_to_depth, valid_depth_mask
from .events import event_counts, events_from_cloud, events_to_voxel_grid
from .image import encoding_info, image_to_numpy, numpy_to_image
from .lidar import (
    DATATYPES,
    FLOAT32,
    FLOAT64,
    INT8,
    INT16,
    INT32,
    UINT8,
    UINT16,
    UINT32,
    create_cloud,
    dtype_from_fields,
    make_fields,
    read_points,
    read_points_numpy,
)
from .messages import plain_header
from .projection import distort_normalized, project_point_indices, project_points
from .representation import (
    depth_to_network_image,
    event_frame_to_network_image,
    events_to_representation,
    lidar_to_network_image,
    scale_valid_to_uint8,
)

__all__ = [
    "DATATYPES",
    "FLOAT32",
    "FLOAT64",
    "INT8",
    "INT16",
    "INT32",
    "UINT8",
    "UINT16",
    "UINT32",
    "create_cloud",
    "depth_msg_to_meters",
    "depth_to_meters",
    "depth_to_network_image",
    "distort_normalized",
    "dtype_from_fields",
    "encoding_info",
    "event_counts",
    "event_frame_to_network_image",
    "events_from_cloud",
    "events_to_representation",
    "events_to_voxel_grid",
    "image_to_numpy",
    "lidar_to_network_image",
    "make_fields",
    "meters_to_depth",
    "numpy_to_image",
    "plain_header",
    "project_point_indices",
    "project_points",
    "read_points",
    "read_points_numpy",
    "scale_valid_to_uint8",
    "valid_depth_mask",
]

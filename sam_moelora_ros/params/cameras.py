"""Several cameras on one model: the ``cameras`` parameter and each camera group's own. No rclpy.

A robot with two or three cameras runs one node, so one process and one loaded model. The
``cameras`` parameter names the groups (``[front, rear]``); each group has its own input topics,
camera_info topic, LiDAR extrinsic and sensor list, and publishes under ``~/<camera>/``. What is
not per camera (the model, the QoS, tolerances, the anchor policy, the event rendering, the
outputs' options) is the node's shared parameter of the same name.

Why these defaults: a group's topic defaults to the shared topic under the camera's name
(``sensors.rgb.topic: camera/image`` -> ``front/camera/image``), the layout a launch file with one
namespace per camera driver gives, so most robots set only ``cameras``. A shared LiDAR is one
topic named in each group (the cloud is projected into each camera with that group's extrinsic).

Why not a YAML dictionary: ROS 2 parameters are flat and typed, so a group is a set of dotted
parameters (``cameras.front.rgb.topic``), declared once ``cameras`` is known; the same names work
in a params file, on the command line and in ``ros2 param get``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.params.specs import (
    CAMERA_NAME,
    ParameterError,
    ParamSpec,
    extrinsic_check,
    shared_topic,
    topic_check,
)
from sam_moelora_ros.sensors.extrinsics import extrinsic_matrix

PREFIX = "cameras."


def _sensor_list(value: Any) -> str | None:
    unknown = [v for v in value if v not in MODALITIES]
    if unknown or not value:
        return f"must be a non-empty list of sensors from {list(MODALITIES)}"
    return None


CAMERA_PARAMETERS: dict[str, ParamSpec] = {
    spec.name: spec
    for spec in (
        ParamSpec(
            "sensors",
            [],
            "The sensors this camera group has (default: every enabled sensor).",
            check=_sensor_list,
        ),
        *(
            ParamSpec(
                f"{sensor}.topic",
                "",
                f"This group's {sensor} topic (default: <camera>/ + sensors.{sensor}.topic).",
                check=topic_check,
            )
            for sensor in MODALITIES
        ),
        ParamSpec(
            "camera_info_topic",
            "",
            "This group's CameraInfo topic (default: <camera>/ + camera_info_topic).",
            check=topic_check,
        ),
        ParamSpec(
            "lidar.extrinsic",
            [],
            "This group's T_cam_from_lidar (default: lidar.extrinsic).",
            check=extrinsic_check,
        ),
    )
}
"""Each group's parameters, by the name after ``cameras.<camera>.``; the defaults here only fix
the type (:func:`camera_specs` derives the real ones from the shared parameters)."""


@dataclass(frozen=True)
class CameraConfig:
    """One camera group: its name, sensors, topics and LiDAR extrinsic."""

    name: str
    sensors: tuple[str, ...]
    """In canonical order."""
    topics: dict[str, str]
    camera_info_topic: str
    extrinsic: np.ndarray = field(repr=False)


def camera_topic(camera: str, topic: str) -> str:
    """The shared ``topic`` under ``camera``: ``a/b`` -> ``cam/a/b``, ``/a`` -> ``/cam/a``,
    ``~/a`` -> ``~/cam/a``."""
    if topic.startswith("~/"):
        return f"~/{camera}/{topic[2:]}"
    if topic.startswith("/"):
        return f"/{camera}{topic}"
    return f"{camera}/{topic}"


def camera_specs(camera: str, shared: Mapping[str, Any]) -> list[ParamSpec]:
    """``camera``'s parameters with the defaults derived from the shared values ``shared``."""
    enabled = [n for n in MODALITIES if shared[f"sensors.{n}.enabled"]]
    defaults: dict[str, Any] = {
        "sensors": enabled,
        **{f"{n}.topic": camera_topic(camera, shared[f"sensors.{n}.topic"]) for n in MODALITIES},
        "camera_info_topic": camera_topic(camera, shared["camera_info_topic"]),
        "lidar.extrinsic": [float(v) for v in shared["lidar.extrinsic"]],
    }
    return [
        ParamSpec(f"{PREFIX}{camera}.{key}", defaults[key], spec.description, check=spec.check)
        for key, spec in CAMERA_PARAMETERS.items()
    ]


def camera_parameter(name: str) -> ParamSpec | None:
    """The group parameter ``cameras.<camera>.<key>`` stands for, or None if it is not one."""
    if not name.startswith(PREFIX):
        return None
    camera, _, key = name[len(PREFIX) :].partition(".")
    return CAMERA_PARAMETERS.get(key) if CAMERA_NAME.fullmatch(camera) else None


def undeclared_camera_parameters(
    given: Mapping[str, Any], declared: Iterable[str]
) -> dict[str, Any]:
    """The ``cameras.<camera>.*`` values given to the node but not declared by it.

    Why: rclpy keeps a params-file or command-line value for a parameter nobody declares and
    never reports it, and the node declares group parameters only for the cameras ``cameras``
    lists, so a typo'd group (``cameras.raer.rgb.topic``) never reached :func:`build_cameras`'s
    check. The node passes these on, and the check names them.
    """
    known = set(declared)
    return {k: v for k, v in given.items() if k.startswith(PREFIX) and k not in known}


def build_cameras(merged: Mapping[str, Any]) -> tuple[CameraConfig, ...]:
    """The camera groups of the flat parameter values ``merged`` (shared ones checked already).

    Raises:
        ParameterError: a group parameter for a camera ``cameras`` does not list, a sensor the
            node does not enable, or two of a group's sensors on one topic.
    """
    names = [str(n) for n in merged["cameras"]]
    listed = set(names)
    for key in merged:
        camera = key.split(".")[1] if key.startswith(PREFIX) else None
        if camera is not None and camera not in listed:
            raise ParameterError(
                key,
                merged[key],
                f"camera {camera!r} is not in cameras {names}; add it there or fix the name",
            )
    cameras = []
    for camera in names:
        prefix = f"{PREFIX}{camera}."
        values = {spec.name: spec.default for spec in camera_specs(camera, merged)}
        values.update({k: v for k, v in merged.items() if k.startswith(prefix)})
        sensors = tuple(n for n in MODALITIES if n in values[f"{prefix}sensors"])
        for name in sensors:
            if not merged[f"sensors.{name}.enabled"]:
                raise ParameterError(
                    f"{prefix}sensors",
                    list(values[f"{prefix}sensors"]),
                    f"{name!r} is disabled for the node (sensors.{name}.enabled: false); enable "
                    "it or leave it out of this camera",
                )
        topics = {n: str(values[f"{prefix}{n}.topic"]) for n in MODALITIES}
        shared = shared_topic({n: topics[n] for n in sensors})
        if shared:
            raise ParameterError(
                f"{prefix}{shared[0]}.topic", shared[1], "is used by more than one sensor"
            )
        cameras.append(
            CameraConfig(
                name=camera,
                sensors=sensors,
                topics=topics,
                camera_info_topic=str(values[f"{prefix}camera_info_topic"]),
                extrinsic=extrinsic_matrix(values[f"{prefix}lidar.extrinsic"]),
            )
        )
    return tuple(cameras)

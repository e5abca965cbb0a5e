"""Which message type each sensor subscription takes (``sensors.<s>.message_type``). No rclpy.

Why: real robots publish a camera as ``sensor_msgs/Image`` or through image_transport's
``compressed`` / ``compressedDepth`` transports (``sensor_msgs/CompressedImage``), events as
rendered frames, clouds or ``event_camera_msgs/EventPacket``. DDS matches a subscription to a
publisher only when the type names are equal, so a subscription of the wrong type receives
nothing, silently. Hence the default ``auto``: the node subscribes with the type the topic's
publishers advertise in the ROS graph, once a publisher appears. An explicit type name is for
when the node must subscribe before any publisher exists (it then never changes).

The decisions are pure functions here, so they unit-test without DDS; the rclpy side is
:mod:`.subscriptions`. Which types a sensor can take is the pipeline's
:data:`~sam_moelora_ros.pipeline.kinds.SUPPORTED_TYPES` (the decoders accept exactly those).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sam_moelora_ros.errors import SamMoeLoraError
from sam_moelora_ros.params import ParameterError
from sam_moelora_ros.params.config import canonical_type

AUTO = "auto"
INSTALL_HINTS = {
    "event_camera_msgs": "sudo apt install ros-$ROS_DISTRO-event-camera-msgs",
}
"""How to get a message package that a ROS install may lack."""


class MessagePackageMissing(SamMoeLoraError, ImportError):
    """A message type whose Python package is not importable; the text says how to install it."""


def requested_type(sensor: str, value: str, supported: Mapping[str, Sequence[str]]) -> str:
    """The validated ``sensors.<sensor>.message_type``: ``auto`` or a full type name the sensor
    can take; raises :class:`ParameterError` naming the parameter and the types it can take."""
    if value == AUTO:
        return AUTO
    name = canonical_type(value)
    if name not in supported[sensor]:
        raise ParameterError(
            f"sensors.{sensor}.message_type",
            value,
            f"the {sensor} sensor takes {AUTO!r} or one of {list(supported[sensor])}",
        )
    return name


def message_class(type_name: str) -> type:
    """The rclpy class of ``pkg/msg/Name``; :class:`MessagePackageMissing` says how to install."""
    package, _, name = type_name.partition("/msg/")
    try:
        module = importlib.import_module(f"{package}.msg")
    except ImportError as exc:
        hint = INSTALL_HINTS.get(
            package, f"sudo apt install ros-$ROS_DISTRO-{package.replace('_', '-')}"
        )
        raise MessagePackageMissing(
            f"{type_name} needs the Python package {package!r}, which is not importable here "
            f"(install it: {hint}, then source the ROS setup)"
        ) from exc
    cls = getattr(module, name, None)
    if not isinstance(cls, type):
        raise MessagePackageMissing(f"{package}.msg has no message {name!r} ({type_name})")
    return cls


@dataclass(frozen=True)
class Choice:
    """What to do with one sensor's topic now.

    ``type_name``: subscribe with it (None: nothing to subscribe yet). ``error``: a problem that
    keeps the sensor from receiving anything (logged once, ERROR on /diagnostics). ``note``: worth
    one log line (several types advertised).
    """

    type_name: str | None = None
    error: str = ""
    note: str = ""


def choose_type(
    sensor: str,
    topic: str,
    requested: str,
    advertised: Sequence[str],
    supported: Sequence[str],
) -> Choice:
    """Decide ``sensor``'s subscription type from what its topic's publishers advertise.

    ``requested`` is :data:`AUTO` or a full type name (see :func:`requested_type`);
    ``advertised`` the publishers' type names (from the ROS graph), ``supported`` the types the
    sensor can take, in the order preferred when publishers advertise several.
    """
    types = sorted(set(advertised))
    if requested != AUTO:
        others = [t for t in types if t != requested]
        error = ""
        if others and requested not in types:
            error = (
                f"topic {topic} is published as {others} but sensors.{sensor}.message_type is "
                f"{requested}: DDS matches types by name, so no message can arrive; set "
                f"sensors.{sensor}.message_type: auto (or {others[0]})"
            )
        return Choice(requested, error=error)
    if not types:
        return Choice()
    usable = [t for t in supported if t in types]
    if not usable:
        return Choice(
            error=(
                f"topic {topic} carries {types}, which the {sensor} sensor cannot take (it takes "
                f"{list(supported)}): remap sensors.{sensor}.topic to the right topic, or set "
                f"sensors.{sensor}.enabled: false"
            )
        )
    note = ""
    if len(types) > 1:
        note = f"topic {topic} has publishers of {types}; subscribing to {usable[0]}"
    return Choice(usable[0], note=note)

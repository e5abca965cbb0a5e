"""The node's sensor subscriptions, each with the type its topic carries (rclpy side).

:class:`SensorSubscriptions` applies :mod:`.message_types`' decisions: explicit types are
subscribed at once (a missing message package is a start-up error), ``auto`` sensors when their
topic's first publisher appears in the ROS graph (re-checked every :data:`RECHECK_PERIOD_S`).
A topic whose type a sensor cannot take is one error, logged once and reported as ERROR on that
sensor's /diagnostics status; nothing is subscribed for it, so no message can fail one by one.
camera_info is subscribed once a sensor that needs it (LiDAR, event clouds or packets) is.
The re-check runs on the steady clock, not the node's: the ROS graph has nothing to do with
simulated time, and under ``use_sim_time`` a paused simulator (or none yet) would stop it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile

from sam_moelora_ros.params import NodeConfig, ParameterError
from sam_moelora_ros.pipeline.diagnostics import ERROR, Report
from sam_moelora_ros.pipeline.kinds import COMPRESSED_TYPE, IMAGE_TYPE
from sam_moelora_ros.ros.message_types import (
    AUTO,
    MessagePackageMissing,
    choose_type,
    message_class,
    requested_type,
)

RECHECK_PERIOD_S = 0.5
"""How often the ROS graph is read for publishers of the sensor topics."""


def needs_camera_info(sensor: str, type_name: str) -> bool:
    """LiDAR clouds are projected with K; raw events (clouds, packets) are rendered at its size."""
    return sensor == "lidar" or (
        sensor == "event" and type_name not in (IMAGE_TYPE, COMPRESSED_TYPE)
    )


class SensorSubscriptions:
    """Subscribe every enabled sensor of ``cfg`` with its resolved type.

    Args:
        node: the node that owns the subscriptions and the re-check timer.
        cfg: the node's parameters (topics, ``sensors.<s>.message_type``).
        qos: the input QoS.
        on_sensor: ``on_sensor(sensor, message)``, the node's callback.
        on_camera_info: the CameraInfo callback.
        supported: sensor -> the type names it can take, preferred first.

    Raises:
        ParameterError: a ``message_type`` the sensor cannot take, or whose message package is
            not importable (the text says how to install it).
    """

    def __init__(
        self,
        node: Node,
        cfg: NodeConfig,
        qos: QoSProfile,
        on_sensor: Callable[[str, Any], None],
        on_camera_info: Callable[[Any], None],
        supported: Mapping[str, Sequence[str]],
    ) -> None:
        self._node, self._cfg, self._qos = node, cfg, qos
        self._on_sensor, self._on_camera_info = on_sensor, on_camera_info
        self._supported = supported
        self.requested = {
            n: requested_type(n, cfg.sensors[n].message_type, supported) for n in cfg.enabled
        }
        for name, type_name in self.requested.items():
            if type_name == AUTO:
                continue
            try:
                message_class(type_name)  # a missing package is a start-up error
            except MessagePackageMissing as exc:
                raise ParameterError(f"sensors.{name}.message_type", type_name, str(exc)) from exc
        self.types: dict[str, str] = {}
        """Sensor -> the type it is subscribed with."""
        self.errors: dict[str, str] = {}
        """Sensor -> why it cannot receive anything (ERROR on /diagnostics)."""
        self.camera_info_subscribed = False
        self._subs: list[Any] = []
        self._logged: set[str] = set()
        self.refresh()
        self._timer = node.create_timer(
            RECHECK_PERIOD_S, self.refresh, clock=Clock(clock_type=ClockType.STEADY_TIME)
        )

    def _advertised(self, topic: str) -> list[str]:
        return [info.topic_type for info in self._node.get_publishers_info_by_topic(topic)]

    def refresh(self) -> None:
        """Read the graph: subscribe sensors whose type is now known, report mismatches."""
        log = self._node.get_logger()
        for name, requested in self.requested.items():
            topic = self._node.resolve_topic_name(self._cfg.sensors[name].topic)
            current = self.types.get(name, requested)
            choice = choose_type(
                name, topic, current, self._advertised(topic), self._supported[name]
            )
            error = choice.error
            if choice.type_name is not None and name not in self.types:
                try:
                    self._subscribe(name, topic, choice.type_name)
                except MessagePackageMissing as exc:
                    error = f"topic {topic}: {exc}"
            if choice.note and choice.note not in self._logged:
                self._logged.add(choice.note)
                log.warning(choice.note)
            if error:
                if self.errors.get(name) != error:
                    log.error(f"sensor {name}: {error}")
                self.errors[name] = error
            elif self.errors.pop(name, None) is not None:
                log.info(f"sensor {name}: the type problem on {topic} is gone")

    def _subscribe(self, name: str, topic: str, type_name: str) -> None:
        cls = message_class(type_name)
        sub = self._node.create_subscription(
            cls, topic, lambda msg, n=name: self._on_sensor(n, msg), self._qos
        )
        self._subs.append(sub)
        self.types[name] = type_name
        how = "as advertised" if self.requested[name] == AUTO else "as configured"
        self._node.get_logger().info(f"sensor {name}: subscribed to {topic} as {type_name} ({how})")
        if needs_camera_info(name, type_name) and not self.camera_info_subscribed:
            from sensor_msgs.msg import CameraInfo

            info = self._cfg.camera_info_topic
            self._subs.append(
                self._node.create_subscription(CameraInfo, info, self._on_camera_info, self._qos)
            )
            self.camera_info_subscribed = True

    def decorate(self, reports: list[Report]) -> None:
        """Add each sensor's ``message_type`` to its /diagnostics report; ERROR on a type error."""
        for report in reports:
            name = report.name.rpartition(" sensor ")[2]
            if name not in self.requested:
                continue
            report.values["message_type"] = self.types.get(name) or (
                f"{self.requested[name]} (no publisher yet)"
            )
            if name in self.errors:
                report.level = ERROR
                report.message = self.errors[name]

"""The Fast DDS profile for camera-sized messages, and the environment that selects it.

Fast DDS moves messages between processes of one host through a shared-memory segment of the
*writer*, 512 KiB unless configured. Sensor messages are larger (a 640x480 rgb8 image is 900 KiB,
a 130 k-point cloud 4 MiB) and then travel in pieces, which cost the node's anchor camera image
13 ms of transport per frame on the development machine (2.7 ms with the shipped 64 MiB
segment; ``bench/bench_dds.py`` measures both, part of ``make bench``). The shipped profile
(``resources/fastdds_large_messages.xml``, also installed to ``share/sam_moelora_ros/config``)
only enlarges that segment; discovery and remote peers still use UDP.

Fast DDS reads the profile file named by an environment variable when a process creates its
first participant (``rclpy.init`` + the first node): ``FASTDDS_DEFAULT_PROFILES_FILE`` for Fast
DDS 3 (ROS 2 Kilted on), ``FASTRTPS_DEFAULT_PROFILES_FILE`` for Fast DDS 2 (Humble, Jazzy; on
Kilted its rmw still reads it but warns that it is deprecated). The variable is picked from
``ROS_DISTRO`` (set by every ROS setup script; unset, as with the PyPI wheels of the development
machine, means a current distribution). A profile the user already selected, in either spelling,
always wins. Other RMWs (Cyclone DDS) ignore both variables.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "PROFILE_ENV_VARS",
    "large_message_profile",
    "profile_env_var",
    "ros_environment",
    "with_large_message_profile",
]

PROFILE_ENV_VARS = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
"""Fast DDS 3 and Fast DDS 2 spellings of the default-profile variable."""

DDS_ENV_VARS = (
    "ROS_DOMAIN_ID",
    "ROS_AUTOMATIC_DISCOVERY_RANGE",
    "ROS_STATIC_PEERS",
    "RMW_IMPLEMENTATION",
    *PROFILE_ENV_VARS,
)
"""What rmw and Fast DDS read from a process' environment when its first participant starts."""

FAST_DDS_2_DISTROS = frozenset({"foxy", "galactic", "humble", "iron", "jazzy"})
"""ROS 2 distributions whose Fast DDS (2.x) reads ``FASTRTPS_DEFAULT_PROFILES_FILE``."""

PROFILE_RESOURCE = ("resources", "fastdds_large_messages.xml")


def large_message_profile() -> Path:
    """Path of the shipped Fast DDS profile (a 64 MiB shared-memory segment)."""
    resource = importlib.resources.files("sam_moelora_ros").joinpath("/".join(PROFILE_RESOURCE))
    path = Path(str(resource))
    if not path.is_file():  # pragma: no cover - a broken install
        raise FileNotFoundError(
            f"{path} is missing: reinstall sam_moelora_ros (it ships the Fast DDS profile)"
        )
    return path


def profile_env_var(ros_distro: str | None) -> str:
    """The profile variable the Fast DDS of ``ros_distro`` reads (None/"": a current one)."""
    if (ros_distro or "").strip().lower() in FAST_DDS_2_DISTROS:
        return PROFILE_ENV_VARS[1]
    return PROFILE_ENV_VARS[0]


def with_large_message_profile(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` that selects the shipped profile, unless ``env`` already selects one.

    Only the variable of ``env``'s ``ROS_DISTRO`` is set (the other spelling draws a deprecation
    warning from every process on Kilted); a user's profile in either spelling is kept.
    """
    out = dict(env)
    if not any(out.get(name) for name in PROFILE_ENV_VARS):
        out[profile_env_var(out.get("ROS_DISTRO"))] = str(large_message_profile())
    return out


@contextmanager
def ros_environment(env: Mapping[str, str] | None) -> Iterator[None]:
    """Give this process ``env``'s DDS settings (:data:`DDS_ENV_VARS`) for the block.

    rmw reads them from the environment at ``rclpy.init`` / the first participant; a process
    that talks to a node it started (bag player, test harness, benchmark) must read the same
    ones, or the two would never discover each other or would use different transports. A
    variable absent from ``env`` is removed for the block; all are restored afterwards.
    ``env=None`` keeps this process' own settings.
    """
    saved = {k: os.environ.get(k) for k in DDS_ENV_VARS}
    try:
        if env is not None:
            for key in DDS_ENV_VARS:
                if key in env:
                    os.environ[key] = env[key]
                else:
                    os.environ.pop(key, None)
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

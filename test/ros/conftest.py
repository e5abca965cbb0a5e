"""Fixtures of the ROS integration tests: isolation checks, a tiny model, the node in a subprocess.

Isolation: no DDS packet may leave the machine, so these tests run only inside a
private network namespace whose sole interface is loopback (``make pytest`` provides one with
``unshare -n``); elsewhere they are skipped with a message saying how to run them, except
under CI (``CI`` set), where they error: a CI run must not pass by skipping them
(ros_isolation.py). Every process also gets ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a
``ROS_DOMAIN_ID`` unique to the test module, so modules never see each other's nodes even when
run in parallel.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sam_moelora_ros.ros.dds_profile import ros_environment, with_large_message_profile

# The test modules import their helpers (ros_harness.py) from this directory.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ros_isolation import ERROR, SKIP, verdict

RUN_HINT = (
    "ROS integration tests need a private network namespace (only loopback); run them with "
    "`make pytest` or: unshare -n sh -c 'ip link set lo up && exec \"$@\"' sh "
    ".venv/bin/python -m pytest test/ros"
)


def interfaces() -> list[str]:
    """Network interfaces of this namespace (``ip -o link``; /sys/class/net shows the host's)."""
    try:
        out = subprocess.run(
            ["ip", "-o", "link"], capture_output=True, text=True, timeout=5, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ["<ip unavailable>"]
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]


IN_PRIVATE_NETNS = interfaces() == ["lo"]
ISOLATION = verdict(interfaces(), os.environ)
_DOMAIN_BASE = 1 + os.getpid() % 50
_domains = itertools.count(_DOMAIN_BASE)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip every test under test/ros when not isolated (never risk DDS traffic on a LAN); under
    CI they are kept and :func:`_isolated_or_error` makes each one error instead."""
    if ISOLATION != SKIP:
        return
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason=f"{RUN_HINT} (interfaces here: {interfaces()})")
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _isolated_or_error() -> None:
    """Under CI outside a private namespace: error before any node (module fixtures) starts."""
    if ISOLATION == ERROR:
        pytest.fail(
            f"CI is set but this is not a private network namespace (interfaces: "
            f"{interfaces()}), so the ROS tests cannot run; {RUN_HINT}",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def ros_env() -> Iterator[dict[str, str]]:
    """Environment for this module's processes: loopback discovery, a domain of its own."""
    domain = next(_domains)
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_DOMAIN_ID"] = str(domain)
    env.pop("ROS_STATIC_PEERS", None)
    env["RMW_IMPLEMENTATION"] = env.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    env["PYTHONUNBUFFERED"] = "1"
    env["RCUTILS_LOGGING_BUFFERED_STREAM"] = "0"
    env["OMP_NUM_THREADS"] = "1"
    # as deployed: image-sized messages through a shared-memory segment that fits them
    env = with_large_message_profile(env)
    with ros_environment(env):  # this process' harness: the same settings as its nodes
        yield env


@pytest.fixture(scope="session")
def tiny_adapter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny model (64 px input, all four modalities), saved with its backbone."""
    import torch

    from sam_moelora_ros.model import ModelConfig, MoELoRASegmentor, save_adapter

    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", num_classes=25).replace(image_size=64)
    path = tmp_path_factory.mktemp("model") / "tiny64.safetensors"
    save_adapter(MoELoRASegmentor(cfg), path, include_backbone=True)
    return path

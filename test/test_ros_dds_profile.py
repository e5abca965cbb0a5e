"""The shipped Fast DDS profile and the environment that selects it (dds_profile)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest

from sam_moelora_ros.ros.dds_profile import (
    PROFILE_ENV_VARS,
    large_message_profile,
    ros_environment,
    with_large_message_profile,
)

NS = {"f": "http://www.eprosima.com"}


def test_profile_is_a_default_participant_profile_with_a_large_shm_segment() -> None:
    root = ET.parse(large_message_profile()).getroot()
    transports = {
        d.findtext("f:transport_id", namespaces=NS): d
        for d in root.findall("f:transport_descriptors/f:transport_descriptor", NS)
    }
    shm = [d for d in transports.values() if d.findtext("f:type", namespaces=NS) == "SHM"]
    assert len(shm) == 1
    # a 4 MiB cloud and a 1280x720 rgb8 image fit, several at once
    assert int(shm[0].findtext("f:segment_size", namespaces=NS)) >= 32 * 2**20
    participant = root.find("f:participant", NS)
    assert participant is not None and participant.get("is_default_profile") == "true"
    used = [e.text for e in participant.findall("f:rtps/f:userTransports/f:transport_id", NS)]
    assert set(used) == set(transports)  # every descriptor is used, none is missing
    # UDP stays: discovery and peers on other machines need it
    assert any(transports[t].findtext("f:type", namespaces=NS) == "UDPv4" for t in used)
    assert participant.findtext("f:rtps/f:useBuiltinTransports", namespaces=NS) == "false"


@pytest.mark.parametrize(
    ("distro", "variable"),
    [
        (None, "FASTDDS_DEFAULT_PROFILES_FILE"),  # the PyPI wheels: a current distribution
        ("kilted", "FASTDDS_DEFAULT_PROFILES_FILE"),
        ("rolling", "FASTDDS_DEFAULT_PROFILES_FILE"),
        ("humble", "FASTRTPS_DEFAULT_PROFILES_FILE"),
        ("jazzy", "FASTRTPS_DEFAULT_PROFILES_FILE"),
    ],
)
def test_environment_names_the_profile_in_the_distros_spelling(distro, variable) -> None:
    env = {"ROS_DOMAIN_ID": "7"} | ({} if distro is None else {"ROS_DISTRO": distro})
    out = with_large_message_profile(env)
    assert out[variable] == str(large_message_profile())
    assert set(out) - set(env) == {variable}  # only that one: the other spelling draws warnings
    assert out["ROS_DOMAIN_ID"] == "7"


@pytest.mark.parametrize("name", PROFILE_ENV_VARS)
def test_a_profile_the_user_chose_wins(name: str) -> None:
    env = with_large_message_profile({name: "/robot/fastdds.xml"})
    assert env == {name: "/robot/fastdds.xml"}


def test_input_mapping_is_not_modified() -> None:
    original = {"A": "1"}
    with_large_message_profile(original)
    assert original == {"A": "1"}


def test_ros_environment_applies_the_dds_settings_for_the_block_and_restores(monkeypatch) -> None:
    monkeypatch.setenv("ROS_DOMAIN_ID", "3")
    monkeypatch.setenv("ROS_STATIC_PEERS", "10.0.0.2")
    monkeypatch.delenv("ROS_AUTOMATIC_DISCOVERY_RANGE", raising=False)
    monkeypatch.setenv("HOME_UNTOUCHED", "yes")
    env = {"ROS_DOMAIN_ID": "42", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "OTHER": "x"}
    with ros_environment(env):
        assert os.environ["ROS_DOMAIN_ID"] == "42"
        assert os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
        assert "ROS_STATIC_PEERS" not in os.environ  # absent from env: absent here too
        assert "OTHER" not in os.environ  # only DDS settings travel
    assert os.environ["ROS_DOMAIN_ID"] == "3" and os.environ["ROS_STATIC_PEERS"] == "10.0.0.2"
    assert "ROS_AUTOMATIC_DISCOVERY_RANGE" not in os.environ
    with ros_environment(None):
        assert os.environ["ROS_DOMAIN_ID"] == "3"

"""A bag recorded the way a RealSense + Ouster + Prophesee robot records it, through replay_eval.

The bag (``robot_bag.py``) holds JPEG CompressedImages, compressedDepth PNGs, an organised
48-byte Ouster cloud in ``os_lidar`` behind a 180-degree ``os_sensor -> os_lidar`` link, EVT 3.0
packets every millisecond at half the camera's resolution and a multi-hop, multi-message
``/tf_static``; its contents are one rendered synthetic street, so the geometry is known. The
replay must read it with its topics remapped, reject nothing, use all four sensors and put the
LiDAR where the depth camera saw the same surfaces.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from sam_moelora_ros.bag import BagReader
from sam_moelora_ros.pipeline.decode import decode_camera_info, decode_depth, decode_lidar
from sam_moelora_ros.replay.cli import main
from sam_moelora_ros.sensors.tf_chain import TransformTree

from .robot_bag import CAMERA_FRAME, LIDAR_FRAME, TOPICS, write_robot_bag

FRAMES = 6
REMAP = [f"--topic={role}={topic}" for role, topic in TOPICS.items()]
SCALE = ["--param", "sensors.event.scale_to_camera=true"]
LEVEL_M = 80.0 / 254.0
"""Metres per grey level of the depth and LiDAR network images (80 m over levels 1..255)."""


@pytest.fixture(scope="module")
def robot_bag(tmp_path_factory: pytest.TempPathFactory):
    return write_robot_bag(tmp_path_factory.mktemp("robot") / "bag", frames=FRAMES)


@pytest.fixture(scope="module")
def replayed(robot_bag, tiny_model_path: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("robot_out")
    args = ["--bag", str(robot_bag.path), "--out", str(out), "--adapter", str(tiny_model_path)]
    code = main([*args, *REMAP, *SCALE, "--save-inputs", "--no-progress", "--device", "cpu"])
    assert code == 0
    return out, json.loads((out / "metrics.json").read_text())


def _cli(bag: Path, out: Path, model: Path, *extra: str) -> int:
    args = ["--bag", str(bag), "--out", str(out), "--adapter", str(model), "--no-progress"]
    return main([*args, "--device", "cpu", *REMAP, *extra])


def test_every_message_is_used_and_all_four_sensors_make_the_frames(replayed, robot_bag) -> None:
    _, m = replayed
    assert m["messages"]["rejected"] == {}, m["messages"]["rejected_detail"][:3]
    assert m["messages"]["read"][TOPICS["event"]] == robot_bag.counts["event"] > 200
    assert m["frames"]["segmented"] == m["frames"]["anchor_messages"] == FRAMES
    full = m["frames"]["per_sensor_set"].get("rgb+depth+event+lidar", 0)
    assert full >= FRAMES - 1, m["frames"]["per_sensor_set"]
    assert m["ground_truth"]["source"] is None  # a robot's bag has no labels: frames unscored
    assert m["inputs"]["lidar"]["channel_2"] == "intensity"
    assert m["inputs"]["event"]["sensor_size_wh"] == list(robot_bag.event_size_wh)


def test_the_extrinsic_is_the_tf_chain_through_four_links(replayed, robot_bag) -> None:
    _, m = replayed
    ext = m["extrinsic"]
    assert ext["source"] == "tf_static"
    assert ext["chain"] == [LIDAR_FRAME, "os_sensor", "base_link", "camera_link", CAMERA_FRAME]
    np.testing.assert_allclose(
        np.array(ext["T_cam_from_lidar"]),
        robot_bag.rig.camera_from_lidar @ _os_sensor_from_os_lidar(robot_bag.path),
        atol=1e-6,
    )


def _os_sensor_from_os_lidar(bag: Path) -> np.ndarray:
    with BagReader(bag) as reader:
        tree = TransformTree.from_messages(r.msg for r in reader.messages([TOPICS["tf_static"]]))
    return tree.lookup("os_sensor", LIDAR_FRAME)[0]


def test_saved_inputs_are_what_the_model_got_at_the_camera_size(replayed, robot_bag) -> None:
    out, _ = replayed
    w, h = robot_bag.rig.width, robot_bag.rig.height
    for modality in ("rgb", "depth", "event", "lidar"):
        files = sorted((out / "inputs" / modality).glob("*.png"))
        assert [f.name for f in files] == [f"{i:05d}.png" for i in range(FRAMES)], modality
        image = cv2.imread(str(files[2]), cv2.IMREAD_UNCHANGED)
        assert image.shape == (h, w, 3) and image.dtype == np.uint8, modality
    event = cv2.imread(str(out / "inputs" / "event" / "00002.png"))
    assert (event > 0).any(axis=2).mean() > 0.05  # the window's events, not an empty frame


def _read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)


def _levels_to_m(levels: np.ndarray) -> np.ndarray:
    return (levels.astype(np.float64) - 1.0) * LEVEL_M


def test_lidar_lands_where_the_depth_camera_saw_the_same_surface(replayed) -> None:
    out, _ = replayed
    errors = []
    for index in range(FRAMES):
        depth = _read_rgb(out / "inputs" / "depth" / f"{index:05d}.png")[:, :, 0]
        lidar = _read_rgb(out / "inputs" / "lidar" / f"{index:05d}.png")[:, :, 0]  # range
        both = (depth > 0) & (lidar > 0)
        errors.append(np.abs(_levels_to_m(lidar[both]) - _levels_to_m(depth[both])))
    error = np.concatenate(errors)
    assert error.size > 300, "too few pixels with both a depth and a LiDAR measurement"
    assert np.median(error) < 0.35, np.median(error)  # about one grey level (0.31 m)
    assert np.mean(error < 1.0) > 0.8


def _bag_messages(bag: Path) -> dict[str, Any]:
    first: dict[str, Any] = {}
    with BagReader(bag) as reader:
        for rec in reader.messages([TOPICS["lidar"], TOPICS["depth"], TOPICS["camera_info"]]):
            first.setdefault(rec.topic, rec.msg)
    return first


def test_ignoring_the_os_lidar_rotation_would_put_the_lidar_elsewhere(robot_bag) -> None:
    """The control that makes the check above able to fail: without the 180-degree link."""
    first = _bag_messages(robot_bag.path)
    camera = decode_camera_info(first[TOPICS["camera_info"]])
    depth = decode_depth(first[TOPICS["depth"]]).image[:, :, 0]
    cloud = first[TOPICS["lidar"]]
    right = robot_bag.rig.camera_from_lidar @ _os_sensor_from_os_lidar(robot_bag.path)
    wrong = robot_bag.rig.camera_from_lidar  # os_lidar taken for os_sensor
    close = []  # fraction of pixels where LiDAR and depth agree within 0.5 m
    for extrinsic in (right, wrong):
        lidar = decode_lidar(cloud, camera, extrinsic).image[:, :, 0]
        both = (depth > 0) & (lidar > 0)
        error = np.abs(_levels_to_m(lidar[both]) - _levels_to_m(depth[both]))
        close.append(float(np.mean(error < 0.5)))
    assert close[0] > 0.85 and close[1] < 0.6, close


def test_a_topic_of_the_wrong_type_is_one_line_before_reading(robot_bag, tmp_path, capsys) -> None:
    code = _cli(
        robot_bag.path,
        tmp_path / "out",
        tmp_path / "never_loaded.safetensors",
        f"--topic=rgb={TOPICS['lidar']}",
    )
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2
    assert len(err) == 1, err
    assert TOPICS["lidar"] in err[0] and "sensor_msgs/msg/PointCloud2" in err[0]
    assert "rgb role" in err[0] and "sensor_msgs/msg/CompressedImage" in err[0]
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_events_of_another_size_are_one_error_unless_scaled(
    robot_bag, tiny_model_path, tmp_path, capsys
) -> None:
    code = _cli(robot_bag.path, tmp_path / "out", tiny_model_path, "--max-frames", "1")
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1, err
    assert "64x32" in err[0] and "128x64" in err[0] and "scale_to_camera" in err[0]
    code = _cli(robot_bag.path, tmp_path / "scaled", tiny_model_path, "--max-frames", "1", *SCALE)
    assert code == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if "extrinsic" in x]
    chain = f"{LIDAR_FRAME} -> os_sensor -> base_link -> camera_link -> {CAMERA_FRAME}"
    assert len(lines) == 1 and chain in lines[0], lines  # the chain is reported once


def test_a_zero_quaternion_on_the_chain_is_an_error_not_identity(
    tiny_model_path, tmp_path, capsys
) -> None:
    bag = write_robot_bag(tmp_path / "bag", frames=2, zero_quaternion=True)
    code = _cli(bag.path, tmp_path / "out", tiny_model_path, *SCALE)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1, err
    assert "os_sensor -> os_lidar has a zero quaternion" in err[0]
    assert "lidar.extrinsic" in err[0]


def test_event_windows_match_the_generators_event_frames(replayed, robot_bag) -> None:
    """Packets -> window before the anchor -> representation -> camera size: the training rule."""
    out, _ = replayed
    w, h = robot_bag.rig.width, robot_bag.rig.height
    for index in range(FRAMES):
        saved = _read_rgb(out / "inputs" / "event" / f"{index:05d}.png")
        trained = cv2.resize(
            robot_bag.event_frames[index], (w, h), interpolation=cv2.INTER_NEAREST_EXACT
        )
        # The generator's frame holds the events since the previous frame, the window the
        # 50 ms before the anchor: the same events up to the camera's 0.5 ms jitter at both
        # ends of the frame interval (up to 1 ms of 50 in a busy sun scene; worst frame seen
        # 0.974 after the generator's noise model changed its random streams).
        assert np.mean(np.all(saved == trained, axis=2)) > 0.96, index

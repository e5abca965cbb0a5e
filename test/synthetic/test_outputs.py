"""DELIVER layout, determinism and rosbag2 contents of a small CLI run."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

from sam_moelora_ros.sensors import depth_msg_to_meters, project_points, read_points
from sam_moelora_ros.synthetic import topics as tp
from sam_moelora_ros.synthetic.cli import main
from sam_moelora_ros.synthetic.transforms import make_transform, quaternion_to_matrix

from .conftest import bag_path, run_cli

TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
DIRS = {
    "img": "rgb",
    "depth": "depth",
    "hha": "depth",
    "event": "event",
    "lidar": "lidar",
    "semantic": "semantic",
}


def read_bag(path: Path) -> list[tuple[str, int, object, bytes]]:
    """(topic, receive ns, decoded message, raw CDR) for every message, in bag order."""
    with Reader(path) as reader:
        return [
            (c.topic, t, TYPESTORE.deserialize_cdr(raw, c.msgtype), bytes(raw))
            for c, t, raw in reader.messages()
        ]


def stamp_ns(msg: object) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def test_deliver_layout_paths_and_semantic_encoding(small_run: Path):
    rgb = sorted(small_run.glob("img/*/train/*/*.png"))
    assert len(rgb) == 10
    conds = {p.parts[-4] for p in rgb}
    assert conds == {"cloud", "fog", "night", "rain", "sun"}
    assert any(p.parts[-2].endswith("_motionblur") for p in rgb)
    for p in rgb:
        assert p.name.endswith("_rgb_front.png") and p.name[:6].isdigit()
        for d, tag in DIRS.items():
            other = small_run / d / p.relative_to(small_run / "img")
            other = other.with_name(p.name.replace("_rgb_", f"_{tag}_"))
            img = cv2.imread(str(other), cv2.IMREAD_UNCHANGED)
            # DELIVER's event images are smaller than RGB (the reader resizes them, nearest).
            shape = (32, 64, 3) if d == "event" else (64, 128, 3)
            assert img is not None and img.shape == shape, other
    sem = cv2.imread(str(rgb[0]).replace("/img/", "/semantic/").replace("_rgb_", "_semantic_"))
    ids = sem[..., 2]  # OpenCV is BGR: DELIVER's channel 0 (R) is the last one
    assert ids.min() >= 1 and ids.max() <= 25 and not sem[..., :2].any()


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.png"))
    }


def test_same_seed_same_bytes(tmp_path: Path):
    args = ("--frames", "3", "--seed", "11", "--conditions", "night,fog", "--seq-len", "2", "--bag")
    a, b = run_cli(tmp_path / "a", *args), run_cli(tmp_path / "b", *args)
    assert _digest(a) == _digest(b) and len(_digest(a)) == 18
    bag_a, bag_b = read_bag(bag_path(a, seed=11)), read_bag(bag_path(b, seed=11))
    assert [(m[0], m[1], m[3]) for m in bag_a] == [(m[0], m[1], m[3]) for m in bag_b]
    c = run_cli(
        tmp_path / "c",
        "--frames",
        "3",
        "--seed",
        "12",
        "--conditions",
        "night,fog",
        "--seq-len",
        "2",
    )
    assert _digest(a) != _digest(c)


def test_bag_types_counts_and_stamps(small_run: Path):
    msgs = read_bag(bag_path(small_run))
    with Reader(bag_path(small_run)) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
    assert types == tp.TOPIC_TYPES
    by_topic: dict[str, list] = {}
    for topic, t, msg, _ in msgs:
        by_topic.setdefault(topic, []).append((t, msg))
    assert len(by_topic[tp.TF_STATIC_TOPIC]) == 1 and msgs[0][0] == tp.TF_STATIC_TOPIC
    for topic in (
        tp.CAMERA_TOPIC,
        tp.CAMERA_INFO_TOPIC,
        tp.DEPTH_TOPIC,
        tp.EVENT_TOPIC,
        tp.LABELS_TOPIC,
        tp.CONDITION_TOPIC,
    ):
        assert len(by_topic[topic]) == 10, topic
    assert len(by_topic[tp.LIDAR_TOPIC]) == 5  # 10 Hz against 20 Hz, one sweep per 2 frames
    times = [t for _, t, _, _ in msgs]
    assert times == sorted(times)
    cams = [m for _, m in by_topic[tp.CAMERA_TOPIC]]
    assert all(m.encoding == "rgb8" and (m.height, m.width) == (64, 128) for m in cams)
    for name in (tp.LABELS_TOPIC, tp.DEPTH_TOPIC, tp.EVENT_TOPIC, tp.CAMERA_INFO_TOPIC):
        others = [m for _, m in by_topic[name]]
        assert [m.header for m in others] == [m.header for m in cams] or name != tp.LABELS_TOPIC
        assert [stamp_ns(m) for m in others] == [stamp_ns(m) for m in cams], name
    assert by_topic[tp.LABELS_TOPIC][0][1].encoding == "mono8"
    assert by_topic[tp.DEPTH_TOPIC][0][1].encoding == "16UC1"
    periods = np.diff([stamp_ns(m) for m in cams[:2]]) / 1e9
    assert np.all(np.abs(periods - 0.05) < 0.002)  # 20 Hz with sub-ms jitter
    assert [m.data for _, m in by_topic[tp.CONDITION_TOPIC]][:5] == [
        "cloud",
        "cloud",
        "fog+motionblur",
        "fog+motionblur",
        "night",
    ]
    cloud = by_topic[tp.LIDAR_TOPIC][0][1]
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "intensity", "ring"]
    assert cloud.header.frame_id == tp.LIDAR_FRAME and cloud.width > 1000


def _extrinsic(tf_msg: object) -> np.ndarray:
    mats = {}
    for tr in tf_msg.transforms:
        q, v = tr.transform.rotation, tr.transform.translation
        mats[tr.child_frame_id] = make_transform(
            quaternion_to_matrix(q.x, q.y, q.z, q.w), (v.x, v.y, v.z)
        )
        assert tr.header.frame_id == tp.BASE_FRAME
    return np.linalg.inv(mats[tp.CAMERA_FRAME]) @ mats[tp.LIDAR_FRAME]


def test_lidar_projects_onto_matching_depth_through_the_bag(small_run: Path):
    msgs = read_bag(bag_path(small_run))
    t_cam_lidar = _extrinsic(next(m for t, _, m, _ in msgs if t == tp.TF_STATIC_TOPIC))
    info = next(m for t, _, m, _ in msgs if t == tp.CAMERA_INFO_TOPIC)
    depths = {stamp_ns(m): m for t, _, m, _ in msgs if t == tp.DEPTH_TOPIC}
    checked = 0
    for topic, _, cloud, _ in msgs:
        if topic != tp.LIDAR_TOPIC:
            continue
        near = min(depths, key=lambda s: abs(s - stamp_ns(cloud)))
        assert abs(near - stamp_ns(cloud)) < 2_000_000  # phase-locked, < 2 ms apart
        pts = read_points(cloud, reshape_organized=False)
        xyz = np.stack([pts["x"], pts["y"], pts["z"]], axis=1).astype(np.float64)
        sparse, mask = project_points(
            xyz, np.asarray(info.k).reshape(3, 3), t_cam_lidar, (info.height, info.width), info.d
        )
        depth = depth_msg_to_meters(depths[near])
        both = mask & np.isfinite(depth) & (depth > 0) & (sparse < 40.0)
        assert both.sum() > 50
        err = np.abs(sparse[both] - depth[both])
        tol = 0.15 + 0.03 * depth[both] + 3 * (0.005 + 0.0004 * depth[both] ** 2)
        assert np.mean(err < tol) > 0.85, np.median(err)
        checked += 1
    assert checked == 5


def test_dropout_window_and_mcap(tmp_path: Path):
    out = run_cli(
        tmp_path,
        "--frames",
        "12",
        "--seed",
        "4",
        "--conditions",
        "sun",
        "--bag",
        "--storage",
        "mcap",
        "--dropout",
        "lidar@0.2:0.45",
        "--no-deliver",
    )
    msgs = read_bag(bag_path(out, seed=4))
    start = msgs[0][1]
    lidar = [(t - start) / 1e9 for topic, t, _, _ in msgs if topic == tp.LIDAR_TOPIC]
    cams = [(t - start) / 1e9 for topic, t, _, _ in msgs if topic == tp.CAMERA_TOPIC]
    assert len(cams) == 12 and lidar and not any(0.2 <= t < 0.45 for t in lidar)
    assert len(lidar) < 6 and not list(out.glob("img"))


@pytest.mark.parametrize(
    "args", [["--conditions", "snow"], ["--failures", "sunburn"], ["--dropout", "radar@1:2"]]
)
def test_cli_rejects_bad_input(tmp_path: Path, args: list[str]):
    try:
        code = main(["--out", str(tmp_path), "--frames", "1", "--no-progress", *args])
    except SystemExit as exc:
        code = exc.code
    assert code == 2

"""CameraInfo distortion models against OpenCV: ``cv2.projectPoints`` and ``cv2.fisheye``."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sam_moelora_ros.sensors.camera_models import (
    CameraModel,
    CameraModelError,
    distort,
    distortion_coefficients,
)
from sam_moelora_ros.sensors.projection import project_point_indices, project_points

K = np.array([[400.0, 0.0, 330.0], [0.0, 410.0, 235.0], [0.0, 0.0, 1.0]])
SIZE = (480, 640)
FISHEYE_D = np.array([0.05, -0.01, 0.003, -0.0005])
RATIONAL_D = np.array([0.3, -0.1, 0.001, -0.002, 0.02, 0.5, -0.05, 0.01])
PLUMB_D = np.array([-0.2, 0.05, 0.001, -0.001, 0.01])


def points_in_view(n: int = 400, seed: int = 0, half_angle: float = 1.2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    theta = rng.uniform(0, half_angle, n)  # up to ~69 degrees off axis: fisheye territory
    phi = rng.uniform(-np.pi, np.pi, n)
    r = rng.uniform(1, 20, n)
    return np.stack(
        [r * np.sin(theta) * np.cos(phi), r * np.sin(theta) * np.sin(phi), r * np.cos(theta)], 1
    )


def pixels(model: str, d: np.ndarray, xyz: np.ndarray) -> np.ndarray:
    xd, yd = distort(xyz[:, 0] / xyz[:, 2], xyz[:, 1] / xyz[:, 2], model, d)
    return np.stack([K[0, 0] * xd + K[0, 2], K[1, 1] * yd + K[1, 2]], 1)


def test_equidistant_matches_cv2_fisheye() -> None:
    xyz = points_in_view()
    ref, _ = cv2.fisheye.projectPoints(
        xyz.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K, FISHEYE_D
    )
    np.testing.assert_allclose(pixels("equidistant", FISHEYE_D, xyz), ref.reshape(-1, 2), atol=1e-6)


@pytest.mark.parametrize(
    ("model", "d"),
    [("rational_polynomial", RATIONAL_D), ("plumb_bob", PLUMB_D), ("plumb_bob", PLUMB_D[:4])],
)
def test_pinhole_models_match_cv2_project_points(model: str, d: np.ndarray) -> None:
    xyz = points_in_view(half_angle=0.6)
    ref, _ = cv2.projectPoints(xyz.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K, d)
    np.testing.assert_allclose(pixels(model, d, xyz), ref.reshape(-1, 2), atol=1e-6)


def test_project_points_uses_the_named_model() -> None:
    # Well-separated points so each owns its pixel; compare pixels with cv2.fisheye's.
    xyz = points_in_view(60, seed=3)
    ref, _ = cv2.fisheye.projectPoints(
        xyz.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K, FISHEYE_D
    )
    uv = ref.reshape(-1, 2)
    idx = project_point_indices(xyz, K, np.eye(4), SIZE, FISHEYE_D, distortion_model="equidistant")
    inside = 0
    for i, (u, v) in enumerate(uv):
        col, row = int(np.floor(u + 0.5)), int(np.floor(v + 0.5))
        if 0 <= col < SIZE[1] and 0 <= row < SIZE[0]:
            inside += 1
            assert idx[row, col] == i  # 60 points in 640 x 480: none share a pixel
    assert inside == (idx >= 0).sum() > 30
    as_plumb = project_point_indices(xyz, K, np.eye(4), SIZE, FISHEYE_D)  # 4 values: plumb_bob
    assert not np.array_equal(as_plumb >= 0, idx >= 0)  # a different model moves the points
    _, mask = project_points(xyz, K, np.eye(4), SIZE, FISHEYE_D, distortion_model="equidistant")
    assert mask.sum() == (idx >= 0).sum()


@pytest.mark.parametrize(
    ("model", "d", "match"),
    [
        (
            "fisheye",
            FISHEYE_D,
            "'fisheye' is not supported.*supported: plumb_bob, rational_polynomial, equidistant",
        ),
        ("kannala_brandt", [0.0] * 4, "'kannala_brandt' is not supported"),
        ("equidistant", PLUMB_D, "takes 4 coefficients, d holds 5"),
        ("rational_polynomial", PLUMB_D, "takes 8 coefficients, d holds 5"),
        ("", PLUMB_D, "'' is not supported"),
        ("plumb_bob", [np.nan, 0, 0, 0, 0], "non-finite"),
    ],
)
def test_unknown_models_and_wrong_lengths_are_errors(model: str, d, match: str) -> None:
    with pytest.raises(CameraModelError, match=match):
        distortion_coefficients(model, d)
    with pytest.raises(CameraModelError, match=match):
        project_points(points_in_view(5), K, np.eye(4), SIZE, d, distortion_model=model)


def test_no_distortion_cases() -> None:
    assert distortion_coefficients("", []) is None
    assert distortion_coefficients("", [0.0] * 5) is None
    assert distortion_coefficients("equidistant", [0.0] * 4) is None
    assert distortion_coefficients("plumb_bob", []) is None
    xyz = points_in_view(50)
    plain = project_points(xyz, K, np.eye(4), SIZE)
    for d in ([], [0.0] * 3, [0.0] * 8):  # empty / zero d: no distortion, no length check
        np.testing.assert_array_equal(project_points(xyz, K, np.eye(4), SIZE, d)[1], plain[1])


def test_camera_model_from_a_rosbags_camera_info() -> None:
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    info_cls = store.types["sensor_msgs/msg/CameraInfo"]
    hdr = store.types["std_msgs/msg/Header"](
        stamp=store.types["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="fisheye"
    )
    roi = store.types["sensor_msgs/msg/RegionOfInterest"](
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )

    def info(model: str, d: np.ndarray, k: np.ndarray = K) -> object:
        return info_cls(
            header=hdr,
            height=480,
            width=640,
            distortion_model=model,
            d=d,
            k=k.reshape(-1),
            r=np.eye(3).reshape(-1),
            p=np.zeros(12),
            binning_x=0,
            binning_y=0,
            roi=roi,
        )

    cam = CameraModel.from_camera_info(info("equidistant", FISHEYE_D))
    assert (cam.size, cam.distortion_model, cam.frame_id) == (SIZE, "equidistant", "fisheye")
    np.testing.assert_array_equal(cam.D, FISHEYE_D)
    with pytest.raises(CameraModelError, match="'pinhole_radtan' is not supported"):
        CameraModel.from_camera_info(info("pinhole_radtan", PLUMB_D))
    with pytest.raises(CameraModelError, match="no valid focal length"):
        CameraModel.from_camera_info(info("plumb_bob", PLUMB_D, np.zeros((3, 3))))

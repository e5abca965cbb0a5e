"""Train/serve parity: a frame read from a DELIVER folder (training) and the same frame arriving
as sensor messages (node and replay) must give byte-identical network inputs.

The dataset side writes real PNGs in DELIVER's layout and reads them with ``DeliverDataset``; the
message side builds sensor_msgs-shaped messages with ``numpy_to_image`` / ``create_cloud`` and
decodes them with ``pipeline.decode``, exactly as the node does. Non-RGB files hold what the
synthetic generator writes for the same measurement (``sensors.representation`` /
``synthetic.deliver.lidar_image``).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from sam_moelora_ros.datasets import DeliverDataset
from sam_moelora_ros.pipeline.decode import (
    decode_camera_info,
    decode_depth,
    decode_event_image,
    decode_lidar,
    decode_rgb,
)
from sam_moelora_ros.sensors.depth import depth_to_meters
from sam_moelora_ros.sensors.image import numpy_to_image
from sam_moelora_ros.sensors.lidar import FLOAT32, create_cloud, make_fields
from sam_moelora_ros.sensors.messages import plain_header
from sam_moelora_ros.sensors.representation import depth_to_network_image
from sam_moelora_ros.synthetic.deliver import lidar_image
from sam_moelora_ros.synthetic.transforms import Rig

from .conftest import H, W, deliver_label_png, write_png

HDR = plain_header(3, 0, "camera")
FOLDERS = {"rgb": ("img", "rgb"), "depth": ("hha", "depth"), "event": ("event", "event")}
FOLDERS["lidar"] = ("lidar", "lidar")


def read_from_folder(root: Path, modality: str, content: np.ndarray) -> np.ndarray:
    """Write one DELIVER frame whose ``modality`` file holds ``content``; read it for training."""
    rel = Path("sun") / "val" / "MAP_1_point1"
    rgb = content if modality == "rgb" else np.zeros((H, W, 3), np.uint8)
    write_png(root / "img" / rel / "000000_rgb_front.png", rgb)
    folder, kind = FOLDERS[modality]
    write_png(root / folder / rel / f"000000_{kind}_front.png", content)
    write_png(root / "semantic" / rel / "000000_semantic_front.png", deliver_label_png())
    return DeliverDataset(root, "val", modalities=(modality,))[0]["images"][modality]


def assert_same_bytes(served: np.ndarray, trained: np.ndarray) -> None:
    assert served.shape == trained.shape == (H, W, 3)
    assert served.dtype == trained.dtype == np.uint8
    np.testing.assert_array_equal(served, trained)
    assert served.tobytes() == trained.tobytes()


def camera_picture(bits: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random ``H x W x 3`` picture and an alpha plane of the given bit depth.

    16-bit pictures also hold the values where the old rules disagreed (shift, floor, round).
    """
    rng = np.random.default_rng(seed)
    dtype, top = (np.uint8, 256) if bits == 8 else (np.uint16, 65536)
    rgb = rng.integers(0, top, (H, W, 3)).astype(dtype)
    if bits == 16:
        rgb[0, :4, 0] = [129, 0xFF00, 0x80FF, 65535]
    return rgb, rng.integers(0, top, (H, W, 1)).astype(dtype)


def as_stored(picture: np.ndarray, alpha: np.ndarray, layout: str) -> np.ndarray:
    """The picture in a message's channel layout (``rgb``, ``bgr``, ``rgba``, ``bgra``, mono)."""
    if layout == "mono":
        return np.ascontiguousarray(picture[:, :, 1])
    colour = picture[:, :, ::-1] if layout.startswith("bgr") else picture
    if layout.endswith("a"):
        colour = np.concatenate([colour, alpha], axis=2)
    return np.ascontiguousarray(colour)


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("layout", ["rgb", "bgr", "rgba", "bgra", "mono"])
def test_rgb_camera(tmp_path: Path, bits: int, layout: str) -> None:
    picture, alpha = camera_picture(bits, seed=bits)
    # The dataset file holds the picture in RGB(A) order (PNG); the message in its own order.
    file_layout = {"bgr": "rgb", "bgra": "rgba"}.get(layout, layout)
    trained = read_from_folder(tmp_path, "rgb", as_stored(picture, alpha, file_layout))
    encoding = f"{layout}{bits}"
    msg = numpy_to_image(as_stored(picture, alpha, layout), encoding, header=HDR)
    assert_same_bytes(decode_rgb(msg, (H, W)).image, trained)


def measured_depth(seed: int) -> np.ndarray:
    """Metres with every kind of hole (0, NaN, +-Inf) and far values beyond ``max_range``."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(0.2, 95.0, (H, W)).astype(np.float32)
    depth[0, :4] = [0.0, np.nan, np.inf, -np.inf]
    return depth


@pytest.mark.parametrize("encoding", ["32FC1", "16UC1"])
def test_depth_camera(tmp_path: Path, encoding: str) -> None:
    depth = measured_depth(seed=5)
    if encoding == "16UC1":  # the camera measures millimetres; REP 118 gives the metres
        stored = np.rint(np.nan_to_num(depth, nan=0.0, posinf=0.0, neginf=0.0) * 1000.0)
        stored = np.clip(stored, 0, 65535).astype(np.uint16)
        metres = depth_to_meters(stored, "16UC1")
    else:
        stored = metres = depth
    # The generator writes hha/ (what DeliverDataset reads as depth) from the metres.
    trained = read_from_folder(tmp_path, "depth", depth_to_network_image(metres))
    served = decode_depth(numpy_to_image(stored, encoding, header=HDR), (H, W)).image
    assert_same_bytes(served, trained)
    assert (served[0, :4] == 0).all()  # every kind of hole is "no data"
    if encoding == "32FC1":
        assert served.max() == 255  # beyond max_range saturates (16UC1 stops at 65.535 m)


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "mono8", "mono16"])
def test_event_frame(tmp_path: Path, encoding: str) -> None:
    bits = 16 if encoding.endswith("16") else 8
    picture, alpha = camera_picture(bits, seed=11)
    layout = encoding[:-1] if bits == 8 else encoding[:-2]
    file_layout = "rgb" if layout == "bgr" else layout
    trained = read_from_folder(tmp_path, "event", as_stored(picture, alpha, file_layout))
    msg = numpy_to_image(as_stored(picture, alpha, layout), encoding, header=HDR)
    assert_same_bytes(decode_event_image(msg, (H, W)).image, trained)


def lidar_frame() -> tuple[np.ndarray, np.ndarray, Any, Rig]:
    """One sweep: the generator's lidar PNG content and the node's decoding of the cloud."""
    rig = Rig(width=W, height=H)
    rng = np.random.default_rng(2)
    n = 300
    points = np.zeros(n, dtype=[(f, "<f4") for f in ("x", "y", "z", "intensity")])
    points["x"] = rng.uniform(2.0, 90.0, n)  # beyond 80 m saturates
    points["y"] = rng.uniform(-30.0, 30.0, n)
    points["z"] = rng.uniform(-2.0, 3.0, n)
    points["intensity"] = rng.uniform(0.0, 255.0, n)
    fields = make_fields([(f, FLOAT32) for f in ("x", "y", "z", "intensity")])
    cloud = create_cloud(plain_header(3, 0, "lidar"), fields, points)
    info = SimpleNamespace(
        height=H,
        width=W,
        k=rig.intrinsics().reshape(-1).tolist(),
        d=[0.0] * 5,
        distortion_model="plumb_bob",
        header=HDR,
    )
    served = decode_lidar(cloud, decode_camera_info(info), rig.camera_from_lidar).image
    return lidar_image(points, rig), served, cloud, rig


def test_lidar_range_channels(tmp_path: Path) -> None:
    written, served, _, _ = lidar_frame()
    trained = read_from_folder(tmp_path, "lidar", written)
    assert (trained[:, :, 0] > 0).sum() > 50  # enough returns for the comparison to mean much
    np.testing.assert_array_equal(served[:, :, :2], trained[:, :, :2])


def test_lidar_intensity_channel(tmp_path: Path) -> None:
    """Channel 2 is the cloud's intensity field on both paths (the generator and decode_lidar)."""
    written, served, _, _ = lidar_frame()
    trained = read_from_folder(tmp_path, "lidar", written)
    assert (trained[:, :, 2] != trained[:, :, 0]).sum() > 50  # intensity, not the range again
    assert_same_bytes(served, trained)

"""Tiny dataset trees in the DELIVER, MCubeS and MUSES layouts, written into ``tmp_path``."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

H, W = 12, 16
"""Frame size of the DELIVER and MUSES trees (event frames are written at half size)."""


def write_png(path: Path, image: np.ndarray) -> Path:
    """Write an RGB(A) / grey image as PNG (cv2 wants BGR order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    assert cv2.imwrite(str(path), image), path
    return path


def full(value: int, channels: int = 3, size: tuple[int, int] = (H, W)) -> np.ndarray:
    shape = size if channels == 1 else (*size, channels)
    return np.full(shape, value, dtype=np.uint8)


def deliver_label_png() -> np.ndarray:
    """Semantic PNG content: channel 0 holds id + 1 (0 unlabelled); G/B hold noise."""
    sem = np.zeros((H, W, 3), dtype=np.uint8)
    sem[:, :, 1:] = 200  # other channels must be ignored
    sem[0, 0, 0] = 0  # unlabelled -> 255
    sem[0, 1, 0] = 1  # Building -> 0
    sem[0, 2, 0] = 25  # Truck -> 24
    sem[0, 3, 0] = 255  # DELIVER's loader also treats 255 as unlabelled
    sem[1:, :, 0] = 7  # -> 6 (Road)
    return sem


DELIVER_SEQUENCES = ("MAP_1_point1", "MAP_2_point3_motionblur", "MAP_3_point2_lidarjitter")


def make_deliver(
    root: Path,
    conditions: tuple[str, ...] = ("cloud", "night"),
    split: str = "train",
    sequences: tuple[str, ...] = DELIVER_SEQUENCES,
    frames: int = 2,
) -> Path:
    """Write ``conditions x sequences x frames`` DELIVER frames; returns ``root``.

    Pixel values identify the source folder: img 10, hha 77, depth 11, event 150, lidar 200.
    hha is 1-channel (must be repeated), lidar 4-channel (must be cut), event half size.
    """
    for condition in conditions:
        for seq in sequences:
            for k in range(frames):
                stem = f"{k:06d}"
                rel = Path(condition) / split / seq
                write_png(root / "img" / rel / f"{stem}_rgb_front.png", full(10))
                write_png(root / "hha" / rel / f"{stem}_depth_front.png", full(77, 1))
                write_png(root / "depth" / rel / f"{stem}_depth_front.png", full(11))
                small = full(150, 3, (H // 2, W // 2))
                small[0, 0] = 0  # one dark pixel: nearest resize turns it into a 2x2 block
                write_png(root / "event" / rel / f"{stem}_event_front.png", small)
                write_png(root / "lidar" / rel / f"{stem}_lidar_front.png", full(200, 4))
                write_png(
                    root / "semantic" / rel / f"{stem}_semantic_front.png", deliver_label_png()
                )
    return root


MCUBES_W = 192 + W


def make_mcubes(root: Path, train: tuple[str, ...] = ("a1", "a2"), test: tuple[str, ...] = ("b1",)):
    """MCubeS tree; RGB column x holds x (to check the left crop), 16-bit NIR, float npy maps."""
    (root / "list_folder").mkdir(parents=True, exist_ok=True)
    (root / "list_folder" / "train.txt").write_text("".join(f"{n}\n" for n in train))
    (root / "list_folder" / "test.txt").write_text("".join(f"{n} extra\n" for n in test))
    cols = np.arange(MCUBES_W, dtype=np.uint8)
    for name in (*train, *test):
        rgb = np.broadcast_to(cols[None, :, None], (H, MCUBES_W, 3)).copy()
        write_png(root / "polL_color" / f"{name}.png", rgb)
        for folder, value in (("polL_aolp_sin", 1.0), ("polL_aolp_cos", -1.0), ("polL_dolp", 0.5)):
            (root / folder).mkdir(exist_ok=True)
            np.save(root / folder / f"{name}.npy", np.full((H, MCUBES_W), value, np.float32))
        write_png(root / "NIR_warped" / f"{name}.png", np.full((H, MCUBES_W), 65535, np.uint16))
        gt = np.full((H, MCUBES_W), 3, dtype=np.uint8)
        gt[:, -1] = 255
        gt[:, -2] = 30  # out of range -> ignore
        write_png(root / "GT" / f"{name}.png", gt)
    return root


def lidar_stored(value_m: float) -> int:
    """MUSES' uint16 LiDAR encoding ``(value + 100) * 150``."""
    return round((value_m + 100.0) * 150.0)


def make_muses(
    root: Path,
    split: str = "train",
    cells: tuple[tuple[str, str], ...] = (("clear", "day"), ("fog", "night")),
    frames: int = 2,
    labels: bool = True,
) -> Path:
    """MUSES tree: frame 40, half-size event 90, uint16 LiDAR with known metric values."""
    for weather, time in cells:
        rel = Path(split) / weather / time
        for k in range(frames):
            key = f"REC{k:04d}_{weather}"
            write_png(root / "frame_camera" / rel / f"{key}_frame_camera.png", full(40))
            write_png(
                root / "event_camera" / rel / f"{key}_event_camera.png",
                full(90, 3, (H // 2, W // 2)),
            )
            lidar = np.zeros((H, W, 3), dtype=np.uint16)
            lidar[0, 0] = lidar_stored(40.0)  # -> 1 + 127 = 128
            lidar[0, 1] = lidar_stored(0.0)  # -> 1
            lidar[0, 2] = lidar_stored(120.0)  # saturates -> 255
            write_png(root / "lidar" / rel / f"{key}_lidar.png", lidar)
            if labels:
                gt = np.full((H, W), 13, dtype=np.uint8)  # car
                gt[0, 0] = 255
                write_png(root / "gt_semantic" / rel / f"{key}_gt_labelTrainIds.png", gt)
    return root

"""Writer for the DELIVER on-disk layout, so synthetic and real DELIVER load with one reader.

Layout (DELIVER's): ``<root>/<modality_dir>/<condition>/<split>/<sequence>/<frame>_<tag>_front.png``
with modality dirs ``img`` (tag ``rgb``), ``depth`` and ``hha`` (tag ``depth``; DELIVER's reader
takes depth from ``hha``), ``event``, ``lidar`` and ``semantic``. Non-RGB images are made with
the encoders of the input contract :data:`GENERATOR_CONTRACT` (``sensors.encodings``), which the
generator records at the root (``input_encodings.json``), so the reader, the trained adapter and
the live node all build the same images. Semantic PNGs store ``training_id + 1`` in channel 0
(R), 0 for unlabelled. A failure case is named in the sequence directory
(``<sequence>_<failure>``), which is where DELIVER's reader looks for it (a substring of the
path). PNGs are written without timestamps or other metadata, so equal arrays give equal files.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from sam_moelora_ros.classes import IGNORE_INDEX
from sam_moelora_ros.sensors import project_point_indices
from sam_moelora_ros.sensors.representation import encode_depth, encode_lidar
from sam_moelora_ros.synthetic.frames import GENERATOR_CONTRACT, Frame
from sam_moelora_ros.synthetic.transforms import Rig

MODALITY_DIRS: dict[str, tuple[str, str]] = {
    "rgb": ("img", "rgb"),
    "depth": ("depth", "depth"),
    "hha": ("hha", "depth"),
    "event": ("event", "event"),
    "lidar": ("lidar", "lidar"),
    "semantic": ("semantic", "semantic"),
}
"""Key -> (top-level directory, file tag) of the DELIVER layout."""

PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 3]


def deliver_path(
    root: Path, key: str, condition: str, split: str, sequence: str, frame: int
) -> Path:
    """Path of one DELIVER file, e.g. ``img/night/train/SEQ/000003_rgb_front.png``."""
    directory, tag = MODALITY_DIRS[key]
    return root / directory / condition / split / sequence / f"{frame:06d}_{tag}_front.png"


def semantic_png(labels: np.ndarray) -> np.ndarray:
    """Training ids (255 ignore) -> DELIVER's RGB semantic image (R = id + 1, 0 unlabelled)."""
    out = np.zeros((*labels.shape, 3), dtype=np.uint8)
    out[..., 0] = np.where(labels == IGNORE_INDEX, 0, labels.astype(np.uint16) + 1)
    return out


def lidar_image(points: np.ndarray, rig: Rig) -> np.ndarray:
    """Project a sweep into the camera and encode it as the network's LiDAR image (H, W, 3)."""
    xyz = np.stack([points["x"], points["y"], points["z"]], axis=1)
    size = (rig.height, rig.width)
    idx = project_point_indices(xyz, rig.intrinsics(), rig.camera_from_lidar, size)
    cam = xyz @ rig.camera_from_lidar[:3, :3].T + rig.camera_from_lidar[:3, 3]
    sparse = np.where(idx >= 0, cam[np.maximum(idx, 0), 2], np.nan).astype(np.float32)
    inten = np.where(idx >= 0, points["intensity"][np.maximum(idx, 0)], np.nan)
    return encode_lidar(sparse, inten.astype(np.float32), GENERATOR_CONTRACT["lidar"])


def write_png(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB (or single-channel) uint8 image as PNG (OpenCV wants BGR order)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = rgb[..., ::-1] if rgb.ndim == 3 else rgb
    if not cv2.imwrite(str(path), np.ascontiguousarray(img), PNG_PARAMS):
        raise OSError(f"could not write {path}: check the directory is writable")


def sequence_dir_name(frame: Frame) -> str:
    """Sequence directory: the sequence name, plus ``_<failure>`` for a failure case."""
    spec = frame.spec
    return spec.name if not spec.failure else f"{spec.name}_{spec.failure}"


def write_deliver_frame(root: Path, frame: Frame, split: str, rig: Rig) -> list[Path]:
    """Write all six PNGs of one frame; returns the paths written."""
    seq = sequence_dir_name(frame)
    cond = frame.spec.condition
    depth_img = encode_depth(frame.depth, GENERATOR_CONTRACT["depth"])
    images = {
        "rgb": frame.rgb,
        "depth": depth_img,
        "hha": depth_img,
        "event": frame.event_frame,
        "semantic": semantic_png(frame.labels),
    }
    if frame.lidar is not None:
        images["lidar"] = lidar_image(frame.lidar, rig)
    paths = []
    for key, img in images.items():
        path = deliver_path(root, key, cond, split, seq, frame.index)
        write_png(path, img)
        paths.append(path)
    return paths

"""MUSES reader (frame camera, event camera, LiDAR; 19 Cityscapes classes).

Layout (as the paper group's AnySeg loader reads it), non-RGB sensors already projected to
the frame camera::

    root/frame_camera/<split>/<weather>/<time>/<key>_frame_camera.png
    root/event_camera/<split>/<weather>/<time>/<key>_event_camera.png
    root/lidar/<split>/<weather>/<time>/<key>_lidar.png
    root/gt_semantic/<split>/<weather>/<time>/<key>_gt_labelTrainIds.png

with ``split`` in train/val/test, ``weather`` in clear/fog/rain/snow and ``time`` in day/night.
Labels are Cityscapes train ids (0..18, 255 = ignore). Test labels are withheld by the
benchmark, so ``split="test"`` fails with a message pointing at ``val``.

The sample's ``condition`` is ``"<weather>_<time>"`` (e.g. ``"fog_night"``), so per-condition
tables can split it on ``_``; ``case`` is always ``"clean"``.

LiDAR decoding: the projected LiDAR PNG stores every channel as ``uint16 = (value + 100) * 150``
(0 where no point was projected). Each channel is decoded to ``value = stored / 150 - 100`` and
encoded like the node's LiDAR network image
(:func:`~sam_moelora_ros.sensors.representation.lidar_to_network_image`): a pixel with a point
becomes ``1 + round(254 * clip((value - lo) / (hi - lo), 0, 1))`` with ``(lo, hi) =
lidar_value_range`` (default 0..80 m, the node's ``max_range``), a pixel without one becomes 0.
One-channel files are repeated to 3; 8-bit files are taken as already-encoded network images.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sam_moelora_ros.sensors.network_input import to_three_channels

from .common import (
    Sample,
    SegmentationDataset,
    Transform,
    check_choice,
    clean_label,
    read_image,
    read_raw,
    report_missing,
    resize_nearest,
)
from .errors import DatasetError

MUSES_CLASSES: tuple[str, ...] = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
"""Cityscapes' 19 evaluation classes in train-id order."""
WEATHERS: tuple[str, ...] = ("clear", "fog", "rain", "snow")
TIMES: tuple[str, ...] = ("day", "night")
SPLITS: tuple[str, ...] = ("train", "val", "test")
MUSES_MODALITIES: tuple[str, ...] = ("rgb", "event", "lidar")
"""The sensors MUSES records (its own list: no depth camera, unlike the package's MODALITIES)."""

# modality -> (folder, file suffix replacing "_frame_camera")
_FILES = {
    "rgb": ("frame_camera", "_frame_camera"),
    "event": ("event_camera", "_event_camera"),
    "lidar": ("lidar", "_lidar"),
    "label": ("gt_semantic", "_gt_labelTrainIds"),
}
LIDAR_SCALE = 150.0
LIDAR_OFFSET = 100.0


def decode_lidar(raw: np.ndarray, value_range: tuple[float, float] = (0.0, 80.0)) -> np.ndarray:
    """A MUSES projected-LiDAR array (see module docstring) -> ``H x W x 3`` uint8."""
    if raw.dtype not in (np.uint8, np.uint16):
        raise DatasetError(f"MUSES LiDAR image has dtype {raw.dtype}; expected uint16 PNG")
    try:
        stored = to_three_channels(raw)
    except ValueError as exc:
        raise DatasetError(f"MUSES LiDAR image: {exc}") from exc
    if raw.dtype == np.uint8:
        return stored
    lo, hi = value_range
    if not hi > lo:
        raise DatasetError(f"lidar_value_range must have high > low, got {value_range}")
    value = stored.astype(np.float32) / LIDAR_SCALE - LIDAR_OFFSET
    scaled = np.clip((value - lo) / (hi - lo), 0.0, 1.0)
    out = (np.rint(scaled * 254.0) + 1.0).astype(np.uint8)
    out[stored == 0] = 0
    return out


class MusesDataset(SegmentationDataset):
    """MUSES (19 classes) as sample dicts.

    Args:
        root: the folder holding ``frame_camera/``, ``event_camera/``, ``lidar/``,
            ``gt_semantic/``.
        split: ``train``, ``val`` (or ``test``, whose labels are withheld).
        modalities: any of ``rgb`` (frame camera), ``event``, ``lidar``.
        conditions: weathers to read (clear, fog, rain, snow); ``None`` = all.
        times: ``day`` and/or ``night``; ``None`` = both.
        transform: ``sample -> sample``.
        lidar_value_range: metric range mapped to grey levels 1..255 (see module docstring).
    """

    num_classes = len(MUSES_CLASSES)
    class_names = MUSES_CLASSES

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        modalities: Sequence[str] = MUSES_MODALITIES,
        conditions: Sequence[str] | None = None,
        times: Sequence[str] | None = None,
        transform: Transform | None = None,
        *,
        lidar_value_range: tuple[float, float] = (0.0, 80.0),
    ) -> None:
        super().__init__(modalities, transform)
        check_choice("MUSES modality", self.modalities, MUSES_MODALITIES)
        if split not in SPLITS:
            raise DatasetError(f"unknown MUSES split {split!r}; choose from {', '.join(SPLITS)}")
        self.root = Path(root)
        self.split = split
        self.conditions = WEATHERS if conditions is None else tuple(conditions)
        check_choice("MUSES weather condition", self.conditions, WEATHERS)
        self.times = TIMES if times is None else tuple(times)
        check_choice("MUSES time of day", self.times, TIMES)
        self.lidar_value_range = lidar_value_range
        if not (self.root / "frame_camera").is_dir():
            raise DatasetError(
                f"{self.root} is not a MUSES root: no frame_camera/ folder; point root at the "
                "folder holding frame_camera/, event_camera/, lidar/ and gt_semantic/"
            )
        self.frames = self._index()

    def _index(self) -> list[tuple[Path, str]]:
        """Sorted ``(relative folder, key)``; checks every requested file and label exists."""
        frames = []
        for weather in self.conditions:
            for time in self.times:
                folder = Path(self.split) / weather / time
                for path in sorted((self.root / "frame_camera" / folder).glob("*.png")):
                    key = path.stem.removesuffix("_frame_camera")
                    frames.append((folder, key))
        if not frames:
            raise DatasetError(
                f"no MUSES frames in {self.root}/frame_camera/{self.split}/<weather>/<time>/"
                f"*.png for conditions {list(self.conditions)} and times {list(self.times)}; "
                "check root, split and the selection"
            )
        missing = {
            name: [p for p in (self._path(name, f, k) for f, k in frames) if not p.is_file()]
            for name in (*self.modalities, "label")
            if name != "rgb"
        }
        fix = "restore the listed files, or drop the modality from `modalities=`"
        if self.split == "test" and missing["label"]:
            fix = "MUSES withholds test labels (benchmark server); evaluate on split='val'"
        report_missing(
            missing, f"MUSES {self.root} split {self.split!r} ({len(frames)} frames)", fix
        )
        return frames

    def _path(self, modality: str, folder: Path, key: str) -> Path:
        top, suffix = _FILES[modality]
        return self.root / top / folder / f"{key}{suffix}.png"

    def load(self, index: int) -> Sample:
        folder, key = self.frames[index]
        raw = read_raw(self._path("label", folder, key))
        label = clean_label(raw if raw.ndim == 2 else raw[:, :, 0], self.num_classes)
        images: dict[str, np.ndarray] = {}
        for modality in self.modalities:
            path = self._path(modality, folder, key)
            if modality == "lidar":
                image = decode_lidar(read_raw(path), self.lidar_value_range)
            else:
                image = read_image(path)
            if modality != "rgb":
                image = resize_nearest(image, label.shape)
            images[modality] = image
        _, weather, time = folder.parts
        sample = {
            "images": images,
            "label": label,
            "condition": f"{weather}_{time}",
            "case": "clean",
            "name": f"{folder.as_posix()}/{key}",
        }
        return self.check_sample(sample, self._path("rgb", folder, key))

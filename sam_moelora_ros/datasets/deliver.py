"""DELIVER-layout reader (the real DELIVER benchmark and the project's synthetic scenes).

Layout (jamycheung/DELIVER)::

    root/{img,hha,depth,event,lidar,semantic}/<condition>/<split>/<sequence>/<frame>_<kind>_front.png

with ``<kind>`` = rgb / depth / event / lidar / semantic. Reader facts kept from DELIVER's own
loader: the ``depth`` modality is read from ``hha/`` (path ``/img`` -> ``/hha``, ``_rgb`` ->
``_depth``; ``depth_dir="depth"`` reads the raw depth folder instead); event frames are smaller
than RGB and are resized nearest-neighbour to the RGB size; one-channel images are repeated to
three and four-channel images cut to three; the label is channel 0 (red) of the semantic PNG,
where 0 (and 255) mean unlabelled -> :data:`IGNORE_INDEX`, any other value ``v`` -> ``v - 1``.

Paths are built from the frame's path *relative to root* (not by string replacement on the full
path as DELIVER does), so a root such as ``/data/img_sets/sunny`` cannot confuse the reader.

Conditions and sensor-failure cases:

* ``conditions``: the weather/lighting folders to read (``None`` = all five).
* ``cases``: which sensor-failure cases to include *besides* the clean frames. A frame's case is
  the failure name (motionblur, overexposure, underexposure, lidarjitter, eventlowres) found in
  its sequence folder or file name, else ``"clean"``. ``None`` = every case, ``()`` = clean
  frames only, ``("motionblur",)`` = clean + motion-blur frames. ``clean=False`` drops the clean
  frames, so ``cases=("lidarjitter",), clean=False`` reads only the LiDAR-jitter frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.classes import DELIVER_CLASSES, IGNORE_INDEX

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

CONDITIONS: tuple[str, ...] = ("cloud", "fog", "night", "rain", "sun")
"""DELIVER's condition folder names."""
CASES: tuple[str, ...] = (
    "motionblur",
    "overexposure",
    "underexposure",
    "lidarjitter",
    "eventlowres",
)
"""DELIVER's sensor-failure case names (found in the path of the affected frames)."""
SPLITS: tuple[str, ...] = ("train", "val", "test")
SPLIT_SIZES = {"train": 3983, "val": 2005, "test": 1897}
"""Frame counts of the published DELIVER splits (for a sanity check by the caller)."""

# modality -> (folder, file-name kind); depth's folder is configurable (hha by default)
_FOLDERS = {"rgb": ("img", "rgb"), "event": ("event", "event"), "lidar": ("lidar", "lidar")}


def frame_case(relative: Path) -> str:
    """The sensor-failure case named in ``relative`` (sequence folder or file name), or clean."""
    text = "/".join(relative.parts[-2:]).lower()
    found = [case for case in CASES if case in text]
    return found[0] if found else "clean"


def _swap_kind(filename: str, kind: str) -> str:
    """``000123_rgb_front.png`` -> ``000123_<kind>_front.png`` (the last ``_rgb`` only)."""
    head, sep, tail = filename.rpartition("_rgb")
    if not sep:
        raise DatasetError(f"DELIVER frame name {filename!r} has no '_rgb' part to replace")
    return f"{head}_{kind}{tail}"


class DeliverDataset(SegmentationDataset):
    """DELIVER (25 classes) as sample dicts; see the module docstring for the selection rules.

    Args:
        root: the folder holding ``img/``, ``hha/``, ``event/``, ``lidar/``, ``semantic/``.
        split: ``train``, ``val`` or ``test``.
        modalities: any of ``rgb``, ``depth``, ``event``, ``lidar`` (order kept in the sample).
        conditions: condition folders to read; ``None`` = all.
        cases: failure cases to include besides clean frames; ``None`` = all, ``()`` = none.
        transform: ``sample -> sample`` (e.g. :class:`~.augment.TrainAugment`).
        clean: include the clean (no-failure) frames.
        depth_dir: folder the ``depth`` modality is read from (``hha`` as DELIVER does).
    """

    num_classes = len(DELIVER_CLASSES)
    class_names = DELIVER_CLASSES

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        modalities: Sequence[str] = MODALITIES,
        conditions: Sequence[str] | None = None,
        cases: Sequence[str] | None = None,
        transform: Transform | None = None,
        *,
        clean: bool = True,
        depth_dir: str = "hha",
    ) -> None:
        super().__init__(modalities, transform)
        self.root = Path(root)
        check_choice("DELIVER modality", self.modalities, MODALITIES)
        if split not in SPLITS:
            raise DatasetError(f"unknown DELIVER split {split!r}; choose from {', '.join(SPLITS)}")
        self.split = split
        self.conditions = CONDITIONS if conditions is None else tuple(conditions)
        check_choice("DELIVER condition", self.conditions, CONDITIONS)
        self.cases = CASES if cases is None else tuple(cases)
        check_choice("DELIVER sensor-failure case", self.cases, CASES)
        self.clean = clean
        self.folders = {**_FOLDERS, "depth": (depth_dir, "depth")}
        if not (self.root / "img").is_dir():
            raise DatasetError(
                f"{self.root} is not a DELIVER root: no img/ folder; point root at the folder "
                "that holds img/, hha/, event/, lidar/ and semantic/"
            )
        self.frames = self._index()

    def _index(self) -> list[tuple[Path, str, str]]:
        """Sorted ``(relative path under img/, condition, case)``; checks every file exists."""
        wanted = set(self.cases) | ({"clean"} if self.clean else set())
        frames: list[tuple[Path, str, str]] = []
        for condition in self.conditions:
            split_dir = self.root / "img" / condition / self.split
            for path in sorted(split_dir.glob("*/*_rgb*.png")):
                relative = path.relative_to(self.root / "img")
                case = frame_case(relative)
                if case in wanted:
                    frames.append((relative, condition, case))
        if not frames:
            raise DatasetError(
                f"no DELIVER frames in {self.root}/img/<condition>/{self.split}/<sequence>/"
                f"*_rgb*.png for conditions {list(self.conditions)}, cases "
                f"{sorted(wanted)}; check root, split and the condition/case selection"
            )
        missing: dict[str, list[Path]] = {}
        for name in (*self.modalities, "label"):
            if name == "rgb":
                continue  # the index itself
            paths = [self._path(name, rel) for rel, _, _ in frames]
            missing[name] = [p for p in paths if not p.is_file()]
        report_missing(
            missing,
            f"DELIVER {self.root} split {self.split!r} ({len(frames)} RGB frames)",
            "restore the listed files (re-extract the archive / re-run the generator), or drop "
            "the modality from `modalities=`",
        )
        return frames

    def _path(self, modality: str, relative: Path) -> Path:
        folder, kind = ("semantic", "semantic") if modality == "label" else self.folders[modality]
        return self.root / folder / relative.parent / _swap_kind(relative.name, kind)

    def load(self, index: int) -> Sample:
        relative, condition, case = self.frames[index]
        label = self.read_label(self._path("label", relative))
        size = label.shape
        images: dict[str, np.ndarray] = {}
        for modality in self.modalities:
            image = read_image(self._path(modality, relative))
            if modality == "event":
                image = resize_nearest(image, size)
            images[modality] = image
        name = str(relative.with_suffix("")).replace("\\", "/")
        sample = {
            "images": images,
            "label": label,
            "condition": condition,
            "case": case,
            "name": name,
        }
        return self.check_sample(sample, self._path("rgb", relative))

    @classmethod
    def read_label(cls, path: Path) -> np.ndarray:
        """Semantic PNG -> ``H x W`` uint8 training ids (channel 0; 0/255 -> ignore, else -1)."""
        raw = read_raw(path)
        if raw.dtype != np.uint8:
            raise DatasetError(f"{path}: semantic PNG is {raw.dtype}, expected 8-bit")
        stored = raw if raw.ndim == 2 else raw[:, :, 0]
        label = stored.astype(np.int16) - 1
        label[(stored == 0) | (stored == 255)] = IGNORE_INDEX
        return clean_label(label, cls.num_classes)

"""MCubeS reader (RGB, AoLP, DoLP, NIR; 20 material classes).

Layout (jamycheung/DELIVER ``semseg/datasets/mcubes.py``), ``root`` being the
``multimodal_dataset`` folder::

    root/list_folder/{train,test}.txt       one frame name per line (extra columns ignored)
    root/polL_color/<name>.png              RGB (8 or 16 bit)
    root/polL_aolp_sin/<name>.npy           sin(2*AoLP), float, [-1, 1]
    root/polL_aolp_cos/<name>.npy           cos(2*AoLP), float, [-1, 1]
    root/polL_dolp/<name>.npy               DoLP, float, [0, 1]
    root/NIR_warped/<name>.png              NIR warped to the colour camera (8 or 16 bit)
    root/GT/<name>.png                      material ids 0..19, 255 = unlabelled

Splits: ``train`` reads ``train.txt``; ``val`` and ``test`` both read ``test.txt`` (MCubeS has no
separate validation list; DELIVER's loader evaluates on it as "val").

As in that loader, the left 192 columns of every 1224 x 1024 image are cropped (the polarisation
camera's unusable border) and AoLP becomes the 3-channel image ``[sin, cos, sin]``. To enter the
one shared preprocessing path, every modality is turned into ``H x W x 3`` uint8: AoLP as
``round((v + 1) * 127.5)`` (so after ``/255`` the network sees ``(v + 1) / 2``), DoLP as
``round(255 * v)`` (clipped to [0, 1]) repeated to 3 channels, NIR (16-bit scaled to 8) repeated.
The 8-bit quantisation (<0.4 % of the range) is far below the sensor noise of these maps.
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
)
from .errors import DatasetError

MCUBES_CLASSES: tuple[str, ...] = (
    "asphalt",
    "concrete",
    "metal",
    "road_marking",
    "fabric",
    "glass",
    "plaster",
    "plastic",
    "rubber",
    "sand",
    "gravel",
    "ceramic",
    "cobblestone",
    "brick",
    "grass",
    "wood",
    "leaf",
    "water",
    "human",
    "sky",
)
"""MCubeS material classes in id order."""
MCUBES_MODALITIES: tuple[str, ...] = ("rgb", "aolp", "dolp", "nir")
"""MCubeS's own image kinds (polarisation and NIR, not the package's robot sensors)."""
SPLITS = {"train": "train.txt", "val": "test.txt", "test": "test.txt"}
LEFT_CROP = 192
"""Columns cut from the left of every image (as DELIVER's MCubeS loader does)."""

# modality -> files it needs (folder, extension)
_FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "rgb": (("polL_color", ".png"),),
    "aolp": (("polL_aolp_sin", ".npy"), ("polL_aolp_cos", ".npy")),
    "dolp": (("polL_dolp", ".npy"),),
    "nir": (("NIR_warped", ".png"),),
    "label": (("GT", ".png"),),
}


def _load_npy(path: Path) -> np.ndarray:
    """A 2-D float map; ``allow_pickle=False`` (no pickle anywhere, docs/design.md)."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {path} as a .npy array: {exc}") from exc
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != 2:
        raise DatasetError(f"{path}: expected an H x W map, got shape {array.shape}")
    return np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def _quantise(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Linear map of ``[low, high]`` to ``0..255`` uint8 (clipped)."""
    scaled = (np.clip(values, low, high) - low) * (255.0 / (high - low))
    return np.rint(scaled).astype(np.uint8)


class MCubeSDataset(SegmentationDataset):
    """MCubeS (20 classes) as sample dicts; ``condition`` is ``"mcubes"``, ``case`` ``"clean"``.

    Args:
        root: the ``multimodal_dataset`` folder (holding ``list_folder/``, ``polL_color/``...).
        split: ``train``, ``val`` or ``test`` (the latter two read ``test.txt``).
        modalities: any of ``rgb``, ``aolp``, ``dolp``, ``nir``.
        transform: ``sample -> sample``.
    """

    num_classes = len(MCUBES_CLASSES)
    class_names = MCUBES_CLASSES

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        modalities: Sequence[str] = MCUBES_MODALITIES,
        transform: Transform | None = None,
    ) -> None:
        super().__init__(modalities, transform)
        check_choice("MCubeS modality", self.modalities, MCUBES_MODALITIES)
        if split not in SPLITS:
            raise DatasetError(
                f"unknown MCubeS split {split!r}; choose from {', '.join(SPLITS)} "
                "(val and test both read list_folder/test.txt)"
            )
        self.root = Path(root)
        self.split = split
        list_file = self.root / "list_folder" / SPLITS[split]
        if not list_file.is_file():
            raise DatasetError(
                f"MCubeS list file {list_file} is missing; point root at the "
                "multimodal_dataset folder that holds list_folder/{train,test}.txt"
            )
        names = [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
        if not names:
            raise DatasetError(f"MCubeS list {list_file} is empty: no {split} frames to read")
        self.frames = names
        missing: dict[str, list[Path]] = {}
        for modality in (*self.modalities, "label"):
            for folder, ext in _FILES[modality]:
                paths = (self.root / folder / f"{n}{ext}" for n in names)
                missing[f"{modality} ({folder})"] = [p for p in paths if not p.is_file()]
        report_missing(
            missing,
            f"MCubeS {self.root} split {split!r} ({len(names)} frames in {list_file.name})",
            "restore the listed files, remove their names from the list file, or drop the "
            "modality from `modalities=`",
        )

    def _file(self, folder: str, name: str, ext: str) -> Path:
        return self.root / folder / f"{name}{ext}"

    def load(self, index: int) -> Sample:
        name = self.frames[index]
        crop = np.s_[:, LEFT_CROP:]
        raw_label = read_raw(self._file("GT", name, ".png"))
        if raw_label.ndim == 3:
            raw_label = raw_label[:, :, 0]
        label = clean_label(raw_label[crop], self.num_classes)
        images: dict[str, np.ndarray] = {}
        for modality in self.modalities:
            if modality == "rgb":
                image = read_image(self._file("polL_color", name, ".png"))
            elif modality == "nir":
                image = read_image(self._file("NIR_warped", name, ".png"))
            elif modality == "aolp":
                sin = _quantise(_load_npy(self._file("polL_aolp_sin", name, ".npy")), -1.0, 1.0)
                cos = _quantise(_load_npy(self._file("polL_aolp_cos", name, ".npy")), -1.0, 1.0)
                if sin.shape != cos.shape:
                    raise DatasetError(f"MCubeS {name}: AoLP sin {sin.shape} != cos {cos.shape}")
                image = np.stack([sin, cos, sin], axis=2)
            else:  # dolp
                dolp = _quantise(_load_npy(self._file("polL_dolp", name, ".npy")), 0.0, 1.0)
                image = to_three_channels(dolp)
            images[modality] = np.ascontiguousarray(image[crop])
        sample = {
            "images": images,
            "label": label,
            "condition": "mcubes",
            "case": "clean",
            "name": name,
        }
        return self.check_sample(sample, f"MCubeS frame {name!r} in {self.root}")

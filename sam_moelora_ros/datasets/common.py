"""Shared pieces of the dataset readers: the sample dict, image I/O, checks, the base class.

Every reader (DELIVER, MCubeS, MUSES) returns the same sample before its transform::

    {"images": {modality: H x W x 3 uint8 ndarray (RGB channel order)},
     "label": H x W uint8 ndarray (training ids, 255 = ignore),
     "condition": str, "case": str ("clean" when no sensor failure), "name": str}

so that the augmentation, the training loop and the evaluation never branch on the dataset.
The file index is built and checked once, at construction: a frame whose modality file or label
is missing is an error (listing the first few paths and the count), never a silently skipped
sample, because a silently shrinking training set is the hardest data bug to find later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from torch.utils.data import Dataset

from sam_moelora_ros.classes import IGNORE_INDEX
from sam_moelora_ros.sensors.encodings import Encoding, InputContract
from sam_moelora_ros.sensors.network_input import to_network_image

from .errors import DatasetError

Sample = dict[str, Any]
"""A sample dict as described in the module docstring (or as a transform rewrote it)."""
Transform = Callable[[Sample], Sample]

MAX_LISTED = 5
"""How many offending paths an error message lists before it only gives the count."""


def read_raw(path: Path) -> np.ndarray:
    """Decode an image file unchanged (bit depth kept), in RGB(A) channel order."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetError(
            f"cannot decode {path}: the file is missing, truncated or not an image; "
            "re-extract the dataset archive"
        )
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def read_image(path: Path) -> np.ndarray:
    """Read a modality image as ``H x W x 3`` uint8 RGB.

    The bit-depth and channel rules are ``sensors.network_input.to_network_image``, the very
    function the node applies to camera messages, so training and serving see the same bytes.
    """
    try:
        return to_network_image(read_raw(path))
    except ValueError as exc:
        raise DatasetError(
            f"{path}: {exc}; expected an 8 or 16-bit PNG with 1 to 4 channels"
        ) from exc


def resize_nearest(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize to ``size_hw`` (DELIVER's event frames are smaller than RGB)."""
    if image.shape[:2] == tuple(size_hw):
        return image
    out = cv2.resize(image, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_NEAREST_EXACT)
    return out if out.ndim == 3 else out[:, :, None]


def clean_label(label: np.ndarray, num_classes: int) -> np.ndarray:
    """Map every value outside ``0..num_classes-1`` to the ignore index (uint8 output).

    Why not an error: some public label maps carry stray ids (void variants) that all
    published loaders treat as "not evaluated".
    """
    label = label.astype(np.uint8, copy=True)
    label[label >= num_classes] = IGNORE_INDEX
    return label


def check_choice(kind: str, values: Sequence[str], known: Sequence[str]) -> tuple[str, ...]:
    """Reject unknown names (conditions, modalities, ...) with the list of known ones."""
    values = tuple(values)
    unknown = [v for v in values if v not in known]
    if unknown:
        raise DatasetError(f"unknown {kind} {unknown}; choose from {', '.join(known)}")
    if len(set(values)) != len(values):
        raise DatasetError(f"{kind} names repeat: {list(values)}")
    return values


def report_missing(missing: Mapping[str, list[Path]], where: str, fix: str) -> None:
    """Raise one error listing, per kind, the missing paths (first few) and their count."""
    missing = {kind: paths for kind, paths in missing.items() if paths}
    if not missing:
        return
    lines = [f"{where}: {sum(map(len, missing.values()))} required files are missing"]
    for kind, paths in missing.items():
        shown = ", ".join(str(p) for p in paths[:MAX_LISTED])
        more = f" (+{len(paths) - MAX_LISTED} more)" if len(paths) > MAX_LISTED else ""
        lines.append(f"  {kind}: {len(paths)} missing, e.g. {shown}{more}")
    lines.append(f"fix: {fix}")
    raise DatasetError("\n".join(lines))


class SegmentationDataset(Dataset):
    """Base class: a checked list of frames, :meth:`load` per frame, an optional transform.

    Subclasses set ``num_classes``, ``class_names``, ``modalities`` and ``frames`` and implement
    :meth:`load`. ``frames`` entries are whatever the subclass needs to load one sample.
    """

    num_classes: int
    class_names: tuple[str, ...]
    ignore_index: int = IGNORE_INDEX

    def __init__(self, modalities: Sequence[str], transform: Transform | None) -> None:
        if isinstance(modalities, str):
            modalities = (modalities,)
        if not modalities:
            raise DatasetError("modalities is empty; name at least one, e.g. ('rgb',)")
        self.modalities: tuple[str, ...] = tuple(modalities)
        self.transform = transform
        self.input_encodings: InputContract = dataset_contract(type(self).__name__, self.modalities)
        """Which encoding each modality's images hold (``sensors.encodings``); training records
        it in the adapter. Readers whose files a sensor message reproduces say so."""
        self.frames: list[Any] = []
        self.cached: list[Sample] | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def cache_decoded(self, budget_bytes: int) -> bool:
        """Decode every frame once and keep it in memory, if the whole set fits ``budget_bytes``.

        Decoding PNGs is the data path's main cost once the model is fast (61 -> 23 ms per batch
        of 8 at 384 x 192 in the recipe's diagnosis). The estimate is the first frame's bytes
        times the frame count; a set that does not fit is left uncached (returns False) rather
        than half cached. The untransformed samples are cached, so augmentation still draws
        anew per epoch; decoding before the loader forks its workers lets them share the pages.
        """
        if self.cached is not None:
            return True
        if budget_bytes <= 0 or not self.frames:
            return False
        first = self.load(0)
        per_frame = sum(a.nbytes for a in first["images"].values()) + first["label"].nbytes
        if per_frame * len(self) > budget_bytes:
            return False
        self.cached = [first] + [self.load(i) for i in range(1, len(self))]
        return True

    def load(self, index: int) -> Sample:
        """The untransformed sample dict of frame ``index``."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> Sample:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} frames")
        index %= len(self)
        sample = self.cached[index] if self.cached is not None else self.load(index)
        return self.transform(sample) if self.transform is not None else sample

    def check_sample(self, sample: Sample, where: object) -> Sample:
        """Every modality must match the label's ``H x W``; a mismatch is a data error."""
        h, w = sample["label"].shape
        for name, image in sample["images"].items():
            if image.shape != (h, w, 3) or image.dtype != np.uint8:
                raise DatasetError(
                    f"{where}: {name} image is {image.shape} {image.dtype}, expected "
                    f"({h}, {w}, 3) uint8 like the label; the files of this frame disagree"
                )
        return sample


def dataset_contract(dataset: str, modalities: Sequence[str]) -> InputContract:
    """RGB as ``rgb8``, every other modality as the dataset's own images (``dataset_png``)."""
    return InputContract(
        {
            m: Encoding.make(m, "rgb8")
            if m == "rgb"
            else Encoding.make(m, "dataset_png", dataset=dataset)
            for m in modalities
        }
    )

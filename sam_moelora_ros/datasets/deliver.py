"""DELIVER-layout reader (the real DELIVER benchmark and the project's synthetic scenes).

Layout (jamycheung/DELIVER)::

    root/{img,hha,depth,event,lidar,semantic}/<condition>/<split>/<sequence>/<frame>_<kind>_front.png

with ``<kind>`` = rgb / depth / event / lidar / semantic. Reader facts kept from DELIVER's own
loader: the ``depth`` modality is read from ``hha/`` (path ``/img`` -> ``/hha``, ``_rgb`` ->
``_depth``; ``depth_source="depth"`` reads the ``depth/`` folder instead); event frames are smaller
than RGB and are resized nearest-neighbour to the RGB size; one-channel images are repeated to
three and four-channel images cut to three; the label is channel 0 (red) of the semantic PNG,
where 0 (and 255) mean unlabelled -> :data:`IGNORE_INDEX`, any other value ``v`` -> ``v - 1``.

Input encodings (``sensors.encodings``; docs/training.md, "Datasets and the input contract"):

* A folder with ``input_encodings.json`` at its root (the synthetic generator's, or a robot's
  recordings exported by ``replay_eval --export-dataset``) holds network images in the recorded
  encodings, whichever of ``hha/`` or ``depth/`` is read.
* The real DELIVER (no such file): RGB is ``rgb8``; ``hha/`` is the encoding ``hha``;
  ``depth_source="depth"`` decodes ``depth/`` to metres (:func:`decode_deliver_depth`) and
  encodes it ``linear`` over ``depth_max_range``, the encoding the node computes; LiDAR and event
  PNGs are DELIVER's own renderings, named ``deliver_png`` (a model trained on them is refused
  on the robot, which cannot reproduce them).

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
from sam_moelora_ros.sensors.encodings import DEPTH_MAX_RANGE, Encoding, InputContract
from sam_moelora_ros.sensors.representation import encode_depth

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
from .contract import read_contract
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
DEPTH_SOURCES = ("hha", "depth")
"""``depth_source``: the folder the depth modality is read from."""
CARLA_FAR_M = 1000.0
"""CARLA's depth camera far plane: the 24-bit code ``2^24 - 1`` is this many metres."""


def decode_deliver_depth(raw: np.ndarray, path: Path) -> np.ndarray:
    """A file of DELIVER's ``depth/`` folder -> ``H x W`` float32 metres (0 = no measurement).

    DELIVER was rendered in CARLA and does not document its depth files; this reader accepts
    the two forms such files take and refuses anything else, naming the file:

    * 8-bit, 3 channels (RGB order): CARLA's depth camera code, ``(R + 256 G + 65536 B) /
      (2^24 - 1) * 1000`` m (CARLA's documented ``sensor.camera.depth`` encoding);
    * 16-bit, 1 channel: millimetres (REP 118's 16UC1 convention).

    Which form the published archive holds was not checked against a copy of it here: look at
    one file (``python -c "import cv2; print(cv2.imread(F, -1).dtype, cv2.imread(F, -1).shape)"``)
    before a long run, and compare a decoded frame with the scene.
    """
    if raw.dtype == np.uint8 and raw.ndim == 3 and raw.shape[2] >= 3:
        code = raw[..., 0].astype(np.float64)
        code += raw[..., 1].astype(np.float64) * 256.0
        code += raw[..., 2].astype(np.float64) * 65536.0
        return (code * (CARLA_FAR_M / (2**24 - 1))).astype(np.float32)
    if raw.dtype == np.uint16 and raw.ndim == 2:
        return raw.astype(np.float32) / 1000.0
    raise DatasetError(
        f"{path}: a DELIVER depth file must be 8-bit RGB (CARLA's depth code) or 16-bit "
        f"one-channel millimetres, got {raw.dtype} with shape {raw.shape}; read the hha/ folder "
        "instead (data.depth_source: hha)"
    )


def deliver_contract(
    root: Path, modalities: Sequence[str], depth_source: str, depth_max_range: float
) -> tuple[InputContract, bool]:
    """``(the contract of the images the reader yields, whether depth/ files are decoded)``."""
    recorded = read_contract(root)
    if recorded is not None:
        return recorded.restrict(modalities), False
    depth = (
        Encoding.make("depth", "hha")
        if depth_source == "hha"
        else Encoding.make("depth", "linear", max_range=depth_max_range)
    )
    real = {
        "rgb": Encoding.make("rgb", "rgb8"),
        "depth": depth,
        "event": Encoding.make("event", "deliver_png"),
        "lidar": Encoding.make("lidar", "deliver_png"),
    }
    return InputContract({m: real[m] for m in modalities}), depth_source == "depth"


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
        depth_source: folder the ``depth`` modality is read from: ``hha`` (as DELIVER's
            loader does) or ``depth`` (decoded to metres for a real DELIVER, see the module
            docstring).
        depth_max_range: metres at which decoded ``depth/`` saturates (encoding ``linear``).
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
        depth_source: str = "hha",
        depth_max_range: float = DEPTH_MAX_RANGE,
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
        if depth_source not in DEPTH_SOURCES:
            raise DatasetError(
                f"unknown DELIVER depth_source {depth_source!r}; choose from {list(DEPTH_SOURCES)}"
            )
        self.folders = {**_FOLDERS, "depth": (depth_source, "depth")}
        if not (self.root / "img").is_dir():
            raise DatasetError(
                f"{self.root} is not a DELIVER root: no img/ folder; point root at the folder "
                "that holds img/, hha/, event/, lidar/ and semantic/"
            )
        self.input_encodings, self._decode_depth = deliver_contract(
            self.root, self.modalities, depth_source, depth_max_range
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
            path = self._path(modality, relative)
            if modality == "depth" and self._decode_depth:
                meters = decode_deliver_depth(read_raw(path), path)
                images[modality] = encode_depth(meters, self.input_encodings["depth"])
                continue
            image = read_image(path)
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

"""The exported model folder's ``manifest.json``: what is in it, and checks that it is whole.

An exported folder holds, for a model with modalities ``M`` and ``L`` fused levels::

    manifest.json          this description (format, config, class table, source hash, files)
    encoder_<m>.onnx       one per modality: B x 3 x S x S image -> level0 .. level{L-1}
    encoder_all.onnx       (M > 1) all modalities in one pass: <m>.image -> <m>.level<i>
    fusion.onnx            present (M) + <m>.level<i> (M * L maps) -> logits, router_weights
    weights.bin            the graphs' weights, each distinct tensor once (ONNX external data)

Every graph also carries the format, config, class table and source hash in its own
``metadata_props``, so a graph copied out of its folder still says what it is; the loader
checks that they agree with the manifest (a folder mixing two exports is refused).

This module needs neither torch nor onnx: the runtime reads it too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.sensors.encodings import (
    DEFAULT_CONTRACT,
    METADATA_KEY,
    EncodingError,
    InputContract,
)

from .errors import ExportError

FORMAT = "sam_moelora_ros.onnx"
FORMAT_VERSION = "1"
MANIFEST = "manifest.json"
LOADABLE_SUFFIXES = (".onnx", ".bin", ".data")
"""Files ONNX Runtime may read from the folder (graphs, external weights): each must be listed
and hashed in the manifest, so a weight file left out of it cannot load unchecked."""


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def image_input(modality: str) -> str:
    """The all-modalities encoder's input name for one modality's image."""
    return f"{modality}.image"


def level_input(modality: str, level: int) -> str:
    """The fusion graph's input name for one modality's level features."""
    return f"{modality}.level{level}"


@dataclass(frozen=True)
class Manifest:
    """The parsed ``manifest.json`` of an exported model folder (see the module docstring).

    Attributes:
        root: the folder.
        config: the model's ``ModelConfig`` as a dict (``ModelConfig.from_dict`` reads it).
        classes: ``[{"id", "name", "color"}]`` per class id.
        source: what was exported (the adapter's file name, or ``preset <name> seed <n>``).
        source_sha256: sha256 of the adapter file (of the weights, for a preset).
        opset: the ONNX opset of every graph.
        modalities: the model's modalities, in its canonical order.
        levels: per fused level ``[C, h, w]`` of one modality's features (batch dimension apart).
        encoders: modality -> graph file name.
        fusion: the fusion graph's file name.
        batched: the all-modalities encoder's file name ('' for a one-modality model).
        files: file name -> sha256, for every file the folder needs.
        info: everything else the exporter recorded (exporter, versions, dynamic axes).
        input_encodings: the model's input contract (``sensors.encodings``), as the adapter
            recorded it; a manifest written before the key existed reads as ``DEFAULT_CONTRACT``.
    """

    root: Path
    config: dict[str, Any]
    classes: list[dict[str, Any]]
    source: str
    source_sha256: str
    opset: int
    modalities: tuple[str, ...]
    levels: tuple[tuple[int, int, int], ...]
    encoders: dict[str, str]
    fusion: str
    files: dict[str, str]
    info: dict[str, Any]
    batched: str = ""
    input_encodings: InputContract = DEFAULT_CONTRACT

    @property
    def image_size(self) -> int:
        return int(self.config["image_size"])

    @property
    def input_hw(self) -> tuple[int, int]:
        """``(H, W)`` of the image every encoder graph takes: the ``S x S`` square, or for a
        content-only model the content box of the camera it was exported for (``info``
        ``input_hw``; a manifest without it is a square export)."""
        recorded = self.info.get("input_hw")
        if recorded is None:
            return (self.image_size, self.image_size)
        return (int(recorded[0]), int(recorded[1]))

    @property
    def num_classes(self) -> int:
        return int(self.config["num_classes"])

    @property
    def model_hash(self) -> str:
        """sha256 over the files' recorded hashes: names this export (e.g. its engine cache)."""
        listed = "\n".join(f"{name} {digest}" for name, digest in sorted(self.files.items()))
        return hashlib.sha256(listed.encode()).hexdigest()

    def to_json(self) -> str:
        data = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "source": self.source,
            "source_sha256": self.source_sha256,
            "opset": self.opset,
            "modalities": list(self.modalities),
            "levels": [list(level) for level in self.levels],
            "encoders": self.encoders,
            "fusion": self.fusion,
            "batched": self.batched,
            "files": self.files,
            "config": self.config,
            "classes": self.classes,
            "info": self.info,
            METADATA_KEY: self.input_encodings.to_dict(),
        }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def write(self) -> Path:
        path = self.root / MANIFEST
        path.write_text(self.to_json())
        return path

    @classmethod
    def read(cls, location: str | Path) -> Manifest:
        """Read the manifest of an exported folder (``location``: the folder or its manifest)."""
        path = Path(location).expanduser()
        if path.is_dir():
            path = path / MANIFEST
        if not path.is_file():
            raise ExportError(
                f"{str(path)!r} is not an exported model (no {MANIFEST}); export one with "
                "python -m sam_moelora_ros.export --adapter ADAPTER --out DIR"
            )
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ExportError(
                f"{path}: unreadable manifest ({exc}); export the model again"
            ) from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ExportError(f"{path}: not a {FORMAT} manifest; export the model again")
        if data.get("format_version") != FORMAT_VERSION:
            raise ExportError(
                f"{path}: format version {data.get('format_version')!r}, this package reads "
                f"{FORMAT_VERSION!r}; export the model again with this package"
            )
        try:
            modalities = tuple(data["modalities"])
            recorded = data.get(METADATA_KEY)
            contract = (
                DEFAULT_CONTRACT
                if recorded is None
                else InputContract.from_dict(recorded, f"{path} {METADATA_KEY!r}")
            )
        except (EncodingError, KeyError, TypeError) as exc:
            raise ExportError(f"{path}: {exc}; export the model again") from exc
        try:
            manifest = cls(
                root=path.parent,
                config=dict(data["config"]),
                classes=list(data["classes"]),
                source=str(data["source"]),
                source_sha256=str(data["source_sha256"]),
                opset=int(data["opset"]),
                modalities=tuple(data["modalities"]),
                levels=tuple((int(c), int(h), int(w)) for c, h, w in data["levels"]),
                encoders={str(k): str(v) for k, v in data["encoders"].items()},
                fusion=str(data["fusion"]),
                files={str(k): str(v) for k, v in data["files"].items()},
                info=dict(data.get("info", {})),
                batched=str(data.get("batched", "")),
                input_encodings=contract.restrict(modalities),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ExportError(
                f"{path}: incomplete manifest ({exc!r}); export the model again"
            ) from exc
        manifest.check()
        return manifest

    def check(self) -> None:
        """The manifest is consistent on its own: known modalities, one encoder per modality,
        every graph listed, every listed name a file inside the folder (:class:`ExportError`
        naming what is wrong otherwise)."""
        where = self.root / MANIFEST
        mods = list(self.modalities)
        unknown = [m for m in mods if m not in MODALITIES]
        if not mods or unknown or len(set(mods)) != len(mods):
            raise ExportError(
                f"{where}: modalities {mods} must be distinct names from {list(MODALITIES)}; "
                "export the model again"
            )
        if list(self.config.get("modalities", mods)) != mods:
            raise ExportError(
                f"{where}: modalities {mods} differ from the config's "
                f"{list(self.config.get('modalities', []))}; export the model again"
            )
        if set(self.encoders) != set(mods):
            raise ExportError(
                f"{where}: encoders for {sorted(self.encoders)}, modalities {mods}; "
                "export the model again"
            )
        if not self.levels:
            raise ExportError(f"{where}: no feature levels; export the model again")
        graphs = [*self.encoders.values(), self.fusion, *([self.batched] if self.batched else [])]
        unlisted = sorted(set(graphs) - set(self.files))
        if unlisted:
            raise ExportError(
                f"{where}: graph(s) {unlisted} are not listed with a hash in 'files'; "
                "export the model again"
            )
        root = self.root.resolve()
        for name in self.files:
            inside = (self.root / name).resolve()
            if Path(name).is_absolute() or ".." in Path(name).parts or root not in inside.parents:
                raise ExportError(
                    f"{where}: file {name!r} is not inside the folder; an export names only "
                    "its own files, export the model again"
                )

    def verify_files(self) -> None:
        """Every listed file exists and has its recorded sha256 (a truncated copy is refused), and
        every file ONNX Runtime could load from the folder (:data:`LOADABLE_SUFFIXES`) is listed."""
        stray = sorted(
            p.name
            for p in self.root.iterdir()
            if p.suffix in LOADABLE_SUFFIXES and p.is_file() and p.name not in self.files
        )
        if stray:
            raise ExportError(
                f"{self.root}: {stray} not listed in {MANIFEST} (no hash to check them by); "
                "remove them, or export the model again into an empty folder"
            )
        for name, digest in sorted(self.files.items()):
            path = self.root / name
            if not path.is_file():
                raise ExportError(f"{self.root}: {name} is missing; copy the whole folder")
            actual = sha256_file(path)
            if actual != digest:
                raise ExportError(
                    f"{path}: sha256 {actual[:12]}... differs from the manifest's {digest[:12]}... "
                    "(a partial copy, or a file from another export); copy the folder again"
                )

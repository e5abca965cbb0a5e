"""Typed model configuration; :mod:`.presets` holds the named architectures it starts from.

A :class:`ModelConfig` fully determines the architecture: it is stored in every adapter file's
metadata, so an adapter can only be loaded into the model it was trained with. Configs round-trip
through plain dicts, JSON and YAML; every value is validated and a bad one raises
:class:`~sam_moelora_ros.model.errors.ModelConfigError` naming the field.

Choices the paper leaves open (written down here; docs/method.md, "The parts, and what this
package chose"):

* ``tap_layers``: the encoder depths fused for multi-scale prediction. For SAM 1's ViT we tap
  the outputs of four evenly spaced blocks (vit_b: 3, 6, 9, 12 in 1-based numbering, the blocks
  with global attention) and turn them into a 4-level pyramid at strides 4, 8, 16 and 32.
  SAM 2's Hiera is multi-scale already: its three FPN levels are fused and ``tap_layers`` is
  empty.
* ``lora_rank``: 16 for the ViT presets (keeps vit_b's trainable share under 10%), 32 for the
  Hiera presets (as the paper's Hiera-B+), 8 for ``tiny``, 4 for ``hiera_tiny``. ``lora_alpha``
  equals the rank in every preset (scale 1).
* ``fusion``: ``both`` (the paper: average stream + router-weighted stream), or the ablations
  ``average`` and ``routed``.
* ``router_scores``: ``sigmoid`` (the paper's bounded scores; what every adapter written before
  the field existed uses, so it is the default) or ``linear`` (unbounded, zero-initialised
  scores: weights can reach near 0 and near 1; :mod:`.router`).
* ``input_geometry``: ``letterbox`` (every frame padded to the ``image_size`` square; the default,
  and what older adapters were trained with) or ``content`` (the encoder sees only the content,
  padded to a multiple of two patches, with its position embeddings interpolated to that grid;
  SAM 1 ViT only; :mod:`.preprocess`).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from .. import MODALITIES
from ..files import regular_file_problem
from ..safe_yaml import load_yaml
from .errors import ModelConfigError
from .presets import preset_values

FUSION_MODES = ("both", "average", "routed")
ROUTER_SCORES = ("sigmoid", "linear")
INPUT_GEOMETRIES = ("letterbox", "content")
INT_LIMITS: dict[str, int] = {
    "image_size": 2048,
    "patch_size": 64,
    "embed_dim": 8192,
    "depth": 256,
    "num_heads": 256,
    "window_size": 1024,
    "out_chans": 8192,
    "num_classes": 65536,
    "lora_rank": 4096,
    "pyramid_dim": 8192,
    "aux_dim": 8192,
    "decoder_depth": 64,
    "decoder_heads": 256,
    "decoder_mlp_dim": 65536,
}
"""Largest accepted value of each integer field: several times the largest preset's (vit_h,
hiera_l: image 1024, depth 48, width 1280), far below what would exhaust memory by itself. A
config comes from an adapter file's metadata, i.e. from disk: ``depth: 1000000`` must be refused
naming the field, not allocated."""
FLOAT_LIMITS: dict[str, tuple[float, float]] = {
    "mlp_ratio": (0.0, 64.0),
    "lora_alpha": (0.0, 65536.0),
    "aux_loss_weight": (0.0, 1000.0),
}
"""``(low, high)`` of each float field; finite values only (low is exclusive except for
``aux_loss_weight``, which may be 0). A ``lora_alpha`` of 1e30 or Infinity would scale the experts
into non-finite weights."""
TUPLE_LIMIT = 1024
"""Largest value in the integer lists (indices, Hiera stage sizes, window and grid sizes)."""
LORA_TARGETS = ("q", "k", "v")
BACKBONES = ("sam_vit", "sam2_hiera")
CONFIG_FORMAT_VERSION = 1
INT_TUPLES = (
    "global_attn_indexes",
    "tap_layers",
    "hiera_stages",
    "hiera_window_spec",
    "hiera_pos_embed_size",
)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a MoE-LoRA SAM segmentor.

    Encoder fields mirror ``segment_anything``'s ``ImageEncoderViT`` arguments (``sam_vit``) or
    ``sam2``'s ``Hiera`` trunk + ``FpnNeck`` (``sam2_hiera``: ``embed_dim``/``num_heads`` are the
    first stage's, ``global_attn_indexes`` are Hiera's ``global_att_blocks``, ``out_chans`` the
    FPN width), so that official checkpoints load key for key.
    """

    name: str = "tiny"
    backbone: str = "sam_vit"
    # Frozen SAM ViT image encoder.
    image_size: int = 256
    patch_size: int = 16
    embed_dim: int = 192
    depth: int = 4
    num_heads: int = 3
    mlp_ratio: float = 4.0
    window_size: int = 8
    global_attn_indexes: tuple[int, ...] = (1, 3)
    out_chans: int = 128
    # SAM 2 Hiera only (backbone "sam2_hiera"); empty for SAM 1's ViT.
    hiera_stages: tuple[int, ...] = ()
    hiera_window_spec: tuple[int, ...] = ()
    hiera_pos_embed_size: tuple[int, ...] = ()
    # Task.
    num_classes: int = 25
    modalities: tuple[str, ...] = MODALITIES
    # Mixture of LoRA experts (one expert per modality on the listed attention projections).
    lora_rank: int = 8
    lora_alpha: float = 8.0
    lora_targets: tuple[str, ...] = ("q", "v")
    # Multi-scale fusion and heads.
    tap_layers: tuple[int, ...] = (0, 1, 2, 3)
    fusion: str = "both"
    pyramid_dim: int = 64
    aux_dim: int = 64
    decoder_depth: int = 2
    decoder_heads: int = 4
    decoder_mlp_dim: int = 512
    aux_loss_weight: float = 0.4
    # Added later: the defaults are the behaviour of adapters written before the fields existed.
    router_scores: str = "sigmoid"
    input_geometry: str = "letterbox"

    def __post_init__(self) -> None:
        # Normalise sequences (YAML/JSON give lists) so configs compare and hash equal.
        sequences = (
            "global_attn_indexes",
            "modalities",
            "lora_targets",
            "tap_layers",
            "hiera_stages",
            "hiera_window_spec",
            "hiera_pos_embed_size",
        )
        for name in sequences:
            value = getattr(self, name)
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise ModelConfigError(f"ModelConfig.{name} must be a list, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise :class:`ModelConfigError` naming the first invalid field."""

        def fail(name: str, problem: str) -> None:
            raise ModelConfigError(f"ModelConfig.{name}: {problem} (got {getattr(self, name)!r})")

        if self.backbone not in BACKBONES:
            fail("backbone", f"must be one of {list(BACKBONES)}")
        for name, limit in INT_LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                fail(name, "must be a positive integer")
            if value > limit:
                fail(name, f"must be at most {limit} (a larger value cannot be a real model)")
        for name, (low, high) in FLOAT_LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                fail(name, "must be a number")
            low_ok = value >= low if name == "aux_loss_weight" else value > low
            if not (math.isfinite(value) and low_ok and value <= high):
                bound = "[" if name == "aux_loss_weight" else "("
                fail(name, f"must be a finite number in {bound}{low:g}, {high:g}]")
        for name in INT_TUPLES:
            if any(
                isinstance(v, bool) or not isinstance(v, int) or abs(v) > TUPLE_LIMIT
                for v in getattr(self, name)
            ):
                fail(name, f"must hold integers of at most {TUPLE_LIMIT}")
        if self.backbone == "sam_vit":
            self._validate_vit(fail)
        else:
            self._validate_hiera(fail)
        if self.embed_dim % self.num_heads:
            fail("embed_dim", f"must be divisible by num_heads={self.num_heads}")
        if self.out_chans % self.decoder_heads or self.out_chans % 8:
            fail("out_chans", f"must be divisible by 8 and by decoder_heads={self.decoder_heads}")
        if any(not 0 <= i < self.depth for i in self.global_attn_indexes):
            fail("global_attn_indexes", f"every index must be in [0, depth={self.depth})")
        if not self.modalities:
            fail("modalities", "needs at least one modality")
        if len(set(self.modalities)) != len(self.modalities):
            fail("modalities", "must not repeat a modality")
        if any(not isinstance(m, str) or not m.isidentifier() for m in self.modalities):
            fail("modalities", "names must be identifiers such as 'rgb' or 'lidar'")
        if not self.lora_targets or any(t not in LORA_TARGETS for t in self.lora_targets):
            fail("lora_targets", f"must be a non-empty subset of {list(LORA_TARGETS)}")
        if self.fusion not in FUSION_MODES:
            fail("fusion", f"must be one of {list(FUSION_MODES)}")
        if self.router_scores not in ROUTER_SCORES:
            fail("router_scores", f"must be one of {list(ROUTER_SCORES)}")
        if self.input_geometry not in INPUT_GEOMETRIES:
            fail("input_geometry", f"must be one of {list(INPUT_GEOMETRIES)}")
        if self.input_geometry == "content" and self.backbone != "sam_vit":
            fail("input_geometry", "content is supported by the sam_vit backbone only")

    def _validate_vit(self, fail: Callable[[str, str], None]) -> None:
        if self.image_size % self.patch_size:
            fail("image_size", f"must be a multiple of patch_size={self.patch_size}")
        if (self.image_size // self.patch_size) % 2:
            fail("image_size", "image_size / patch_size must be even (the pyramid pools by 2)")
        if len(self.tap_layers) != 4:
            fail("tap_layers", "needs exactly 4 block indices (one per pyramid level)")
        if list(self.tap_layers) != sorted(set(self.tap_layers)):
            fail("tap_layers", "must be strictly increasing")
        if any(not 0 <= i < self.depth for i in self.tap_layers):
            fail("tap_layers", f"every index must be in [0, depth={self.depth})")
        for name in ("hiera_stages", "hiera_window_spec", "hiera_pos_embed_size"):
            if getattr(self, name):
                fail(name, "is only used by the sam2_hiera backbone; leave it empty for sam_vit")

    def _validate_hiera(self, fail: Callable[[str, str], None]) -> None:
        def positive_ints(name: str, length: int) -> None:
            value = getattr(self, name)
            if len(value) != length or any(
                isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in value
            ):
                fail(name, f"needs {length} positive integers for the sam2_hiera backbone")

        positive_ints("hiera_stages", 4)
        positive_ints("hiera_window_spec", 4)
        positive_ints("hiera_pos_embed_size", 2)
        if self.depth != sum(self.hiera_stages):
            fail("depth", f"must equal sum(hiera_stages) = {sum(self.hiera_stages)}")
        tile = 4 * self.hiera_window_spec[0]
        if self.image_size % 32 or self.image_size % tile:
            fail("image_size", f"must be a multiple of 32 and of 4 * hiera_window_spec[0] = {tile}")
        if self.tap_layers:
            fail("tap_layers", "must be empty for sam2_hiera (its FPN levels are fused)")

    # ------------------------------------------------------------------ derived values
    @property
    def grid_size(self) -> int:
        """Tokens per side of the encoder's feature map."""
        return self.image_size // self.patch_size

    @property
    def num_levels(self) -> int:
        """Feature levels the router fuses: 4 ViT taps, or Hiera's 3 FPN levels (scalp 1)."""
        return 4 if self.backbone == "sam_vit" else 3

    @property
    def lora_scale(self) -> float:
        """LoRA's ``alpha / r`` scaling."""
        return self.lora_alpha / self.lora_rank

    # ------------------------------------------------------------------ presets
    @classmethod
    def preset(
        cls,
        name: str,
        num_classes: int = 25,
        modalities: Sequence[str] = MODALITIES,
        **overrides: Any,
    ) -> ModelConfig:
        """A named architecture (a key of :data:`~.presets.PRESETS`) for a task.

        An unknown ``name`` raises :class:`ModelConfigError` listing the known presets.
        """
        values = {**preset_values(name), "name": name, "num_classes": num_classes}
        values["modalities"] = modalities if isinstance(modalities, str) else tuple(modalities)
        values.update(overrides)
        return cls.from_dict(values)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists for tuples) with a format version, safe for JSON and YAML."""
        out: dict[str, Any] = {"format_version": CONFIG_FORMAT_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Build from :meth:`to_dict` output; unknown keys are an error naming them."""
        if not isinstance(data, Mapping):
            raise ModelConfigError(f"a model config must be a mapping, got {type(data).__name__}")
        values = dict(data)
        version = values.pop("format_version", CONFIG_FORMAT_VERSION)
        if version != CONFIG_FORMAT_VERSION:
            raise ModelConfigError(
                f"model config format_version {version} is not supported "
                f"(this package reads version {CONFIG_FORMAT_VERSION})"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ModelConfigError(
                f"unknown ModelConfig field(s) {unknown}; known fields: {sorted(known)}"
            )
        try:
            return cls(**values)
        except TypeError as exc:  # e.g. a list where a number belongs
            raise ModelConfigError(f"invalid ModelConfig: {exc}") from exc

    def to_json(self) -> str:
        """Sorted, compact JSON (the adapter-file metadata form)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelConfigError(f"model config is not valid JSON: {exc}") from exc
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        """Write the config as YAML (``.yaml``/``.yml``) or JSON (anything else)."""
        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=True))
        else:
            path.write_text(json.dumps(self.to_dict(), sort_keys=True, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ModelConfig:
        """Read a YAML or JSON config file written by :meth:`save` (or by hand)."""
        path = Path(path)
        problem = regular_file_problem(path)
        if problem is not None and path.exists():  # a FIFO would block read_text() forever
            raise ModelConfigError(f"cannot read model config {problem}")
        try:
            text = path.read_text()
        except OSError as exc:
            raise ModelConfigError(f"cannot read model config {path}: {exc}") from exc
        try:
            data = load_yaml(text)  # YAML is a superset of JSON
        except yaml.YAMLError as exc:
            raise ModelConfigError(f"model config {path} is not valid YAML/JSON: {exc}") from exc
        try:
            return cls.from_dict(data)
        except ModelConfigError as exc:
            raise ModelConfigError(f"{path}: {exc}") from exc

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def differences(self, other: ModelConfig) -> dict[str, tuple[Any, Any]]:
        """Fields whose values differ: ``{field: (self_value, other_value)}``."""
        return {
            f.name: (getattr(self, f.name), getattr(other, f.name))
            for f in fields(self)
            if f.compare and getattr(self, f.name) != getattr(other, f.name)
        }

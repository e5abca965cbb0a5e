"""Typed training configuration: YAML in, validated dataclasses out, errors that name the field.

A training run is fully described by one YAML file with five sections (``model``, ``data``,
``optim``, ``loss``, ``dropout``, ``run``); command-line overrides use dotted names
(``optim.lr=1e-3 run.seed=3``) and YAML syntax for values. Every value is checked up front, so a
typo fails in the first second of a run, not after an hour of training, and the message says
which field (``optim.lr: must be > 0 (got -1)``). The resolved config is written beside the
checkpoints (``config.yaml``), which is what ``--resume`` compares against.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, cast

import yaml

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.errors import SamMoeLoraError
from sam_moelora_ros.files import regular_file_problem
from sam_moelora_ros.model import PRESETS, ModelConfig, ModelConfigError
from sam_moelora_ros.safe_yaml import load_yaml, load_yaml_file

AMP_MODES = ("none", "bf16", "fp16", "auto")
STEM_INITS = ("identity", "standardise")
CROP_VERTICAL = ("random", "keep")
DATASETS = ("deliver", "mcubes", "muses")


class TrainConfigError(SamMoeLoraError, ValueError):
    """A training config value is invalid; the message names the field (``section.key``)."""


@dataclass(frozen=True)
class ModelSection:
    """Which architecture to train. ``overrides`` are any other :class:`ModelConfig` fields."""

    preset: str = "tiny"
    fusion: str = "both"
    modalities: tuple[str, ...] = MODALITIES
    num_classes: int = 25
    image_size: int | None = None
    sam_checkpoint: str | None = None
    # Pretraining (``training.pretrain``): the image encoder itself is trained, on RGB alone, and
    # the LoRA experts stay at zero; the adapter stage later freezes the result.
    train_encoder: bool = False
    # ``standardise``: each non-RGB stem starts as (x - mean) / std of its modality on the
    # training split (training.standardise), so the frozen encoder sees it on RGB's scale.
    stem_init: str = "identity"
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataSection:
    """Where the samples come from (the reader is ``sam_moelora_ros.datasets.build_dataset``)."""

    dataset: str = "deliver"
    root: str = "data/synthetic"
    val_root: str | None = None
    train_split: str = "train"
    val_split: str = "val"
    conditions: tuple[str, ...] | None = None
    cases: tuple[str, ...] | None = None
    scale_range: tuple[float, float] = (0.5, 2.0)
    num_workers: int = 0
    max_val_samples: int | None = None
    depth_source: str = "hha"
    """DELIVER only: ``hha`` (DELIVER's loader) or ``depth`` (decoded to metres, encoded
    ``linear``: the encoding the node computes; see docs/training.md)."""
    depth_max_range: float = 80.0
    """DELIVER with ``depth_source: depth``: metres at which the depth images saturate."""
    cache_mb: int = 0  # keep decoded training frames in memory when they fit this budget
    crop_vertical: str = "random"  # "keep": crops keep the content's vertical position


@dataclass(frozen=True)
class OptimSection:
    """AdamW + linear warm-up + poly decay, stepped per optimizer iteration."""

    lr: float = 6e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int = 4
    accumulate: int = 1
    epochs: int = 200
    max_steps: int | None = None
    warmup_epochs: float = 10.0
    warmup_steps: int | None = None
    warmup_ratio: float = 1e-6
    power: float = 0.9
    grad_clip: float | None = None
    router_lr_mult: float = 1.0  # the routers' learning rate is lr times this


@dataclass(frozen=True)
class LossSection:
    """CE on both heads; OHEM keeps pixels whose true-class probability is below the threshold."""

    ohem: bool = False
    ohem_thresh: float = 0.7
    ohem_min_kept: int = 100_000
    aux_weight: float | None = None
    resolution: float = 1.0  # the loss is computed at this fraction of the input size


@dataclass(frozen=True)
class DropoutSection:
    """Modality dropout (see :func:`training.dropout.sample_modalities`)."""

    p: float = 0.3
    p_rgb: float = 0.1


@dataclass(frozen=True)
class RunSection:
    """Bookkeeping: output folder, seed, precision, how often to log/validate/checkpoint."""

    out: str = "runs/default"
    seed: int = 0
    device: str = "auto"
    amp: str = "none"
    log_every: int = 10
    val_every: int = 0
    ckpt_every: int = 0
    val_subsets: bool = False
    progress: bool = True
    threads: int | None = None
    tensorboard: bool = False  # also write TensorBoard event files (needs the tensorboard package)


@dataclass(frozen=True)
class TrainConfig:
    """The whole run. Build with :meth:`load` / :meth:`from_dict`; sections are validated."""

    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    loss: LossSection = field(default_factory=LossSection)
    dropout: DropoutSection = field(default_factory=DropoutSection)
    run: RunSection = field(default_factory=RunSection)

    # ------------------------------------------------------------------ building
    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TrainConfig:
        """Build and validate; unknown sections or keys are errors naming them."""
        data = {} if data is None else data
        if not isinstance(data, Mapping):
            kind = type(data).__name__
            raise TrainConfigError(f"a training config must be a mapping, got {kind}")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise TrainConfigError(f"unknown config section(s) {unknown}; known: {sorted(known)}")
        sections = {}
        for name, f in known.items():
            factory = cast(Callable[[], Any], f.default_factory)
            section_cls = factory().__class__
            sections[name] = _build_section(name, section_cls, data.get(name) or {})
        cfg = cls(**sections)
        cfg.validate()
        return cfg

    @classmethod
    def load(cls, path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
        """Read a YAML file and apply ``section.key=value`` overrides."""
        path = Path(path)
        problem = regular_file_problem(path)  # a FIFO would block read_text() forever
        if problem is not None and path.exists():
            raise TrainConfigError(f"cannot read training config {problem}")
        try:
            data = load_yaml_file(path) or {}
        except (OSError, UnicodeDecodeError) as exc:
            raise TrainConfigError(f"cannot read training config {path}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise TrainConfigError(f"training config {path} is not valid YAML: {exc}") from exc
        data = apply_overrides(data, overrides)
        try:
            return cls.from_dict(data)
        except TrainConfigError as exc:
            raise TrainConfigError(f"{path}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists for tuples) that :meth:`from_dict` reads back."""
        return _plain(dataclasses.asdict(self))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    # ------------------------------------------------------------------ derived
    def model_config(self) -> ModelConfig:
        """The :class:`ModelConfig` this run trains (preset + fusion/modalities/overrides)."""
        m = self.model
        extra = dict(m.overrides)
        if m.image_size is not None:
            extra["image_size"] = m.image_size
        try:
            return ModelConfig.preset(
                m.preset,
                num_classes=m.num_classes,
                modalities=m.modalities,
                fusion=m.fusion,
                **extra,
            )
        except ModelConfigError as exc:
            raise TrainConfigError(f"model: {exc}") from exc

    @property
    def aux_weight(self) -> float:
        """Loss weight of the auxiliary head (the model config's unless the loss section says)."""
        if self.loss.aux_weight is not None:
            return self.loss.aux_weight
        return self.model_config().aux_loss_weight

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise :class:`TrainConfigError` naming the first invalid ``section.key``."""

        def fail(section: str, key: str, problem: str) -> None:
            value = getattr(getattr(self, section), key)
            raise TrainConfigError(f"{section}.{key}: {problem} (got {value!r})")

        m, d, o, lo, dr, r = self.model, self.data, self.optim, self.loss, self.dropout, self.run
        if m.preset not in PRESETS:
            fail("model", "preset", f"must be one of {sorted(PRESETS)}")
        if not m.modalities:
            fail("model", "modalities", f"must name at least one modality, e.g. {list(MODALITIES)}")
        self.model_config()  # field-level checks of the architecture itself
        if m.train_encoder and tuple(m.modalities) != ("rgb",):
            fail(
                "model",
                "modalities",
                "must be [rgb] with model.train_encoder: true (the encoder is pretrained on RGB "
                "alone, as SAM's was; the other modalities get LoRA experts afterwards)",
            )
        if d.dataset not in DATASETS:
            fail("data", "dataset", f"must be one of {list(DATASETS)}")
        if (
            len(d.scale_range) != 2
            or not all(_number(s) for s in d.scale_range)
            or not 0 < d.scale_range[0] <= d.scale_range[1]
        ):
            fail("data", "scale_range", "must be [min, max] finite numbers with 0 < min <= max")
        _check_int(fail, "data", "num_workers", d.num_workers, minimum=0)
        _check_int(fail, "data", "cache_mb", d.cache_mb, minimum=0)
        if d.crop_vertical not in CROP_VERTICAL:
            fail("data", "crop_vertical", f"must be one of {list(CROP_VERTICAL)}")
        if m.stem_init not in STEM_INITS:
            fail("model", "stem_init", f"must be one of {list(STEM_INITS)}")
        if not _number(o.router_lr_mult) or o.router_lr_mult <= 0:
            fail("optim", "router_lr_mult", "must be a finite number > 0")
        if not _number(lo.resolution) or not 0 < lo.resolution <= 1:
            fail("loss", "resolution", "must be a fraction in (0, 1]")
        if d.max_val_samples is not None:
            _check_int(fail, "data", "max_val_samples", d.max_val_samples, minimum=1)
        for key in ("lr", "warmup_ratio", "power"):
            if not _number(getattr(o, key)) or getattr(o, key) <= 0:
                fail("optim", key, "must be a finite number > 0")
        if not _number(o.weight_decay) or o.weight_decay < 0:
            fail("optim", "weight_decay", "must be a finite number >= 0")
        if len(o.betas) != 2 or not all(_number(b) and 0 <= b < 1 for b in o.betas):
            fail("optim", "betas", "must be two finite numbers in [0, 1)")
        _check_int(fail, "optim", "batch_size", o.batch_size, minimum=1)
        _check_int(fail, "optim", "accumulate", o.accumulate, minimum=1)
        _check_int(fail, "optim", "epochs", o.epochs, minimum=1)
        if o.max_steps is not None:
            _check_int(fail, "optim", "max_steps", o.max_steps, minimum=1)
        if o.warmup_steps is not None:
            _check_int(fail, "optim", "warmup_steps", o.warmup_steps, minimum=0)
        if not _number(o.warmup_epochs) or o.warmup_epochs < 0:
            fail("optim", "warmup_epochs", "must be a finite number >= 0")
        if o.grad_clip is not None and (not _number(o.grad_clip) or o.grad_clip <= 0):
            fail("optim", "grad_clip", "must be a finite number > 0 or null")
        if not _number(lo.ohem_thresh) or not 0 < lo.ohem_thresh <= 1:
            fail("loss", "ohem_thresh", "must be in (0, 1]")
        _check_int(fail, "loss", "ohem_min_kept", lo.ohem_min_kept, minimum=0)
        if lo.aux_weight is not None and (not _number(lo.aux_weight) or lo.aux_weight < 0):
            fail("loss", "aux_weight", "must be a finite number >= 0 or null")
        for key in ("p", "p_rgb"):
            if not _number(getattr(dr, key)) or not 0 <= getattr(dr, key) < 1:
                fail("dropout", key, "must be a probability in [0, 1)")
        if r.amp not in AMP_MODES:
            fail("run", "amp", f"must be one of {list(AMP_MODES)}")
        for key in ("log_every", "val_every", "ckpt_every"):
            _check_int(fail, "run", key, getattr(r, key), minimum=0)
        if r.threads is not None:
            _check_int(fail, "run", "threads", r.threads, minimum=1)
        if not isinstance(r.tensorboard, bool):
            fail("run", "tensorboard", "must be true or false")
        _check_int(fail, "run", "seed", r.seed, minimum=0)


def _number(value: Any) -> bool:
    """A finite int or float (YAML's ``.inf`` / ``.nan`` would pass a range check and then train
    to NaN, so they are refused here with the field's name)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_int(fail: Any, section: str, key: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        fail(section, key, f"must be an integer >= {minimum}")


_TUPLE_FIELDS = {"modalities", "conditions", "cases", "scale_range", "betas"}


def _build_section(name: str, section_cls: type, values: Any) -> Any:
    if not isinstance(values, Mapping):
        raise TrainConfigError(f"{name}: must be a mapping of keys, got {values!r}")
    known = {f.name for f in fields(section_cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TrainConfigError(f"{name}: unknown key(s) {unknown}; known keys: {sorted(known)}")
    floats = {f.name for f in fields(section_cls) if "float" in str(f.type)}
    clean = {}
    for key, value in values.items():
        if key in floats:
            value = _yaml_float(value)
        if key in _TUPLE_FIELDS and value is not None:
            if isinstance(value, str) or not isinstance(value, Sequence):
                raise TrainConfigError(f"{name}.{key}: must be a list (got {value!r})")
            value = tuple(value)
        if key == "overrides" and not isinstance(value, Mapping):
            raise TrainConfigError(f"{name}.{key}: must be a mapping (got {value!r})")
        clean[key] = value
    return section_cls(**clean)


def _yaml_float(value: Any) -> Any:
    """YAML 1.1 reads ``1e-3`` (no dot) as a string; accept it where a float belongs."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, (list, tuple)):
        return [_yaml_float(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with ``section.key=value`` overrides (values parsed as YAML)."""
    out: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    for item in overrides:
        if "=" not in item:
            raise TrainConfigError(f"override {item!r} must look like section.key=value")
        dotted, raw = item.split("=", 1)
        parts = dotted.strip().split(".")
        if len(parts) < 2 or not all(parts):
            raise TrainConfigError(f"override {item!r}: name a field as section.key")
        try:
            value = load_yaml(raw)
        except yaml.YAMLError as exc:
            raise TrainConfigError(f"override {item!r}: value is not valid YAML ({exc})") from exc
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, Mapping) else {}
            node = node[part]
        node[parts[-1]] = value
    return out

"""The training loop: frozen SAM encoder, MoE-LoRA + heads trained with AdamW, DDP-ready.

One :class:`Trainer` per process. Per optimizer step it runs ``optim.accumulate`` micro-batches;
each micro-batch sees the modality subset drawn by
:func:`~training.dropout.sample_modalities` (same draw on every rank: one shared generator
seed), computes ``CE(main) + aux_weight * CE(aux)`` (ignore 255, OHEM optional) at
``loss.resolution`` of the input size, under autocast (``run.amp``, :func:`~.builders.amp_dtype`),
and back-propagates (DDP's gradient all-reduce only on the last micro-batch). The learning
rate follows :func:`~training.optim.lr_factor` per optimizer step.

Checkpoints (rank 0 only), under ``<out>/checkpoints/``:

* ``last.safetensors`` / ``best.safetensors``: adapters written by ``save_adapter``; when no
  official SAM checkpoint was loaded (the ``tiny`` preset) they carry the frozen encoder too, so
  they are complete models the node can load;
* ``last_state.safetensors``: optimizer, step/epoch/position in the epoch, best score, the
  dropout generator and every rank's torch RNG state (see :mod:`training.state`; no pickle).
* ``step_<N>/``: the ``last`` pair of step N with a manifest, committed in one rename
  (:mod:`training.checkpoints`); the two files above are its copies, and ``--resume`` reads the
  newest complete step folder.

Checkpoints are only taken at optimizer-step boundaries (no pending gradients), and the data
stream is a pure function of ``(seed, epoch, position)`` (:mod:`training.data`), so ``--resume``
continues bit-for-bit on the same hardware.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm import tqdm

from sam_moelora_ros.classes import IGNORE_INDEX
from sam_moelora_ros.errors import SamMoeLoraError
from sam_moelora_ros.evaluation import modality_subsets
from sam_moelora_ros.model import count_parameters, load_adapter, save_adapter

from . import distributed as D
from .builders import amp_dtype, build_data, build_model, optimizer_for, wrap_ddp
from .checkpoints import resume_point, write_checkpoint
from .config import TrainConfig, TrainConfigError
from .data import dataset_encodings
from .dropout import sample_modalities
from .losses import segmentation_loss
from .optim import lr_factor, set_lr
from .resume import check_resume_config
from .seeding import modality_generator, seed_rank
from .state import global_rng_state, set_global_rng_state
from .tensorboard import INSTALL_HINT, EventWriter
from .tensorboard import available as tensorboard_available
from .validate import run_inference, summarise


class TrainingError(SamMoeLoraError, RuntimeError):
    """Training cannot go on without producing garbage: a non-finite loss, unusable labels.

    Raised before anything of the failing step is written, so every checkpoint on disk is one
    that was finite when saved.
    """


def loss_size(size_hw: tuple[int, ...], fraction: float) -> tuple[int, int]:
    """The ``H x W`` the loss is computed at: ``fraction`` of the input's (at least 1 pixel).

    The decoder predicts at stride 4, so half the input resolution loses almost nothing and
    saves the upsampling and cross-entropy over 4x the pixels (``loss.resolution``).
    """
    return (max(1, round(size_hw[0] * fraction)), max(1, round(size_hw[1] * fraction)))


def downsample_labels(target: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour ``B x H x W`` labels at ``size_hw`` (ignore pixels stay ignore)."""
    small = F.interpolate(target[:, None].float(), size=size_hw, mode="nearest-exact")
    return small[:, 0].to(target.dtype)


def check_labels(target: torch.Tensor, num_classes: int, names: Sequence[Any]) -> int:
    """Number of labelled pixels in ``target``; raise on ids that are neither a class nor ignore.

    ``F.cross_entropy`` would fail with a bare index error on the CPU and a device-side assert on
    a GPU; naming the samples lets the user find the bad label files.
    """
    valid = target != IGNORE_INDEX
    bad = valid & ((target < 0) | (target >= num_classes))
    if bool(bad.any()):
        rows = sorted({int(i) for i in bad.flatten(1).any(1).nonzero().flatten()})
        ids = sorted({int(v) for v in target[bad].unique()[:8]})
        where = ", ".join(str(names[i]) for i in rows if i < len(names)) or "this batch"
        raise TrainingError(
            f"label ids {ids} are outside 0..{num_classes - 1} (and not the ignore id "
            f"{IGNORE_INDEX}) in {where}; fix the label images or model.num_classes"
        )
    return int(valid.sum())


class Trainer:
    """Trains one run; ``train_set`` yields transformed samples (``inputs``, ``label``, ...).

    The parts (model, DDP, data, optimiser, precision) are built by :mod:`training.builders`;
    this class runs them: steps, validation, checkpoints, resume.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        train_set: torch.utils.data.Dataset,
        val_set: torch.utils.data.Dataset | None = None,
        info: D.DistInfo | None = None,
        out_dir: str | Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.info = info or D.DistInfo()
        self.device = self.info.device
        self.out = Path(out_dir or cfg.run.out)
        self.ckpt_dir = self.out / "checkpoints"
        if cfg.run.tensorboard and not tensorboard_available():
            raise TrainConfigError(
                f"run.tensorboard: true, but the tensorboard package is not installed; "
                f"{INSTALL_HINT}"
            )
        self.events: EventWriter | None = None  # TensorBoard, opened by the first log() (rank 0)
        self.model_cfg = cfg.model_config()
        data = build_data(cfg, train_set, val_set, self.info)  # checks the sizes first
        self.model, self.sam_loaded = build_model(cfg, self.device, train_set)
        self.model.input_encodings = dataset_encodings(train_set)  # recorded in every adapter
        self.ddp: Any = wrap_ddp(self.model, self.info)  # the model, or DDP around it
        self.optimizer = optimizer_for(cfg, self.model)
        self.amp_dtype = amp_dtype(cfg.run.amp, self.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.train_set, self.sampler, self.loader = data.train_set, data.sampler, data.loader
        self.val_loader = data.val_loader
        self.steps_per_epoch = data.steps_per_epoch
        o = cfg.optim
        self.total_steps = o.max_steps or o.epochs * self.steps_per_epoch
        self.warmup_steps = (
            o.warmup_steps
            if o.warmup_steps is not None
            else round(o.warmup_epochs * self.steps_per_epoch)
        )
        self.generator = modality_generator(cfg.run.seed)
        self.step = 0
        self.epoch = 0
        self.position = 0  # micro-batches of the current epoch already consumed
        self.best = -math.inf
        self.best_step = -1
        self.labelled_pixels = 0  # since the epoch started (see end_epoch)
        seed_rank(cfg.run.seed, self.info.rank)  # per-rank dropout layers

    # ------------------------------------------------------------------ helpers
    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def log(self, record: dict[str, Any]) -> None:
        if not self.info.is_main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        with (self.out / "metrics.jsonl").open("a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
        if self.cfg.run.tensorboard:  # the same record as scalars (training.tensorboard)
            if self.events is None:  # resumed: hide what an earlier run logged after step
                self.events = EventWriter(self.out, self.step + 1 if self.step else None)
            self.events.write(record)
            if record["kind"] == "end":
                self.events.close()
                self.events = None

    @property
    def include_backbone(self) -> bool:
        """Adapters carry the encoder when no official checkpoint can provide it (or when the
        encoder is what this run trains)."""
        return not self.sam_loaded or self.cfg.model.train_encoder

    def sync_buffers(self) -> None:
        """Copy rank 0's buffers (batch-norm statistics) to every rank.

        DDP broadcasts buffers at the start of each forward, so after the last forward each rank
        holds its own statistics; validation and checkpoints must all see rank 0's.
        """
        if self.info.enabled:
            for buffer in self.model.buffers():
                torch.distributed.broadcast(buffer, src=0)

    # ------------------------------------------------------------------ state
    def check_finite_weights(self) -> None:
        """Refuse to write a checkpoint holding NaN/Inf (a finite loss can still step into one)."""
        bad = [
            n
            for n, p in self.model.named_parameters()
            if p.requires_grad and not bool(torch.isfinite(p.detach()).all())
        ]
        if bad:
            raise TrainingError(
                f"after step {self.step} the trained weights hold NaN/Inf ({bad[0]}"
                f"{f' and {len(bad) - 1} more' if len(bad) > 1 else ''}); no checkpoint was "
                "written; lower optim.lr or set optim.grad_clip"
            )

    def save_checkpoint(self, name: str = "last") -> None:
        """Write the adapter and (for ``last``) the resumable state; rank 0 writes."""
        self.sync_buffers()
        rng = D.gather_tensors(torch.get_rng_state(), self.info)
        cuda_rng = None
        if self.device.type == "cuda":
            cuda_rng = D.gather_tensors(torch.cuda.get_rng_state(self.device), self.info)
        if self.info.is_main:
            self.check_finite_weights()
            if name != "last":
                self._write_adapter(self.ckpt_dir / f"{name}.safetensors")
            else:
                state = {
                    "step": self.step,
                    "epoch": self.epoch,
                    "position": self.position,
                    "best": self.best if math.isfinite(self.best) else None,
                    "best_step": self.best_step,
                    "world_size": self.info.world_size,
                    "config": self.cfg.to_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "scaler": self.scaler.state_dict(),
                    "generator": self.generator.get_state(),
                    "rng": global_rng_state(),
                    "rank_rng": rng,
                    "rank_cuda_rng": cuda_rng,
                }
                write_checkpoint(self.ckpt_dir, self.step, self._write_adapter, state)
        D.barrier(self.info)

    def _write_adapter(self, path: Path) -> None:
        save_adapter(self.model, path, self.include_backbone)

    def resume(self, path: str | Path) -> None:
        """Continue from ``path``: a run folder, its ``checkpoints/`` folder or a state file."""
        point = resume_point(path)  # the newest step whose adapter and state belong together
        for line in point.notes():
            print(line, file=sys.stderr)
        path, state = point.state_path, point.state
        if state["world_size"] != self.info.world_size:
            raise TrainConfigError(
                f"{path} was written by a {state['world_size']}-rank run; resuming on "
                f"{self.info.world_size} ranks would change the data order (use the same count)"
            )
        check_resume_config(path, state["config"], self.cfg, self.out)
        load_adapter(self.model, point.adapter)
        self.optimizer.load_state_dict(state["optimizer"])
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["generator"].to(torch.uint8))
        set_global_rng_state(state["rng"])
        torch.set_rng_state(state["rank_rng"][self.info.rank].to(torch.uint8))
        if state.get("rank_cuda_rng") and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rank_cuda_rng"][self.info.rank].to(torch.uint8))
        self.step, self.epoch, self.position = state["step"], state["epoch"], state["position"]
        self.best = state["best"] if state["best"] is not None else -math.inf
        self.best_step = state["best_step"]

    # ------------------------------------------------------------------ validation
    def validate(self) -> dict[str, Any]:
        """mIoU with all modalities (and every subset when ``run.val_subsets``)."""
        assert self.val_loader is not None
        self.sync_buffers()
        full = tuple(self.model_cfg.modalities)
        subsets = modality_subsets(full) if self.cfg.run.val_subsets else [full]
        result = run_inference(
            self.model,
            self.val_loader,
            subsets,
            self.model_cfg.num_classes,
            self.device,
            self.info,
            autocast=self.autocast,
            progress=self.cfg.run.progress,
        )
        summary = summarise(result, self.model_cfg.num_classes)
        record: dict[str, Any] = {"kind": "val", "step": self.step, "epoch": self.epoch}
        record["miou"] = summary[full]["miou"]
        record["per_condition"] = {
            c: 100.0 * cm.miou() for c, cm in summary[full]["per_condition"].items()
        }
        if self.cfg.run.val_subsets:
            record["subsets"] = {"+".join(s): e["miou"] for s, e in summary.items()}
        frames = sum(result["router_count"].values())
        if frames:  # mean router weight per modality, all sensors present (frames and levels)
            totals: dict[str, float] = {}
            for weights in result["router"].values():
                for m, levels in weights.items():
                    totals[m] = totals.get(m, 0.0) + sum(levels) / len(levels)
            record["router"] = {m: totals[m] / frames for m in sorted(totals)}
        return record

    # ------------------------------------------------------------------ training
    def train_step(self, batches: list[dict[str, Any]]) -> dict[str, float]:
        """One optimizer step over ``len(batches)`` micro-batches."""
        cfg = self.cfg
        lr = set_lr(
            self.optimizer,
            cfg.optim.lr,
            lr_factor(
                self.step,
                self.total_steps,
                self.warmup_steps,
                cfg.optim.warmup_ratio,
                cfg.optim.power,
            ),
        )
        self.optimizer.zero_grad(set_to_none=True)
        totals: dict[str, float] = {}
        for i, batch in enumerate(batches):
            kept = sample_modalities(
                self.model_cfg.modalities, cfg.dropout.p, cfg.dropout.p_rgb, self.generator
            )
            inputs = {m: batch["inputs"][m].to(self.device, non_blocking=True) for m in kept}
            target = batch["label"].to(self.device, non_blocking=True)
            self.labelled_pixels += check_labels(
                target, self.model_cfg.num_classes, batch.get("name", [])
            )
            sync = (
                self.ddp.no_sync()
                if self.info.enabled and i < len(batches) - 1
                else contextlib.nullcontext()
            )
            size = loss_size(tuple(target.shape[-2:]), cfg.loss.resolution)
            if size != tuple(target.shape[-2:]):
                target = downsample_labels(target, size)
            with sync:
                with self.autocast():
                    logits, extras = self.ddp(inputs, return_extras=True, output_size=size)
                loss, parts = segmentation_loss(
                    logits,
                    extras["aux_logits"],
                    target,
                    cfg.aux_weight,
                    cfg.loss.ohem,
                    cfg.loss.ohem_thresh,
                    cfg.loss.ohem_min_kept,
                )
                if not bool(torch.isfinite(loss.detach())):
                    raise TrainingError(
                        f"the loss is {float(loss.detach())} at step {self.step + 1} (epoch "
                        f"{self.epoch}); stopped before the update, nothing of this step was "
                        "written; lower optim.lr, set optim.grad_clip, or check the inputs and "
                        "the SAM checkpoint for NaN/Inf"
                    )
                self.scaler.scale(loss / len(batches)).backward()
            parts["loss"] = float(loss.detach())
            parts["modalities"] = len(kept)
            for k, v in parts.items():
                totals[k] = totals.get(k, 0.0) + v / len(batches)
        if cfg.optim.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            params = [p for p in self.model.parameters() if p.requires_grad]
            totals["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        totals["lr"] = lr
        return totals

    def end_epoch(self) -> None:
        """The one epoch rollover: next epoch, position 0; refuses an epoch with no labels.

        After an epoch without a single labelled pixel the loss was 0 on every step: stop.
        """
        if self.labelled_pixels == 0:
            raise TrainingError(
                f"no labelled pixel in a whole epoch of {self.cfg.data.dataset} data at "
                f"{self.cfg.data.root}: every label is the ignore id {IGNORE_INDEX}; check the "
                "label images (and data.conditions/cases) before training"
            )
        self.labelled_pixels = 0
        self.epoch, self.position = self.epoch + 1, 0

    def validate_and_keep_best(self) -> dict[str, Any]:
        """Validate, log, and write ``best.safetensors`` when the mIoU improved."""
        record = self.validate()
        self.log(record)
        if record["miou"] > self.best:
            self.best, self.best_step = record["miou"], self.step
            if self.info.is_main:
                self.check_finite_weights()
                save_adapter(self.model, self.ckpt_dir / "best.safetensors", self.include_backbone)
        return record

    def train(self, stop_at: int | None = None) -> dict[str, Any]:
        """Train until ``total_steps`` (or ``stop_at``, for tests and time-boxed runs)."""
        cfg = self.cfg
        stop = min(self.total_steps, stop_at) if stop_at is not None else self.total_steps
        if self.info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            cfg.save(self.out / "config.yaml")
            counts = count_parameters(self.model)
            self.log(
                {
                    "kind": "start",
                    "step": self.step,
                    "total_steps": self.total_steps,
                    "steps_per_epoch": self.steps_per_epoch,
                    "world_size": self.info.world_size,
                    "device": str(self.device),
                    "params": counts,
                }
            )
        val_every = cfg.run.val_every or self.steps_per_epoch
        ckpt_every = cfg.run.ckpt_every or val_every
        accum = cfg.optim.accumulate
        limit = self.steps_per_epoch * accum  # micro-batches used per epoch (rest skipped)
        bar = tqdm(
            total=stop,
            initial=self.step,
            desc="train",
            disable=not (cfg.run.progress and self.info.is_main),
            dynamic_ncols=True,
        )
        started, window = time.perf_counter(), []
        last_val: dict[str, Any] | None = None
        while self.step < stop:
            self.sampler.set_epoch(self.epoch)
            self.train_set.set_epoch(self.epoch)
            self.sampler.start = self.position * cfg.optim.batch_size
            pending: list[dict[str, Any]] = []
            for batch in self.loader:
                pending.append(batch)
                self.position += 1
                if len(pending) < accum:
                    continue
                parts = self.train_step(pending)
                pending = []
                window.append(parts["loss"])
                bar.update(1)
                bar.set_postfix(loss=f"{parts['loss']:.3f}", lr=f"{parts['lr']:.2e}")
                if cfg.run.log_every and self.step % cfg.run.log_every == 0:
                    rec = {"kind": "train", "step": self.step, "epoch": self.epoch, **parts}
                    rec["loss_avg"] = sum(window) / len(window)
                    rec["elapsed_s"] = time.perf_counter() - started
                    self.log(rec)
                    window = []
                epoch_over = self.position >= limit
                if epoch_over:
                    self.end_epoch()
                done = self.step >= stop
                if self.val_loader is not None and (self.step % val_every == 0 or done):
                    last_val = self.validate_and_keep_best()
                if self.step % ckpt_every == 0 or done:
                    self.save_checkpoint("last")
                if done or epoch_over:
                    break  # run over, or restart the loader at the new epoch
            else:  # drop_last and limit <= batches make this unreachable; never loop forever
                raise TrainingError(
                    f"the training loader ran dry at micro-batch {self.position} of epoch "
                    f"{self.epoch}, before the {limit} an epoch uses"
                )
        bar.close()
        summary = {
            "kind": "end",
            "step": self.step,
            "elapsed_s": time.perf_counter() - started,
            "best_miou": self.best if math.isfinite(self.best) else None,
            "best_step": self.best_step,
            "last_val": last_val,
        }
        self.log(summary)
        return summary

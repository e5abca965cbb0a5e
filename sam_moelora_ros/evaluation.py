"""Segmentation metrics: confusion matrix, IoU / mIoU, tables and a confusion-matrix plot.

Pure numpy (torch accepted as input, never required; no rclpy), so the training loop, the
evaluation script and tests share one implementation. The torch counting
(:func:`confusion_counts`) and the percent unit (:func:`percent`) live here too, once: torch is
only touched when a tensor is passed in, so importing this module does not import torch.

Conventions (those of mmseg and of DELIVER's evaluator, so our numbers compare with the
published tables):

* pixels whose target is ``ignore_index`` (or outside ``0..K-1``) are not counted;
* ``iou()[c] = TP / (TP + FP + FN)``, ``NaN`` when class ``c`` has no pixel in the target and
  none in the prediction (union 0: nothing to score);
* ``miou()`` = the mean over classes with a non-zero union, i.e. the NaN-mean of ``iou()``; a
  class that is predicted but absent from the ground truth counts with IoU 0 (a false alarm is
  an error), a class absent from both does not count;
* ``accuracy()`` = overall pixel accuracy over the counted pixels.

Matrix layout: ``matrix[t, p]`` = number of pixels with target ``t`` predicted as ``p`` (rows =
ground truth). Matrices add (``a + b``), which is how per-condition / per-subset totals are
accumulated and how DDP ranks are summed (``all_reduce`` of :meth:`ConfusionMatrix.to_tensor`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sam_moelora_ros.classes import IGNORE_INDEX

if TYPE_CHECKING:
    import torch


def _to_numpy(values: Any) -> np.ndarray:
    """numpy or torch (any device) -> numpy, without importing torch when not needed."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values)


def confusion_counts(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """``K x K`` int64 counts ``[target, pred]`` of two same-shape tensors, on their device.

    The torch twin of :meth:`ConfusionMatrix.update` (same ignore rules, same layout), and the
    one both it and the training validation loop use: the loop adds these per image on the GPU
    and copies the sums back once, instead of one device-to-host copy per image. ``pred`` must
    hold ids in ``0..K-1`` where the target is counted (not checked here: checking needs a
    device sync per call; :meth:`ConfusionMatrix.update` checks).
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred shape {tuple(pred.shape)} != target {tuple(target.shape)}")
    p, t = pred.reshape(-1).long(), target.reshape(-1).long()
    keep = (t != ignore_index) & (t >= 0) & (t < num_classes)
    index = t[keep] * num_classes + p[keep]
    return index.bincount(minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def percent(value: float | None) -> float:
    """A 0-1 metric as percent, the unit of the paper's tables; None and NaN give NaN."""
    return math.nan if value is None else 100.0 * float(value)


class ConfusionMatrix:
    """A ``K x K`` int64 confusion matrix with IoU/accuracy read-outs (see module docstring)."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        if num_classes <= 0:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def reset(self) -> None:
        self.matrix[...] = 0

    def update(self, pred: Any, target: Any) -> ConfusionMatrix:
        """Count ``pred`` against ``target`` (same shape, integer class ids; numpy or torch).

        ``pred`` must hold ids in ``0..K-1`` wherever the target is counted (argmax output
        does); anything else is a caller bug and raises. Returns ``self`` for chaining.
        """
        if hasattr(pred, "detach") and hasattr(target, "detach") and pred.device.type != "cpu":
            self._update_torch(pred, target)
            return self
        p, t = _to_numpy(pred), _to_numpy(target)
        if p.shape != t.shape:
            raise ValueError(f"pred shape {p.shape} != target shape {t.shape}")
        p, t = p.reshape(-1).astype(np.int64), t.reshape(-1).astype(np.int64)
        keep = (t != self.ignore_index) & (t >= 0) & (t < self.num_classes)
        p, t = p[keep], t[keep]
        if p.size and (p.min() < 0 or p.max() >= self.num_classes):
            raise ValueError(
                f"predictions must be class ids in 0..{self.num_classes - 1}, got values in "
                f"{p.min()}..{p.max()}; pass argmax over the class axis"
            )
        k = self.num_classes
        self.matrix += np.bincount(t * k + p, minlength=k * k).reshape(k, k)
        return self

    def _update_torch(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Same as :meth:`update`, counted on the tensors' device (one small copy back)."""
        if pred.shape != target.shape:
            raise ValueError(f"pred shape {tuple(pred.shape)} != target {tuple(target.shape)}")
        t = target.reshape(-1)
        counted = pred.reshape(-1)[(t != self.ignore_index) & (t >= 0) & (t < self.num_classes)]
        if counted.numel() and (int(counted.min()) < 0 or int(counted.max()) >= self.num_classes):
            raise ValueError(f"predictions must be class ids in 0..{self.num_classes - 1}")
        counts = confusion_counts(pred, target, self.num_classes, self.ignore_index)
        self.matrix += counts.cpu().numpy().astype(np.int64)

    # -- read-outs ---------------------------------------------------------------------------
    def intersection_union(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-class ``(TP, TP + FP + FN)`` as int64 arrays."""
        tp = np.diag(self.matrix)
        union = self.matrix.sum(0) + self.matrix.sum(1) - tp
        return tp, union

    def iou(self) -> np.ndarray:
        """Per-class IoU (float64, ``K``), NaN where the class is absent from target and pred."""
        tp, union = self.intersection_union()
        out = np.full(self.num_classes, np.nan)
        np.divide(tp, union, out=out, where=union > 0)
        return out

    def miou(self) -> float:
        """Mean IoU over classes with union > 0 (NaN when nothing was counted)."""
        iou = self.iou()
        return float(np.mean(iou[~np.isnan(iou)])) if np.any(~np.isnan(iou)) else math.nan

    def accuracy(self) -> float:
        """Overall pixel accuracy of the counted pixels (NaN when none)."""
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else math.nan

    def class_accuracy(self) -> np.ndarray:
        """Per-class recall ``TP / (TP + FN)``, NaN for classes absent from the target."""
        support = self.matrix.sum(1)
        out = np.full(self.num_classes, np.nan)
        np.divide(np.diag(self.matrix), support, out=out, where=support > 0)
        return out

    @property
    def total(self) -> int:
        """Number of counted pixels."""
        return int(self.matrix.sum())

    def summary(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """A JSON-ready dict: mIoU, accuracy, pixels and per-class IoU (None for NaN)."""
        names = list(class_names) if class_names is not None else list(range(self.num_classes))
        if len(names) != self.num_classes:
            raise ValueError(f"{len(names)} class names for {self.num_classes} classes")
        iou = self.iou()
        return {
            "miou": _none_if_nan(self.miou()),
            "accuracy": _none_if_nan(self.accuracy()),
            "pixels": self.total,
            "iou": {str(n): _none_if_nan(float(v)) for n, v in zip(names, iou, strict=True)},
        }

    # -- merging -----------------------------------------------------------------------------
    def _check_compatible(self, other: ConfusionMatrix) -> None:
        if not isinstance(other, ConfusionMatrix):
            raise TypeError(f"can only add a ConfusionMatrix, got {type(other).__name__}")
        if other.num_classes != self.num_classes or other.ignore_index != self.ignore_index:
            raise ValueError(
                f"cannot merge a {other.num_classes}-class matrix (ignore {other.ignore_index}) "
                f"into a {self.num_classes}-class one (ignore {self.ignore_index})"
            )

    def __add__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        self._check_compatible(other)
        out = ConfusionMatrix(self.num_classes, self.ignore_index)
        out.matrix = self.matrix + other.matrix
        return out

    def __radd__(self, other: object) -> ConfusionMatrix:
        if other == 0:  # so sum(list_of_matrices) works
            return self.copy()
        return NotImplemented

    def __iadd__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        self._check_compatible(other)
        self.matrix += other.matrix
        return self

    def copy(self) -> ConfusionMatrix:
        out = ConfusionMatrix(self.num_classes, self.ignore_index)
        out.matrix = self.matrix.copy()
        return out

    def to_tensor(self, device: Any = "cpu") -> torch.Tensor:
        """The matrix as an int64 tensor (for ``torch.distributed.all_reduce``)."""
        import torch

        return torch.as_tensor(self.matrix, dtype=torch.int64, device=device).clone()

    @classmethod
    def from_tensor(cls, tensor: Any, ignore_index: int = IGNORE_INDEX) -> ConfusionMatrix:
        """Inverse of :meth:`to_tensor` (also takes a numpy array)."""
        m = _to_numpy(tensor).astype(np.int64)
        if m.ndim != 2 or m.shape[0] != m.shape[1]:
            raise ValueError(f"a confusion matrix must be K x K, got shape {m.shape}")
        out = cls(m.shape[0], ignore_index)
        out.matrix = m.copy()
        return out

    def __repr__(self) -> str:
        return f"ConfusionMatrix(num_classes={self.num_classes}, pixels={self.total})"


def _none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def modality_subsets(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """All non-empty subsets, by size then in the given order.

    ``("rgb", "depth", "event")`` -> ``[(rgb,), (depth,), (event,), (rgb, depth), (rgb, event),
    (depth, event), (rgb, depth, event)]``: stable, so tables and plots line up across runs.
    """
    mods = tuple(modalities)
    if len(set(mods)) != len(mods):
        raise ValueError(f"modality names repeat: {list(mods)}")
    return [c for r in range(1, len(mods) + 1) for c in itertools.combinations(mods, r)]


def format_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    float_format: str = "{:.2f}",
) -> str:
    """Rows of dicts -> a Markdown table (printable, and pasteable into the model card).

    ``columns`` defaults to the keys in first-seen order; floats use ``float_format``; NaN,
    None and missing cells print as ``-``. Example:
    ``format_table([{"subset": "rgb", "mIoU": 51.2}, {"subset": "rgb+depth", "mIoU": 60.9}])``.
    """
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))

    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        if isinstance(value, (float, np.floating)):
            return float_format.format(float(value))
        return str(value)

    body = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(str(c))] + [len(r[i]) for r in body]) for i, c in enumerate(columns)]
    numeric = [all(_is_number(r[i]) for r in body) and body for i in range(len(columns))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            s.rjust(w) if num else s.ljust(w)
            for s, w, num in zip(cells, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if num else "-" * (w + 2)
            for w, num in zip(widths, numeric, strict=True)
        )
        + "|"
    )
    return "\n".join([line([str(c) for c in columns]), rule, *(line(r) for r in body)])


def _is_number(text: str) -> bool:
    if text == "-":
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def save_confusion_png(
    matrix: np.ndarray | ConfusionMatrix,
    class_names: Sequence[str],
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Plot the row-normalised confusion matrix (rows = ground truth) to a PNG.

    Row normalisation shows, per true class, where its pixels went, so rare classes are as
    readable as road and sky. Rows without ground truth stay empty (white). Uses the Agg
    backend (no display needed, safe in a node or a headless CI). Returns the path.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    m = matrix.matrix if isinstance(matrix, ConfusionMatrix) else np.asarray(matrix)
    k = m.shape[0]
    if m.shape != (k, k) or len(class_names) != k:
        raise ValueError(f"matrix {m.shape} and {len(class_names)} class names do not match")
    rows = m.sum(1, keepdims=True).astype(np.float64)
    norm = np.divide(m, rows, out=np.full(m.shape, np.nan), where=rows > 0)
    side = max(4.0, 0.32 * k + 2.5)
    fig = Figure(figsize=(side + 1.0, side), dpi=110)
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true-class pixels")
    font = 9 if k <= 20 else 7
    ax.set_xticks(range(k), labels=list(class_names), rotation=90, fontsize=font)
    ax.set_yticks(range(k), labels=list(class_names), fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    if k <= 30:
        for t in range(k):
            for p in range(k):
                v = norm[t, p]
                if np.isfinite(v) and v >= 0.01:
                    colour = "white" if v > 0.5 else "black"
                    ax.text(
                        p,
                        t,
                        f"{100 * v:.0f}",
                        ha="center",
                        va="center",
                        fontsize=font - 2,
                        color=colour,
                    )
    if title:
        ax.set_title(title)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out

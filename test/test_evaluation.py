"""Confusion matrix, mIoU (hand-computed), merging, tables and the confusion PNG."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from sam_moelora_ros.classes import DELIVER_CLASSES
from sam_moelora_ros.evaluation import (
    ConfusionMatrix,
    confusion_counts,
    format_table,
    modality_subsets,
    percent,
    save_confusion_png,
)

TARGET = np.array([[0, 0, 1], [1, 2, 255]])
PRED = np.array([[0, 1, 1], [1, 0, 2]])
# matrix[t, p]: t0 -> p0, p1; t1 -> p1, p1; t2 -> p0; the last pixel is ignored.
# IoU0 = 1 / (2 + 2 - 1) = 1/3; IoU1 = 2 / (2 + 3 - 2) = 2/3; IoU2 = 0 / (1 + 0 - 0) = 0


def test_hand_computed_iou():
    cm = ConfusionMatrix(3).update(PRED, TARGET)
    assert cm.matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert cm.matrix.dtype == np.int64
    np.testing.assert_allclose(cm.iou(), [1 / 3, 2 / 3, 0.0])
    assert cm.miou() == pytest.approx(1 / 3)
    assert cm.accuracy() == pytest.approx(3 / 5)
    np.testing.assert_allclose(cm.class_accuracy(), [0.5, 1.0, 0.0])
    assert cm.total == 5


def test_absent_classes_are_nan_and_not_averaged():
    cm = ConfusionMatrix(5).update(PRED, TARGET)
    iou = cm.iou()
    assert math.isnan(iou[3]) and math.isnan(iou[4])
    assert cm.miou() == pytest.approx(1 / 3)
    s = cm.summary(["a", "b", "c", "d", "e"])
    assert s["iou"]["d"] is None and s["miou"] == pytest.approx(1 / 3) and s["pixels"] == 5


def test_false_alarm_class_counts_as_zero():
    """A class predicted but absent from the ground truth has IoU 0 (union > 0)."""
    cm = ConfusionMatrix(3).update(np.array([0, 2]), np.array([0, 0]))
    np.testing.assert_allclose(cm.iou(), [0.5, np.nan, 0.0])
    assert cm.miou() == pytest.approx(0.25)


def test_empty_matrix():
    cm = ConfusionMatrix(4).update(np.array([1, 2]), np.array([255, 255]))
    assert math.isnan(cm.miou()) and math.isnan(cm.accuracy()) and cm.total == 0


def test_torch_and_numpy_agree():
    gen = torch.Generator().manual_seed(0)
    target = torch.randint(0, 6, (2, 17, 19), generator=gen)
    target[:, :3] = 255
    pred = torch.randint(0, 5, (2, 17, 19), generator=gen)
    a = ConfusionMatrix(5).update(pred, target)
    b = ConfusionMatrix(5).update(pred.numpy(), target.numpy())
    assert np.array_equal(a.matrix, b.matrix)
    keep = (target != 255) & (target < 5)
    assert a.total == int(keep.sum())


def test_torch_counts_are_the_hand_computed_matrix():
    """The tensor counting the validation loop sums on the GPU is the class's own matrix."""
    counts = confusion_counts(torch.as_tensor(PRED), torch.as_tensor(TARGET), 3)
    assert counts.dtype == torch.int64 and counts.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    gen = torch.Generator().manual_seed(1)
    target = torch.randint(-1, 7, (3, 11, 13), generator=gen)  # -1 and 5, 6: not counted
    target[0, :2] = 255
    pred = torch.randint(0, 5, (3, 11, 13), generator=gen)
    want = ConfusionMatrix(5).update(pred.numpy(), target.numpy()).matrix
    np.testing.assert_array_equal(confusion_counts(pred, target, 5).numpy(), want)
    other = confusion_counts(pred, torch.where(target == 255, 4, target), 5, ignore_index=4)
    keep = (target >= 0) & (target < 4)
    assert int(other.sum()) == int(keep.sum()) and int(other[4].sum()) == 0
    with pytest.raises(ValueError, match="shape"):
        confusion_counts(pred, target[:1], 5)


def test_percent_is_the_tables_unit():
    assert percent(0.25) == 25.0 and percent(1) == 100.0
    assert math.isnan(percent(None)) and math.isnan(percent(math.nan))


def test_merge_and_distributed_round_trip():
    whole = ConfusionMatrix(3).update(PRED, TARGET)
    first = ConfusionMatrix(3).update(PRED[0], TARGET[0])
    second = ConfusionMatrix(3).update(PRED[1], TARGET[1])
    assert np.array_equal((first + second).matrix, whole.matrix)
    assert np.array_equal(sum([first, second]).matrix, whole.matrix)
    acc = ConfusionMatrix(3)
    acc += first
    acc += second
    assert np.array_equal(acc.matrix, whole.matrix)
    tensor = whole.to_tensor()
    assert tensor.dtype == torch.int64
    back = ConfusionMatrix.from_tensor(tensor)
    assert np.array_equal(back.matrix, whole.matrix) and back.miou() == whole.miou()
    with pytest.raises(ValueError, match="cannot merge a 4-class matrix"):
        whole + ConfusionMatrix(4)


def test_bad_inputs():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match="predictions must be class ids in 0..2"):
        cm.update(np.array([3]), np.array([0]))
    with pytest.raises(ValueError, match="shape"):
        cm.update(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="num_classes must be positive"):
        ConfusionMatrix(0)


def test_modality_subsets():
    subsets = modality_subsets(("rgb", "depth", "event", "lidar"))
    assert len(subsets) == 15
    assert subsets[:5] == [("rgb",), ("depth",), ("event",), ("lidar",), ("rgb", "depth")]
    assert subsets[-1] == ("rgb", "depth", "event", "lidar")
    with pytest.raises(ValueError, match="repeat"):
        modality_subsets(("rgb", "rgb"))


def test_format_table():
    text = format_table(
        [{"subset": "rgb", "mIoU": 51.234}, {"subset": "rgb+depth", "mIoU": float("nan")}]
    )
    lines = text.splitlines()
    assert lines[0].startswith("| subset") and "mIoU" in lines[0]
    assert lines[1].endswith(":|")  # numeric column right-aligned
    assert "51.23" in lines[2] and lines[3].rstrip(" |").endswith("-")
    assert len({len(line) for line in lines}) == 1


def test_save_confusion_png(tmp_path):
    rng = np.random.default_rng(0)
    k = len(DELIVER_CLASSES)
    target = rng.integers(0, k, 5000)
    pred = np.where(rng.random(5000) < 0.7, target, rng.integers(0, k, 5000))
    cm = ConfusionMatrix(k).update(pred, target)
    path = save_confusion_png(cm, DELIVER_CLASSES, tmp_path / "plots" / "confusion.png")
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 300
    with pytest.raises(ValueError, match="do not match"):
        save_confusion_png(cm.matrix, DELIVER_CLASSES[:3], tmp_path / "bad.png")

"""Score labels recorded from the live node against the bag's ground truth. No rclpy.

Matched by header stamp: the node stamps its labels with the anchor message's stamp and the
synthetic bags stamp their ground truth the same, so an exact match is the right key; recorded
frames without ground truth (and ground truth the node never labelled: dropped frames) are
simply not evaluated, and the counts say how many were.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sam_moelora_ros.bag import BagReader


def score(bag: Path, recorded: dict[int, np.ndarray], labels_topic: str, k: int = 25) -> dict:
    """mIoU of ``recorded`` (stamp ns -> labels) against ``labels_topic`` of ``bag``.

    Returns ``{"miou": float | None, "frames_recorded": int, "frames_evaluated": int}``
    (``miou`` is None when no recorded frame had ground truth).
    """
    from sam_moelora_ros.evaluation import ConfusionMatrix
    from sam_moelora_ros.sensors.image import image_to_numpy

    cm, matched = ConfusionMatrix(k), 0
    with BagReader(bag) as reader:
        for rec in reader.messages([labels_topic]):
            pred = recorded.get(rec.stamp_ns)
            if pred is not None and rec.msg is not None:
                cm.update(pred, np.asarray(image_to_numpy(rec.msg)))
                matched += 1
    metrics: dict[str, Any] = {
        "miou": cm.miou() if cm.total else None,
        "frames_recorded": len(recorded),
        "frames_evaluated": matched,
    }
    return metrics

"""Files a replay writes besides metrics.json: overlays, GIF, robustness plot, output bag.

Only opencv, matplotlib (Agg) and Pillow (a matplotlib dependency) are used: no new packages.
No rclpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sam_moelora_ros.pipeline.labelled_cloud import label_cloud
from sam_moelora_ros.pipeline.outputs import colorize, encode_outputs
from sam_moelora_ros.replay.pipeline import FrameResult

OUTPUT_NS = "/sam_moelora_perception"
"""Namespace of the label topics added to an output bag (the node's own output names)."""


def overlay_image(result: FrameResult, palette: np.ndarray, caption: str) -> np.ndarray:
    """RGB | prediction blended over RGB | ground truth, with a caption: ``H' x W' x 3`` uint8."""
    labels = result.labels
    h, w = labels.shape
    rgb = result.rgb if result.rgb is not None and result.rgb.shape[:2] == (h, w) else None
    base = rgb if rgb is not None else np.zeros((h, w, 3), np.uint8)
    pred = colorize(labels, palette, rgb, 0.6)
    panels = [base, pred]
    if result.ground_truth is not None and result.ground_truth.shape == labels.shape:
        truth = result.ground_truth.astype(np.int64)
        gt = colorize(np.where(truth < len(palette), truth, len(palette)), palette, None, 1.0)
        panels.append(gt)
    row = np.concatenate(panels, axis=1)
    scale = max(1, 256 // max(h, 1))
    row = cv2.resize(row, (row.shape[1] * scale, h * scale), interpolation=cv2.INTER_NEAREST)
    bar = np.full((18, row.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, caption, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, row], axis=0)


def save_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def save_inputs_png(
    root: Path, index: int, images: dict[str, np.ndarray], size_hw: tuple[int, int]
) -> list[Path]:
    """Write a frame's network images to ``root/<modality>/<index:05d>.png`` (``--save-inputs``).

    ``images``: what the Segmenter received (``H x W x 3`` uint8 RGB per present modality);
    ``size_hw``: the camera's size, at which the Segmenter reads every modality. An image of
    another size is resampled as the Segmenter does it (``model.preprocess.resize``: nearest for
    sparse modalities, bilinear otherwise), rounded to uint8; camera-sized ones are written
    byte for byte. Absent modalities get no file.
    """
    written = []
    for name, image in images.items():
        if image.shape[:2] != tuple(size_hw):
            image = resized_like_the_model(image, size_hw, name)
        path = root / name / f"{index:05d}.png"
        save_png(path, image)
        written.append(path)
    return written


def resized_like_the_model(image: np.ndarray, size_hw: tuple[int, int], name: str) -> np.ndarray:
    """``image`` resampled to ``size_hw`` as the Segmenter resamples modality ``name``, uint8."""
    import torch

    from sam_moelora_ros.model.preprocess import resize

    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    out = resize(tensor, (int(size_hw[0]), int(size_hw[1])), name)[0].permute(1, 2, 0)
    return np.ascontiguousarray(out.round().clamp(0, 255).to(torch.uint8).numpy())


def save_gif(path: Path, frames: Sequence[np.ndarray], fps: float = 5.0) -> Path | None:
    """An animated GIF of ``frames`` (Pillow, shipped with matplotlib); None without frames."""
    if not frames:
        return None
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path


def save_robustness_plot(metrics: dict[str, Any], path: Path) -> Path:
    """mIoU per condition / with-without each sensor (bars) and per frame over time (line)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2), dpi=100)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    names, values, colours = [], [], []
    for cond, item in metrics["per_condition"].items():
        names.append(cond)
        values.append(100 * (item["miou"] or 0.0))
        colours.append("tab:blue")
    for m, item in metrics["with_without_sensor"].items():
        for side, colour in (("with", "tab:green"), ("without", "tab:red")):
            if item[side] is not None:
                names.append(f"{side} {m}")
                values.append(100 * item[side])
                colours.append(colour)
    ax1.bar(range(len(values)), values, color=colours)
    ax1.set_xticks(range(len(names)), labels=names, rotation=60, ha="right", fontsize=8)
    ax1.set_ylabel("mIoU %")
    ax1.set_title("per condition / with and without each sensor")
    frames = [f for f in metrics.get("per_frame", []) if f["miou"] is not None]
    ax2.plot([f["t"] for f in frames], [100 * f["miou"] for f in frames], ".-", lw=0.8)
    for w in metrics["windows"]:
        colour = "tab:red" if w["kind"] == "drop" else "tab:orange"
        ax2.axvspan(w["start_s"], w["end_s"], color=colour, alpha=0.15, label=w["window"])
    if metrics["windows"]:
        ax2.legend(fontsize=8)
    ax2.set_xlabel("bag time (s)")
    ax2.set_ylabel("frame mIoU %")
    ax2.set_title("per frame (shaded: failure windows)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


class OutputBag:
    """A copy of the input topics plus the node's label topics, for RViz/Foxglove."""

    def __init__(self, path: Path, palette: np.ndarray, storage: str = "sqlite3") -> None:
        from sam_moelora_ros.bag import BagWriter

        self.writer = BagWriter(path, storage).__enter__()
        self.palette = palette
        self.image_t = self.writer.typestore.types["sensor_msgs/msg/Image"]
        self.cloud_t = self.writer.typestore.types["sensor_msgs/msg/PointCloud2"]
        for key in ("labels", "labels_color", "confidence"):
            self.writer.add_topic(f"{OUTPUT_NS}/{key}", "sensor_msgs/msg/Image")

    def copy(self, record: Any, latched: bool = False) -> None:
        """Copy one input record (raw bytes, same receive time)."""
        self.writer.add_topic(record.topic, record.msgtype, latched=latched)
        self.writer.write(record.topic, record.log_ns, record.raw)

    def add_result(self, result: FrameResult) -> None:
        color = colorize(result.labels, self.palette, result.rgb, 0.5)
        msgs = encode_outputs(
            result.labels,
            result.header,
            self.image_t,
            color=color,
            confidence=result.confidence,
        )
        when = result.log_ns or result.stamp_ns
        for key, msg in msgs.items():
            self.writer.write(f"{OUTPUT_NS}/{key}", when, msg)
        if result.lidar is not None:  # the node's ~/lidar/labelled
            src = result.lidar
            cloud = label_cloud(
                src.cloud,
                src.camera,
                src.T_cam_from_lidar,
                result.labels,
                result.confidence,
                self.cloud_t,
                typestore=self.writer.typestore,
                hits=src.hits,
            )
            topic = f"{OUTPUT_NS}/lidar/labelled"
            self.writer.add_topic(topic, "sensor_msgs/msg/PointCloud2")
            self.writer.write(topic, when, cloud)

    def close(self) -> None:
        self.writer.__exit__(None, None, None)

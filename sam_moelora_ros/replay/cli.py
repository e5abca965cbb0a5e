"""``replay_eval``: evaluate the perception pipeline on a rosbag2, offline. No rclpy.

Example::

    replay_eval --bag demo_output/bag --out demo_output --drop lidar@4:9 --drop-rate event=0.5

Writes ``metrics.json``, ``frames.json``, ``confusion.png``, ``robustness.png``,
``overlays/*.png`` + ``overlays.gif``, with ``--output-bag`` ``labels_bag/`` and with
``--save-inputs`` ``inputs/<modality>/<frame>.png`` to ``--out``. See docs/replay.md for the
report's fields.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sam_moelora_ros.bag import BagError, BagReader
from sam_moelora_ros.cli_types import non_negative_int
from sam_moelora_ros.replay.inputs import check_topic_types
from sam_moelora_ros.replay.pipeline import DEFAULT_TOPICS, ReplayRunner, parse_topic_overrides
from sam_moelora_ros.replay.report import Evaluation, summary_rows
from sam_moelora_ros.replay.scenarios import Scenario

MAX_OVERLAYS = 48
"""Most overlay PNGs written (evenly spread over the bag when it is longer)."""


class DeliverLabels:
    """Ground truth from a DELIVER-layout folder: the k-th anchor message <-> the k-th label.

    Files ``semantic/<condition>/<split>/<sequence>/<frame>_semantic_front.png`` are ordered by
    (sequence, frame): the order in which the synthetic generator writes them to its bag, and the
    usual order of a recording split into sequences.
    """

    def __init__(self, root: Path) -> None:
        from sam_moelora_ros.datasets.deliver import DeliverDataset

        self._read = DeliverDataset.read_label
        files = sorted(
            Path(root).glob("semantic/*/*/*/*_semantic_front.png"),
            key=lambda p: (p.parent.name, p.name),
        )
        if not files:
            raise FileNotFoundError(
                f"--labels-dir {root}: no semantic/<condition>/<split>/<sequence>/"
                "*_semantic_front.png files (DELIVER layout)"
            )
        self.files = files

    def lookup(self, index: int) -> np.ndarray | None:
        return self._read(self.files[index]) if index < len(self.files) else None

    def describe(self, root: Path) -> dict[str, Any]:
        """How frames were matched to label files: by order, which the report must say."""
        return {
            "source": str(root),
            "matching": "by order: a frame stamped like the k-th camera (rgb) message of the bag "
            "is scored against the k-th label file (sorted by sequence, frame); no time stamps "
            "are compared with the files",
            "label_files": len(self.files),
        }


@dataclass
class ReplayOutcome:
    """What :func:`evaluate_bag` returns: the report and the per-frame labels (optional)."""

    metrics: dict[str, Any]
    labels: dict[int, np.ndarray]
    out: Path


def evaluate_bag(
    bag: str | Path,
    out: str | Path,
    *,
    segmenter: Any = None,
    adapter: str | Path | None = None,
    topics: dict[str, str] | None = None,
    scenario: Scenario | None = None,
    labels_dir: str | Path | None = None,
    output_bag: bool = False,
    max_frames: int | None = None,
    resize_labels: bool = False,
    overlays: bool = True,
    keep_labels: bool = False,
    progress: bool = True,
    node_params: dict[str, Any] | None = None,
    device: str | None = None,
    save_inputs: bool = False,
    backend: str | None = None,
    providers: Sequence[str] | None = None,
    export_dataset: str | Path | None = None,
    export_split: str = "train",
) -> ReplayOutcome:
    """Replay ``bag`` through the node's pipeline and write the report to ``out``.

    ``max_frames`` None or 0: every frame. Ground truth of another size than the camera's is an
    error unless ``resize_labels`` (then the report counts the resized frames). Without
    ``labels_dir`` the label topic is ground truth when the bag has it (it must when named in
    ``topics``); a bag without one is replayed unscored. ``save_inputs``: write every frame's
    network images to ``out/inputs/<modality>/<index:05d>.png``.

    Without ``segmenter`` the model is the node's for ``node_params`` (every ``model.*``
    parameter, :func:`~sam_moelora_ros.inference.from_params.load_segmenter`); ``adapter``,
    ``device``, ``backend`` and ``providers``, when given, set ``model.adapter``,
    ``model.device``, ``model.backend`` and ``model.providers`` (onnxruntime: ``adapter`` is an
    exported folder). A model that cannot start raises
    :class:`~sam_moelora_ros.params.ParameterError` naming the parameter, as the node's line.
    ``export_dataset``: also write every segmented frame's inputs (and labels) as a
    DELIVER-layout training set there (``replay.export_dataset``), split ``export_split``.
    """
    from tqdm import tqdm

    from sam_moelora_ros.classes import DELIVER_CLASSES, palette_for
    from sam_moelora_ros.evaluation import save_confusion_png
    from sam_moelora_ros.inference.from_params import load_segmenter
    from sam_moelora_ros.params import build_config
    from sam_moelora_ros.replay.artifacts import (
        OutputBag,
        overlay_image,
        save_gif,
        save_inputs_png,
        save_png,
        save_robustness_plot,
    )

    started = time.perf_counter()
    max_frames = max_frames or None  # 0 means "all", like None
    node_params = model_parameters(
        node_params, adapter=adapter, device=device, backend=backend, providers=providers
    )
    cfg = build_config(node_params)  # a bad parameter fails before the bag is opened
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    explicit = set(topics or {}) & {"rgb", "depth", "event", "lidar", "labels"}
    wanted = {**DEFAULT_TOPICS, **(topics or {})}
    with BagReader(bag) as reader:  # fail on a wrong topic or type before paying for the model
        roles = explicit | {"rgb"}
        reader.require(sorted({wanted[r] for r in roles}))
        check_topic_types(reader, wanted, sorted(roles))
        has_labels = wanted["labels"] in reader.topics
    if segmenter is None:
        segmenter, _ = load_segmenter(cfg)
    k = segmenter.num_classes
    names = list(DELIVER_CLASSES) if k == len(DELIVER_CLASSES) else [f"class{i}" for i in range(k)]
    palette = palette_for(k)
    scenario = scenario or Scenario()
    truth: Any = "topic" if labels_dir is None else DeliverLabels(Path(labels_dir))
    keep_inputs = save_inputs or export_dataset is not None
    runner = ReplayRunner(segmenter, topics, scenario, node_params, truth, keep_inputs)
    labels: dict[int, np.ndarray] = {}
    with BagReader(bag) as reader:
        evaluation = Evaluation(names, scenario, reader.start_ns, resize_labels)
        total = reader.counts.get(runner.topics["rgb"], 0)
        stride = max(1, -(-(max_frames or total) // MAX_OVERLAYS))
        outbag = OutputBag(out / "labels_bag", palette) if output_bag else None
        on_message = None
        if outbag is not None:

            def on_message(rec: Any) -> None:
                outbag.copy(rec, latched=rec.topic == runner.topics["tf_static"])

        exporter = None
        if export_dataset is not None:
            from sam_moelora_ros.params import build_config
            from sam_moelora_ros.replay.export_dataset import DatasetExporter

            enabled = build_config(dict(node_params or {})).enabled
            exported = tuple(m for m in segmenter.modalities if m in enabled)
            labelled = has_labels or labels_dir is not None
            exporter = DatasetExporter(
                Path(export_dataset),
                export_split,
                Path(bag).name,
                segmenter.input_encodings,
                exported,
                labelled,
            )
        gif: list[np.ndarray] = []
        bar = tqdm(total=max_frames or total, unit="frame", disable=not progress, desc="replay")
        last = time.perf_counter()
        try:
            for index, result in enumerate(
                runner.run(
                    reader,
                    explicit_topics=explicit,
                    max_frames=max_frames,
                    on_message=on_message,
                )
            ):
                now = time.perf_counter()
                frame_miou = evaluation.add(result, result.inference_s)
                last = now
                if keep_labels:
                    labels[result.stamp_ns] = result.labels
                if outbag is not None:
                    outbag.add_result(result)
                if save_inputs:
                    save_inputs_png(out / "inputs", index, result.inputs, result.labels.shape)
                if exporter is not None:
                    exporter.add(result)
                if overlays and index % stride == 0:
                    t = (result.stamp_ns - reader.start_ns) * 1e-9
                    score = "-" if frame_miou is None else f"{100 * frame_miou:.1f}"
                    caption = (
                        f"t={t:.2f}s {result.condition or ''} [{'+'.join(result.present)}] "
                        f"mIoU {score}"
                    )
                    image = overlay_image(result, palette, caption)
                    save_png(out / "overlays" / f"{index:05d}.png", image)
                    gif.append(image)
                bar.update(1)
        finally:
            bar.close()
            if outbag is not None:
                outbag.close()
        del last
        extra = {
            "bag": str(bag),
            "model": segmenter.describe(),
            "topics": runner.topics,
            "scenario": scenario.describe(),
            "ground_truth": _truth_source(runner.topics["labels"], has_labels)
            if labels_dir is None
            else truth.describe(Path(labels_dir)),
            "extrinsic": None if runner.extrinsic is None else runner.extrinsic.describe(),
            "inputs": runner.inputs_info,
            "input_encodings": segmenter.input_encodings.to_dict(),
        }
        if exporter is not None:
            exporter.close()
            extra["export"] = exporter.summary()
        metrics = evaluation.metrics(runner.log, extra)
    metrics["runtime_s"] = round(time.perf_counter() - started, 3)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=False) + "\n")
    (out / "frames.json").write_text(json.dumps(evaluation.frames, indent=1) + "\n")
    save_confusion_png(evaluation.total, names, out / "confusion.png", title="replay confusion")
    save_robustness_plot({**metrics, "per_frame": evaluation.frames}, out / "robustness.png")
    if overlays:
        save_gif(out / "overlays.gif", gif)
    return ReplayOutcome(metrics, labels, out)


def model_parameters(
    node_params: dict[str, Any] | None, **flags: str | Path | Sequence[str] | None
) -> dict[str, Any]:
    """``node_params`` with ``model.<flag>`` set from each command-line flag that was given
    (``adapter``, ``device``, ``backend``, ``providers``); the flag wins over a ``--param``."""
    params = dict(node_params or {})
    for name, value in flags.items():
        if value is None:
            continue
        if isinstance(value, Path):
            value = str(value)
        elif not isinstance(value, str):
            value = list(value)
        params[f"model.{name}"] = value
    return params


def _truth_source(topic: str, present: bool) -> dict[str, Any]:
    if not present:
        return {"source": None, "matching": f"none: the bag has no {topic} (frames unscored)"}
    return {
        "source": "topic " + topic,
        "matching": "by stamp: the label message whose header stamp equals the anchor's",
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="replay_eval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--bag", required=True, type=Path, help="rosbag2 folder (sqlite3 or mcap)")
    p.add_argument(
        "--adapter",
        default="",
        help="adapter .safetensors (default: shipped model); onnxruntime: the exported folder",
    )
    p.add_argument("--out", required=True, type=Path, help="report folder")
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--labels-topic",
        default=None,
        help=f"ground-truth Image topic ({DEFAULT_TOPICS['labels']})",
    )
    src.add_argument("--labels-dir", type=Path, default=None, help="DELIVER-layout label folder")
    p.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="ROLE=TOPIC",
        help=f"remap a role ({', '.join(DEFAULT_TOPICS)}) to the bag's topic",
    )
    p.add_argument("--drop", action="append", default=[], metavar="SENSOR@START:END")
    p.add_argument("--drop-rate", action="append", default=[], metavar="SENSOR=P")
    p.add_argument("--corrupt", action="append", default=[], metavar="SENSOR@START:END")
    p.add_argument("--seed", type=int, default=0, help="seed of --drop-rate draws")
    p.add_argument("--output-bag", action="store_true", help="write OUT/labels_bag with labels")
    p.add_argument(
        "--save-inputs",
        action="store_true",
        help="write each frame's network input images, as the model received them at the "
        "camera's size, to OUT/inputs/<modality>/<frame:05d>.png",
    )
    p.add_argument(
        "--max-frames",
        type=non_negative_int,
        default=None,
        help="stop after this many segmented frames (0 or absent: all)",
    )
    p.add_argument(
        "--resize-labels",
        action="store_true",
        help="resize ground truth of another size to the camera's (nearest) instead of refusing "
        "it; the report counts the resized frames",
    )
    p.add_argument("--device", default=None, help="model.device (default: the parameter's, auto)")
    p.add_argument(
        "--backend",
        default=None,
        choices=("torch", "onnxruntime"),
        help="model.backend (default: the parameter's, torch)",
    )
    p.add_argument(
        "--providers",
        default=None,
        help="--backend onnxruntime: comma-separated providers in priority order "
        "(model.providers; default: CPUExecutionProvider)",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="node parameter override, e.g. anchor=depth or model.dtype=bfloat16 (YAML value; "
        "every model.* parameter builds the model as in the node)",
    )
    p.add_argument(
        "--export-dataset",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write every segmented frame's inputs (and labels) as a DELIVER-layout "
        "training set in DIR, with the input contract recorded (training on your own bags)",
    )
    p.add_argument(
        "--export-split", default="train", choices=("train", "val", "test"), help="its split"
    )
    p.add_argument("--no-progress", action="store_true")
    return p


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    import yaml

    from sam_moelora_ros.safe_yaml import load_yaml

    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--param {item!r}: expected NAME=VALUE")
        try:
            out[name] = load_yaml(value)
        except yaml.YAMLError as exc:
            raise ValueError(f"--param {item!r}: the value is not YAML ({exc})") from exc
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``replay_eval``; exit 2 on a usage/bag/ground-truth error or a model that
    cannot start (the node's one line, naming the ``model.*`` parameter), 1 on a model error while
    segmenting or when no frame at all was segmented."""
    args = build_parser().parse_args(argv)
    # One-off facts of the replay (the extrinsic's tf chain) as log lines on stdout.
    log = logging.getLogger("sam_moelora_ros.replay")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("replay_eval: %(message)s"))
    log.addHandler(handler)
    level = log.level
    log.setLevel(logging.INFO)
    try:
        return _main(args)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def _main(args: argparse.Namespace) -> int:
    from sam_moelora_ros.evaluation import format_table
    from sam_moelora_ros.inference.segmenter import SegmenterError
    from sam_moelora_ros.params import ParameterError

    try:
        topics = parse_topic_overrides(args.topic)
        if args.labels_topic:
            topics["labels"] = args.labels_topic
        scenario = Scenario.parse(args.drop, args.drop_rate, args.corrupt, args.seed)
        params = parse_params(args.param)
        outcome = evaluate_bag(
            args.bag,
            args.out,
            adapter=args.adapter or None,
            topics=topics,
            scenario=scenario,
            labels_dir=args.labels_dir,
            output_bag=args.output_bag,
            max_frames=args.max_frames,
            resize_labels=args.resize_labels,
            progress=not args.no_progress,
            node_params=params,
            device=args.device,
            save_inputs=args.save_inputs,
            export_dataset=args.export_dataset,
            export_split=args.export_split,
            backend=args.backend,
            providers=args.providers.split(",") if args.providers else None,
        )
    except (BagError, ValueError, ParameterError, FileNotFoundError) as exc:
        print(f"replay_eval: error: {exc}", file=sys.stderr)
        return 2
    except SegmenterError as exc:
        print(f"replay_eval: model error: {exc}", file=sys.stderr)
        return 1
    m = outcome.metrics
    if not m["frames"]["segmented"]:
        rejected = m["messages"]["rejected"]
        print(
            f"replay_eval: error: no frame was segmented ({m['frames']['anchor_messages']} anchor "
            f"messages on {outcome.metrics['topics']['rgb']}, rejected messages: {rejected or 0});"
            f" check the --topic remapping and the rejected_detail in {outcome.out}/metrics.json",
            file=sys.stderr,
        )
        return 1
    print(format_table(summary_rows(m), float_format="{:.1f}"))
    rejected = m["messages"]["rejected"]
    if rejected:
        print(f"rejected messages (reported, skipped): {rejected}; see metrics.json")
    print(
        f"frames: {m['frames']['segmented']} segmented, {m['frames']['evaluated']} evaluated; "
        f"report in {outcome.out}/metrics.json"
    )
    if "export" in m:
        print(m["export"])
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Offline replay evaluation on a generated bag: sane, reproducible, scenario windows honoured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sam_moelora_ros.bag import BagError, BagReader, BagWriter
from sam_moelora_ros.replay.cli import evaluate_bag, main
from sam_moelora_ros.replay.report import TIMING_KEYS
from sam_moelora_ros.replay.scenarios import Scenario, Window

BOUNDARY_S = 0.24
"""Frames this close to a window edge may use a message from the other side (tolerance)."""


def _run(bag: Path, out: Path, segmenter, **kwargs):
    return evaluate_bag(bag, out, segmenter=segmenter, progress=False, **kwargs)


def _frames(out: Path) -> list[dict]:
    return json.loads((out / "frames.json").read_text())


@pytest.fixture(scope="module")
def baseline(replay_bag: Path, tmp_path_factory: pytest.TempPathFactory, segmenter):
    out = tmp_path_factory.mktemp("baseline")
    return _run(replay_bag, out, segmenter, output_bag=True, keep_labels=True)


def test_metrics_are_sane_and_files_written(baseline) -> None:
    m, out = baseline.metrics, baseline.out
    assert 0.0 <= m["miou"] <= 1.0
    assert len(m["per_class_iou"]) == 25
    assert set(m["per_condition"]) == {"sun", "night"}
    assert m["frames"]["evaluated"] == m["frames"]["segmented"] >= 12
    assert m["frames"]["anchor_messages"] == 12
    assert m["messages"]["rejected"] == {}
    # The LiDAR dropout recorded in the bag shows up as frames without lidar.
    assert any("lidar" not in s for s in m["frames"]["per_sensor_set"])
    assert m["with_without_sensor"]["lidar"]["without"] is not None
    assert m["latency_ms"]["inference"]["p50"] > 0
    for name in ("metrics.json", "frames.json", "confusion.png", "robustness.png", "overlays.gif"):
        assert (out / name).stat().st_size > 0, name
    assert len(list((out / "overlays").glob("*.png"))) >= 8
    with BagReader(out / "labels_bag") as reader:
        counts = reader.counts
    assert counts["/sam_moelora_perception/labels"] == m["frames"]["segmented"]
    assert counts["/camera/image_raw"] == 12


def test_two_runs_give_the_same_metrics(replay_bag, baseline, tmp_path, segmenter) -> None:
    again = _run(replay_bag, tmp_path, segmenter, overlays=False, keep_labels=True)
    first = {k: v for k, v in baseline.metrics.items() if k not in TIMING_KEYS}
    second = {k: v for k, v in again.metrics.items() if k not in TIMING_KEYS}
    assert first == second
    assert baseline.labels.keys() == again.labels.keys()
    for stamp, labels in baseline.labels.items():
        np.testing.assert_array_equal(labels, again.labels[stamp])


def test_drop_window_removes_the_sensor_inside_only(replay_bag, baseline, tmp_path, segmenter):
    window = Window.parse("drop", "depth@0.05:0.4")
    scenario = Scenario(windows=(window,))
    outcome = _run(replay_bag, tmp_path, segmenter, scenario=scenario, overlays=False)
    report = outcome.metrics["windows"][0]
    assert report["frames_inside"] >= 3
    base = {(f["stamp"], f["anchor"]): f["present"] for f in _frames(baseline.out)}
    inside = 0
    for frame in _frames(tmp_path):
        t, key = frame["t"], (frame["stamp"], frame["anchor"])
        if window.start + BOUNDARY_S / 4 <= t < window.end - BOUNDARY_S / 4:
            inside += 1
            assert "depth" not in frame["present"], frame
            want = [s for s in base[key] if s != "depth"]
            assert frame["present"] == want
        elif t < window.start or t >= window.end + BOUNDARY_S:
            assert frame["present"] == base[key], frame
    assert inside >= 3
    assert outcome.metrics["messages"]["dropped_by_scenario"]["depth"] >= 3


def test_drop_rate_is_seeded() -> None:
    def draws(seed: int) -> list[str]:
        scenario = Scenario.parse(drop_rate=["event=0.5"], seed=seed)
        return [scenario.action("event", 0.05 * i) for i in range(40)]

    assert draws(1) == draws(1)
    assert draws(1) != draws(2)
    assert 5 < draws(1).count("drop") < 35


def test_corrupted_messages_are_reported_and_skipped(replay_bag, baseline, tmp_path, segmenter):
    scenario = Scenario.parse(corrupt=["depth@0.1:0.3"])
    m = _run(replay_bag, tmp_path, segmenter, scenario=scenario, overlays=False).metrics
    corrupted = m["messages"]["corrupted_by_scenario"]["depth"]
    assert corrupted >= 2
    assert m["messages"]["rejected"] == {"depth": corrupted}
    assert "truncated" in m["messages"]["rejected_detail"][0]["reason"]
    assert m["frames"]["segmented"] == baseline.metrics["frames"]["segmented"]


def test_undeserialisable_record_is_reported_not_fatal(replay_bag, tmp_path, segmenter) -> None:
    """A record whose CDR bytes are cut short (a damaged bag) is skipped with its reason."""
    broken = tmp_path / "broken"
    with BagReader(replay_bag) as reader, BagWriter(broken, "mcap") as writer:
        cut = 0
        for rec in reader.messages(order="log"):
            writer.add_topic(rec.topic, rec.msgtype)
            raw = rec.raw
            if rec.topic == "/depth/image_raw" and cut < 1:
                raw, cut = raw[:40], cut + 1
            writer.write(rec.topic, rec.log_ns, raw)
    m = _run(broken, tmp_path / "out", segmenter, overlays=False, max_frames=4).metrics
    assert m["messages"]["rejected"] == {"depth": 1}
    assert "could not be deserialised" in m["messages"]["rejected_detail"][0]["reason"]
    assert m["frames"]["segmented"] == 4


def test_missing_topic_lists_the_bags_topics(replay_bag, tmp_path, segmenter, capsys) -> None:
    with pytest.raises(BagError, match=r"no topic /front/image(.|\n)*/camera/image_raw"):
        _run(replay_bag, tmp_path, segmenter, topics={"rgb": "/front/image"})
    args = ["--bag", str(replay_bag), "--out", str(tmp_path), "--labels-topic", "/gt"]
    code = main([*args, "--adapter", str(tmp_path / "never_loaded.safetensors")])
    assert code == 2
    err = capsys.readouterr().err
    assert "no topic /gt" in err and "/lidar/points (sensor_msgs/msg/PointCloud2" in err


def test_labels_dir_gives_the_same_scores_as_the_labels_topic(replay_bag, tmp_path, segmenter):
    root = replay_bag.parents[1]
    # The label files match camera-stamped frames only (by order); a frame a fallback anchor
    # drives between the two sequences is scored from the topic alone. No fallback here, so
    # both sources see the same frames.
    params = {"anchor_timeout": 10.0}
    m = _run(
        replay_bag, tmp_path / "dir", segmenter, labels_dir=root, overlays=False,
        node_params=params,
    ).metrics  # fmt: skip
    topic = _run(replay_bag, tmp_path / "topic", segmenter, overlays=False, node_params=params)
    assert m["frames"]["per_sensor_set"] == topic.metrics["frames"]["per_sensor_set"]
    assert m["frames"]["evaluated"] == topic.metrics["frames"]["evaluated"] == 12
    assert m["miou"] == pytest.approx(topic.metrics["miou"])
    assert m["per_class_iou"] == topic.metrics["per_class_iou"]

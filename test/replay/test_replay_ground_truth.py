"""replay_eval scores only what it can score honestly, and says how it matched ground truth."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import pytest

from sam_moelora_ros.replay.cli import evaluate_bag, main
from sam_moelora_ros.replay.report import GroundTruthError


def _run(bag: Path, out: Path, segmenter, **kwargs):
    return evaluate_bag(bag, out, segmenter=segmenter, progress=False, overlays=False, **kwargs)


@pytest.fixture(scope="module")
def labels_dir_run(replay_bag: Path, tmp_path_factory: pytest.TempPathFactory, segmenter):
    out = tmp_path_factory.mktemp("labels_dir_run")
    return _run(replay_bag, out, segmenter, labels_dir=replay_bag.parents[1])


def _resized_labels(root: Path, dest: Path, factor: int) -> Path:
    shutil.copytree(root / "semantic", dest / "semantic")
    for path in (dest / "semantic").rglob("*.png"):
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        big = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)
        assert cv2.imwrite(str(path), big)
    return dest


def test_labels_dir_matching_by_order_is_reported(labels_dir_run) -> None:
    truth = labels_dir_run.metrics["ground_truth"]
    assert truth["matching"].startswith("by order")
    assert truth["label_files"] == labels_dir_run.metrics["frames"]["anchor_messages"] == 12


def test_labels_topic_matching_by_stamp_is_reported(replay_bag, tmp_path, segmenter) -> None:
    truth = _run(replay_bag, tmp_path, segmenter, max_frames=2).metrics["ground_truth"]
    assert truth["matching"].startswith("by stamp")


def test_ground_truth_of_another_size_is_refused(replay_bag, tmp_path, segmenter) -> None:
    labels = _resized_labels(replay_bag.parents[1], tmp_path / "labels", 2)
    with pytest.raises(GroundTruthError, match=r"is \d+x\d+ but the camera image is .*--resize"):
        _run(replay_bag, tmp_path / "out", segmenter, labels_dir=labels)


def test_resize_labels_resizes_and_records_it(
    replay_bag, labels_dir_run, tmp_path, segmenter
) -> None:
    labels = _resized_labels(replay_bag.parents[1], tmp_path / "labels", 2)
    m = _run(replay_bag, tmp_path / "out", segmenter, labels_dir=labels, resize_labels=True).metrics
    assert m["frames"]["ground_truth_resized"] == m["frames"]["evaluated"] > 0
    # Nearest 2x up then nearest down is the original label image: the same scores.
    assert m["miou"] == pytest.approx(labels_dir_run.metrics["miou"])
    assert labels_dir_run.metrics["frames"]["ground_truth_resized"] == 0


def test_cli_size_mismatch_is_one_line_exit_2(replay_bag, tmp_path, capsys) -> None:
    labels = _resized_labels(replay_bag.parents[1], tmp_path / "labels", 2)
    code = main(
        ["--bag", str(replay_bag), "--out", str(tmp_path / "o"), "--labels-dir", str(labels),
         "--max-frames", "2", "--no-progress"]
    )  # fmt: skip
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2
    assert len(err) == 1 and "label images must be the camera's size" in err[0]


def test_no_segmented_frame_is_an_error_not_exit_0(replay_bag, tmp_path, capsys) -> None:
    code = main(
        ["--bag", str(replay_bag), "--out", str(tmp_path), "--drop", "rgb@0:1000",
         "--param", "fallback_anchors=[]", "--no-progress"]
    )  # fmt: skip
    assert code == 1
    assert "no frame was segmented" in capsys.readouterr().err


def test_max_frames_zero_means_all(replay_bag, labels_dir_run, tmp_path, segmenter) -> None:
    m = _run(replay_bag, tmp_path, segmenter, labels_dir=replay_bag.parents[1], max_frames=0)
    assert m.metrics["frames"]["segmented"] == labels_dir_run.metrics["frames"]["segmented"] > 2

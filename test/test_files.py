"""Named pipes given as a bag or a training config are refused without being opened.

Opening a FIFO blocks until another process opens it for writing, so without the check each of
these would hang until the timeout below instead of failing with one line.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sam_moelora_ros.bag import BagError, BagReader, BagWriter

pytestmark = pytest.mark.timeout(30)


def empty_bag(path: Path) -> Path:
    with BagWriter(path) as writer:
        writer.add_topic("/x", "std_msgs/msg/String")
    return path


def test_a_readable_bag_still_opens(tmp_path: Path) -> None:
    with BagReader(empty_bag(tmp_path / "bag")) as reader:
        assert reader.topics == {"/x": "std_msgs/msg/String"}


@pytest.mark.parametrize("replaced", ["metadata.yaml", "bag.db3"])
def test_a_bag_file_that_is_a_named_pipe_is_refused(tmp_path: Path, replaced: str) -> None:
    bag = empty_bag(tmp_path / "bag")
    (bag / replaced).unlink()
    os.mkfifo(bag / replaced)
    with pytest.raises(BagError, match=rf"cannot open bag .*{replaced} is a named pipe \(FIFO\)"):
        BagReader(bag)


def test_a_training_config_that_is_a_named_pipe_is_refused(tmp_path: Path) -> None:
    from training.config import TrainConfig, TrainConfigError

    fifo = tmp_path / "run.yaml"
    os.mkfifo(fifo)
    with pytest.raises(TrainConfigError, match=r"run\.yaml is a named pipe \(FIFO\)"):
        TrainConfig.load(fifo)

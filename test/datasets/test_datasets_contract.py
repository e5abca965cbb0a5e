"""Datasets name the input encodings their images hold (the contract training records)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sam_moelora_ros.datasets import DatasetError, DeliverDataset, MusesDataset
from sam_moelora_ros.datasets.contract import CONTRACT_FILE, read_contract, write_contract
from sam_moelora_ros.datasets.deliver import decode_deliver_depth
from sam_moelora_ros.sensors.encodings import DEFAULT_CONTRACT

from .conftest import make_deliver, make_muses


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    return make_deliver(tmp_path / "DELIVER", conditions=("cloud",), frames=1)


def test_real_deliver_names_its_own_encodings(root: Path) -> None:
    ds = DeliverDataset(root, "train")
    assert {m: e.name for m, e in ds.input_encodings.items()} == {
        "rgb": "rgb8",
        "depth": "hha",
        "event": "deliver_png",
        "lidar": "deliver_png",
    }
    assert not ds.input_encodings["lidar"].live and not ds.input_encodings["depth"].live


def test_recorded_contract_wins_and_files_are_read_as_stored(root: Path) -> None:
    contract = DEFAULT_CONTRACT.replace("depth", max_range=10.0)
    write_contract(root, contract)
    ds = DeliverDataset(root, "train", depth_source="depth")
    assert ds.input_encodings == contract
    assert (ds[0]["images"]["depth"] == 11).all()  # a network image already: not decoded again
    assert read_contract(root) == contract


def test_malformed_contract_file_is_one_clear_error(root: Path) -> None:
    (root / CONTRACT_FILE).write_text('{"depth": {"name": "log"}}')
    with pytest.raises(DatasetError, match="unknown depth input encoding 'log'"):
        DeliverDataset(root, "train")


def test_unknown_depth_source_is_refused(root: Path) -> None:
    with pytest.raises(DatasetError, match="depth_source 'raw'"):
        DeliverDataset(root, "train", depth_source="raw")


def test_deliver_depth_decoding_forms(tmp_path: Path) -> None:
    code = np.zeros((1, 2, 3), np.uint8)
    code[0, 1] = (0, 0, 1)  # B = 1: 65536 / (2^24 - 1) * 1000 m
    meters = decode_deliver_depth(code, tmp_path / "x.png")
    assert meters[0, 0] == 0.0 and meters[0, 1] == pytest.approx(65536 / (2**24 - 1) * 1000)
    mm = np.array([[1500, 0]], np.uint16)
    assert decode_deliver_depth(mm, tmp_path / "x.png").tolist() == [[1.5, 0.0]]
    with pytest.raises(DatasetError, match="x.png: a DELIVER depth file must be"):
        decode_deliver_depth(np.zeros((2, 2), np.float32), tmp_path / "x.png")


def test_muses_non_rgb_images_are_dataset_encodings(tmp_path: Path) -> None:
    ds = MusesDataset(make_muses(tmp_path / "MUSES"), "train")
    assert ds.input_encodings["rgb"].name == "rgb8"
    assert all(ds.input_encodings[m].name == "dataset_png" for m in ds.modalities if m != "rgb")

"""DELIVER reader on small trees in DELIVER's layout (the synthetic scenes use it too)."""

from __future__ import annotations

import numpy as np
import pytest

from sam_moelora_ros.classes import DELIVER_CLASSES
from sam_moelora_ros.datasets import DatasetError, DeliverDataset, build_dataset

from .conftest import DELIVER_SEQUENCES, H, W, make_deliver


@pytest.fixture()
def root(tmp_path):
    return make_deliver(tmp_path / "DELIVER")


def test_sample_format_and_reader_facts(root):
    ds = DeliverDataset(root, "train")
    assert len(ds) == 2 * len(DELIVER_SEQUENCES) * 2
    assert ds.num_classes == 25 and ds.class_names == DELIVER_CLASSES
    s = ds[0]
    assert set(s) == {"images", "label", "condition", "case", "name"}
    assert list(s["images"]) == ["rgb", "depth", "event", "lidar"]
    for image in s["images"].values():
        assert image.shape == (H, W, 3) and image.dtype == np.uint8
    assert (s["images"]["rgb"] == 10).all()
    assert (s["images"]["depth"] == 77).all()  # read from hha/, 1 channel repeated
    assert (s["images"]["lidar"] == 200).all()  # 4 channels cut to 3
    event = s["images"]["event"]  # half size, resized nearest: dark pixel -> 2x2 block
    assert (event[:2, :2] == 0).all() and (event[2:, :] == 150).all()
    label = s["label"]
    assert label.dtype == np.uint8 and label.shape == (H, W)
    assert label[0, :4].tolist() == [255, 0, 24, 255]
    assert (label[1:] == 6).all()
    assert s["condition"] == "cloud" and s["case"] == "clean"
    assert s["name"] == "cloud/train/MAP_1_point1/000000_rgb_front"


def test_depth_source_option(root):
    """A real DELIVER's depth/ (CARLA's 24-bit code, here 11 in R, G and B) is decoded to metres
    and encoded linearly over max_range: the image the node makes from that depth."""
    ds = DeliverDataset(root, "train", modalities=("depth",), depth_source="depth")
    meters = (11 + 11 * 256 + 11 * 65536) / (2**24 - 1) * 1000.0  # 43.1 m
    assert (ds[0]["images"]["depth"] == 1 + round(254 * meters / 80.0)).all()
    assert list(ds[0]["images"]) == ["depth"]
    assert ds.input_encodings["depth"].to_dict() == {"name": "linear", "max_range": 80.0}
    near = DeliverDataset(
        root, "train", modalities=("depth",), depth_source="depth", depth_max_range=50.0
    )
    assert (near[0]["images"]["depth"] == 1 + round(254 * meters / 50.0)).all()


def test_conditions_selection(root):
    ds = DeliverDataset(root, "train", modalities=("rgb",), conditions=("night",))
    assert {ds[i]["condition"] for i in range(len(ds))} == {"night"}
    assert len(ds) == len(DELIVER_SEQUENCES) * 2
    with pytest.raises(DatasetError, match=r"unknown DELIVER condition \['snow'\].*cloud, fog"):
        DeliverDataset(root, "train", conditions=("snow",))


@pytest.mark.parametrize(
    ("cases", "clean", "expected"),
    [
        (None, True, {"clean", "motionblur", "lidarjitter"}),
        ((), True, {"clean"}),
        (("motionblur",), True, {"clean", "motionblur"}),
        (("lidarjitter",), False, {"lidarjitter"}),
    ],
)
def test_case_selection(root, cases, clean, expected):
    ds = DeliverDataset(root, "train", modalities=("rgb",), cases=cases, clean=clean)
    assert {ds[i]["case"] for i in range(len(ds))} == expected
    assert len(ds) == 2 * 2 * len(expected)


def test_unknown_case(root):
    with pytest.raises(DatasetError, match="unknown DELIVER sensor-failure case.*motionblur"):
        DeliverDataset(root, "train", cases=("blur",))


def test_missing_modality_file_is_listed(root):
    victim = root / "event/night/train/MAP_1_point1/000001_event_front.png"
    victim.unlink()
    with pytest.raises(DatasetError, match=r"(?s)event: 1 missing.*000001_event_front.*fix:"):
        DeliverDataset(root, "train")
    # not requested -> not required
    assert len(DeliverDataset(root, "train", modalities=("rgb", "depth"))) == 12


def test_many_missing_files_are_counted(root):
    for path in sorted((root / "lidar").rglob("*.png")):
        path.unlink()
    with pytest.raises(DatasetError, match=r"lidar: 12 missing, e\.g\. .*\(\+7 more\)"):
        DeliverDataset(root, "train")


def test_missing_label(root):
    (root / "semantic/cloud/train/MAP_2_point3_motionblur/000000_semantic_front.png").unlink()
    with pytest.raises(DatasetError, match=r"label: 1 missing.*000000_semantic_front"):
        DeliverDataset(root, "train", modalities=("rgb",))


def test_empty_split(root):
    with pytest.raises(DatasetError, match=r"no DELIVER frames .*val.*\['cloud', 'fog'"):
        DeliverDataset(root, "val", conditions=("cloud", "fog"))


def test_wrong_split_name(root):
    with pytest.raises(DatasetError, match=r"unknown DELIVER split 'training'.*train, val, test"):
        DeliverDataset(root, "training")


def test_wrong_root(tmp_path):
    with pytest.raises(DatasetError, match="no img/ folder"):
        DeliverDataset(tmp_path, "train")


def test_unknown_modality(root):
    with pytest.raises(DatasetError, match=r"unknown DELIVER modality \['thermal'\]"):
        DeliverDataset(root, "train", modalities=("rgb", "thermal"))


def test_registry(root):
    ds = build_dataset("DELIVER", root, "train", modalities=("rgb",), cases=())
    assert isinstance(ds, DeliverDataset) and len(ds) == 4
    with pytest.raises(
        DatasetError, match="unknown dataset 'kitti'; known: deliver, mcubes, muses"
    ):
        build_dataset("kitti", root, "train")


def test_index_out_of_range(root):
    ds = DeliverDataset(root, "train", modalities=("rgb",))
    with pytest.raises(IndexError):
        ds[len(ds)]

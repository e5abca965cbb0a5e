"""MCubeS and MUSES readers on small trees in their published layouts."""

from __future__ import annotations

import numpy as np
import pytest

from sam_moelora_ros.datasets import DatasetError, MCubeSDataset, MusesDataset, build_dataset
from sam_moelora_ros.datasets.muses import decode_lidar

from .conftest import H, W, lidar_stored, make_mcubes, make_muses

# -- MCubeS ------------------------------------------------------------------------------------


def test_mcubes_sample(tmp_path):
    root = make_mcubes(tmp_path / "mcubes")
    ds = MCubeSDataset(root, "train")
    assert len(ds) == 2 and ds.num_classes == 20 and ds.class_names[-1] == "sky"
    s = ds[0]
    assert s["name"] == "a1" and s["condition"] == "mcubes" and s["case"] == "clean"
    assert list(s["images"]) == ["rgb", "aolp", "dolp", "nir"]
    for image in s["images"].values():
        assert image.shape == (H, W, 3) and image.dtype == np.uint8
    assert s["images"]["rgb"][0, :, 0].tolist() == list(range(192, 192 + W))  # left crop
    aolp = s["images"]["aolp"]  # [sin, cos, sin] with sin = 1, cos = -1
    assert (aolp[..., 0] == 255).all() and (aolp[..., 1] == 0).all() and (aolp[..., 2] == 255).all()
    assert (s["images"]["dolp"] == 128).all()  # 0.5 * 255 rounded
    assert (s["images"]["nir"] == 255).all()  # 16-bit full scale
    assert (s["label"][:, :-2] == 3).all() and (s["label"][:, -2:] == 255).all()


def test_mcubes_val_reads_test_list(tmp_path):
    root = make_mcubes(tmp_path / "mcubes")
    ds = build_dataset("mcubes", root, "val", modalities=("rgb", "nir"))
    assert [ds[i]["name"] for i in range(len(ds))] == ["b1"]
    assert list(ds[0]["images"]) == ["rgb", "nir"]


def test_mcubes_missing_npy(tmp_path):
    root = make_mcubes(tmp_path / "mcubes")
    (root / "polL_aolp_cos" / "a2.npy").unlink()
    with pytest.raises(DatasetError, match=r"aolp \(polL_aolp_cos\): 1 missing.*a2\.npy"):
        MCubeSDataset(root, "train")
    assert len(MCubeSDataset(root, "train", modalities=("rgb", "dolp"))) == 2


def test_mcubes_missing_label(tmp_path):
    root = make_mcubes(tmp_path / "mcubes")
    (root / "GT" / "b1.png").unlink()
    with pytest.raises(DatasetError, match=r"label \(GT\): 1 missing.*b1\.png"):
        MCubeSDataset(root, "test")


def test_mcubes_layout_errors(tmp_path):
    root = make_mcubes(tmp_path / "mcubes")
    with pytest.raises(DatasetError, match="unknown MCubeS split 'eval'; choose from train, val"):
        MCubeSDataset(root, "eval")
    (root / "list_folder" / "train.txt").write_text("\n")
    with pytest.raises(DatasetError, match="train.txt is empty"):
        MCubeSDataset(root, "train")
    with pytest.raises(DatasetError, match="list_folder/test.txt is missing"):
        MCubeSDataset(tmp_path, "test")


# -- MUSES -------------------------------------------------------------------------------------


def test_muses_sample(tmp_path):
    root = make_muses(tmp_path / "muses")
    ds = MusesDataset(root, "train")
    assert len(ds) == 4 and ds.num_classes == 19 and ds.class_names[0] == "road"
    conditions = [ds[i]["condition"] for i in range(len(ds))]
    assert conditions == ["clear_day", "clear_day", "fog_night", "fog_night"]
    s = ds[0]
    assert s["name"] == "train/clear/day/REC0000_clear" and s["case"] == "clean"
    for image in s["images"].values():
        assert image.shape == (H, W, 3) and image.dtype == np.uint8
    assert (s["images"]["rgb"] == 40).all() and (s["images"]["event"] == 90).all()
    lidar = s["images"]["lidar"][..., 0]
    assert lidar[0, :4].tolist() == [128, 1, 255, 0]
    assert s["label"][0, 0] == 255 and (s["label"].ravel()[1:] == 13).all()


def test_muses_selection(tmp_path):
    root = make_muses(tmp_path / "muses")
    ds = MusesDataset(root, "train", modalities=("lidar",), conditions=("fog",), times=("night",))
    assert len(ds) == 2 and list(ds[0]["images"]) == ["lidar"]
    with pytest.raises(DatasetError, match=r"no MUSES frames.*\['rain'\]"):
        MusesDataset(root, "train", conditions=("rain",))
    with pytest.raises(DatasetError, match=r"unknown MUSES time of day \['dusk'\]"):
        MusesDataset(root, "train", times=("dusk",))


def test_muses_missing_files(tmp_path):
    root = make_muses(tmp_path / "muses")
    (root / "lidar/train/fog/night/REC0001_fog_lidar.png").unlink()
    with pytest.raises(DatasetError, match=r"lidar: 1 missing.*REC0001_fog_lidar\.png"):
        MusesDataset(root, "train")
    assert len(MusesDataset(root, "train", modalities=("rgb", "event"))) == 4


def test_muses_test_split_without_labels(tmp_path):
    root = make_muses(tmp_path / "muses", split="test", labels=False)
    with pytest.raises(DatasetError, match=r"(?s)label: 4 missing.*withholds test labels.*'val'"):
        MusesDataset(root, "test")


def test_muses_errors(tmp_path):
    with pytest.raises(DatasetError, match="no frame_camera/ folder"):
        MusesDataset(tmp_path, "train")
    root = make_muses(tmp_path / "muses")
    with pytest.raises(DatasetError, match="unknown MUSES split 'valid'"):
        MusesDataset(root, "valid")


def test_decode_lidar_rules():
    raw = np.array([[0, lidar_stored(80.0), lidar_stored(-5.0)]], dtype=np.uint16)
    out = decode_lidar(raw)
    assert out.shape == (1, 3, 3)
    assert out[0, :, 0].tolist() == [0, 255, 1]
    already = np.full((2, 2, 3), 7, np.uint8)
    assert (decode_lidar(already) == 7).all()

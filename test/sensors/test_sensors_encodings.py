"""The input contract: encodings by name and parameters, checked, serialised, or refused."""

from __future__ import annotations

import numpy as np
import pytest

from sam_moelora_ros.sensors.encodings import (
    DEFAULT_CONTRACT,
    Encoding,
    EncodingError,
    InputContract,
)
from sam_moelora_ros.sensors.representation import encode_depth, encode_events, encode_lidar


def test_default_contract_is_todays_encodings_as_json() -> None:
    assert DEFAULT_CONTRACT.to_dict() == {
        "rgb": {"name": "rgb8"},
        "depth": {"name": "linear", "max_range": 80.0},
        "event": {"name": "frame", "window": 0.05, "max_count": 0.0},
        "lidar": {"name": "range_intensity", "max_range": 80.0, "max_intensity": 255.0,
                  "fill_radius": 1},
    }  # fmt: skip
    assert InputContract.from_json(DEFAULT_CONTRACT.to_json()) == DEFAULT_CONTRACT


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"depth": {"name": "log"}}, "unknown depth input encoding 'log'"),
        ({"depth": {"name": "linear", "max_range": -1}}, "'max_range' must be a finite number"),
        ({"depth": {"name": "linear", "max_range": 1e30}}, "'max_range' must be a finite number"),
        ({"depth": {"name": "linear", "scale": 2}}, "has no parameter(s) ['scale']"),
        ({"event": {"name": "voxel", "bins": 5}}, "'bins' must be 3"),
        ({"lidar": {"max_range": 10}}, "'lidar' must be an object with a 'name'"),
        ([1, 2], "must be an object"),
    ],
)
def test_malformed_contracts_name_the_field(data: object, message: str) -> None:
    with pytest.raises(EncodingError, match=None) as caught:
        InputContract.from_dict(data, source="adapter.safetensors")
    assert message in str(caught.value) and "adapter.safetensors" in str(caught.value)


def test_unservable_encoding_is_one_line_with_the_way_out() -> None:
    contract = DEFAULT_CONTRACT.replace("lidar", "deliver_png")
    contract.check_servable(("rgb", "depth"))  # lidar not served: fine
    with pytest.raises(EncodingError) as caught:
        contract.check_servable(("rgb", "lidar"))
    text = str(caught.value)
    assert "\n" not in text
    for part in ("lidar", "'deliver_png'", "range_intensity", "sensors.lidar.enabled: false"):
        assert part in text


def test_depth_max_range_scales_the_grey_levels() -> None:
    depth = np.full((2, 3), 5.0, np.float32)
    far = encode_depth(depth, DEFAULT_CONTRACT["depth"])
    near = encode_depth(depth, Encoding.make("depth", "linear", max_range=20.0))
    assert int(far[0, 0, 0]) == 1 + round(254 * 5 / 80) and int(near[0, 0, 0]) == 1 + round(
        254 * 5 / 20
    )
    assert (near.astype(int) - 1 == 4 * (far.astype(int) - 1)).all()


def test_lidar_and_event_encoders_follow_their_parameters() -> None:
    sparse = np.full((3, 3), np.nan, np.float32)
    sparse[1, 1] = 10.0
    inten = np.full((3, 3), np.nan, np.float32)
    inten[1, 1] = 50.0
    unfilled = Encoding.make("lidar", "range_intensity", fill_radius=0, max_intensity=100.0)
    image = encode_lidar(sparse, inten, unfilled)
    assert image[0, 0].tolist() == [0, 0, 0]  # no hole filling
    assert image[1, 1].tolist() == [1 + round(254 * 10 / 80)] * 2 + [1 + round(254 * 0.5)]
    x, y = np.array([0, 0, 1]), np.array([0, 0, 0])
    t, p = np.zeros(3), np.array([1, 1, 0])
    fixed = encode_events(x, y, t, p, (1, 2), Encoding.make("event", "frame", max_count=4.0))
    assert fixed[0, 0].tolist() == [round(255 * 2 / 4), 0, round(255 * 2 / 4)]
    with pytest.raises(EncodingError, match="cannot be computed here"):
        encode_depth(np.ones((2, 2)), Encoding.make("depth", "hha"))

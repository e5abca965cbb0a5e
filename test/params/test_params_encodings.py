"""The node takes the model's input contract; its event parameters may only confirm it."""

from __future__ import annotations

import pytest

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.params import ParameterError, build_config
from sam_moelora_ros.params.config import apply_model_encodings
from sam_moelora_ros.sensors.encodings import DEFAULT_CONTRACT


def test_the_models_encodings_win_without_parameters() -> None:
    model = DEFAULT_CONTRACT.replace("depth", max_range=10.0).replace("event", "voxel")
    cfg = apply_model_encodings(build_config({}), model, MODALITIES)
    assert cfg.encodings["depth"]["max_range"] == 10.0
    assert cfg.encodings["event"].name == "voxel"
    assert all(view.encodings == cfg.encodings for _, view in cfg.camera_views())


def test_a_contradicting_event_parameter_names_both() -> None:
    model = DEFAULT_CONTRACT.replace("event", "voxel", window=0.1)
    cfg = build_config({"sensors.event.representation": "frame"})
    with pytest.raises(ParameterError, match="sensors.event.representation") as caught:
        apply_model_encodings(cfg, model, MODALITIES)
    assert "voxel" in str(caught.value) and "'frame'" in str(caught.value)
    with pytest.raises(ParameterError, match="sensors.event.window.*0.1 s event windows"):
        apply_model_encodings(build_config({"sensors.event.window": 0.02}), model, MODALITIES)
    same = build_config({"sensors.event.representation": "voxel", "sensors.event.window": 0.1})
    assert apply_model_encodings(same, model, MODALITIES).encodings["event"]["window"] == 0.1


def test_an_encoding_the_node_cannot_compute_stops_start_up_unless_disabled() -> None:
    model = DEFAULT_CONTRACT.replace("lidar", "deliver_png")
    with pytest.raises(ParameterError, match="sensors.lidar.enabled") as caught:
        apply_model_encodings(build_config({}), model, MODALITIES)
    assert "'deliver_png'" in str(caught.value) and "\n" not in str(caught.value)
    off = build_config({"sensors.lidar.enabled": False})
    assert apply_model_encodings(off, model, MODALITIES).encodings["lidar"].name == "deliver_png"


def test_set_event_parameters_shape_the_encodings_before_a_model_is_known() -> None:
    cfg = build_config({"sensors.event.window": 0.01, "sensors.event.representation": "voxel"})
    assert cfg.encodings["event"].to_dict() == {
        "name": "voxel", "bins": 3, "window": 0.01, "max_count": 0.0,
    }  # fmt: skip
    assert build_config({}).encodings == DEFAULT_CONTRACT

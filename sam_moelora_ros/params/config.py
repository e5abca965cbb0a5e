"""The node's validated configuration: every parameter checked alone and in combination. No rclpy.

:func:`build_config` turns the flat, dotted parameter values (from a params file, the command line
or a replay) into a typed :class:`NodeConfig`, naming the first invalid parameter and its fix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sam_moelora_ros import MODALITIES
from sam_moelora_ros.params.cameras import CameraConfig, build_cameras
from sam_moelora_ros.params.check import check_value
from sam_moelora_ros.params.ranges import limits_from
from sam_moelora_ros.params.specs import PARAMETERS, ParameterError, shared_topic
from sam_moelora_ros.sensors.encodings import DEFAULT_CONTRACT, EncodingError, InputContract
from sam_moelora_ros.sensors.extrinsics import extrinsic_matrix
from sam_moelora_ros.sensors.limits import DEFAULT_LIMITS, Limits

CLOUD_TYPE = "sensor_msgs/msg/PointCloud2"
TYPE_ALIASES = {"image": "sensor_msgs/msg/Image", "cloud": CLOUD_TYPE}
"""The short names ``sensors.<s>.message_type`` accepts."""


def canonical_type(type_name: str) -> str:
    """``image`` / ``cloud`` -> full names; ``pkg/Name`` -> ``pkg/msg/Name``; others as given."""
    name = TYPE_ALIASES.get(type_name, type_name)
    parts = name.split("/")
    return f"{parts[0]}/msg/{parts[1]}" if len(parts) == 2 else name


@dataclass(frozen=True)
class SensorConfig:
    """One sensor's subscription and synchronisation settings."""

    name: str
    enabled: bool
    topic: str
    message_type: str
    """``auto`` or the full type name (``image`` / ``cloud`` expanded)."""
    tolerance: float
    max_wait: float
    stale_timeout: float


@dataclass(frozen=True)
class NodeConfig:
    """The validated parameters of the node (see :data:`PARAMETERS` for each one's meaning)."""

    adapter: str
    sam_checkpoint: str
    device: str
    dtype: str
    merge_lora: bool
    torch_threads: int
    compile_mode: str
    anchor: str
    fallback_anchors: tuple[str, ...]
    anchor_timeout: float
    qos_profile: str
    qos_depth: int
    sensors: dict[str, SensorConfig]
    event_representation: str
    camera_info_topic: str
    extrinsic: np.ndarray = field(repr=False)
    use_tf: bool
    color: bool
    color_alpha: float
    confidence: bool
    palette_file: str
    diagnostics_period: float
    poll_period: float
    event_window: float = 0.0
    event_scale_to_camera: bool = False
    backend: str = "torch"
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    provider_fallback: bool = False
    engine_cache_dir: str = ""
    labels_compressed: bool = False
    lidar_labelled: bool = True
    cameras: tuple[CameraConfig, ...] = ()
    """The ``cameras`` groups; empty: one camera, the shared topics (see :meth:`camera_views`)."""
    encodings: InputContract = DEFAULT_CONTRACT
    """How each sensor's network image is made: the defaults with the event parameters that are
    set, then the model's contract once :func:`apply_model_encodings` ran (the node and replay
    run it when the model is loaded)."""
    limits: Limits = DEFAULT_LIMITS
    """The ``limits.*`` decode budgets every decoder is given."""

    @property
    def enabled(self) -> tuple[str, ...]:
        """Enabled sensors in canonical order."""
        return tuple(n for n in MODALITIES if self.sensors[n].enabled)

    def camera_views(self) -> list[tuple[str, NodeConfig]]:
        """Each camera group's name and its view of the configuration.

        A view is this config with the group's sensors, topics, camera_info topic and extrinsic,
        and the anchor policy narrowed to its sensors (the anchor if the group has it, else the
        first fallback it has, else its first sensor), so everything built per camera
        (subscriptions, decoders, synchroniser) takes a plain :class:`NodeConfig`. Without
        ``cameras``: one view, ``("", self)``.
        """
        if not self.cameras:
            return [("", self)]
        return [(camera.name, self._camera_view(camera)) for camera in self.cameras]

    def _camera_view(self, camera: CameraConfig) -> NodeConfig:
        sensors = {
            n: dataclasses.replace(s, enabled=n in camera.sensors, topic=camera.topics[n])
            for n, s in self.sensors.items()
        }
        candidates = [self.anchor, *self.fallback_anchors, *camera.sensors]
        anchor = next(n for n in candidates if n in camera.sensors)
        fallbacks = tuple(n for n in self.fallback_anchors if n in camera.sensors and n != anchor)
        return dataclasses.replace(
            self,
            sensors=sensors,
            anchor=anchor,
            fallback_anchors=fallbacks,
            camera_info_topic=camera.camera_info_topic,
            extrinsic=camera.extrinsic,
            cameras=(),
        )


def build_config(values: Mapping[str, Any]) -> NodeConfig:
    """Validate every parameter and their combinations; return the typed config.

    Args:
        values: dotted parameter name -> value; missing names take their defaults.
    Raises:
        ParameterError: naming the first invalid parameter.
    """
    merged = {spec.name: spec.default for spec in PARAMETERS}
    merged.update(values)
    for name, value in merged.items():
        check_value(name, value)
    sensors = {
        n: SensorConfig(
            name=n,
            enabled=bool(merged[f"sensors.{n}.enabled"]),
            topic=str(merged[f"sensors.{n}.topic"]),
            message_type=canonical_type(str(merged[f"sensors.{n}.message_type"])),
            tolerance=float(merged[f"sensors.{n}.tolerance"]),
            max_wait=float(merged[f"sensors.{n}.max_wait"]),
            stale_timeout=float(merged[f"sensors.{n}.stale_timeout"]),
        )
        for n in MODALITIES
    }
    enabled = [n for n in MODALITIES if sensors[n].enabled]
    if not enabled:
        raise ParameterError(
            "sensors.rgb.enabled", False, "no sensor is enabled; enable at least one sensor"
        )
    anchor = str(merged["anchor"])
    if not sensors[anchor].enabled:
        raise ParameterError(
            "anchor", anchor, f"names a disabled sensor; enable sensors.{anchor} or pick {enabled}"
        )
    fallbacks: list[str] = []
    for name in merged["fallback_anchors"]:
        if name in ("", "none"):
            continue
        if name not in MODALITIES:
            raise ParameterError(
                "fallback_anchors",
                list(merged["fallback_anchors"]),
                f"{name!r} is not a sensor; use names from {list(MODALITIES)}",
            )
        if sensors[name].enabled and name != anchor and name not in fallbacks:
            fallbacks.append(name)
    shared = shared_topic({n: sensors[n].topic for n in enabled})
    if shared:
        raise ParameterError(
            f"sensors.{shared[0]}.topic", shared[1], "is used by more than one sensor"
        )
    return NodeConfig(
        adapter=str(merged["model.adapter"]),
        sam_checkpoint=str(merged["model.sam_checkpoint"]),
        device=str(merged["model.device"]),
        dtype=str(merged["model.dtype"]),
        merge_lora=bool(merged["model.merge_lora"]),
        torch_threads=int(merged["model.torch_threads"]),
        compile_mode=str(merged["model.compile"]),
        anchor=anchor,
        fallback_anchors=tuple(fallbacks),
        anchor_timeout=float(merged["anchor_timeout"]),
        qos_profile=str(merged["qos.profile"]),
        qos_depth=int(merged["qos.depth"]),
        sensors=sensors,
        event_representation=str(merged["sensors.event.representation"]),
        camera_info_topic=str(merged["camera_info_topic"]),
        extrinsic=extrinsic_matrix(merged["lidar.extrinsic"]),
        use_tf=bool(merged["lidar.use_tf"]),
        color=bool(merged["output.color"]),
        color_alpha=float(merged["output.color_alpha"]),
        confidence=bool(merged["output.confidence"]),
        labels_compressed=bool(merged["output.labels_compressed"]),
        lidar_labelled=bool(merged["output.lidar_labelled"]),
        palette_file=str(merged["output.palette_file"]),
        diagnostics_period=float(merged["diagnostics.period"]),
        poll_period=float(merged["sync.poll_period"]),
        event_window=float(merged["sensors.event.window"]),
        event_scale_to_camera=bool(merged["sensors.event.scale_to_camera"]),
        backend=str(merged["model.backend"]),
        providers=tuple(str(p) for p in merged["model.providers"]),
        provider_fallback=bool(merged["model.provider_fallback"]),
        engine_cache_dir=str(merged["model.engine_cache_dir"]),
        cameras=build_cameras(merged),
        encodings=_parameter_encodings(merged),
        limits=limits_from(merged),
    )


def _parameter_encodings(merged: Mapping[str, Any]) -> InputContract:
    """``DEFAULT_CONTRACT`` with the event parameters that are set (before a model is known)."""
    rep = str(merged["sensors.event.representation"])
    window = float(merged["sensors.event.window"])
    params = {"window": window} if window > 0 else {}
    name = None if rep == "auto" else rep
    if name is None and not params:
        return DEFAULT_CONTRACT
    return DEFAULT_CONTRACT.replace("event", name, **params)


def check_model_modalities(config: NodeConfig, model_modalities: tuple[str, ...]) -> None:
    """Every enabled sensor must be a modality the loaded model was trained on."""
    for name in config.enabled:
        if name not in model_modalities:
            raise ParameterError(
                f"sensors.{name}.enabled",
                True,
                f"the model takes only {list(model_modalities)}; set sensors.{name}.enabled: "
                "false or load a model trained with this modality",
            )


def apply_model_encodings(
    config: NodeConfig, contract: InputContract, model_modalities: tuple[str, ...]
) -> NodeConfig:
    """``config`` with the model's input contract, checked against the node's parameters.

    The model's encodings win: a model trained with depth ``max_range: 10`` gets 10 m depth
    images without any parameter. The two event parameters may only confirm the model's:
    ``sensors.event.representation`` (``auto`` = the model's) and ``sensors.event.window``
    (``0`` = the model's); any other value that differs is a :class:`ParameterError` naming
    both. An enabled sensor whose encoding the node cannot compute (e.g. DELIVER's pre-rendered
    LiDAR images) is one too, saying how to get out of it.
    """
    resolved = contract.restrict(tuple(dict.fromkeys((*model_modalities, *MODALITIES))))
    event = resolved["event"]
    rep, window = config.event_representation, config.event_window
    if event.live:
        if rep != "auto" and rep != event.name:
            raise ParameterError(
                "sensors.event.representation",
                rep,
                f"the model was trained on event encoding {event.describe()}; set it to "
                f"'auto' (or {event.name!r}) or load a model trained with {rep!r}",
            )
        if window > 0 and abs(window - float(event["window"])) > 1e-9:
            raise ParameterError(
                "sensors.event.window",
                window,
                f"the model was trained on {float(event['window']):g} s event windows "
                f"({event.describe()}); set it to 0 (the model's) or load a model trained with "
                f"{window:g} s windows",
            )
    served = tuple(n for n in config.enabled if n in model_modalities)
    try:
        resolved.check_servable(served)
    except EncodingError as exc:
        raise ParameterError(
            f"sensors.{_first_unservable(resolved, served)}.enabled", True, str(exc)
        ) from exc
    return dataclasses.replace(config, encodings=resolved)


def _first_unservable(contract: InputContract, modalities: tuple[str, ...]) -> str:
    return next(n for n in modalities if not contract[n].live)

"""The ONNX Runtime backend: an exported model folder run by ONNX Runtime behind the Segmenter.

Design: :class:`OnnxRuntimeModel` stands in for the torch model. It takes the same input
(``{modality: B x 3 x S x S}`` normalised tensors) and returns the same output (logits, and with
``return_extras`` the router weights of the present modalities), so :class:`OnnxRuntimeSegmenter`
is the unchanged :class:`~sam_moelora_ros.inference.segmenter.Segmenter` around it: the same
preprocessing (letterbox, normalisation), postprocessing (bilinear resize, softmax, arg-max) and
call signature, by construction rather than by a copy that could drift. Torch still does that pre-
and postprocessing on the CPU; ONNX Runtime runs the network.

One frame: with every modality present, the all-modalities encoder graph runs them in one
batched pass (as the torch model does); otherwise each present modality's own encoder graph runs
(an absent one costs nothing). Then the fusion graph takes every modality's features (zeros for
the absent ones) and the presence mask (see :mod:`sam_moelora_ros.export.graphs`). The features
stay where the encoder left them (ONNX Runtime I/O binding: on the GPU with the CUDA and TensorRT
providers); only the images go in and the logits and router weights come out.

Providers (CPU, CUDA, TensorRT), their options and the TensorRT engine cache:
:mod:`.onnx_providers`.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sam_moelora_ros.inference.device import SegmenterError
from sam_moelora_ros.inference.onnx_providers import (
    DEFAULT_PROVIDERS,
    GPU_PROVIDERS,
    PRECISIONS,
    default_engine_cache_dir,
    engine_cache_path,
    gpu_identity,
    provider_options,
    resolve_providers,
    tensorrt_version,
)
from sam_moelora_ros.inference.segmenter import Segmenter
from sam_moelora_ros.onnx_format import ExportError
from sam_moelora_ros.onnx_format.manifest import FORMAT, Manifest, image_input, level_input

LOG = logging.getLogger(__name__)


class OnnxRuntimeModel(nn.Module):
    """An exported model folder behind the torch model's call signature (module docstring).

    ``model(inputs)`` with ``inputs`` ``{modality: B x 3 x H x W}`` float tensors (any non-empty
    subset of the model's modalities) returns ``B x K x H x W`` logits; ``return_extras=True``
    returns ``(logits, {"router_weights": {modality: B x L}, "modalities": present})`` (no
    ``aux_logits``: the auxiliary head is a training signal and is not exported). Outputs are on
    the inputs' device, as the torch model's are.

    Args:
        location: the exported folder (or its manifest.json), or a read :class:`Manifest`.
        providers: ONNX Runtime providers in priority order (see the module docstring).
        allow_fallback: drop providers that are missing or fail to start instead of raising.
        engine_cache_dir: TensorRT engine cache root ('' or None: :func:`default_engine_cache_dir`).
        device_id: the GPU for the CUDA and TensorRT providers.
        threads: CPU intra-op threads (0: ONNX Runtime's default).
        fp16: TensorRT builds float16 engines (only with the TensorRT provider).
        verify_files: check every file's sha256 against the manifest before loading.
    Raises:
        SegmenterError: the folder is not a whole export, or a provider cannot be used.
    """

    def __init__(
        self,
        location: str | Path | Manifest,
        *,
        providers: Sequence[str] = DEFAULT_PROVIDERS,
        allow_fallback: bool = False,
        engine_cache_dir: str | Path | None = None,
        device_id: int = 0,
        threads: int = 0,
        fp16: bool = False,
        verify_files: bool = True,
    ) -> None:
        super().__init__()
        import onnxruntime as ort

        from sam_moelora_ros.model.config import ModelConfig

        try:
            manifest = location if isinstance(location, Manifest) else Manifest.read(location)
            if verify_files:
                manifest.verify_files()
        except ExportError as exc:
            raise SegmenterError(str(exc), input_name="adapter") from exc
        self.manifest = manifest
        self.cfg = ModelConfig.from_dict(manifest.config)
        self.modalities: tuple[str, ...] = manifest.modalities
        self.input_encodings = manifest.input_encodings
        self.num_levels = len(manifest.levels)
        chosen = resolve_providers(providers, ort.get_available_providers(), allow_fallback)
        if fp16 and "TensorrtExecutionProvider" not in chosen:
            raise SegmenterError(
                "float16 with the onnxruntime backend needs the TensorRT provider (it builds "
                "float16 engines from the float32 graphs); use dtype float32 with "
                f"{chosen}",
                input_name="dtype",
            )
        self.requested = chosen
        self.allow_fallback = allow_fallback
        self.device_id = device_id
        self.engine_cache: Path | None = None
        if "TensorrtExecutionProvider" in chosen:
            root = engine_cache_dir or default_engine_cache_dir()
            self.engine_cache = engine_cache_path(
                root, manifest.model_hash, gpu_identity(device_id), tensorrt_version()
            )
            self.engine_cache.mkdir(parents=True, exist_ok=True)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(0, int(threads))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle pool threads sleep instead of spinning: the CPU is shared with torch's pre- and
        # postprocessing, the other graphs' pools and the node's threads (onnx_providers.py).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Weights are read from weights.bin, mapped once and shared by every graph; prepacking
        # would give each session a private copy (docs/deploy.md: its memory cost, no faster).
        options.add_session_config_entry("session.disable_prepacking", "1")
        self._options = options
        self._fp16 = fp16
        level_dims = {
            level_input(m, i): manifest.levels[i]
            for m in manifest.modalities
            for i in range(self.num_levels)
        }
        box = manifest.input_hw
        levels = {f"level{i}": manifest.levels[i] for i in range(self.num_levels)}
        self.encoders = {
            m: self._session(
                ort,
                manifest.encoders[m],
                {"image": (3, *box)},
                "encoder",
                modality=m,
                outputs=levels,
            )
            for m in manifest.modalities
        }
        self.batched: Any = None
        if manifest.batched:
            images = {image_input(m): (3, *box) for m in manifest.modalities}
            modalities = "+".join(manifest.modalities)
            self.batched = self._session(
                ort, manifest.batched, images, "encoder", modality=modalities, outputs=level_dims
            )
        logits = {"logits": (manifest.num_classes, *box)}
        self.fusion = self._session(ort, manifest.fusion, level_dims, "fusion", outputs=logits)
        self.providers: list[str] = list(self.fusion.get_providers())
        on_gpu = any(p in GPU_PROVIDERS for p in self.providers)
        self._device = ("cuda", device_id) if on_gpu else ("cpu", 0)
        self._zeros: dict[tuple[int, int], Any] = {}
        self._lock = threading.Lock()
        self.encoder_runs: Counter[str] = Counter()
        """Runs per encoder graph: a modality's, or ``rgb+depth+...`` for all at once."""

    def _session(
        self,
        ort: Any,
        name: str,
        profile: Mapping[str, Sequence[int]],
        role: str,
        modality: str = "",
        outputs: Mapping[str, Sequence[int]] | None = None,
    ) -> Any:
        """One checked InferenceSession (its providers, metadata, and the shapes of its inputs
        ``profile`` and ``outputs``, batch dimension apart, against the manifest's)."""
        path = self.manifest.root / name
        providers = [
            (
                p,
                provider_options(
                    p,
                    device_id=self.device_id,
                    engine_cache=self.engine_cache,
                    fp16=self._fp16,
                    profile=profile,
                ),
            )
            for p in self.requested
        ]
        try:
            session = ort.InferenceSession(str(path), self._options, providers=providers)
        except Exception as exc:
            raise SegmenterError(
                f"ONNX Runtime cannot load {path} with {self.requested}: {exc}",
                input_name="adapter",
            ) from exc
        started = session.get_providers()
        failed = [p for p in self.requested if p not in started]
        if failed and not self.allow_fallback:
            raise SegmenterError(
                f"ONNX Runtime provider(s) {failed} failed to start for {name} (running on "
                f"{started} instead; see ONNX Runtime's log above for why: missing CUDA, cuDNN "
                "or TensorRT libraries, or no GPU); fix the install, drop them from the "
                "providers, or allow the fallback (model.provider_fallback: true)",
                input_name="providers",
            )
        if failed:
            LOG.warning("%s: provider(s) %s failed to start; running on %s", name, failed, started)
        meta = session.get_modelmeta().custom_metadata_map
        expected = {
            "format": FORMAT,
            "source_sha256": self.manifest.source_sha256,
            "role": role,
            "modality": modality,
        }
        wrong = {k: meta.get(k, "") for k, v in expected.items() if meta.get(k, "") != v}
        if wrong:
            raise SegmenterError(
                f"{path} does not belong to the export in {self.manifest.root} (metadata "
                f"{wrong}, the manifest expects {expected}); copy the whole folder of one export",
                input_name="adapter",
            )
        _check_shapes(path, "input", session.get_inputs(), profile)
        _check_shapes(path, "output", session.get_outputs(), outputs or {})
        return session

    def _zero_features(self, batch: int, level: int) -> Any:
        """A cached all-zero ``batch x C x h x w`` OrtValue on the features' device."""
        import onnxruntime as ort

        key = (batch, level)
        value = self._zeros.get(key)
        if value is None:
            zeros = np.zeros((batch, *self.manifest.levels[level]), dtype=np.float32)
            value = ort.OrtValue.ortvalue_from_numpy(zeros, *self._device)
            with self._lock:
                self._zeros[key] = value
        return value

    def forward(
        self, inputs: Mapping[str, torch.Tensor], return_extras: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
        unknown = sorted(set(inputs) - set(self.modalities))
        if unknown:
            raise SegmenterError(
                f"unknown modality {unknown}; this model was built for {list(self.modalities)}"
            )
        present = tuple(m for m in self.modalities if m in inputs)
        if not present:
            raise SegmenterError(f"need at least one modality of {list(self.modalities)}")
        first = inputs[present[0]]
        out_size = tuple(first.shape[-2:])
        box = self.manifest.input_hw
        batch = int(first.shape[0])
        images = {m: self._image(inputs[m], box) for m in present}  # alive until the runs end
        fusion = self.fusion.io_binding()
        if self.batched is not None and len(present) == len(self.modalities):
            binding = self.batched.io_binding()
            for m in present:
                binding.bind_cpu_input(image_input(m), images[m])
            names = [level_input(m, i) for m in present for i in range(self.num_levels)]
            for name in names:
                binding.bind_output(name, *self._device)
            self.batched.run_with_iobinding(binding)
            self.encoder_runs["+".join(present)] += 1
            for name, value in zip(names, binding.get_outputs(), strict=True):
                fusion.bind_ortvalue_input(name, value)
        else:
            for m in self.modalities:
                if m in present:
                    binding = self.encoders[m].io_binding()
                    binding.bind_cpu_input("image", images[m])
                    for i in range(self.num_levels):
                        binding.bind_output(f"level{i}", *self._device)
                    self.encoders[m].run_with_iobinding(binding)
                    self.encoder_runs[m] += 1
                    values = binding.get_outputs()
                else:
                    values = [self._zero_features(batch, i) for i in range(self.num_levels)]
                for i, value in enumerate(values):
                    fusion.bind_ortvalue_input(level_input(m, i), value)
        mask = np.array([m in present for m in self.modalities], dtype=np.float32)
        fusion.bind_cpu_input("present", mask)
        fusion.bind_output("logits", "cpu")
        fusion.bind_output("router_weights", "cpu")
        self.fusion.run_with_iobinding(fusion)
        logits_np, weights_np = fusion.copy_outputs_to_cpu()
        logits = torch.from_numpy(logits_np).to(first.device)
        if out_size != box:
            logits = F.interpolate(logits, size=out_size, mode="bilinear", align_corners=False)
        if not return_extras:
            return logits
        weights = torch.from_numpy(weights_np).to(first.device)  # M x B x L
        router = {m: weights[self.modalities.index(m)] for m in present}
        return logits, {"router_weights": router, "modalities": present}

    def _image(self, x: torch.Tensor, box: tuple[int, int]) -> np.ndarray:
        """A contiguous float32 ``B x 3 x H x W`` array at the graphs' ``box`` (a square input
        of another side is resized as the torch model would). A content-only export takes one
        camera's content box only: any other shape is refused, naming the export to make."""
        x = x.detach()
        shape = (int(x.shape[-2]), int(x.shape[-1]))
        if shape != box:
            if self.cfg.input_geometry == "content":
                raise SegmenterError(
                    f"this ONNX export of a content-only model takes {box[0]}x{box[1]} content "
                    f"boxes (the camera it was exported for), not {shape[0]}x{shape[1]}; "
                    "export it again with --camera-hw set to this camera's frame size",
                    input_name="adapter",
                )
            x = F.interpolate(x.float(), size=box, mode="bilinear", align_corners=False)
        return np.ascontiguousarray(x.cpu().numpy(), dtype=np.float32)

    def describe(self) -> str:
        return f"onnxruntime[{','.join(self.providers)}]"


def _check_shapes(
    path: Path, kind: str, declared: Sequence[Any], expected: Mapping[str, Sequence[int]]
) -> None:
    """Each ``expected`` name is one of the graph's ``declared`` inputs/outputs with that shape
    after its batch dimension (a named, dynamic dimension matches any size)."""
    shapes = {arg.name: list(arg.shape) for arg in declared}
    for name, dims in expected.items():
        shape = shapes.get(name)
        if shape is None:
            raise SegmenterError(
                f"{path} has no {kind} {name!r} (it has {sorted(shapes)}), which its manifest "
                "describes; export the model again",
                input_name="adapter",
            )
        rest = shape[1:]
        fixed = len(rest) == len(dims) and all(
            not isinstance(d, int) or d == want for d, want in zip(rest, dims, strict=True)
        )
        if not fixed:
            raise SegmenterError(
                f"{path}: {kind} {name!r} has shape {shape}, the manifest says [batch, "
                f"{', '.join(str(d) for d in dims)}]; export the model again",
                input_name="adapter",
            )


class OnnxRuntimeSegmenter(Segmenter):
    """The :class:`Segmenter` on an exported folder run by ONNX Runtime (module docstring).

    Same call signature and outputs as the torch Segmenter (``__call__``, ``segment_batch``,
    ``warmup``, ``describe``); the tensors it hands the model stay on the CPU, ONNX Runtime moves
    them to the provider's device. Arguments are those of :class:`OnnxRuntimeModel`, plus
    ``dtype`` (``"float32"``, or ``"float16"`` with TensorRT) and ``device`` (``"cuda:N"`` picks
    the GPU of the CUDA/TensorRT providers; the providers, not the device, decide where it runs).
    """

    backend = "onnxruntime"

    def __init__(
        self,
        location: str | Path | Manifest,
        *,
        providers: Sequence[str] = DEFAULT_PROVIDERS,
        allow_fallback: bool = False,
        engine_cache_dir: str | Path | None = None,
        device: str = "auto",
        dtype: str = "float32",
        threads: int = 0,
        verify_files: bool = True,
    ) -> None:
        if dtype not in PRECISIONS:
            raise SegmenterError(
                f"dtype {dtype!r} is not supported by the onnxruntime backend; use one of "
                f"{list(PRECISIONS)} (float16: TensorRT only)",
                input_name="dtype",
            )
        device_id = 0
        if isinstance(device, str) and device.startswith("cuda:"):
            device_id = int(device.split(":", 1)[1])
        self.runtime = OnnxRuntimeModel(
            location,
            providers=providers,
            allow_fallback=allow_fallback,
            engine_cache_dir=engine_cache_dir,
            device_id=device_id,
            threads=threads,
            fp16=dtype == "float16",
            verify_files=verify_files,
        )
        self.precision = dtype
        super().__init__(
            self.runtime, device="cpu", dtype="float32", merge_lora=False, pin_memory=False
        )

    def warmup(
        self,
        size_hw: tuple[int, int] | None = None,
        modality_sets: Sequence[Sequence[str]] | None = None,
    ) -> float:
        """Blank frames through every graph: all modalities, then each alone (default).

        Every graph then has its session warm and, with TensorRT, its engine built or loaded
        from the cache now rather than when a sensor first drops out. The default frame size
        is the graphs' own input (a content-only export takes no other box).
        """
        if size_hw is None:
            size_hw = self.runtime.manifest.input_hw
        if modality_sets is None:
            singles = [(m,) for m in self.modalities] if len(self.modalities) > 1 else []
            modality_sets = [self.modalities, *singles]
        return super().warmup(size_hw, modality_sets)

    @property
    def providers(self) -> list[str]:
        """The providers the sessions actually run on (after any fallback)."""
        return self.runtime.providers

    def describe(self) -> str:
        """One line for logs and diagnostics: backend and providers, precision, size, classes."""
        return (
            f"{self.runtime.describe()} {self.precision} S={self.image_size} "
            f"K={self.num_classes} modalities={','.join(self.modalities)} "
            f"(export of {self.runtime.manifest.source})"
        )

"""Write a merged :class:`MoELoRASegmentor` as ONNX graphs: one per modality's encoder, one fusion.

See :mod:`.graphs` for what each graph computes and why the model is split this way, and
:mod:`sam_moelora_ros.onnx_format.manifest` for the folder layout. Choices:

* **Exporter**: ``torchscript`` (``torch.onnx.export(dynamo=False)``, opset 17) by default: it
  exports vit_b's encoder in seconds rather than the minute the ``dynamo`` exporter needs (opset
  18, needs ``onnxscript``), and ONNX Runtime runs both graphs equally fast. Opset 17 is the
  newest that TensorRT 8.6 (JetPack 6.0) parses and has ``LayerNormalization`` as one op.
  ``dynamo`` is there for the day torch drops the TorchScript exporter.
* **SAM 1 ViT blocks** are exported as :class:`~.vit_blocks.LeanBlock` s: the same arithmetic
  without the projections of the window padding tokens (vit_b at 512 px: 8 of 12 blocks pad
  32 x 32 tokens to 42 x 42).
* **Dynamic axes**: the batch dimension only (``batch`` on every input and output). The image
  is fixed: the ``ModelConfig.image_size`` square the Segmenter letterboxes every frame to, or,
  for a content-only model, the content box of one camera's frames (``--camera-hw``;
  :mod:`sam_moelora_ros.onnx_format.input_box`; recorded as ``info.input_hw``).
* **Weights**: every distinct tensor is stored once in ``weights.bin`` (ONNX external data), so the
  frozen encoder, which all modality graphs share except for their merged ``qkv`` weights, is on
  disk once, not once per modality (vit_b: 0.4 GB instead of 1.5 GB). ``share_weights=False``
  keeps each graph self-contained (no external data) instead.
* **Metadata**: every graph's ``metadata_props`` hold the format, the model config, the class
  table and the sha256 of the source adapter, besides the folder's ``manifest.json``.
* **Verification** (``verify=True``): after writing, ONNX Runtime runs the written files on a
  seeded random frame with all modalities and with the first one missing, and the logits and
  router weights must match the torch model's on the same inputs (the export is refused if not).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import external_data_helper

import sam_moelora_ros
from sam_moelora_ros.classes import DELIVER_CLASSES, palette_for
from sam_moelora_ros.model.segmentor import MoELoRASegmentor
from sam_moelora_ros.onnx_format import ExportError
from sam_moelora_ros.onnx_format.input_box import export_input_hw
from sam_moelora_ros.onnx_format.manifest import (
    FORMAT,
    FORMAT_VERSION,
    LOADABLE_SUFFIXES,
    Manifest,
    image_input,
    level_input,
    sha256_file,
)

from .graphs import AllModalitiesEncoder, EncoderBranch, FusionHead, plain_qkv
from .vit_blocks import lean_vit_blocks

EXPORTERS = {"torchscript": 17, "dynamo": 18}
"""Exporter name -> the ONNX opset it writes."""
WEIGHTS_FILE = "weights.bin"
FUSION_FILE = "fusion.onnx"
BATCHED_FILE = "encoder_all.onnx"
TRACE_BATCH = 2
"""Batch size of the example inputs: not 1, so no batch dimension is specialised to a constant."""
INLINE_BYTES = 1024
"""Tensors smaller than this stay inside their graph (external data is for the weights)."""
VERIFY_TOLERANCE = 1e-3
"""``verify``: max |ONNX Runtime - torch| allowed, relative to max(1, max |torch|)."""


@dataclass(frozen=True)
class ExportSource:
    """What an export came from, as its metadata records it."""

    label: str
    sha256: str


def adapter_source(path: str | Path) -> ExportSource:
    """An adapter file: its name and the sha256 of its bytes."""
    path = Path(path)
    return ExportSource(label=path.name, sha256=sha256_file(path))


def weights_source(model: MoELoRASegmentor, label: str) -> ExportSource:
    """A model with no file behind it (a fresh preset): sha256 over its state dict."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return ExportSource(label=label, sha256=digest.hexdigest())


def class_table(num_classes: int) -> list[dict[str, Any]]:
    """``[{"id", "name", "color"}]``: DELIVER's names for 25 classes, else ``class<i>``."""
    names = (
        list(DELIVER_CLASSES)
        if num_classes == len(DELIVER_CLASSES)
        else [f"class{i}" for i in range(num_classes)]
    )
    colors = palette_for(num_classes)
    return [
        {"id": i, "name": name, "color": [int(c) for c in colors[i]]}
        for i, name in enumerate(names)
    ]


def export_onnx(
    model: MoELoRASegmentor,
    out_dir: str | Path,
    source: ExportSource,
    *,
    exporter: str = "torchscript",
    share_weights: bool = True,
    verify: bool = True,
    camera_hw: tuple[int, int] | None = None,
) -> Manifest:
    """Export ``model`` (LoRA merged here) to ``out_dir``; return the written manifest.

    Args:
        model: the segmentor; it is moved to the CPU in float32, put in eval mode and merged.
        out_dir: the folder to write (created; an earlier export's graphs and weights there are
            replaced or removed: the loader refuses files the manifest does not list).
        source: what the metadata names as the source (:func:`adapter_source`).
        exporter: ``"torchscript"`` (default) or ``"dynamo"`` (see the module docstring).
        share_weights: store each distinct weight once in ``weights.bin`` (default).
        verify: run the written graphs with ONNX Runtime against the torch model.
        camera_hw: the camera's frame size; a content-only model (``input_geometry: content``)
            needs it, its graphs take the content box of such frames (``onnx_format.input_box``).
    Raises:
        ExportError: an unknown exporter, a failed export, a graph the ONNX checker rejects,
            a content-only model without ``camera_hw``, or (``verify``) outputs that differ
            from the torch model's.
    """
    if exporter not in EXPORTERS:
        raise ExportError(f"unknown exporter {exporter!r}; use one of {list(EXPORTERS)}")
    opset = EXPORTERS[exporter]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = model.to("cpu", torch.float32).eval()
    model.merge_lora()
    cfg = model.cfg
    modalities = tuple(cfg.modalities)
    generator = torch.Generator().manual_seed(0)
    input_hw = export_input_hw(cfg, camera_hw)
    image = torch.randn(TRACE_BATCH, 3, *input_hw, generator=generator)
    num_levels = len(model.routers)
    level_names = [f"level{i}" for i in range(num_levels)]
    batch = {0: "batch"}

    protos: dict[str, onnx.ModelProto] = {}
    roles: dict[str, dict[str, str]] = {}
    encoders: dict[str, str] = {}
    features: dict[str, tuple[torch.Tensor, ...]] = {}
    for modality in modalities:
        branch = EncoderBranch(model, modality).eval()
        with plain_qkv(model, modality), lean_vit_blocks(model), torch.no_grad():
            features[modality] = branch(image)
            protos[f"encoder_{modality}.onnx"] = _export_graph(
                branch,
                (image,),
                ["image"],
                level_names,
                {name: batch for name in ["image", *level_names]},
                [tuple(t.shape) for t in features[modality]],
                exporter,
                opset,
            )
        encoders[modality] = f"encoder_{modality}.onnx"
        roles[encoders[modality]] = {"role": "encoder", "modality": modality}
    levels = tuple(
        (int(t.shape[1]), int(t.shape[2]), int(t.shape[3])) for t in features[modalities[0]]
    )
    fusion_inputs = [level_input(m, i) for m in modalities for i in range(num_levels)]
    batched = ""
    if len(modalities) > 1:
        batched = BATCHED_FILE
        every = AllModalitiesEncoder(model).eval()
        images = tuple(
            torch.randn(TRACE_BATCH, 3, *input_hw, generator=generator) for _ in modalities
        )
        image_inputs = [image_input(m) for m in modalities]
        with lean_vit_blocks(model), torch.no_grad():
            outputs = every(*images)
            protos[batched] = _export_graph(
                every,
                images,
                image_inputs,
                fusion_inputs,
                {name: batch for name in [*image_inputs, *fusion_inputs]},
                [tuple(t.shape) for t in outputs],
                exporter,
                opset,
            )
        roles[batched] = {"role": "encoder", "modality": "+".join(modalities)}
    fusion = FusionHead(model, input_hw).eval()
    present = torch.ones(len(modalities))
    flat = tuple(t for m in modalities for t in features[m])
    with torch.no_grad():
        fused = fusion(present, *flat)
        protos[FUSION_FILE] = _export_graph(
            fusion,
            (present, *flat),
            ["present", *fusion_inputs],
            ["logits", "router_weights"],
            {
                **{name: batch for name in [*fusion_inputs, "logits"]},
                "router_weights": {1: "batch"},
            },
            [tuple(t.shape) for t in fused],
            exporter,
            opset,
        )
    roles[FUSION_FILE] = {"role": "fusion"}

    classes = class_table(cfg.num_classes)
    info = {
        "exporter": exporter,
        "dynamic_axes": "batch (dimension 0 of every input and output; 1 of router_weights)",
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "package": sam_moelora_ros.__version__,
        "lora": "merged into each modality's qkv weights",
        "input_hw": list(input_hw),
        "inputs": "encoder_<m>: image B x 3 x H x W (input_hw), normalised and letterboxed as "
        "model.preprocess.to_model_tensor makes it; encoder_all: <m>.image per modality; "
        "fusion: present (M float32, 1 = present) and <m>.level<i> per modality and level",
        "outputs": "encoder_<m>: level<i> B x C x h x w; encoder_all: <m>.level<i>; fusion: "
        "logits B x K x H x W, router_weights M x B x L (0 for absent modalities)",
    }
    common = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": cfg.to_json(),
        "classes": json.dumps(classes),
        "source": source.label,
        "source_sha256": source.sha256,
        "opset": str(opset),
    }
    for name, proto in protos.items():
        onnx.helper.set_model_props(proto, {**common, **roles[name]})
        proto.producer_name = "sam_moelora_ros.export"
        proto.producer_version = sam_moelora_ros.__version__
        proto.doc_string = f"{cfg.name} {roles[name]['role']} graph exported from {source.label}"
    files = _write(protos, out, share_weights)
    manifest = Manifest(
        root=out,
        config=json.loads(cfg.to_json()),
        classes=classes,
        source=source.label,
        source_sha256=source.sha256,
        opset=opset,
        modalities=modalities,
        levels=levels,
        encoders=encoders,
        fusion=FUSION_FILE,
        batched=batched,
        files=files,
        info=info,
        input_encodings=model.input_encodings.restrict(modalities),
    )
    manifest.write()
    if verify:
        verify_export(model, manifest)
    return manifest


def _export_graph(
    module: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
    output_shapes: Sequence[tuple[int, ...]],
    exporter: str,
    opset: int,
) -> onnx.ModelProto:
    """One module -> one checked in-memory ONNX model (graphs must stay under protobuf's 2 GiB).

    ``output_shapes`` (of the torch outputs for ``args``) replace the exporter's symbolic output
    dimensions: every axis not in ``dynamic_axes`` is static, and the graph then says so.
    """
    try:
        with warnings.catch_warnings():
            # Shape-dependent Python branches are expected (static image size, batch checked by
            # verify_export at another batch size); the legacy exporter's deprecation notice
            # is the reason ``dynamo`` exists.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            warnings.filterwarnings("ignore", message=".*will not be used, since it shares.*")
            if exporter == "dynamo":
                program = torch.onnx.export(
                    module,
                    args,
                    dynamo=True,
                    opset_version=opset,
                    input_names=input_names,
                    output_names=output_names,
                    dynamic_shapes=_dynamic_shapes(module, input_names, dynamic_axes),
                    verbose=False,
                )
                if program is None:  # pragma: no cover - dynamo always returns a program
                    raise ExportError("the dynamo exporter returned no program")
                proto = program.model_proto
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / "graph.onnx"
                    torch.onnx.export(
                        module,
                        args,
                        path,
                        dynamo=False,
                        opset_version=opset,
                        input_names=input_names,
                        output_names=output_names,
                        dynamic_axes=dynamic_axes,
                        do_constant_folding=True,
                    )
                    proto = onnx.load(str(path))
    except ExportError:
        raise
    except Exception as exc:
        raise ExportError(f"torch.onnx.export ({exporter}) failed: {exc}") from exc
    for output, shape in zip(proto.graph.output, output_shapes, strict=True):
        dynamic = dynamic_axes.get(output.name, {})
        dims = output.type.tensor_type.shape.dim
        for axis, (dim, size) in enumerate(zip(dims, shape, strict=True)):
            if axis in dynamic:
                dim.dim_param = dynamic[axis]
            else:
                dim.dim_value = int(size)
    try:
        onnx.checker.check_model(proto, full_check=True)  # full: shapes must be consistent
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported graph fails onnx.checker: {exc}") from exc
    return proto


def _dynamic_shapes(
    module: torch.nn.Module, input_names: list[str], dynamic_axes: dict[str, dict[int, str]]
) -> tuple[Any, ...]:
    """``dynamic_axes`` as the dynamo exporter wants them: nested like ``forward``'s arguments."""
    dims: dict[str, Any] = {}
    per_input = [
        {axis: dims.setdefault(name, torch.export.Dim(name, min=1, max=4096))
         for axis, name in dynamic_axes.get(input_name, {}).items()} or None
        for input_name in input_names
    ]  # fmt: skip
    spec: list[Any] = []
    for parameter in inspect.signature(module.forward).parameters.values():
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            spec.append(tuple(per_input[len(spec) :]))
            break
        spec.append(per_input[len(spec)])
    return tuple(spec)


def _write(protos: dict[str, onnx.ModelProto], out: Path, share_weights: bool) -> dict[str, str]:
    """Save the graphs (weights shared or inline), check the saved files; name -> sha256."""
    weights = out / WEIGHTS_FILE
    if share_weights:
        _externalise(protos, weights)
    else:
        weights.unlink(missing_ok=True)
    for name, proto in protos.items():
        path = out / name
        tmp = path.with_name(path.name + ".tmp")
        onnx.save_model(proto, str(tmp))
        tmp.replace(path)
        try:  # by path: the checker then also resolves the external data
            onnx.checker.check_model(str(path))
        except onnx.checker.ValidationError as exc:
            raise ExportError(f"{path} fails onnx.checker after saving: {exc}") from exc
    names = [*protos, WEIGHTS_FILE] if share_weights else list(protos)
    for stale in out.iterdir():  # an earlier export's graphs (the loader refuses unlisted ones)
        if stale.suffix in LOADABLE_SUFFIXES and stale.is_file() and stale.name not in names:
            stale.unlink()
    return {name: sha256_file(out / name) for name in names}


def _externalise(protos: dict[str, onnx.ModelProto], weights: Path) -> None:
    """Move every initializer of >= INLINE_BYTES into ``weights``, each distinct tensor once.

    Distinct means same dtype, shape and bytes (a sha256 over them), whatever its name in which
    graph. Tensors start at multiples of 64 bytes (4 KiB for those of 64 KiB or more, so ONNX
    Runtime can map them in place).
    """
    stored: dict[str, tuple[int, int]] = {}
    tmp = weights.with_name(weights.name + ".tmp")
    with open(tmp, "wb") as handle:
        for proto in protos.values():
            _constants_to_initializers(proto.graph)
            for tensor in proto.graph.initializer:
                if tensor.data_location == onnx.TensorProto.EXTERNAL:
                    continue
                if not tensor.HasField("raw_data"):
                    array = onnx.numpy_helper.to_array(tensor)
                    tensor.CopyFrom(onnx.numpy_helper.from_array(array, tensor.name))
                raw = tensor.raw_data
                if len(raw) < INLINE_BYTES:
                    continue
                key = hashlib.sha256(
                    f"{tensor.data_type}:{list(tensor.dims)}:".encode() + raw
                ).hexdigest()
                if key not in stored:
                    align = 4096 if len(raw) >= 65536 else 64
                    offset = -(-handle.tell() // align) * align
                    handle.write(b"\0" * (offset - handle.tell()))
                    handle.write(raw)
                    stored[key] = (offset, len(raw))
                offset, length = stored[key]
                external_data_helper.set_external_data(tensor, weights.name, offset, length)
                tensor.data_location = onnx.TensorProto.EXTERNAL
                tensor.ClearField("raw_data")
    tmp.replace(weights)


def _constants_to_initializers(graph: onnx.GraphProto) -> None:
    """Large ``Constant`` nodes become initializers (weights the tracer saw as plain tensors,
    e.g. a merged LoRA layer's per-modality qkv weights), so they can be stored externally."""
    keep = []
    for node in graph.node:
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        if node.op_type != "Constant" or value is None:
            keep.append(node)
            continue
        size = len(value.raw_data) or onnx.numpy_helper.to_array(value).nbytes
        if size < INLINE_BYTES:
            keep.append(node)
            continue
        tensor = onnx.TensorProto()
        tensor.CopyFrom(value)
        tensor.name = node.output[0]
        graph.initializer.append(tensor)
    del graph.node[:]
    graph.node.extend(keep)


def verify_export(
    model: MoELoRASegmentor,
    manifest: Manifest,
    subsets: Sequence[Sequence[str]] | None = None,
    tolerance: float = VERIFY_TOLERANCE,
) -> dict[str, float]:
    """Run the written graphs with ONNX Runtime (CPU) against ``model``; return the max errors.

    Compares logits and router weights on one seeded random frame (batch 1: the graphs were
    traced at batch 2) for each subset of modalities (default: all, and all but the first).
    Raises :class:`ExportError` when an error exceeds ``tolerance`` times max(1, max |torch|).
    """
    from sam_moelora_ros.inference.onnx_backend import OnnxRuntimeModel

    modalities = tuple(model.cfg.modalities)
    if subsets is None:
        subsets = [modalities] + ([modalities[1:]] if len(modalities) > 1 else [])
    runtime = OnnxRuntimeModel(manifest, providers=["CPUExecutionProvider"], verify_files=False)
    generator = torch.Generator().manual_seed(1)
    images = {m: torch.randn(1, 3, *manifest.input_hw, generator=generator) for m in modalities}
    errors = {"logits": 0.0, "router_weights": 0.0}
    for subset in subsets:
        inputs = {m: images[m] for m in subset}
        with torch.no_grad():
            logits, extras = model(inputs, return_extras=True)
            got, got_extras = runtime(inputs, return_extras=True)
        pairs = [("logits", logits, got)] + [
            ("router_weights", extras["router_weights"][m], got_extras["router_weights"][m])
            for m in subset
        ]
        for what, want, have in pairs:
            error = float((want - have).abs().max())
            errors[what] = max(errors[what], error)
            scale = max(1.0, float(want.abs().max()))
            if not np.isfinite(error) or error > tolerance * scale:
                raise ExportError(
                    f"ONNX Runtime's {what} differ from the torch model's by {error:.3g} (allowed "
                    f"{tolerance * scale:.3g}) with modalities {list(subset)}; the export in "
                    f"{manifest.root} is not usable"
                )
    return errors

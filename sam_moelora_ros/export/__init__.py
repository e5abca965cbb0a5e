"""Deployment export: a trained model as ONNX graphs that ONNX Runtime (or TensorRT) can run.

``python -m sam_moelora_ros.export --adapter A --out DIR`` writes one encoder graph per modality
and one fusion graph (:mod:`.graphs`, :mod:`.onnx_export`) plus a ``manifest.json``, in the
format of :mod:`sam_moelora_ros.onnx_format`; :mod:`sam_moelora_ros.inference.onnx_backend` runs
such a folder behind the Segmenter, and ``python -m sam_moelora_ros.export.check`` compares it
with the torch model. See docs/deploy.md.

This package module imports neither torch nor onnx (its names are the format's);
``export_onnx`` lives in :mod:`.onnx_export`.
"""

from sam_moelora_ros.onnx_format import FORMAT, FORMAT_VERSION, MANIFEST, ExportError, Manifest

__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST", "ExportError", "Manifest"]

"""sam_moelora_ros: SAM with a Mixture of LoRA Experts for multi-modal semantic segmentation.

Layers (see docs/design.md): ``model/`` (pure PyTorch), ``sensors/`` and ``sync/`` (pure numpy),
the ``inference`` Segmenter, and the thin rclpy adapter in ``ros/``. Importing this package imports
neither torch nor rclpy, so the numpy-only parts stay cheap to use.
"""

__version__ = "0.1.0"

MODALITIES: tuple[str, ...] = ("rgb", "depth", "event", "lidar")
"""The sensor modalities the package knows, in their canonical order."""

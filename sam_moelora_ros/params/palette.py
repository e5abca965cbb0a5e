"""``output.palette_file``: class names and colours for the coloured label output."""

from __future__ import annotations

import numpy as np

from sam_moelora_ros.files import regular_file_problem
from sam_moelora_ros.params.specs import ParameterError


def load_palette(path: str, num_classes: int) -> tuple[tuple[str, ...], np.ndarray]:
    """``output.palette_file`` -> (class names, ``num_classes x 3`` uint8 palette).

    Empty ``path``: DELIVER's names (or ``class_<i>``) and :func:`classes.palette_for`. Raises
    :class:`ParameterError` for unreadable files or a palette that does not cover every class.
    """
    import json

    import yaml

    from sam_moelora_ros.classes import DELIVER_CLASSES, palette_for
    from sam_moelora_ros.safe_yaml import load_yaml

    names = tuple(
        DELIVER_CLASSES[i] if i < len(DELIVER_CLASSES) else f"class_{i}" for i in range(num_classes)
    )
    palette = palette_for(num_classes)
    if not path:
        return names, palette
    problem = regular_file_problem(path)  # never open() a FIFO: it blocks until a writer comes
    if problem is not None:
        raise ParameterError("output.palette_file", path, f"cannot be read: {problem}")
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
        data = json.loads(text) if path.endswith(".json") else load_yaml(text)
    except (OSError, ValueError, RecursionError, yaml.YAMLError) as exc:
        raise ParameterError("output.palette_file", path, f"cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise ParameterError("output.palette_file", path, "must hold a mapping with names/colors")
    if "names" in data:
        file_names = tuple(str(n) for n in data["names"])
        if len(file_names) < num_classes:
            raise ParameterError(
                "output.palette_file",
                path,
                f"lists {len(file_names)} names but the model has {num_classes} classes",
            )
        names = file_names[:num_classes]
    if "colors" in data:
        colors = np.asarray(data["colors"])
        if colors.ndim != 2 or colors.shape[1] != 3 or len(colors) < num_classes:
            raise ParameterError(
                "output.palette_file",
                path,
                f"'colors' must be at least {num_classes} [r, g, b] triples",
            )
        if colors.min() < 0 or colors.max() > 255:
            raise ParameterError("output.palette_file", path, "colors must be within 0..255")
        palette = colors[:num_classes].astype(np.uint8)
    return names, palette

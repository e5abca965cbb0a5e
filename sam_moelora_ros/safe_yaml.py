"""The one YAML loader of the package: PyYAML's safe loader with size, depth and alias limits.

Why: ``yaml.safe_load`` refuses arbitrary objects but not hostile *shapes*. A "billion laughs"
file (nine anchors, each a list of ten aliases of the one before) is 1 KB of text that expands to
10^9 nodes as soon as anything walks it (our config checks, a JSON dump, rosbags' reader); a few
thousand nested ``[`` overflow the composer's recursion with a ``RecursionError`` traceback; a
multi-gigabyte file is read whole before anything looks at it. Every YAML the package reads (bag
``metadata.yaml``, palettes, params files, adapter and training configs, study files, command-line
values) goes through :func:`load_yaml` / :func:`load_yaml_file`, which refuse, before anything is
built from them:

* more than :data:`MAX_YAML_BYTES` of text,
* nesting deeper than :data:`MAX_YAML_DEPTH` levels,
* more than :data:`MAX_YAML_NODES` nodes once every alias is expanded (a self-referring alias
  counts as infinite).

:class:`YamlLimitError` is a ``yaml.YAMLError``, so each caller's existing ``except
yaml.YAMLError`` turns it into that caller's one line naming the file; its text says which limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from sam_moelora_ros.errors import SamMoeLoraError

__all__ = [
    "MAX_YAML_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "YamlLimitError",
    "load_yaml",
    "load_yaml_file",
]

MAX_YAML_BYTES = 8 * 1024 * 1024
"""Largest YAML text read (8 MiB): a params file or a long bag's metadata is kilobytes."""
MAX_YAML_DEPTH = 64
"""Deepest nesting accepted: configs nest a handful of levels."""
MAX_YAML_NODES = 1_000_000
"""Most nodes after alias expansion: what a walk over the loaded data may cost at most."""


class YamlLimitError(SamMoeLoraError, yaml.YAMLError):
    """The YAML is over a size, depth or alias-expansion limit (the text says which)."""


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses nesting past :data:`MAX_YAML_DEPTH` as it descends,
    so deep input never reaches Python's recursion limit."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlLimitError(
                    f"nests deeper than {MAX_YAML_DEPTH} levels (line {mark.line + 1}), the limit "
                    "for YAML this package reads; the file is malformed: flatten it"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _expanded_size(root: Node) -> int:
    """Nodes in ``root`` with every alias expanded (memoised: linear in the composed graph)."""
    sizes: dict[int, int] = {}
    busy: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in busy:
            raise YamlLimitError("holds an alias that refers to itself (infinite expansion)")
        busy.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        busy.discard(key)
        if total > MAX_YAML_NODES:
            raise YamlLimitError(
                f"expands to more than {MAX_YAML_NODES} nodes through its aliases (a 'billion "
                "laughs' file); write the values out instead of aliasing them"
            )
        sizes[key] = total
        return total

    return size(root)  # depth is bounded by the composer, so this recursion is too


def load_yaml(text: str) -> Any:
    """Parse one YAML document like ``yaml.safe_load``, within the module's limits.

    Raises:
        YamlLimitError: over a limit; yaml.YAMLError: not YAML.
    """
    if len(text) > MAX_YAML_BYTES:
        raise YamlLimitError(
            f"is {len(text)} characters, over the {MAX_YAML_BYTES}-byte limit for YAML this "
            "package reads; pass the right file"
        )
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_yaml_file(path: str | Path) -> Any:
    """Read ``path`` (UTF-8, at most :data:`MAX_YAML_BYTES`) and :func:`load_yaml` it.

    Only ``MAX_YAML_BYTES + 1`` bytes are ever read, so a huge file costs no memory. Callers
    check the path is a regular file first (:mod:`sam_moelora_ros.files`).

    Raises:
        OSError, UnicodeDecodeError, yaml.YAMLError (YamlLimitError included).
    """
    with open(path, "rb") as stream:
        data = stream.read(MAX_YAML_BYTES + 1)
    if len(data) > MAX_YAML_BYTES:
        raise YamlLimitError(
            f"is larger than the {MAX_YAML_BYTES}-byte limit for YAML this package reads; "
            "pass the right file"
        )
    return load_yaml(data.decode("utf-8"))

"""Reading a user's YAML without surprises: no duplicate keys, no alias bombs, no numbers we cannot use.

PyYAML's `safe_load` keeps the last of two equal keys silently (a scenario with `rate: 1` and, further
down, `rate: 100` runs at 100 without a word), and builds `&a [*b, *b, ...]` chains that are small on disk
but expand to billions of values once a validator walks them (or, as `&a [*a]`, never end).
`load_yaml_text` refuses them, with the line and column, before anything is built from the document;
`first_unusable_number` finds a `.nan`, `.inf` or an integer beyond int64 anywhere in the result, so the
message can name its YAML path.
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

from hybridsim.core.limits import INT64_MAX

MAX_EXPANDED_NODES = 1_000_000
"""Most values a document may hold once every alias is expanded (a scenario holds hundreds)."""


class StrictLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses duplicate mapping keys."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *pool`: keys merged in may be overridden here; the base class merges them
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # an unhashable key: the base class names that problem
            if duplicate:
                raise ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


class TooLarge(yaml.YAMLError):
    """A document whose aliases expand beyond `MAX_EXPANDED_NODES`."""

    def __init__(self, size: int) -> None:
        super().__init__(f"anchors and aliases expand to more than {MAX_EXPANDED_NODES:,} values")
        self.problem = str(self)
        self.problem_mark = None


def load_yaml_text(text: str) -> Any:
    """Parse one YAML document with `StrictLoader`, refusing alias expansions beyond the limit."""
    loader: Any = StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {})
        if size > MAX_EXPANDED_NODES:
            raise TooLarge(size)
        return loader.construct_document(node)
    finally:
        loader.dispose()


class Recursive(yaml.YAMLError):
    """A document with an alias inside the collection it names (`a: &a [*a]`): no scenario is infinite."""

    def __init__(self, node: Node) -> None:
        super().__init__("an alias refers to a collection that contains it (a recursive structure)")
        self.problem = str(self)
        self.problem_mark = node.start_mark


def _expanded_size(node: Node, sizes: dict[int, int]) -> int:
    """Values under `node` with aliases counted as often as they are used (memoised per shared node)."""
    known = sizes.get(id(node))
    if known == 0:
        raise Recursive(node)
    if known is not None:
        return known
    sizes[id(node)] = 0  # in progress: meeting it again below means an alias to an enclosing collection
    if isinstance(node, SequenceNode):
        size = 1 + sum(_expanded_size(child, sizes) for child in node.value)
    elif isinstance(node, MappingNode):
        size = 1 + sum(_expanded_size(k, sizes) + _expanded_size(v, sizes) for k, v in node.value)
    else:
        size = 1
    sizes[id(node)] = min(size, MAX_EXPANDED_NODES + 1)
    return sizes[id(node)]


def first_unusable_number(data: Any, path: str = "") -> tuple[str, Any] | None:
    """(YAML path, value) of the first NaN, infinity or integer beyond int64 in `data`; None if none."""
    if isinstance(data, bool):
        return None
    if isinstance(data, float) and not math.isfinite(data):
        return path or "(top level)", data
    if isinstance(data, int) and abs(data) > INT64_MAX:
        return path or "(top level)", data
    if isinstance(data, dict):
        items = ((str(key), value) for key, value in data.items())
    elif isinstance(data, list):
        items = ((str(index), value) for index, value in enumerate(data))
    else:
        return None
    for key, value in items:
        found = first_unusable_number(value, f"{path}.{key}" if path else key)
        if found is not None:
            return found
    return None

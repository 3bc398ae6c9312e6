"""YAML as hostile users send it: bounded in size, depth and alias expansion, with no duplicate keys.

PyYAML's safe loader keeps the last of two equal keys (a party defined twice
silently becomes the second), expands aliases without limit (a few hundred
bytes of "billion laughs" take minutes and gigabytes) and recurses as deep as
the text nests. Every YAML the workbench reads from a user (recipe files,
`--set` values, builder and notebook text) goes through `load` instead, which
composes the node graph first, measures it, and only then builds Python data.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from workbench.errors import WorkbenchError

MAX_BYTES = 1_000_000
"""Largest recipe text: the largest shipped recipe is ~5 kB; a megabyte is a mistake or an attack."""
MAX_NODES = 200_000
"""Largest number of values after alias expansion (each mapping, list and scalar counts one)."""
MAX_DEPTH = 24
"""Deepest nesting: the recipe schema itself nests about 8 deep."""


class YamlError(WorkbenchError, ValueError):
    """YAML the workbench refuses to read; `line` is 1-based where known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message, self.line = message, line


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing a key written twice in one mapping (merge keys `<<` keep their meaning)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *defaults`: its keys may be overridden, by design
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class says so
                break
            if duplicate:
                raise YamlError(
                    f"key {key!r} appears twice in one mapping (lines {seen[key]} and {key_node.start_mark.line + 1}); YAML would silently keep the last one",
                    key_node.start_mark.line + 1,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 (PyYAML) reads `1e-5` as a string, since its floats need a dot; YAML 1.2 and every reader of a recipe read
# a number. A delta or a learning rate is naturally written so: read it as the float it looks like.
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"), list("-+0123456789."))


def load(text: str, what: str = "the recipe") -> Any:
    """Parse YAML text within the limits above, or raise YamlError saying which limit and where."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_BYTES:
        raise YamlError(f"{what} is {size:,} bytes; the workbench reads at most {MAX_BYTES:,}", None)
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _measure(root)
        return loader.construct_document(root)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        raise YamlError(f"not valid YAML: {getattr(error, 'problem', None) or error}", mark.line + 1 if mark else None) from None
    except RecursionError:
        raise YamlError(f"{what} nests too deep to read (the limit is {MAX_DEPTH} levels)", None) from None
    finally:
        loader.dispose()


def _measure(root: yaml.Node) -> None:
    """Count values as alias expansion would make them, and the depth, without expanding anything.

    A node reached through several aliases is counted once per path (that is what expansion costs); the count of
    each node is computed once, so a bomb is measured in time linear in its text.
    """
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not children_done:
            if id(node) in on_path or any(id(child) in on_path for child in children):
                raise YamlError("the YAML refers to itself through an alias; recipes are trees", node.start_mark.line + 1)
            on_path.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        on_path.discard(id(node))
        sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
        depths[id(node)] = 1 + max((depths[id(child)] for child in children), default=0)
        if sizes[id(node)] > MAX_NODES:
            raise YamlError(
                f"the YAML expands to more than {MAX_NODES:,} values through its aliases (from line "
                f"{node.start_mark.line + 1}); the workbench refuses such documents",
                node.start_mark.line + 1,
            )
        if depths[id(node)] > MAX_DEPTH:
            raise YamlError(
                f"the YAML nests deeper than {MAX_DEPTH} levels (at line {node.start_mark.line + 1}); no recipe field nests that deep", node.start_mark.line + 1
            )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []

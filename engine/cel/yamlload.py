"""Reading detector YAML safely: a size cap, and no "billion laughs".

YAML aliases (``*name``) share a node instead of copying it, so a few lines
(``&a [x, x, x ...]``, ``&b [*a, *a ...]``, nine levels deep) describe a
billion nodes. PyYAML builds them cheaply as shared Python objects, but
everything that walks them later does not: writing one finding's
``Properties`` as JSON took 5.4 GB and 24 seconds. So before a document is
used, :func:`documents`:

* counts its aliases while composing it and stops at the
  :data:`~.limits.MAX_YAML_ALIASES`-th plus one (at the alias's line);
* counts its nodes with every alias expanded (each shared node once, so the
  count costs the size of the file) and refuses more than
  :data:`~.limits.MAX_YAML_NODES` (at the line of the innermost node over
  the limit), and a node that contains itself.

Both raise :class:`yaml.composer.ComposerError`, a :class:`yaml.YAMLError`
with a ``problem_mark``, which :func:`~.spec.parse_detector_file` reports with
the file and line like any other YAML error. :func:`read_rule_file` reads at
most :data:`~.limits.MAX_RULE_FILE_SIZE` bytes of a file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError

from .limits import MAX_RULE_FILE_SIZE, MAX_YAML_ALIASES, MAX_YAML_NODES

__all__ = ["FileTooLarge", "LimitedLoader", "documents", "expanded_size", "read_rule_file"]


class FileTooLarge(OSError):
    """A rule file is larger than :data:`~.limits.MAX_RULE_FILE_SIZE`; ``head`` is its beginning."""

    def __init__(self, message: str, head: str) -> None:
        super().__init__(message)
        self.head = head


def read_rule_file(path: Path) -> str:
    """The text of a rule file of at most :data:`~.limits.MAX_RULE_FILE_SIZE` bytes.

    :raises FileTooLarge: for a larger file (its beginning says whether it is a detector).
    :raises OSError, UnicodeDecodeError: when it cannot be read or is not UTF-8.
    """
    with path.open("rb") as stream:
        data = stream.read(MAX_RULE_FILE_SIZE + 1)
    if len(data) > MAX_RULE_FILE_SIZE:
        head = data[:4096].decode("utf-8", "replace")
        raise FileTooLarge(f"larger than {MAX_RULE_FILE_SIZE:,} bytes (the limit of a detector file)", head)
    return data.decode("utf-8")


class LimitedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a document with more than :data:`~.limits.MAX_YAML_ALIASES` aliases."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0

    def compose_document(self) -> Any:
        self.aliases = 0
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                mark = self.peek_event().start_mark
                raise ComposerError(None, None, f"more than {MAX_YAML_ALIASES} aliases (*name) in one document", mark)
        return super().compose_node(parent, index)


def expanded_size(root: yaml.Node) -> int:
    """How many nodes ``root`` stands for with its aliases expanded.

    :raises ComposerError: past :data:`~.limits.MAX_YAML_NODES`, or for a node inside itself.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    # An explicit stack: (node, children visited?) so a deep document cannot exhaust Python's.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            if total > MAX_YAML_NODES:
                raise ComposerError(
                    None,
                    None,
                    f"the document stands for more than {MAX_YAML_NODES:,} values once its aliases are expanded",
                    node.start_mark,
                )
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise ComposerError(None, None, "an alias refers to a node that contains it", node.start_mark)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def documents(text: str) -> Iterator[tuple[yaml.SafeLoader, yaml.Node]]:
    """Each document of ``text`` as ``(loader, root node)``, within the limits above.

    :raises yaml.YAMLError: for invalid YAML or a document over a limit.
    """
    loader = LimitedLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                expanded_size(node)
                yield loader, node
    finally:
        loader.dispose()

"""Which line of a deployment file a field is on, for messages that name file and line.

Found only for a file that has something to report: its text is composed again (nodes, never
constructed, so an alias is walked as one node) and the field's path followed through it. A missing
field is reported at the line of the mapping it is missing from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import yaml

from pipelines.registry.checks import Problem, path_parts

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


_FIELDS_PREFIX = "provenance.fields."


def _pair(node: yaml.Node, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return next((pair for pair in node.value if isinstance(pair[0], yaml.ScalarNode) and pair[0].value == key), None)


def _value(node: yaml.Node | None, key: str) -> yaml.Node | None:
    match = _pair(node, key) if node is not None else None
    return match[1] if match is not None else None


def locate(root: yaml.Node | None, field: str) -> int | None:
    """The 1-based line of ``field`` (``retention[0].period``) in a composed document; the nearest
    enclosing field's line when it is absent; None for a whole-file message (``(document)``)."""
    if root is None or field.startswith(("(", "line ")):
        return None
    if field.startswith(_FIELDS_PREFIX) and len(field) > len(_FIELDS_PREFIX):
        # provenance.fields is keyed by whole paths: its key is the rest of the field, as written.
        fields = _value(_value(root, "provenance"), "fields")
        key = field[len(_FIELDS_PREFIX):]
        match = _pair(fields, key) if fields is not None else None
        if match is not None:
            return _line(match[0])
    node, line = root, _line(root)
    for part in path_parts(field):
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = _pair(node, part)
            if match is None:
                return line
            line, node = _line(match[0]), match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = _line(node)
        else:
            return line
    return line


def _compose(path: Path) -> yaml.Node | None:
    try:
        return yaml.compose(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return None  # the problems already say what is wrong with the file itself


def with_lines(problems: Iterable[Problem], path: str | Path) -> list[Problem]:
    """``problems`` of one file, each with the line of its field (the file is read once, if at all)."""
    problems = list(problems)
    if not problems or all(p.line is not None for p in problems):
        return problems
    root = _compose(Path(path))
    return [p if p.line is not None else replace(p, line=locate(root, p.field)) for p in problems]

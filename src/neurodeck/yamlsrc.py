"""YAML bytes → composed nodes that keep every scalar as the text the author typed.

We compose (never construct): PyYAML's constructors turn `no` into False, `1:30` into 90
and `010` into 8, and lose line numbers. Composed nodes keep both the text and the marks.
libyaml does the parsing when it is installed; the pure-Python parser gives the same nodes.
"""

from __future__ import annotations

from collections.abc import Iterator

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from .errors import Location, NeurodeckError, Problem

STR_TAG = "tag:yaml.org,2002:str"
SEQ_TAG = "tag:yaml.org,2002:seq"
MAP_TAG = "tag:yaml.org,2002:map"
_PLAIN_TAGS = {STR_TAG, SEQ_TAG, MAP_TAG}
_TAG_FOR_KIND = {ScalarNode: STR_TAG, SequenceNode: SEQ_TAG, MappingNode: MAP_TAG}

# Fact sets are hand-written text; anything bigger is a mistake or an attack, and composing
# it would hold the whole node tree in memory.
MAX_FILE_BYTES = 8 * 1024 * 1024


class _TextResolver(BaseResolver):
    """Resolve every untagged scalar to a string: YAML 1.1 never reinterprets content."""

    def resolve(self, kind: type, value: object, implicit: object) -> str:
        return _TAG_FOR_KIND[kind]


class _PyTextLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    _TextResolver,
):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _TextResolver.__init__(self)


try:
    from yaml.cyaml import CParser

    class _CTextLoader(CParser, _TextResolver):  # type: ignore[misc,valid-type]
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _TextResolver.__init__(self)

    HAVE_LIBYAML = True
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    HAVE_LIBYAML = False


def loc(path: str, node: Node) -> Location:
    """The 1-based location where a node starts."""
    mark = node.start_mark
    return Location(path, mark.line + 1, mark.column + 1)


def decode(path: str, data: bytes) -> str:
    """UTF-8 text of a file (a byte-order mark is accepted), or a located error."""
    if len(data) > MAX_FILE_BYTES:
        raise NeurodeckError(
            [
                Problem(
                    Location(path),
                    f"file is {len(data) / 1048576:.1f} MiB; fact sets are limited to "
                    f"{MAX_FILE_BYTES // 1048576} MiB",
                    hint="split it into several smaller fact-set files",
                )
            ]
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise NeurodeckError(
            [
                Problem(
                    Location(path, line, column),
                    f"file is not valid UTF-8 (byte 0x{data[err.start]:02x})",
                    hint="save the file as UTF-8",
                )
            ]
        ) from None


def compose(path: str, text: str, *, use_libyaml: bool = HAVE_LIBYAML) -> Node | None:
    """Parse one YAML document into nodes; None for an empty document.

    Raises NeurodeckError for syntax errors, aliases and tags other than plain ones.
    """
    loader_class = _CTextLoader if use_libyaml else _PyTextLoader
    loader = loader_class(text)
    try:
        node: Node | None = loader.get_single_node()
    except yaml.MarkedYAMLError as err:
        raise NeurodeckError([_syntax_problem(path, err)]) from None
    except yaml.YAMLError as err:  # reader errors (control characters) carry no mark class
        raise NeurodeckError([Problem(Location(path), f"invalid YAML: {err}")]) from None
    finally:
        loader.dispose()
    # Anchors and explicit tags need '&' and '!' in the text; skip the walk when neither is there.
    if node is not None and ("&" in text or "!" in text):
        problems = list(_check_anchors_and_tags(path, node))
        if problems:
            raise NeurodeckError(problems)
    return node


def _syntax_problem(path: str, err: yaml.MarkedYAMLError) -> Problem:
    mark = err.problem_mark or err.context_mark
    where = Location(path, mark.line + 1, mark.column + 1) if mark else Location(path)
    message = err.problem or "invalid YAML"
    if err.context:
        message = f"{err.context}, {message}"
    hint = "check indentation and quoting on this line or the one before it"
    if "\t" in message or "tab" in message:
        hint = "YAML does not allow tabs for indentation; use spaces"
    elif "found undefined alias" in message or "found unhashable key" in message:
        hint = "quote values that start with '*', '&', '{' or '['"
    return Problem(where, f"invalid YAML: {message}", hint=hint)


def _check_anchors_and_tags(path: str, root: Node) -> Iterator[Problem]:
    """Report aliases (a node reached twice) and explicit tags, without expanding anything."""
    seen: set[int] = set()
    # Each entry is a node and the node to blame for it: an alias's own node carries the
    # anchor's marks, so an alias is reported at the key (or list) that uses it.
    stack: list[tuple[Node, Node]] = [(root, root)]
    while stack:
        node, blame = stack.pop()
        if id(node) in seen:
            yield Problem(
                loc(path, blame),
                "YAML anchors and aliases are not allowed in fact sets",
                hint="write the text out in full where it is needed",
            )
            continue  # never descend twice: a "billion laughs" document stays linear
        seen.add(id(node))
        if node.tag not in _PLAIN_TAGS:
            yield Problem(
                loc(path, node),
                f"YAML tag {node.tag!r} is not allowed",
                hint="remove the tag; fact sets hold only text, lists and mappings",
            )
        if isinstance(node, SequenceNode):
            stack.extend((item, node) for item in reversed(node.value))
        elif isinstance(node, MappingNode):
            for key, value in reversed(node.value):
                stack.extend(((value, key), (key, key)))

"""YAML bytes → composed nodes that keep every scalar as the text the author typed.

We compose (never construct): PyYAML's constructors turn `no` into False, `1:30` into 90
and `010` into 8, and lose line numbers. Composed nodes keep both the text and the marks.
libyaml parses (PyYAML's wheels ship it; neurodeck refuses to run without it), and the
composer below turns its events into nodes.
"""

from __future__ import annotations

import re
from typing import Any, Protocol, cast

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import Location, NeurodeckError, Problem

LIBYAML_MISSING = (
    "PyYAML was built without libyaml; reinstall it from a wheel: "
    "pip install --force-reinstall --only-binary :all: PyYAML"
)


def libyaml_missing() -> bool:
    """Whether PyYAML lacks libyaml, which every command needs (cli.py refuses to run)."""
    # PyYAML sets this flag when `yaml.cyaml` (and so libyaml's CParser) imports.
    return not getattr(yaml, "__with_libyaml__", False)


class EventParser(Protocol):
    """What the composer needs of a parser (libyaml's CParser)."""

    def check_event(self, *choices: type) -> bool: ...
    def get_event(self) -> Any: ...
    def dispose(self) -> None: ...


def parser(text: str) -> EventParser:
    """libyaml's event parser over the text."""
    from yaml.cyaml import CParser  # type: ignore[attr-defined]

    return cast(EventParser, CParser(text))


STR_TAG = "tag:yaml.org,2002:str"
SEQ_TAG = "tag:yaml.org,2002:seq"
MAP_TAG = "tag:yaml.org,2002:map"

# Fact sets are hand-written text; anything bigger is a mistake or an attack, and composing
# it would hold the whole node tree in memory.
MAX_FILE_BYTES = 8 * 1024 * 1024

# A fact set needs four levels (file → notes → note → tags). The limit is far above that and
# far below what would exhaust the stack of a recursive consumer of the nodes.
MAX_DEPTH = 100

# The characters YAML refuses in a stream: all but tab, LF, CR, printable ASCII, NEL and the
# rest of Unicode less surrogates and U+FFFE/U+FFFF (PyYAML's Reader and libyaml check the
# same set). Written as the few refused, not as all but the allowed: compiling a negated
# class over all of Unicode took 6 ms at every start.
NON_PRINTABLE_RE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]"
)


def loc(path: str, node: Node) -> Location:
    """The 1-based location where a node starts."""
    return mark_loc(path, node.start_mark)


def mark_loc(path: str, mark: Any) -> Location:
    """The 1-based location of a parser's Mark (0-based)."""
    return Location(path, mark.line + 1, mark.column + 1)


def decode(path: str, data: bytes) -> str:
    """UTF-8 text of a file (a byte-order mark is accepted), or a located error."""
    if len(data) > MAX_FILE_BYTES:
        raise NeurodeckError([too_big_problem(path, len(data))])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line_start = data.rfind(b"\n", 0, err.start) + 1
        line = data.count(b"\n", 0, err.start) + 1
        column = len(data[line_start : err.start].decode("utf-8", "replace")) + 1
        hint = "save the file with the UTF-8 encoding (in most editors: Save As → Encoding)"
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            hint = "the file is saved as UTF-16; " + hint
        raise NeurodeckError(
            [
                Problem(
                    Location(path, line, column),
                    f"file is not valid UTF-8 (byte 0x{data[err.start]:02x})",
                    hint=hint,
                )
            ]
        ) from None


def too_big_problem(path: str, size: int) -> Problem:
    """The problem for a file over MAX_FILE_BYTES (reported before it is read)."""
    limit = MAX_FILE_BYTES // (1024 * 1024)
    return Problem(
        Location(path),
        f"file is {size:,} bytes; a fact set may be at most {limit} MiB ({MAX_FILE_BYTES:,} bytes)",
        hint="split it into several smaller fact-set files",
    )


# Above this, re-reading a refused file with PyYAML's pure-Python parser (about 0.4 MB/s)
# to word its problem would keep the author waiting; libyaml's own message is reported.
_REREAD_LIMIT = 256 * 1024


def compose(path: str, text: str) -> Node | None:
    """Parse one YAML document into nodes; None for an empty document.

    Raises NeurodeckError for syntax errors, aliases, tags other than plain ones, control
    characters and nesting deeper than MAX_DEPTH. A syntax error inside one note of the
    `notes:` list does not hide those in the notes after it: each is reported.
    """
    try:
        return _compose_one(path, text)
    except NeurodeckError as err:
        if len(err.problems) != 1 or len(text) > _REREAD_LIMIT:
            raise
        later = _later_syntax_problems(path, text, err.problems[0])
        if not later:
            raise
        raise NeurodeckError([*err.problems, *later]) from None


def _compose_one(path: str, text: str) -> Node | None:
    lines = _LineCounter.for_text(text)  # problems are located as people count lines
    try:
        return lines.fix(_compose_or_raise(path, text))
    except NeurodeckError as err:
        raise lines.fix_error(err) from None


# YAML parsers start a new line at CR, NEL (U+0085) and the line and paragraph separators
# (U+2028, U+2029) as well as at LF. Editors, grep and Git count LFs only, and a value may
# hold any of the others, so marks after one are moved back to the lines people see.
_PARSER_BREAK_RE = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_ODD_BREAK_RE = re.compile("\r(?!\n)|[\x85\u2028\u2029]")


class _LineCounter:
    """Moves a parser's (line, column) to the line and column counted at LFs only."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0, *(m.end() for m in _PARSER_BREAK_RE.finditer(text))]

    @classmethod
    def for_text(cls, text: str) -> _LineCounter | _NoFix:
        return cls(text) if _ODD_BREAK_RE.search(text) else _NO_FIX

    def position(self, line: int, column: int) -> tuple[int, int]:
        """0-based (line, column) as the parser counted them -> as people count them."""
        if line >= len(self.starts):
            return line, column
        index = self.starts[line] + column
        return self.text.count("\n", 0, index), index - (self.text.rfind("\n", 0, index) + 1)

    def fix(self, root: Node | None) -> Node | None:
        pending = [root] if root is not None else []
        while pending:
            node = pending.pop()
            node.start_mark = self._moved(node.start_mark)
            node.end_mark = self._moved(node.end_mark)
            if isinstance(node, MappingNode):
                pending += [n for pair in node.value for n in pair]
            elif isinstance(node, SequenceNode):
                pending += node.value
        return root

    def _moved(self, mark: Any) -> Any:
        line, column = self.position(mark.line, mark.column)  # libyaml's marks are read-only
        return yaml.Mark(mark.name, mark.index, line, column, None, None)  # type: ignore[arg-type]

    def fix_error(self, err: NeurodeckError) -> NeurodeckError:
        fixed = []
        for problem in err.problems:
            loc = problem.location
            if loc.line and loc.column and not problem.message.startswith(_OWN_COUNT):
                line, column = self.position(loc.line - 1, loc.column - 1)
                loc = Location(loc.path, line + 1, column + 1)
            fixed.append(Problem(loc, problem.message, problem.hint, problem.severity))
        return NeurodeckError(fixed)


class _NoFix:
    """For the usual text with LF line ends only: marks are already right."""

    def fix(self, root: Node | None) -> Node | None:
        return root

    def fix_error(self, err: NeurodeckError) -> NeurodeckError:
        return err


_NO_FIX = _NoFix()
# Problems located by counting LFs ourselves (see _bad_character_problem), not by the parser.
_OWN_COUNT = ("an invisible control character", "a broken character")


# How many syntax errors one file may report before the rest is left for the next run.
_MAX_SYNTAX_PROBLEMS = 50
_REREAD_BUDGET = 1024 * 1024  # characters parsed again in all, at most
_NOTES_KEY_RE = re.compile(r"notes:[ \t]*(?:#.*)?")
_LIST_ITEM_RE = re.compile(r"( *)-(?: |$)")


def _later_syntax_problems(path: str, text: str, first: Problem) -> list[Problem]:
    """Syntax errors in the notes after the one that broke the file.

    The note around each error is blanked out (its lines kept, empty, so that every later
    line keeps its number) and the file parsed again, until it parses or an error lies
    outside the `notes:` list.
    """
    found: list[Problem] = []
    lines = text.split("\n")
    problem = first
    # Each round parses the whole file again (and PyYAML's words it at about 0.4 MB/s), so
    # a large file with many errors stops after a bounded amount of re-reading.
    rounds = min(_MAX_SYNTAX_PROBLEMS, _REREAD_BUDGET // max(len(text), 1))
    while len(found) < rounds and problem.message.startswith("invalid YAML"):
        bounds = _note_item_around(lines, problem.location.line - 1)
        if bounds is None:
            break
        start, end = bounds
        lines[start:end] = [""] * (end - start)
        try:
            _compose_one(path, "\n".join(lines))
            break
        except NeurodeckError as err:
            if len(err.problems) != 1 or err.problems[0].location.line - 1 < end:
                break  # no longer one syntax error after the blanked note
            problem = err.problems[0]
            found.append(problem)
    return [p for p in found if p.message.startswith("invalid YAML")]


def _note_item_around(lines: list[str], index: int) -> tuple[int, int] | None:
    """(first line, line after the last) of the `notes:` item holding line `index`, 0-based."""
    notes_at = next((i for i, line in enumerate(lines) if _NOTES_KEY_RE.fullmatch(line)), None)
    if notes_at is None or index <= notes_at:
        return None
    indent = None
    starts = []
    for number in range(notes_at + 1, len(lines)):
        match = _LIST_ITEM_RE.match(lines[number])
        if match is None:
            if lines[number][:1] not in ("", " ", "#"):
                break  # the next key of the fact set: the list has ended
            continue
        if indent is None:
            indent = len(match.group(1))
        if len(match.group(1)) == indent:
            starts.append(number)
    before = [n for n in starts if n <= index]
    if not before:
        return None
    after = [n for n in starts if n > index]
    return before[-1], after[0] if after else len(lines)


def _compose_or_raise(path: str, text: str) -> Node | None:
    try:
        return _compose(path, text)
    except yaml.MarkedYAMLError as err:
        if "maximum nesting depth" in (err.problem or ""):
            # Newer libyaml (PyYAML 6.0.4's wheels) stops deep flow nesting itself, before the
            # composer below counts levels: the same mistake, so the same message.
            raise NeurodeckError([_too_deep_problem(path, err.problem_mark)]) from None
        raise NeurodeckError([_syntax_problem(path, text, _worded(text, err))]) from None
    except (yaml.reader.ReaderError, UnicodeEncodeError):
        # A character YAML does not allow (a control character, or a lone surrogate, which
        # libyaml cannot even encode). Locate it ourselves: the parsers count differently.
        raise NeurodeckError([_bad_character_problem(path, text)]) from None


def _worded(text: str, err: yaml.MarkedYAMLError) -> yaml.MarkedYAMLError:
    """libyaml's error, or PyYAML's pure-Python parser's when it stops on the same line.

    libyaml's messages omit the offending character and name fewer cases ("did not find
    expected key" for a quote closed too early, a misaligned note, a missing `notes:`);
    PyYAML's say what it found, which the hints in tests/bad/ are built on. PyYAML only words
    the problem: libyaml alone decides whether a file reads, and where PyYAML disagrees (it
    refuses some tabs libyaml allows) libyaml's message stands.
    """
    if len(text) > _REREAD_LIMIT or err.problem_mark is None:
        return err
    try:
        for _event in yaml.parse(text, Loader=yaml.BaseLoader):
            pass
    except yaml.MarkedYAMLError as pyyaml_err:
        mark = pyyaml_err.problem_mark
        if mark is not None and mark.line == err.problem_mark.line:
            return pyyaml_err
    except (yaml.YAMLError, UnicodeError):
        pass
    return err


def _compose(path: str, text: str) -> Node | None:
    events = parser(text)
    try:
        events.get_event()  # StreamStart
        if events.check_event(StreamEndEvent):
            return None
        root = _compose_document(path, events)
        if not events.check_event(StreamEndEvent):
            raise yaml.composer.ComposerError(
                "expected a single document in the stream",
                root.start_mark,
                "but found another document",
                events.get_event().start_mark,
            )
        if isinstance(root, ScalarNode) and root.value == "" and root.style is None:
            return None  # only `---` or comments: as empty as an empty file
        return root
    finally:
        events.dispose()


def _compose_document(path: str, parser: EventParser) -> Node:
    """Nodes from one document's events, without recursion, aliases or tags.

    Iterative on purpose: libyaml's own composer recurses in C and crashes the interpreter on
    a few thousand nested brackets. An alias is refused where it is written, so nothing is
    ever shared or expanded: a "billion laughs" document costs what its text costs.
    This loop runs once per node of every fact set, so it keeps to local variables.
    """
    get_event = parser.get_event
    get_event()  # DocumentStart
    problems: list[Problem] = []
    anchors: dict[str, Any] = {}  # anchor name -> mark where it was defined
    # The innermost open collection: its node, its items, whether it is a mapping, and (for
    # a mapping) the key waiting for its value. Outer ones wait on the stack.
    current: Node | None = None
    items: list[Any] = []
    in_mapping = False
    key: Node | None = None
    stack: list[tuple[Node | None, list[Any], bool, Node | None]] = []
    while True:
        event = get_event()
        kind = event.__class__
        node: Node
        if kind is ScalarEvent:
            tag = event.tag
            if tag is not None and tag != "!" and tag != STR_TAG:
                problems.append(_tag_problem(path, event))
            node = ScalarNode(
                STR_TAG, event.value, event.start_mark, event.end_mark, event.style or None
            )  # libyaml says '' for plain, PyYAML None
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            assert current is not None
            current.end_mark = event.end_mark
            if not stack:
                break
            node = current
            current, items, in_mapping, key = stack.pop()
            continue
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            plain = MAP_TAG if kind is MappingStartEvent else SEQ_TAG
            tag = event.tag
            if tag is not None and tag != "!" and tag != plain:
                problems.append(_tag_problem(path, event))
            if kind is MappingStartEvent:
                node = MappingNode(plain, [], event.start_mark, None, event.flow_style)
            else:
                node = SequenceNode(plain, [], event.start_mark, None, event.flow_style)
        elif kind is AliasEvent:
            problems.append(_alias_problem(path, event, anchors))
            node = ScalarNode(STR_TAG, "", event.start_mark, event.end_mark)
        else:  # pragma: no cover - the parser only emits the events above inside a document
            raise AssertionError(f"unexpected {event}")
        if kind is not AliasEvent and event.anchor is not None:
            anchors.setdefault(event.anchor, event.start_mark)
        if current is None:  # the document's root
            if kind is ScalarEvent or kind is AliasEvent:
                current = node
                break
        elif not in_mapping:
            items.append(node)
        elif key is None:
            key = node
        else:
            items.append((key, node))
            key = None
        if kind is MappingStartEvent or kind is SequenceStartEvent:
            if current is not None:
                if len(stack) + 2 > MAX_DEPTH:  # the root is level 1, its children level 2
                    raise NeurodeckError([_too_deep_problem(path, event.start_mark)])
                stack.append((current, items, in_mapping, key))
            current, items, in_mapping, key = node, node.value, kind is MappingStartEvent, None
    get_event()  # DocumentEnd
    if problems:
        raise NeurodeckError(problems)
    assert current is not None
    return current


def _tag_problem(path: str, event: Any) -> Problem:
    return Problem(
        mark_loc(path, event.start_mark),
        f"YAML tag {event.tag!r} is not allowed",
        hint="remove the tag; fact sets hold only text, lists and mappings",
    )


def _too_deep_problem(path: str, mark: Any) -> Problem:
    return Problem(
        mark_loc(path, mark) if mark is not None else Location(path),
        f"YAML nested more than {MAX_DEPTH} levels deep",
        hint="a fact set needs only a few levels: notes, then a note's keys, then its tags",
    )


def _alias_problem(path: str, event: Any, anchors: dict[str, Any]) -> Problem:
    name = event.anchor
    where = mark_loc(path, event.start_mark)
    if name in anchors:
        anchor = mark_loc(path, anchors[name])
        return Problem(
            where,
            f"YAML alias '*{name}' is not allowed in fact sets",
            hint=f"write the text out in full here (the anchor '&{name}' is at line {anchor.line})",
        )
    return Problem(
        where,
        f"'*{name}' is read as a YAML alias",
        hint="put quotes around a value that starts with '*', e.g. front: \"*Oxytocin* is ...\"",
    )


def _syntax_problem(path: str, text: str, err: yaml.MarkedYAMLError) -> Problem:
    """A parser error in words an author can act on, at the place to look."""
    context, problem = err.context or "", err.problem or ""
    mark = err.problem_mark or err.context_mark
    message, hint = _plain_syntax_error(context, problem, text, mark)
    if message is None:
        message = f"{context}, {problem}" if context else problem or "not YAML"
    starts_value = context.startswith(
        (
            "while scanning a quoted scalar",
            "while scanning an alias",
            "while scanning an anchor",
            "while scanning a simple key",
        )
    )
    unclosed = context.startswith("while parsing a flow") and "<stream end>" in problem
    if (starts_value or unclosed) and err.context_mark is not None:
        # Point where the value starts, not where the parser gave up (often the end of file).
        mark = err.context_mark
    where = mark_loc(path, mark) if mark else Location(path)
    return Problem(where, f"invalid YAML: {message}", hint=hint)


def _plain_syntax_error(context: str, problem: str, text: str, mark: Any) -> tuple[str | None, str]:
    """(message, hint) for the mistakes authors make; message None keeps the parser's."""
    if context.startswith("while scanning a quoted scalar") and "end of stream" in problem:
        return (
            "a quoted value is never closed",
            "close the quote at the end of the value; inside '...' write an apostrophe as two ('')",
        )
    if "found unknown escape character" in problem:
        escape = problem.rsplit(" ", 1)[-1].strip("'")
        return (
            f'a backslash inside "..." starts an escape, and \\{escape} is not one',
            "put the value in single quotes ('...') or none, where a backslash is just a "
            f"backslash (MathJax's \\( and \\[ need one), or write it twice: \\\\{escape}",
        )
    if "'\\t'" in problem or "tab character" in problem:
        return "a tab character where YAML expects spaces", "indent with spaces, never tabs"
    layout = _layout_mistake(text, mark) if mark is not None else None
    if layout is not None and (
        "mapping values are not allowed" in problem
        or problem.startswith("expected <block end>, but found")
    ):
        return layout
    if "mapping values are not allowed" in problem:
        return (
            "a value contains ': ' but is not in quotes",
            'put quotes around the value, e.g. front: "Ratio: 2 to 1"',
        )
    if context.startswith("while scanning an alias"):
        return (
            "a value starts with '*' but is not in quotes",
            'put quotes around the value, e.g. front: "*Oxytocin* is ..."',
        )
    if context.startswith("while scanning an anchor"):
        return (
            "a value starts with '&' but is not in quotes",
            'put quotes around the value, e.g. front: "& so on"',
        )
    if problem == "but found another document":
        return (
            "a second YAML document starts here",
            "a fact set is one YAML document: remove the `---` line, and move any notes "
            "after it into the `notes:` list above",
        )
    if problem in _RESERVED_START:
        return (
            f"a value starts with {_RESERVED_START[problem]} but is not in quotes",
            f'put quotes around the value, e.g. front: "{_RESERVED_START[problem][1]}..."',
        )
    if context.startswith("while parsing a flow") and "<stream end>" in problem:
        return (
            "a list or mapping opened with [ or { is never closed",
            "close it with ] or }, or put quotes around a value that starts with [ or {",
        )
    if problem.startswith("expected <block end>, but found '<scalar>'"):
        before = _text_before(text, mark).rstrip()
        if before.endswith(("'", '"')):
            return (
                "text continues after the closing quote",
                "inside '...' write an apostrophe as two (''), or put the whole value "
                "in double quotes",
            )
        if before.endswith(("]", "}")):
            return (
                "text continues after a closing ] or }",
                "put quotes around a value that starts with [ or {, e.g. "
                'front: "[Review] What is ..."',
            )
        return ("unexpected text", "check that it is indented like the lines above it")
    if problem.startswith("expected <block end>, but found"):
        return (
            "this line is indented differently from the lines above it",
            "line up the keys of one note under each other, using spaces",
        )
    if "could not find expected ':'" in problem:
        return (
            "this line has no `key:`",
            "to continue a value on the next line, indent it more than its key, or "
            "start the value with | to write several lines",
        )
    return None, (
        "check indentation and quoting on this line or the one before it: keys of "
        "one note line up under each other, and values with ': ' or ' #' need quotes"
    )


_KEY_LINE_RE = re.compile(r"( *)(- +)?([A-Za-z_][A-Za-z0-9_-]*):(?: |$)")


def _layout_mistake(text: str, mark: Any) -> tuple[str, str] | None:
    """(message, hint) when the line the parser stopped on is a note or key out of place:
    a key indented more than the one above, a note not lined up with the note above, or
    notes with no `notes:` line over them. Every hint is an edit tests apply."""
    lines = text.split("\n")
    if mark.line >= len(lines):
        return None
    line = lines[mark.line]
    here = _KEY_LINE_RE.match(line)
    if here is None:
        return None
    indent = len(here.group(1))
    above = [
        lines[n]
        for n in range(mark.line)
        if lines[n].strip() and not lines[n].lstrip().startswith("#")
    ]
    top_keys = [
        m.group(3)
        for m in map(_KEY_LINE_RE.match, above)
        if m is not None and not m.group(1) and not m.group(2)
    ]
    if here.group(2) and "notes" not in top_keys:
        return (
            "a note starts here, but there is no `notes:` line above it",
            "add the line `notes:` (at the start of the line) just above this one",
        )
    if here.group(2):
        items = [
            len(m.group(1)) for m in map(_KEY_LINE_RE.match, above) if m is not None and m.group(2)
        ]
        if items and items[-1] != indent:
            shift = indent - items[-1]
            side = "left" if shift > 0 else "right"
            return (
                "this note is not lined up with the note above it",
                f"move this note (its `- ` line and the lines of its keys) {abs(shift)} "
                f"space{'s' if abs(shift) != 1 else ''} to the {side}, so that its `-` is "
                f"in column {items[-1] + 1}, under the `-` of the note above",
            )
        return None
    if not above:
        return None
    previous = _KEY_LINE_RE.match(above[-1])
    if previous is None:
        return None
    column = len(previous.group(1)) + len(previous.group(2) or "")
    if indent != column and (indent > column or indent > _key_column(above[:-1])):
        more = "more" if indent > column else "less"
        return (
            f"`{here.group(3)}:` is indented {more} than `{previous.group(3)}:` above it",
            f"start `{here.group(3)}:` in column {column + 1}, under "
            f"`{previous.group(3)}:`; the keys of one note line up",
        )
    return None


def _key_column(lines: list[str]) -> int:
    """The column of the last key before the keys of the current mapping (-1 if none)."""
    for line in reversed(lines):
        match = _KEY_LINE_RE.match(line)
        if match is not None and match.group(2):
            return len(match.group(1))  # the `- ` of the note: its keys are further in
    return -1


_RESERVED_START = {f"found character {ch!r} that cannot start any token": repr(ch) for ch in "@`%"}


def _text_before(text: str, mark: Any) -> str:
    """The text of the mark's line before the mark."""
    if mark is None:
        return ""
    lines = text.splitlines()
    return lines[mark.line][: mark.column] if mark.line < len(lines) else ""


def _bad_character_problem(path: str, text: str) -> Problem:
    match = NON_PRINTABLE_RE.search(text)
    if match is None:  # pragma: no cover - both parsers only refuse these characters
        return Problem(Location(path), "file contains a character YAML does not allow")
    start = match.start()
    line = text.count("\n", 0, start) + 1
    column = start - (text.rfind("\n", 0, start) + 1) + 1
    code = ord(match.group())
    what = "a broken character" if 0xD800 <= code <= 0xDFFF else "an invisible control character"
    return Problem(
        Location(path, line, column),
        f"{what} (U+{code:04X}) is not allowed in YAML",
        hint="delete it (it often comes from copying text out of another program)",
    )

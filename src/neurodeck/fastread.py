"""Read a fact set in the common shape straight into the model, in one pass.

Composing nodes and then walking them costs about twice what reading the file a line at a
time does. Almost every fact set has one shape: a mapping of `deck`, `tags`, `source` and
`notes`, where `notes` is a list of flat mappings of text (and lists of tags), written in
block style with each value on its key's line or in a block below it. This module reads
that shape a line at a time, with one regular expression per line and no nodes in between
(_Lines). Anything else (notes in flow style, escapes, plain text over several lines,
anchors, tabs, carriage returns...) is the general path's.

It only ever answers for a file the general path (yamlsrc.compose, then load) would load
without a single problem, and gives the very same FactSet. At the first thing out of the
ordinary (a syntax error, a tag, an anchor, an alias, a duplicate, unknown or missing key, a
mapping where text belongs, a control character...) it gives up and returns None, and the
general path reads the file again and words the problems. So every message and location
stays the general path's, and this module has none of its own.
"""

from __future__ import annotations

import gc
import itertools
import re
from typing import Any

from .errors import Location
from .model import (
    FACT_SET_KEYS,
    FIELDS_BY_KIND,
    NOTE_KEYS,
    NOTE_KINDS,
    OPTIONAL_FIELDS,
    FactSet,
    Note,
    Tag,
)

# The order load.py fills a note's fields in, so that both paths build equal dicts.
_FIELD_ORDER = ("front", "back", "text", "extra")
_NOTE_KEYS = frozenset(NOTE_KEYS)
_FACT_SET_KEYS = frozenset(FACT_SET_KEYS)


class _Irregular(Exception):
    """The file is not in the common shape, or has a problem: the general path reads it."""


def read_fact_set(path: str, text: str) -> FactSet | None:
    """The file's FactSet if it is in the common shape and has no problem; otherwise None."""
    if _BEYOND_LINES_RE.search(text):
        return None
    # The pass allocates several objects per note and keeps most of them, so the cyclic
    # garbage collector would run every few hundred allocations and walk ever more live
    # notes. Nothing built here can form a cycle, so the collector pauses for the pass (it
    # is process-wide: switched back on only if it was on).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _Lines(path, text).fact_set()
    except _Irregular:  # a problem or an unusual shape: the general path decides
        return None
    finally:
        if collecting:
            gc.enable()


# --- The line reader ---------------------------------------------------------------------
#
# Most fact sets are written in block style, a key and its value on one line: plain words,
# a quoted string, a one-line list of tags, or a folded or literal block below its key. For
# such a file, a regular expression per line says what YAML reads there, and that costs half
# what even libyaml's events cost through PyYAML (each event and each of its two marks is a
# Python object), a quarter of composing nodes. _Lines reads that subset and gives up at
# anything else (flow-style notes, escapes, multi-line plain or quoted text, anchors, tabs,
# ...); the general path takes over.

# Characters whose reading the line reader does not model: control characters and tabs,
# carriage returns and YAML's other line breaks (NEL, U+2028, U+2029), a byte-order mark,
# and what libyaml refuses (surrogates, U+FFFE, U+FFFF).
_BEYOND_LINES_RE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]"
)
# Plain text as YAML reads it in block context on one line: no indicator first (a leading
# `-`, `?` or `:` is left to the general path), no `: ` or ` #` inside, no `:` at the end.
_PLAIN = r"[^-?:,\[\]{}#&*!|>'\"%@` ](?:[^: #]|:(?=[^ ])|#| +(?=[^ #]))*"
_PLAIN_FIRST = frozenset("-?:,[]{}#&*!|>'\"%@` ")
# In a flow list, `,[]{}` end plain text too.
_FLOW_PLAIN = r"[^-?:,\[\]{}#&*!|>'\"%@` ](?:[^:,\[\]{} #]|:(?=[^ ,\[\]{}])|#| +(?=[^ #,\[\]{}]))*"
_SINGLE = r"'((?:[^']|'')*)'"  # '' stands for '
_DOUBLE = r'"([^"\\]*)"'  # without escapes
_COMMENT = r" *(?: #.*)?"
# `key: value`, `- key: value` (a note's first key), or `key:` with a list or nothing after
# it; the value is classified in Python, which is faster than an alternation per character.
_KEY_LINE_RE = re.compile(r"( *)(- +)?([a-z]+):(?: +(.*))?")
# A value that is not plain text, with what may follow it on its line.
_QUOTED_RE = re.compile(rf"(?:{_SINGLE}|{_DOUBLE}){_COMMENT}")
_BLOCK_HEADER_RE = re.compile(rf"([|>]-?){_COMMENT}")
_FLOW_RE = re.compile(rf"(\[.*\]){_COMMENT}")
# `- value`: an item of a block list of tags.
_ITEM_LINE_RE = re.compile(rf"( *)- +(?:({_PLAIN})|{_SINGLE}|{_DOUBLE}){_COMMENT}")
# One item of a one-line list of tags, and the `,` or `]` after it.
_FLOW_ITEM_RE = re.compile(rf" *(?:({_FLOW_PLAIN})|{_SINGLE}|{_DOUBLE}) *([,\]])")
# Items of a one-line list that are plain words (the common case), split at commas.
_SIMPLE_FLOW_RE = re.compile(r"\[([^'\"#{}\[\]]*)\]")
_EMPTY_FLOW_RE = re.compile(r"\[ *\]")


def _plain_text(value: str) -> str | None:
    """The text a value on a key's line stands for if it is plain text, else None."""
    comment = value.find(" #")  # plain text ends where a comment starts
    if comment >= 0:
        value = value[:comment]
    value = value.rstrip(" ")
    if not value or value[0] in _PLAIN_FIRST or ": " in value or value[-1] == ":":
        return None
    return value


class _Lines:
    """One pass over a fact set's lines; every method raises _Irregular beyond the subset."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = text.split("\n")
        self.at = 0  # the next line to read
        # A block scalar that runs to the end of a file without a final line break loses
        # its own break; rare enough to leave to the general path.
        self.ends_with_break = text.endswith("\n")

    def fact_set(self) -> FactSet:
        """The FactSet of the whole file: a mapping of the fact set's keys at column 0."""
        lines, match = self.lines, _KEY_LINE_RE.fullmatch
        seen: set[str] = set()
        subdeck = ""
        file_tags: tuple[Tag, ...] = ()
        file_source: str | None = None
        notes: list[Note] | None = None
        late: list[str] = []  # the file's keys given after `notes:`
        while self.at < len(lines):
            line = lines[self.at]
            self.at += 1
            found = match(line)
            if found is None:
                if _blank_or_comment(line):
                    continue
                raise _Irregular
            indent, dash, key, value = found.groups()
            if indent or dash or key not in _FACT_SET_KEYS or key in seen:
                raise _Irregular
            seen.add(key)
            if key == "notes":
                if value and value[0] != "#":
                    raise _Irregular  # `notes:` must start a block list
                notes = self._notes(subdeck, file_tags, file_source)
                continue
            if notes is not None:
                late.append(key)
            if key == "tags":
                file_tags = self._tags(value, found.start(4), 0)
            else:
                text = self._scalar(value, 0)
                if key == "deck":
                    subdeck = text
                else:
                    file_source = text
        return _fact_set(self.path, notes, late, subdeck, file_tags, file_source)

    def _notes(
        self, subdeck: str, file_tags: tuple[Tag, ...], file_source: str | None
    ) -> list[Note]:
        """Each note of the `notes:` list: `- key: value`, then a line per key below it."""
        # The hot loop: one turn per line of every note.
        lines, match, path = self.lines, _KEY_LINE_RE.fullmatch, self.path
        plain_first = _PLAIN_FIRST
        notes: list[Note] = []
        values: dict[str, Any] = {}
        marks: dict[str, tuple[int, int]] = {}
        start = (-1, -1)  # where the note being read starts
        item_indent = key_indent = -1
        while self.at < len(lines):
            number = self.at
            line = lines[number]
            found = match(line)
            if found is None:
                if _blank_or_comment(line):
                    self.at += 1
                    continue
                raise _Irregular
            indent, dash, key, value = found.groups()
            if dash is not None:  # the next note
                if item_indent != len(indent):
                    if item_indent >= 0:
                        raise _Irregular
                    item_indent = len(indent)
                if values:
                    notes.append(_note(path, values, start, marks, subdeck, file_tags, file_source))
                key_indent = item_indent + len(dash)
                start = (number, key_indent)
                values, marks = {}, {}
            elif len(indent) != key_indent:
                if indent or key_indent < 0:
                    raise _Irregular
                break  # a key of the fact set: the list is over
            self.at += 1
            if key not in _NOTE_KEYS or key in values:
                raise _Irregular
            if key == "tags":
                values[key] = self._tags(value, found.start(4), key_indent)
                continue
            column = found.start(4)
            if (
                value
                and value[0] not in plain_first
                and ": " not in value
                and " #" not in value
                and value[-1] != ":"
                and value[-1] != " "
            ):  # plain text, most values
                values[key] = value
            else:
                values[key] = self._scalar(value, key_indent)
            marks[key] = (number, column)
        if not values:
            raise _Irregular  # `notes:` and no list
        notes.append(_note(path, values, start, marks, subdeck, file_tags, file_source))
        return notes

    def _scalar(self, value: str | None, indent: int) -> str:
        """The text of the value on a key's line (a block scalar takes the lines below); the
        key is at column `indent`."""
        if not value:
            raise _Irregular  # nothing (a null, or text on the lines below)
        first = value[0]
        if first == "'" or first == '"':
            found = _QUOTED_RE.fullmatch(value)
            if found is None:
                raise _Irregular
            single, double = found.groups()
            return double if single is None else single.replace("''", "'")
        if first == "|" or first == ">":
            found = _BLOCK_HEADER_RE.fullmatch(value)
            if found is None:
                raise _Irregular
            return self._block(found.group(1), indent)
        text = _plain_text(value)
        if text is None:
            raise _Irregular
        return text

    def _block(self, header: str, indent: int) -> str:
        """A block scalar's text: `|` keeps line breaks, `>` folds them into spaces; `-`
        drops the final break. Its lines are indented past the key's."""
        folded, strip = header[0] == ">", header.endswith("-")
        lines = self.lines
        content: list[str] = []
        width = -1  # the content's indent, set by its first line
        while self.at < len(lines):
            line = lines[self.at]
            text = line.lstrip(" ")
            here = len(line) - len(text)
            if not text:  # an empty line, part of the text or of its end
                if width < 0 or here > width:
                    raise _Irregular  # leading empty lines, or spaces that are text
                content.append("")
            elif width < 0:
                if here <= indent:
                    raise _Irregular  # an empty block scalar
                width = here
                content.append(text)
            elif here < width:
                break
            elif here > width and folded:
                raise _Irregular  # a more-indented line keeps its breaks
            else:
                content.append(line[width:])
            self.at += 1
        else:
            if not self.ends_with_break:
                raise _Irregular
        while content and not content[-1]:  # trailing empty lines: never part of the text
            content.pop()
        if not content:
            raise _Irregular
        if folded:
            text = content[0]
            for before, part in itertools.pairwise(content):
                # A break between two lines of text becomes a space; each empty line, a break.
                text += "\n" if not part else part if not before else " " + part
        else:
            text = "\n".join(content)
        return text if strip else text + "\n"

    def _tags(self, value: str | None, column: int, indent: int) -> tuple[Tag, ...]:
        """The tags of a `tags:` line whose value starts at `column` (the key is at column
        `indent`): a one-line list, a single tag as text (none when empty), or a block list
        on the lines below."""
        path, number = self.path, self.at - 1
        if value and value[0] == "[":
            return self._flow_tags(value, number, column)
        if value and value[0] != "#":
            name = self._scalar(value, indent)
            return (_tag(name, path, number, column),) if name else ()
        lines = self.lines
        tags: list[Tag] = []
        dash_indent = -1
        while self.at < len(lines):
            line = lines[self.at]
            item = _ITEM_LINE_RE.fullmatch(line)
            if item is None:
                if _blank_or_comment(line):
                    self.at += 1
                    continue
                break
            here = len(item.group(1))
            if here < indent or (dash_indent >= 0 and here != dash_indent):
                break
            dash_indent = here
            plain, single, double = item.group(2, 3, 4)
            if plain is not None:
                tags.append(_tag(plain, path, self.at, item.start(2)))
            elif single is not None:
                tags.append(_tag(single.replace("''", "'"), path, self.at, item.start(3) - 1))
            else:
                tags.append(_tag(double, path, self.at, item.start(4) - 1))
            self.at += 1
        if not tags:
            raise _Irregular  # `tags:` and nothing
        return tuple(tags)

    def _flow_tags(self, value: str, number: int, column: int) -> tuple[Tag, ...]:
        """The tags of a one-line list that starts at `column` of line `number`."""
        path = self.path
        simple = _SIMPLE_FLOW_RE.fullmatch(value)
        if simple is not None:  # plain words between commas, the common case
            inside = simple.group(1)
            if not inside.strip(" "):
                return ()
            tags: list[Tag] = []
            at = column + 1  # where the item starts, its spaces included
            for item in inside.split(","):
                name = _plain_text(item.lstrip(" ")) if item.strip(" ") else None
                if name is None:
                    raise _Irregular  # an empty item, or not plain text
                tags.append(_tag(name, path, number, at + len(item) - len(item.lstrip(" "))))
                at += len(item) + 1
            return tuple(tags)
        found = _FLOW_RE.fullmatch(value)
        if found is None:
            raise _Irregular
        flow = found.group(1)
        if _EMPTY_FLOW_RE.fullmatch(flow):
            return ()
        tags = []
        at, end = 1, len(flow)
        while at < end:
            item = _FLOW_ITEM_RE.match(flow, at)
            if item is None:
                raise _Irregular  # an empty item or a trailing comma, among others
            plain, single, double, after = item.group(1, 2, 3, 4)
            if plain is not None:
                tags.append(_tag(plain, path, number, column + item.start(1)))
            elif single is not None:
                name = single.replace("''", "'")
                tags.append(_tag(name, path, number, column + item.start(2) - 1))
            else:
                tags.append(_tag(double, path, number, column + item.start(3) - 1))
            at = item.end()
            if after == "]":
                break
        if at != end:
            raise _Irregular  # `]` before the end of the list
        return tuple(tags)


def _blank_or_comment(line: str) -> bool:
    text = line.lstrip(" ")
    return not text or text[0] == "#"


# --- Making notes -------------------------------------------------------------------------


def _note(
    path: str,
    values: dict[str, Any],
    start: tuple[int, int],
    marks: dict[str, tuple[int, int]],
    subdeck: str,
    file_tags: tuple[Tag, ...],
    file_source: str | None,
) -> Note:
    """The Note load.py would make of a note's values (and the 0-based line and column where
    the note and each value start), when it would report nothing."""
    note_id = values.get("id")
    kind = values.get("type", "basic")
    if note_id is None or kind not in NOTE_KINDS:
        raise _Irregular
    wanted = FIELDS_BY_KIND[kind]
    fields: dict[str, str] = {}
    field_locs: dict[str, Location] = {}
    for key in _FIELD_ORDER:
        text = values.get(key)
        if text is not None:
            if key not in wanted and key not in OPTIONAL_FIELDS:
                raise _Irregular
            fields[key] = text
            line, column = marks[key]
            field_locs[key] = _location(path, line + 1, column + 1)
        elif key in wanted:
            raise _Irregular
    source = values.get("source")
    if source is not None:
        line, column = marks["source"]
        field_locs["source"] = _location(path, line + 1, column + 1)
    else:
        source = file_source
    retired = values.get("retired")
    if retired is not None and retired != "true" and retired != "false":
        raise _Irregular
    own_tags = values.get("tags")
    note = _new(Note)
    attrs = note.__dict__
    attrs["id"] = note_id
    attrs["kind"] = kind
    attrs["fields"] = fields
    attrs["tags"] = file_tags + own_tags if own_tags else file_tags
    attrs["subdeck"] = subdeck
    attrs["source"] = source
    attrs["section"] = values.get("section")
    attrs["loc"] = _location(path, start[0] + 1, start[1] + 1)
    attrs["field_locs"] = field_locs
    attrs["retired"] = retired == "true"
    attrs["diagram"] = None  # diagrams always take the general path
    return note


def _fact_set(
    path: str,
    notes: list[Note] | None,
    late: list[str],
    subdeck: str,
    file_tags: tuple[Tag, ...],
    file_source: str | None,
) -> FactSet:
    """The file's FactSet, its notes given the file's keys that came after `notes:`."""
    if notes is None:
        raise _Irregular
    for note in notes if late else ():
        _give_late_file_keys(note, late, subdeck, file_tags, file_source)
    return FactSet(path=path, notes=tuple(notes))


def _give_late_file_keys(
    note: Note,
    late: list[str],
    subdeck: str,
    file_tags: tuple[Tag, ...],
    file_source: str | None,
) -> None:
    """Give a note the file's keys that came after `notes:` (it was made without them).

    The note is changed in place: it was made here, and no one else has seen it yet.
    """
    attrs = note.__dict__
    if "deck" in late:
        attrs["subdeck"] = subdeck
    if "tags" in late:
        attrs["tags"] = file_tags + note.tags
    if "source" in late and "source" not in note.field_locs:  # no `source:` of its own
        attrs["source"] = file_source


# A frozen dataclass's __init__ sets each field through object.__setattr__, which made
# Notes, Locations and Tags (tens of thousands per deck) the largest cost left in this pass.
# These fill a new instance's __dict__ directly instead: the same object __init__ would make
# (equal, hashing alike, as frozen), in a third of the time. No such class has a
# __post_init__ to skip; tests/test_fastread.py and the one-pass tests in
# test_hypothesis.py hold them to that.
_new = object.__new__


def _location(path: str, line: int, column: int) -> Location:
    """Location(path, line, column), made without its __init__."""
    loc = _new(Location)
    attrs = loc.__dict__
    attrs["path"] = path
    attrs["line"] = line
    attrs["column"] = column
    return loc


def _tag(name: str, path: str, line: int, column: int) -> Tag:
    """Tag(name, Location(path, line + 1, column + 1)), made without __init__s."""
    tag = _new(Tag)
    attrs = tag.__dict__
    attrs["name"] = name
    attrs["loc"] = _location(path, line + 1, column + 1)
    return tag

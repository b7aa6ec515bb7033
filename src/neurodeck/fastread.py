"""Read a fact set in the common shape straight into the model, in one pass.

Composing nodes and then walking them cost more than three times what the parser itself does.
Almost every fact set has one shape: a mapping of `deck`, `tags`, `source` and `notes`,
where `notes` is a list of flat mappings of text (and lists of tags). This module reads that
shape in one pass over libyaml's events (_Events), with no nodes in between.

It only ever answers for a file the general path (yamlsrc.compose, then load) would load
without a single problem, and gives the very same FactSet. At the first thing out of the
ordinary (a syntax error, a tag, an anchor, an alias, a duplicate, unknown or missing key, a
mapping where text belongs, a control character...) it gives up and returns None, and the
general path reads the file again and words the problems. So every message and location
stays the general path's, and this module has none of its own.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Container
from typing import Any

import yaml
from yaml.events import (
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from . import yamlsrc
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
    # The pass allocates several objects per event and keeps most of them, so the cyclic
    # garbage collector would run every few hundred allocations and walk ever more live
    # notes: a fifth of the time. Nothing built here can form a cycle, so the collector
    # pauses for the pass (it is process-wide: switched back on only if it was on).
    collecting = gc.isenabled()
    gc.disable()
    try:
        # libyaml may refuse a character as soon as the parser is made.
        parser = yamlsrc.parser(text)
        try:
            return _Events(path, parser.get_event, "\\" in text).fact_set()
        finally:
            parser.dispose()
    except (_Irregular, yaml.YAMLError, UnicodeError):
        # A problem or an unusual shape (or a syntax error, or a character YAML refuses,
        # which libyaml raises as UnicodeEncodeError): the general path decides.
        return None
    finally:
        if collecting:
            gc.enable()


class _Events:
    """One pass over one document's events; every method raises _Irregular on a surprise."""

    def __init__(self, path: str, get_event: Callable[[], Any], has_escapes: bool) -> None:
        self.path = path
        self.get_event = get_event
        # libyaml refuses a control character written in the file itself, so only a
        # double-quoted escape (\0, \x07, \ud800) can put one in a value: without a
        # backslash anywhere, no value needs the search load.py's `text` makes.
        self.has_escapes = has_escapes

    def fact_set(self) -> FactSet:
        """The FactSet of the whole stream: one document holding one fact-set mapping."""
        get_event = self.get_event
        get_event()  # StreamStart
        if type(get_event()) is not DocumentStartEvent:
            raise _Irregular  # an empty stream
        self._start(get_event(), MappingStartEvent)
        seen: set[str] = set()
        subdeck = ""
        file_tags: tuple[Tag, ...] = ()
        file_source: str | None = None
        notes: list[Note] | None = None
        late: list[str] = []  # the file's keys given after `notes:`
        while True:
            event = get_event()
            if type(event) is MappingEndEvent:
                break
            key = self._key(event, _FACT_SET_KEYS, seen)
            seen.add(key)
            if key == "notes":
                # Notes are made as they are read, with the file's keys read so far; those
                # of a file that gives `deck`, `tags` or `source` after `notes` are mended below.
                notes = self._notes(subdeck, file_tags, file_source)
                continue
            if notes is not None:
                late.append(key)
            if key == "tags":
                file_tags = self._tags(get_event())
            else:
                value = self._text(get_event())
                if key == "deck":
                    subdeck = value
                else:
                    file_source = value
        if type(get_event()) is not DocumentEndEvent or type(get_event()) is not StreamEndEvent:
            raise _Irregular  # a second document: the general path words it
        if notes is None:
            raise _Irregular
        for note in notes if late else ():
            _give_late_file_keys(note, late, subdeck, file_tags, file_source)
        return FactSet(path=self.path, notes=tuple(notes))

    def _notes(
        self, subdeck: str, file_tags: tuple[Tag, ...], file_source: str | None
    ) -> list[Note]:
        """Each note of the `notes:` list."""
        # The hot loop: one turn per key of every note, so _start, _key and _text are
        # written out, and a value's Location is made only for fields and source.
        get_event = self.get_event
        has_escapes = self.has_escapes
        search = yamlsrc.NON_PRINTABLE_RE.search
        path = self.path
        self._start(get_event(), SequenceStartEvent)
        notes: list[Note] = []
        while True:
            event = get_event()
            if type(event) is not MappingStartEvent or event.tag is not None:
                if type(event) is SequenceEndEvent:
                    return notes
                raise _Irregular
            if event.anchor is not None:
                raise _Irregular
            start = event.start_mark
            values: dict[str, Any] = {}
            marks: dict[str, Any] = {}  # key -> the parser's Mark where the value starts
            while True:
                event = get_event()
                if type(event) is not ScalarEvent:
                    if type(event) is MappingEndEvent:
                        break
                    raise _Irregular
                key = event.value
                if (
                    key not in _NOTE_KEYS
                    or key in values
                    or event.tag is not None
                    or event.anchor is not None
                ):
                    raise _Irregular
                event = get_event()
                if key == "tags":
                    values[key] = self._tags(event)
                    continue
                if (
                    type(event) is not ScalarEvent
                    or event.tag is not None
                    or event.anchor is not None
                    or (has_escapes and search(event.value))
                ):
                    raise _Irregular
                values[key] = event.value
                marks[key] = event.start_mark
            notes.append(_note(path, values, start, marks, subdeck, file_tags, file_source))

    def _tags(self, event: Any) -> tuple[Tag, ...]:
        """A list of tags, or a single tag written as text (none when empty)."""
        if type(event) is ScalarEvent:
            value = self._text(event)
            return (_tag_at(value, self.path, event.start_mark),) if value else ()
        self._start(event, SequenceStartEvent)
        get_event, path, has_escapes = self.get_event, self.path, self.has_escapes
        tags: list[Tag] = []
        while True:
            event = get_event()
            if type(event) is not ScalarEvent or event.tag is not None or event.anchor is not None:
                if type(event) is SequenceEndEvent:
                    return tuple(tags)
                raise _Irregular
            if has_escapes and yamlsrc.NON_PRINTABLE_RE.search(event.value):
                raise _Irregular
            tags.append(_tag_at(event.value, path, event.start_mark))

    def _text(self, event: Any) -> str:
        """An untagged scalar's text."""
        if type(event) is not ScalarEvent or not _plain(event):
            raise _Irregular
        value: str = event.value
        if self.has_escapes and yamlsrc.NON_PRINTABLE_RE.search(value):
            raise _Irregular
        return value

    def _start(self, event: Any, kind: type) -> None:
        """That the event starts an untagged collection of this kind."""
        if type(event) is not kind or not _plain(event):
            raise _Irregular

    def _key(self, event: Any, allowed: frozenset[str], seen: Container[str]) -> str:
        """A known key not seen before in this mapping."""
        if type(event) is not ScalarEvent or not _plain(event):
            raise _Irregular
        key: str = event.value
        if key not in allowed or key in seen:
            raise _Irregular
        return key


# --- Making notes -------------------------------------------------------------------------


def _note(
    path: str,
    values: dict[str, Any],
    start: Any,
    marks: dict[str, Any],
    subdeck: str,
    file_tags: tuple[Tag, ...],
    file_source: str | None,
) -> Note:
    """The Note load.py would make of a note's values (and the parser's Marks where the note
    and each value start), when it would report nothing."""
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
            mark = marks[key]
            field_locs[key] = _location(path, mark.line + 1, mark.column + 1)
        elif key in wanted:
            raise _Irregular
    source = values.get("source")
    if source is not None:
        mark = marks["source"]
        field_locs["source"] = _location(path, mark.line + 1, mark.column + 1)
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
    attrs["loc"] = _location(path, start.line + 1, start.column + 1)
    attrs["field_locs"] = field_locs
    attrs["retired"] = retired == "true"
    attrs["diagram"] = None  # diagrams always take the general path
    return note


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


def _plain(event: Any) -> bool:
    """Whether an event has neither tag nor anchor (either needs the general path's checks)."""
    return event.tag is None and event.anchor is None


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


def _tag_at(name: str, path: str, mark: Any) -> Tag:
    """Tag(name, Location(path, ...)) where the parser's Mark is, made without __init__s."""
    loc = _new(Location)
    attrs = loc.__dict__
    attrs["path"] = path
    attrs["line"] = mark.line + 1
    attrs["column"] = mark.column + 1
    tag = _new(Tag)
    attrs = tag.__dict__
    attrs["name"] = name
    attrs["loc"] = loc
    return tag

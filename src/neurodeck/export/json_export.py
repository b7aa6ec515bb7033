"""The deck as JSON for tools: every note with its id, GUID, type, deck, tags, fields and cards."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from ..snapshot import PackagedNote, Snapshot
from .cards import render_cards


def render_json(snapshot: Snapshot, notes: Iterable[PackagedNote]) -> str:
    """Stable, indented JSON: the same deck always gives the same text."""
    return "".join(json_chunks(snapshot, notes))


def json_chunks(snapshot: Snapshot, notes: Iterable[PackagedNote]) -> Iterator[str]:
    """render_json's text, note by note, so that a large deck is never held as one string:
    {"deck": {...}, "notes": [...]}, indented by two spaces."""
    yield _head(snapshot)
    separator = "[\n    "
    for note in notes:
        yield separator + note_json(snapshot, note)
        separator = ",\n    "
    yield "[]\n}\n" if separator.startswith("[") else "\n  ]\n}\n"


class JsonWriter:
    """render_json's text in pieces, for notes that come a few at a time (the deck's header
    goes before the first note, or at the end when there is none)."""

    def __init__(self) -> None:
        self._started = False

    def note(self, snapshot: Snapshot, note: PackagedNote) -> str:
        """The text up to and including this note."""
        if self._started:
            return ",\n    " + note_json(snapshot, note)
        self._started = True
        return _head(snapshot) + "[\n    " + note_json(snapshot, note)

    def end(self, snapshot: Snapshot) -> str:
        """The rest of the text, after the last note."""
        return "\n  ]\n}\n" if self._started else _head(snapshot) + "[]\n}\n"


def _head(snapshot: Snapshot) -> str:
    deck = {"id": snapshot.deck_slug, "name": snapshot.deck_name, "version": snapshot.version}
    return f'{{\n  "deck": {indented_json(deck, 1)},\n  "notes": '


def note_json(snapshot: Snapshot, note: PackagedNote) -> str:
    """indented_json(_note(snapshot, note), 2), written out for the one shape a note has
    (three times faster: the export's main cost)."""
    tags = "[]"
    if note.tags:
        tags = "[" + ",".join(["\n        " + _string(tag) for tag in note.tags]) + "\n      ]"
    fields = snapshot.fields_of(note)
    fields_text = "{}"
    if fields:
        items = [f"\n        {_string(key)}: {_string(value)}" for key, value in fields.items()]
        fields_text = "{" + ",".join(items) + "\n      }"
    cards = "[]"
    rendered = render_cards(snapshot, note)
    if rendered:
        cards = (
            "["
            + ",".join(
                [
                    f'\n        {{\n          "ordinal": {c.ordinal + 1:d},\n          "name": '
                    f'{_string(c.name)},\n          "front": {_string(c.front)},\n          '
                    f'"back": {_string(c.back)}\n        }}'
                    for c in rendered
                ]
            )
            + "\n      ]"
        )
    note_id = "null" if note.note_id is None else _string(note.note_id)
    return (
        f'{{\n      "id": {note_id},\n      "guid": {_string(note.guid)},\n      '
        f'"type": {_string(snapshot.notetype_of(note).key)},\n      '
        f'"deck": {_string(note.deck)},\n      "tags": {tags},\n      '
        f'"fields": {fields_text},\n      "cards": {cards}\n    }}'
    )


def indented_json(value: object, level: int = 0) -> str:
    """What json.dumps(value, indent=2, ensure_ascii=False) gives, for JSON data with string keys
    (faster: json indents in pure Python; this escapes strings in C, as json does)."""
    if isinstance(value, dict):
        if not value:
            return "{}"
        pad = "\n" + "  " * (level + 1)
        items = [
            f"{pad}{_string(str(key))}: {indented_json(item, level + 1)}"
            for key, item in value.items()
        ]
        return "{" + ",".join(items) + "\n" + "  " * level + "}"
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        pad = "\n" + "  " * (level + 1)
        items = [pad + indented_json(item, level + 1) for item in value]
        return "[" + ",".join(items) + "\n" + "  " * level + "]"
    if isinstance(value, str):
        return _string(value)
    return json.dumps(value)  # a number, true, false or null


_string = json.encoder.encode_basestring


def _note(snapshot: Snapshot, note: PackagedNote) -> dict[str, object]:
    return {
        "id": note.note_id,
        "guid": note.guid,
        "type": snapshot.notetype_of(note).key,
        "deck": note.deck,
        "tags": list(note.tags),
        "fields": snapshot.fields_of(note),
        "cards": [
            {"ordinal": c.ordinal + 1, "name": c.name, "front": c.front, "back": c.back}
            for c in render_cards(snapshot, note)
        ],
    }

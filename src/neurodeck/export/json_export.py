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


# A few notes' text for render_json, made apart from the rest: the text that starts the
# export (the deck, then the notes' opening bracket), each note's JSON, and its cards.
NotesJson = tuple[str, list[str], int]


def notes_json(snapshot: Snapshot, notes: list[PackagedNote]) -> NotesJson:
    """render_json's pieces for some notes; joined by ",\n    " after the head (for the
    first notes) and ended by json_end, they are render_json's text."""
    texts = [note_json(snapshot, note) for note in notes]
    return _head(snapshot) + "[\n    ", texts, sum(len(note.ordinals) for note in notes)


def json_end(snapshot: Snapshot, *, started: bool) -> str:
    """The rest of render_json's text, after the last note (all of it when none came)."""
    return "\n  ]\n}\n" if started else _head(snapshot) + "[]\n}\n"


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

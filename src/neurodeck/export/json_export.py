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
    deck = {"id": snapshot.deck_slug, "name": snapshot.deck_name, "version": snapshot.version}
    yield f'{{\n  "deck": {indented_json(deck, 1)},\n  "notes": '
    separator = "[\n    "
    for note in notes:
        yield separator + indented_json(_note(snapshot, note), 2)
        separator = ",\n    "
    yield "[]\n}\n" if separator.startswith("[") else "\n  ]\n}\n"


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

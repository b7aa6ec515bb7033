"""The deck as JSON for tools: every note with its id, GUID, type, deck, tags, fields and cards."""

from __future__ import annotations

import json
from collections.abc import Iterable

from ..snapshot import PackagedNote, Snapshot
from .cards import render_cards


def render_json(snapshot: Snapshot, notes: Iterable[PackagedNote]) -> str:
    """Stable, indented JSON: the same deck always gives the same text (what
    json.dumps(..., indent=2, ensure_ascii=False) gives for {"deck": ..., "notes": [...]})."""
    head, texts, _ = notes_json(snapshot, list(notes))
    if not texts:
        return json_end(snapshot, started=False)
    return head + ",\n    ".join(texts) + json_end(snapshot, started=True)


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
    # One level in: json.dumps escapes newlines in strings, so each "\n" is a line of its own.
    deck_json = json.dumps(deck, indent=2, ensure_ascii=False).replace("\n", "\n  ")
    return f'{{\n  "deck": {deck_json},\n  "notes": '


def note_json(snapshot: Snapshot, note: PackagedNote) -> str:
    """A note's JSON two levels in, as json.dumps(indent=2) writes it: id, guid, type, deck,
    tags, fields and cards. Written out for this one shape (three times faster than
    json.dumps, which indents in pure Python: the export's main cost)."""
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


_string = json.encoder.encode_basestring  # in C, as json.dumps escapes strings

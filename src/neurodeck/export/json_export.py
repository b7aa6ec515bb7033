"""The deck as JSON for tools: every note with its id, GUID, type, deck, tags, fields and cards."""

from __future__ import annotations

import json
from collections.abc import Iterable

from ..snapshot import PackagedNote, Snapshot
from .cards import render_cards


def render_json(snapshot: Snapshot, notes: Iterable[PackagedNote]) -> str:
    """Stable, indented JSON: the same deck always gives the same text."""
    data = {
        "deck": {"id": snapshot.deck_slug, "name": snapshot.deck_name,
                 "version": snapshot.version},
        "notes": [_note(snapshot, note) for note in notes],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _note(snapshot: Snapshot, note: PackagedNote) -> dict[str, object]:
    return {
        "id": note.note_id,
        "guid": note.guid,
        "type": snapshot.notetype_of(note).key,
        "deck": note.deck,
        "tags": list(note.tags),
        "fields": snapshot.fields_of(note),
        "cards": [{"ordinal": c.ordinal + 1, "name": c.name, "front": c.front, "back": c.back}
                  for c in render_cards(snapshot, note)],
    }

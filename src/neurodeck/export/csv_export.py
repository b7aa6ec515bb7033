"""A tab-separated file for Anki's own text importer that keeps every note's identity.

Header lines tell Anki which column holds the GUID, note type, deck and tags, so importing it
updates the same notes the .apkg made (same GUIDs, same note types by id) instead of adding
copies. Note types are named by id, not name: two neurodeck decks both have a note type
called "neurodeck Basic", and a note filed under the wrong one could never be updated again.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..snapshot import PackagedNote, Snapshot

SEPARATOR = "\t"
_META_COLUMNS = ("GUID", "Note type", "Deck")


def render_csv(snapshot: Snapshot, notes: Iterable[PackagedNote]) -> str:
    """The notes as Anki's text-import format, with `#` header lines."""
    width = max((len(nt.fields) for nt in snapshot.notetypes.values()), default=0)
    field_labels = [
        "/".join(dict.fromkeys(nt.fields[i].name for nt in snapshot.notetypes.values()
                               if i < len(nt.fields)))
        for i in range(width)
    ]
    labels = [*_META_COLUMNS, *field_labels, "Tags"]
    lines = [
        "#separator:tab",
        "#html:true",
        "#guid column:1",
        "#notetype column:2",
        "#deck column:3",
        f"#tags column:{len(labels)}",
        "#columns:" + SEPARATOR.join(labels),
    ]
    for note in notes:
        fields = [*note.fields, *[""] * (width - len(note.fields))]
        row = [note.guid, str(note.notetype_id), note.deck, *fields, " ".join(note.tags)]
        lines.append(SEPARATOR.join(quote(value) for value in row))
    return "\n".join(lines) + "\n"


def quote(value: str) -> str:
    """Quote a value as Anki's reader expects; `#` too, as a line starting with it is a comment."""
    if any(c in value for c in (SEPARATOR, '"', "\n", "\r", "#")) or value != value.strip():
        return '"' + value.replace('"', '""') + '"'
    return value

"""A tab-separated file that Anki's own text importer reads into any collection.

The .apkg is what learners should import: it brings neurodeck's note types and keeps their
history across releases. The CSV is for everyone else (a collection with its own note types, a
teacher who wants to reshape the cards, another flashcard program): its notes use the note
types every Anki collection starts with, "Basic", "Basic (and reversed card)" and "Cloze", so
nothing is "missing a note type". The extra and the source, which those note types have no
field for, follow the answer. Header lines tell Anki which column holds the note type, deck,
GUID and tags; the GUIDs are the CSV's own, so importing a newer CSV updates the notes an older
one made, and CSV notes never collide with the .apkg's in one collection.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from ..snapshot import PackagedNote, Snapshot

SEPARATOR = "\t"
# The stock note type for each neurodeck kind, and its two fields (Anki's English names).
STOCK_NOTETYPES = {
    "basic": ("Basic", "Front", "Back"),
    "reversed": ("Basic (and reversed card)", "Front", "Back"),
    "cloze": ("Cloze", "Text", "Back Extra"),
}
_COLUMNS = ("GUID", "Note type", "Deck", "Front or Text", "Back or Back Extra", "Tags")


def render_csv(snapshot: Snapshot, notes: Iterable[PackagedNote]) -> str:
    """The notes as Anki's text-import format, with `#` header lines."""
    lines = [
        "#separator:tab",
        "#html:true",
        "#guid column:1",
        "#notetype column:2",
        "#deck column:3",
        f"#tags column:{len(_COLUMNS)}",
        "#columns:" + SEPARATOR.join(_COLUMNS),
    ]
    for note in notes:
        key = snapshot.notetype_of(note).key
        fields = snapshot.fields_of(note)
        notetype, _, _ = STOCK_NOTETYPES.get(key, STOCK_NOTETYPES["basic"])
        if key == "cloze":
            first, second = fields.get("text", ""), _joined(fields.get("extra", ""), fields)
        else:
            first = fields.get("front", "")
            second = _joined(fields.get("back", ""), fields, fields.get("extra", ""))
        row = [csv_guid(note.guid), notetype, note.deck, first, second, " ".join(note.tags)]
        lines.append(SEPARATOR.join(quote(value) for value in row))
    return "\n".join(lines) + "\n"


def _joined(first: str, fields: dict[str, str], *more: str) -> str:
    """The answer (or cloze extra), then the extra, then the source line in small print."""
    source = fields.get("source", "")
    parts = [p for p in (first, *more) if p]
    if source:
        parts.append(f"<small>{source}</small>")
    return "<br><br>".join(parts)


def csv_guid(guid: str) -> str:
    """The CSV's own GUID for a note: stable, and never one of the .apkg's."""
    return "csv" + hashlib.sha256(f"neurodeck-csv\x1f{guid}".encode()).hexdigest()[:13]


def quote(value: str) -> str:
    """Quote a value as Anki's reader expects; `#` too, as a line starting with it is a comment."""
    if any(c in value for c in (SEPARATOR, '"', "\n", "\r", "#")) or value != value.strip():
        return '"' + value.replace('"', '""') + '"'
    return value

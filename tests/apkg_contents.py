"""Read a built .apkg's database directly: what the package says, before Anki interprets it."""

from __future__ import annotations

import json
import sqlite3
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PackagedNote:
    guid: str
    notetype: str
    mod: int
    tags: tuple[str, ...]
    fields: tuple[str, ...]


@dataclass(frozen=True)
class PackagedCard:
    guid: str
    deck: str
    ord: int
    due: int


@dataclass(frozen=True)
class Contents:
    entries: tuple[str, ...]
    notes: dict[str, PackagedNote]  # by guid
    cards: list[PackagedCard]
    decks: dict[int, str]
    notetypes: dict[int, dict]  # id -> Anki's JSON


def read_apkg(path: Path) -> Contents:
    """Notes, cards, decks and note types stored in a package."""
    with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory() as tmp:
        entries = tuple(archive.namelist())
        db = Path(tmp) / "collection.anki2"
        db.write_bytes(archive.read("collection.anki2"))
        conn = sqlite3.connect(db)
        try:
            decks_json, models_json = conn.execute("SELECT decks, models FROM col").fetchone()
            decks = {int(k): v["name"] for k, v in json.loads(decks_json).items()}
            notetypes = {int(k): v for k, v in json.loads(models_json).items()}
            notes = {}
            for nid_guid, mid, mod, tags, flds in conn.execute(
                "SELECT guid, mid, mod, tags, flds FROM notes ORDER BY id"
            ):
                notes[nid_guid] = PackagedNote(
                    nid_guid,
                    notetypes[mid]["name"],
                    mod,
                    tuple(tags.split()),
                    tuple(flds.split("\x1f")),
                )
            cards = [
                PackagedCard(guid, decks[did], ord_, due)
                for guid, did, ord_, due in conn.execute(
                    "SELECT n.guid, c.did, c.ord, c.due FROM cards c JOIN notes n ON n.id = c.nid "
                    "ORDER BY c.due, c.ord"
                )
            ]
        finally:
            conn.close()
    return Contents(entries, notes, cards, decks, notetypes)

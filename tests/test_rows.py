"""genanki is the oracle of rows.py: the same notes, written through genanki's public API
(Model, Note, Deck, Package.write_to_db), give the same rows, decks and note types."""

from __future__ import annotations

import json
import shutil
import sqlite3
import warnings
import zipfile
from pathlib import Path
from typing import Any

import genanki

from neurodeck import pipeline
from neurodeck.notetypes import NOTE_TYPES

CARDS = Path(__file__).resolve().parent.parent / "cards"
CLOCK = 1_800_000_000


def _rows(db: sqlite3.Connection) -> tuple[list[Any], list[Any], list[Any]]:
    notes = db.execute("SELECT * FROM notes ORDER BY id").fetchall()
    cards = db.execute("SELECT * FROM cards ORDER BY id").fetchall()
    col = list(db.execute("SELECT * FROM col").fetchone())
    return notes, cards, col


def _pairs(text: str) -> Any:
    """JSON with every key kept, duplicates too (genanki's models text has them)."""
    return json.loads(text, object_pairs_hook=list)


def test_rows_are_the_rows_genanki_writes(tmp_path: Path) -> None:
    deck_dir = tmp_path / "cards"
    shutil.copytree(CARDS, deck_dir)
    (deck_dir / "neurodeck.lock").unlink()  # a first build: one time for every row
    built = pipeline.build(deck_dir, tmp_path / "deck.apkg", clock=CLOCK)
    with zipfile.ZipFile(built.path) as archive:
        (tmp_path / "ours.anki2").write_bytes(archive.read("collection.anki2"))
    with sqlite3.connect(tmp_path / "ours.anki2") as db:
        notes, cards, col = _rows(db)
    assert {note[3] for note in notes} == {CLOCK}
    decks_json, models_json = json.loads(col[10]), json.loads(col[9])
    assert len({row[2] for row in notes}) == len(NOTE_TYPES)  # every note type is covered

    models = {}
    for model_id, model in models_json.items():
        (notetype,) = (nt for nt in NOTE_TYPES.values() if model["name"].endswith(nt.name))
        models[int(model_id)] = genanki.Model(
            int(model_id),
            model["name"],
            fields=notetype.field_dicts(),
            templates=notetype.template_dicts(),
            css=notetype.css,
            model_type=genanki.Model.CLOZE if notetype.is_cloze else genanki.Model.FRONT_BACK,
        )
    decks = {
        int(deck_id): genanki.Deck(int(deck_id), deck["name"], deck["desc"])
        for deck_id, deck in decks_json.items()
        if deck_id != "1"  # Anki's Default deck, in the empty collection
    }
    for deck in decks.values():
        for model in models.values():
            deck.add_model(model)
    cards_of: dict[int, list[Any]] = {}
    for card in cards:
        cards_of.setdefault(card[1], []).append(card)
    for note in notes:
        note_cards = sorted(cards_of[note[0]], key=lambda card: card[3])
        decks[note_cards[0][2]].add_note(
            genanki.Note(
                models[note[2]],
                note[6].split("\x1f"),
                tags=note[5].split(),
                guid=note[1],
                due=note_cards[0][8],
            )
        )
    # Row ids are neurodeck's (from the lock), handed to genanki in the order it asks.
    note_ids = {note[1]: note[0] for note in notes}
    row_ids = []
    for deck in decks.values():
        for each in deck.notes:
            note_id = note_ids[each.guid]
            row_ids.append(note_id)
            row_ids += [card[0] for card in sorted(cards_of[note_id], key=lambda c: c[3])]
    with sqlite3.connect(":memory:") as oracle, warnings.catch_warnings():
        warnings.simplefilter("error")  # genanki finds no unescaped HTML in our fields
        genanki.Package(list(decks.values())).write_to_db(oracle.cursor(), CLOCK, iter(row_ids))
        their_notes, their_cards, their_col = _rows(oracle)

    assert notes == their_notes
    assert cards == their_cards
    assert col[:9] + col[10:] == their_col[:9] + their_col[10:]
    # genanki has no public way to set Anki's originalStockKind; everything else is equal.
    ours = _pairs(col[9])
    for _, model in ours:
        kind = [value for key, value in model if key == "originalStockKind"]
        assert kind in ([], [6])
        model[:] = [(key, value) for key, value in model if key != "originalStockKind"]
    assert ours == _pairs(their_col[9])

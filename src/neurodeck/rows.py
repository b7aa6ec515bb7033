"""The rows of a package's collection.anki2, written here: the schema, the notes and cards
rows, and the decks and note types (as JSON in the col row).

They are the rows genanki (the package library this project started from) writes, value for
value; tests/test_rows.py builds the same notes through genanki's public API (Model, Note,
Deck, Package.write_to_db) and holds every row equal. genanki's own writer is not used: it
derives each note's cards by rendering templates and writes one row per execute call, which
was most of a large build's time, and it offers no public way to give notes their own
modification time and row ids.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import ids

# genanki's schema and first col row (a schema-11 collection), as it writes them.
SCHEMA = r"""
CREATE TABLE col (
    id              integer primary key,
    crt             integer not null,
    mod             integer not null,
    scm             integer not null,
    ver             integer not null,
    dty             integer not null,
    usn             integer not null,
    ls              integer not null,
    conf            text not null,
    models          text not null,
    decks           text not null,
    dconf           text not null,
    tags            text not null
);
CREATE TABLE notes (
    id              integer primary key,   /* 0 */
    guid            text not null,         /* 1 */
    mid             integer not null,      /* 2 */
    mod             integer not null,      /* 3 */
    usn             integer not null,      /* 4 */
    tags            text not null,         /* 5 */
    flds            text not null,         /* 6 */
    sfld            integer not null,      /* 7 */
    csum            integer not null,      /* 8 */
    flags           integer not null,      /* 9 */
    data            text not null          /* 10 */
);
CREATE TABLE cards (
    id              integer primary key,   /* 0 */
    nid             integer not null,      /* 1 */
    did             integer not null,      /* 2 */
    ord             integer not null,      /* 3 */
    mod             integer not null,      /* 4 */
    usn             integer not null,      /* 5 */
    type            integer not null,      /* 6 */
    queue           integer not null,      /* 7 */
    due             integer not null,      /* 8 */
    ivl             integer not null,      /* 9 */
    factor          integer not null,      /* 10 */
    reps            integer not null,      /* 11 */
    lapses          integer not null,      /* 12 */
    left            integer not null,      /* 13 */
    odue            integer not null,      /* 14 */
    odid            integer not null,      /* 15 */
    flags           integer not null,      /* 16 */
    data            text not null          /* 17 */
);
CREATE TABLE revlog (
    id              integer primary key,
    cid             integer not null,
    usn             integer not null,
    ease            integer not null,
    ivl             integer not null,
    lastIvl         integer not null,
    factor          integer not null,
    time            integer not null,
    type            integer not null
);
CREATE TABLE graves (
    usn             integer not null,
    oid             integer not null,
    type            integer not null
);
CREATE INDEX ix_notes_usn on notes (usn);
CREATE INDEX ix_cards_usn on cards (usn);
CREATE INDEX ix_revlog_usn on revlog (usn);
CREATE INDEX ix_cards_nid on cards (nid);
CREATE INDEX ix_cards_sched on cards (did, queue, due);
CREATE INDEX ix_revlog_cid on revlog (cid);
CREATE INDEX ix_notes_csum on notes (csum);
"""

COLLECTION = r"""
INSERT INTO col VALUES(
    null,
    1411124400,
    1425279151694,
    1425279151690,
    11,
    0,
    0,
    0,
    '{
        "activeDecks": [
            1
        ],
        "addToCur": true,
        "collapseTime": 1200,
        "curDeck": 1,
        "curModel": "1425279151691",
        "dueCounts": true,
        "estTimes": true,
        "newBury": true,
        "newSpread": 0,
        "nextPos": 1,
        "sortBackwards": false,
        "sortType": "noteFld",
        "timeLim": 0
    }',
    '{}',
    '{
        "1": {
            "collapsed": false,
            "conf": 1,
            "desc": "",
            "dyn": 0,
            "extendNew": 10,
            "extendRev": 50,
            "id": 1,
            "lrnToday": [
                0,
                0
            ],
            "mod": 1425279151,
            "name": "Default",
            "newToday": [
                0,
                0
            ],
            "revToday": [
                0,
                0
            ],
            "timeToday": [
                0,
                0
            ],
            "usn": 0
        }
    }',
    '{
        "1": {
            "autoplay": true,
            "id": 1,
            "lapse": {
                "delays": [
                    10
                ],
                "leechAction": 0,
                "leechFails": 8,
                "minInt": 1,
                "mult": 0
            },
            "maxTaken": 60,
            "mod": 0,
            "name": "Default",
            "new": {
                "bury": true,
                "delays": [
                    1,
                    10
                ],
                "initialFactor": 2500,
                "ints": [
                    1,
                    4,
                    7
                ],
                "order": 1,
                "perDay": 20,
                "separate": true
            },
            "replayq": true,
            "rev": {
                "bury": true,
                "ease4": 1.3,
                "fuzz": 0.05,
                "ivlFct": 1,
                "maxIvl": 36500,
                "minSpace": 1,
                "perDay": 100
            },
            "timer": 0,
            "usn": 0
        }
    }',
    '{}'
);
"""

NOTE_INSERT = "INSERT INTO notes VALUES(?,?,?,?,?,?,?,?,?,?,?);"
CARD_INSERT = "INSERT INTO cards VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?);"

NoteRow = tuple[int, str, int, int, int, str, str, str, int, int, str]
CardRow = tuple[
    int, int, int, int, int, int, int, int, int, int, int, int, int, int, int, int, int, str
]


def create_collection(cursor: sqlite3.Cursor) -> None:
    """The empty collection: every table, and the col row with no decks or note types yet."""
    cursor.executescript(SCHEMA)
    cursor.executescript(COLLECTION)


def note_row(
    row_id: int, guid: str, notetype_id: int, mod: int, tags: Iterable[str], fields: Sequence[str]
) -> NoteRow:
    """A notes row: tags padded with spaces, fields joined by 0x1f, the first one sorts."""
    tag_text = " " + " ".join(tags) + " "
    # usn -1: not yet synced; csum 0 (Anki recomputes it on import), flags 0, data "".
    return (row_id, guid, notetype_id, mod, -1, tag_text, "\x1f".join(fields), fields[0], 0, 0, "")


def card_rows(
    note_id: int, ordinals: Sequence[int], deck_id: int, mod: int, due: int
) -> list[CardRow]:
    """A note's new cards (type and queue 0), all at the note's place `due` in the new queue."""
    return [
        (
            ids.card_row_id(note_id, o),
            note_id,
            deck_id,
            o,
            mod,
            -1,
            0,
            0,
            due,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            "",
        )
        for o in ordinals
    ]


@dataclass
class DeckRecord:
    """A deck as the col row's `decks` JSON holds it."""

    deck_id: int
    name: str
    description: str = ""

    def to_json(self) -> dict[str, object]:
        # Fixed counters and time: genanki's values, which Anki replaces on import.
        return {
            "collapsed": False,
            "conf": 1,
            "desc": self.description,
            "dyn": 0,
            "extendNew": 0,
            "extendRev": 50,
            "id": self.deck_id,
            "lrnToday": [163, 2],
            "mod": 1425278051,
            "name": self.name,
            "newToday": [163, 2],
            "revToday": [163, 0],
            "timeToday": [163, 23598],
            "usn": -1,
        }


_LATEX_PRE = (
    "\\documentclass[12pt]{article}\n\\special{papersize=3in,5in}\n\\usepackage[utf8]{inputenc}\n"
    "\\usepackage{amssymb,amsmath}\n\\pagestyle{empty}\n\\setlength{\\parindent}{0in}\n"
    "\\begin{document}\n"
)
_LATEX_POST = "\\end{document}"
_TEMPLATE_DEFAULTS: Mapping[str, object] = {
    "bafmt": "",
    "bqfmt": "",
    "bfont": "",
    "bsize": 0,
    "did": None,
}
_FIELD_DEFAULTS: Mapping[str, object] = {
    "font": "Liberation Sans",
    "media": [],
    "rtl": False,
    "size": 20,
    "sticky": False,
}
FRONT_BACK, CLOZE = 0, 1


@dataclass
class NoteTypeRecord:
    """A note type as the col row's `models` JSON holds it."""

    model_id: int
    name: str
    fields: list[dict[str, object]]
    templates: list[dict[str, object]]
    css: str
    model_type: int  # FRONT_BACK or CLOZE
    mod: int
    # Anki's legacy "req": per template, [ord, "all" | "any", the fields that make it non-empty].
    required: list[list[object]] = field(default_factory=list)
    original_stock_kind: int | None = None

    def to_json(self, deck_id: int) -> dict[str, Any]:
        """The JSON, with the defaults genanki gives fields and templates (keys in its order)."""
        model: dict[str, Any] = {
            "css": self.css,
            "did": deck_id,
            "flds": [_numbered(f, i, _FIELD_DEFAULTS) for i, f in enumerate(self.fields)],
            "id": str(self.model_id),
            "latexPost": _LATEX_POST,
            "latexPre": _LATEX_PRE,
            "latexsvg": False,
            "mod": self.mod,
            "name": self.name,
            "req": self.required,
            "sortf": 0,
            "tags": [],
            "tmpls": [_numbered(t, i, _TEMPLATE_DEFAULTS) for i, t in enumerate(self.templates)],
            "type": self.model_type,
            "usn": -1,
            "vers": [],
        }
        if self.original_stock_kind is not None:
            model["originalStockKind"] = self.original_stock_kind
        return model


def _numbered(
    item: Mapping[str, object], ordinal: int, defaults: Mapping[str, object]
) -> dict[str, object]:
    numbered = dict(item)
    numbered["ord"] = ordinal
    for key, value in defaults.items():
        numbered.setdefault(key, list(value) if isinstance(value, list) else value)
    return numbered


def write_decks_and_models(
    cursor: sqlite3.Cursor, decks: Iterable[DeckRecord], models: Sequence[NoteTypeRecord]
) -> None:
    """Put the decks and note types into the col row, in the steps genanki takes.

    genanki rewrites both JSON columns once per deck, each note type naming that deck, and
    updates the parsed JSON (string keys) with integer keys: the text holds each note type
    twice under one key (Anki reads the last). The same steps keep the same bytes.
    """
    for deck in decks:
        (decks_text,) = cursor.execute("SELECT decks FROM col").fetchone()
        deck_json = json.loads(decks_text)
        deck_json.update({str(deck.deck_id): deck.to_json()})
        cursor.execute("UPDATE col SET decks = ?", (json.dumps(deck_json),))
        (models_text,) = cursor.execute("SELECT models from col").fetchone()
        model_json = json.loads(models_text)
        model_json.update({model.model_id: model.to_json(deck.deck_id) for model in models})
        cursor.execute("UPDATE col SET models = ?", (json.dumps(model_json),))

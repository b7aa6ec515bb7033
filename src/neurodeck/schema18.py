"""Note types and decks of a schema-18 collection, in the shapes of the legacy JSON.

Anki 2.1.50+ exports `collection.anki21b`: a collection whose note types, fields, templates
and decks are rows with protobuf blobs instead of the JSON in `col.models` and `col.decks`.
Only the few values a Snapshot needs are decoded, with a small protobuf reader, so that
reading such a package needs neither Anki's library nor protobuf classes. The field numbers
are those of Anki's proto/anki/notetypes.proto and decks.proto.
"""

from __future__ import annotations

import sqlite3
from typing import Any


class SchemaError(Exception):
    """A blob or row that is not what Anki writes."""


# Notetype.Config: kind = 1 (0 normal, 1 cloze), css = 3.
# Notetype.Field.Config: id = 9.  Notetype.Template.Config: q_format = 1, a_format = 2, id = 8.
# DeckKindContainer: normal = 1; Deck.Normal: description = 4.
_KIND, _CSS = 1, 3
_FIELD_ID = 9
_QFMT, _AFMT, _TEMPLATE_ID = 1, 2, 8
_NORMAL_DECK, _DESCRIPTION = 1, 4


def read_models_and_decks(conn: sqlite3.Connection) -> tuple[dict[str, Any], dict[str, Any]]:
    """`col.models` and `col.decks` as a schema-11 collection would hold them."""
    models: dict[str, Any] = {}
    for ntid, name, mtime, config in conn.execute(
        "select id, name, mtime_secs, config from notetypes"
    ):
        values = _message(config)
        models[str(int(ntid))] = {
            "id": int(ntid),
            "name": str(name),
            "mod": int(mtime),
            "type": _int(values, _KIND),
            "css": _text(values, _CSS),
            "flds": [],
            "tmpls": [],
        }
    for ntid, ordinal, name, config in conn.execute(
        "select ntid, ord, name, config from fields order by ntid, ord"
    ):
        model = models.get(str(ntid))
        if model is None:  # Anki's exporter leaves the rows of note types it left out
            continue
        values = _message(config)
        model["flds"].append(
            {"name": str(name), "ord": int(ordinal), "id": _signed(values, _FIELD_ID)}
        )
    for ntid, ordinal, name, config in conn.execute(
        "select ntid, ord, name, config from templates order by ntid, ord"
    ):
        model = models.get(str(ntid))
        if model is None:
            continue
        values = _message(config)
        model["tmpls"].append(
            {
                "name": str(name),
                "ord": int(ordinal),
                "qfmt": _text(values, _QFMT),
                "afmt": _text(values, _AFMT),
                "id": _signed(values, _TEMPLATE_ID),
            }
        )
    decks: dict[str, Any] = {}
    for did, name, kind in conn.execute("select id, name, kind from decks"):
        normal = _message(_bytes(_message(kind), _NORMAL_DECK))
        decks[str(int(did))] = {
            "id": int(did),
            "name": str(name).replace("\x1f", "::"),
            "desc": _text(normal, _DESCRIPTION),
        }
    return models, decks


def _message(blob: object) -> dict[int, list[int | bytes]]:
    """A protobuf message's values by field number (only the wire types Anki uses)."""
    if not isinstance(blob, bytes):
        raise SchemaError(f"a protobuf blob is {type(blob).__name__}, not bytes")
    values: dict[int, list[int | bytes]] = {}
    at = 0
    while at < len(blob):
        key, at = _varint(blob, at)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, at = _varint(blob, at)
        elif wire == 2:
            length, at = _varint(blob, at)
            value, at = blob[at : at + length], at + length
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, at = blob[at : at + width], at + width
        else:
            raise SchemaError(f"a protobuf blob has wire type {wire}")
        if at > len(blob):
            raise SchemaError("a protobuf blob is truncated")
        values.setdefault(number, []).append(value)
    return values


def _varint(blob: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(blob) or shift > 63:
            raise SchemaError("a protobuf blob has a broken number")
        byte = blob[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def _last(values: dict[int, list[int | bytes]], number: int) -> int | bytes | None:
    found = values.get(number)
    return found[-1] if found else None  # protobuf: the last value of a field wins


def _int(values: dict[int, list[int | bytes]], number: int) -> int:
    value = _last(values, number)
    if isinstance(value, bytes):
        raise SchemaError(f"protobuf field {number} is not a number")
    return value or 0


def _signed(values: dict[int, list[int | bytes]], number: int) -> int | None:
    if number not in values:
        return None
    value = _int(values, number)
    return value - (1 << 64) if value >= 1 << 63 else value  # int64 as two's complement


def _bytes(values: dict[int, list[int | bytes]], number: int) -> bytes:
    value = _last(values, number)
    if isinstance(value, int):
        raise SchemaError(f"protobuf field {number} is a number, not text")
    return value or b""


def _text(values: dict[int, list[int | bytes]], number: int) -> str:
    try:
        return _bytes(values, number).decode("utf-8")
    except UnicodeDecodeError:
        raise SchemaError(f"protobuf field {number} is not UTF-8 text") from None

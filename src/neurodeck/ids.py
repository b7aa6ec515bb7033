"""Every GUID and id in a package, derived from names that never change. Pure; pinned by tests.

Anki matches a re-imported note by GUID only, and note types and decks by id. If any of these
came from field text, the clock or chance, an edited card would arrive as a new note and the
learner would lose its review history.
"""

from __future__ import annotations

import hashlib

# Ids stay below 2**53 so that they survive JSON and JavaScript in Anki's front ends.
_ID_RANGE = (1 << 40, 1 << 52)


def stable_int(*parts: str) -> int:
    """A 64-bit-safe integer id from a namespaced key."""
    digest = hashlib.sha256("\x1f".join(("neurodeck", *parts)).encode("utf-8")).digest()
    low, high = _ID_RANGE
    return low + int.from_bytes(digest[:8], "big") % (high - low)


def note_guid(deck_id: str, note_id: str) -> str:
    """The note's GUID. Never hash the fields: an edited card must stay the same note.

    It is genanki.guid_for("neurodeck", deck_id, note_id) (genanki is no run-time dependency;
    this is also a third of its time, which adds up in a large deck); tests/test_ids.py holds
    the two equal.
    """
    digest = hashlib.sha256(f"neurodeck__{deck_id}__{note_id}".encode()).digest()
    # Base 91, two digits at a time: five pairs hold any 64-bit number (91**10 > 2**64).
    high, low0 = divmod(int.from_bytes(digest[:8], "big"), _PAIR)
    high, low1 = divmod(high, _PAIR)
    high, low2 = divmod(high, _PAIR)
    top, low3 = divmod(high, _PAIR)
    pairs = _BASE91_PAIRS
    # genanki writes no leading zero digits ("a").
    return (pairs[top] + pairs[low3] + pairs[low2] + pairs[low1] + pairs[low0]).lstrip("a")


# genanki's alphabet for GUIDs (Anki's own base 91), and every two-digit string of it.
_BASE91 = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&()*+,-./:;<=>?@[]^_`{|}~"
)
_PAIR = 91 * 91
_BASE91_PAIRS = tuple(high + low for high in _BASE91 for low in _BASE91)


def deck_id(deck_id: str, subdeck: str) -> int:
    """The Anki deck id of a subdeck path ("" is the root deck)."""
    return stable_int(deck_id, "deck", subdeck)


def notetype_id(deck_id: str, notetype_key: str) -> int:
    """The note type's id, namespaced per deck so two neurodeck decks never share one."""
    return stable_int(deck_id, "notetype", notetype_key)


def field_id(notetype_key: str, field_key: str) -> int:
    """A field's id: Anki matches fields by it, so a later rename keeps learners' notes."""
    return stable_int("field", notetype_key, field_key)


def template_id(notetype_key: str, template_key: str) -> int:
    """A card template's id, for the same reason as field_id."""
    return stable_int("template", notetype_key, template_key)


# Row ids leave this much room for each note's cards (Anki allows far fewer cloze numbers).
ROW_STRIDE = 1000


def note_row_id(first_build: int, due: int) -> int:
    """The note's row id in the package: when the deck was first built, plus its position.

    Row ids are not identity (Anki matches notes by GUID and gives an imported note a new id
    if the learner has that id already), but Anki shows them as the date a note was added,
    and increasing ids let SQLite append rows instead of inserting them at random.
    """
    return first_build * 1000 + due * ROW_STRIDE


def card_row_id(note_row: int, ordinal: int) -> int:
    """A card's row id: its note's row id plus the card's ordinal."""
    return note_row + ordinal

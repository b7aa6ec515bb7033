"""Ids are identity: these values must never change, or learners get duplicates."""

import genanki
from hypothesis import given
from hypothesis import strategies as st

from neurodeck import ids


def test_guid_comes_from_deck_and_note_id_only():
    """Pins the GUID of a note: a change here would duplicate every learner's notes."""
    assert ids.note_guid("neurodeck", "oxytocin-touch") == "wiI}j8&-R*"


@given(st.text(), st.text())
def test_guid_is_genankis_guid_for(deck_id, note_id):
    assert ids.note_guid(deck_id, note_id) == genanki.guid_for("neurodeck", deck_id, note_id)


def test_guids_with_leading_zero_digits_are_genankis():
    """genanki writes no leading zero digit: these hashes have one and two of them."""
    for note_id, guid in [("n8", "E$yb;:?jA"), ("n1381", "{s*/;N4-")]:
        assert ids.note_guid("d", note_id) == guid == genanki.guid_for("neurodeck", "d", note_id)


def test_guids_are_namespaced_by_deck():
    assert ids.note_guid("deck-a", "same-id") != ids.note_guid("deck-b", "same-id")


def test_pinned_deck_and_notetype_ids():
    assert ids.deck_id("neurodeck", "") == 2483402275568846
    assert ids.notetype_id("neurodeck", "basic") == 3236473584365508
    assert ids.field_id("basic", "front") == 4329915287370539


def test_ids_fit_in_javascript_numbers():
    for value in (ids.deck_id("x", "A::B"), ids.notetype_id("x", "cloze")):
        assert 1 << 40 <= value < 1 << 52


def test_row_ids_follow_curriculum_order_from_the_first_build_time():
    first = ids.note_row_id(1_700_000_000, 1)
    assert first == 1_700_000_000_000 + ids.ROW_STRIDE
    assert ids.note_row_id(1_700_000_000, 2) == first + ids.ROW_STRIDE
    assert ids.card_row_id(first, 1) == first + 1

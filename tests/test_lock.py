"""The lock file: content hashes and change times, refreshed by build, checked by --frozen."""

from __future__ import annotations

import pytest

from neurodeck import lock
from neurodeck.errors import NeurodeckError

OLD = lock.Lock(
    notes={"a": lock.Entry("h1", 100, "basic", "", "0"),
           "b": lock.Entry("h2", 100, "cloze", "X::Y", "0,1")},
    notetypes={"basic": lock.Entry("t1", 50)},
    deck_name="Test Deck",
)


def test_unchanged_entries_keep_their_time_and_changed_ones_move_forward():
    updater = lock.LockUpdater(OLD, clock=200, deck_name="Test Deck")
    assert updater.notetype("basic", "t1") == 50
    assert updater.note("a", "h1", "basic", "", "0") == 100
    assert updater.note("b", "CHANGED", "cloze", "X::Y", "0,1") == 200
    assert updater.note("c", "h3", "basic", "", "0") == 200
    assert updater.changes() == ["1 note added", "1 note changed"]


def test_an_edit_is_newer_even_when_the_clock_is_behind():
    updater = lock.LockUpdater(OLD, clock=10, deck_name="Test Deck")
    assert updater.note("a", "CHANGED", "basic", "", "0") == 101


def test_removed_notes_and_changed_note_types_are_changes():
    updater = lock.LockUpdater(OLD, clock=200, deck_name="Test Deck")
    updater.note("a", "h1", "basic", "", "0")
    updater.notetype("basic", "t2")
    assert updater.changes() == ["1 note removed", "note types changed: basic"]


def test_nothing_changed_means_no_changes():
    updater = lock.LockUpdater(OLD, clock=200, deck_name="Test Deck")
    updater.notetype("basic", "t1")
    updater.note("a", "h1", "basic", "", "0")
    updater.note("b", "h2", "cloze", "X::Y", "0,1")
    assert updater.changes() == []
    assert updater.lock() == OLD


def test_format_and_parse_round_trip():
    text = lock.format_lock(OLD)
    assert lock.parse_lock("cards/neurodeck.lock", text) == OLD
    assert text.splitlines()[2:] == [
        "deck\tTest Deck",
        "notetype\tbasic\tt1\t50",
        "note\ta\th1\t100\tbasic\t0\t",
        "note\tb\th2\t100\tcloze\t0,1\tX::Y",
    ]


def test_damaged_lock_is_a_located_error():
    text = lock.format_lock(OLD).replace("\t100\tcloze", "\tlater\tcloze")
    with pytest.raises(NeurodeckError) as caught:
        lock.parse_lock("cards/neurodeck.lock", text)
    (problem,) = caught.value.problems
    assert str(problem).startswith("cards/neurodeck.lock:6: error: cannot read the lock file")
    assert "restore it from version control" in (problem.hint or "")


def test_a_renamed_deck_is_a_change():
    updater = lock.LockUpdater(OLD, clock=200, deck_name="New Name")
    updater.notetype("basic", "t1")
    updater.note("a", "h1", "basic", "", "0")
    updater.note("b", "h2", "cloze", "X::Y", "0,1")
    assert updater.changes() == ["deck name changed"]


def test_latest_is_the_newest_time():
    assert OLD.latest == 100
    assert lock.EMPTY.latest == 0

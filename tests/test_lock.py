"""The lock file: content hashes and change times, refreshed by build, checked by --frozen."""

from __future__ import annotations

import pytest

from neurodeck import lock
from neurodeck.errors import NeurodeckError

OLD = lock.Lock(
    notes={"a": lock.Entry("h1", 100, "basic", ""), "b": lock.Entry("h2", 100, "cloze", "X")},
    notetypes={"basic": lock.Entry("t1", 50)},
)


def test_refresh_keeps_times_of_unchanged_entries_and_moves_changed_ones():
    new = lock.refresh(
        OLD,
        {"a": lock.Entry("h1", 0, "basic", ""), "b": lock.Entry("CHANGED", 0, "cloze", "X"),
         "c": lock.Entry("h3", 0, "basic", "")},
        {"basic": lock.Entry("t1", 0)},
        clock=200,
    )
    assert {k: e.mod for k, e in new.notes.items()} == {"a": 100, "b": 200, "c": 200}
    assert new.notetypes["basic"].mod == 50
    assert lock.describe_changes(OLD, new) == ["1 note added", "1 note changed", ]


def test_describe_changes_counts_removed_notes_and_note_types():
    new = lock.Lock({"a": OLD.notes["a"]}, {"basic": lock.Entry("t2", 60)})
    assert lock.describe_changes(OLD, new) == ["1 note removed", "note types changed: basic"]


def test_format_and_parse_round_trip():
    text = lock.format_lock(OLD)
    assert lock.parse_lock("cards/neurodeck.lock", text) == OLD
    assert text.splitlines()[1] == '  "version": 1,'


def test_damaged_lock_is_a_located_error():
    with pytest.raises(NeurodeckError) as caught:
        lock.parse_lock("cards/neurodeck.lock", '{"version": 1, "notes": ')
    (problem,) = caught.value.problems
    assert str(problem).startswith("cards/neurodeck.lock:1: error: cannot read the lock file")
    assert "restore it from version control" in (problem.hint or "")


def test_latest_is_the_newest_time():
    assert OLD.latest == 100
    assert lock.EMPTY.latest == 0

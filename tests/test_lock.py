"""The lock file: content hashes and change times, refreshed by build, checked by --frozen."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from neurodeck import lock
from neurodeck.errors import NeurodeckError

OLD = lock.Lock(
    notes={
        "a": lock.Entry("00000000000000a1", 100, "basic", "", "0"),
        "b": lock.Entry("00000000000000a2", 100, "cloze", "X::Y", "0,1"),
    },
    notetypes={"basic": lock.Entry("t1", 50)},
    deck_name="Test Deck",
    deck_id="test",
)


def test_unchanged_entries_keep_their_time_and_changed_ones_move_forward():
    updater = lock.LockUpdater(OLD, clock=200, deck_name="Test Deck")
    assert updater.notetype("basic", "t1") == 50
    assert updater.note("a", "00000000000000a1", "basic", "", "0") == 100
    assert updater.note("b", "00000000000000ff", "cloze", "X::Y", "0,1") == 200
    assert updater.note("c", "00000000000000a3", "basic", "", "0") == 200
    assert updater.changes() == ["1 note added", "1 note changed"]


def test_an_edit_is_newer_even_when_the_clock_is_behind():
    updater = lock.LockUpdater(OLD, clock=10, deck_name="Test Deck")
    assert updater.note("a", "00000000000000ff", "basic", "", "0") == 101


def test_removed_notes_and_changed_note_types_are_changes():
    updater = lock.LockUpdater(OLD, clock=200, deck_name="Test Deck")
    updater.note("a", "00000000000000a1", "basic", "", "0")
    updater.notetype("basic", "t2")
    assert updater.changes() == ["1 note removed", "note types changed: basic"]


def test_nothing_changed_means_no_changes():
    updater = lock.LockUpdater(OLD, clock=200, deck_name="Test Deck")
    updater.notetype("basic", "t1")
    updater.note("a", "00000000000000a1", "basic", "", "0")
    updater.note("b", "00000000000000a2", "cloze", "X::Y", "0,1")
    assert updater.changes() == []
    assert updater.lock() == OLD


def test_format_and_parse_round_trip():
    text = lock.format_lock(OLD)
    assert lock.parse_lock("cards/neurodeck.lock", text) == OLD
    assert [line for line in text.splitlines() if not line.startswith("#")] == [
        "lock\t3\ttest",
        "deck\tTest Deck",
        "notetype\tbasic\tt1\t50",
        "note\ta\t00000000000000a1\t100\tbasic\t0\t",
        "note\tb\t00000000000000a2\t100\tcloze\t0,1\tX::Y",
    ]


def test_damaged_lock_is_a_located_error():
    text = lock.format_lock(OLD).replace("\t100\tcloze", "\tlater\tcloze")
    with pytest.raises(NeurodeckError) as caught:
        lock.parse_lock("cards/neurodeck.lock", text)
    (problem,) = caught.value.problems
    assert str(problem).startswith("cards/neurodeck.lock:8: error: cannot read the lock file")
    assert "restore it from version control" in (problem.hint or "")
    assert "neurodeck lock --from" in (problem.hint or "")


def test_a_renamed_deck_is_a_change():
    updater = lock.LockUpdater(OLD, clock=200, deck_name="New Name")
    updater.notetype("basic", "t1")
    updater.note("a", "00000000000000a1", "basic", "", "0")
    updater.note("b", "00000000000000a2", "cloze", "X::Y", "0,1")
    assert updater.changes() == ["deck name changed"]


def test_latest_is_the_newest_time():
    assert OLD.latest == 100
    assert lock.EMPTY.latest == 0


def test_a_lock_out_of_order_or_with_a_note_twice_is_damaged():
    lines = lock.format_lock(OLD).splitlines()
    for damaged in ([*lines[:-2], lines[-1], lines[-2]], [*lines, lines[-1]]):
        with pytest.raises(NeurodeckError) as caught:
            lock.parse_lock("cards/neurodeck.lock", "\n".join(damaged))
        assert "out of order or repeated" in str(caught.value)


def test_a_hash_that_is_not_16_hex_digits_is_damaged():
    for bad in ("0x000000000000a1", "00000000000000A1", "0000_0000000000a1", "a1"):
        text = lock.format_lock(OLD).replace("00000000000000a1", bad)
        with pytest.raises(NeurodeckError) as caught:
            lock.parse_lock("cards/neurodeck.lock", text)
        assert "16 lowercase hex digits" in str(caught.value)


def test_notes_recorded_in_any_order_are_looked_up_and_written_in_id_order():
    table = lock.NoteTable()
    for note_id in ("m", "c", "x", "a"):
        table.add(note_id, f"{ord(note_id):016x}", ord(note_id), "basic", note_id.upper(), "0")
    assert list(table) == ["a", "c", "m", "x"]
    assert table["c"] == lock.Entry(f"{ord('c'):016x}", ord("c"), "basic", "C", "0")
    assert "x" in table and "b" not in table and table.get("b") is None
    text = lock.format_lock(lock.Lock(table, {}, deck_id="test"))
    assert [line.split("\t")[1] for line in text.splitlines() if line.startswith("note")] == [
        "a",
        "c",
        "m",
        "x",
    ]
    assert lock.parse_lock("l", text).notes == table


# --- Strict reading (issue 11): never silently misread -----------------------------------


def _damaged(text: str) -> str:
    with pytest.raises(NeurodeckError) as caught:
        lock.parse_lock("cards/neurodeck.lock", text)
    (problem,) = caught.value.problems
    return str(problem)


def test_an_extra_or_missing_column_is_a_located_error():
    text = lock.format_lock(OLD)
    extra = text.replace("\tX::Y\n", "\tX::Y\tsurprise\n")
    assert "cards/neurodeck.lock:8: error" in _damaged(extra)
    assert "has 7 tab-separated columns, this one has 8" in _damaged(extra)
    missing = text.replace("\t0,1\tX::Y\n", "\t0,1\n")
    assert "this one has 6" in _damaged(missing)
    assert "this one has 5" in _damaged(
        text.replace("notetype\tbasic\tt1\t50", "notetype\tbasic\tt1\t50\tx")
    )


@pytest.mark.parametrize(
    "bad", ["-1", "1e20", str(2**63), str(lock.MAX_TIME + 1), "\uff11\uff10\uff10", "+5"]
)
def test_a_time_that_is_not_a_sane_epoch_second_is_a_located_error(bad):
    text = lock.format_lock(OLD).replace("\t100\tcloze", f"\t{bad}\tcloze")
    assert "cards/neurodeck.lock:8: error: cannot read the lock file: time" in _damaged(text)


def test_a_newer_format_asks_for_a_newer_neurodeck():
    text = lock.format_lock(OLD).replace("lock\t3\ttest", "lock\t4\ttest")
    message = _damaged(text)
    assert "written by a newer neurodeck" in message
    assert "upgrade neurodeck" in message


def test_the_lock_line_is_required_once_and_first():
    text = lock.format_lock(OLD)
    assert "names no deck id" in _damaged(text.replace("lock\t3\ttest", "lock\t3\t"))
    assert "must come once" in _damaged(text + "lock\t3\ttest\n")
    assert "not a version number" in _damaged(text.replace("lock\t3\t", "lock\ttwo\t"))


def test_a_version_1_lock_is_still_read_and_rewritten_in_the_new_format():
    v1 = "".join(
        line
        for line in lock.format_lock(OLD).splitlines(keepends=True)
        if not line.startswith("lock\t")
    )
    old = lock.parse_lock("cards/neurodeck.lock", v1)
    assert (old.format, old.deck_id, old.notes) == (1, None, OLD.notes)
    updater = lock.LockUpdater(old, clock=200, deck_name="Test Deck", deck_id="test")
    updater.notetype("basic", "t1")
    updater.note("a", "00000000000000a1", "basic", "", "0")
    updater.note("b", "00000000000000a2", "cloze", "X::Y", "0,1")
    assert updater.changes() == []  # --frozen still builds an old release from its lock
    assert updater.migration() == "lock format 1 rewritten as format 3"
    assert updater.lock() == OLD


def test_no_message_advises_deleting_the_lock():
    # Every line of the code and docs that mentions the lock (or starting afresh) and
    # deleting or removing something must be a warning against it.
    import pathlib
    import re

    root = pathlib.Path(__file__).parent.parent
    files = [
        *(root / "src").rglob("*.py"),
        *root.glob("*.md"),
        *(root / "docs").glob("*.md"),
        root / "cards" / "README.md",
    ]
    advice = re.compile(r"\b(delete|remove|rm)\b", re.IGNORECASE)
    offending = [
        f"{path.name}: {line.strip()}"
        for path in files
        for line in path.read_text(encoding="utf-8").splitlines()
        if advice.search(line)
        and re.search(r"lock|afresh", line, re.IGNORECASE)
        and not re.search(r"\bnever\b", line, re.IGNORECASE)
    ]
    assert offending == []


# --- The table as a build fills it (issue 16: compact, repeats found at the end) -----------


def test_a_repeated_id_keeps_its_first_entry_and_is_named_with_both_places():
    old = lock.Lock({"b": lock.Entry("00000000000000b0", 50, "basic", "B", "0")}, {})
    updater = lock.LockUpdater(old, 100, "Deck")
    for note_id, content, old_mod, where in [
        ("m", "a1", None, 1),
        ("b", "b1", 50, 2),
        ("m", "a2", None, 3),
        ("a", "c3", None, 4),
        ("m", "ff", None, 5),
    ]:
        updater.note_seen(note_id, f"{content:0>16}", 100, "basic", "S", "0", old_mod, where)
    assert updater.finish() == [("m", 1, 3), ("m", 1, 5)]
    table = updater.lock().notes
    assert list(table) == ["a", "b", "m"]
    assert table["m"].hash == f"{'a1':0>16}"  # the first one
    assert (updater.added, updater.changed) == (2, 1)  # repeats are not counted
    assert updater.removed() == []


def test_occlusion_numbers_of_a_repeated_id_are_the_first_notes():
    updater = lock.LockUpdater(lock.EMPTY, 100, "Deck")
    updater.occlusion_numbers("fig", [("amygdala", 1)])
    updater.occlusion_numbers("fig", [("insula", 1)])
    assert updater.lock().occlusions == {"fig": {"amygdala": 1}}


def test_lookups_find_every_id_and_nothing_else():
    ids = [f"note-{n}" for n in range(3000)] + ["é-accent", "z"]
    table = lock.NoteTable()
    for n, note_id in enumerate(sorted(ids, reverse=True)):
        table.add(note_id, f"{n:016x}", n, "basic", "", "0")
    assert all(table.get(note_id) is not None for note_id in ids)
    assert sorted(ids) == list(table)
    assert not any(f"{note_id}x" in table for note_id in ids)
    assert table.get("note-") is None and "" not in table and 7 not in table


def test_removed_ids_are_those_of_the_old_lock_that_the_build_did_not_record():
    old = lock.Lock(
        {k: lock.Entry(f"{n:016x}", n, "basic", "", "0") for n, k in enumerate("abcd")}, {}
    )
    updater = lock.LockUpdater(old, 100, "Deck")
    for note_id in "db":
        updater.note(note_id, f"{9:016x}", "basic", "", "0")
    assert updater.removed() == ["a", "c"]
    assert updater.changes() == ["2 notes changed", "2 notes removed"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            # Any text a lock line can hold (no control or line-breaking characters).
            st.text(
                st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=6
            ),
            st.integers(0, 2**64 - 1),
        ),
        max_size=40,
    ),
    st.integers(1, 39),
)
def test_the_table_behaves_as_a_dict_of_first_entries(entries, batch):
    # Added one by one and by batches of `batch`, in any order, with repeats.
    expected: dict[str, lock.Entry] = {}
    one_by_one = lock.LockUpdater(lock.EMPTY, 0, "D", "d")
    batched = lock.LockUpdater(lock.EMPTY, 0, "D", "d")
    for where, (note_id, number) in enumerate(entries):
        expected.setdefault(note_id, lock.Entry(f"{number:016x}", where, "basic", "s", "0"))
        one_by_one.note_seen(note_id, f"{number:016x}", where, "basic", "s", "0", None, where)
    for start in range(0, len(entries), batch):
        part = entries[start : start + batch]
        batched.notes_seen(
            [note_id for note_id, _ in part],
            [f"{number:016x}" for _, number in part],
            range(start, start + len(part)),
            ["basic"] * len(part),
            ["s"] * len(part),
            ["0"] * len(part),
            [None] * len(part),
            range(start, start + len(part)),
        )
    firsts = {}
    repeats = []
    for where, (note_id, _) in enumerate(entries):
        if note_id in firsts:
            repeats.append((note_id, firsts[note_id], where))
        firsts.setdefault(note_id, where)
    for updater in (one_by_one, batched):
        assert updater.finish() == repeats
        table = updater.lock().notes
        assert list(table) == sorted(expected)
        assert dict(table.items()) == expected
        assert all(note_id + "\0" not in table for note_id in expected)
        assert updater.added == len(expected)
        assert lock.parse_lock("l", lock.format_lock(updater.lock())).notes == table


# --- Image digests (format 3) ----------------------------------------------------------------

WITH_MEDIA = lock.Lock(
    OLD.notes,
    OLD.notetypes,
    OLD.deck_name,
    deck_id="test",
    media={"brain.png": "00000000000000b1", "z b.svg": "00000000000000b2"},
)


def test_media_records_round_trip_sorted_by_name_after_the_note_types():
    text = lock.format_lock(WITH_MEDIA)
    assert lock.parse_lock("cards/neurodeck.lock", text) == WITH_MEDIA
    assert [line for line in text.splitlines() if not line.startswith("#")][:5] == [
        "lock\t3\ttest",
        "deck\tTest Deck",
        "notetype\tbasic\tt1\t50",
        "media\tbrain.png\t00000000000000b1",
        "media\tz b.svg\t00000000000000b2",
    ]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (  # a merge conflict kept both sides' record of one image
            lambda t: t.replace(
                "media\tz b.svg", "media\tbrain.png\t00000000000000c1\nmedia\tz b.svg"
            ),
            "cards/neurodeck.lock:8: error: cannot read the lock file: media file 'brain.png' "
            "is out of order or repeated",
        ),
        (
            lambda t: t.replace("00000000000000b2", "<<<<<<< HEAD"),
            "cards/neurodeck.lock:8: error: cannot read the lock file: media file 'z b.svg' has "
            "a damaged digest '<<<<<<< HEAD'",
        ),
        (
            lambda t: t.replace("media\tbrain.png\t", "media\tbrain.png\t\t"),
            "cards/neurodeck.lock:7: error: cannot read the lock file: a `media` line has 3 "
            "tab-separated columns, this one has 4",
        ),
        (
            lambda t: t.replace("lock\t3\ttest", "lock\t2\ttest"),
            "cards/neurodeck.lock:7: error: cannot read the lock file: a `media` record in a "
            "lock of format 2, which has none",
        ),
        (
            lambda t: "media\ta.png\t00000000000000b1\n" + t,
            "cards/neurodeck.lock:1: error: cannot read the lock file: a `media` record in a lock "
            "of format 1, which has none",
        ),
    ],
)
def test_a_damaged_media_record_is_one_located_error(edit, message):
    assert message in _damaged(edit(lock.format_lock(WITH_MEDIA)))


def test_a_changed_image_moves_only_the_time_of_notes_that_show_it():
    old = WITH_MEDIA
    assert not lock.image_changed(old, "brain.png", "00000000000000b1")
    assert lock.image_changed(old, "brain.png", "00000000000000ff")
    assert not lock.image_changed(old, "new.png", "00000000000000ff")  # no record: no change
    entry = old.notes["a"]
    assert lock.modified_time(entry, entry.hash, 200, images_changed=False) == 100
    assert lock.modified_time(entry, entry.hash, 200, images_changed=True) == 200
    assert lock.modified_time(entry, entry.hash, 10, images_changed=True) == 101
    updater = lock.LockUpdater(old, clock=200, deck_name="Test Deck")
    updater.notetype("basic", "t1")
    updater.note("a", "00000000000000a1", "basic", "", "0")
    updater.note("b", "00000000000000a2", "cloze", "X::Y", "0,1")
    updater.media = {"brain.png": "00000000000000ff", "new.png": "00000000000000b3"}
    assert updater.changes() == [
        "images changed: brain.png",
        "images added: new.png",
        "images removed: z b.svg",
    ]


def test_a_lock_without_media_records_migrates_without_moving_a_time():
    v2 = lock.format_lock(OLD).replace("lock\t3\ttest", "lock\t2\ttest")
    old = lock.parse_lock("cards/neurodeck.lock", v2)
    assert (old.format, old.media) == (2, {})
    updater = lock.LockUpdater(old, clock=200, deck_name="Test Deck", deck_id="test")
    updater.notetype("basic", "t1")
    assert updater.note("a", "00000000000000a1", "basic", "", "0") == 100
    assert updater.note("b", "00000000000000a2", "cloze", "X::Y", "0,1") == 100
    updater.media = dict(WITH_MEDIA.media)
    assert updater.changes() == []  # --frozen still builds the old release from its lock
    assert updater.migration() == (
        "lock format 2 rewritten as format 3 (recorded each image's digest; no note's time moved)"
    )
    assert updater.lock() == WITH_MEDIA


@given(
    st.dictionaries(
        # Any name pipeline._Media accepts: no tab, no line break of any kind.
        st.text(min_size=1, max_size=8).filter(lambda n: "\t" not in n and n.splitlines() == [n]),
        st.integers(0, 2**64 - 1).map(lambda number: f"{number:016x}"),
        max_size=12,
    )
)
def test_any_media_record_neurodeck_writes_reads_back(media):
    written = lock.Lock(OLD.notes, OLD.notetypes, OLD.deck_name, deck_id="test", media=media)
    text = lock.format_lock(written)
    assert lock.parse_lock("cards/neurodeck.lock", text).media == media
    with_lines = lock.parse_lock_lines("cards/neurodeck.lock", text.splitlines(keepends=True))
    assert with_lines.media == media

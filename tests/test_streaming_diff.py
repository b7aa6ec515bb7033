"""diff and release-check stream the sides (diff_paths): the old side as a digest per GUID,
the new deck's notes compared as its pass compiles them. They must say exactly what comparing
two whole snapshots by GUID says (the straightforward reading below, kept as the oracle)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import DECK_YAML, MakeDeck
from hypothesis import given, settings
from hypothesis import strategies as st

from neurodeck import diff, pipeline
from neurodeck.cli import cli
from neurodeck.diff import changed_parts, diff_paths, diff_snapshots, digest, note_ref
from neurodeck.export import render_json
from neurodeck.release_check import check_release, format_verdict, judge, verdict_to_json
from neurodeck.snapshot import PackagedNote, Snapshot, compile_snapshot, read_side

parallel = pipeline._parallel

T1, T2 = 1_700_000_000, 1_700_100_000
LINKED_DECK = DECK_YAML + "source_link:\n  repository: https://github.com/owner/deck\n"

V1 = {
    "a.yaml": """\
        deck: Part A
        source: intimacy
        notes:
          - {id: a1, front: Question one?, back: Answer one}
          - {id: a2, front: Question two?, back: Answer two}
          - {id: a3, front: Question three?, back: Answer three}
          - {id: a4, type: cloze, text: 'The {{c1::amygdala}} and the {{c2::insula}}.'}
          - {id: a5, front: Question five?, back: Answer five}
          - {id: a6, front: Question six?, back: Answer six}
          - {id: a7, front: Question seven?, back: Answer seven, tags: [kept]}
        """,
    "b.yaml": """\
        deck: Part B
        source: intimacy
        notes:
          - {id: b1, front: Question b?, back: Answer b}
        """,
}
# One release later: a1 edited, a2 moved to Part B, a3 retyped, a4's clozes renumbered, a5
# removed, a6 retired, a7 untouched (its line moved, so its origin link did), a8 added.
V2 = {
    "a.yaml": """\
        deck: Part A
        source: intimacy
        notes:
          - {id: a8, front: Question eight?, back: Answer eight}
          - {id: a1, front: Question one?, back: Answer one (edited)}
          - {id: a3, type: reversed, front: Question three?, back: Answer three}
          - {id: a4, type: cloze, text: 'The {{c2::amygdala}} and the {{c1::insula}}.'}
          - {id: a6, front: Question six?, back: Answer six, retired: true}
          - {id: a7, front: Question seven?, back: Answer seven, tags: [kept]}
        """,
    "b.yaml": """\
        deck: Part B
        source: intimacy
        notes:
          - {id: b1, front: Question b?, back: Answer b}
          - {id: a2, front: Question two?, back: Answer two}
        """,
}


def reference_diff(old: Snapshot, new: Snapshot) -> dict[str, object]:
    """The whole-snapshot diff, as neurodeck computed it before it streamed."""
    ids = {n.guid: n.note_id for side in (old, new) for n in side.notes if n.note_id}
    added, changed = [], []
    for note in new.notes:
        before = old.by_guid.get(note.guid)
        if before is None:
            added.append(note_ref(new, note, ids))
        elif parts := changed_parts(old, before, new, note):
            changed.append((note_ref(new, note, ids), parts, before, note))
    removed = [note_ref(old, n, ids) for n in old.notes if n.guid not in new.by_guid]
    changed_guids = {c[3].guid for c in changed}
    touched = [
        n
        for n in new.notes
        if n.guid in old.by_guid and n.guid not in changed_guids and n.mod > old.by_guid[n.guid].mod
    ]
    return {
        "added": added,
        "changed": changed,
        "removed": removed,
        "touched": touched,
        "counts": (len(old.notes), len(new.notes)),
    }


def streamed(diff: object) -> dict[str, object]:
    return {
        "added": list(diff.added),  # type: ignore[attr-defined]
        "changed": [(c.ref, c.parts, c.old, c.new) for c in diff.changed],  # type: ignore[attr-defined]
        "removed": list(diff.removed),  # type: ignore[attr-defined]
        "touched": list(diff.touched),  # type: ignore[attr-defined]
        "counts": (diff.old_count, diff.new_count),  # type: ignore[attr-defined]
    }


@pytest.fixture
def releases(make_deck: MakeDeck, runner: CliRunner, tmp_path: Path) -> dict[str, Path]:
    """Both releases as deck directories and as packages; v2 built with the v1 lock."""
    v1 = make_deck({"deck.yaml": LINKED_DECK, **V1}, name="v1")
    out1 = tmp_path / "v1.apkg"
    assert runner.invoke(cli, ["build", str(v1), "-o", str(out1)]).exit_code == 0
    v2 = make_deck({"deck.yaml": LINKED_DECK, **V2}, name="v2")
    (v2 / "neurodeck.lock").write_bytes((v1 / "neurodeck.lock").read_bytes())
    out2 = tmp_path / "v2.apkg"
    result = runner.invoke(
        cli, ["build", str(v2), "-o", str(out2)], env={"SOURCE_DATE_EPOCH": str(T2)}
    )
    assert result.exit_code == 0, result.output
    # A third side: v2 without a lock, so that every unchanged note's time moves forward.
    fresh = make_deck({"deck.yaml": LINKED_DECK, **V2}, name="fresh")
    return {"v1": v1, "v1.apkg": out1, "v2": v2, "v2.apkg": out2, "fresh": fresh}


SIDES = [
    ("v1.apkg", "v2"),
    ("v1", "v2"),
    ("v1.apkg", "v2.apkg"),
    ("v1", "v2.apkg"),
    ("v2", "v1.apkg"),
    ("v1.apkg", "fresh"),
    ("v2.apkg", "v2"),
]


@pytest.mark.parametrize(("old", "new"), SIDES)
def test_the_streamed_diff_equals_the_whole_snapshot_diff(
    releases: dict[str, Path], old: str, new: str
) -> None:
    old_path, new_path = releases[old], releases[new]
    expected = reference_diff(read_side(old_path, clock=T2), read_side(new_path, clock=T2))
    assert streamed(diff_paths(old_path, new_path, clock=T2)) == expected


@pytest.mark.parametrize("old", ["v1", "v1.apkg"])
def test_notes_compared_in_worker_processes_give_the_same_diff(
    monkeypatch: pytest.MonkeyPatch, releases: dict[str, Path], old: str
) -> None:
    """The new deck's notes are compared in the workers that compile them (each file in
    its own worker); the main process only records what they found."""
    if pipeline.usable_cpus() < 2:
        pytest.skip("one CPU: the pass never forks workers here")
    expected = reference_diff(
        read_side(releases[old], clock=T2), read_side(releases["v2"], clock=T2)
    )
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 0)
    forks = []
    monkeypatch.setattr(pipeline, "_parallel", lambda *a: forks.append(1) or parallel(*a))
    assert streamed(diff_paths(releases[old], releases["v2"], clock=T2)) == expected
    assert forks


@pytest.mark.parametrize("new", ["v2", "v2.apkg"])
def test_a_package_digested_by_two_processes_gives_the_same_diff(
    monkeypatch: pytest.MonkeyPatch, releases: dict[str, Path], new: str
) -> None:
    """A large package is digested by two forked processes, a half each (forced here for a
    small one), while this one reads the new deck's lock: the diff is the same, and this
    process digested nothing."""
    if pipeline.usable_cpus() < 2:
        pytest.skip("one CPU: the package is read by one process")
    old_path, new_path = releases["v1.apkg"], releases[new]
    expected = reference_diff(read_side(old_path, clock=T2), read_side(new_path, clock=T2))
    monkeypatch.setattr(diff, "SPLIT_MIN_NOTES", 2)
    here: list[range | None] = []
    add_rows = diff._add_rows
    monkeypatch.setattr(
        diff, "_add_rows", lambda r, i, rows: here.append(rows) or add_rows(r, i, rows)
    )
    forked: list[range] = []
    in_child = diff._digest_in_child
    monkeypatch.setattr(
        diff, "_digest_in_child", lambda r, rows: forked.append(rows) or in_child(r, rows)
    )
    assert streamed(diff_paths(old_path, new_path, clock=T2)) == expected
    count = len(read_side(old_path, clock=T2).notes)
    assert here == []
    assert forked == [range(count // 2), range(count // 2, count)]


@pytest.mark.parametrize("split", [False, True])
def test_an_unreadable_lock_read_while_the_package_is_digested_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch,
    releases: dict[str, Path],
    runner: CliRunner,
    tmp_path: Path,
    split: bool,
) -> None:
    """The new deck's lock is read while the old package is digested; a lock that cannot
    be read is still the error, reported as the pass would report it."""
    deck = tmp_path / "deck"
    shutil.copytree(releases["v2"], deck)
    (deck / "neurodeck.lock").unlink(missing_ok=True)
    (deck / "neurodeck.lock").mkdir()  # open() fails: "Is a directory"
    if split:
        monkeypatch.setattr(diff, "SPLIT_MIN_NOTES", 2)
    for command in ("diff", "release-check"):
        result = runner.invoke(cli, [command, str(releases["v1.apkg"]), str(deck)])
        assert result.exit_code == 1, result.output
        assert "neurodeck.lock: error: cannot read the lock file" in result.output
        assert "Traceback" not in result.output


@pytest.mark.parametrize("damaged", ["first", "last"])
def test_a_damaged_note_is_reported_alike_by_one_or_two_processes(
    monkeypatch: pytest.MonkeyPatch,
    releases: dict[str, Path],
    runner: CliRunner,
    tmp_path: Path,
    damaged: str,
) -> None:
    """Whichever half holds it, a note of an unknown note type is the one clear line that
    reading the package in one process gives."""
    package = tmp_path / "damaged.apkg"
    with zipfile.ZipFile(releases["v1.apkg"]) as archive:
        db = tmp_path / "collection.anki2"
        db.write_bytes(archive.read("collection.anki2"))
    conn = sqlite3.connect(db)
    which = "min" if damaged == "first" else "max"
    conn.execute(f"update notes set mid = 7 where id = (select {which}(id) from notes)")
    conn.commit()
    conn.close()
    with zipfile.ZipFile(package, "w") as archive:
        archive.write(db, "collection.anki2")
        archive.writestr("media", "{}")
    args = ["diff", str(package), str(releases["v2"])]
    alone = runner.invoke(cli, args)
    monkeypatch.setattr(diff, "SPLIT_MIN_NOTES", 2)
    split = runner.invoke(cli, args)
    assert "unknown note type 7" in alone.output
    assert (split.exit_code, split.output) == (alone.exit_code, alone.output)
    assert split.exception is None or isinstance(split.exception, SystemExit)
    # With the new deck's lock unreadable too, the package's problem still comes first.
    deck = tmp_path / "deck"
    shutil.copytree(releases["v2"], deck)
    (deck / "neurodeck.lock").unlink(missing_ok=True)
    (deck / "neurodeck.lock").mkdir()
    both = runner.invoke(cli, ["diff", str(package), str(deck)])
    assert (both.exit_code, both.output) == (alone.exit_code, alone.output)


@pytest.mark.parametrize("split", [False, True])
def test_a_guid_that_notes_in_both_halves_share_is_pooled_as_anki_pools_it(
    monkeypatch: pytest.MonkeyPatch,
    make_deck: MakeDeck,
    releases: dict[str, Path],
    tmp_path: Path,
    split: bool,
) -> None:
    """A package whose first and last notes share a GUID (a sloppy or crafted one), and
    whose new-card queue runs against its rows: read by one process or by two, a half
    each, the diff is what comparing whole snapshots says (removed notes in queue order)."""
    package = tmp_path / "shared-guid.apkg"
    with zipfile.ZipFile(releases["v1.apkg"]) as archive:
        db = tmp_path / "collection.anki2"
        db.write_bytes(archive.read("collection.anki2"))
    conn = sqlite3.connect(db)
    conn.execute(
        "update notes set guid = (select guid from notes order by id limit 1) "
        "where id = (select max(id) from notes)"
    )
    conn.execute("update cards set due = -due")
    conn.commit()
    conn.close()
    with zipfile.ZipFile(package, "w") as archive:
        archive.write(db, "collection.anki2")
        archive.writestr("media", "{}")
    if split:
        monkeypatch.setattr(diff, "SPLIT_MIN_NOTES", 2)
    only_b = make_deck({"deck.yaml": LINKED_DECK, "b.yaml": V1["b.yaml"]}, name="only-b")
    for new in (releases["v2"], releases["v2.apkg"], only_b):
        expected = reference_diff(read_side(package, clock=T2), read_side(new, clock=T2))
        assert streamed(diff_paths(package, new, clock=T2)) == expected
    assert len(expected["removed"]) > 2  # type: ignore[arg-type]


def test_the_test_decks_hold_every_kind_of_change(releases: dict[str, Path]) -> None:
    """The comparison above covers added, removed, edited, moved, retyped, renumbered,
    retired and touched notes, and notes unchanged but for their origin link."""
    diff = diff_paths(releases["v1.apkg"], releases["v2"], clock=T2)
    assert [r.note_id for r in diff.added] == ["a8"]
    assert [r.guid for r in diff.removed] == [n.guid for n in diff.removed_notes]
    assert len(diff.removed) == 1
    assert {c.ref.note_id: c.parts for c in diff.changed} == {
        "a1": ("back",),
        "a3": ("type",),
        "a4": ("text",),
        "a6": ("tags",),
        "a2": ("tags", "deck"),  # its subdeck is also a tag
    }
    a7 = next(n for n in read_side(releases["v2"], clock=T2).notes if n.note_id == "a7")
    old_a7 = next(n for n in read_side(releases["v1"], clock=T2).notes if n.note_id == "a7")
    assert a7.fields != old_a7.fields  # the link names another line; not a change
    fresh = diff_paths(releases["v1.apkg"], releases["fresh"], clock=T2)
    assert [n.note_id for n in fresh.touched] == ["a7", "b1"]


@pytest.mark.parametrize(("old", "new"), SIDES)
def test_release_check_on_streamed_sides_says_what_whole_snapshots_say(
    releases: dict[str, Path], old: str, new: str
) -> None:
    old_path, new_path = releases[old], releases[new]
    whole = check_release(read_side(old_path, clock=T2), read_side(new_path, clock=T2))
    streamed_verdict = judge(diff_paths(old_path, new_path, clock=T2))
    assert format_verdict(streamed_verdict) == format_verdict(whole)
    assert verdict_to_json(streamed_verdict) == verdict_to_json(whole)


_TEXT = st.sampled_from(["", "x", "y", 'see <a class="nd-origin" href="u">a.yaml:3</a>'])


@pytest.fixture(scope="module")
def side(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    """A side with the basic and reversed note types."""
    deck = tmp_path_factory.mktemp("props") / "deck"
    deck.mkdir()
    (deck / "deck.yaml").write_text(DECK_YAML)
    (deck / "a.yaml").write_text(
        "deck: D\nsource: intimacy\nnotes:\n"
        "  - {id: a, front: Q?, back: A}\n  - {id: b, type: reversed, front: Q2?, back: A2}\n"
    )
    return compile_snapshot(deck, clock=T1)


@settings(max_examples=300, deadline=None)
@given(
    old_fields=st.lists(_TEXT, min_size=5, max_size=5),
    new_fields=st.lists(_TEXT, min_size=5, max_size=5),
    old_tags=st.lists(st.sampled_from(["a", "b", "a b"]), max_size=3),
    new_tags=st.lists(st.sampled_from(["a", "b", "a b"]), max_size=3),
    old_deck=st.sampled_from(["D", "D::S", "D::T"]),
    new_deck=st.sampled_from(["D", "D::S", "E::S"]),
    retype=st.booleans(),
)
def test_two_notes_have_the_same_digest_exactly_when_no_part_changed(
    side: Snapshot,
    old_fields: list[str],
    new_fields: list[str],
    old_tags: list[str],
    new_tags: list[str],
    old_deck: str,
    new_deck: str,
    retype: bool,
) -> None:
    by_key = {nt.key: nt for nt in side.notetypes.values()}
    basic, reversed_ = by_key["basic"], by_key["reversed"]
    width = len(basic.fields)
    before = PackagedNote(
        "g", basic.id, tuple(old_fields[:width]), tuple(old_tags), 1, old_deck, (0,)
    )
    after = dataclasses.replace(
        before,
        notetype_id=(reversed_ if retype else basic).id,
        fields=tuple(new_fields[: len((reversed_ if retype else basic).fields)]),
        tags=tuple(new_tags),
        deck=new_deck,
    )
    same = digest(side.notetypes, before) == digest(side.notetypes, after)
    assert same == (not changed_parts(side, before, side, after))


def _index(notes: list[tuple[str, int]], rows: range) -> diff.NoteIndex:
    index = diff.NoteIndex(lambda wanted: {})
    for row in rows:
        guid, mod = notes[row]
        index.add(row, len(notes) - row, guid, mod, bytes(16))
    index.freeze()
    return index


@settings(max_examples=300, deadline=None)
@given(
    notes=st.lists(
        st.tuples(st.sampled_from("abcdefgh"), st.integers(-(2**64), 2**64)), max_size=40
    ),
    cut=st.floats(0, 1),
    asked=st.lists(st.sampled_from("abcdefghij"), max_size=12),
    collide=st.booleans(),
)
def test_an_index_in_two_sorted_segments_answers_as_one_does(
    notes: list[tuple[str, int]],
    cut: float,
    asked: list[str],
    collide: bool,
) -> None:
    """A large package's halves are sorted by the processes that digest them and put end to
    end: lookups, marks and the unmatched rows are those of one index sorted whole, with
    GUIDs in both halves and (forced) keys whose first 8 bytes are the same."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        if collide:  # every key starts alike: the search must fall back on whole keys
            key = diff._key
            monkeypatch.setattr(diff, "_key", lambda guid: bytes(8) + key(guid)[8:])
        _compare_segmented(notes, int(len(notes) * cut), asked)


def _compare_segmented(notes: list[tuple[str, int]], half: int, asked: list[str]) -> None:
    whole = _index(notes, range(len(notes)))
    split = _index(notes, range(half))
    split.append(_index(notes, range(half, len(notes))).frozen())
    for guid in asked:
        found, found_split = whole.find(guid), split.find(guid)
        assert (found < 0) == (found_split < 0)
        if found >= 0:
            assert whole.row(found) == split.row(found_split)
            assert whole.mod(found) == split.mod(found_split)
            whole.mark(found)
            split.mark(found_split)
    assert split.unmatched() == whole.unmatched()
    assert split.count == whole.count == len(notes)


def test_the_streamed_json_export_equals_the_whole_snapshot_rendering(
    releases: dict[str, Path], runner: CliRunner, tmp_path: Path
) -> None:
    for name in ("v1", "v2"):
        out = tmp_path / f"{name}.json"
        result = runner.invoke(
            cli, ["export", str(releases[name]), "--format", "json", "-o", str(out)]
        )
        assert result.exit_code == 0, result.output
        snapshot = compile_snapshot(releases[name], clock=1_700_000_000)
        assert out.read_text(encoding="utf-8") == render_json(snapshot, snapshot.notes)
        cards = sum(len(n.ordinals) for n in snapshot.notes)
        assert result.stdout == f"Wrote {out}: {len(snapshot.notes)} notes, {cards} cards\n"
        json.loads(out.read_text(encoding="utf-8"))


def test_json_made_in_worker_processes_equals_the_whole_snapshot_rendering(
    monkeypatch: pytest.MonkeyPatch, runner: CliRunner, tmp_path: Path
) -> None:
    """Each note's JSON is made in the worker that compiled it: the shipped deck, images and
    diagrams included, read in parallel, gives render_json's text."""
    if pipeline.usable_cpus() < 2:
        pytest.skip("one CPU: the pass never forks workers here")
    cards = Path(__file__).resolve().parent.parent / "cards"
    snapshot = compile_snapshot(cards, clock=1_700_000_000)
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 0)
    forks = []
    monkeypatch.setattr(pipeline, "_parallel", lambda *a: forks.append(1) or parallel(*a))
    out = tmp_path / "deck.json"
    result = runner.invoke(cli, ["export", str(cards), "--format", "json", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert forks  # the workers made the JSON
    assert out.read_text(encoding="utf-8") == render_json(snapshot, snapshot.notes)


def test_an_empty_deck_exports_the_same_json_as_before(
    make_deck: MakeDeck, runner: CliRunner, tmp_path: Path
) -> None:
    deck = make_deck({})
    out = tmp_path / "empty.json"
    assert (
        runner.invoke(cli, ["export", str(deck), "--format", "json", "-o", str(out)]).exit_code == 0
    )
    snapshot = compile_snapshot(deck, clock=0)
    assert out.read_text(encoding="utf-8") == render_json(snapshot, ())
    assert json.loads(out.read_text())["deck"]["name"] == ""


def test_diff_snapshots_still_compares_whole_snapshots(releases: dict[str, Path]) -> None:
    old, new = read_side(releases["v1.apkg"], clock=T2), read_side(releases["v2"], clock=T2)
    assert streamed(diff_snapshots(old, new)) == reference_diff(old, new)

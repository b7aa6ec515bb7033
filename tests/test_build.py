"""What `pipeline.build` puts in the package: notes, cards, decks, tags, ids and times."""

from __future__ import annotations

import zipfile
from pathlib import Path

from apkg_contents import read_apkg
from conftest import PEPTIDES_YAML

from neurodeck import fastread, ids, pipeline
from neurodeck.lock import LOCK_FILE

T0 = 1_700_000_000


def build(deck_dir: Path, out: Path, clock: int = T0) -> pipeline.Built:
    return pipeline.build(deck_dir, out, clock=clock)


def test_cards_per_note_type(sample_deck, tmp_path):
    """Basic gives one card, reversed two, cloze one per deletion number."""
    built = build(sample_deck, tmp_path / "out.apkg")
    contents = read_apkg(built.path)
    per_note = {}
    for card in contents.cards:
        per_note.setdefault(contents.notes[card.guid].notetype, []).append(card.ord)
    assert per_note == {
        "Test Deck: Basic": [0],
        "Test Deck: Basic (and reversed card)": [0, 1],
        "Test Deck: Cloze": [0, 1],
    }
    assert (built.notes, built.cards, built.subdecks) == (3, 5, 1)


def test_notes_land_in_subdecks_with_topic_tags(sample_deck, tmp_path):
    contents = read_apkg(build(sample_deck, tmp_path / "out.apkg").path)
    assert {c.deck for c in contents.cards} == {"Test Deck::Neuropeptides"}
    assert set(contents.decks.values()) >= {"Test Deck", "Test Deck::Neuropeptides"}
    oxytocin = contents.notes[ids.note_guid("test", "oxytocin-touch")]
    assert oxytocin.tags == ("neuropeptides", "oxytocin", "test::Neuropeptides")


def test_nested_subdecks_get_parents_and_tags(make_deck, tmp_path):
    deck_dir = make_deck(
        {
            "a.yaml": """
        deck: Brain Regions::Reward System
        source: intimacy
        notes:
          - id: vta-reward
            front: Which midbrain area is a core reward centre?
            back: The ventral tegmental area
        """
        }
    )
    contents = read_apkg(build(deck_dir, tmp_path / "out.apkg").path)
    assert {"Test Deck::Brain Regions", "Test Deck::Brain Regions::Reward System"} <= set(
        contents.decks.values()
    )
    (note,) = contents.notes.values()
    assert note.tags == ("test::Brain_Regions::Reward_System",)


def test_fields_are_rendered_markdown_with_source_line(sample_deck, tmp_path):
    contents = read_apkg(build(sample_deck, tmp_path / "out.apkg").path)
    note = contents.notes[ids.note_guid("test", "oxytocin-touch")]
    front, back, extra, source, mine = note.fields
    assert (front, back) == (
        "Which neuropeptide is released during physical touch and intimacy?",
        "Oxytocin",
    )
    assert extra == "Often called the &quot;bonding hormone&quot;."
    assert source == (
        "<cite>Neurobiological Foundations of Intimacy</cite> · " "Neural Pathways of Intimacy"
    )
    assert mine == "", "My notes belongs to the learner and ships empty"


def test_markdown_and_raw_html(make_deck, tmp_path):
    deck_dir = make_deck(
        {
            "a.yaml": """
        source: intimacy
        notes:
          - id: md
            front: "What does *this* say about `code` and <b>bold</b>?"
            back: |
              - one
              - two
        """
        }
    )
    contents = read_apkg(build(deck_dir, tmp_path / "out.apkg").path)
    front, back, *_ = contents.notes[ids.note_guid("test", "md")].fields
    assert front == (
        "What does <em>this</em> say about <code>code</code> and " "&lt;b&gt;bold&lt;/b&gt;?"
    )
    assert back == "<ul>\n<li>one</li>\n<li>two</li>\n</ul>"


def test_new_cards_are_due_in_curriculum_order(make_deck, tmp_path):
    """Files in sorted path order, notes in file order: `due` follows the curriculum."""
    deck_dir = make_deck(
        {
            "02-second.yaml": "source: intimacy\nnotes:\n  - {id: c, front: C?, back: c}\n",
            "01-first.yaml": "source: intimacy\nnotes:\n  - {id: a, front: A?, back: a}\n"
            "  - {id: b, front: B?, back: b}\n",
        }
    )
    contents = read_apkg(build(deck_dir, tmp_path / "out.apkg").path)
    order = [next(k for k in "abc" if ids.note_guid("test", k) == c.guid) for c in contents.cards]
    assert order == ["a", "b", "c"]
    assert [c.due for c in contents.cards] == [1, 2, 3]


def test_two_builds_of_the_same_input_are_byte_identical(sample_deck, tmp_path):
    first = build(sample_deck, tmp_path / "one.apkg", clock=T0).path.read_bytes()
    # A later clock must not matter when nothing changed: times come from the lock.
    second = build(sample_deck, tmp_path / "two.apkg", clock=T0 + 999).path.read_bytes()
    assert first == second


def test_package_is_deflated_with_fixed_dates_and_sorted_entries(sample_deck, tmp_path):
    path = build(sample_deck, tmp_path / "out.apkg").path
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == ["collection.anki2", "media"]
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}
    assert {i.date_time for i in infos} == {(2023, 11, 14, 22, 13, 20)}  # T0, not the clock


def test_guid_is_stable_across_a_text_edit(make_deck, tmp_path):
    deck_dir = make_deck({"p.yaml": PEPTIDES_YAML})
    before = read_apkg(build(deck_dir, tmp_path / "one.apkg").path)
    (deck_dir / "p.yaml").write_text(PEPTIDES_YAML.replace("back: Oxytocin", "back: Oxytocin (OT)"))
    after = read_apkg(build(deck_dir, tmp_path / "two.apkg", clock=T0 + 60).path)
    assert set(before.notes) == set(after.notes)
    guid = ids.note_guid("test", "oxytocin-touch")
    assert after.notes[guid].fields[1] == "Oxytocin (OT)"


def test_edited_note_moves_forward_unchanged_notes_keep_their_time(make_deck, tmp_path):
    deck_dir = make_deck({"p.yaml": PEPTIDES_YAML})
    build(deck_dir, tmp_path / "one.apkg", clock=T0)
    (deck_dir / "p.yaml").write_text(PEPTIDES_YAML.replace("back: Oxytocin", "back: Oxytocin (OT)"))
    built = build(deck_dir, tmp_path / "two.apkg", clock=T0 + 60)
    mods = {n.guid: n.mod for n in read_apkg(built.path).notes.values()}
    assert mods[ids.note_guid("test", "oxytocin-touch")] == T0 + 60
    assert mods[ids.note_guid("test", "vasopressin-pair-bonding")] == T0
    assert built.lock_changes == ["1 note changed"]


def test_an_edit_moves_forward_even_when_the_clock_is_behind(make_deck, tmp_path):
    """Anki skips an update whose mod time is not newer, so a slow clock must not hide an edit."""
    deck_dir = make_deck({"p.yaml": PEPTIDES_YAML})
    build(deck_dir, tmp_path / "one.apkg", clock=T0)
    (deck_dir / "p.yaml").write_text(PEPTIDES_YAML.replace("back: Oxytocin", "back: OT"))
    built = build(deck_dir, tmp_path / "two.apkg", clock=T0 - 3600)
    assert read_apkg(built.path).notes[ids.note_guid("test", "oxytocin-touch")].mod == T0 + 1


def test_note_types_carry_stable_field_and_template_ids(sample_deck, tmp_path):
    contents = read_apkg(build(sample_deck, tmp_path / "out.apkg").path)
    basic = contents.notetypes[ids.notetype_id("test", "basic")]
    assert [f["name"] for f in basic["flds"]] == ["Front", "Back", "Extra", "Source", "My notes"]
    keys = ("front", "back", "extra", "source", "mine")
    assert [f["id"] for f in basic["flds"]] == [ids.field_id("basic", k) for k in keys]
    assert [t["id"] for t in basic["tmpls"]] == [ids.template_id("basic", "forward")]
    assert basic["mod"] == T0


def test_lock_file_is_written_beside_the_cards(sample_deck, tmp_path):
    build(sample_deck, tmp_path / "out.apkg")
    lines = (sample_deck / LOCK_FILE).read_text().splitlines()
    assert lines[0].startswith("# neurodeck lock:")
    assert "lock\t3\ttest" in lines
    note_lines = [line.split("\t") for line in lines if line.startswith("note\t")]
    assert [(f[1], f[3], f[4], f[5], f[6]) for f in note_lines] == [
        ("mirror-neurons-fire", str(T0), "cloze", "0,1", "Neuropeptides"),
        ("oxytocin-touch", str(T0), "basic", "0", "Neuropeptides"),
        ("vasopressin-pair-bonding", str(T0), "reversed", "0,1", "Neuropeptides"),
    ]
    assert "deck\tTest Deck" in lines


def test_deck_description_shows_version(sample_deck, tmp_path):
    path = build(sample_deck, tmp_path / "out.apkg").path
    import json
    import sqlite3
    import tempfile

    with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "c.anki2"
        db.write_bytes(archive.read("collection.anki2"))
        conn = sqlite3.connect(db)
        decks = json.loads(conn.execute("SELECT decks FROM col").fetchone()[0])
        conn.close()
    root = decks[str(ids.deck_id("test", ""))]
    assert root["desc"] == (
        "<div>A <em>small</em> deck for tests.</div>" "<p><small>Version 1.0.0</small></p>"
    )


def test_image_inside_deck_is_packaged(make_deck, tmp_path):
    deck_dir = make_deck(
        {
            "a.yaml": "source: intimacy\nnotes:\n  - {id: fig, front: '![Brain](img/brain.png)', "
            "back: The brain}\n",
            "img/brain.png": b"\x89PNG fake",
        }
    )
    path = build(deck_dir, tmp_path / "out.apkg").path
    contents = read_apkg(path)
    assert contents.entries == ("0", "collection.anki2", "media")
    assert contents.notes[ids.note_guid("test", "fig")].fields[0] == (
        '<img src="brain.png" alt="Brain" />'
    )
    with zipfile.ZipFile(path) as archive:
        assert archive.read("media") == b'{"0": "brain.png"}'
        assert archive.read("0") == b"\x89PNG fake"


def test_parallel_and_sequential_builds_are_byte_identical(make_deck, tmp_path, monkeypatch):
    """Large decks are parsed in worker processes; the package must not depend on that."""
    files = {
        f"{i:02}.yaml": "source: intimacy\nnotes:\n"
        + "".join(
            f"  - {{id: n{i}-{j}, front: Question {i} {j}?, back: Answer {j}}}\n" for j in range(20)
        )
        for i in range(4)
    }
    deck_dir = make_deck(files)
    sequential = build(deck_dir, tmp_path / "seq.apkg").path.read_bytes()
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 0)
    calls = []
    real_parallel = pipeline._parallel
    monkeypatch.setattr(pipeline, "_parallel", lambda *a: calls.append(1) or real_parallel(*a))
    parallel = build(deck_dir, tmp_path / "par.apkg").path.read_bytes()
    assert calls, "the parallel path was not taken"
    assert parallel == sequential
    assert len(read_apkg(tmp_path / "par.apkg").notes) == 80


def test_every_way_of_reading_a_fact_set_builds_the_same_package(make_deck, tmp_path, monkeypatch):
    """The line reader and the general path must make the same package."""
    deck_dir = make_deck(
        {
            "a.yaml": 'deck: "Part A"\ntags: ["t1", t2]\nsource: intimacy\nnotes:\n'
            + "".join(
                f'  - id: "a{j}"\n    front: "Question *{j}*?"\n    back: Answer {j}\n'
                f'    tags: ["x::y"]\n'
                for j in range(5)
            ),
            "b.yaml": PEPTIDES_YAML,  # block style
            "c.yaml": "source: intimacy\nnotes:\n- id: c1\n  type: cloze\n  text: 'A {{c1::b}}'\n",
        }
    )
    taken = []
    real_read = fastread.read_fact_set

    def read(path, text):
        fact_set = real_read(path, text)
        taken.append(fact_set is not None)
        return fact_set

    monkeypatch.setattr(fastread, "read_fact_set", read)
    packages = [build(deck_dir, tmp_path / "lines.apkg").path.read_bytes()]
    assert taken and all(taken)
    monkeypatch.setattr(fastread, "read_fact_set", lambda *args, **kwargs: None)
    packages.append(build(deck_dir, tmp_path / "general.apkg").path.read_bytes())
    assert packages == [packages[0]] * 2
    assert len(read_apkg(tmp_path / "general.apkg").notes) == 5 + 3 + 1


def test_a_retired_note_ships_once_more_with_the_retired_tag(make_deck, tmp_path):
    deck_dir = make_deck(
        {
            "p.yaml": PEPTIDES_YAML.replace(
                "    section: Mirror Neurons\n", "    section: Mirror Neurons\n    retired: true\n"
            )
        }
    )
    contents = read_apkg(build(deck_dir, tmp_path / "out.apkg").path)
    assert contents.notes[ids.note_guid("test", "mirror-neurons-fire")].tags == (
        "neuropeptides",
        "test::Neuropeptides",
        "retired",
    )

"""What a learner sees, checked in Anki itself (issue 12): study order, formulas, names.

Each test builds a deck, imports it with Anki's own importer and default options, and asserts
on what Anki's scheduler serves or what its renderer shows, never on neurodeck's own idea of it.
"""

from __future__ import annotations

from pathlib import Path

from anki_helpers import LearnerCollection, import_apkg
from conftest import PEPTIDES_YAML

from neurodeck.ids import note_guid
from neurodeck.notetypes import NoteType
from neurodeck.pipeline import build

T1 = 1_700_000_000
T2 = 2_000_000_000


def built(deck_dir: Path, out: Path, clock: int = T1) -> Path:
    return build(deck_dir, out, clock=clock).path


# --- Note types are named after the deck -------------------------------------------------------


def test_two_neurodeck_decks_share_one_collection(make_deck, tmp_path):
    """Both decks used note types named "neurodeck Basic": Anki renamed the second's "...+"."""
    first = make_deck({"peptides.yaml": PEPTIDES_YAML}, name="first")
    second = make_deck({"peptides.yaml": PEPTIDES_YAML}, name="second")
    (second / "deck.yaml").write_text(
        (second / "deck.yaml")
        .read_text()
        .replace("name: Test Deck\nid: test", "name: Other Deck\nid: other")
    )
    with LearnerCollection(tmp_path / "learner") as learner:
        log_first = learner.import_apkg(built(first, tmp_path / "first.apkg"))
        log_second = learner.import_apkg(built(second, tmp_path / "second.apkg"))
        view = learner.view()
    assert (
        log_first.counts()
        == log_second.counts()
        == {"new": 3, "updated": 0, "duplicate": 0, "conflicting": 0}
    )
    assert view.notetypes == (
        "Other Deck: Basic",
        "Other Deck: Basic (and reversed card)",
        "Other Deck: Cloze",
        "Test Deck: Basic",
        "Test Deck: Basic (and reversed card)",
        "Test Deck: Cloze",
    )
    assert not any("+" in name for name in view.notetypes)
    assert len(view.notes) == 6 and len(view.cards) == 10

    for deck_id, root in (("test", "Test Deck"), ("other", "Other Deck")):
        note = view.notes[note_guid(deck_id, "oxytocin-touch")]
        assert note.notetype == f"{root}: Basic"
        assert note.fields["Back"] == "Oxytocin"
        assert [c.deck for c in view.cards_of(note.guid)] == [f"{root}::Neuropeptides"]


def test_with_one_shared_note_type_name_anki_renamed_the_second_decks(
    make_deck, tmp_path, monkeypatch
):
    """What the README says happened before note types were named after the deck."""
    first = make_deck({"peptides.yaml": PEPTIDES_YAML}, name="first")
    second = make_deck({"peptides.yaml": PEPTIDES_YAML}, name="second")
    (second / "deck.yaml").write_text(
        (second / "deck.yaml")
        .read_text()
        .replace("name: Test Deck\nid: test", "name: Other Deck\nid: other")
    )
    monkeypatch.setattr(NoteType, "name_in", lambda self, deck_name: f"neurodeck {self.name}")
    with LearnerCollection(tmp_path / "learner") as learner:
        learner.import_apkg(built(first, tmp_path / "first.apkg"))
        learner.import_apkg(built(second, tmp_path / "second.apkg"))
        names = learner.view().notetypes
    assert "neurodeck Basic" in names and "neurodeck Basic+" in names


def test_renamed_note_types_reach_learners_without_touching_their_cards(
    make_deck, tmp_path, monkeypatch
):
    """Release 1 named note types "neurodeck Basic" etc.; only the name changed since.

    Anki matches note types by id: the learner's note types take the new names (the lock gave
    them a newer modification time), no note is duplicated or in conflict, and the review
    history stays.
    """
    deck_dir = make_deck({"peptides.yaml": PEPTIDES_YAML})
    with monkeypatch.context() as old_names:
        old_names.setattr(NoteType, "name_in", lambda self, deck_name: f"neurodeck {self.name}")
        release_1 = built(deck_dir, tmp_path / "r1.apkg", T1)
    release_2 = built(deck_dir, tmp_path / "r2.apkg", T2)
    with LearnerCollection(tmp_path / "learner") as learner:
        learner.import_apkg(release_1)
        assert learner.view().notetypes == (
            "neurodeck Basic",
            "neurodeck Basic (and reversed card)",
            "neurodeck Cloze",
        )
        learner.answer_all(ease=3)
        before = learner.view()
        log = learner.import_apkg(release_2)
        after = learner.view()
        reviews = learner.review_logs()
    assert log.counts() == {"new": 0, "updated": 0, "duplicate": 3, "conflicting": 0}
    assert after.notetypes == (
        "Test Deck: Basic",
        "Test Deck: Basic (and reversed card)",
        "Test Deck: Cloze",
    )
    assert {g: n.fields for g, n in after.notes.items()} == {
        g: n.fields for g, n in before.notes.items()
    }
    assert [(c.card_id, c.ivl, c.reps) for c in after.cards] == [
        (c.card_id, c.ivl, c.reps) for c in before.cards
    ]
    assert sorted(reviews) == sorted(c.card_id for c in before.cards)


def test_release_check_passes_a_note_type_rename(make_deck, tmp_path, monkeypatch, runner):
    """A rename alone is not a breaking change: Anki matches note types by id (test above)."""
    from neurodeck.cli import cli

    deck_dir = make_deck({"peptides.yaml": PEPTIDES_YAML})
    with monkeypatch.context() as old_names:
        old_names.setattr(NoteType, "name_in", lambda self, deck_name: f"neurodeck {self.name}")
        release_1 = built(deck_dir, tmp_path / "r1.apkg", T1)
    release_2 = built(deck_dir, tmp_path / "r2.apkg", T2)
    result = runner.invoke(cli, ["release-check", str(release_1), str(release_2)])
    assert result.exit_code == 0, result.output
    assert "note type" not in result.output


# --- What authors type reaches the card ----------------------------------------------------------

MATH_YAML = r"""
notes:
  - id: cohen-d
    front: Cohen's \(d = \frac{M_1 - M_2}{SD}\) is *standardised*. What is SD?
    back: \[SD_{pooled} = \sqrt{\frac{s_1^2 + s_2^2}{2}}\]
  - id: mean-in-formula
    type: cloze
    text: \(\bar{x} = {{c1::\frac{1}{n} \sum x_i}}\) and the {{c2::mean}} is \(\bar{x} < 5\)
"""


def test_mathjax_reaches_the_card_verbatim_and_cloze_works_inside_it(make_deck, tmp_path):
    """`\\(d = \\frac{M_1 - M_2}{SD}\\)` became `(d = \\frac{…})`: Markdown ate the backslashes."""
    deck_dir = make_deck({"deck.yaml": "name: Stats\nid: stats\n", "math.yaml": MATH_YAML})
    view = import_apkg(built(deck_dir, tmp_path / "math.apkg"), tmp_path / "learner")
    (basic,) = view.cards_of(note_guid("stats", "cohen-d"))
    assert basic.question == (
        r'<div class="nd-prompt">Cohen'
        r"'s \(d = \frac{M_1 - M_2}{SD}\) is <em>standardised</em>. What is SD?</div>"
    )
    assert r'<div class="nd-answer">\[SD_{pooled} = \sqrt{\frac{s_1^2 + s_2^2}{2}}\]</div>' in (
        basic.answer
    )
    first, second = view.cards_of(note_guid("stats", "mean-in-formula"))
    # Anki hides a deletion inside a formula within the formula, as it does for its own notes.
    assert first.question == (
        r'<div class="nd-prompt">\(\bar{x} = [...]\) and the <span class="cloze-inactive" '
        r'data-ordinal="2">mean</span> is \(\bar{x} &lt; 5\)</div>'
    )
    assert first.answer.startswith(
        r'<div class="nd-prompt">\(\bar{x} = \frac{1}{n} \sum x_i\) and the '
    )
    assert r"\(\bar{x} = \frac{1}{n} \sum x_i\)" in second.question
    assert '<span class="cloze" data-cloze="mean" data-ordinal="2">[...]</span>' in (
        second.question
    )


# --- Study order under Anki's default options ---------------------------------------------------


def queue(learner: LearnerCollection, root: str) -> list[tuple[str, int]]:
    """(subdeck or note field, card number) as Anki's scheduler serves the root deck's new
    cards, with the daily limit raised so that every card is in the queue."""
    col = learner.col
    for conf in col.decks.all_config():
        conf["new"]["perDay"] = 9999
        col.decks.update_config(conf)
    col.decks.select(col.decks.id_for_name(root))
    served = []
    for queued in col.sched.get_queued_cards(fetch_limit=1000).cards:
        card = col.get_card(queued.card.id)
        served.append((card.note()["Front"], card.ord))
    return served


def test_anki_sorts_subdecks_as_neurodeck_predicts(tmp_path):
    """Case-insensitive, Unicode case folding, code points, one `::` level at a time."""
    from neurodeck.order import anki_sort_key

    names = [
        "b",
        "B2",
        "a",
        "Ä",
        "z",
        "A B",
        "a::x",
        "10 x",
        "9 x",
        "é",
        "e",
        "_u",
        "-u",
        "É2",
        "ß",
        "Straße 2",
        "straße 1",
        "a::Y",
        "(x)",
        "Ω",
        "ω2",
    ]
    with LearnerCollection(tmp_path / "learner") as learner:
        col = learner.col
        basic = col.models.by_name("Basic")
        for name in names:
            note = col.new_note(basic)
            note["Front"], note["Back"] = name, "-"
            col.add_note(note, col.decks.id(f"Root::{name}"))
        served = [front for front, _ in queue(learner, "Root")]
    assert served == sorted(names, key=anki_sort_key)


def write_order_deck(make_deck):
    """Files in curriculum order whose subdecks Anki sorts otherwise."""

    def facts(subdeck: str, *ids: str, reversed_: bool = False) -> str:
        kind = "    type: reversed\n" if reversed_ else ""
        return f"deck: {subdeck}\nnotes:\n" + "".join(
            f"  - id: {i}\n{kind}    front: {i}\n    back: answer to {i}\n" for i in ids
        )

    return make_deck(
        {
            "deck.yaml": "name: Psych 101\nid: psych\n",
            "01-sensation.yaml": facts("Sensation", "s1", "s2", reversed_=True),
            "02-attention.yaml": facts("attention", "a1", "a2"),
            "03-memory.yaml": facts("Memory", "m1"),
            "04-memory-more.yaml": facts("Memory", "m2"),
        }
    )


def test_check_warns_when_anki_would_show_subdecks_out_of_curriculum_order(
    make_deck, runner, monkeypatch
):
    deck_dir = write_order_deck(make_deck)
    monkeypatch.chdir(deck_dir)
    from neurodeck.cli import cli

    result = runner.invoke(cli, ["check", "."])
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "01-sensation.yaml:1:7: warning: Anki shows new cards subdeck by subdeck in name order "
        "('attention', 'Memory', 'Sensation'), not in the order of the fact sets",
        "  hint: to show them in the order of the files, rename the subdecks: "
        "01-sensation.yaml: `deck: 1 Sensation`; 02-attention.yaml: `deck: 2 attention`; "
        "03-memory.yaml: `deck: 3 Memory`; 04-memory-more.yaml: `deck: 3 Memory`",
    ]


def test_study_order_in_anki_follows_the_files_once_the_hint_is_applied(make_deck, tmp_path):
    """README: new cards come in curriculum order, first cards before reverse cards.

    Under Anki's defaults (gather by deck, sort by card type then gather order) the root
    deck served its subdecks alphabetically; applying check's hint makes the order the files'.
    """
    deck_dir = write_order_deck(make_deck)
    with LearnerCollection(tmp_path / "before") as learner:
        learner.import_apkg(built(deck_dir, tmp_path / "before.apkg"))
        assert queue(learner, "Psych 101") == [
            ("a1", 0),
            ("a2", 0),
            ("m1", 0),
            ("m2", 0),
            ("s1", 0),
            ("s2", 0),
            ("s1", 1),
            ("s2", 1),
        ]
    from neurodeck.pipeline import check

    (deck_dir / "neurodeck.lock").unlink()  # never released: renaming subdecks is free
    (warning,) = check(deck_dir).warnings
    assert "released" not in warning.hint
    assert warning.hint is not None, warning
    for edit in warning.hint.split("subdecks: ", 1)[1].split("; "):
        path, new_line = edit.split(": ", 1)
        file = Path(path)
        text = file.read_text()
        file.write_text(new_line.strip("`") + "\n" + text.split("\n", 1)[1])
    assert check(deck_dir).warnings == []
    with LearnerCollection(tmp_path / "after") as learner:
        learner.import_apkg(built(deck_dir, tmp_path / "after.apkg"))
        assert queue(learner, "Psych 101") == [
            ("s1", 0),
            ("s2", 0),
            ("a1", 0),
            ("a2", 0),
            ("m1", 0),
            ("m2", 0),
            ("s1", 1),
            ("s2", 1),
        ]


# --- Exports ---------------------------------------------------------------------------------


def test_csv_export_imports_into_an_empty_collection(sample_deck, runner, tmp_path):
    """The CSV named neurodeck's note types by id: 0 new notes, all "missing notetype"."""
    from anki.collection import ImportCsvRequest

    from neurodeck.cli import cli

    csv = tmp_path / "deck.csv"
    result = runner.invoke(cli, ["export", str(sample_deck), "--format", "csv", "-o", str(csv)])
    assert result.exit_code == 0, result.output
    with LearnerCollection(tmp_path / "learner") as learner:
        col = learner.col
        metadata = col.get_csv_metadata(str(csv), None)
        log = col.import_csv(ImportCsvRequest(path=str(csv), metadata=metadata)).log
        assert (len(log.new), len(log.missing_notetype), len(log.conflicting)) == (3, 0, 0)
        cards = {}
        for cid in col.find_cards(""):
            card = col.get_card(cid)
            note = card.note()
            cards.setdefault(note.note_type()["name"], []).append(
                (col.decks.name(card.did), card.ord, card.question(), card.answer())
            )
        tags = sorted(t for nid in col.find_notes("") for t in col.get_note(nid).tags)
        again = col.import_csv(ImportCsvRequest(path=str(csv), metadata=metadata)).log
        assert (len(again.new), len(again.duplicate) + len(again.updated)) == (0, 3)
    assert sorted(cards) == ["Basic", "Basic (and reversed card)", "Cloze"]
    deck = "Test Deck::Neuropeptides"
    ((where, _, question, answer),) = cards["Basic"]
    assert where == deck
    assert "Which neuropeptide is released during physical touch and intimacy?" in question
    assert "Oxytocin" in answer and "bonding hormone" in answer
    assert "Neurobiological Foundations of Intimacy" in answer
    assert [
        (d, o) for d, o, *_ in sorted(cards["Basic (and reversed card)"], key=lambda c: c[1])
    ] == [(deck, 0), (deck, 1)]
    assert len(cards["Cloze"]) == 2
    assert any("[...]" in q and "observe it" in q for *_, q, _ in cards["Cloze"])
    assert "neuropeptides" in tags and "test::Neuropeptides" in tags


LITERAL_YAML = """
notes:
  - id: p-value
    front: Which result is significant at p < .05, with x_1 = 3 and M = 4.2 (SD = 1.1)?
    back: 3*4*5 = 60
  - id: count
    front: Which column holds it?
    back: |
      # of participants
"""


def test_literal_text_reaches_the_card_or_check_says_how(make_deck, tmp_path, monkeypatch, runner):
    """`3*4*5` showed as 3<em>4</em>5 and `# of` as a heading, without a word from check.

    `p < .05`, `x_1` and `M = 4.2 (SD = 1.1)` reach the card as typed; for the other two,
    check warns, and the edit its hint gives makes the card show what was typed.
    """
    import html as html_module

    from neurodeck.cli import cli

    deck_dir = make_deck({"deck.yaml": "name: Stats\nid: stats\n", "lit.yaml": LITERAL_YAML})
    monkeypatch.chdir(deck_dir)
    result = runner.invoke(cli, ["check", "."])
    assert result.stderr.splitlines() == [
        "lit.yaml:5:11: warning: `back` of note 'p-value': Markdown reads `*` between letters "
        "or digits as emphasis: 3*4*5 would lose its asterisks",
        '  hint: write 3\\*4\\*5 (a backslash before each * meant literally; inside "..." '
        "quotes write \\\\*)",
        "lit.yaml:8:11: warning: `back` of note 'count': a line starting with `#` is a "
        "Markdown heading: the `#` would not be shown",
        '  hint: write \\# instead of # at the start of the line to show it (inside "..." '
        "quotes write \\\\#)",
    ]
    fixed = LITERAL_YAML.replace("3*4*5", "3\\*4\\*5").replace("  # of", "  \\# of")
    (deck_dir / "lit.yaml").write_text(fixed, encoding="utf-8")
    result = runner.invoke(cli, ["check", "."])
    assert (result.exit_code, result.stderr) == (0, "")
    view = import_apkg(built(deck_dir, tmp_path / "lit.apkg"), tmp_path / "learner")

    def shown(card_html: str) -> str:
        return html_module.unescape(card_html)

    (p_value,) = view.cards_of(note_guid("stats", "p-value"))
    assert "Which result is significant at p < .05, with x_1 = 3 and M = 4.2 (SD = 1.1)?" in shown(
        p_value.question
    )
    assert '<div class="nd-answer">3*4*5 = 60</div>' in p_value.answer
    (count,) = view.cards_of(note_guid("stats", "count"))
    assert '<div class="nd-answer"># of participants</div>' in count.answer


def test_stars_and_hashes_in_code_or_a_formula_are_not_reported():
    """Markdown keeps them in a code span and MathJax keeps them in a formula: no warning,
    and a warning about the text around them names only the words outside."""
    from neurodeck.markup import literal_text_mistakes

    assert literal_text_mistakes("`3*4*5` and \\(a*b*c\\)") == []
    assert literal_text_mistakes("`\n# not a heading`") == []
    ((message, hint),) = literal_text_mistakes("`x*y*z` but 3*4*5")
    assert message.endswith(": 3*4*5 would lose its asterisks")
    assert hint.startswith("write 3\\*4\\*5 (")


def test_when_a_subdeck_is_split_the_hint_renames_files_into_anki_order(
    make_deck, tmp_path, runner, monkeypatch
):
    """A subdeck whose files are apart (as in the shipped 1.0.0) cannot be kept in file order
    by renaming subdecks; the hint renames the files, and Anki's order is then the files'."""
    from neurodeck.cli import cli
    from neurodeck.pipeline import check

    def facts(subdeck: str, note_id: str) -> str:
        return f"deck: {subdeck}\nnotes:\n  - id: {note_id}\n    front: {note_id}\n    back: b\n"

    deck_dir = make_deck(
        {
            "deck.yaml": "name: Psych 101\nid: psych\n",
            "01-methods.yaml": facts("Research Methods", "m1"),
            "02-attention.yaml": facts("Attention", "a1"),
            "03-more-methods.yaml": facts("Research Methods", "m2"),
        }
    )
    monkeypatch.chdir(deck_dir)
    (warning,) = check(Path(".")).warnings
    assert warning.hint == (
        "one subdeck's fact sets are not next to each other; rename the files so that they "
        "sort in the order Anki shows the subdecks: 02-attention.yaml → 01-attention.yaml; "
        "01-methods.yaml → 02-methods.yaml"
    )
    for pair in warning.hint.split("subdecks: ", 1)[1].split("; "):
        old, new = pair.split(" → ")
        Path(old).rename(Path(new))
    result = runner.invoke(cli, ["check", "."])
    assert (result.exit_code, result.stderr) == (0, "")
    with LearnerCollection(tmp_path / "learner") as learner:
        learner.import_apkg(built(deck_dir, tmp_path / "deck.apkg"))
        assert queue(learner, "Psych 101") == [("a1", 0), ("m1", 0), ("m2", 0)]

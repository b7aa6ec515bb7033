"""What a learner sees, checked in Anki itself (issue 12): study order, formulas, names.

Each test builds a deck, imports it with Anki's own importer and default options, and asserts
on what Anki's scheduler serves or what its renderer shows, never on neurodeck's own idea of it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
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
        (second / "deck.yaml").read_text().replace("name: Test Deck\nid: test",
                                                   "name: Other Deck\nid: other"))
    with LearnerCollection(tmp_path / "learner") as learner:
        log_first = learner.import_apkg(built(first, tmp_path / "first.apkg"))
        log_second = learner.import_apkg(built(second, tmp_path / "second.apkg"))
        view = learner.view()
    assert log_first.counts() == log_second.counts() == {
        "new": 3, "updated": 0, "duplicate": 0, "conflicting": 0}
    assert view.notetypes == (
        "Other Deck: Basic", "Other Deck: Basic (and reversed card)", "Other Deck: Cloze",
        "Test Deck: Basic", "Test Deck: Basic (and reversed card)", "Test Deck: Cloze")
    assert not any("+" in name for name in view.notetypes)
    assert len(view.notes) == 6 and len(view.cards) == 10
    for deck_id, root in (("test", "Test Deck"), ("other", "Other Deck")):
        note = view.notes[note_guid(deck_id, "oxytocin-touch")]
        assert note.notetype == f"{root}: Basic"
        assert note.fields["Back"] == "Oxytocin"
        assert [c.deck for c in view.cards_of(note.guid)] == [f"{root}::Neuropeptides"]


def test_renamed_note_types_reach_learners_without_touching_their_cards(
        make_deck, tmp_path, monkeypatch):
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
            "neurodeck Basic", "neurodeck Basic (and reversed card)", "neurodeck Cloze")
        learner.answer_all(ease=3)
        before = learner.view()
        log = learner.import_apkg(release_2)
        after = learner.view()
        reviews = learner.review_logs()
    assert log.counts() == {"new": 0, "updated": 0, "duplicate": 3, "conflicting": 0}
    assert after.notetypes == (
        "Test Deck: Basic", "Test Deck: Basic (and reversed card)", "Test Deck: Cloze")
    assert {g: n.fields for g, n in after.notes.items()} == {
        g: n.fields for g, n in before.notes.items()}
    assert [(c.card_id, c.ivl, c.reps) for c in after.cards] == [
        (c.card_id, c.ivl, c.reps) for c in before.cards]
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
        r"'s \(d = \frac{M_1 - M_2}{SD}\) is <em>standardised</em>. What is SD?</div>")
    assert r'<div class="nd-answer">\[SD_{pooled} = \sqrt{\frac{s_1^2 + s_2^2}{2}}\]</div>' in (
        basic.answer)
    first, second = view.cards_of(note_guid("stats", "mean-in-formula"))
    # Anki hides a deletion inside a formula within the formula, as it does for its own notes.
    assert first.question == (
        r'<div class="nd-prompt">\(\bar{x} = [...]\) and the <span class="cloze-inactive" '
        r'data-ordinal="2">mean</span> is \(\bar{x} &lt; 5\)</div>')
    assert first.answer.startswith(
        r'<div class="nd-prompt">\(\bar{x} = \frac{1}{n} \sum x_i\) and the ')
    assert r"\(\bar{x} = \frac{1}{n} \sum x_i\)" in second.question
    assert '<span class="cloze" data-cloze="mean" data-ordinal="2">[...]</span>' in (
        second.question)

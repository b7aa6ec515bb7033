"""Releases, end to end with Anki's importer and scheduler: what a learner keeps and receives.

A learner imports release 1, studies every card once, and later imports release 2 with Anki's
default options ("update notes: if newer"). The tests change the YAML the way a maintainer
would between the two and pin what Anki then does. Release 2's clock (T2) lies after the wall
clock, so a learner's own edit made "now" sits between the two releases, as it would in life.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from anki_helpers import LearnerCollection, LearnerView
from apkg_contents import read_apkg
from conftest import PEPTIDES_YAML, MakeDeck

from neurodeck.cli import cli
from neurodeck.ids import note_guid
from neurodeck.lock import LOCK_FILE
from neurodeck.pipeline import build, check

T1 = 1_700_000_000  # release 1 (November 2023)
T2 = 2_000_000_000  # release 2 (May 2033), later than any learner's edit made today

REGIONS_YAML = """\
deck: Regions of the Brain
source: intimacy
notes:
  - id: amygdala-threat
    front: Which brain region flags social threat?
    back: The amygdala
  - id: dopamine-reward
    front: Which neurotransmitter drives the reward of being with a partner?
    back: Dopamine
  - id: insula-interoception
    front: Which cortex maps the body's internal state?
    back: The insula
"""

V1_FILES = {"01-peptides.yaml": PEPTIDES_YAML, "02-regions.yaml": REGIONS_YAML}
V1_IDS = (
    "oxytocin-touch",
    "vasopressin-pair-bonding",
    "mirror-neurons-fire",
    "amygdala-threat",
    "dopamine-reward",
    "insula-interoception",
)


def guid(note_id: str) -> str:
    return note_guid("test", note_id)


def studied(view: LearnerView) -> dict[int, tuple[int, int, int, int]]:
    """card id -> (interval, reviews, type, queue): what a re-import must leave alone."""
    return {c.card_id: (c.ivl, c.reps, c.type, c.queue) for c in view.cards}


@dataclass
class Learner:
    """A learner who imported release 1 and answered every card once, plus its deck."""

    col: LearnerCollection
    deck_dir: Path
    tmp_path: Path
    before: LearnerView
    logs_before: dict[int, int]

    def edit(self, name: str, old: str, new: str) -> None:
        """Edit a fact set's text, as a maintainer would between releases."""
        path = self.deck_dir / name
        text = path.read_text(encoding="utf-8")
        assert old in text, old
        path.write_text(text.replace(old, new), encoding="utf-8")

    def release_2(self) -> Path:
        return build(self.deck_dir, self.tmp_path / "release-2.apkg", clock=T2).path

    def import_release_2(self) -> tuple[LearnerView, dict[str, int]]:
        log = self.col.import_apkg(self.release_2())
        return self.col.view(), log.counts()

    def assert_history_kept(self, after: LearnerView) -> None:
        """Every card of release 1 keeps its id, interval, reviews and review log."""
        old = studied(self.before)
        assert {cid: studied(after)[cid] for cid in old} == old
        assert self.col.review_logs() == self.logs_before


@pytest.fixture
def learner(make_deck, tmp_path: Path) -> Iterator[Learner]:
    deck_dir = make_deck(V1_FILES)
    release_1 = build(deck_dir, tmp_path / "release-1.apkg", clock=T1).path
    with LearnerCollection(tmp_path / "learner") as col:
        log = col.import_apkg(release_1)
        assert log.counts() == {"new": 6, "updated": 0, "duplicate": 0, "conflicting": 0}
        assert col.answer_all(ease=4) == 8  # Easy: every card becomes a review card
        before = col.view()
        assert all(c.ivl > 0 and c.reps == 1 for c in before.cards)
        yield Learner(col, deck_dir, tmp_path, before, col.review_logs())


def test_release_with_an_edit_an_addition_and_a_removal(learner: Learner) -> None:
    """The main release: one note edited, one added, one removed; a learner's note on an
    unchanged card must survive, which needs unchanged notes to keep release 1's mod."""
    amygdala = learner.col.note(guid("amygdala-threat"))
    amygdala["My notes"] = "Remember the snake at the zoo."
    learner.col.col.update_note(amygdala)  # the learner's own edit, made between releases
    edited_mod = learner.col.view().notes[guid("amygdala-threat")].mod
    assert T1 < edited_mod < T2

    learner.edit(
        "01-peptides.yaml", "    back: Oxytocin\n", "    back: Oxytocin, made in the hypothalamus\n"
    )
    learner.edit(
        "01-peptides.yaml",
        "    section: Mirror Neurons\n",
        """\
    section: Mirror Neurons
  - id: serotonin-mood
    front: Which neurotransmitter is linked to mood and social rank?
    back: Serotonin
""",
    )
    learner.edit(
        "02-regions.yaml",
        """\
  - id: dopamine-reward
    front: Which neurotransmitter drives the reward of being with a partner?
    back: Dopamine
""",
        "",
    )
    learner.edit("deck.yaml", "version: 1.0.0", "version: 2.0.0")
    after, counts = learner.import_release_2()

    assert counts == {"new": 1, "updated": 1, "duplicate": 4, "conflicting": 0}
    # The edit arrives in place: same note, same card, new text.
    oxytocin = after.notes[guid("oxytocin-touch")]
    assert oxytocin.fields["Back"] == "Oxytocin, made in the hypothalamus"
    assert oxytocin.note_id == learner.before.notes[guid("oxytocin-touch")].note_id
    assert oxytocin.mod == T2
    (card,) = after.cards_of(guid("oxytocin-touch"))
    assert '<div class="nd-answer">Oxytocin, made in the hypothalamus</div>' in card.answer
    # No duplicates: the old notes plus exactly one new one.
    assert set(after.notes) == {guid(i) for i in (*V1_IDS, "serotonin-mood")}
    assert len(after.cards) == len(learner.before.cards) + 1
    learner.assert_history_kept(after)
    (new_card,) = after.cards_of(guid("serotonin-mood"))
    assert (new_card.type, new_card.queue, new_card.reps) == (0, 0, 0)
    assert new_card.deck == "Test Deck::Neuropeptides"
    # Unchanged notes were not touched: release 2 still stamps them with T1...
    packaged = read_apkg(learner.tmp_path / "release-2.apkg").notes
    assert {i: packaged[guid(i)].mod for i in ("vasopressin-pair-bonding", "amygdala-threat")} == {
        "vasopressin-pair-bonding": T1,
        "amygdala-threat": T1,
    }
    for note_id in ("vasopressin-pair-bonding", "mirror-neurons-fire", "insula-interoception"):
        assert after.notes[guid(note_id)] == learner.before.notes[guid(note_id)]
    # ...so the learner's own note on an unchanged card survives the release.
    annotated = after.notes[guid("amygdala-threat")]
    assert annotated.fields["My notes"] == "Remember the snake at the zoo."
    assert annotated.mod == edited_mod
    # The removed note stays, with its card and review history (Anki never deletes).
    assert after.notes[guid("dopamine-reward")] == learner.before.notes[guid("dopamine-reward")]
    (removed_card,) = after.cards_of(guid("dopamine-reward"))
    assert removed_card.reps == 1 and removed_card.queue == 2
    # The root deck's description shows the new version (Anki updates deck descriptions).
    root = learner.col.col.decks.by_name("Test Deck")
    assert root is not None and root["desc"].endswith("<p><small>Version 2.0.0</small></p>")


def test_rebuilding_without_changes_gives_the_same_package_and_updates_nothing(
    learner: Learner,
) -> None:
    """A release that changed nothing must not touch a single note, whatever the clock says."""
    release_1 = (learner.tmp_path / "release-1.apkg").read_bytes()
    lock = (learner.deck_dir / LOCK_FILE).read_text(encoding="utf-8")
    after, counts = learner.import_release_2()
    assert (learner.tmp_path / "release-2.apkg").read_bytes() == release_1
    assert (learner.deck_dir / LOCK_FILE).read_text(encoding="utf-8") == lock
    assert counts == {"new": 0, "updated": 0, "duplicate": 6, "conflicting": 0}
    assert after.notes == learner.before.notes
    learner.assert_history_kept(after)


def test_a_release_that_edits_a_note_replaces_the_learners_my_notes_on_it(
    learner: Learner,
) -> None:
    """Anki updates a note as a whole: a release that edits a note the learner annotated
    overwrites "My notes" with the release's empty field. Pinned so the README says so."""
    note = learner.col.note(guid("oxytocin-touch"))
    note["My notes"] = "Felt this after a long hug."
    learner.col.col.update_note(note)
    learner.edit("01-peptides.yaml", "    back: Oxytocin\n", "    back: Oxytocin (OXT)\n")
    after, counts = learner.import_release_2()
    assert counts == {"new": 0, "updated": 1, "duplicate": 5, "conflicting": 0}
    assert after.notes[guid("oxytocin-touch")].fields["Back"] == "Oxytocin (OXT)"
    assert after.notes[guid("oxytocin-touch")].fields["My notes"] == ""
    learner.assert_history_kept(after)


def test_adding_a_tag_updates_the_note_and_keeps_its_history(learner: Learner) -> None:
    learner.edit("01-peptides.yaml", "    tags: [oxytocin]\n", "    tags: [oxytocin, touch]\n")
    after, counts = learner.import_release_2()
    assert counts == {"new": 0, "updated": 1, "duplicate": 5, "conflicting": 0}
    assert after.notes[guid("oxytocin-touch")].tags == (
        "neuropeptides",
        "oxytocin",
        "test::Neuropeptides",
        "touch",
    )
    learner.assert_history_kept(after)


def test_moving_a_note_to_another_subdeck_warns_and_leaves_its_cards_behind(
    learner: Learner, runner
) -> None:
    learner.edit(
        "02-regions.yaml",
        """\
  - id: amygdala-threat
    front: Which brain region flags social threat?
    back: The amygdala
""",
        "",
    )
    (learner.deck_dir / "03-limbic.yaml").write_text(
        """\
deck: Regions of the Brain::Limbic
source: intimacy
notes:
  - id: amygdala-threat
    front: Which brain region flags social threat?
    back: The amygdala
""",
        encoding="utf-8",
    )
    (warning,) = check(learner.deck_dir).warnings
    assert warning.message == (
        "note 'amygdala-threat' moved from subdeck 'Regions of the Brain' to "
        "'Regions of the Brain::Limbic': "
        "learners' existing cards stay in the old subdeck"
    )
    result = runner.invoke(cli, ["check", str(learner.deck_dir)])
    assert result.exit_code == 0
    assert (
        f"{learner.deck_dir / '03-limbic.yaml'}:4:5: warning: note 'amygdala-threat' moved"
        in result.stderr
    )

    after, counts = learner.import_release_2()
    assert counts == {"new": 0, "updated": 1, "duplicate": 5, "conflicting": 0}
    amygdala = guid("amygdala-threat")
    # The note is updated, its cards are not moved.
    assert after.notes[amygdala].tags == ("test::Regions_of_the_Brain::Limbic",)
    assert [c.deck for c in after.cards_of(amygdala)] == ["Test Deck::Regions of the Brain"]
    assert "Test Deck::Regions of the Brain::Limbic" in after.decks
    assert after.cards_in("Test Deck::Regions of the Brain::Limbic") == []
    learner.assert_history_kept(after)


def test_changing_a_note_type_warns_and_anki_refuses_the_update(learner: Learner) -> None:
    learner.edit(
        "02-regions.yaml",
        "  - id: insula-interoception\n",
        "  - id: insula-interoception\n    type: reversed\n",
    )
    (warning,) = check(learner.deck_dir).warnings
    assert warning.message == (
        "note 'insula-interoception' changed type from basic to reversed: Anki will not update "
        "it for learners who have the previous release"
    )

    after, counts = learner.import_release_2()
    assert counts == {"new": 0, "updated": 0, "duplicate": 5, "conflicting": 1}
    insula = guid("insula-interoception")
    assert after.notes[insula] == learner.before.notes[insula]  # still basic, one card
    assert after.notes[insula].notetype == "Test Deck: Basic"
    assert len(after.cards_of(insula)) == 1
    learner.assert_history_kept(after)


def test_renaming_the_deck_splits_it_in_two_for_learners(learner: Learner) -> None:
    """Anki matches decks by name, not id: after a rename of `name` in deck.yaml, learners'
    cards stay in the old deck and new notes go to a second deck with the new name."""
    learner.edit("deck.yaml", "name: Test Deck", "name: Connection")
    learner.edit(
        "02-regions.yaml",
        "    back: The insula\n",
        """\
    back: The insula
  - id: hippocampus-memory
    front: Which region binds memories of a partner to places?
    back: The hippocampus
""",
    )
    after, counts = learner.import_release_2()
    assert counts == {"new": 1, "updated": 0, "duplicate": 6, "conflicting": 0}
    assert {c.deck for c in learner.before.cards} == {
        "Test Deck::Neuropeptides",
        "Test Deck::Regions of the Brain",
    }
    assert {c.deck for c in after.cards if c.note_guid != guid("hippocampus-memory")} == {
        "Test Deck::Neuropeptides",
        "Test Deck::Regions of the Brain",
    }
    assert [c.deck for c in after.cards_of(guid("hippocampus-memory"))] == [
        "Connection::Regions of the Brain"
    ]
    learner.assert_history_kept(after)


def test_check_warns_when_the_deck_is_renamed(learner: Learner) -> None:
    learner.edit("deck.yaml", "name: Test Deck", "name: Connection")
    assert [w.message for w in check(learner.deck_dir).warnings] == [
        "the deck was renamed from 'Test Deck' to 'Connection': Anki matches decks by name, so "
        "learners' existing cards stay in the old deck and new cards go to a second one"
    ]


def test_removing_a_cloze_deletion_leaves_learners_a_card_that_shows_an_error(
    learner: Learner,
) -> None:
    """Anki never deletes cards on import: the card of a removed deletion stays, reviewed,
    and renders Anki's "No cloze 2 found" message until the learner runs Empty Cards."""
    learner.edit("01-peptides.yaml", "{{c2::observe it}}", "observe it")
    after, counts = learner.import_release_2()
    assert counts == {"new": 0, "updated": 1, "duplicate": 5, "conflicting": 0}
    c1, c2 = after.cards_of(guid("mirror-neurons-fire"))
    assert c1.question.endswith("and when we observe it.</div>")
    assert "No cloze \u20682\u2069 found on card" in c2.question and c2.reps == 1
    learner.assert_history_kept(after)


def test_check_warns_when_a_note_loses_a_card(learner: Learner) -> None:
    learner.edit("01-peptides.yaml", "{{c2::observe it}}", "observe it")
    (warning,) = check(learner.deck_dir).warnings
    assert warning.message == (
        "note 'mirror-neurons-fire' lost cloze deletion c2: learners keep that card, and it "
        "shows an error until they run Tools → Empty Cards"
    )


def test_a_changed_image_named_with_an_underscore_never_reaches_learners(
    make_deck: MakeDeck, tmp_path: Path
) -> None:
    """Anki copies a media file whose name starts with `_` only when the learner has no file
    of that name (anki_rules.STATIC_MEDIA_CHANGED); any other changed file arrives under a
    new name, and the updated note refers to it."""
    fact_set = """\
        deck: Figures
        notes:
          - id: figure
            front: "Which region is marked? ![a](_shared.png) ![b](figure.png)"
            back: The amygdala{}
        """
    deck_dir = make_deck(
        {
            "figures.yaml": fact_set.format(""),
            "_shared.png": b"shared, v1",
            "figure.png": b"figure, v1",
        }
    )
    release_1 = build(deck_dir, tmp_path / "release-1.apkg", clock=T1).path
    (deck_dir / "figures.yaml").write_text(textwrap.dedent(fact_set.format(" (left)")))
    (deck_dir / "_shared.png").write_bytes(b"shared, v2")
    (deck_dir / "figure.png").write_bytes(b"figure, v2")
    release_2 = build(deck_dir, tmp_path / "release-2.apkg", clock=T2).path
    with LearnerCollection(tmp_path / "learner") as col:
        col.import_apkg(release_1)
        assert col.import_apkg(release_2).counts()["updated"] == 1
        media = Path(col.col.media.dir())
        front = col.view().notes[note_guid("test", "figure")].fields["Front"]
        (figure,) = [name for name in os.listdir(media) if name.startswith("figure-")]
        assert (media / figure).read_bytes() == b"figure, v2"
        assert f'src="{figure}"' in front  # the edit arrived, with the new image
        assert 'src="_shared.png"' in front
        assert (media / "_shared.png").read_bytes() == b"shared, v1"  # never replaced


# --- A lost lock (issue 11) --------------------------------------------------------------


def test_a_lost_lock_rebuilt_from_the_release_keeps_learners_notes(
    learner: Learner, runner
) -> None:
    """The lock is lost after release 1. `lock --from release-1.apkg` gives back each note's
    released time, so release 2 updates only the note really edited, and a learner's
    "My notes" on another note survives."""
    amygdala = learner.col.note(guid("amygdala-threat"))
    amygdala["My notes"] = "Remember the snake at the zoo."
    learner.col.col.update_note(amygdala)
    (learner.deck_dir / LOCK_FILE).unlink()
    release_1 = learner.tmp_path / "release-1.apkg"
    result = runner.invoke(
        cli,
        ["lock", str(learner.deck_dir), "--from", str(release_1)],
        env={"SOURCE_DATE_EPOCH": str(T2 - 10)},
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("6 notes as released, 0 edited since, 0 new\n")
    lock_text = (learner.deck_dir / LOCK_FILE).read_text(encoding="utf-8")
    assert "lock\t3\ttest\n" in lock_text

    learner.edit("01-peptides.yaml", "    back: Oxytocin\n", "    back: Oxytocin (OXT)\n")
    after, counts = learner.import_release_2()
    assert counts == {"new": 0, "updated": 1, "duplicate": 5, "conflicting": 0}
    assert after.notes[guid("oxytocin-touch")].fields["Back"] == "Oxytocin (OXT)"
    assert after.notes[guid("amygdala-threat")].fields["My notes"] == (
        "Remember the snake at the zoo."
    )
    learner.assert_history_kept(after)


def test_without_the_rebuilt_lock_every_note_would_be_updated(learner: Learner) -> None:
    """What `lock --from` prevents, pinned: a build without the lock gives every note a new
    time, and Anki overwrites every learner's own notes."""
    amygdala = learner.col.note(guid("amygdala-threat"))
    amygdala["My notes"] = "Remember the snake at the zoo."
    learner.col.col.update_note(amygdala)
    (learner.deck_dir / LOCK_FILE).unlink()
    after, counts = learner.import_release_2()
    assert counts == {"new": 0, "updated": 6, "duplicate": 0, "conflicting": 0}
    assert after.notes[guid("amygdala-threat")].fields["My notes"] == ""


def test_release_check_flags_unchanged_notes_whose_time_moved(learner: Learner, runner) -> None:
    release_1 = learner.tmp_path / "release-1.apkg"
    (learner.deck_dir / LOCK_FILE).unlink()
    release_2 = learner.release_2()
    result = runner.invoke(cli, ["release-check", str(release_1), str(release_2)])
    assert result.exit_code == 1, result.output
    touched = [
        line
        for line in result.stdout.splitlines()
        if "did not change but its modification time moved forward" in line
    ]
    assert len(touched) == 6
    assert "neurodeck lock --from OLD.apkg" in result.stdout

    # Rebuilt from release 1, the lock gives the same times back: nothing is flagged.
    result = runner.invoke(
        cli, ["lock", str(learner.deck_dir), "--from", str(release_1), "--force"]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["release-check", str(release_1), str(learner.release_2())])
    assert result.exit_code == 0, result.output
    assert "No breaking changes" in result.stdout


def test_lock_from_refuses_a_readable_lock_and_another_decks_package(
    learner: Learner, runner, make_deck
) -> None:
    release_1 = learner.tmp_path / "release-1.apkg"
    lock_path = learner.deck_dir / LOCK_FILE
    before = lock_path.read_bytes()
    result = runner.invoke(cli, ["lock", str(learner.deck_dir), "--from", str(release_1)])
    assert result.exit_code == 1
    assert "exists and is readable" in result.stderr
    assert lock_path.read_bytes() == before

    other = make_deck({"a.yaml": PEPTIDES_YAML}, name="other")
    (other / "deck.yaml").write_text(
        (other / "deck.yaml").read_text().replace("id: test", "id: other")
    )
    result = runner.invoke(cli, ["lock", str(other), "--from", str(release_1)])
    assert result.exit_code == 1
    assert "no note of this package belongs to the deck" in result.stderr
    assert not (other / LOCK_FILE).exists()
    assert "Traceback" not in result.output


@pytest.mark.parametrize("damage", ["a field too many", "saved as Latin-1"])
def test_lock_from_rebuilds_a_damaged_lock(learner: Learner, runner, damage: str) -> None:
    lock_path = learner.deck_dir / LOCK_FILE
    good = lock_path.read_text(encoding="utf-8")
    if damage == "a field too many":
        lock_path.write_text(good.replace("\tbasic\t0\t", "\tbasic\t0\textra\t", 1))
    else:  # an editor that saved it in another encoding: not UTF-8 any more
        lock_path.write_bytes((good + "# café\n").encode("latin-1"))
    result = runner.invoke(
        cli, ["build", str(learner.deck_dir), "-o", str(learner.tmp_path / "x.apkg")]
    )
    assert result.exit_code == 1
    assert "neurodeck lock --from" in result.stderr
    result = runner.invoke(
        cli, ["lock", str(learner.deck_dir), "--from", str(learner.tmp_path / "release-1.apkg")]
    )
    assert result.exit_code == 0, result.output
    assert lock_path.read_text(encoding="utf-8") == good

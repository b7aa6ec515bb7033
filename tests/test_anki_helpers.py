"""Tests for tests/anki_helpers.py, and pins of Anki's .apkg update rules the project relies on.

Packages are built with genanki directly (not with the neurodeck compiler) so these tests
only exercise Anki's importer. ``Package.write_to_file(path, timestamp=T)`` stamps every
note's ``mod`` with T, which is what Anki's "update notes: if newer" rule compares.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import genanki
import pytest
from anki_helpers import (
    ALWAYS,
    IF_NEWER,
    ImportLog,
    LearnerCollection,
    LearnerView,
    default_import_options,
    import_apkg,
)

T1 = 1_700_000_000  # first release (seconds; also the base of genanki's note/card ids)
T2 = T1 + 86_400  # a later release

_FRONT_BACK = [{"name": "Front"}, {"name": "Back"}]
_CARD_1 = {"name": "Card 1", "qfmt": "{{Front}}", "afmt": "{{FrontSide}}<hr id=answer>{{Back}}"}

BASIC = genanki.Model(1_700_000_001, "ND Basic", fields=_FRONT_BACK, templates=[_CARD_1])
# Same note-type id as BASIC, one more field: a note type "gaining a field" between releases.
BASIC_PLUS_FIELD = genanki.Model(
    1_700_000_001, "ND Basic", fields=[*_FRONT_BACK, {"name": "Source"}], templates=[_CARD_1]
)
REVERSED = genanki.Model(
    1_700_000_002,
    "ND Reversed",
    fields=_FRONT_BACK,
    templates=[
        _CARD_1,
        {"name": "Card 2", "qfmt": "{{Back}}", "afmt": "{{FrontSide}}<hr id=answer>{{Front}}"},
    ],
)
CLOZE = genanki.Model(
    1_700_000_003,
    "ND Cloze",
    fields=[{"name": "Text"}, {"name": "Extra"}],
    templates=[{"name": "Cloze", "qfmt": "{{cloze:Text}}", "afmt": "{{cloze:Text}}<br>{{Extra}}"}],
    model_type=genanki.Model.CLOZE,
)

DECK_IDS = {"Root::Sub": 2_100_000_001, "Root::Other": 2_100_000_002, "Languages": 2_100_000_003}


@dataclass(frozen=True)
class Spec:
    """One note to put in a test package."""

    guid: str
    fields: tuple[str, ...]
    model: genanki.Model = BASIC
    deck: str = "Root::Sub"
    due: int = 0
    tags: tuple[str, ...] = ()


def write_package(path: Path, specs: Sequence[Spec], timestamp: int) -> Path:
    """Write specs as an .apkg whose notes all have mod = timestamp (fresh genanki objects)."""
    decks: dict[str, genanki.Deck] = {}
    for spec in specs:
        deck = decks.setdefault(spec.deck, genanki.Deck(DECK_IDS[spec.deck], spec.deck))
        deck.add_note(
            genanki.Note(
                model=spec.model,
                fields=list(spec.fields),
                guid=spec.guid,
                due=spec.due,
                tags=list(spec.tags),
            )
        )
    genanki.Package(list(decks.values())).write_to_file(str(path), timestamp=timestamp)
    return path


NEURON = Spec("nd-neuron", ("What is a neuron?", "A nerve cell"), due=1, tags=("neuro", "week1"))
SYNAPSE = Spec("nd-synapse", ("What is a synapse?", "A junction between neurons"), due=2)
AXON = Spec("nd-axon", ("What is an axon?", "The output fibre"), due=3)
HUND = Spec("nd-hund", ("dog", "der Hund"), model=REVERSED, deck="Languages", due=4)
PARIS = Spec(
    "nd-paris",
    ("{{c1::Paris}} is the capital of {{c2::France}}; {{c1::Lutetia}} was its Roman name", "Geo"),
    model=CLOZE,
    deck="Root::Other",
    due=5,
)
RELEASE_1 = (NEURON, SYNAPSE, AXON)


def edited(spec: Spec, **changes: object) -> Spec:
    """A copy of spec with some attributes replaced."""
    return Spec(**{**spec.__dict__, **changes})


@pytest.fixture
def learner(tmp_path: Path) -> Iterator[LearnerCollection]:
    """A learner who imported RELEASE_1 (at T1) with default options and answered all cards Easy."""
    with LearnerCollection(tmp_path / "learner") as col:
        log = col.import_apkg(write_package(tmp_path / "v1.apkg", RELEASE_1, T1))
        assert log.counts() == {"new": 3, "updated": 0, "duplicate": 0, "conflicting": 0}
        assert col.answer_all(ease=4) == 3
        yield col


def studied_state(view: LearnerView) -> dict[int, tuple[int, int, int, int]]:
    """card id -> (ivl, reps, type, queue), to compare scheduling before/after a re-import."""
    return {c.card_id: (c.ivl, c.reps, c.type, c.queue) for c in view.cards}


# --------------------------------------------------------------------------- helper basics


def test_default_options_equal_fresh_profile_import_dialog_presets(tmp_path: Path) -> None:
    with LearnerCollection(tmp_path / "c") as col:
        presets = col.col._backend.get_import_anki_package_presets()
    assert presets == default_import_options()
    assert presets.update_notes == IF_NEWER and presets.update_notetypes == IF_NEWER
    assert not (presets.merge_notetypes or presets.with_scheduling or presets.with_deck_configs)


def test_unknown_import_option_is_rejected(tmp_path: Path) -> None:
    apkg = write_package(tmp_path / "a.apkg", [NEURON], T1)
    with LearnerCollection(tmp_path / "c") as col, pytest.raises(TypeError, match="merge_notes"):
        col.import_apkg(apkg, merge_notes=True)


def test_import_basic_reversed_and_cloze(tmp_path: Path) -> None:
    apkg = write_package(tmp_path / "a.apkg", [NEURON, HUND, PARIS], T1)
    view = import_apkg(apkg, tmp_path)
    guids = ("nd-neuron", "nd-hund", "nd-paris")

    assert view.log == ImportLog(  # nothing else in the log
        new=3, found_notes=3, new_ids=tuple(view.notes[g].note_id for g in guids)
    )
    assert view.decks == ("Languages", "Root", "Root::Other", "Root::Sub")  # no empty "Default"
    assert view.notetypes == ("ND Basic", "ND Cloze", "ND Reversed")  # unused stock types hidden
    assert set(view.notes) == set(guids)
    assert [len(view.cards_of(g)) for g in guids] == [1, 2, 2]

    neuron = view.notes["nd-neuron"]
    assert neuron.notetype == "ND Basic"
    assert neuron.fields == {"Front": "What is a neuron?", "Back": "A nerve cell"}
    assert neuron.tags == ("neuro", "week1")
    assert neuron.mod == T1
    assert view.notes["nd-hund"].tags == ()

    (card,) = view.cards_of("nd-neuron")
    assert card.deck == "Root::Sub"
    assert card.question == "What is a neuron?"
    assert card.answer == "What is a neuron?<hr id=answer>A nerve cell"
    assert (card.type, card.queue, card.reps, card.ivl) == (0, 0, 0, 0)  # new

    forward, backward = view.cards_of("nd-hund")
    assert {forward.deck, backward.deck} == {"Languages"}
    assert (forward.question, backward.question) == ("dog", "der Hund")
    assert backward.answer == "der Hund<hr id=answer>dog"

    c1, c2 = view.cards_of("nd-paris")
    assert c1.deck == c2.deck == "Root::Other"
    assert c1.question == (
        '<span class="cloze" data-cloze="Paris" data-ordinal="1">[...]</span>'
        ' is the capital of <span class="cloze-inactive" data-ordinal="2">France</span>;'
        ' <span class="cloze" data-cloze="Lutetia" data-ordinal="1">[...]</span> was its Roman name'
    )
    assert '<span class="cloze" data-ordinal="1">Paris</span>' in c1.answer
    assert c1.answer.endswith("<br>Geo")
    assert c2.question.startswith('<span class="cloze-inactive" data-ordinal="1">Paris</span>')
    assert '<span class="cloze" data-cloze="France" data-ordinal="2">[...]</span>' in c2.question
    assert c2.question.count("[...]") == 1


def test_cloze_gets_one_card_per_deletion_number(tmp_path: Path) -> None:
    three = edited(PARIS, guid="nd-three", fields=("{{c1::a}} {{c2::b}} {{c3::c}} {{c1::d}}", ""))
    view = import_apkg(write_package(tmp_path / "a.apkg", [three], T1), tmp_path)
    assert [c.ord for c in view.cards_of("nd-three")] == [0, 1, 2]


def test_package_ids_and_due_values_are_kept(tmp_path: Path) -> None:
    """Fresh collection: note/card ids and new-card `due` come verbatim from the package."""
    specs = [edited(AXON, due=30), edited(NEURON, due=10), edited(SYNAPSE, due=20)]
    view = import_apkg(write_package(tmp_path / "a.apkg", specs, T1), tmp_path)
    # genanki numbers notes and cards from timestamp*1000 in insertion order: n, c, n, c, ...
    assert [view.notes[s.guid].note_id for s in specs] == [T1 * 1000, T1 * 1000 + 2, T1 * 1000 + 4]
    assert [c.card_id for c in view.cards_of("nd-axon")] == [T1 * 1000 + 1]
    assert [(c.note_guid, c.due) for c in view.cards] == [
        ("nd-neuron", 10),
        ("nd-synapse", 20),
        ("nd-axon", 30),
    ]


def test_new_card_due_is_not_offset_against_existing_cards(tmp_path: Path) -> None:
    """A second package's new cards keep their own `due`, so they interleave with earlier ones."""
    with LearnerCollection(tmp_path / "c") as col:
        col.import_apkg(write_package(tmp_path / "a.apkg", [NEURON, SYNAPSE], T1))
        later = [edited(AXON, due=1), edited(HUND, due=2, deck="Root::Sub", model=BASIC)]
        col.import_apkg(write_package(tmp_path / "b.apkg", later, T2))
        assert col.col.get_config("nextPos") == 1  # not advanced by imports either
        view = col.view()
    # view order is (deck, due, ord, card id): equal `due` values tie and fall back to card id.
    assert [(c.note_guid, c.due) for c in view.cards] == [
        ("nd-neuron", 1),
        ("nd-axon", 1),
        ("nd-synapse", 2),
        ("nd-hund", 2),
    ]


def test_answer_all_ignores_daily_new_limit_and_logs_reviews(tmp_path: Path) -> None:
    specs = [Spec(f"nd-{i:02d}", (f"q{i}", f"a{i}"), due=i) for i in range(30)]  # > 20 new/day
    specs.append(HUND)  # another top-level deck, two cards
    with LearnerCollection(tmp_path / "c") as col:
        col.import_apkg(write_package(tmp_path / "a.apkg", specs, T1))
        assert col.answer_all(ease=4) == 32
        view = col.view()
        logs = col.review_logs()
        assert col.answer_all(ease=4) == 0  # everything now due in days, nothing left today
    assert logs == {c.card_id: 1 for c in view.cards}
    assert all(c.reps == 1 and c.ivl > 0 and c.type == 2 and c.queue == 2 for c in view.cards)


# --------------------------------------------------------------------------- update rules


def test_rule1_reimporting_the_same_package_only_reports_duplicates(
    learner: LearnerCollection, tmp_path: Path
) -> None:
    before = learner.view()
    log = learner.import_apkg(write_package(tmp_path / "v1-again.apkg", RELEASE_1, T1))
    after = learner.view()
    assert log.counts() == {"new": 0, "updated": 0, "duplicate": 3, "conflicting": 0}
    assert log.found_notes == 3
    assert after.notes == before.notes
    assert studied_state(after) == studied_state(before)


def test_rule2_newer_package_updates_fields_in_place_and_keeps_history(
    learner: LearnerCollection, tmp_path: Path
) -> None:
    before = learner.view()
    release_2 = (edited(NEURON, fields=("What is a neuron? (v2)", "A nerve cell")), SYNAPSE, AXON)
    log = learner.import_apkg(write_package(tmp_path / "v2.apkg", release_2, T2))
    after = learner.view()

    # Every note with a newer mod is "updated", whether or not its content changed.
    assert log.counts() == {"new": 0, "updated": 3, "duplicate": 0, "conflicting": 0}
    neuron = after.notes["nd-neuron"]
    assert neuron.fields["Front"] == "What is a neuron? (v2)"
    assert neuron.note_id == before.notes["nd-neuron"].note_id
    assert neuron.mod == T2  # the package's mod is copied, not "now"
    (card,) = after.cards_of("nd-neuron")
    assert card.question == "What is a neuron? (v2)"
    assert studied_state(after) == studied_state(before)  # same card ids, ivl, reps
    assert all(ivl > 0 and reps == 1 for ivl, reps, _, _ in studied_state(after).values())
    assert learner.review_logs() == {c.card_id: 1 for c in before.cards}


def test_rule3_same_mod_is_not_an_update(learner: LearnerCollection, tmp_path: Path) -> None:
    before = learner.view()
    release_2 = (edited(NEURON, fields=("Changed but same timestamp", "x")), SYNAPSE, AXON)
    log = learner.import_apkg(write_package(tmp_path / "v2.apkg", release_2, T1))
    assert log.counts() == {"new": 0, "updated": 0, "duplicate": 3, "conflicting": 0}
    assert learner.view().notes == before.notes


def test_rule4_note_type_gaining_a_field_conflicts(
    learner: LearnerCollection, tmp_path: Path
) -> None:
    before = learner.view()
    release_2 = [
        edited(s, model=BASIC_PLUS_FIELD, fields=(*s.fields[:1], "v2 back", "src"))
        for s in RELEASE_1
    ]
    log = learner.import_apkg(write_package(tmp_path / "v2.apkg", release_2, T2))
    after = learner.view()

    assert log.counts() == {"new": 0, "updated": 0, "duplicate": 0, "conflicting": 3}
    assert after.notes == before.notes  # old fields, old note type, old mod
    assert studied_state(after) == studied_state(before)
    # Anki added the changed schema as a separate, unused note type with a suffixed name.
    assert after.notetypes == ("ND Basic", "ND Basic+")


def test_rule4_remedy_merge_notetypes_with_update_always(
    learner: LearnerCollection, tmp_path: Path
) -> None:
    """Not a default: the desktop options "merge note types" + "update notes: always"."""
    before = learner.view()
    release_2 = [edited(s, model=BASIC_PLUS_FIELD, fields=(*s.fields, "src")) for s in RELEASE_1]
    apkg = write_package(tmp_path / "v2.apkg", release_2, T2)

    # merge alone: note type is merged (field added, notes touched -> mod = now) but the
    # notes then count as duplicates, so their new field contents are NOT applied.
    log = learner.import_apkg(apkg, merge_notetypes=True)
    assert log.counts() == {"new": 0, "updated": 0, "duplicate": 3, "conflicting": 0}
    assert learner.view().notes["nd-neuron"].fields["Source"] == ""
    assert learner.view().notes["nd-neuron"].mod > T2

    log = learner.import_apkg(apkg, merge_notetypes=True, update_notes=ALWAYS)
    after = learner.view()
    assert log.counts() == {"new": 0, "updated": 3, "duplicate": 0, "conflicting": 0}
    assert after.notetypes == ("ND Basic",)
    assert after.notes["nd-neuron"].fields == {
        "Front": "What is a neuron?",
        "Back": "A nerve cell",
        "Source": "src",
    }
    assert studied_state(after) == studied_state(before)


def test_rule5_moving_a_note_to_another_deck_does_not_move_its_cards(
    learner: LearnerCollection, tmp_path: Path
) -> None:
    release_2 = (edited(NEURON, deck="Root::Other"), SYNAPSE, AXON)
    log = learner.import_apkg(write_package(tmp_path / "v2.apkg", release_2, T2))
    after = learner.view()
    assert log.counts() == {"new": 0, "updated": 3, "duplicate": 0, "conflicting": 0}
    assert [c.deck for c in after.cards_of("nd-neuron")] == ["Root::Sub"]
    assert "Root::Other" in after.decks  # the new deck is created, but stays empty
    assert after.cards_in("Root::Other") == []


def test_rule6_note_removed_from_package_stays(learner: LearnerCollection, tmp_path: Path) -> None:
    before = learner.view()
    log = learner.import_apkg(write_package(tmp_path / "v2.apkg", (SYNAPSE, AXON), T2))
    after = learner.view()
    assert log.counts() == {"new": 0, "updated": 2, "duplicate": 0, "conflicting": 0}
    assert log.found_notes == 2
    assert after.notes["nd-neuron"] == before.notes["nd-neuron"]
    assert studied_state(after) == studied_state(before)


# --------------------------------------------------------------------------- related observations


def test_learner_edit_beats_a_newer_package_under_default_options(
    learner: LearnerCollection, tmp_path: Path
) -> None:
    note = learner.note("nd-neuron")
    note["Back"] = "my own words"
    learner.col.update_note(note)  # mod becomes "now", later than T2
    log = learner.import_apkg(write_package(tmp_path / "v2.apkg", RELEASE_1, T2))
    assert log.duplicate_ids == (note.id,)
    assert log.updated == 2
    assert learner.view().notes["nd-neuron"].fields["Back"] == "my own words"


def test_added_cloze_deletion_and_new_note_get_cards_in_package_deck_and_due(
    tmp_path: Path,
) -> None:
    with LearnerCollection(tmp_path / "c") as col:
        col.import_apkg(write_package(tmp_path / "v1.apkg", [PARIS], T1))
        col.answer_all(ease=3)
        paris_v2 = edited(
            PARIS, deck="Root::Sub", fields=("{{c1::Paris}} {{c2::France}} {{c3::Seine}}", "")
        )
        release_2 = [paris_v2, edited(AXON, due=7)]
        log = col.import_apkg(write_package(tmp_path / "v2.apkg", release_2, T2))
        view = col.view()
    assert log.counts() == {"new": 1, "updated": 1, "duplicate": 0, "conflicting": 0}
    c1, c2, c3 = view.cards_of("nd-paris")
    assert (c1.deck, c2.deck, c1.reps, c2.reps) == ("Root::Other", "Root::Other", 1, 1)
    assert (c3.deck, c3.type, c3.due) == ("Root::Sub", 0, PARIS.due)  # new card, package due
    assert [(c.deck, c.due) for c in view.cards_of("nd-axon")] == [("Root::Sub", 7)]

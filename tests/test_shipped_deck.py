"""The deck we ship: structural rules a careful educator holds every note to."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from neurodeck import pipeline
from neurodeck.cli import cli
from neurodeck.markup import plain_text

CARDS = Path(__file__).resolve().parent.parent / "cards"
SEEDS = Path(__file__).resolve().parent.parent.parent / "shared" / "seeds"


@pytest.fixture(scope="module")
def checked() -> pipeline.Checked:
    return pipeline.check(CARDS, strict=True)


def test_shipped_deck_is_clean_under_strict_check(checked):
    assert checked.warnings == []
    assert len(checked.notes) >= 60


def test_every_note_cites_a_source_and_section(checked):
    for compiled in checked.notes:
        note = compiled.note
        assert note.source in checked.deck.sources, note.id
        assert note.section and note.section.strip(), note.id


def test_every_note_has_a_topic_tag(checked):
    for compiled in checked.notes:
        assert any(t.name.startswith("topic::") for t in compiled.note.tags), compiled.note.id


def test_no_field_is_empty_and_no_answer_repeats_its_prompt(checked):
    for compiled in checked.notes:
        note = compiled.note
        assert all(text.strip() for text in note.fields.values()), note.id
        if note.kind in ("basic", "reversed"):
            prompt, answer = plain_text(note.fields["front"]), plain_text(note.fields["back"])
            assert answer not in prompt, note.id


def test_ids_are_unique(checked):
    ids = [c.note.id for c in checked.notes]
    assert len(ids) == len(set(ids))


def test_every_subdeck_is_a_topic(checked):
    assert set(checked.subdecks) >= {"Affective Neuroscience", "Interpersonal Neurobiology",
                                     "Psychotherapy", "Brain Regions", "Neuropeptides",
                                     "Mirror Neurons"}


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the source documents are in ../shared/seeds")
def test_cards_paraphrase_rather_than_copy_the_sources(checked):
    """No run of eight words in a card is copied from the source documents."""
    source_words = " ".join(plain_text(p.read_text(encoding="utf-8")) for p in SEEDS.glob("*.txt"))
    for compiled in checked.notes:
        for text in compiled.note.fields.values():
            words = plain_text(text).split()
            for i in range(len(words) - 7):
                run = " ".join(words[i:i + 8])
                assert f" {run} " not in f" {source_words} ", (compiled.note.id, run)


def test_lock_is_committed_and_current(runner, tmp_path):
    """CI's `build --frozen`: the committed lock matches the cards."""
    deck_dir = shutil.copytree(CARDS, tmp_path / "cards")
    result = runner.invoke(cli, ["build", str(deck_dir), "-o", str(tmp_path / "n.apkg"),
                                 "--frozen", "--strict"])
    assert result.exit_code == 0, result.output

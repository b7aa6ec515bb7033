"""Decks built by neurodeck, imported by Anki's own importer and rendered by Anki's templates.

These tests look only at what a learner gets: note types, subdecks, tags, card counts and the
HTML Anki renders for each side of each card.
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest
from anki_helpers import LearnerView, import_apkg
from conftest import DECK_YAML, PEPTIDES_YAML

from neurodeck.cli import cli
from neurodeck.ids import note_guid
from neurodeck.pipeline import build, check

REPO = Path(__file__).resolve().parent.parent

MARKUP_YAML = """\
tags: [markup]
source: intimacy
notes:
  - id: markdown-renders
    front: What do *emphasis*, **bold** and `code` look like?
    back: |
      - a list item
      - [a link](https://example.org/)
  - id: html-is-text
    front: "<script>alert(1)</script> <b>bold?</b>"
    back: "<img src=x onerror=alert(1)>"
  - id: javascript-link
    front: "Where does [this link](javascript:alert(1)) go?"
    back: Nowhere
  - id: three-deletions
    type: cloze
    text: "{{c1::Oxytocin}} and {{c2::vasopressin::a peptide}} come from the
      {{c3::hypothalamus}}; {{c1::oxytocin}} also from the uterus."
    extra: Both also act as hormones.
"""

LIMBIC_YAML = """\
deck: Brain Regions::Limbic System
tags: [regions, "exam::2024"]
notes:
  - id: amygdala-threat
    front: Which brain region flags social threat?
    back: The amygdala
    source: intimacy
    section: Neural Pathways of Intimacy
"""

# note id -> (note type, subdeck, tags, number of cards)
EXPECTED = {
    "oxytocin-touch": (
        "Test Deck: Basic",
        "Test Deck::Neuropeptides",
        ("neuropeptides", "oxytocin", "test::Neuropeptides"),
        1,
    ),
    "vasopressin-pair-bonding": (
        "Test Deck: Basic (and reversed card)",
        "Test Deck::Neuropeptides",
        ("neuropeptides", "test::Neuropeptides"),
        2,
    ),
    "mirror-neurons-fire": (
        "Test Deck: Cloze",
        "Test Deck::Neuropeptides",
        ("neuropeptides", "test::Neuropeptides"),
        2,
    ),
    "markdown-renders": ("Test Deck: Basic", "Test Deck", ("markup", "test"), 1),
    "html-is-text": ("Test Deck: Basic", "Test Deck", ("markup", "test"), 1),
    "javascript-link": ("Test Deck: Basic", "Test Deck", ("markup", "test"), 1),
    "three-deletions": ("Test Deck: Cloze", "Test Deck", ("markup", "test"), 3),
    "amygdala-threat": (
        "Test Deck: Basic",
        "Test Deck::Brain Regions::Limbic System",
        ("exam::2024", "regions", "test::Brain_Regions::Limbic_System"),
        1,
    ),
}
SOURCE = "<cite>Neurobiological Foundations of Intimacy</cite>"


def guid(note_id: str) -> str:
    return note_guid("test", note_id)


@pytest.fixture(scope="module")
def view(tmp_path_factory: pytest.TempPathFactory) -> LearnerView:
    """The test deck built once, imported into a fresh collection."""
    tmp = tmp_path_factory.mktemp("anki-import")
    deck_dir = tmp / "cards"
    (deck_dir / "sub").mkdir(parents=True)
    (deck_dir / "deck.yaml").write_text(DECK_YAML, encoding="utf-8")
    (deck_dir / "01-peptides.yaml").write_text(PEPTIDES_YAML, encoding="utf-8")
    (deck_dir / "02-markup.yaml").write_text(MARKUP_YAML, encoding="utf-8")
    (deck_dir / "sub" / "03-limbic.yaml").write_text(LIMBIC_YAML, encoding="utf-8")
    built = build(deck_dir, tmp / "test.apkg", clock=1_700_000_000)
    return import_apkg(built.path, tmp)


def visible(fragment: str) -> str:
    """The text a learner reads in an HTML fragment, on one line."""
    return " ".join(html.unescape(re.sub(r"<[^>]*>", " ", fragment)).split())


def cards(view: LearnerView, note_id: str) -> list:
    return view.cards_of(guid(note_id))


def test_every_note_imports_as_new_and_nothing_else(view: LearnerView) -> None:
    assert view.log.counts() == {"new": 8, "updated": 0, "duplicate": 0, "conflicting": 0}
    assert view.log.found_notes == 8
    assert set(view.notes) == {guid(i) for i in EXPECTED}
    assert view.notetypes == (
        "Test Deck: Basic",
        "Test Deck: Basic (and reversed card)",
        "Test Deck: Cloze",
    )
    assert view.decks == (
        "Test Deck",
        "Test Deck::Brain Regions",
        "Test Deck::Brain Regions::Limbic System",
        "Test Deck::Neuropeptides",
    )


@pytest.mark.parametrize("note_id", sorted(EXPECTED))
def test_note_has_its_type_subdeck_tags_and_card_count(view: LearnerView, note_id: str) -> None:
    notetype, deck, tags, count = EXPECTED[note_id]
    note = view.notes[guid(note_id)]
    assert (note.notetype, note.tags) == (notetype, tags)
    assert [c.deck for c in cards(view, note_id)] == [deck] * count
    assert [c.ord for c in cards(view, note_id)] == list(range(count))
    assert all(c.type == 0 and c.queue == 0 for c in cards(view, note_id))  # new cards


def test_basic_card_shows_the_prompt_then_answer_extra_and_source(view: LearnerView) -> None:
    (card,) = cards(view, "oxytocin-touch")
    prompt = (
        '<div class="nd-prompt">Which neuropeptide is released during physical touch '
        "and intimacy?</div>"
    )
    assert card.question == prompt
    assert card.answer == (
        f'{prompt}\n<hr id="answer">\n<div class="nd-answer">Oxytocin</div>\n'
        '<div class="nd-extra">Often called the &quot;bonding hormone&quot;.</div>\n\n'
        f'<div class="nd-source">{SOURCE} · Neural Pathways of Intimacy</div>'
    )


def test_reversed_note_asks_both_ways(view: LearnerView) -> None:
    forward, backward = cards(view, "vasopressin-pair-bonding")
    back = "Neuropeptide linked to pair bonding in mammals"
    assert forward.question == '<div class="nd-prompt">Vasopressin</div>'
    assert '<div class="nd-answer">' + back + "</div>" in forward.answer
    assert backward.question == f'<div class="nd-prompt">{back}</div>'
    assert '<div class="nd-answer">Vasopressin</div>' in backward.answer
    assert all("nd-source" in c.answer for c in (forward, backward))


def test_cloze_hides_one_deletion_number_per_card(view: LearnerView) -> None:
    c1, c2 = cards(view, "mirror-neurons-fire")
    assert c1.question == (
        '<div class="nd-prompt">Mirror neurons fire when we <span class="cloze" '
        'data-cloze="perform&#x20;an&#x20;action" data-ordinal="1">[...]</span> and when we '
        '<span class="cloze-inactive" data-ordinal="2">observe it</span>.</div>'
    )
    assert '<span class="cloze" data-ordinal="1">perform an action</span>' in c1.answer
    assert '<span class="cloze" data-ordinal="2">[...]</span>' not in c2.question
    assert 'data-ordinal="2">[...]</span>' in c2.question
    assert '<span class="cloze" data-ordinal="2">observe it</span>' in c2.answer
    assert c2.answer.endswith(f'<div class="nd-source">{SOURCE} · Mirror Neurons</div>')


def test_cloze_with_a_repeated_number_and_a_hint(view: LearnerView) -> None:
    c1, c2, c3 = cards(view, "three-deletions")
    assert c1.question.count("[...]") == 2  # both {{c1::...}} are hidden on card 1
    assert '<span class="cloze" data-ordinal="1">Oxytocin</span>' in c1.answer
    assert '<span class="cloze" data-ordinal="1">oxytocin</span>' in c1.answer
    assert 'data-ordinal="2">[a peptide]</span>' in c2.question  # the hint replaces [...]
    assert '<span class="cloze" data-ordinal="2">vasopressin</span>' in c2.answer
    assert c3.question.count("[...]") == 1 and "hypothalamus" not in visible(c3.question)
    assert '<span class="cloze" data-ordinal="3">hypothalamus</span>' in c3.answer


def test_extra_and_source_are_on_the_back_only(view: LearnerView) -> None:
    for card in view.cards:
        assert "nd-extra" not in card.question and "nd-source" not in card.question
        assert f'<div class="nd-source">{SOURCE}' in card.answer
    with_extra = {"oxytocin-touch", "three-deletions"}
    for note_id in EXPECTED:
        for card in cards(view, note_id):
            assert ('<div class="nd-extra">' in card.answer) == (note_id in with_extra)
    (c1, *_) = cards(view, "three-deletions")
    assert '<div class="nd-extra">Both also act as hormones.</div>' in c1.answer


def test_markdown_renders_as_html(view: LearnerView) -> None:
    (card,) = cards(view, "markdown-renders")
    assert card.question == (
        '<div class="nd-prompt">What do <em>emphasis</em>, '
        "<strong>bold</strong> and <code>code</code> look like?</div>"
    )
    assert (
        '<ul>\n<li>a list item</li>\n<li><a href="https://example.org/">a link</a></li>\n' "</ul>"
    ) in card.answer


def test_html_typed_in_yaml_is_shown_as_text(view: LearnerView) -> None:
    (card,) = cards(view, "html-is-text")
    assert card.question == (
        '<div class="nd-prompt">&lt;script&gt;alert(1)&lt;/script&gt; '
        "&lt;b&gt;bold?&lt;/b&gt;</div>"
    )
    assert '<div class="nd-answer">&lt;img src=x onerror=alert(1)&gt;</div>' in card.answer
    assert "<script" not in card.answer and "<img" not in card.answer


def test_javascript_link_is_not_a_link(view: LearnerView) -> None:
    (card,) = cards(view, "javascript-link")
    assert card.question == (
        '<div class="nd-prompt">Where does [this link](javascript:alert(1)) ' "go?</div>"
    )
    assert "<a " not in card.question + card.answer and "href" not in card.answer


# --------------------------------------------------------------------------- the shipped deck


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A copy of cards/ (so the repository's lock is never touched) and its package."""
    if not (REPO / "cards" / "deck.yaml").is_file():
        pytest.skip("cards/deck.yaml does not exist yet: the shipped deck is being written")
    tmp = tmp_path_factory.mktemp("shipped")
    deck_dir = shutil.copytree(REPO / "cards", tmp / "cards")
    return deck_dir, tmp / "neurodeck.apkg"


def test_shipped_deck_imports_whole_and_every_card_renders(shipped, runner, tmp_path) -> None:
    """Pins that every note of the shipped deck reaches a learner, with every card it should
    have, a front and a back, and the source line on the back."""
    deck_dir, apkg = shipped
    result = runner.invoke(cli, ["build", str(deck_dir), "-o", str(apkg)])
    assert result.exit_code == 0, result.output
    checked = check(deck_dir)
    view = import_apkg(apkg, tmp_path)

    notes = {c.guid: c for c in checked.notes}
    assert view.log.counts() == {"new": len(notes), "updated": 0, "duplicate": 0, "conflicting": 0}
    assert set(view.notes) == set(notes)
    assert len(view.cards) == checked.card_count
    for note_guid_, compiled in notes.items():
        learner_cards = view.cards_of(note_guid_)
        assert [c.ord for c in learner_cards] == list(compiled.ordinals), compiled.note.id
        fields = view.notes[note_guid_].fields
        # A diagram (Anki's image-occlusion note type) carries its source line in Back Extra.
        found = re.search(r'<div class="nd-source">(.*?)</div>', fields.get("Back Extra", ""))
        source = fields["Source"] if "Source" in fields else found.group(1) if found else ""
        assert source, f"note {compiled.note.id!r} has no source line"
        for card in learner_cards:
            assert visible(card.question), compiled.note.id
            assert visible(card.answer) != visible(card.question), compiled.note.id
            assert f'<div class="nd-source">{source}</div>' in card.answer, compiled.note.id
            assert "nd-source" not in card.question
            assert "templates/errors.html" not in card.question + card.answer

"""Sources with a kind (article | literature), year and venue, as the learner sees them."""

from __future__ import annotations

import html
import re
import textwrap
from pathlib import Path

import pytest

from neurodeck.cli import cli
from neurodeck.compile import compile_notes
from neurodeck.ids import note_guid
from neurodeck.load import load_deck
from neurodeck.pipeline import build

CITED_DECK_YAML = """\
name: Test Deck
id: test
sources:
  intimacy:
    kind: article
    title: Neurobiological Foundations of Intimacy
  panksepp-1998:
    kind: literature
    author: Panksepp, J.
    year: 1998
    title: "Affective Neuroscience: The Foundations of Human and Animal Emotions"
    venue: Oxford University Press
"""

CITED_NOTES_YAML = """\
notes:
  - id: vasopressin-claim
    front: Which neuropeptide does the article link to pair bonding?
    back: Vasopressin
    source: intimacy
    section: Neural Pathways of Intimacy
  - id: panksepp-founder
    front: Who coined the term affective neuroscience?
    back: Jaak Panksepp
    source: panksepp-1998
"""

ARTICLE_LINE = (
    '<span class="source-kind">Article</span> · '
    "<cite>Neurobiological Foundations of Intimacy</cite> · "
    "Neural Pathways of Intimacy"
)
LITERATURE_LINE = (
    '<span class="source-kind">Literature</span> · Panksepp, J. (1998) · '
    "<cite>Affective Neuroscience: The Foundations of Human and Animal "
    "Emotions</cite> · Oxford University Press"
)


def write_deck(tmp_path: Path, deck_yaml: str = CITED_DECK_YAML) -> Path:
    deck_dir = tmp_path / "cards"
    deck_dir.mkdir(exist_ok=True)
    (deck_dir / "deck.yaml").write_text(deck_yaml, encoding="utf-8")
    (deck_dir / "notes.yaml").write_text(CITED_NOTES_YAML, encoding="utf-8")
    return deck_dir


def test_sources_keep_kind_year_and_venue(tmp_path):
    deck = load_deck(write_deck(tmp_path))
    book = deck.sources["panksepp-1998"]
    assert (book.kind, book.author, book.year, book.venue) == (
        "literature",
        "Panksepp, J.",
        "1998",
        "Oxford University Press",
    )
    assert deck.sources["intimacy"].kind == "article"
    assert deck.sources["intimacy"].year is None


def test_source_field_names_the_kind_then_the_citation(tmp_path):
    article, literature = compile_notes(load_deck(write_deck(tmp_path)))
    assert article.fields[3] == ARTICLE_LINE
    assert literature.fields[3] == LITERATURE_LINE


def test_learner_sees_whether_a_card_cites_the_article_or_the_literature(tmp_path):
    anki_helpers = pytest.importorskip("anki_helpers")
    built = build(write_deck(tmp_path), tmp_path / "t.apkg", clock=1_700_000_000)
    view = anki_helpers.import_apkg(built.path, tmp_path)

    def back_source(note_id: str) -> str:
        (card,) = view.cards_of(note_guid("test", note_id))
        match = re.search(r'<div class="nd-source">(.*?)</div>', card.answer)
        assert match, card.answer
        return " ".join(html.unescape(re.sub(r"<[^>]*>", " ", match.group(1))).split())

    assert back_source("vasopressin-claim") == (
        "Article · Neurobiological Foundations of Intimacy · Neural Pathways of Intimacy"
    )
    assert back_source("panksepp-founder") == (
        "Literature · Panksepp, J. (1998) · Affective Neuroscience: The Foundations of Human "
        "and Animal Emotions · Oxford University Press"
    )


@pytest.mark.parametrize(
    ("written", "problem", "hint", "fixed"),
    [
        (
            "kind: Literatur",
            "deck.yaml:5:11: error: source 'intimacy' has unknown kind 'Literatur'",
            "  hint: did you mean `kind: literature`?",
            "kind: literature",
        ),
        (
            "kind: blog",
            "deck.yaml:5:11: error: source 'intimacy' has unknown kind 'blog'",
            "  hint: write `kind: article` or `kind: literature` (one of the deck's own documents,"
            " or published work)",
            "kind: article",
        ),
        (
            "year: 'in press'",
            "deck.yaml:5:11: error: source 'intimacy' has year 'in press', " "not a year",
            "  hint: write the year of publication, e.g. `year: 1998`",
            "year: 1998",
        ),
    ],
)
def test_bad_kind_or_year_is_located_with_a_hint_that_works(
    runner, tmp_path, monkeypatch, written, problem, hint, fixed
):
    deck_yaml = CITED_DECK_YAML.replace("    kind: article", f"    {written}")
    deck_dir = write_deck(tmp_path, deck_yaml)
    monkeypatch.chdir(deck_dir)
    result = runner.invoke(cli, ["check", "."])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.splitlines()
    assert lines[:2] == [problem, hint]

    # Doing what the hint says makes the deck clean.
    (deck_dir / "deck.yaml").write_text(
        deck_yaml.replace(f"    {written}", f"    {fixed}"), encoding="utf-8"
    )
    result = runner.invoke(cli, ["check", ".", "--strict"])
    assert result.exit_code == 0, result.output + result.stderr


def test_a_source_with_only_a_title_is_shown_as_before(tmp_path):
    deck_yaml = textwrap.dedent("""\
        name: Test Deck
        id: test
        sources:
          intimacy: {title: Neurobiological Foundations of Intimacy}
          panksepp-1998: {title: Affective Neuroscience}
        """)
    article, _ = compile_notes(load_deck(write_deck(tmp_path, deck_yaml)))
    assert article.fields[3] == (
        "<cite>Neurobiological Foundations of Intimacy</cite> · " "Neural Pathways of Intimacy"
    )

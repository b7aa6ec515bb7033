"""Cards Anki would show blank or broken, and deck names Anki would change: `build` refuses them,
judging as Anki does (ankitext.py ports Anki's rules; these tests hold them against Anki)."""

from __future__ import annotations

import html
import os
import unicodedata
from pathlib import Path

import pytest
from anki.card_rendering_pb2 import StripHtmlRequest
from anki_helpers import LearnerCollection, import_apkg
from click.testing import CliRunner
from conftest import MakeDeck
from test_bad_input import PNG, assert_failed_without_damage, run_build

from neurodeck import ankitext, markup, pipeline
from neurodeck.cli import cli
from neurodeck.verify import verify_apkg


def build_ok(runner: CliRunner, deck_dir: Path, out: Path) -> Path:
    result = runner.invoke(cli, ["build", str(deck_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


# ------------------------------------------------------------------- empty fronts


FIELDS = [
    "&nbsp;",
    "***",
    "[](http://a)",
    "#",
    "- ",
    "1.",
    "```\n```",
    "> ",
    "\u200b",
    "![](images/brain.png)",
    "![diagram](brain.png) text",
    "a",
    "[x]",
    "<b></b>",
    "&amp;",
    "&#91;",
    " <!-- --> ",
]


@pytest.mark.parametrize("text", FIELDS)
def test_our_port_strips_html_exactly_as_anki_does(text: str, tmp_path: Path) -> None:
    """ankitext.strip_html_preserving_media_filenames is Anki's function of that name."""
    rendered = markup.render(text).html
    with LearnerCollection(tmp_path / "c") as learner:
        anki = learner.col._backend.strip_html(
            text=rendered, mode=StripHtmlRequest.PRESERVE_MEDIA_FILENAMES
        )
    assert ankitext.strip_html_preserving_media_filenames(rendered) == anki


@pytest.mark.parametrize(
    "html_text",
    [
        '<img src="brain.png">',
        "<img src='a b.png' alt=x>",
        "<img alt=x src=brain.png>",
        '<audio src="x.mp3"></audio>',
        "<hr><br><div></div>",
        "&nbsp;&lt;&gt;&#x41;",
        "<!--x-->y",
    ],
)
def test_our_port_handles_raw_html_as_anki_does(html_text: str, tmp_path: Path) -> None:
    with LearnerCollection(tmp_path / "c") as learner:
        anki = learner.col._backend.strip_html(
            text=html_text, mode=StripHtmlRequest.PRESERVE_MEDIA_FILENAMES
        )
    assert ankitext.strip_html_preserving_media_filenames(html_text) == anki


def test_an_image_only_front_builds_and_verify_does_not_call_it_empty(
    make_deck: MakeDeck, runner: CliRunner, tmp_path: Path
) -> None:
    """verify stripped every tag and reported an image-only front as empty; Anki shows it."""
    deck_dir = make_deck(
        {
            "fig.yaml": "notes:\n  - id: figure\n"
            "    front: '![](images/brain.png)'\n    back: The amygdala\n",
            "images/brain.png": PNG,
        }
    )
    out = build_ok(runner, deck_dir, tmp_path / "deck.apkg")
    (card,) = import_apkg(out, tmp_path / "learner").cards
    assert '<img src="brain.png"' in card.question
    verification = verify_apkg(out)
    assert verification.ok, verification.problems


def test_verify_still_reports_a_blank_front(tmp_path: Path) -> None:
    """A package built elsewhere with a front of `<hr />` only: verify says so."""
    import genanki

    model = genanki.Model(
        1,
        "B",
        fields=[{"name": "Front"}, {"name": "Back"}],
        templates=[{"name": "C", "qfmt": "{{Front}}", "afmt": "{{Back}}"}],
    )
    deck = genanki.Deck(2, "D")
    deck.add_note(genanki.Note(model, ["<hr />", "x"], guid="g"))
    out = tmp_path / "blank.apkg"
    genanki.Package(deck).write_to_file(out)
    (problem,) = verify_apkg(out).problems
    assert problem.message == "card 1 of note '' (guid g): the front is empty"


# ---------------------------------------------------------------- cloze in links


def test_the_cloze_hint_builds_and_anki_hides_the_link_text(
    make_deck: MakeDeck, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The corpus case cloze-in-link, fixed as its hint says, hides the words in Anki."""
    bad = "Read [the paper](https://example.org/{{c1::oxytocin}}) on touch."
    deck_dir = make_deck({"c.yaml": f"notes:\n  - id: c\n    type: cloze\n    text: '{bad}'\n"})
    result, _ = run_build(runner, deck_dir, tmp_path, monkeypatch)
    assert result.exit_code == 1
    assert "[{{c1::words}}](https://example.org)" in result.stderr
    fixed = "Read [{{c1::the oxytocin paper}}](https://example.org) on touch."
    (deck_dir / "c.yaml").write_text(
        f"notes:\n  - id: c\n    type: cloze\n    text: '{fixed}'\n", encoding="utf-8"
    )
    (card,) = import_apkg(
        build_ok(runner, deck_dir, tmp_path / "ok.apkg"), tmp_path / "learner"
    ).cards
    shown = ankitext.strip_html_preserving_media_filenames(card.question)
    assert "oxytocin" not in shown and "[...]" in shown
    assert "the oxytocin paper" in card.answer


# -------------------------------------------------------------------- Anki markers


MARKERS = (
    "Hear [sound:a.mp3], [anki:tts lang=en_US]say this[/anki:tts], [anki:play:q:0], "
    "[latex]x^2[/latex], [$]y[/$], [$$]z[/$$] and [[type:Back]]."
)


def test_anki_markers_typed_in_yaml_show_as_text_in_anki(
    make_deck: MakeDeck, runner: CliRunner, tmp_path: Path
) -> None:
    """[sound:…] made a broken play button, [anki:tts] speech, [latex] a missing image:
    typed in a fact set they are text, like HTML and {{Field}}."""
    deck_dir = make_deck(
        {
            "deck.yaml": "name: Test Deck\nid: test\n"
            "sources:\n  s: {title: 'On [sound:x.mp3]', author: '[anki:tts]'}\n",
            "m.yaml": f"source: s\nnotes:\n  - id: m\n    front: '{MARKERS}'\n"
            "    back: 'Answer, `[sound:b.mp3]` in code'\n"
            "    section: '[latex]s[/latex]'\n",
        }
    )
    out = build_ok(runner, deck_dir, tmp_path / "deck.apkg")
    with LearnerCollection(tmp_path / "learner") as learner:
        learner.import_apkg(out)
        card = learner.col.get_card(learner.col.find_cards("")[0])
        question, answer = card.question(), card.answer()
        assert card.question_av_tags() == [] and card.answer_av_tags() == []
        assert "<img" not in question + answer  # no LaTeX image
        assert "[[type:" not in question  # no answer box
    visible = html.unescape(question)
    assert MARKERS in visible
    assert "On [sound:x.mp3]" in html.unescape(answer)
    assert "<code>[sound:b.mp3]</code>" in html.unescape(answer)
    assert "[latex]s[/latex]" in html.unescape(answer)


def test_fields_on_the_fast_paths_show_in_anki_as_written(
    make_deck: MakeDeck, runner: CliRunner, tmp_path: Path
) -> None:
    """Signs, other scripts' letters, `& ` and code spans skip the Markdown parser; in Anki
    they show as the parser would show them: text as written, code in <code>."""
    front = "Did Bliss & Lømo see z = \u221218 mm, 50% of `evidence::established`?"
    assert markup.sentence_html(front) is not None  # else this tests the other path
    deck_dir = make_deck(
        {
            "deck.yaml": "name: Test Deck\nid: test\n",
            "f.yaml": f"notes:\n  - id: f\n    front: '{front}'\n    back: '*Yes*, `b & c`'\n",
        }
    )
    out = build_ok(runner, deck_dir, tmp_path / "deck.apkg")
    with LearnerCollection(tmp_path / "learner") as learner:
        learner.import_apkg(out)
        card = learner.col.get_card(learner.col.find_cards("")[0])
        question, answer = card.question(), card.answer()
    assert "<code>evidence::established</code>" in question
    assert "Bliss &amp; Lømo see z = \u221218 mm, 50% of" in question
    assert "<em>Yes</em>, <code>b &amp; c</code>" in answer
    assert html.unescape(markup.html_to_text(question)).count("Bliss & Lømo") == 1


# ------------------------------------------------------------------- deck names


def test_anki_renames_deck_names_on_import_as_ankitext_says(tmp_path: Path) -> None:
    """A package (made without neurodeck's checks) with the names neurodeck refuses, imported:
    Anki renames one of two names that differ in case or Unicode form, and trims spaces."""
    import genanki

    model = genanki.Model(
        1607392319,
        "B",
        fields=[{"name": "Front"}, {"name": "Back"}],
        templates=[{"name": "C", "qfmt": "{{Front}}", "afmt": "{{Back}}"}],
    )
    names = [
        "Root::Bio",
        "Root::bio",
        "Root::Café",
        unicodedata.normalize("NFD", "Root::Café"),
        "Root :: Brain Regions :: Amygdala ",
    ]
    decks = []
    for number, name in enumerate(names):
        deck = genanki.Deck(100 + number, name)
        deck.add_note(genanki.Note(model, [f"q{number}", "a"], guid=f"g{number}"))
        decks.append(deck)
    genanki.Package(decks).write_to_file(tmp_path / "names.apkg")
    view = import_apkg(tmp_path / "names.apkg", tmp_path / "learner")
    got = sorted(card.deck for card in view.cards)
    assert "Root::Brain Regions::Amygdala" in got
    assert [d for d in got if "Caf" in d] == ["Root::Café", "Root::Café_"]  # both composed
    assert [d for d in got if d.lower().startswith("root::bio")] in (
        ["Root::Bio", "Root::bio_"],
        ["Root::Bio_", "Root::bio"],
    )


def test_anki_matches_deck_names_as_ankitext_says(tmp_path: Path) -> None:
    """What Anki does with the names neurodeck refuses, in a real collection."""
    nfd = unicodedata.normalize("NFD", "Café")
    with LearnerCollection(tmp_path / "c") as learner:
        decks = learner.col.decks
        assert decks.id("Root::Bio") == decks.id("Root::bio")  # one deck, case ignored
        assert decks.id(f"Root::{nfd}") == decks.id("Root::Café")
        spaced = decks.id("Root :: Brain Regions :: Amygdala ")
        assert decks.name(spaced) == "Root::Brain Regions::Amygdala"
    assert ankitext.deck_name_key("bio") == ankitext.deck_name_key("Bio")
    assert ankitext.deck_name_component(nfd) == "Café"
    assert ankitext.deck_name_component(" Amygdala ") == "Amygdala"


@pytest.mark.parametrize(
    "first, second",
    [
        ("Bio", "bio"),
        ("Café", unicodedata.normalize("NFD", "Café")),
        ("Brain::Amygdala", "brain::Insula"),
    ],
)
def test_two_subdecks_anki_would_merge_are_refused(
    first: str,
    second: str,
    make_deck: MakeDeck,
    runner: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fact_set(subdeck: str, note_id: str) -> str:
        return f"deck: {subdeck}\nnotes:\n  - id: {note_id}\n    front: Q?\n    back: A\n"

    deck_dir = make_deck({"a.yaml": fact_set(first, "a"), "b.yaml": fact_set(second, "b")})
    result, out = run_build(runner, deck_dir, tmp_path, monkeypatch)
    lines = assert_failed_without_damage(result, out, deck_dir)
    if unicodedata.normalize("NFC", second) != second:  # also a name Anki would not keep
        assert lines == [
            f"b.yaml:1:7: error: subdeck {second!r} (the `deck:` of this file) is not a name "
            f"Anki keeps: Anki would store it as {first!r}",
            "  hint: type the accented letters again (Anki composes them, NFC) or save the "
            "file as NFC",
        ]
    else:
        shown = second.split("::")[0]
        assert lines == [
            f"b.yaml:1:7: error: subdeck {shown!r} differs from {first.split('::')[0]!r} only "
            "in case or Unicode form, which Anki takes for the same name: it would rename one "
            "of them on import (adding `_`)",
            f"  hint: spell it {first.split('::')[0]!r} as at a.yaml:3:5, or give it another "
            "name",
        ]
    # The hint, applied, builds.
    (deck_dir / "b.yaml").write_text(
        fact_set(first.split("::")[0] + "::Other", "b"), encoding="utf-8"
    )
    assert runner.invoke(cli, ["build", ".", "-o", str(out)]).exit_code == 0


def test_the_subdeck_hint_builds_the_deck_anki_keeps(
    make_deck: MakeDeck, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spaced = (Path(__file__).parent / "bad" / "subdeck-spaces.yaml").read_text(encoding="utf-8")
    deck_dir = make_deck({"bad.yaml": spaced})
    result, _ = run_build(runner, deck_dir, tmp_path, monkeypatch)
    assert "hint: write `deck: Brain Regions::Amygdala`" in result.stderr
    (deck_dir / "bad.yaml").write_text(
        spaced.replace('deck: "Brain Regions :: Amygdala "', "deck: Brain Regions::Amygdala"),
        encoding="utf-8",
    )
    out = build_ok(runner, deck_dir, tmp_path / "ok.apkg")
    (card,) = import_apkg(out, tmp_path / "learner").cards
    assert card.deck == "Test Deck::Brain Regions::Amygdala"


def test_a_deck_name_anki_would_change_is_refused(
    make_deck: MakeDeck, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deck_dir = make_deck(
        {
            "deck.yaml": "name: 'Psych :: Neuro'\nid: test\n",
            "a.yaml": "notes:\n  - {id: a, front: Q?, back: A}\n",
        }
    )
    result, out = run_build(runner, deck_dir, tmp_path, monkeypatch)
    assert assert_failed_without_damage(result, out, deck_dir) == [
        "deck.yaml:1:1: error: deck name 'Psych :: Neuro' is not a name Anki keeps: Anki would "
        "store it as 'Psych::Neuro'",
        "  hint: write `name: Psych::Neuro`",
    ]
    (deck_dir / "deck.yaml").write_text("name: Psych::Neuro\nid: test\n", encoding="utf-8")
    assert runner.invoke(cli, ["build", ".", "-o", str(out)]).exit_code == 0


# ---------------------------------------------------------------------- media size


def test_a_media_file_over_the_limit_is_a_located_error(
    make_deck: MakeDeck, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 2.2 GB image gave zipfile's RuntimeError ("File size too large") after a long wait.

    The file is sparse: it takes no disk space and is never read.
    """
    deck_dir = make_deck(
        {
            "fig.yaml": "notes:\n  - id: figure\n"
            "    front: 'Where? ![d](images/huge.png)'\n    back: Here\n"
        }
    )
    (deck_dir / "images").mkdir()
    huge = deck_dir / "images" / "huge.png"
    with huge.open("wb") as sparse:
        sparse.truncate(2_200_000_000)
    result, out = run_build(runner, deck_dir, tmp_path, monkeypatch)
    assert assert_failed_without_damage(result, out, deck_dir) == [
        "fig.yaml:2:5: error: image 'images/huge.png' in note 'figure' is 2,200,000,000 bytes; "
        "a media file may be at most 100 MiB (104,857,600 bytes)",
        "  hint: make the image smaller: Anki does not sync larger media files, and a card "
        "image rarely needs more than 1 MB",
    ]
    # Exactly at the limit is fine.
    os.truncate(huge, pipeline.MAX_MEDIA_BYTES)
    assert runner.invoke(cli, ["build", ".", "-o", str(out)]).exit_code == 0

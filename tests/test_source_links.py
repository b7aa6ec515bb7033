"""deck.yaml `source_link`: each card's back links to its note in the fact set, at the release.

The link is generated into the Source field's HTML, never a field learners edit, and it is
left out of the content hash: a note that only moved (a note inserted above it, a new
version in the tag) is not an edit, so learners' "My notes" survive such releases.
"""

from __future__ import annotations

import html.parser
import json
from pathlib import Path

import pytest
from anki_helpers import LearnerCollection
from apkg_contents import read_apkg
from click.testing import CliRunner
from conftest import DECK_YAML, PEPTIDES_YAML, MakeDeck

from neurodeck import ids, pipeline
from neurodeck.cli import cli
from neurodeck.errors import NeurodeckError
from neurodeck.load import load_deck
from neurodeck.source_links import file_url, origin_html, without_origin

GITHUB = """\
source_link:
  repository: https://github.com/example/psych-deck
  path: cards
"""
T1, T2 = 1_700_000_000, 1_800_000_000


def linked_deck(make_deck: MakeDeck, link: str = GITHUB, **files: str) -> Path:
    return make_deck({"deck.yaml": DECK_YAML + link, "peptides.yaml": PEPTIDES_YAML, **files})


def guid(note_id: str) -> str:
    return ids.note_guid("test", note_id)


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "a":
            self.links.append(dict(attrs))


def links_in(card_html: str) -> _Links:
    parser = _Links()
    parser.feed(card_html)
    return parser


# --- Addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        (GITHUB, "https://github.com/example/psych-deck/blob/v1.0.0/cards/peptides.yaml#L5"),
        (
            "source_link:\n  repository: https://gitlab.com/group/sub/deck/\n",
            "https://gitlab.com/group/sub/deck/-/blob/v1.0.0/peptides.yaml#L5",
        ),
        (
            "source_link:\n  repository: https://git.example.edu/t/deck\n  forge: gitlab\n"
            "  ref: release-{version}\n",
            "https://git.example.edu/t/deck/-/blob/release-1.0.0/peptides.yaml#L5",
        ),
        (
            "source_link:\n  repository: https://github.com/o/r\n  ref: main\n  path: /decks/a/\n",
            "https://github.com/o/r/blob/main/decks/a/peptides.yaml#L5",
        ),
    ],
)
def test_github_and_gitlab_addresses_with_line_anchor(
    make_deck: MakeDeck, link: str, expected: str
) -> None:
    deck = load_deck(linked_deck(make_deck, link))
    assert deck.source_link is not None
    assert file_url(deck, deck.source_link, "peptides.yaml", 5) == expected


def test_odd_file_names_are_quoted_and_escaped(make_deck: MakeDeck) -> None:
    deck = load_deck(linked_deck(make_deck))
    link = origin_html(deck, 'week 1/"<b>x</b>&.yaml', 3)
    parsed = links_in(link)
    assert parsed.tags == ["a"]  # no <b> got in
    assert parsed.links[0]["href"] == (
        "https://github.com/example/psych-deck/blob/v1.0.0/"
        "cards/week%201/%22%3Cb%3Ex%3C/b%3E%26.yaml#L3"
    )
    assert without_origin("<cite>T</cite> · " + link) == "<cite>T</cite>"
    sound = origin_html(deck, "[sound:x.mp3].yaml", 3)
    assert "[sound:" not in sound and ">&#91;sound:x.mp3].yaml:3</a>" in sound


# --- check ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("link", "message", "fixed"),
    [
        (
            "source_link:\n  repository: javascript:alert(1)//github.com/a/b\n",
            "is not a repository address",
            "source_link:\n  repository: https://github.com/a/b\n",
        ),
        (
            'source_link:\n  repository: https://github.com/a/b"onmouseover="x\n',
            "is not a repository address",
            "source_link:\n  repository: https://github.com/a/b\n",
        ),
        (
            "source_link:\n  repository: https://git.example.edu/t/deck\n",
            "cannot tell how",
            "source_link:\n  repository: https://git.example.edu/t/deck\n" "  forge: gitlab\n",
        ),
        (
            "source_link:\n  repository: https://git.example.edu/t/deck\n  forge: gitea\n",
            "unknown `forge` 'gitea'",
            "source_link:\n  repository: https://git.example.edu/t/deck\n  forge: gitlab\n",
        ),
        (
            'source_link:\n  repository: https://github.com/a/b\n  ref: "v{version"\n',
            "has a stray brace",
            "source_link:\n  repository: https://github.com/a/b\n",
        ),
        (
            "source_link:\n  repository: https://github.com/a/b\n  ref: v {version}\n",
            "without spaces",
            "source_link:\n  repository: https://github.com/a/b\n",
        ),
        (
            "source_link:\n  repository: https://github.com/a/b\n  path: ../elsewhere\n",
            "not a folder inside",
            "source_link:\n  repository: https://github.com/a/b\n" "  path: cards\n",
        ),
        (
            "source_link:\n  repositry: https://github.com/a/b\n",
            "unknown key 'repositry'",
            "source_link:\n  repository: https://github.com/a/b\n",
        ),
    ],
)
def test_check_refuses_a_bad_source_link_and_the_hinted_fix_passes(
    make_deck: MakeDeck, link: str, message: str, fixed: str
) -> None:
    deck_dir = linked_deck(make_deck, link)
    with pytest.raises(NeurodeckError) as caught:
        pipeline.check(deck_dir)
    problem = next(p for p in caught.value.problems if message in p.message)
    assert problem.location.path.endswith("deck.yaml") and problem.location.line > 0
    assert problem.hint
    (deck_dir / "deck.yaml").write_text(DECK_YAML + fixed, encoding="utf-8")
    pipeline.check(deck_dir)


def test_version_placeholder_needs_a_version(make_deck: MakeDeck) -> None:
    deck_yaml = DECK_YAML.replace("version: 1.0.0\n", "") + GITHUB
    deck_dir = make_deck({"deck.yaml": deck_yaml, "peptides.yaml": PEPTIDES_YAML})
    with pytest.raises(NeurodeckError) as caught:
        pipeline.check(deck_dir)
    assert "has no `version`" in caught.value.problems[0].message
    (deck_dir / "deck.yaml").write_text(
        deck_yaml.replace("id: test\n", "id: test\n" "version: 1.0.0\n"), encoding="utf-8"
    )
    pipeline.check(deck_dir)


# --- In Anki --------------------------------------------------------------------------------


def test_anki_shows_the_link_on_the_back_only(make_deck: MakeDeck, tmp_path: Path) -> None:
    deck_dir = linked_deck(make_deck)
    built = pipeline.build(deck_dir, tmp_path / "v1.apkg", clock=T1)
    with LearnerCollection(tmp_path / "learner") as col:
        col.import_apkg(built.path)
        view = col.view()
    cards = view.cards_of(guid("oxytocin-touch"))
    assert len(cards) == 1
    assert "nd-origin" not in cards[0].question
    back = links_in(cards[0].answer)
    origin = [a for a in back.links if a.get("class") == "nd-origin"]
    assert [a["href"] for a in origin] == [
        "https://github.com/example/psych-deck/blob/v1.0.0/cards/peptides.yaml#L5"
    ]
    assert 'class="nd-source"' in cards[0].answer  # in the small print
    assert ">peptides.yaml:5</a>" in cards[0].answer
    # Every card of every note carries it, on the back.
    assert all("nd-origin" in c.answer and "nd-origin" not in c.question for c in view.cards)
    # Never in a field learners edit.
    assert all(n.fields["My notes"] == "" for n in view.notes.values())
    assert all(
        "nd-origin" not in v
        for n in view.notes.values()
        for k, v in n.fields.items()
        if k != "Source"
    )


def test_anki_shows_a_hostile_file_name_as_text(make_deck: MakeDeck, tmp_path: Path) -> None:
    name = 'x"><img src=x onerror=alert(1)>.yaml'
    deck_dir = linked_deck(make_deck)
    (deck_dir / "peptides.yaml").rename(deck_dir / name)
    built = pipeline.build(deck_dir, tmp_path / "v1.apkg", clock=T1)
    with LearnerCollection(tmp_path / "learner") as col:
        col.import_apkg(built.path)
        card = col.view().cards_of(guid("oxytocin-touch"))[0]
    parsed = links_in(card.answer)
    assert "img" not in parsed.tags
    hrefs = [a["href"] for a in parsed.links if a.get("class") == "nd-origin"]
    assert hrefs == [
        "https://github.com/example/psych-deck/blob/v1.0.0/cards/"
        "x%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.yaml#L5"
    ]


def test_no_link_without_source_link(sample_deck: Path, tmp_path: Path) -> None:
    built = pipeline.build(sample_deck, tmp_path / "v1.apkg", clock=T1)
    with LearnerCollection(tmp_path / "learner") as col:
        col.import_apkg(built.path)
        assert not any("nd-origin" in c.answer for c in col.view().cards)


def test_a_deck_named_through_a_symlink_and_dotdot_builds_with_its_links(
    make_deck: MakeDeck, runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`link/../cards` is the OS's path, not the text's: temp files and the lock went to a
    `cards` beside `link`, and the build failed ("cannot write the lock file")."""
    deck_dir = linked_deck(make_deck)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "sub").mkdir(parents=True)
    (elsewhere / "link").symlink_to(tmp_path / "sub", target_is_directory=True)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(elsewhere)
    result = runner.invoke(cli, ["build", "link/../cards", "-o", "link/../deck.apkg"])
    assert result.exit_code == 0, result.output
    assert (deck_dir / "neurodeck.lock").is_file() and not list(elsewhere.glob("cards"))
    fields = next(iter(read_apkg(tmp_path / "deck.apkg").notes.values())).fields
    assert 'psych-deck/blob/v1.0.0/cards/peptides.yaml#L5">peptides.yaml:5</a>' in "".join(fields)


# --- A moved line is no edit ----------------------------------------------------------------

NEW_NOTE_ON_TOP = """\
notes:
  - id: dopamine-reward
    front: Which neurotransmitter signals reward prediction?
    back: Dopamine
"""


def test_a_note_that_only_moved_keeps_its_time_and_the_learners_notes(
    make_deck: MakeDeck, tmp_path: Path, runner
) -> None:
    """Insert a note above and raise the version: every link changes, no note is edited.

    The learner keeps release 1's link, which still shows their text at release 1's tag.
    """
    deck_dir = linked_deck(make_deck)
    v1 = pipeline.build(deck_dir, tmp_path / "v1.apkg", clock=T1).path
    lock_text_v1 = (deck_dir / "neurodeck.lock").read_text(encoding="utf-8")

    text = (deck_dir / "peptides.yaml").read_text(encoding="utf-8")
    (deck_dir / "peptides.yaml").write_text(
        text.replace("notes:\n", NEW_NOTE_ON_TOP, 1), encoding="utf-8"
    )
    (deck_dir / "deck.yaml").write_text(
        (DECK_YAML + GITHUB).replace("version: 1.0.0", "version: 1.1.0"), encoding="utf-8"
    )
    built = pipeline.build(deck_dir, tmp_path / "v2.apkg", clock=T2)
    assert built.lock_changes == ["1 note added"], built.lock_changes
    lock_text_v2 = (deck_dir / "neurodeck.lock").read_text(encoding="utf-8")
    old_lines = {line for line in lock_text_v1.splitlines() if "oxytocin-touch" in line}
    assert old_lines and old_lines <= set(lock_text_v2.splitlines())  # same hash, same time

    # diff and release-check see one added note and nothing else.
    result = runner.invoke(cli, ["diff", str(v1), str(built.path), "--format", "json"])
    assert result.exit_code == 0, result.output
    changes = json.loads(result.output)
    assert [n["guid"] for n in changes["added"]] == [guid("dopamine-reward")]
    assert changes["changed"] == [] and changes["removed"] == []
    assert runner.invoke(cli, ["release-check", str(v1), str(built.path)]).exit_code == 0

    with LearnerCollection(tmp_path / "learner") as col:
        col.import_apkg(v1)
        col.answer_all(ease=4)
        note = col.note(guid("oxytocin-touch"))
        note["My notes"] = "Touch → oxytocin: remember the hug study."
        col.col.update_note(note)
        log = col.import_apkg(built.path)
        view = col.view()
    assert log.counts()["new"] == 1
    oxytocin = view.notes[guid("oxytocin-touch")]
    assert oxytocin.fields["My notes"] == "Touch → oxytocin: remember the hug study."
    card = view.cards_of(guid("oxytocin-touch"))[0]
    assert "/blob/v1.0.0/cards/peptides.yaml#L5" in card.answer  # release 1's line, still true
    newcomer = view.cards_of(guid("dopamine-reward"))[0]
    assert "/blob/v1.1.0/cards/peptides.yaml#L5" in newcomer.answer


def test_an_edit_brings_the_new_link_with_it(make_deck: MakeDeck, tmp_path: Path) -> None:
    deck_dir = linked_deck(make_deck)
    v1 = pipeline.build(deck_dir, tmp_path / "v1.apkg", clock=T1).path
    text = (deck_dir / "peptides.yaml").read_text(encoding="utf-8")
    text = text.replace("notes:\n", NEW_NOTE_ON_TOP, 1).replace(
        "back: Oxytocin\n", "back: Oxytocin (from the hypothalamus)\n"
    )
    (deck_dir / "peptides.yaml").write_text(text, encoding="utf-8")
    (deck_dir / "deck.yaml").write_text(
        (DECK_YAML + GITHUB).replace("version: 1.0.0", "version: 1.1.0"), encoding="utf-8"
    )
    v2 = pipeline.build(deck_dir, tmp_path / "v2.apkg", clock=T2).path
    with LearnerCollection(tmp_path / "learner") as col:
        col.import_apkg(v1)
        col.import_apkg(v2)
        card = col.view().cards_of(guid("oxytocin-touch"))[0]
    assert "hypothalamus" in card.answer
    assert "/blob/v1.1.0/cards/peptides.yaml#L8" in card.answer


def test_a_diagrams_cards_carry_the_link_too(make_deck: MakeDeck, tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    deck_dir = make_deck(
        {
            "deck.yaml": DECK_YAML + GITHUB,
            "diagrams.yaml": """\
        source: intimacy
        notes:
          - id: midsagittal
            type: occlusion
            image: media/midsagittal.png
            occlusions:
              - {id: acc, answer: Anterior cingulate cortex, ellipse: [0.2, 0.38, 0.1, 0.08]}
              - {id: vta, answer: Ventral tegmental area, rect: [0.48, 0.62, 0.05, 0.06]}
        """,
            "media/midsagittal.png": (root / "cards/media/midsagittal.png").read_bytes(),
        }
    )
    v1 = pipeline.build(deck_dir, tmp_path / "v1.apkg", clock=T1)
    text = (deck_dir / "diagrams.yaml").read_text(encoding="utf-8")
    (deck_dir / "diagrams.yaml").write_text(
        "# A comment moves every line.\n" + text, encoding="utf-8"
    )
    v2 = pipeline.build(deck_dir, tmp_path / "v2.apkg", clock=T2)
    assert v2.lock_changes == []  # the link moved; the note did not change
    with LearnerCollection(tmp_path / "learner") as col:
        col.import_apkg(v1.path)
        cards = col.view().cards_of(guid("midsagittal"))
    assert len(cards) == 2
    for card in cards:
        origin = [a for a in links_in(card.answer).links if a.get("class") == "nd-origin"]
        assert [a["href"] for a in origin] == [
            "https://github.com/example/psych-deck/blob/v1.0.0/cards/diagrams.yaml#L3"
        ]
        assert "nd-origin" not in card.question

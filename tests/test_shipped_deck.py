"""The deck we ship: structural rules a careful educator holds every note to."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from neurodeck import pipeline
from neurodeck.cli import cli
from neurodeck.markup import plain_text

CARDS = Path(__file__).resolve().parent.parent / "cards"
SEEDS = Path(__file__).resolve().parent.parent.parent / "shared" / "seeds"
REFERENCES = SEEDS.parent / "references.md"
EVIDENCE_TAGS = {"evidence::established", "evidence::contested", "evidence::speculative"}


@pytest.fixture(scope="module")
def checked() -> pipeline.Checked:
    return pipeline.check(CARDS, strict=True)


def test_shipped_deck_is_clean_under_strict_check(checked):
    assert checked.warnings == []
    assert len(checked.notes) >= 60


def test_every_note_cites_a_source_of_a_known_kind(checked):
    for compiled in checked.notes:
        note = compiled.note
        assert note.source in checked.deck.sources, note.id
        assert checked.deck.sources[note.source].kind in ("article", "literature"), note.id


def test_only_article_notes_name_a_section(checked):
    """A section is a heading of one of the two articles; literature is cited whole."""
    for compiled in checked.notes:
        note = compiled.note
        if checked.deck.sources[note.source].kind == "literature":
            assert note.section is None, note.id


def _seed_text_by_source(checked) -> dict[str, str]:
    """Each article source's text: the seed document that contains its title."""
    seeds = [p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))]
    found = {}
    for source in checked.deck.sources.values():
        if source.kind == "article":
            (text,) = [t for t in seeds if source.title in t]
            found[source.id] = text
    return found


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the source documents are in ../shared/seeds")
def test_sections_are_headings_of_the_cited_article(checked):
    texts = _seed_text_by_source(checked)
    for compiled in checked.notes:
        note = compiled.note
        if note.section is not None:
            # A heading stands on a line of its own (the article may end it with a colon).
            lines = {line.strip().rstrip(":") for line in texts[note.source].splitlines()}
            assert note.section in lines, (note.id, note.section)


def _reference_lines() -> list[str]:
    """references.md entries, Markdown emphasis removed, so that a citation can be matched."""
    text = REFERENCES.read_text(encoding="utf-8")
    return [line[2:].replace("*", "") for line in text.splitlines() if line.startswith("- ")]


@pytest.mark.skipif(
    not REFERENCES.is_file(), reason="the list of citable literature is ../shared/references.md"
)
def test_literature_is_cited_exactly_as_in_references(checked):
    entries = _reference_lines()
    literature = [s for s in checked.deck.sources.values() if s.kind == "literature"]
    assert len(literature) >= 20
    for source in literature:
        citation = f"{source.author} ({source.year}). {source.title}"
        matches = [e for e in entries if citation in e]
        assert len(matches) == 1, (source.id, citation)
        ends = "" if source.title.endswith("?") else "."  # a question is its own full stop
        assert f"{source.title}{ends} {source.venue}" in matches[0], (source.id, source.venue)


_IN_TEXT_CITATION = re.compile(
    r"\b([A-Z][\w'-]+)(?: et al\.| and (?:colleagues|[A-Z][\w'-]+))?(?:'s|')?,? \(?(\d{4})\)?"
)


@pytest.mark.skipif(
    not REFERENCES.is_file(), reason="the list of citable literature is ../shared/references.md"
)
def test_works_named_in_card_text_are_in_references(checked):
    """`(Hickok, 2009)` or `Bliss and Lømo (1973)` on a card names a listed work too."""
    entries = _reference_lines()
    named = 0
    for compiled in checked.notes:
        for text in compiled.note.fields.values():
            for name, year in _IN_TEXT_CITATION.findall(text.replace("*", "")):
                named += 1
                assert any(name in e and f"({year})" in e for e in entries), (
                    compiled.note.id,
                    name,
                    year,
                )
    assert named >= 20


def test_in_text_citation_pattern():
    found = _IN_TEXT_CITATION.findall
    assert found("disputed (Hickok, 2009).") == [("Hickok", "2009")]
    assert found("Bliss and Lømo (1973) and Kral et al., 2022") == [
        ("Bliss", "1973"),
        ("Kral", "2022"),
    ]
    assert found("Nave, Camerer and McCullough's 2015 review") == [("Camerer", "2015")]
    assert found("in the late 1980s, around 1979") == []


def test_every_cited_source_is_used(checked):
    cited = {c.note.source for c in checked.notes}
    assert set(checked.deck.sources) == cited


def test_every_note_has_exactly_one_evidence_tag(checked):
    for compiled in checked.notes:
        tags = {t.name for t in compiled.note.tags if t.name.startswith("evidence::")}
        assert len(tags) == 1 and tags <= EVIDENCE_TAGS, (compiled.note.id, tags)


def test_contested_and_speculative_notes_say_why(checked):
    for compiled in checked.notes:
        note = compiled.note
        tags = {t.name for t in note.tags}
        if tags & {"evidence::contested", "evidence::speculative"}:
            assert note.fields.get("extra", "").strip(), note.id


def _listed_items(answer: str) -> int:
    """How many items an answer lists as `a, b and c`: short phrases after each comma.

    Parenthesised asides are left out; a clause after a comma that runs on, or that starts
    with a word such as `whether`, is prose rather than a list item.
    """
    text = re.sub(r"\([^)]*\)", "", answer.replace("*", ""))
    most = 1
    for clause in re.split(r"[;:.] ", text):
        parts = clause.split(",")
        if len(parts) < 2 or any(len(p.split()) > 4 for p in parts[1:]):
            continue
        last = parts[-1].strip()
        joins = re.search(r"\s(?:and|or)\s", last) is not None and not re.match(
            r"(?:whether|both|either|such as|including)\b", last
        )
        most = max(most, len(parts) + joins)
    return most


def test_listed_items_counts_only_short_comma_lists():
    assert _listed_items("Safety and support") == 1
    assert _listed_items("Trust, empathy and connection") == 3
    assert _listed_items("Social cues, empathy, emotional regulation") == 3
    assert _listed_items("Help with emotional, behavioural and psychological difficulties") == 3
    assert _listed_items("Animal experiments (stimulation, lesions and drugs)") == 1
    assert _listed_items("About r = .28, a moderate link") == 2
    assert _listed_items("Linking parts of a system that stay distinct, whether X or Y") == 2
    assert _listed_items("Distinct patterns, even within regions that both activate") == 1


def test_no_answer_lists_three_or_more_items(checked):
    """A set is hard to remember as one answer: split it, or make a cloze per item."""
    for compiled in checked.notes:
        note = compiled.note
        if note.kind in ("basic", "reversed") and not note.retired:
            assert _listed_items(note.fields["back"]) < 3, (note.id, note.fields["back"])


def test_abbreviations_are_asked_one_way(checked):
    """Full name -> initials is trivial: an abbreviation is never the front of a reversed note."""
    for compiled in checked.notes:
        note = compiled.note
        if note.kind == "reversed" and not note.retired:
            front = plain_text(note.fields["front"])
            assert not re.fullmatch(r"[a-zA-Z]?[A-Z]{2,}", front), note.id


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
    assert set(checked.subdecks) >= {
        "Affective Neuroscience",
        "Interpersonal Neurobiology",
        "Psychotherapy",
        "Brain Regions",
        "Neuropeptides",
        "Mirror Neurons",
    }


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the source documents are in ../shared/seeds")
def test_cards_paraphrase_rather_than_copy_the_sources(checked):
    """No run of eight words in a card is copied from the source documents."""
    source_words = " ".join(plain_text(p.read_text(encoding="utf-8")) for p in SEEDS.glob("*.txt"))
    for compiled in checked.notes:
        for text in compiled.note.fields.values():
            words = plain_text(text).split()
            for i in range(len(words) - 7):
                run = " ".join(words[i : i + 8])
                assert f" {run} " not in f" {source_words} ", (compiled.note.id, run)


def test_lock_is_committed_and_current(runner, tmp_path):
    """CI's `build --frozen`: the committed lock matches the cards."""
    deck_dir = shutil.copytree(CARDS, tmp_path / "cards")
    result = runner.invoke(
        cli, ["build", str(deck_dir), "-o", str(tmp_path / "n.apkg"), "--frozen", "--strict"]
    )
    assert result.exit_code == 0, result.output


def test_fact_sets_are_in_the_order_anki_shows_their_subdecks(checked):
    """Anki lists subdecks alphabetically; the curriculum (file order) must agree."""
    order = list(dict.fromkeys(c.note.subdeck for c in checked.notes))
    assert order == sorted(order, key=lambda name: [p.casefold() for p in name.split("::")])


def test_a_learner_meets_new_cards_in_curriculum_order(checked, tmp_path):
    """Studying the whole deck with Anki's default options follows the files' order."""
    anki_helpers = pytest.importorskip("anki_helpers")
    from anki.decks import DeckId

    built = pipeline.build(CARDS, tmp_path / "deck.apkg", clock=1_700_000_000, frozen=True)
    position = {c.guid: i for i, c in enumerate(checked.notes)}
    seen: list[int] = []
    with anki_helpers.LearnerCollection(tmp_path / "learner") as learner:
        learner.import_apkg(built.path)
        col = learner.col
        learner._lift_daily_limits()  # only the daily count, not the order
        col.decks.select(DeckId(col.decks.id_for_name(checked.deck.name)))
        shown: set[int] = set()
        while (card := col.sched.getCard()) is not None and card.id not in shown:
            shown.add(card.id)
            if card.type == 0:  # a new card, met for the first time
                guid = col.get_note(card.nid).guid
                if position[guid] not in seen:
                    seen.append(position[guid])
            card.start_timer()
            col.sched.answerCard(card, 3)
    assert len(seen) == len(checked.notes)
    assert seen == sorted(seen)


def test_changelog_covers_this_version_and_every_retired_note(checked):
    changelog = (CARDS / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"to {checked.deck.version}\n" in changelog
    for compiled in checked.notes:
        if compiled.note.retired:
            assert f"- `{compiled.note.id}`" in changelog, compiled.note.id


RELEASE_1_0_0 = "e6fc4ff065e04b2d3a16de8b45bcfb3d69af147a"  # main when 1.0.0 was the shipped deck


def _cards_at(commit: str, into: Path) -> Path | None:
    """The deck directory as committed at `commit`, or None without git or that history."""
    repo = CARDS.parent
    git = shutil.which("git")
    if git is None:
        return None
    listed = subprocess.run(
        [git, "-C", str(repo), "ls-tree", "--name-only", commit, "cards/"],
        capture_output=True,
        text=True,
        check=False,
    )
    if listed.returncode != 0:
        return None
    into.mkdir(parents=True)
    for name in listed.stdout.split():
        blob = subprocess.run(
            [git, "-C", str(repo), "show", f"{commit}:{name}"], capture_output=True, check=True
        ).stdout
        (into / Path(name).name).write_bytes(blob)
    return into


def test_learners_of_1_0_0_keep_their_history_and_get_every_change(checked, tmp_path):
    """Study all of 1.0.0, import this release: updates land, nothing is duplicated or lost."""
    anki_helpers = pytest.importorskip("anki_helpers")
    old_cards = _cards_at(RELEASE_1_0_0, tmp_path / "v1.0.0")
    if old_cards is None:
        pytest.skip("needs git and the repository's history (1.0.0's cards)")
    # Not frozen: 1.0.0's lock predates note types named after the deck, so this code
    # (which names them so) refreshes the note types' entries; the notes' are unchanged.
    old = pipeline.build(old_cards, tmp_path / "old.apkg", clock=1_700_000_000)
    new = pipeline.build(CARDS, tmp_path / "new.apkg", clock=1_700_000_000, frozen=True)
    with anki_helpers.LearnerCollection(tmp_path / "learner") as learner:
        learner.import_apkg(old.path)
        studied = learner.answer_all(3)
        history = learner.review_logs()
        log = learner.import_apkg(new.path)
        view = learner.view()
        assert log.counts() == {
            "new": len(checked.notes) - 73,
            "updated": 73,
            "duplicate": 0,
            "conflicting": 0,
        }
        assert learner.review_logs() == history and len(history) == studied
        retired = {c.guid for c in checked.notes if c.note.retired}
        assert {g for g, note in view.notes.items() if "retired" in note.tags} == retired

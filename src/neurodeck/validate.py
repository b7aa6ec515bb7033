"""Content rules: deck.yaml's, each note's, and the deck-wide ones the pipeline applies as
notes go by (subdeck names; duplicate ids, with locations packed small). Every check returns
its problems; none raises."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

from .ankitext import deck_name_component, deck_name_key, shows_nothing
from .errors import Location, Problem
from .markup import HTML_TAG_RE, WORD_RE, literal_text_mistakes, plain_text, render
from .model import SLUG_RE, SOURCE_KINDS, Deck, Note, Source
from .notetypes import CLOZE_RE
from .occlusion import check_diagram
from .source_links import check_source_link

# Anki stores a card's number in 16 bits and refuses a package with a larger one; no real
# note needs more than a few hundred deletions. Longer numbers are not deletions at all, so
# no later stage ever turns them into a card number.
MAX_CLOZE = 999
_CLOZE_START_RE = re.compile(r"\{\{\s*c\d*\s*:", re.IGNORECASE)
_CLOZE_TOO_HIGH_RE = re.compile(r"\{\{c0*[1-9][0-9]{3,}::")
# Markdown that can hide a deletion from Anki: a link's address or title, an image's
# description (each ends up inside an HTML attribute), a reference definition.
_LINK_MARKS = ("](", "<", "]:")
_TAG_PART_RE = re.compile(r"[^\s\"]+")


class SubdeckNames:
    """Checks each fact set's subdeck as Anki will store it, once per file (shown at `deck:`).

    Anki trims spaces and colons around each part of a deck name and composes accents (NFC),
    and it matches deck names ignoring case: importing `Bio` and `bio` gives `Bio_` and `bio`.
    """

    def __init__(self) -> None:
        self._first: dict[tuple[str, ...], tuple[str, Location]] = {}

    def check(self, subdeck: str, where: Location) -> list[Problem]:
        """A problem when Anki would rename this subdeck or merge it with an earlier one."""
        if not subdeck or _has_empty_part(subdeck):
            return []  # check_note reports an empty part
        parts = subdeck.split("::")
        kept = "::".join(deck_name_component(part) for part in parts)
        if kept != subdeck:
            composed = unicodedata.normalize("NFC", subdeck) != subdeck
            return [
                Problem(
                    where,
                    f"subdeck {subdeck!r} (the `deck:` of this file) is not a name Anki "
                    f"keeps: Anki would store it as {kept!r}",
                    hint="type the accented letters again (Anki composes them, NFC) or save the "
                    "file as NFC"
                    if composed and kept == unicodedata.normalize("NFC", subdeck)
                    else f"write `deck: {kept}`",
                )
            ]
        for depth in range(1, len(parts) + 1):
            spelled = "::".join(parts[:depth])
            key = tuple(deck_name_key(part) for part in parts[:depth])
            first, first_at = self._first.setdefault(key, (spelled, where))
            if first != spelled:
                return [
                    Problem(
                        where,
                        f"subdeck {spelled!r} differs from {first!r} only in case or "
                        "Unicode form, which Anki takes for the same name: it would rename one of "
                        "them on import (adding `_`)",
                        hint=f"spell it {first!r} as at {first_at}, or give it another name",
                    )
                ]
        return []


_MASK = (1 << 24) - 1  # a line or column number in a packed location


class PackedLocations:
    """Locations packed into one integer each, for the many notes of a large deck."""

    def __init__(self) -> None:
        self._paths: dict[str, int] = {}

    def pack_all(self, path: str, lines: Iterable[int], columns: Iterable[int]) -> list[int]:
        """Many places in one file, packed."""
        base = self._paths.setdefault(path, len(self._paths)) << 48
        return [
            base | (min(line, _MASK) << 24) | min(column, _MASK)
            for line, column in zip(lines, columns, strict=True)
        ]

    def unpack(self, packed: int) -> Location:
        paths = list(self._paths)
        return Location(paths[packed >> 48], (packed >> 24) & _MASK, packed & _MASK)


def duplicate_id(note_id: str, where: Location, first: Location) -> Problem:
    """The problem of a note id defined again at `where`."""
    return Problem(
        where,
        f"duplicate note id {note_id!r}",
        hint=f"first defined at {first}; every note needs its own id",
    )


def check_header(deck: Deck) -> list[Problem]:
    """The rules deck.yaml must follow."""
    problems = []
    if not SLUG_RE.fullmatch(deck.id):
        problems.append(
            Problem(
                deck.loc,
                f"deck id {deck.id!r} is not a lowercase slug",
                hint="use lowercase letters, digits and single hyphens, e.g. `neurodeck`",
            )
        )
    if not deck.name.strip() or any(not part.strip() for part in deck.name.split("::")):
        problems.append(
            Problem(
                deck.loc,
                f"deck name {deck.name!r} is empty or has an empty part",
                hint="write a name such as `Neurobiology of Connection`",
            )
        )
    elif (kept := "::".join(map(deck_name_component, deck.name.split("::")))) != deck.name:
        problems.append(
            Problem(
                deck.loc,
                f"deck name {deck.name!r} is not a name Anki keeps: "
                f"Anki would store it as {kept!r}",
                hint=f"write `name: {kept}`",
            )
        )
    problems += check_source_link(deck)
    for source in deck.sources.values():
        if source.url is not None and not source.url.startswith(("https://", "http://")):
            problems.append(
                Problem(
                    source.loc,
                    f"source {source.id!r} has a url that is not http(s)",
                    hint="write a full https:// address, or remove `url`",
                )
            )
        problems += _check_source_citation(source)
    return problems


_YEAR_RE = re.compile(r"[0-9]{4}[a-z]?")


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most like a misspelt word, if one is close enough."""
    import difflib  # only when a problem is worded: it adds to every start

    close = difflib.get_close_matches(word, list(choices), n=1)
    return close[0] if close else None


def _check_source_citation(source: Source) -> list[Problem]:
    """`kind` must be one the card can name; `year` must look like a year of publication."""
    problems = []
    if source.kind is not None and source.kind not in SOURCE_KINDS:
        close = closest(source.kind.strip().lower(), SOURCE_KINDS)
        choices = " or ".join(f"`kind: {k}`" for k in SOURCE_KINDS)
        hint = (
            f"did you mean `kind: {close}`?"
            if close
            else f"write {choices} (one of the deck's own documents, or published work)"
        )
        problems.append(
            Problem(
                source.key_locs.get("kind", source.loc),
                f"source {source.id!r} has unknown kind {source.kind!r}",
                hint=hint,
            )
        )
    if source.year is not None and not _YEAR_RE.fullmatch(source.year.strip()):
        problems.append(
            Problem(
                source.key_locs.get("year", source.loc),
                f"source {source.id!r} has year {source.year!r}, not a year",
                hint="write the year of publication, e.g. `year: 1998`",
            )
        )
    return problems


def check_note(deck: Deck, note: Note) -> list[Problem]:
    """The rules one note must follow on its own."""
    # Run for every note of a deck: the common case of each rule is tested first, inline.
    problems = [] if SLUG_RE.fullmatch(note.id) else check_id(note.id, note.loc)
    problems += check_fields(note)
    if note.source is not None and note.source not in deck.sources:
        close = closest(note.source, deck.sources)
        hint = f"did you mean {close!r}?" if close else "declare it under `sources:` in deck.yaml"
        if "source" in note.field_locs:
            problems.append(
                Problem(
                    note.field_locs["source"],
                    f"unknown source {note.source!r} in note {note.id!r}",
                    hint=hint,
                )
            )
        else:  # the file's `source:`: one problem for the file, placed by the pipeline
            problems.append(
                Problem(
                    Location(note.loc.path),
                    f"unknown source {note.source!r} {FILE_SOURCE}",
                    hint=hint,
                )
            )
    elif note.source is None and deck.sources:
        problems.append(
            Problem(
                note.loc,
                f"note {note.id!r} cites no source",
                severity="warning",
                hint="add `source:` to the note or the file",
            )
        )
    for tag in note.tags:
        if (wrong := _tag_mistake(tag.name)) is not None:
            problems.append(Problem(tag.loc, wrong[0], hint=wrong[1]))
    if note.subdeck and _has_empty_part(note.subdeck):
        problems.append(
            Problem(
                note.loc,
                f"subdeck {note.subdeck!r} has an empty part",
                hint="write `deck: Topic::Subtopic` with a name on both sides",
            )
        )
    if note.diagram is not None:
        problems += check_diagram(note)
    fields = note.fields
    if (
        note.kind != "cloze"
        and "front" in fields
        and "back" in fields
        and answer_repeats_prompt(fields["front"], fields["back"])
    ):
        problems.append(
            Problem(
                note.field_locs["back"],
                f"the answer of note {note.id!r} repeats its prompt",
                severity="warning",
                hint="reword the prompt so it does not give the answer away",
            )
        )
    return problems


def answer_repeats_prompt(prompt: str, answer: str) -> bool:
    """Whether the answer's words appear, in order and together, among the prompt's."""
    # The answer's first word would then be part of the prompt's text: most answers stop
    # at this test, without the word lists.
    first = WORD_RE.search(answer.lower())
    if first is None or first.group() not in prompt.lower():
        return False
    words = plain_text(answer)
    return bool(words) and words in plain_text(prompt)


# Where an unknown source came from when no note names one itself.
FILE_SOURCE = "in the fact set's `source:`"


def check_id(note_id: str, loc: Location) -> list[Problem]:
    """A note id must be a lowercase slug."""
    if SLUG_RE.fullmatch(note_id):
        return []
    return [
        Problem(
            loc,
            f"note id {note_id!r} is not a lowercase slug",
            hint="use lowercase letters, digits and single hyphens, e.g. `acc-social-cues`",
        )
    ]


def check_fields(note: Note) -> list[Problem]:
    """The rules for a note's text fields: not empty or blank, cloze deletions right.

    The loader also runs it on a note it refused for its shape, so that one mistake does not
    hide another until the next run.
    """
    problems = []
    for key, text in note.fields.items():
        where = note.field_locs[key]
        shown = text[:1].isalpha()  # most fields: a leading letter is never empty or blank
        if not shown and not text.strip():
            problems.append(
                Problem(
                    where,
                    f"`{key}` of note {note.id!r} is empty",
                    hint="write the text, or remove the key if it is optional",
                )
            )
        elif not shown and (blank := _blank_rendering(text)) is not None:
            problems.append(
                Problem(
                    where,
                    f"`{key}` of note {note.id!r} shows nothing in Anki: it renders as "
                    f"{blank!r}",
                    hint="write words a learner can read (an image alone is fine); "
                    "`***` is a rule line and `[](…)` a link without text",
                )
            )
        elif note.kind == "cloze" and key == "text":
            problems += _check_cloze(note, text, where)
        elif "{{" in text and CLOZE_RE.search(text):
            hint = (
                "cloze deletions belong in `text`; `extra` is shown as written"
                if note.kind == "cloze"
                else "set `type: cloze` and put the sentence in `text`"
            )
            problems.append(
                Problem(
                    where,
                    f"`{key}` of {note.kind} note {note.id!r} has a cloze deletion",
                    hint=hint,
                )
            )
        if "*" in text or "#" in text:
            problems += [
                Problem(where, f"`{key}` of note {note.id!r}: {message}", hint, "warning")
                for message, hint in literal_text_mistakes(text)
            ]
    return problems


@functools.lru_cache(maxsize=1024)
def _has_empty_part(subdeck: str) -> bool:
    # Every note of a file shares its subdeck: judge each one once.
    return any(not part.strip() for part in subdeck.split("::"))


def _check_cloze(note: Note, text: str, where: Location) -> list[Problem]:
    numbers = []
    problems = []
    for match in CLOZE_RE.finditer(text):
        number, body = int(match.group(1)), match.group(2)
        if number < 1:
            problems.append(
                Problem(
                    where,
                    f"cloze deletion c0 in note {note.id!r}",
                    hint="cloze numbers start at c1",
                )
            )
        answer = body.split("::", 1)[0]
        if not answer.strip() or _blank_rendering(answer) is not None:
            problems.append(
                Problem(
                    where,
                    f"empty cloze deletion c{number} in note {note.id!r}",
                    hint="write the hidden text: {{c1::answer}}",
                )
            )
        numbers.append(number)
    if numbers and any(mark in text for mark in _LINK_MARKS):
        shown = CLOZE_RE.findall(HTML_TAG_RE.sub("", render(text).html))
        if len(shown) < len(numbers):
            problems.append(
                Problem(
                    where,
                    f"cloze deletion in note {note.id!r} is inside a link address, a link "
                    "title or an image description, where Anki cannot hide it",
                    hint="put the deletion in the text a learner reads, e.g. "
                    "[{{c1::words}}](https://example.org)",
                )
            )
    leftover = CLOZE_RE.sub("", text)
    if _CLOZE_TOO_HIGH_RE.search(leftover):
        problems.append(
            Problem(
                where,
                f"cloze deletion in note {note.id!r} is numbered above c{MAX_CLOZE}",
                hint="number deletions c1, c2, c3 ...: each number makes one card",
            )
        )
    elif _CLOZE_START_RE.search(leftover) or "}}" in leftover:
        problems.append(
            Problem(
                where,
                f"malformed cloze marker in note {note.id!r}",
                hint="write deletions as {{c1::hidden text}} or {{c1::hidden text::hint}}",
            )
        )
    elif not numbers:
        problems.append(
            Problem(
                where,
                f"cloze note {note.id!r} has no deletion",
                hint="mark the hidden part as {{c1::text}} (and put the whole value in quotes "
                "if it then starts with {{), or make it a basic note",
            )
        )
    return problems


def _blank_rendering(text: str) -> str | None:
    """The HTML of a field that shows nothing in Anki, else None."""
    if text.lstrip()[:1].isalpha():  # most fields: a leading letter is always shown
        return None
    rendered = render(text).html
    return rendered if shows_nothing(rendered) else None


@functools.lru_cache(maxsize=4096)
def _tag_mistake(tag: str) -> tuple[str, str] | None:
    # Decks repeat a few hundred tags across thousands of notes: judge each tag once.
    if " " in tag.strip() or "\t" in tag:
        fixed = re.sub(r"\s+", "-", tag.strip())
        return f"tag {tag!r} contains a space", f"Anki tags cannot contain spaces; write {fixed!r}"
    parts = tag.strip().split("::")
    if not all(_TAG_PART_RE.fullmatch(part) for part in parts):
        return (
            f"tag {tag!r} has an empty part or a quote",
            "write tags like `topic::sub-topic`, with text between the `::`",
        )
    return None

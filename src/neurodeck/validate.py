"""Deck-wide content rules. Returns every problem; never raises."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import KeysView

from .errors import Location, Problem
from .markup import plain_text
from .model import Deck, Note
from .source_links import check_source_link

SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# Anki stores a card's number in 16 bits and refuses a package with a larger one; no real
# note needs more than a few hundred deletions. Longer numbers are not deletions at all, so
# no later stage ever turns them into a card number.
MAX_CLOZE = 999
CLOZE_RE = re.compile(r"\{\{c([0-9]{1,3})::(.*?)\}\}", re.DOTALL)
_CLOZE_START_RE = re.compile(r"\{\{\s*c\d*\s*:", re.IGNORECASE)
_CLOZE_TOO_HIGH_RE = re.compile(r"\{\{c0*[1-9][0-9]{3,}::")
# Anki turns [sound:file] anywhere in a card into a play button for a media file, and
# neurodeck packages only images.
_SOUND_RE = re.compile(r"\[sound:", re.IGNORECASE)
_TAG_PART_RE = re.compile(r"[^\s\"]+")


def validate(deck: Deck) -> list[Problem]:
    """Every rule broken anywhere in the deck, errors and warnings alike."""
    problems = check_header(deck)
    unique = UniqueIds()
    for note in deck.notes():
        problems += check_note(deck, note) + unique.check(note)
    return problems


_MASK = (1 << 24) - 1  # a line or column number in a packed location


class UniqueIds:
    """Remembers note ids as notes go by, so that duplicates across files are found.

    A large deck has a hundred thousand ids; each is kept with its location packed into one
    integer rather than a Location object.
    """

    def __init__(self) -> None:
        self._first_seen: dict[str, int] = {}
        self._paths: dict[str, int] = {}

    def seen(self) -> KeysView[str]:
        """Every note id checked so far."""
        return self._first_seen.keys()

    def check(self, note: Note) -> list[Problem]:
        """A duplicate-id problem naming where the id was first defined, or nothing."""
        loc = note.loc
        return self.check_at(note.id, loc.path, loc.line, loc.column)

    def check_at(self, note_id: str, path: str, line: int, column: int) -> list[Problem]:
        """As `check`, for a note known by its id and where it starts."""
        path_index = self._paths.setdefault(path, len(self._paths))
        packed = (path_index << 48) | (line << 24) | min(column, _MASK)
        first = self._first_seen.setdefault(note_id, packed)
        if first == packed:
            return []
        paths = list(self._paths)
        where = Location(paths[first >> 48], (first >> 24) & _MASK, first & _MASK)
        return [
            Problem(
                Location(path, line, column),
                f"duplicate note id {note_id!r}",
                hint=f"first defined at {where}; every note needs its own id",
            )
        ]


def check_header(deck: Deck) -> list[Problem]:
    """The rules deck.yaml must follow."""
    problems = []
    if not SLUG_RE.fullmatch(deck.id):
        problems.append(
            Problem(deck.loc, f"deck id {deck.id!r} is not a lowercase slug",
                    hint="use lowercase letters, digits and single hyphens, e.g. `neurodeck`")
        )
    if not deck.name.strip() or any(not part.strip() for part in deck.name.split("::")):
        problems.append(Problem(deck.loc, f"deck name {deck.name!r} is empty or has an empty part",
                                hint="write a name such as `Neurobiology of Connection`"))
    problems += check_source_link(deck)
    for source in deck.sources.values():
        if source.url is not None and not source.url.startswith(("https://", "http://")):
            problems.append(Problem(source.loc,
                                    f"source {source.id!r} has a url that is not http(s)",
                                    hint="write a full https:// address, or remove `url`"))
        for key, text in (("title", source.title), ("author", source.author or "")):
            if _SOUND_RE.search(text):
                problems.append(_sound_problem(source.loc, f"`{key}` of source {source.id!r}"))
    return problems


def check_note(deck: Deck, note: Note) -> list[Problem]:
    """The rules one note must follow on its own."""
    problems = []
    if not SLUG_RE.fullmatch(note.id):
        problems.append(
            Problem(note.loc, f"note id {note.id!r} is not a lowercase slug",
                    hint="use lowercase letters, digits and single hyphens, e.g. `acc-social-cues`")
        )
    for key, text in note.fields.items():
        where = note.field_locs[key]
        # The substring tests spare most fields the regular expressions.
        if "[" in text and _SOUND_RE.search(text):
            problems.append(_sound_problem(where, f"`{key}` of note {note.id!r}"))
        if not text.strip():
            problems.append(Problem(where, f"`{key}` of note {note.id!r} is empty",
                                    hint="write the text, or remove the key if it is optional"))
        elif note.kind == "cloze" and key == "text":
            problems += _check_cloze(note, text, where)
        elif "{{" in text and CLOZE_RE.search(text):
            hint = ("cloze deletions belong in `text`; `extra` is shown as written"
                    if note.kind == "cloze" else "set `type: cloze` and put the sentence in `text`")
            problems.append(
                Problem(where, f"`{key}` of {note.kind} note {note.id!r} has a cloze deletion",
                        hint=hint)
            )
    if note.source is not None and note.source not in deck.sources:
        close = difflib.get_close_matches(note.source, list(deck.sources), n=1)
        hint = (f"did you mean {close[0]!r}?" if close
                else "declare it under `sources:` in deck.yaml")
        problems.append(
            Problem(note.field_locs.get("source", note.loc),
                    f"unknown source {note.source!r} in note {note.id!r}", hint=hint)
        )
    elif note.source is None and deck.sources:
        problems.append(
            Problem(note.loc, f"note {note.id!r} cites no source", severity="warning",
                    hint="add `source:` to the note or the file")
        )
    if note.section is not None and _SOUND_RE.search(note.section):
        problems.append(_sound_problem(note.loc, f"`section` of note {note.id!r}"))
    for tag in note.tags:
        problems += _check_tag(tag.name, tag.loc)
    if note.subdeck and _has_empty_part(note.subdeck):
        problems.append(Problem(note.loc, f"subdeck {note.subdeck!r} has an empty part",
                                hint="write `deck: Topic::Subtopic` with a name on both sides"))
    if note.kind != "cloze" and "front" in note.fields and "back" in note.fields:
        prompt, answer = plain_text(note.fields["front"]), plain_text(note.fields["back"])
        if answer and answer in prompt:
            problems.append(
                Problem(note.field_locs["back"],
                        f"the answer of note {note.id!r} repeats its prompt", severity="warning",
                        hint="reword the prompt so it does not give the answer away")
            )
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
            problems.append(Problem(where, f"cloze deletion c0 in note {note.id!r}",
                                    hint="cloze numbers start at c1"))
        if not body.split("::")[0].strip():
            problems.append(Problem(where, f"empty cloze deletion in note {note.id!r}",
                                    hint="write the hidden text: {{c1::answer}}"))
        numbers.append(number)
    leftover = CLOZE_RE.sub("", text)
    if _CLOZE_TOO_HIGH_RE.search(leftover):
        problems.append(
            Problem(where, f"cloze deletion in note {note.id!r} is numbered above c{MAX_CLOZE}",
                    hint="number deletions c1, c2, c3 ...: each number makes one card")
        )
    elif _CLOZE_START_RE.search(leftover) or "}}" in leftover:
        problems.append(
            Problem(where, f"malformed cloze marker in note {note.id!r}",
                    hint="write deletions as {{c1::hidden text}} or {{c1::hidden text::hint}}")
        )
    elif not numbers:
        problems.append(
            Problem(where, f"cloze note {note.id!r} has no deletion",
                    hint="mark the hidden part as {{c1::text}}, or make it a basic note")
        )
    return problems


def _sound_problem(where: Location, what: str) -> Problem:
    return Problem(where, f"{what} has an Anki sound tag [sound:...]",
                   hint="neurodeck does not package audio, so Anki would show a broken play "
                   "button; remove it or describe the sound in words")


def _check_tag(tag: str, where: Location) -> list[Problem]:
    wrong = _tag_mistake(tag)
    return [] if wrong is None else [Problem(where, wrong[0], hint=wrong[1])]


@functools.lru_cache(maxsize=4096)
def _tag_mistake(tag: str) -> tuple[str, str] | None:
    # Decks repeat a few hundred tags across thousands of notes: judge each tag once.
    if " " in tag.strip() or "\t" in tag:
        fixed = re.sub(r"\s+", "-", tag.strip())
        return f"tag {tag!r} contains a space", f"Anki tags cannot contain spaces; write {fixed!r}"
    parts = tag.strip().split("::")
    if not all(_TAG_PART_RE.fullmatch(part) for part in parts):
        return (f"tag {tag!r} has an empty part or a quote",
                "write tags like `topic::sub-topic`, with text between the `::`")
    return None

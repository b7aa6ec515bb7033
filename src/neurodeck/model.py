"""The typed deck model: what the loader produces and every later stage reads. No IO here."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from .errors import Location

NoteKind = Literal["basic", "reversed", "cloze"]
NOTE_KINDS: tuple[NoteKind, ...] = ("basic", "reversed", "cloze")

# The keys a fact set and its notes may have, and the fields each kind of note needs.
FACT_SET_KEYS = ("deck", "tags", "source", "notes")
NOTE_KEYS = (
    "id", "type", "front", "back", "text", "extra", "tags", "source", "section", "retired",
)
FIELDS_BY_KIND: dict[NoteKind, tuple[str, ...]] = {
    "basic": ("front", "back"),
    "reversed": ("front", "back"),
    "cloze": ("text",),
}
OPTIONAL_FIELDS = ("extra",)
# What a source is, shown on the back of every card citing it: one of the deck's own source
# documents, or a published work that backs or questions them.
SOURCE_KINDS = ("article", "literature")


@dataclass(frozen=True)
class Source:
    """A document that notes cite, declared in deck.yaml."""

    id: str
    title: str
    author: str | None = None
    url: str | None = None
    kind: str | None = None  # one of SOURCE_KINDS (checked by validate)
    year: str | None = None
    venue: str | None = None  # journal (with volume and pages) or publisher
    loc: Location = field(default=Location(""), compare=False)
    key_locs: Mapping[str, Location] = field(default_factory=dict, compare=False)  # per value


@dataclass(frozen=True)
class Tag:
    """A tag as written, with where it was written (for errors about it)."""

    name: str
    loc: Location = field(compare=False)


@dataclass(frozen=True)
class Note:
    """One note; `fields` holds the author's Markdown by key (front, back, text, extra)."""

    id: str
    kind: NoteKind
    fields: Mapping[str, str]
    tags: tuple[Tag, ...]  # the file's tags, then the note's own
    subdeck: str  # "" for the root deck, "A::B" nests
    source: str | None  # a source id from deck.yaml
    section: str | None
    loc: Location  # where "- id:" starts
    field_locs: Mapping[str, Location]  # where each key's value starts
    retired: bool = False  # shipped once more, tagged `retired`, before it is removed


@dataclass(frozen=True)
class FactSet:
    """One fact-set file and its notes, in file order."""

    path: str
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class Deck:
    """A whole deck directory: deck.yaml plus every fact set, in curriculum order."""

    id: str
    name: str
    version: str | None
    description: str
    sources: Mapping[str, Source]
    fact_sets: tuple[FactSet, ...]
    root: str  # the deck directory, as given
    loc: Location

    def notes(self) -> Iterator[Note]:
        """Every note in curriculum order: files in sorted path order, notes in file order."""
        for fact_set in self.fact_sets:
            yield from fact_set.notes

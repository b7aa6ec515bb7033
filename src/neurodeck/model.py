"""The typed deck model: what the loader produces and every later stage reads. No IO here."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from .errors import Location

# Note ids, occlusion ids and deck ids: permanent, so plain and unambiguous.
SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")

NoteKind = Literal["basic", "reversed", "cloze", "occlusion"]
# The kinds written with text fields. An occlusion note (a diagram) has keys of its own and is
# always read by load.py's general path, never by fastread.
NOTE_KINDS: tuple[NoteKind, ...] = ("basic", "reversed", "cloze")
OCCLUSION_KIND: NoteKind = "occlusion"

# The keys a fact set and its notes may have, and the fields each kind of note needs.
FACT_SET_KEYS = ("deck", "tags", "source", "notes")
NOTE_KEYS = ("id", "type", "front", "back", "text", "extra", "tags", "source", "section", "retired")
FIELDS_BY_KIND: dict[NoteKind, tuple[str, ...]] = {
    "basic": ("front", "back"),
    "reversed": ("front", "back"),
    "cloze": ("text",),
    "occlusion": (),
}
OPTIONAL_FIELDS = ("extra",)
# Keys only an occlusion note has (it has `extra`, but no front, back or text).
OCCLUSION_NOTE_KEYS = ("image", "header", "occlusions", "labels", "mode")
OCCLUSION_KEYS = ("id", "answer", "group", "rect", "ellipse", "polygon")
SHAPE_KINDS = ("rect", "ellipse", "polygon")
LABEL_KEYS = ("text", "at", "size")
OcclusionMode = Literal["hide-one", "hide-all"]
OCCLUSION_MODES: tuple[OcclusionMode, ...] = ("hide-one", "hide-all")
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
class SourceLink:
    """deck.yaml `source_link`: where the fact sets live, for a link from each card's back."""

    repository: str  # https://host/owner/name
    forge: str | None  # "github" or "gitlab": how file addresses are formed; None: from host
    ref: str  # a tag, branch or commit; "{version}" stands for deck.yaml's version
    path: str  # the deck directory inside the repository ("" for its top)
    loc: Location = field(default=Location(""), compare=False)


@dataclass(frozen=True)
class Tag:
    """A tag as written, with where it was written (for errors about it)."""

    name: str
    loc: Location = field(compare=False)


@dataclass(frozen=True)
class Shape:
    """One shape of an occlusion, in fractions of the image's width and height.

    rect and ellipse: (left, top, width, height) of the box they fill; polygon: x1, y1, x2, ...
    """

    kind: Literal["rect", "ellipse", "polygon"]
    coords: tuple[float, ...]
    loc: Location = field(compare=False)


@dataclass(frozen=True)
class Occlusion:
    """A region to hide; occlusions sharing a `group` make one card together."""

    id: str
    answer: str | None
    group: str | None
    shape: Shape
    loc: Location = field(compare=False)

    @property
    def card_key(self) -> str:
        """What the card is tied to in the lock: the group's id, or the occlusion's own."""
        return self.group or self.id


@dataclass(frozen=True)
class Label:
    """Text Anki draws on the image on every card (its editor's text tool)."""

    text: str
    left: float
    top: float
    size: float | None  # font height as a fraction of the image's height
    loc: Location = field(compare=False)


@dataclass(frozen=True)
class Diagram:
    """What an occlusion note holds besides its text fields."""

    image: str  # as written, relative to the deck directory
    mode: OcclusionMode
    occlusions: tuple[Occlusion, ...]
    labels: tuple[Label, ...]
    image_loc: Location = field(compare=False)

    def cards(self) -> dict[str, list[Occlusion]]:
        """The occlusions of each card, by card key, in the order first written."""
        cards: dict[str, list[Occlusion]] = {}
        for occlusion in self.occlusions:
            cards.setdefault(occlusion.card_key, []).append(occlusion)
        return cards


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
    diagram: Diagram | None = None  # occlusion notes only; `fields` holds header and extra


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
    source_link: SourceLink | None = None

    def notes(self) -> Iterator[Note]:
        """Every note in curriculum order: files in sorted path order, notes in file order."""
        for fact_set in self.fact_sets:
            yield from fact_set.notes

"""Deck model → genanki objects. No disk, no clock, no randomness: times come from the lock."""

from __future__ import annotations

import hashlib
import html
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import genanki

from . import ids
from .lock import Lock
from .markup import render, replace_image_sources
from .model import Deck, Note
from .notetypes import CSS, NOTE_TYPES, NoteType
from .validate import CLOZE_RE


@dataclass(frozen=True)
class CompiledNote:
    """A note as it goes into the package, before its modification time is known."""

    note: Note
    guid: str
    fields: tuple[str, ...]  # in the note type's field order
    tags: tuple[str, ...]
    ordinals: tuple[int, ...]  # the cards it makes (0-based template or cloze number)
    due: int  # curriculum position: new cards are shown in file and note order
    images: tuple[str, ...]  # image paths as written, resolved by the pipeline
    hash: str  # everything a learner would see change


def compile_notes(deck: Deck) -> list[CompiledNote]:
    """Render every note's fields and tags; the order is the curriculum order."""
    return [_compile_note(deck, note, due) for due, note in enumerate(deck.notes(), start=1)]


def _compile_note(deck: Deck, note: Note, due: int) -> CompiledNote:
    notetype = NOTE_TYPES[note.kind]
    rendered = {key: render(text) for key, text in note.fields.items()}
    values = {key: r.html for key, r in rendered.items()}
    values["source"] = source_line(deck, note)
    fields = tuple(values.get(key, "") for key, _ in notetype.fields)
    tags = note_tags(deck, note)
    if notetype.is_cloze:
        ordinals = tuple(sorted({int(n) - 1 for n, _ in CLOZE_RE.findall(note.fields["text"])}))
    else:
        ordinals = tuple(range(len(notetype.templates)))
    payload = json.dumps([notetype.key, note.subdeck, fields, tags], ensure_ascii=False)
    return CompiledNote(
        note=note,
        guid=ids.note_guid(deck.id, note.id),
        fields=fields,
        tags=tags,
        ordinals=ordinals,
        due=due,
        images=tuple(img for r in rendered.values() for img in r.images),
        hash=hashlib.sha256(payload.encode("utf-8")).hexdigest()[:20],
    )


def note_tags(deck: Deck, note: Note) -> tuple[str, ...]:
    """The author's tags, then one for the note's subdeck under the deck id, without repeats."""
    topic = "::".join([deck.id, *(p.strip().replace(" ", "_") for p in note.subdeck.split("::"))])
    tags = [t.name.strip() for t in note.tags] + [topic.rstrip(":")]
    return tuple(dict.fromkeys(tags))


def source_line(deck: Deck, note: Note) -> str:
    """The small-print citation shown on the back: title (linked if it has a url) · section."""
    if note.source is None or note.source not in deck.sources:
        return html.escape(note.section or "")
    source = deck.sources[note.source]
    title = f"<cite>{html.escape(source.title)}</cite>"
    if source.url:
        title = f'<a href="{html.escape(source.url)}">{title}</a>'
    parts = [title]
    if source.author:
        parts.insert(0, html.escape(source.author))
    if note.section:
        parts.append(html.escape(note.section))
    return " · ".join(parts)


def notetype_hashes() -> dict[str, str]:
    """The current fingerprint of each note type, by key."""
    return {nt.key: nt.fingerprint() for nt in NOTE_TYPES.values()}


def deck_description(deck: Deck) -> str:
    """The root deck's description: the author's Markdown, then the release version."""
    text = render(deck.description).html if deck.description.strip() else ""
    if deck.version:
        text += f"<p><small>Version {html.escape(deck.version)}</small></p>"
    return text


class _Model(genanki.Model):  # type: ignore[misc]
    """A genanki model whose modification time is its own, not the build's."""

    def __init__(self, mod: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mod = mod

    def to_json(self, timestamp: float, deck_id: int) -> dict[str, Any]:
        return super().to_json(self.mod, deck_id)  # type: ignore[no-any-return]


class _Note(genanki.Note):  # type: ignore[misc]
    """A genanki note with its own modification time, row ids and cards decided by us."""

    def __init__(self, mod: int, row_ids: list[int], ordinals: tuple[int, ...],
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mod = mod
        self.row_ids = row_ids
        # genanki derives cards by rendering templates per note; we already know them.
        self.cards = [genanki.Card(ordinal) for ordinal in ordinals]

    def write_to_db(self, cursor: Any, timestamp: float, deck_id: int, id_gen: Iterator[int]) -> None:
        super().write_to_db(cursor, self.mod, deck_id, iter(self.row_ids))


def build_package(deck: Deck, notes: list[CompiledNote], lock: Lock,
                  media_names: Mapping[str, str]) -> genanki.Package:
    """The genanki package for compiled notes, with times from the lock.

    `media_names` maps image paths as written to their file names in the package.
    """
    models = {
        key: _make_model(deck, nt, lock.notetypes[key].mod) for key, nt in NOTE_TYPES.items()
    }
    decks: dict[str, genanki.Deck] = {}

    def deck_for(subdeck: str) -> genanki.Deck:
        parts = [p.strip() for p in subdeck.split("::")] if subdeck else []
        for depth in range(len(parts) + 1):  # parents first, so each gets a stable id
            path = "::".join(parts[:depth])
            if path not in decks:
                name = "::".join([deck.name, *parts[:depth]])
                decks[path] = genanki.Deck(ids.deck_id(deck.id, path), name)
        return decks["::".join(parts)]

    deck_for("").description = deck_description(deck)
    for compiled in notes:
        note = compiled.note
        fields = list(compiled.fields)
        if compiled.images:
            fields = [replace_image_sources(f, media_names) for f in fields]
        row_ids = [ids.note_row_id(deck.id, note.id)] + [
            ids.card_row_id(deck.id, note.id, ordinal) for ordinal in compiled.ordinals
        ]
        deck_for(note.subdeck).add_note(
            _Note(
                mod=lock.notes[note.id].mod,
                row_ids=row_ids,
                ordinals=compiled.ordinals,
                model=models[note.kind],
                fields=fields,
                tags=list(compiled.tags),
                guid=compiled.guid,
                due=compiled.due,
            )
        )
    for genanki_deck in decks.values():
        for model in models.values():
            genanki_deck.add_model(model)
    return genanki.Package(list(decks.values()))


def _make_model(deck: Deck, notetype: NoteType, mod: int) -> _Model:
    return _Model(
        mod=mod,
        model_id=ids.notetype_id(deck.id, notetype.key),
        name=notetype.name,
        fields=notetype.field_dicts(),
        templates=notetype.template_dicts(),
        css=CSS,
        model_type=genanki.Model.CLOZE if notetype.is_cloze else genanki.Model.FRONT_BACK,
    )

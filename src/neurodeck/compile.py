"""Deck model → package rows. No disk, no clock, no randomness: times come from the lock."""

from __future__ import annotations

import hashlib
import html
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from . import ids, rows
from .markup import escape_anki_markers, render, replace_image_sources, sentence_html
from .model import Deck, Note
from .notetypes import CLOZE_RE, NOTE_TYPES, NoteType
from .occlusion import answers_html, assign_numbers, occlusion_field
from .source_links import origin_html


class CompiledNote(NamedTuple):
    """A note as it goes into the package, before its modification time is known.

    (A named tuple rather than a frozen dataclass: one is made per note, three times faster.)
    """

    note: Note
    guid: str
    fields: tuple[str, ...]  # in the note type's field order
    tags: tuple[str, ...]
    ordinals: tuple[int, ...]  # the cards it makes (0-based template or cloze number)
    images: tuple[str, ...]  # image paths as written, resolved by the pipeline
    hash: str  # everything a learner would see change
    # Occlusion notes: the cloze number of each card key, including keys of removed shapes.
    numbers: tuple[tuple[str, int], ...] = ()


class NoteCompiler:
    """Renders notes of one deck; remembers source lines and topic tags it has made."""

    def __init__(
        self, deck: Deck, occlusion_numbers: Mapping[str, Mapping[str, int]] | None = None
    ) -> None:
        self.deck = deck
        self.occlusion_numbers = occlusion_numbers or {}  # from the lock, by note id
        self._source_lines: dict[tuple[str | None, str | None], str] = {}
        self._topic_tags: dict[str, str] = {}
        self._deck_files: dict[str, str] = {}

    def compile(self, note: Note) -> CompiledNote:
        """Render one note's fields and tags and decide its cards."""
        if note.diagram is not None:
            return self._compile_diagram(note)
        notetype = NOTE_TYPES[note.kind]
        values: dict[str, str] = {}
        images: tuple[str, ...] = ()
        for key, text in note.fields.items():
            html_text = sentence_html(text)  # most fields: no Markdown parser, no image
            if html_text is None:
                rendered = render(text)
                html_text = rendered.html
                if rendered.images:
                    images += rendered.images
            values[key] = html_text
        values["source"] = self._source_line(note)
        fields = tuple([values.get(key, "") for key in _FIELD_KEYS[note.kind]])
        tags = self._tags(note)
        ordinals = _ordinals(note)
        payload = "\x1e".join([notetype.key, note.subdeck, "\x1f".join(fields), " ".join(tags)])
        content_hash = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]
        if self.deck.source_link is not None:
            # After the hash: a link that only moved is no edit (see source_links.py).
            fields = self._with_origin(note, fields)
        guid = ids.note_guid(self.deck.id, note.id)
        return CompiledNote(note, guid, fields, tags, ordinals, images, content_hash)

    def outline(self, note: Note) -> CompiledNote:
        """What checking a note needs of `compile`: its cards and images, with no field
        HTML, tags or GUID, and a hash of zeros. `check` writes nothing, so it makes none
        (and keeps no lock made from them)."""
        if note.diagram is not None:  # its card numbers come from compiling it
            return self.compile(note)
        images: tuple[str, ...] = ()
        for text in note.fields.values():
            if "![" in text:  # how Markdown writes every image; text cannot show one else
                images += render(text).images
        return CompiledNote(note, "", (), (), _ordinals(note), images, "0" * 16)

    def _origin(self, note: Note) -> str:
        file = self._deck_files.get(note.loc.path)
        if file is None:
            file = self._deck_files[note.loc.path] = _in_deck(self.deck, note.loc.path)
        return origin_html(self.deck, file, note.loc.line)

    def _with_origin(self, note: Note, fields: tuple[str, ...]) -> tuple[str, ...]:
        link = self._origin(note)
        index = _FIELD_KEYS[note.kind].index("source")
        source = fields[index]
        return (*fields[:index], f"{source} · {link}" if source else link, *fields[index + 1 :])

    def _compile_diagram(self, note: Note) -> CompiledNote:
        diagram = note.diagram
        assert diagram is not None
        numbers = assign_numbers(diagram, self.occlusion_numbers.get(note.id, {}))
        back_extra = answers_html(diagram, numbers, lambda text: render(text).html)
        if "extra" in note.fields:
            back_extra += f'<div class="nd-extra">{render(note.fields["extra"]).html}</div>'
        without_source = back_extra
        if source := self._source_line(note):
            back_extra += f'<div class="nd-source">{source}</div>'
        header = render(note.fields["header"]).html if "header" in note.fields else ""
        image = f'<img src="{html.escape(diagram.image)}">'
        fields = (occlusion_field(diagram, numbers), image, header, back_extra, "")
        tags = self._tags(note)
        ordinals = tuple(sorted(numbers[key] - 1 for key in diagram.cards()))
        payload = "\x1e".join(["occlusion", note.subdeck, "\x1f".join(fields), " ".join(tags)])
        content_hash = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]
        if self.deck.source_link is not None:  # after the hash, as for other notes
            link = self._origin(note)
            linked = f"{source} · {link}" if source else link
            fields = (*fields[:3], f'{without_source}<div class="nd-source">{linked}</div>', "")
        guid = ids.note_guid(self.deck.id, note.id)
        return CompiledNote(
            note,
            guid,
            fields,
            tags,
            ordinals,
            (diagram.image,),
            content_hash,
            tuple(sorted(numbers.items(), key=lambda item: item[1])),
        )

    def _source_line(self, note: Note) -> str:
        key = (note.source, note.section)
        line = self._source_lines.get(key)
        if line is None:
            line = self._source_lines[key] = source_line(self.deck, note)
        return line

    def _tags(self, note: Note) -> tuple[str, ...]:
        topic = self._topic_tags.get(note.subdeck)
        if topic is None:
            topic = self._topic_tags[note.subdeck] = topic_tag(self.deck, note.subdeck)
        tags = [t.name.strip() for t in note.tags]
        tags.append(topic)
        if note.retired:
            tags.append(RETIRED_TAG)
        return tuple(dict.fromkeys(tags))


# Learners search for this tag to suspend notes that a later release will drop.
RETIRED_TAG = "retired"
_TEMPLATE_ORDINALS = {kind: tuple(range(len(nt.templates))) for kind, nt in NOTE_TYPES.items()}


def _ordinals(note: Note) -> tuple[int, ...]:
    """The note's cards, as Anki numbers them from 0: one per cloze number, or per template."""
    if NOTE_TYPES[note.kind].is_cloze:
        numbers = {int(n) for n, _ in CLOZE_RE.findall(note.fields["text"])}
        return tuple(sorted(n - 1 for n in numbers))
    return _TEMPLATE_ORDINALS[note.kind]


_FIELD_KEYS = {kind: tuple(key for key, _ in nt.fields) for kind, nt in NOTE_TYPES.items()}


def compile_notes(deck: Deck) -> list[CompiledNote]:
    """Every note of a loaded deck, compiled, in curriculum order."""
    compiler = NoteCompiler(deck)
    return [compiler.compile(note) for note in deck.notes()]


def _in_deck(deck: Deck, shown: str) -> str:
    """A fact set's path relative to the deck directory, from the path shown in problems."""
    try:
        return Path(shown).resolve().relative_to(Path(deck.root).resolve()).as_posix()
    except ValueError:  # not below the deck directory: name the file alone
        return Path(shown).name


def topic_tag(deck: Deck, subdeck: str) -> str:
    """The tag every note of a subdeck carries: its path under the deck id, spaces as '_'."""
    parts = [p.strip().replace(" ", "_") for p in subdeck.split("::")] if subdeck else []
    return "::".join([deck.id, *parts])


def source_line(deck: Deck, note: Note) -> str:
    """The small-print citation shown on the back: kind, author (year), title, venue, section.

    Only what deck.yaml gives is shown, so a source with just a title stays a title. Anki's
    markers typed in deck.yaml are shown as text, like everywhere else.
    """
    return escape_anki_markers(_source_html(deck, note))


def _source_html(deck: Deck, note: Note) -> str:
    if note.source is None or note.source not in deck.sources:
        return html.escape(note.section or "")
    source = deck.sources[note.source]
    title = f"<cite>{html.escape(source.title)}</cite>"
    if source.url:
        title = f'<a href="{html.escape(source.url)}">{title}</a>'
    parts = [title]
    author = " ".join(filter(None, [source.author, source.year and f"({source.year})"]))
    if author:
        parts.insert(0, html.escape(author))
    if source.kind:
        kind = html.escape(source.kind.capitalize())
        parts.insert(0, f'<span class="source-kind">{kind}</span>')
    if source.venue:
        parts.append(html.escape(source.venue))
    if note.section:
        parts.append(html.escape(note.section))
    return " · ".join(parts)


def notetype_hashes(deck: Deck) -> dict[str, str]:
    """The current fingerprint of each note type of a deck, by key."""
    return {nt.key: nt.fingerprint(deck.name) for nt in NOTE_TYPES.values()}


def deck_description(deck: Deck) -> str:
    """The root deck's description: the author's Markdown, then the release version."""
    # render() drops the <p> of a single paragraph; a block keeps the version on its own line.
    text = f"<div>{render(deck.description).html}</div>" if deck.description.strip() else ""
    if deck.version:
        text += f"<p><small>Version {html.escape(deck.version)}</small></p>"
    return text


class PackageParts:
    """The decks and note types of one build, and the rows of each compiled note."""

    def __init__(self, deck: Deck, notetype_mods: Mapping[str, int], first_build: int) -> None:
        self.deck = deck
        self.first_build = first_build
        self.models = {
            kind: _make_model(deck, nt, notetype_mods[nt.key]) for kind, nt in NOTE_TYPES.items()
        }
        self._model_ids = {kind: model.model_id for kind, model in self.models.items()}
        self.decks: dict[str, rows.DeckRecord] = {}
        self.deck_for("").description = deck_description(deck)

    def deck_for(self, subdeck: str) -> rows.DeckRecord:
        """The deck of a subdeck path, creating it and its parents on first use."""
        found = self.decks.get(subdeck)
        if found is not None:
            return found
        parts = [p.strip() for p in subdeck.split("::")] if subdeck else []
        for depth in range(len(parts) + 1):  # parents first, so each gets a stable id
            path = "::".join(parts[:depth])
            if path not in self.decks:
                name = "::".join([self.deck.name, *parts[:depth]])
                self.decks[path] = rows.DeckRecord(ids.deck_id(self.deck.id, path), name)
        self.decks[subdeck] = self.decks["::".join(parts)]
        return self.decks[subdeck]

    def note_rows(
        self, compiled: CompiledNote, *, mod: int, due: int, media_names: Mapping[str, str]
    ) -> tuple[rows.NoteRow, list[rows.CardRow]]:
        """A compiled note's row and card rows: its time from the lock, its place in order."""
        note = compiled.note
        fields = compiled.fields
        if compiled.images:
            fields = tuple(replace_image_sources(f, media_names) for f in fields)
        note_id = ids.note_row_id(self.first_build, due)
        deck = self.decks.get(note.subdeck) or self.deck_for(note.subdeck)
        return (
            rows.note_row(
                note_id, compiled.guid, self._model_ids[note.kind], mod, compiled.tags, fields
            ),
            rows.card_rows(note_id, compiled.ordinals, deck.deck_id, mod, due),
        )

    def unique_decks(self) -> list[rows.DeckRecord]:
        """Each deck once, in the order first used."""
        return list({id(d): d for d in self.decks.values()}.values())


def _make_model(deck: Deck, notetype: NoteType, mod: int) -> rows.NoteTypeRecord:
    return rows.NoteTypeRecord(
        model_id=ids.notetype_id(deck.id, notetype.key),
        name=notetype.name_in(deck.name),
        fields=notetype.field_dicts(),
        templates=notetype.template_dicts(),
        css=notetype.css,
        model_type=rows.CLOZE if notetype.is_cloze else rows.FRONT_BACK,
        mod=mod,
        required=[[ordinal, how, list(fields)] for ordinal, how, fields in notetype.required],
        original_stock_kind=notetype.original_stock_kind,
    )

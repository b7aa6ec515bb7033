"""Cards as Anki renders them, from a package's own templates.

A small subset of Anki's template language: field replacements, `{{#Field}}…{{/Field}}` and
`{{^Field}}…{{/Field}}` sections, `{{FrontSide}}`, and the `cloze` filter. That is all
neurodeck's note types use (the only templates rendered here); tests compare the result with
Anki's own rendering.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from ..markup import MATHJAX_RE
from ..notetypes import CLOZE_RE
from ..snapshot import PackagedNote, Snapshot

T = TypeVar("T")
_TAG_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


@dataclass(frozen=True)
class RenderedCard:
    """One card of a note: its template name (or cloze number) and both sides as HTML."""

    ordinal: int  # 0-based, as Anki stores it
    name: str
    front: str
    back: str


def render_cards(snapshot: Snapshot, note: PackagedNote) -> list[RenderedCard]:
    """Every card the note makes, in card order."""
    notetype = snapshot.notetype_of(note)
    values = {f.name: value for f, value in zip(notetype.fields, note.fields, strict=True)}
    values.update(
        Tags=" ".join(note.tags),
        Deck=note.deck,
        Type=notetype.name,
        Subdeck=note.deck.rsplit("::", 1)[-1],
    )
    cards = []
    for ordinal in note.ordinals:
        template = notetype.templates[0 if notetype.is_cloze else ordinal]
        name = f"Cloze {ordinal + 1}" if notetype.is_cloze else template.name
        front = _render(template.front, _Context(values, ordinal + 1, None))
        back = _render(template.back, _Context(values, ordinal + 1, front))
        cards.append(RenderedCard(ordinal, name, front, back))
    return cards


def group_by_subdeck(
    snapshot: Snapshot, notes: Iterable[PackagedNote], render: Callable[[PackagedNote], list[T]]
) -> dict[str, list[T]]:
    """Rendered notes by subdeck ("" is the root), subdecks in order of first appearance."""
    groups: dict[str, list[T]] = {}
    for note in notes:
        groups.setdefault(snapshot.subdeck_of(note), []).extend(render(note))
    return groups


def answer_part(back: str) -> str:
    """The back of a card without the repeated front (what follows `<hr id=answer>`)."""
    for marker in ('<hr id="answer">', "<hr id=answer>"):
        if marker in back:
            return back.split(marker, 1)[1].strip()
    return back


@dataclass(frozen=True)
class _Context:
    values: Mapping[str, str]
    cloze_number: int
    front_side: str | None  # None while rendering the front

    def field(self, name: str) -> str:
        if name == "FrontSide":
            return self.front_side or ""
        return self.values.get(name, "")


class _Field(NamedTuple):
    """`{{filter:Name}}`: a field's value, through its filters (innermost first)."""

    name: str
    filters: tuple[str, ...]


class _Section(NamedTuple):
    """`{{#Name}}…{{/Name}}` (shown when the field is not empty) or `{{^Name}}…` (when it is)."""

    name: str
    when_present: bool
    body: tuple[_Part, ...]


_Part = str | _Field | _Section


def _render(template: str, context: _Context) -> str:
    return "".join(_render_parts(_parse(template), context))


def _render_parts(parts: tuple[_Part, ...], context: _Context) -> Iterator[str]:
    for part in parts:
        if isinstance(part, str):
            yield part
        elif isinstance(part, _Field):
            yield _replace(part, context)
        elif bool(context.field(part.name).strip()) == part.when_present:
            yield from _render_parts(part.body, context)


@functools.lru_cache(maxsize=256)
def _parse(template: str) -> tuple[_Part, ...]:
    """A template's text, fields and sections (a deck has a few templates, read once each)."""
    parts: list[_Part] = []
    pos = 0
    while match := _TAG_RE.search(template, pos):
        parts.append(template[pos : match.start()])
        tag = match.group(1).strip()
        pos = match.end()
        if tag[:1] in ("#", "^"):
            name = tag[1:].strip()
            close = _TAG_RE.search(template, pos)
            while close and close.group(1).strip() != f"/{name}":
                close = _TAG_RE.search(template, close.end())
            assert close is not None, f"unclosed section in a template: {tag}"
            parts.append(_Section(name, tag[0] == "#", _parse(template[pos : close.start()])))
            pos = close.end()
        elif not tag.startswith("/"):
            *filters, name = (part.strip() for part in tag.split(":"))
            parts.append(_Field(name, tuple(reversed(filters))))
    parts.append(template[pos:])
    return tuple(parts)


def _replace(tag: _Field, context: _Context) -> str:
    value = context.field(tag.name)
    for name_of_filter in tag.filters:  # Anki applies the innermost filter first
        if name_of_filter == "cloze":
            value = _cloze(value, context.cloze_number, answer=context.front_side is not None)
    return value


def _cloze(text: str, number: int, *, answer: bool) -> str:
    def in_formula(match: re.Match[str]) -> str:
        # Inside MathJax, Anki writes a deletion as bare text: the answer, or [hint] / [...].
        def bare(deletion: re.Match[str]) -> str:
            body, _, hint = deletion.group(2).partition("::")
            if int(deletion.group(1)) != number or answer:
                return body
            return f"[{hint or '...'}]"

        return CLOZE_RE.sub(bare, match.group())

    text = MATHJAX_RE.sub(in_formula, text)

    def deletion(match: re.Match[str]) -> str:
        ordinal = int(match.group(1))
        if match.group(2).startswith(_IO_PREFIX):
            return _image_occlusion(
                match.group(2)[len(_IO_PREFIX) :], ordinal, number, answer=answer
            )
        body, _, hint = match.group(2).partition("::")
        if ordinal != number:
            return f'<span class="cloze-inactive" data-ordinal="{ordinal}">{body}</span>'
        shown = body if answer else f"[{hint or '...'}]"
        return f'<span class="cloze" data-ordinal="{ordinal}">{shown}</span>'

    return CLOZE_RE.sub(deletion, text)


_IO_PREFIX = "image-occlusion:"
# How Anki names each property of an image-occlusion shape as a data attribute.
_IO_ATTRIBUTES = {
    "left": "left",
    "top": "top",
    "width": "width",
    "height": "height",
    "rx": "rx",
    "ry": "ry",
    "points": "points",
    "oi": "occludeInactive",
    "text": "text",
    "scale": "scale",
    "fs": "font-size",
}


def _image_occlusion(spec: str, ordinal: int, number: int, *, answer: bool) -> str:
    """A mask as Anki's cloze filter writes it: an empty div whose data the reviewer draws."""
    kind, *props = spec.split(":")
    if ordinal == number or ordinal == 0:  # c0 (text) is shown on every card
        css_class = "cloze-highlight" if answer and ordinal else "cloze"
    else:
        css_class = "cloze-inactive"
    parts = [f'class="{css_class}" data-ordinal="{ordinal}" data-shape="{kind}" ']
    for prop in props:
        name, _, value = prop.partition("=")
        if name in _IO_ATTRIBUTES and value:
            # Anki copies numbers as written; escaping changes nothing in neurodeck's own markup
            # and keeps a hostile package's markup inside its attribute.
            shown = _encode_attribute(value) if name == "text" else html.escape(value)
            parts.append(f'data-{_IO_ATTRIBUTES[name]}="{shown}" ')
    return f"<div {''.join(parts)}></div>"


def _encode_attribute(text: str) -> str:
    # Anki escapes every character of a text label but ASCII letters and digits.
    named = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}
    return "".join(
        c if c.isascii() and c.isalnum() else named.get(c, f"&#x{ord(c):X};") for c in text
    )

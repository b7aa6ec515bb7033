"""A plain Markdown study sheet: a heading per subdeck, then question and answer per card."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable
from html.parser import HTMLParser

from ..diff import md_escape
from ..errors import plural
from ..snapshot import PackagedNote, Snapshot
from .cards import answer_part, group_by_subdeck, render_cards
from .diagram import render_diagram_card

_BLOCK_TAGS = frozenset("p div ul ol blockquote pre h1 h2 h3 h4 h5 h6 figure table tr".split())
_INLINE_MARKS = {"strong": "**", "b": "**", "em": "*", "i": "*", "cite": "*", "code": "`"}


def render_markdown(
    snapshot: Snapshot, notes: Iterable[PackagedNote], *, media_dir: str = ""
) -> str:
    """The study sheet for `notes`, in curriculum order grouped by subdeck; images link to
    `media_dir/<name>` (beside the sheet when empty)."""
    groups = group_by_subdeck(snapshot, notes, lambda note: _note_cards(snapshot, note, media_dir))
    cards = sum(len(items) for items in groups.values())
    version = f"Version {md_escape(snapshot.version)} · " if snapshot.version else ""
    lines = [
        f"# {md_escape(snapshot.deck_name)}",
        "",
        f"{version}{plural(len(snapshot.notes), 'note')} · {plural(cards, 'card')}",
        "",
    ]
    shown: list[str] = []  # the subdeck path whose headings are on the page
    for subdeck, items in groups.items():
        parts = subdeck.split("::") if subdeck else []
        common = 0
        while common < min(len(parts), len(shown)) and parts[common] == shown[common]:
            common += 1
        for depth in range(common, len(parts)):  # parents first, when not already shown
            lines += [f"{'#' * min(depth + 2, 6)} {md_escape(parts[depth])}", ""]
        shown = parts
        for item in items:
            lines += [item, "", "---", ""]
    return "\n".join(lines).rstrip("-\n") + "\n"


def _note_cards(snapshot: Snapshot, note: PackagedNote, media_dir: str) -> list[str]:
    cards = []
    diagram = snapshot.notetype_of(note).key == "occlusion"
    for card in render_cards(snapshot, note):
        front, back = card.front, card.back
        if diagram:  # the image and this card's answer, without Anki's script or masks
            front, back = render_diagram_card(snapshot, note, card.ordinal, masks=False)
        cards.append(
            f"**Q:** {html_to_markdown(front, media_dir)}\n\n"
            f"**A:** {html_to_markdown(answer_part(back), media_dir)}"
        )
    return cards


def html_to_markdown(card_html: str, media_dir: str = "") -> str:
    """Card HTML (from our own renderer) as Markdown; the active cloze deletion in bold."""
    parser = _MarkdownWriter(media_dir)
    parser.feed(card_html)
    parser.close()
    text = "".join(parser.out)
    text = re.sub(r"[ \t]+\n", "\n", text)
    # A break that ends a paragraph or the card breaks nothing, and its backslash would show.
    text = re.sub(r"\\\n(?=\s*$|\n)", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# What may stay as typed in a link destination: characters that cannot end it (`)`, space),
# open another construct (`<`, `[`, `` ` ``) or be read as an escape (`\`) are percent-encoded,
# which means the same address to a browser.
_URL_SAFE = "/:?#@!$&*+,;=%-._~"


def md_url(url: str) -> str:
    """A URL or file name as a Markdown link destination that cannot break out of it."""
    return urllib.parse.quote(url, safe=_URL_SAFE)


class _MarkdownWriter(HTMLParser):
    def __init__(self, media_dir: str = "") -> None:
        super().__init__(convert_charrefs=True)
        self.media_dir = media_dir
        self.out: list[str] = []
        self.closers: list[str] = []  # what each open inline tag writes when it closes
        self.lists: list[list[int]] = []  # [is_ordered, items so far] per open list
        self.in_code = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag in _BLOCK_TAGS:
            self._break()
        if tag in ("ul", "ol"):
            self.lists.append([tag == "ol", 0])
        elif tag == "li" and self.lists:
            self.lists[-1][1] += 1
            ordered, number = self.lists[-1]
            bullet = f"{number}. " if ordered else "- "
            self.out.append("\n" + "   " * (len(self.lists) - 1) + bullet)
        elif tag == "br":
            self.out.append("\\\n")  # a hard line break (trailing spaces are stripped below)
        elif tag == "hr":
            self._break()
        elif tag == "img":
            src = attr.get("src", "")
            if self.media_dir and src and ":" not in src and "/" not in src:
                src = f"{self.media_dir}/{src}"  # a media file, copied there by write_export
            self.out.append(f"![{md_escape(attr.get('alt', ''))}]({md_url(src)})")
        elif tag in _INLINE_MARKS:
            self.in_code = self.in_code or tag == "code"
            self.out.append(_INLINE_MARKS[tag])
            self.closers.append(_INLINE_MARKS[tag])
        elif tag == "a":
            self.out.append("[")
            self.closers.append(f"]({md_url(attr.get('href', ''))})")
        elif tag == "span":
            mark = "**" if attr.get("class") == "cloze" else ""
            self.out.append(mark)
            self.closers.append(mark)

    def handle_endtag(self, tag: str) -> None:
        if tag in _INLINE_MARKS or tag in ("a", "span"):
            self.in_code = self.in_code and tag != "code"
            if self.closers:
                self.out.append(self.closers.pop())
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()
            self._break()
        elif tag in _BLOCK_TAGS:
            self._break()

    def handle_data(self, data: str) -> None:
        text = re.sub(r"\s+", " ", data)
        if not self.out or self.out[-1].endswith("\n"):
            text = text.lstrip()
        self.out.append(text if self.in_code else md_escape(text))

    def _break(self) -> None:
        self.out.append("\n\n")

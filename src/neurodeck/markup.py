"""Markdown → HTML for card fields. Raw HTML in the YAML is escaped, never passed through."""

from __future__ import annotations

import html
import re
import urllib.parse
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # markdown-it is imported on the first field that needs it
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

# Text made only of these characters, starting with a letter and not ending in a space,
# renders under CommonMark as itself with `"` escaped: no markup can start or end in it.
# Most fields are such plain sentences, so skipping the parser for them is the main saving.
# (Not `_`: "a _b_" is emphasis. A property test compares this path with the parser's.)
_PLAIN_RE = re.compile(r"[A-Za-z][A-Za-z0-9 ,.;:'\"?()/{}\-]*(?<! )")


def _emphasis(group: int) -> str:
    # Words in *em*, _em_, **strong** or __strong__, with a space (or the start) before
    # it and a space, the end or `,.;:?` after it. Under CommonMark such a delimiter can
    # only open (before) or only close (after), so each pair is emphasis on its own, whatever
    # else the sentence holds. Only emphasis can bring `*` or `_` into such a field.
    return rf"(?<![^ ])(\*\*|__|\*|_)([A-Za-z0-9]+(?: [A-Za-z0-9]+)*)\{group}(?![^ ,.;:?])"


# Plain sentences with a few emphasised words (the usual way to mark a key term) render as
# the plain path does, with each such word wrapped in <em> or <strong>.
_EMPHASIS_RE = re.compile(_emphasis(1))
_EMPHASISED_RE = re.compile(
    rf"(?:[A-Za-z]|{_emphasis(1)})(?:[A-Za-z0-9 ,.;:'\"?()/{{}}\-]|{_emphasis(3)})*(?<! )"
)
_EMPHASIS_TAGS = {"*": "em", "_": "em", "**": "strong", "__": "strong"}
# Links may go to the web or to an e-mail address; anything else (data:, tel:, a custom app
# scheme) loses its href and shows as plain text. markdown-it has already refused
# javascript:, vbscript: and file:. Images are checked by the pipeline, which packages them.
_SAFE_LINK_RE = re.compile(r"(?:https?://|mailto:|[^:/?#]*(?:[/?#]|$))", re.IGNORECASE)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_WORD_RE = re.compile(r"\w+")
_SINGLE_PARAGRAPH_RE = re.compile(r"<p>((?:(?!<p>).)*)</p>\n", re.DOTALL)


class Rendered(NamedTuple):
    """A field's HTML and the image paths it refers to (as written, unresolved)."""

    html: str
    images: tuple[str, ...] = ()


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # CommonMark with html=False: tags typed in YAML come out as text. Link targets are
    # checked by markdown-it's validateLink, which refuses javascript:, vbscript:, file: and
    # data: (except data:image/...); _drop_unsafe_links then keeps only web and mail links.
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False})


def render(text: str) -> Rendered:
    """Render one field; a single paragraph loses its <p> so cards stay compact."""
    if _PLAIN_RE.fullmatch(text):
        return Rendered(text.replace('"', "&quot;"))
    if _EMPHASISED_RE.fullmatch(text):
        return Rendered(_EMPHASIS_RE.sub(_emphasis_html, text.replace('"', "&quot;")))
    return _render_markdown(text)


def _emphasis_html(match: re.Match[str]) -> str:
    tag = _EMPHASIS_TAGS[match.group(1)]
    return f"<{tag}>{match.group(2)}</{tag}>"


def _render_markdown(text: str) -> Rendered:
    parser = _parser()
    tokens = parser.parse(text)
    _drop_unsafe_links(tokens)
    images = tuple(_image_sources(tokens))  # before rendering: it decodes each src
    out = parser.renderer.render(tokens, parser.options, {})
    single = _SINGLE_PARAGRAPH_RE.fullmatch(out)
    return Rendered(single.group(1) if single else out.rstrip("\n"), images)


def _drop_unsafe_links(tokens: list[Token]) -> None:
    for token in tokens:
        for child in token.children or ():
            if child.type == "link_open" and not _SAFE_LINK_RE.match(str(child.attrGet("href"))):
                del child.attrs["href"]


def _image_sources(tokens: list[Token]) -> list[str]:
    # markdown-it percent-encodes link targets (images/café.png -> images/caf%C3%A9.png);
    # the pipeline needs the path as a file name, so the src is decoded back, unless that
    # would make a control character (%00) or a scheme (javascript%3A), which the checks
    # on the written target never saw. Such a src stays as written and names no file.
    found = []
    for token in tokens:
        for child in token.children or ():
            if child.type == "image":
                src = str(child.attrGet("src") or "")
                decoded = urllib.parse.unquote(src)
                if not _CONTROL_RE.search(decoded) and ":" not in decoded:
                    child.attrs["src"] = src = decoded
                found.append(src)
    return found


def replace_image_sources(field_html: str, mapping: Mapping[str, str]) -> str:
    """Point rendered <img src> attributes at the names the media files get in the package."""
    for written, packaged in mapping.items():
        field_html = field_html.replace(
            f'src="{_escape_like_markdown_it(written)}"', f'src="{html.escape(packaged)}"'
        )
    return field_html


def _escape_like_markdown_it(text: str) -> str:
    # markdown-it's escapeHtml: like html.escape, but a single quote stays as it is.
    return html.escape(text, quote=False).replace('"', "&quot;")


def plain_text(text: str) -> str:
    """The visible words of a field, lower-cased, for comparing a prompt with its answer."""
    if text.isascii():  # most fields; the same words as below, found three times faster
        words = text.encode("ascii").lower().translate(_ASCII_NON_WORDS).split()
        return b" ".join(words).decode("ascii")
    return " ".join(_WORD_RE.findall(text.lower()))


# Every byte that is not a word character in ASCII text becomes a space.
_ASCII_NON_WORDS = bytes(c if re.fullmatch(rb"\w", bytes([c])) else 0x20 for c in range(256))

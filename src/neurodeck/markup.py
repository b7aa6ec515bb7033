"""Markdown → HTML for card fields. Raw HTML in the YAML is escaped, never passed through."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token

# Text made only of these characters, starting with a letter and not ending in a space,
# renders under CommonMark as itself with `"` escaped: no markup can start or end in it.
# Most fields are such plain sentences, so skipping the parser for them is the main saving.
_PLAIN_RE = re.compile(r"[^\W\d_][\w ,.;:'\"?()/{}\-]*(?<! )", re.ASCII)
_SINGLE_PARAGRAPH_RE = re.compile(r"<p>((?:(?!<p>).)*)</p>\n", re.DOTALL)


@dataclass(frozen=True)
class Rendered:
    """A field's HTML and the image paths it refers to (as written, unresolved)."""

    html: str
    images: tuple[str, ...] = ()


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    # CommonMark with html=False: tags typed in YAML come out as text. Link targets are
    # checked by markdown-it's validateLink, which refuses javascript:, vbscript:, file: and data:.
    return MarkdownIt("commonmark", {"html": False})


def render(text: str) -> Rendered:
    """Render one field; a single paragraph loses its <p> so cards stay compact."""
    if _PLAIN_RE.fullmatch(text):
        return Rendered(text.replace('"', "&quot;"))
    return _render_markdown(text)


def _render_markdown(text: str) -> Rendered:
    parser = _parser()
    tokens = parser.parse(text)
    images = tuple(_image_sources(tokens))
    out = parser.renderer.render(tokens, parser.options, {})
    single = _SINGLE_PARAGRAPH_RE.fullmatch(out)
    return Rendered(single.group(1) if single else out.rstrip("\n"), images)


def _image_sources(tokens: list[Token]) -> list[str]:
    found = []
    for token in tokens:
        for child in token.children or ():
            if child.type == "image":
                found.append(str(child.attrGet("src") or ""))
    return found


def replace_image_sources(field_html: str, mapping: dict[str, str]) -> str:
    """Point rendered <img src> attributes at the names the media files get in the package."""
    for written, packaged in mapping.items():
        escaped = html.escape(written, quote=True)
        field_html = field_html.replace(f'src="{escaped}"', f'src="{html.escape(packaged)}"')
    return field_html


def plain_text(text: str) -> str:
    """The visible words of a field, lower-cased, for comparing a prompt with its answer."""
    words = re.sub(r"[^\w]+", " ", text.lower())
    return " ".join(words.split())

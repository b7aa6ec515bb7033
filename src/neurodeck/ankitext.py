"""Anki's own rules for text and deck names, ported from its Rust library (rslib), so that
`build` refuses what Anki would show blank or rename, and `verify` judges cards as Anki does.

Each rule names the rslib function it follows (Anki 26.x); tests check them against Anki.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable

# rslib text.rs HTML: comments, style and script elements, then any tag.
_HTML_RE = re.compile(
    r"(?si)(<!--.*?-->)|(<style.*?>.*?</style>)|(<script.*?>.*?</script>)|(<.*?>)"
)
# rslib text.rs HTML_MEDIA_TAGS: an image, audio, video, object or source tag and its file.
_MEDIA_TAG_RE = re.compile(
    r"""(?xsi)
    <\b(?:img|audio|video|object|source)\b
    (?:[^>]|"[^"]+?"|'[^']+?')+?
    \b(?:src|data)\b=
    (?:"([^"]+?)"[^>]*>|'([^']+?)'[^>]*>|([^ >]+?)(?:\x20[^>]*>|>))
    """
)


def strip_html_preserving_media_filenames(field_html: str) -> str:
    """rslib's function of that name: tags dropped (an image becomes its file name), entities
    decoded, no-break spaces made spaces. Anki uses it for the first field's emptiness,
    duplicates and the browser's sort column."""
    text = _MEDIA_TAG_RE.sub(lambda m: f" {m.group(1) or m.group(2) or m.group(3)} ", field_html)
    text = _HTML_RE.sub("", text)
    return html.unescape(text).replace("\u00a0", " ") if "&" in text else text


def media_names(fields: Iterable[str]) -> set[str]:
    """The media files the fields show (rslib's HTML_MEDIA_TAGS, entities decoded), by name."""
    return {
        html.unescape(m.group(1) or m.group(2) or m.group(3))
        for field_html in fields
        if "src" in field_html or "data" in field_html
        for m in _MEDIA_TAG_RE.finditer(field_html)
    }


def shows_nothing(field_html: str) -> bool:
    """True when a learner would see no text and no image: Anki's stripped text is blank.

    Beyond Anki's own test (whitespace only), invisible format characters such as a
    zero-width space count as nothing too: the card would look just as blank.
    """
    text = strip_html_preserving_media_filenames(field_html)
    return all(c.isspace() or unicodedata.category(c) == "Cf" for c in text)


def deck_name_component(component: str) -> str:
    """rslib decks/name.rs normalized_deck_name_component: NFC, ASCII control characters
    dropped, whitespace and colons trimmed; an empty part becomes "blank"."""
    out = unicodedata.normalize("NFC", component)
    out = "".join(c for c in out if not (c < " " or c == "\x7f"))
    start, end = 0, len(out)
    while start < end and (out[start].isspace() or out[start] == ":"):
        start += 1
    while end > start and (out[end - 1].isspace() or out[end - 1] == ":"):
        end -= 1
    return out[start:end] or "blank"


def deck_name_key(component: str) -> str:
    """How Anki compares deck names: normalized, then case-insensitively (its `unicase`)."""
    return deck_name_component(component).casefold()

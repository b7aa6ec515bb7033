"""Markdown → HTML for card fields. Raw HTML in the YAML is escaped, never passed through."""

from __future__ import annotations

import html
import re
import urllib.parse
from collections.abc import Callable, Mapping
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
# Past the first character, `#`, `=`, `+`, `!` and the rest mean something only at the start
# of a line or before a `[`; and letters and digits of any script, and a few signs cards use
# (minus, dashes, degree, times, plus-minus, middle dot, curly quotes, ellipsis), are text.
# An `&` before a space can start no entity, and comes out as `&amp;`.
_TEXT = r"A-Za-z0-9 ,.;:'\"?()/{}\-=%+!#$^|~@"
_SIGNS = r"\u2212\u2013\u2014\u00b0\u00d7\u00b1\u00b7\u2018\u2019\u201c\u201d\u2026"
_RARE_TEXT = rf"[^\W_\x00-\x7f]|[{_SIGNS}]|&(?= )"
# `code`, as CommonMark reads it when the text between the backticks neither starts nor
# ends with a space and holds no `<`, `>` or line break (its `&` and `"` are escaped).
# A backtick next to another would make a longer run, which only a run as long closes.
# No `[` or `\` either: Anki would read [sound:…] or \(…\) even inside <code>, and only
# the full path makes them text (escape_anki_markers, the set-aside MathJax).
_CODE = r"(?<!`)`([^`\n<>\[\\ ](?:[^`\n<>\[\\]*[^`\n<>\[\\ ])?)`(?!`)"


def _emphasis(group: int) -> str:
    # Words in *em*, _em_, **strong** or __strong__ (plain text inside, starting with a
    # letter, digit or `(`, not ending in a space), with a space (or the start) before it
    # and a space, the end or `,.;:?` after it. Under CommonMark such delimiters pair up
    # with each other and nothing else, whatever the sentence holds around them. Only
    # emphasis can bring `*` or `_` into such a field.
    inside = r"[A-Za-z0-9(][A-Za-z0-9 (),.;:'/?-]*(?<! )"
    return rf"(?<![^ ])(\*\*|__|\*|_)({inside})\{group}(?![^ ,.;:?])"


# Plain sentences with a few emphasised words (the usual way to mark a key term) render as
# the plain path does, with each such word wrapped in <em> or <strong>, and `code` in <code>.
# (Runs of the common characters between the rest: one character class per run is far
# faster for the regex engine than an alternation per character.)
_EMPHASISED_RE = re.compile(
    rf"(?:[A-Za-z]|{_emphasis(1)}|{_CODE})"
    rf"[{_TEXT}]*(?:(?:{_RARE_TEXT}|{_emphasis(4)}|{_CODE})[{_TEXT}]*)*(?<! )"
)
_EMPHASIS_RE = re.compile(_emphasis(1))
# Code spans come before emphasis: a `*` between backticks is text.
_CODE_OR_EMPHASIS_RE = re.compile(rf"{_CODE}|{_emphasis(2)}")
_EMPHASIS_TAGS = {"*": "em", "_": "em", "**": "strong", "__": "strong"}
_BLANK_LINES_RE = re.compile(r"\n\n+")
# Links may go to the web or to an e-mail address; anything else (data:, tel:, a custom app
# scheme) loses its href and shows as plain text. markdown-it has already refused
# javascript:, vbscript: and file:. Images are checked by the pipeline, which packages them.
_SAFE_LINK_RE = re.compile(r"(?:https?://|mailto:|[^:/?#]*(?:[/?#]|$))", re.IGNORECASE)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
WORD_RE = re.compile(r"\w+")
HTML_TAG_RE = re.compile(r"<[^>]*>")
_SINGLE_PARAGRAPH_RE = re.compile(r"<p>((?:(?!<p>).)*)</p>\n", re.DOTALL)
# Anki reads these anywhere in a card's HTML as its own markers: [sound:x] becomes a play
# button, [anki:tts]…[/anki:tts] speech (any [anki:…] is a directive), [latex], [$] and [$$]
# typesetting, [[type:…]] an answer box. Typed in YAML they are text, like HTML and {{Field}}:
# their `[` becomes `&#91;`, which a browser shows as `[` and Anki's parsers pass over.
_ANKI_MARKER_RE = re.compile(r"\[(?=\[type:|sound:|/?anki:|/?latex\]|/?\$\$?\])", re.IGNORECASE)


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
    sentence = sentence_html(text)
    if sentence is not None:
        return Rendered(sentence)
    if "\n" in text:
        blocks = _simple_blocks_html(text)
        if blocks is not None:
            return Rendered(blocks)
    return _render_markdown(text)


def sentence_html(text: str) -> str | None:
    """The HTML of a field that is one plain sentence, perhaps with emphasised words (most
    fields), as render() gives it; None for anything else. It refers to no image."""
    if _PLAIN_RE.fullmatch(text):
        return text.replace('"', "&quot;")
    if _EMPHASISED_RE.fullmatch(text):
        return _inline_html(text)
    return None


def _inline_html(line: str) -> str:
    """A line that _PLAIN_RE or _EMPHASISED_RE takes, as markdown-it renders it inline."""
    escaped = line.replace("&", "&amp;").replace('"', "&quot;")
    if "`" in line:  # rare: a second alternative at every position costs as much again
        return _CODE_OR_EMPHASIS_RE.sub(_code_or_emphasis_html, escaped)
    return _EMPHASIS_RE.sub(_emphasis_html, escaped)


def _simple_blocks_html(text: str) -> str | None:
    """Paragraphs and tight bullet lists of such lines (a deck description, say), as
    markdown-it renders them; None for anything else.

    Blocks are separated by blank lines. A paragraph's lines each start with a letter or
    emphasis (so none opens a list, heading or quote); a list's items start with `- `, and
    an item goes on in lines indented by two spaces. Two lists in a row would be one loose
    list, so they are left to markdown-it.
    """
    html = []
    previous_was_list = False
    for block in _BLANK_LINES_RE.split(text.strip("\n")):
        lines = block.split("\n")
        if lines[0].startswith("- "):
            if previous_was_list:
                return None
            items: list[list[str]] = []
            for line in lines:
                if line.startswith("- "):
                    items.append([line[2:]])
                elif line.startswith("  ") and items:
                    items[-1].append(line[2:])
                else:
                    return None
            parts = ["<ul>\n"]
            for item in items:
                if not all(map(_is_simple_line, item)):
                    return None
                parts.append(f"<li>{chr(10).join(map(_inline_html, item))}</li>\n")
            parts.append("</ul>\n")
            html.append("".join(parts))
            previous_was_list = True
        else:
            if not all(map(_is_simple_line, lines)):
                return None
            html.append(f"<p>{chr(10).join(map(_inline_html, lines))}</p>\n")
            previous_was_list = False
    if len(html) == 1 and html[0].startswith("<p>"):
        return html[0][3:-5]  # one paragraph loses its <p>, as render() does
    return "".join(html).rstrip("\n")


def _is_simple_line(line: str) -> bool:
    return bool(_PLAIN_RE.fullmatch(line) or _EMPHASISED_RE.fullmatch(line))


def _emphasis_html(match: re.Match[str]) -> str:
    tag = _EMPHASIS_TAGS[match.group(1)]
    return f"<{tag}>{match.group(2)}</{tag}>"


def _code_or_emphasis_html(match: re.Match[str]) -> str:
    code, mark, inside = match.group(1, 2, 3)
    if code is not None:
        return f"<code>{code}</code>"
    tag = _EMPHASIS_TAGS[mark]
    return f"<{tag}>{inside}</{tag}>"


def _render_markdown(text: str) -> Rendered:
    parser = _parser()
    text, formulas = _set_aside_mathjax(text)
    tokens = parser.parse(text)
    _drop_unsafe_links(tokens)
    images = tuple(_image_sources(tokens))  # before rendering: it decodes each src
    out = parser.renderer.render(tokens, parser.options, {})
    single = _SINGLE_PARAGRAPH_RE.fullmatch(out)
    out = single.group(1) if single else out.rstrip("\n")
    return Rendered(escape_anki_markers(_put_back_mathjax(out, formulas)), images)


def _set_aside_mathjax(text: str) -> tuple[str, list[str]]:
    """The text with each MathJax formula replaced by a placeholder, and the formulas.

    Markdown would read `\\(` as an escaped `(` and `_` or `*` inside a formula as emphasis,
    so no formula would reach Anki. A placeholder is made of private-use characters that
    the text does not hold, so Markdown passes it through untouched.
    """
    if "\\(" not in text and "\\[" not in text:
        return text, []
    formulas: list[str] = []

    def aside(match: re.Match[str]) -> str:
        formulas.append(match.group())
        return f"{_MATH_MARK}{len(formulas) - 1}{_MATH_MARK}"

    if _MATH_MARK in text:  # pragma: no cover - a private-use character typed on purpose
        return text, []
    return MATHJAX_RE.sub(aside, text), formulas


def literal_text_mistakes(text: str) -> list[tuple[str, str]]:
    """(message, hint) for each way Markdown would silently drop characters the author most
    likely meant literally: `*` between letters or digits (`3*4*5` shows as 3<em>4</em>5) and
    a line starting with `#` (a heading: the `#` disappears). Each hint is the edit that keeps
    the characters; tests apply it."""
    mistakes = []
    if "*" in text and _INTRAWORD_STAR_RE.search(text):
        escaped = _outside_verbatim(
            text, lambda part: _INTRAWORD_STAR_RE.sub(lambda m: "\\*" * len(m.group()), part)
        )
        if render(escaped).html != render(text).html:
            words = [
                w
                for w in dict.fromkeys(_outside_verbatim(text, _keep).split())
                if _INTRAWORD_STAR_RE.search(w)
            ][:3]
            fixed = [_INTRAWORD_STAR_RE.sub(lambda m: "\\*" * len(m.group()), w) for w in words]
            mistakes.append(
                (
                    f"Markdown reads `*` between letters or digits as emphasis: "
                    f"{', '.join(words)} would lose {'its' if len(words) == 1 else 'their'} "
                    "asterisks",
                    f"write {', '.join(fixed)} (a backslash before each * meant literally; inside "
                    '"..." quotes write \\\\*)',
                )
            )
    if "#" in text and _HEADING_RE.search(_outside_verbatim(text, _keep)):
        mistakes.append(
            (
                "a line starting with `#` is a Markdown heading: the `#` would not be shown",
                'write \\# instead of # at the start of the line to show it (inside "..." '
                "quotes write \\\\#)",
            )
        )
    return mistakes


def _keep(part: str) -> str:
    return part


def _outside_verbatim(text: str, change: Callable[[str], str]) -> str:
    """The text with `change` applied outside code spans and MathJax formulas."""
    out, pos = [], 0
    for match in _VERBATIM_RE.finditer(text):
        out.append(change(text[pos : match.start()]))
        out.append(" " if change is _keep else match.group())
        pos = match.end()
    out.append(change(text[pos:]))
    return "".join(out)


def _put_back_mathjax(html_text: str, formulas: list[str]) -> str:
    if not formulas:
        return html_text
    # Escaped like any text (MathJax reads the text, so `&lt;` is still `<` to it), and
    # with `{{c1::...}}` inside kept, which Anki turns into a deletion within the formula.
    return _MATH_PLACEHOLDER_RE.sub(
        lambda m: _escape_like_markdown_it(formulas[int(m.group(1))]), html_text
    )


# Anki's MathJax delimiters: \(inline\) and \[display\]. A formula may span lines.
MATHJAX_RE = re.compile(r"\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
_MATH_MARK = "\ue000"
_VERBATIM_RE = re.compile(r"(`+).*?\1|" + MATHJAX_RE.pattern, re.DOTALL)
# Stars between letters or digits. (A star first, then a look back at the letter before it:
# a pattern that starts with a star lets the regex engine skip to the stars of a field.)
_INTRAWORD_STAR_RE = re.compile(r"\*(?<=[^\W_]\*)\**(?=[^\W_])")
_HEADING_RE = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)", re.MULTILINE)
_MATH_PLACEHOLDER_RE = re.compile(f"{_MATH_MARK}([0-9]+){_MATH_MARK}")


def escape_anki_markers(text_html: str) -> str:
    """HTML in which Anki finds none of its [sound:…], [anki:…], [latex]… markers."""
    return _ANKI_MARKER_RE.sub("&#91;", text_html) if "[" in text_html else text_html


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


def html_to_text(fragment: str) -> str:
    """The visible text of an HTML fragment on one line: tags dropped, entities decoded,
    whitespace collapsed."""
    return " ".join(html.unescape(HTML_TAG_RE.sub(" ", fragment)).split())


def plain_text(text: str) -> str:
    """The visible words of a field, lower-cased, for comparing a prompt with its answer."""
    if text.isascii():  # most fields; the same words as below, found three times faster
        words = text.encode("ascii").translate(_ASCII_LOWER_WORDS).split()
        return b" ".join(words).decode("ascii")
    return " ".join(WORD_RE.findall(text.lower()))


# In ASCII text, a word character's lower case, and a space for every other byte.
_ASCII_LOWER_WORDS = bytes(
    bytes([c]).lower()[0] if re.fullmatch(rb"\w", bytes([c])) else 0x20 for c in range(256)
)

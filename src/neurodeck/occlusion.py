"""Diagrams as Anki's own image-occlusion notes: markup, card numbers, and the image itself.

Anki (23.10 and later) stores every mask of an image-occlusion note as a cloze deletion in its
Occlusion field, `{{c2::image-occlusion:rect:left=.52:top=.3:width=.1:height=.08:oi=1}}`, with
coordinates as fractions of the image. Shapes with the same number make one card; `oi=1`
("occlude inactive") also covers the other regions on the front (Anki's "Hide All, Guess One");
without it only the asked region is covered ("Hide One, Guess One"). Text drawn on the image
is a shape numbered c0, which makes no card and shows on every card.

A card's review history belongs to its cloze number, so each occlusion (or group) keeps the
number the lock gave it the first time it was built; numbers of removed occlusions are never
given to another region.
"""

from __future__ import annotations

import html
import re
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import NamedTuple

from .errors import Location, Problem
from .model import SLUG_RE, Diagram, Label, Note, Occlusion, Shape

# The note type's CSS shows the answer of card N only on card N (Anki gives the card's <body>
# the class cardN), for this many cards; check refuses a diagram with more.
MAX_DIAGRAM_CARDS = 100
DEFAULT_LABEL_SIZE = 0.04
# Anki's image-occlusion editor drops shapes under 5 pixels wide or high when it saves a note.
MIN_SHAPE_PIXELS = 5
# Anki splits the markup at ':' and ends the deletion at '}}'; HTML would be drawn as is.
_LABEL_FORBIDDEN_RE = re.compile(r"[:{}<>&\"\\\x00-\x1f]")
_MARKUP_RE = re.compile(
    r"\{\{c(\d+)::image-occlusion:(rect|ellipse|polygon|text)((?::[^:}]*)*)\}\}"
)


def anki_number(value: float) -> str:
    """A coordinate as Anki's editor writes it: four decimals, no leading or trailing zeros."""
    if value == 0:
        return ".0000"
    return f"{value:.4f}".strip("0")


def assign_numbers(diagram: Diagram, before: Mapping[str, int]) -> dict[str, int]:
    """Cloze numbers by card key: those in the lock are kept, new keys get unused numbers.

    The result keeps the numbers of keys no longer in the diagram, so that no other region
    ever inherits their learners' review history.
    """
    numbers = dict(before)
    next_number = max(numbers.values(), default=0) + 1
    for key in diagram.cards():
        if key not in numbers:
            numbers[key] = next_number
            next_number += 1
    return numbers


def occlusion_field(diagram: Diagram, numbers: Mapping[str, int]) -> str:
    """The Occlusion field: every shape as a deletion numbered by its card, then the labels."""
    extra = ":oi=1" if diagram.mode == "hide-all" else ""
    parts = [
        f"{{{{c{numbers[o.card_key]}::image-occlusion:{_shape_markup(o.shape)}{extra}}}}}<br>"
        for o in diagram.occlusions
    ]
    parts += [
        f"{{{{c0::image-occlusion:{_label_markup(label)}{extra}}}}}<br>" for label in diagram.labels
    ]
    return "".join(parts)


def _shape_markup(shape: Shape) -> str:
    c = shape.coords
    if shape.kind == "rect":
        return (
            f"rect:left={anki_number(c[0])}:top={anki_number(c[1])}"
            f":width={anki_number(c[2])}:height={anki_number(c[3])}"
        )
    if shape.kind == "ellipse":  # Anki's left and top are the corner of the box it fills
        return (
            f"ellipse:left={anki_number(c[0])}:top={anki_number(c[1])}"
            f":rx={anki_number(c[2] / 2)}:ry={anki_number(c[3] / 2)}"
        )
    xs, ys = c[0::2], c[1::2]
    points = " ".join(f"{anki_number(x)},{anki_number(y)}" for x, y in zip(xs, ys, strict=True))
    return f"polygon:left={anki_number(min(xs))}:top={anki_number(min(ys))}:points={points}"


def _label_markup(label: Label) -> str:
    size = label.size if label.size is not None else DEFAULT_LABEL_SIZE
    return (
        f"text:left={anki_number(label.left)}:top={anki_number(label.top)}"
        f":text={label.text}:scale=1:fs={anki_number(size)}"
    )


def answers_html(diagram: Diagram, numbers: Mapping[str, int], render: Callable[[str], str]) -> str:
    """The answer of every card; the note type's CSS shows each only on its own card."""
    rows = []
    for key, occlusions in diagram.cards().items():
        answer = next((o.answer for o in occlusions if o.answer), "")
        shown = render(answer) if answer else ""
        rows.append(
            f'<div class="nd-io-answer nd-io-c{numbers[key]}" '
            f'data-occlusion="{html.escape(key)}">{shown}</div>'
        )
    return f'<div class="nd-io-answers">{"".join(rows)}</div>'


class MarkupShape(NamedTuple):
    """A shape read back from an Occlusion field (for the exports and release-check)."""

    number: int  # 0 for a text label
    kind: str
    props: dict[str, str]


def parse_occlusion_field(text: str) -> list[MarkupShape]:
    """The shapes of an Occlusion field as Anki reads them."""
    shapes = []
    for match in _MARKUP_RE.finditer(html.unescape(text)):
        props = dict(part.partition("=")[::2] for part in match.group(3).split(":")[1:])
        shapes.append(MarkupShape(int(match.group(1)), match.group(2), props))
    return shapes


def answers_by_number(back_extra: str) -> dict[int, str]:
    """Each card's occlusion id, read from the Back Extra field that answers_html wrote."""
    return {
        int(n): html.unescape(key)
        for n, key in re.findall(
            r'class="nd-io-answer nd-io-c(\d+)" data-occlusion="([^"]*)"', back_extra
        )
    }


# --- Checks ------------------------------------------------------------------------------------


def check_diagram(note: Note) -> list[Problem]:
    """The rules an occlusion note's shapes, ids and labels follow (no file is read here)."""
    diagram = note.diagram
    assert diagram is not None
    problems: list[Problem] = []
    seen: dict[str, Occlusion] = {}
    groups = {o.group for o in diagram.occlusions if o.group}
    answers: dict[str, Occlusion] = {}
    for occlusion in diagram.occlusions:
        where = f"occlusion {occlusion.id!r} of note {note.id!r}"
        for what, value in (("id", occlusion.id), ("group", occlusion.group)):
            if value is not None and not SLUG_RE.fullmatch(value):
                problems.append(
                    Problem(
                        occlusion.loc,
                        f"{what} {value!r} of {where} is not a lowercase slug",
                        hint="use lowercase letters, digits and single hyphens, e.g. "
                        "`amygdala-left`",
                    )
                )
        first = seen.setdefault(occlusion.id, occlusion)
        if first is not occlusion:
            problems.append(
                Problem(
                    occlusion.loc,
                    f"duplicate occlusion id {occlusion.id!r} in note {note.id!r}",
                    hint=f"first used at line {first.loc.line}; give every shape its own id, "
                    "and the same `group` to shapes that belong to one card",
                )
            )
        elif occlusion.group is None and occlusion.id in groups:
            problems.append(
                Problem(
                    occlusion.loc,
                    f"{where} has the id of a group",
                    hint="rename the occlusion or the group: a card is known "
                    "by its group's id, or else by its occlusion's",
                )
            )
        if occlusion.answer is not None and not occlusion.answer.strip():
            problems.append(
                Problem(
                    occlusion.loc,
                    f"`answer` of {where} is empty",
                    hint="write the name of the region, or remove `answer`",
                )
            )
        elif occlusion.answer is not None:
            other = answers.setdefault(occlusion.card_key, occlusion)
            if other.answer != occlusion.answer:
                problems.append(
                    Problem(
                        occlusion.loc,
                        f"{where} answers {occlusion.answer!r}, but "
                        f"{other.id!r} of the same group answers {other.answer!r}",
                        hint="a group makes one card with one answer: write it once, or make them "
                        "the same",
                    )
                )
        problems += _check_shape(occlusion.shape, where)
    cards = len(diagram.cards())
    if cards > MAX_DIAGRAM_CARDS:
        problems.append(
            Problem(
                note.loc,
                f"note {note.id!r} makes {cards} cards; a diagram may make at most "
                f"{MAX_DIAGRAM_CARDS}",
                hint="split the figure into several notes, or group shapes",
            )
        )
    for label in diagram.labels:
        problems += _check_label(label, note.id)
    return problems


def _check_shape(shape: Shape, where: str) -> list[Problem]:
    c = shape.coords
    what = f"`{shape.kind}` of {where}"
    if shape.kind == "polygon":
        xs, ys = c[0::2], c[1::2]
        if not all(0 <= v <= 1 for v in c):
            return [_outside(shape, what)]
        # Shoelace formula: points on one line enclose nothing, and Anki would draw nothing.
        area = sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(xs))) / 2
        if abs(area) < 1e-9:
            return [
                Problem(
                    shape.loc,
                    f"{what} encloses no area",
                    hint="give at least three points that are not on one line",
                )
            ]
        return []
    left, top, width, height = c
    if width <= 0 or height <= 0:
        return [
            Problem(
                shape.loc,
                f"{what} has a width or height of {min(width, height):g}",
                hint="the third and fourth numbers are width and height; both must be above 0",
            )
        ]
    if left < 0 or top < 0 or left + width > 1 + 1e-9 or top + height > 1 + 1e-9:
        return [_outside(shape, what)]
    return []


def _outside(shape: Shape, what: str) -> Problem:
    return Problem(
        shape.loc,
        f"{what} reaches outside the image",
        hint="coordinates are fractions of the image's width and height: 0 is the "
        "left or top edge, 1 the right or bottom edge",
    )


def _check_label(label: Label, note_id: str) -> list[Problem]:
    what = f"label {label.text!r} of note {note_id!r}"
    problems = []
    bad = _LABEL_FORBIDDEN_RE.search(label.text)
    if not label.text.strip():
        problems.append(
            Problem(
                label.loc,
                f"a label of note {note_id!r} has no text",
                hint="write the text, or remove the label",
            )
        )
    elif bad is not None:
        problems.append(
            Problem(
                label.loc,
                f"{what} contains {bad.group()!r}, which Anki's image-occlusion markup "
                "cannot hold",
                hint='leave out : { } < > & " and \\ in labels',
            )
        )
    if not (0 <= label.left <= 1 and 0 <= label.top <= 1):
        problems.append(
            Problem(
                label.loc,
                f"{what} is placed outside the image",
                hint="`at: [left, top]` are fractions of the image, 0 to 1",
            )
        )
    if label.size is not None and not 0 < label.size <= 0.5:
        problems.append(
            Problem(
                label.loc,
                f"{what} has size {label.size:g}",
                hint="size is the text's height as a fraction of the image's height, e.g. 0.04",
            )
        )
    return problems


def check_numbers(note: Note, numbers: Iterable[tuple[str, int]]) -> list[Problem]:
    """Card numbers the note type's styling cannot show an answer for (after many edits)."""
    assert note.diagram is not None
    current = note.diagram.cards()
    if len(current) > MAX_DIAGRAM_CARDS:
        return []  # the note makes too many cards: check_diagram says so, with its own fix
    high = [f"{key!r} (c{n})" for key, n in numbers if key in current and n > MAX_DIAGRAM_CARDS]
    if not high:
        return []
    return [
        Problem(
            note.loc,
            f"diagram {note.id!r} has card numbers above {MAX_DIAGRAM_CARDS}: "
            f"{', '.join(high)}; their backs would show no answer",
            hint="the lock keeps the numbers of removed occlusions; give the diagram a "
            "new note id and retire the old note",
        )
    ]


# --- The image ---------------------------------------------------------------------------------


class ImageInfo(NamedTuple):
    """What the first bytes of an image file say: its format and pixel size (if it has one)."""

    format: str  # png, jpeg, webp, svg
    width: int | None
    height: int | None


def sniff_image(data: bytes) -> ImageInfo | None:
    """The format and size of a PNG, JPEG, WebP or SVG image; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return ImageInfo("png", width, height)
    if data.startswith(b"\xff\xd8\xff"):
        return ImageInfo("jpeg", *_jpeg_size(data))
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ImageInfo("webp", *_webp_size(data))
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<svg", b"<?xml", b"<!--", b"<!doctype svg")) and b"<svg" in head:
        return ImageInfo("svg", *_svg_size(data[:4096].decode("utf-8", "replace")))
    return None


def _jpeg_size(data: bytes) -> tuple[int | None, int | None]:
    pos = 2
    while pos + 9 < len(data):
        if data[pos] != 0xFF:
            return None, None
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        # Start-of-frame markers hold the size; C4, C8 and CC are other tables.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    return None, None


def _webp_size(data: bytes) -> tuple[int | None, int | None]:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None, None


def _svg_size(head: str) -> tuple[int | None, int | None]:
    tag = re.search(r"<svg\b[^>]*>", head, re.IGNORECASE)
    if tag is None:
        return None, None
    sizes = [
        re.search(rf'\b{name}\s*=\s*["\']\s*([0-9.]+)\s*(?:px)?\s*["\']', tag.group())
        for name in ("width", "height")
    ]
    if sizes[0] and sizes[1]:
        return round(float(sizes[0].group(1))), round(float(sizes[1].group(1)))
    box = re.search(
        r'viewBox\s*=\s*["\']\s*[-0-9.]+[\s,]+[-0-9.]+[\s,]+([0-9.]+)[\s,]+([0-9.]+)', tag.group()
    )
    if box:
        return round(float(box.group(1))), round(float(box.group(2)))
    return None, None


def check_image(note: Note, data: bytes | None, loc: Location) -> Iterator[Problem]:
    """Problems with the diagram's image file, whose bytes are `data` (None: unreadable)."""
    diagram = note.diagram
    assert diagram is not None
    info = None if data is None else sniff_image(data)
    if info is None:
        yield Problem(
            loc,
            f"image {diagram.image!r} of note {note.id!r} is not a PNG, JPEG, WebP or SVG image",
            hint="Anki's image occlusion needs one of these; export the figure as PNG "
            "(its first bytes show what the file really is)",
        )
        return
    if info.width is None or info.height is None:
        return
    for occlusion in diagram.occlusions:
        c = occlusion.shape.coords
        if occlusion.shape.kind == "polygon":
            width, height = max(c[0::2]) - min(c[0::2]), max(c[1::2]) - min(c[1::2])
        else:
            width, height = c[2], c[3]
        pixels = min(width * info.width, height * info.height)
        if pixels < MIN_SHAPE_PIXELS:
            yield Problem(
                occlusion.shape.loc,
                f"occlusion {occlusion.id!r} of note {note.id!r} is {pixels:.1f} pixels across "
                f"on this {info.width}x{info.height} image",
                severity="warning",
                hint=f"make it at least {MIN_SHAPE_PIXELS} pixels wide and high: Anki's "
                "image-occlusion editor drops smaller shapes when a learner edits the note",
            )

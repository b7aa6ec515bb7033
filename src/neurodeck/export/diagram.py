"""Image-occlusion cards drawn without Anki: the image with an SVG of its masks on top.

Anki's reviewer draws the masks with a script of its own that a preview page does not have,
so the preview draws them from the same Occlusion field, in Anki's colours: the asked region
red, the other regions yellow when every region is hidden, each shape numbered with its card.
"""

from __future__ import annotations

import html
import math
import re

from ..occlusion import MarkupShape, answers_by_number, parse_occlusion_field, sniff_image
from ..snapshot import PackagedNote, Snapshot

_ACTIVE, _INACTIVE, _BORDER, _HIGHLIGHT = "#ff8e8e", "#ffeba2", "#212121", "#ff4040"
_IMG_RE = re.compile(r'<img src="([^"]*)"')


def render_diagram_card(
    snapshot: Snapshot, note: PackagedNote, ordinal: int, *, masks: bool = True
) -> tuple[str, str]:
    """The front and back of card `ordinal` (0-based) of an occlusion note, as HTML (without
    `masks`, the plain image, for text exports)."""
    fields = snapshot.fields_of(note)
    shapes = parse_occlusion_field(fields.get("occlusion", ""))
    image = _IMG_RE.search(fields.get("image", ""))
    name = html.unescape(image.group(1)) if image else ""
    size = sniff_image(snapshot.media.get(name, b""))
    width, height = (
        (size.width, size.height) if size and size.width and size.height else (1000, 1000)
    )
    number = ordinal + 1
    header = fields.get("header", "")
    top = f'<div class="nd-io-header">{header}</div>' if header else ""
    if masks:
        front = top + _figure(name, shapes, number, width, height, answer=False)
        back = top + _figure(name, shapes, number, width, height, answer=True)
    else:
        front = back = f'{top}<img src="{html.escape(name)}" alt="">'
        front += f"<p>(region {number})</p>"
    key = answers_by_number(fields.get("back_extra", "")).get(number, "")
    extra = re.sub(
        r'<div class="nd-io-answers">.*?</div></div>',
        "",
        fields.get("back_extra", ""),
        count=1,
        flags=re.DOTALL,
    )
    answer = re.search(
        rf'<div class="nd-io-answer nd-io-c{number}"[^>]*>(.*?)</div>',
        fields.get("back_extra", ""),
        re.DOTALL,
    )
    shown = answer.group(1) if answer and answer.group(1) else html.escape(key)
    back += f'<hr id="answer"><div class="nd-answer">{shown}</div>{extra}'
    return front, back


def _figure(
    name: str, shapes: list[MarkupShape], number: int, width: int, height: int, *, answer: bool
) -> str:
    drawn = []
    for shape in shapes:
        if shape.number == 0:
            drawn.append(_label(shape, width, height))
            continue
        asked = shape.number == number
        if asked and answer:
            fill, stroke = "none", _HIGHLIGHT
        elif asked:
            fill, stroke = _ACTIVE, _BORDER
        elif shape.props.get("oi") == "1":
            fill, stroke = _INACTIVE, _BORDER
        else:
            fill, stroke = "none", "#8c959f"
        drawn.append(_shape(shape, width, height, fill, stroke))
    svg = (
        f'<svg class="nd-io-masks" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="none" aria-hidden="true">{"".join(drawn)}</svg>'
    )
    return f'<div class="nd-io"><img src="{html.escape(name)}" alt="">{svg}</div>'


def _fraction(text: str | None) -> float:
    """A coordinate from the markup; anything that is not a finite number counts as 0."""
    try:
        value = float(text or 0)
    except ValueError:
        return 0.0
    return value if math.isfinite(value) else 0.0


def _shape(shape: MarkupShape, width: int, height: int, fill: str, stroke: str) -> str:
    props = shape.props

    def x(key: str) -> float:
        return _fraction(props.get(key)) * width

    def y(key: str) -> float:
        return _fraction(props.get(key)) * height

    paint = f'fill="{fill}" stroke="{stroke}" stroke-width="{max(width, height) / 400:.2f}"'
    if shape.kind == "rect":
        body = (
            f'<rect x="{x("left"):.1f}" y="{y("top"):.1f}" width="{x("width"):.1f}" '
            f'height="{y("height"):.1f}" {paint}/>'
        )
        cx, cy = x("left") + x("width") / 2, y("top") + y("height") / 2
    elif shape.kind == "ellipse":
        cx, cy = x("left") + x("rx"), y("top") + y("ry")
        body = (
            f'<ellipse cx="{cx:.1f}" cy="{cy:.1f}" rx="{x("rx"):.1f}" ry="{y("ry"):.1f}" '
            f"{paint}/>"
        )
    else:
        points = [
            (_fraction(px), _fraction(py))
            for px, _, py in (pair.partition(",") for pair in props.get("points", "").split())
        ]
        points = points or [(0.0, 0.0)]
        shown = " ".join(f"{px * width:.1f},{py * height:.1f}" for px, py in points)
        body = f'<polygon points="{shown}" {paint}/>'
        cx = sum(p[0] for p in points) / len(points) * width
        cy = sum(p[1] for p in points) / len(points) * height
    font = max(width, height) / 32
    number = (
        f'<text x="{cx:.1f}" y="{cy:.1f}" font-size="{font:.0f}" text-anchor="middle" '
        f'dominant-baseline="central" font-family="Arial, sans-serif" font-weight="700" '
        f'fill="#1f2328" stroke="#ffffff" stroke-width="{font / 8:.1f}" '
        f'paint-order="stroke">{shape.number}</text>'
    )
    return body + number


def _label(shape: MarkupShape, width: int, height: int) -> str:
    props = shape.props
    size = (_fraction(props.get("fs")) or 0.04) * height
    left, top = _fraction(props.get("left")) * width, _fraction(props.get("top")) * height
    return (
        f'<text x="{left:.1f}" y="{top + size:.1f}" font-size="{size:.1f}" '
        f'font-family="Arial, sans-serif" fill="#000000" stroke="#ffffff" '
        f'stroke-width="{size / 6:.1f}" paint-order="stroke">'
        f"{html.escape(props.get('text', ''))}</text>"
    )

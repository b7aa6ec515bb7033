"""The three note types as data: fields, templates and CSS, with ids pinned by ids.py.

Anki treats a note type whose fields or templates changed as a new schema and refuses to
update its notes on import, so the fields were designed once, completely: the prompt and
answer, an extra, the source line, and "My notes", which belongs to the learner and which
releases always leave empty. Add templates or fields only with a new note type.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from . import ids
from .model import NoteKind

# A cloze deletion as Anki reads it from a cloze note's text: {{c1::answer}} or
# {{c1::answer::hint}}; the number is the card's.
CLOZE_RE = re.compile(r"\{\{c([0-9]{1,3})::(.*?)\}\}", re.DOTALL)

CSS = """\
.card {
  font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 20px;
  line-height: 1.5;
  text-align: center;
  color: #1f2328;
  background-color: #fdfdfc;
  padding: 0 12px;
}
.nightMode.card, .night_mode .card, .card.nightMode {
  color: #e6e6e6;
  background-color: #1e1f22;
}
.nd-prompt, .nd-answer, .nd-extra, .nd-mine, .nd-source {
  max-width: 38em;
  margin: 0 auto;
}
.nd-answer { font-weight: 600; }
.nd-extra {
  margin-top: 1em;
  font-size: 0.85em;
  color: #57606a;
  text-align: left;
}
.nightMode .nd-extra { color: #b1b7bf; }
.nd-mine {
  margin-top: 1em;
  padding: 0.4em 0.8em;
  font-size: 0.85em;
  text-align: left;
  border-left: 3px solid #9a6700;
}
.nd-source {
  margin-top: 1.5em;
  font-size: 0.65em;
  color: #6e7781;
}
.nightMode .nd-source { color: #8b949e; }
.nd-source cite { font-style: italic; }
.cloze { font-weight: 700; color: #0a58ca; }
.nightMode .cloze { color: #7fb3ff; }
a { color: #0a58ca; }
.nightMode a { color: #7fb3ff; }
code { font-size: 0.9em; }
ul, ol { text-align: left; display: inline-block; margin: 0.3em 0; }
img { max-width: 100%; height: auto; }
"""

_EXTRAS = """\
{{#Extra}}<div class="nd-extra">{{Extra}}</div>{{/Extra}}
{{#My notes}}<div class="nd-mine">{{My notes}}</div>{{/My notes}}
{{#Source}}<div class="nd-source">{{Source}}</div>{{/Source}}"""


@dataclass(frozen=True)
class NoteType:
    """A note type: `key` is its permanent identity; Anki shows it as `name_in(deck name)`."""

    key: str
    name: str  # the kind of note, e.g. "Basic"; Anki's name for it adds the deck's name
    fields: tuple[tuple[str, str], ...]  # (key, name shown in Anki)
    templates: tuple[tuple[str, str, str, str], ...]  # (key, name, front, back)
    is_cloze: bool
    # Anki's legacy "req" of each template: (ordinal, "all" | "any", the field ordinals that
    # make its front non-empty). genanki derives it by rendering the template; tests/test_rows.py
    # holds these equal to what genanki derives.
    required: tuple[tuple[int, str, tuple[int, ...]], ...]
    css: str = CSS
    # Anki's originalStockKind: 6 marks an image-occlusion note type, which Anki's reviewer
    # and editor recognise (with the fields' `tag` and `preventDeletion` below).
    original_stock_kind: int | None = None
    field_config: tuple[Mapping[str, object], ...] = ()  # extra keys per field, in order

    def field_dicts(self) -> list[dict[str, object]]:
        """Fields in genanki's format, each with a stable id."""
        extras = self.field_config or ({},) * len(self.fields)
        return [
            {"name": name, "id": ids.field_id(self.key, key), **extra}
            for (key, name), extra in zip(self.fields, extras, strict=True)
        ]

    def template_dicts(self) -> list[dict[str, object]]:
        """Templates in genanki's format, each with a stable id."""
        return [
            {"name": name, "qfmt": front, "afmt": back, "id": ids.template_id(self.key, key)}
            for key, name, front, back in self.templates
        ]

    def name_in(self, deck_name: str) -> str:
        """The name Anki shows, e.g. "Neurobiology of Connection: Basic".

        Named after the deck so that two neurodeck decks in one collection keep apart: with
        one shared name, Anki renamed the second deck's note types to "... Basic+".
        """
        return f"{deck_name}: {self.name}"

    def fingerprint(self, deck_name: str) -> str:
        """A hash of everything that, when changed, must reach learners as a newer note type."""
        payload: list[object] = [self.name_in(deck_name), self.fields, self.templates, self.css]
        if self.original_stock_kind is not None:
            payload += [self.original_stock_kind, list(self.field_config)]
        payload_text = json.dumps(payload, sort_keys=True)
        return hashlib.sha256(payload_text.encode("utf-8")).hexdigest()[:16]


_FRONT_BACK_FIELDS = (
    ("front", "Front"),
    ("back", "Back"),
    ("extra", "Extra"),
    ("source", "Source"),
    ("mine", "My notes"),
)

BASIC = NoteType(
    key="basic",
    name="Basic",
    fields=_FRONT_BACK_FIELDS,
    templates=(
        (
            "forward",
            "Card 1",
            '<div class="nd-prompt">{{Front}}</div>',
            '{{FrontSide}}\n<hr id="answer">\n<div class="nd-answer">{{Back}}</div>\n' + _EXTRAS,
        ),
    ),
    is_cloze=False,
    required=((0, "all", (0,)),),
)

REVERSED = NoteType(
    key="reversed",
    name="Basic (and reversed card)",
    fields=_FRONT_BACK_FIELDS,
    templates=(
        BASIC.templates[0],
        (
            "reverse",
            "Card 2",
            '<div class="nd-prompt">{{Back}}</div>',
            '{{FrontSide}}\n<hr id="answer">\n<div class="nd-answer">{{Front}}</div>\n' + _EXTRAS,
        ),
    ),
    is_cloze=False,
    required=((0, "all", (0,)), (1, "all", (1,))),
)

CLOZE = NoteType(
    key="cloze",
    name="Cloze",
    fields=(("text", "Text"), ("extra", "Extra"), ("source", "Source"), ("mine", "My notes")),
    templates=(
        (
            "cloze",
            "Cloze",
            '<div class="nd-prompt">{{cloze:Text}}</div>',
            '<div class="nd-prompt">{{cloze:Text}}</div>\n' + _EXTRAS,
        ),
    ),
    is_cloze=True,
    required=((0, "all", (0, 1, 2, 3)),),
)

# Anki's own image-occlusion note type, as `Collection.add_image_occlusion_notetype()` makes it
# (tests/test_occlusion_anki.py compares the two): the same fields, templates and stock kind,
# so Anki's reviewer draws the masks and its editor opens the notes. Only the styling adds to
# Anki's: each card's answer under the image, from the Back Extra field.
_IO_FRONT = """\
{{#Header}}<div>{{Header}}</div>{{/Header}}
<div style="display: none">{{cloze:Occlusion}}</div>
<div id="err"></div>
<div id="image-occlusion-container">
    {{Image}}
    <canvas id="image-occlusion-canvas"></canvas>
</div>
<script>
try {
    anki.imageOcclusion.setup();
} catch (exc) {
    document.getElementById("err").innerHTML = `Error loading image occlusion. Is your Anki \
version up to date?<br><br>${exc}`;
}
</script>
"""
_IO_BACK = (
    _IO_FRONT
    + """
<div><button id="toggle">Toggle Masks</button></div>
{{#Back Extra}}<div>{{Back Extra}}</div>{{/Back Extra}}
"""
)
ANKI_IO_CSS = """\
#image-occlusion-canvas {
    --inactive-shape-color: #ffeba2;
    --active-shape-color: #ff8e8e;
    --inactive-shape-border: 1px #212121;
    --active-shape-border: 1px #212121;
    --highlight-shape-color: #ff8e8e00;
    --highlight-shape-border: 1px #ff8e8e;
}

.card {
    font-family: arial;
    font-size: 20px;
    text-align: center;
    color: black;
    background-color: white;
}
"""


def _io_css() -> str:
    # Back Extra holds every card's answer; the reviewer's <body> has the class cardN on
    # card N, so these rules show each card its own answer and hide the others'.
    from .occlusion import MAX_DIAGRAM_CARDS

    shown = ",\n".join(f".card{n} .nd-io-c{n}" for n in range(1, MAX_DIAGRAM_CARDS + 1))
    return (
        ANKI_IO_CSS
        + """
.nightMode.card, .night_mode .card, .card.nightMode { color: #e6e6e6; background-color: #1e1f22; }
.nd-io-answer { display: none; margin: 0.5em 0; font-size: 1.2em; font-weight: 600; }
"""
        + shown
        + """ { display: block; }
.nd-extra { max-width: 38em; margin: 1em auto 0; font-size: 0.85em; color: #57606a; }
.nightMode .nd-extra { color: #b1b7bf; }
.nd-source { margin-top: 1.5em; font-size: 0.65em; color: #6e7781; }
.nd-source cite { font-style: italic; }
"""
    )


OCCLUSION = NoteType(
    key="occlusion",
    name="Image Occlusion",
    fields=(
        ("occlusion", "Occlusion"),
        ("image", "Image"),
        ("header", "Header"),
        ("back_extra", "Back Extra"),
        ("comments", "Comments"),
    ),
    templates=(("occlusion", "Image Occlusion", _IO_FRONT, _IO_BACK),),
    is_cloze=True,
    required=((0, "any", (1, 2)),),
    css=_io_css(),
    original_stock_kind=6,
    field_config=tuple({"tag": n, "preventDeletion": n < 4, "font": "Arial"} for n in range(5)),
)

NOTE_TYPES: dict[NoteKind, NoteType] = {
    "basic": BASIC,
    "reversed": REVERSED,
    "cloze": CLOZE,
    "occlusion": OCCLUSION,
}

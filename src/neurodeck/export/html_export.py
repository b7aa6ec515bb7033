"""One self-contained HTML page previewing every card, front and back, with the deck's CSS.

Grouped by subdeck, searchable with a small inline script, printable as a study sheet. It
loads nothing from the network: images are inlined, and a Content-Security-Policy allows only
the page's own script and styles, so card text could never run code even if it held markup.
"""

from __future__ import annotations

import base64
import hashlib
import html
import mimetypes
from collections.abc import Iterable

from ..errors import plural
from ..snapshot import PackagedNote, Snapshot
from .cards import group_by_subdeck, render_cards
from .diagram import render_diagram_card

PAGE_CSS = """\
:root { color-scheme: light; }
[hidden] { display: none !important; }
body { margin: 0; background: #f1f0ec; color: #1f2328;
  font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
.nd-top { position: sticky; top: 0; z-index: 2; padding: 18px max(28px, calc(50% - 560px)) 12px;
  background: rgba(241, 240, 236, 0.96); border-bottom: 1px solid #dad8d2; }
.nd-top h1 { margin: 0; font-size: 24px; font-weight: 650; }
.nd-meta { margin: 2px 0 12px; font-size: 14px; color: #57606a; }
.nd-tools { display: flex; gap: 14px; align-items: center; flex-wrap: wrap; }
.nd-tools input { width: min(26em, 70vw); padding: 7px 11px; font: inherit; font-size: 15px;
  color: inherit; background: #fff; border: 1px solid #c8c6bf; border-radius: 7px; }
.nd-tools output { font-size: 14px; color: #57606a; }
.nd-toc { margin: 10px 0 0; padding: 0; list-style: none; display: flex; flex-wrap: wrap;
  gap: 4px 16px; font-size: 13px; }
.nd-toc a { color: #0a58ca; text-decoration: none; }
main { max-width: 1120px; margin: 0 auto; padding: 4px 28px 56px; }
.nd-subdeck > h2 { margin: 30px 0 12px; padding-bottom: 5px; font-size: 19px; font-weight: 650;
  border-bottom: 2px solid #cfd6dd; }
.nd-subdeck > h2 small { font-size: 13px; font-weight: 400; color: #6e7781; }
.nd-item { margin: 0 0 14px; overflow: hidden; background: #fdfdfc; border: 1px solid #dad8d2;
  border-radius: 10px; box-shadow: 0 1px 3px rgba(31, 35, 40, 0.06); }
.nd-item > header { display: flex; justify-content: space-between; gap: 12px; padding: 6px 14px;
  font-size: 12px; color: #6e7781; border-bottom: 1px solid #ecebe7; }
.nd-item > header code { font-size: 12px; color: #424a53; }
.nd-tags { text-align: right; }
.nd-tag { display: inline-block; margin: 1px 0 1px 4px; padding: 0 7px; border-radius: 9px;
  background: #ecebe7; white-space: nowrap; }
.nd-faces { display: grid; grid-template-columns: 1fr 1fr; }
.nd-face { margin: 0; padding: 10px 6px 16px; min-width: 0; }
.nd-face + .nd-face { border-left: 1px dashed #dad8d2; }
.nd-face figcaption { padding: 0 12px 4px; font-size: 11px; letter-spacing: 0.08em;
  text-transform: uppercase; color: #8c959f; }
.nd-face .card { font-size: 18px; }
.nd-face hr#answer { border: 0; border-top: 1px solid #d8dee4; margin: 0.8em 0; }
.nd-io { position: relative; display: inline-block; max-width: 100%; line-height: 0; }
.nd-io img { display: block; max-width: 100%; height: auto; }
.nd-io-masks { position: absolute; left: 0; top: 0; width: 100%; height: 100%; }
.nd-io-header { margin-bottom: 0.4em; }
@media (max-width: 720px) {
  .nd-faces { grid-template-columns: 1fr; }
  .nd-face + .nd-face { border-left: 0; border-top: 1px dashed #dad8d2; }
}
body.nightMode { color-scheme: dark; background: #141517; color: #e6e6e6; }
body.nightMode .nd-top { background: rgba(20, 21, 23, 0.96); border-color: #2f3136; }
body.nightMode .nd-tools input { background: #1e1f22; border-color: #3a3d42; }
body.nightMode .nd-meta, body.nightMode .nd-tools output { color: #9da5ae; }
body.nightMode .nd-toc a { color: #7fb3ff; }
body.nightMode .nd-subdeck > h2 { border-color: #3a3d42; }
body.nightMode .nd-item { background: #1e1f22; border-color: #34363a; }
body.nightMode .nd-item > header { border-color: #2b2d31; color: #8b949e; }
body.nightMode .nd-item > header code { color: #c9d1d9; }
body.nightMode .nd-tag { background: #2b2d31; }
body.nightMode .nd-face + .nd-face { border-color: #34363a; }
body.nightMode .nd-face hr#answer { border-color: #3a3d42; }
@media print {
  body, body.nightMode { background: #fff; color: #000; }
  .nd-top { position: static; background: none; border: 0; padding: 0 0 8px; }
  .nd-tools, .nd-toc { display: none; }
  main { max-width: none; padding: 0; }
  .nd-subdeck + .nd-subdeck { break-before: page; }
  .nd-subdeck > h2 { margin-top: 0; }
  .nd-item { break-inside: avoid; box-shadow: none; border-color: #bbb; }
  .nd-tag { background: none; padding: 0; }
}
"""

# Filters cards by every word typed; `#q=word` in the address pre-fills the search, and
# `#night` / `#day` override the system colour scheme (Anki's own night-mode classes).
SCRIPT = """\
(function () {
  var items = Array.prototype.slice.call(document.querySelectorAll(".nd-item"));
  var texts = items.map(function (el) {
    return el.textContent.toLowerCase().replace(/\\s+/g, " ");
  });
  var sections = document.querySelectorAll(".nd-subdeck");
  var box = document.getElementById("nd-search");
  var count = document.getElementById("nd-count");
  function apply() {
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var shown = 0;
    items.forEach(function (el, i) {
      var hit = words.every(function (w) { return texts[i].indexOf(w) >= 0; });
      el.hidden = !hit;
      if (hit) { shown += 1; }
    });
    sections.forEach(function (s) { s.hidden = !s.querySelector(".nd-item:not([hidden])"); });
    count.textContent = words.length ? shown + " of " + items.length + " cards" : "";
  }
  var options = {};
  location.hash.slice(1).split("&").forEach(function (part) {
    var pair = part.split("=");
    if (pair[0]) { options[pair[0]] = decodeURIComponent(pair[1] || ""); }
  });
  var dark = window.matchMedia && matchMedia("(prefers-color-scheme: dark)").matches;
  if ("night" in options || (dark && !("day" in options))) {
    document.body.classList.add("nightMode", "night_mode");
  }
  if (options.q) { box.value = options.q; }
  box.addEventListener("input", apply);
  apply();
})();
"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def render_html(snapshot: Snapshot, notes: Iterable[PackagedNote]) -> str:
    """The preview page for `notes` (an iterable, so callers can show progress)."""
    groups = group_by_subdeck(snapshot, notes, lambda note: note_items(snapshot, note))
    # The image-occlusion note type's styling is Anki's own `.card` rule, which would restyle
    # every other card on the page; the page draws diagrams with DIAGRAM_CSS instead.
    deck_css = "\n".join(
        dict.fromkeys(nt.css for nt in snapshot.notetypes.values() if nt.key != "occlusion")
    )
    cards = sum(len(items) for items in groups.values())
    title = html.escape(snapshot.deck_name)
    version = f"Version {html.escape(snapshot.version)} · " if snapshot.version else ""
    policy = (
        f"default-src 'none'; img-src data:; style-src {_sha256(deck_css)} "
        f"{_sha256(PAGE_CSS)}; script-src {_sha256(SCRIPT)}"
    )
    counts = " · ".join(
        (plural(len(snapshot.notes), "note"), plural(cards, "card"), plural(len(groups), "subdeck"))
    )
    toc, sections = [], []
    for number, (subdeck, items) in enumerate(groups.items(), start=1):
        name = subdeck_title(snapshot, subdeck)
        count = plural(len(items), "card")
        toc.append(f'<li><a href="#subdeck-{number}">{name}</a></li>')
        sections.append(
            f'<section class="nd-subdeck" id="subdeck-{number}">\n'
            f"<h2>{name} <small>{count}</small></h2>\n" + "\n".join(items) + "\n</section>"
        )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<title>{title}: card preview</title>
<style>{deck_css}</style>
<style>{PAGE_CSS}</style>
</head>
<body>
<header class="nd-top">
<h1>{title}</h1>
<p class="nd-meta">{version}{counts}</p>
<div class="nd-tools">
<input type="search" id="nd-search" placeholder="Search cards…" aria-label="Search cards">
<output id="nd-count" for="nd-search" aria-live="polite"></output>
</div>
<ul class="nd-toc">{"".join(toc)}</ul>
</header>
<main>
{chr(10).join(sections)}
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""


def subdeck_title(snapshot: Snapshot, subdeck: str) -> str:
    """A subdeck's path as HTML, its parts joined by &rsaquo; (the deck's name for the root)."""
    parts = subdeck.split("::") if subdeck else [snapshot.deck_name]
    return " &rsaquo; ".join(html.escape(part) for part in parts)


def note_items(snapshot: Snapshot, note: PackagedNote) -> list[str]:
    """The page's item for each card of the note: both sides, with the note's id and tags."""
    label = html.escape(note.note_id or note.guid)
    tags = "".join(f'<span class="nd-tag">{html.escape(tag)}</span>' for tag in note.tags)
    items = []
    diagram = snapshot.notetype_of(note).key == "occlusion"
    for card in render_cards(snapshot, note):
        front, back = card.front, card.back
        if diagram:
            front, back = render_diagram_card(snapshot, note, card.ordinal)
        front, back = _inline_media(snapshot, front), _inline_media(snapshot, back)
        items.append(
            f'<article class="nd-item">\n<header><span><code>{label}</code> · '
            f'{html.escape(card.name)}</span><span class="nd-tags">{tags}</span></header>\n'
            '<div class="nd-faces">\n'
            f'<figure class="nd-face"><figcaption>Front</figcaption>'
            f'<div class="card">{front}</div></figure>\n'
            f'<figure class="nd-face"><figcaption>Back</figcaption>'
            f'<div class="card">{back}</div></figure>\n'
            "</div>\n</article>"
        )
    return items


def _inline_media(snapshot: Snapshot, card_html: str) -> str:
    # Images become data: URIs, so the page needs no folder beside it and no network.
    for name, data in snapshot.media.items():
        source = f'src="{html.escape(name)}"'
        if source in card_html:
            kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
            uri = f"data:{kind};base64,{base64.b64encode(data).decode()}"
            card_html = card_html.replace(source, f'src="{uri}"')
    return card_html

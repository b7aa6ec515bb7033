"""`neurodeck preview`: a local page of every card, rebuilt whenever a file of the deck is saved.

The deck is compiled in memory, in the one pass `neurodeck build` makes, into what the package
would hold (nothing is written, so the lock beside the cards is left alone), and every card is
rendered from the package's own templates and CSS by the html export's code. `check`
problems are listed at the top and beside the notes they are about. While the deck has
errors the last good cards stay on the page, marked as such. The page asks for /version a few
times a second and fetches the new content when it moves, so a save shows within about a
second.

Only 127.0.0.1 is served. The page allows only its own script and styles
(Content-Security-Policy), and card text is escaped when it is compiled, so nothing in a
fact set runs in the browser.
"""

from __future__ import annotations

import html
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import pipeline
from .errors import Location, NeurodeckError, Problem, display_path, plural
from .export.cards import group_by_subdeck
from .export.html_export import PAGE_CSS, note_items, subdeck_title
from .load import DECK_FILE, load_header
from .snapshot import PackagedNote, Snapshot, from_compiled

HOST = "127.0.0.1"
# Files whose saving changes the deck; the build folder and the lock are written by builds.
_WATCHED_SUFFIXES = (".yaml", ".yml", ".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")


@dataclass
class PreviewState:
    """What the page shows now; `version` moves with every rebuild."""

    version: int = 0
    snapshot: Snapshot | None = None
    problems: list[Problem] = field(default_factory=list)
    stale: bool = False  # the cards are the last good build's, the deck has errors now
    built_at: float = 0.0


class Preview:
    """A deck directory's preview: rebuilds on demand and renders the page's parts."""

    def __init__(self, deck_dir: Path, *, clock: int) -> None:
        self.deck_dir = deck_dir
        self.clock = clock
        self.state = PreviewState()
        self._lock = threading.Lock()

    def rebuild(self) -> PreviewState:
        """Check and build the deck again; keeps the last good cards when it has errors."""
        try:
            # One pass, as `neurodeck build` at this clock would package the deck; no file
            # is written, so the lock beside the cards stays as it is.
            compiled = pipeline.check(self.deck_dir, clock=self.clock, keep="package")
            snapshot = from_compiled(compiled, display_path(self.deck_dir))
            problems, stale = compiled.warnings, False
        except NeurodeckError as err:
            snapshot, problems, stale = None, err.problems, True
        except OSError as err:  # a file vanished mid-save, say: the next save rebuilds
            snapshot, stale = None, True
            problems = [
                Problem(
                    Location(display_path(self.deck_dir)),
                    f"could not read the deck: {err}",
                    hint="save the file again",
                )
            ]
        with self._lock:
            old = self.state
            self.state = PreviewState(
                version=old.version + 1,
                snapshot=snapshot or old.snapshot,
                problems=problems,
                stale=stale and old.snapshot is not None,
                built_at=time.time(),
            )
            return self.state

    def current(self) -> PreviewState:
        with self._lock:
            return self.state

    def content(self) -> dict[str, object]:
        """The page's changing parts: title line, problems, cards, and the filter choices."""
        return render_content(self.current(), display_path(self.deck_dir))


def render_content(state: PreviewState, shown_dir: str) -> dict[str, object]:
    """The JSON the page fetches: HTML for the top and the cards, and the filter choices."""
    snapshot = state.snapshot
    tags: set[str] = set()
    subdecks: list[str] = []
    cards_html = ""
    meta = "No cards yet"
    if snapshot is not None:
        by_note = _problems_by_note(snapshot, state.problems)

        def note_html(note: PackagedNote) -> list[str]:
            tags.update(note.tags)
            own = by_note.get(note.guid, [])
            problems = "".join(_problem_li(p) for p in own)
            marker = " nd-has-problems" if own else ""
            return [
                f'<div class="nd-note{marker}" data-tags="{html.escape(" ".join(note.tags))}" '
                f'data-subdeck="{html.escape(snapshot.subdeck_of(note))}" '
                f'data-note="{html.escape(note.note_id or note.guid)}">'
                + (f'<ul class="nd-problems">{problems}</ul>' if problems else "")
                + "\n".join(note_items(snapshot, note))
                + "</div>"
            ]

        groups = group_by_subdeck(snapshot, snapshot.notes, note_html)
        subdecks = [s for s in groups if s]
        sections = []
        for subdeck, items in groups.items():
            sections.append(
                f'<section class="nd-subdeck" data-subdeck="{html.escape(subdeck)}">'
                f"<h2>{subdeck_title(snapshot, subdeck)}</h2>\n" + "\n".join(items) + "</section>"
            )
        cards_html = "\n".join(sections)
        cards = sum(len(n.ordinals) for n in snapshot.notes)
        version = f"Version {snapshot.version} · " if snapshot.version else ""
        counts = [(len(snapshot.notes), "note"), (cards, "card"), (len(groups), "subdeck")]
        meta = version + " · ".join(plural(number, word) for number, word in counts)
    return {
        "version": state.version,
        "title": snapshot.deck_name if snapshot else shown_dir,
        "meta": meta,
        "problems": _problems_html(state),
        "cards": cards_html,
        "tags": sorted(tags),
        "subdecks": subdecks,
        "errors": sum(p.severity == "error" for p in state.problems),
        "warnings": sum(p.severity != "error" for p in state.problems),
    }


def _problems_by_note(snapshot: Snapshot, problems: list[Problem]) -> dict[str, list[Problem]]:
    """Each problem under the note whose lines hold it (the note starting last before it)."""
    starts: dict[str, list[tuple[int, str]]] = {}
    for note in snapshot.notes:
        if note.loc is not None:
            starts.setdefault(note.loc.path, []).append((note.loc.line, note.guid))
    found: dict[str, list[Problem]] = {}
    for problem in problems:
        where = problem.location
        before = [guid for line, guid in sorted(starts.get(where.path, [])) if line <= where.line]
        if where.line and before:
            found.setdefault(before[-1], []).append(problem)
    return found


def _problem_li(problem: Problem) -> str:
    hint = f'<span class="nd-hint">hint: {html.escape(problem.hint)}</span>' if problem.hint else ""
    return (
        f'<li class="nd-{html.escape(problem.severity)}"><code>'
        f"{html.escape(str(problem.location))}</code> {html.escape(problem.severity)}: "
        f"{html.escape(problem.message)}{hint}</li>"
    )


def _problems_html(state: PreviewState) -> str:
    if not state.problems:
        return (
            '<p class="nd-ok">neurodeck check: 0 errors, 0 warnings</p>' if state.snapshot else ""
        )
    failing = any(p.severity == "error" for p in state.problems)
    stale = (
        '<p class="nd-stale">The cards below are from the last build without errors; '
        "fix these and save to see your changes.</p>"
        if state.stale
        else ""
    )
    items = "".join(_problem_li(p) for p in state.problems)
    return (
        f'<div class="nd-report{" nd-failing" if failing else ""}">'
        f"<strong>neurodeck check: {_counts(state.problems)}</strong>"
        f'<ul class="nd-problems">{items}</ul>{stale}</div>'
    )


PREVIEW_CSS = """\
.nd-tools select, .nd-tools button { padding: 6px 9px; font: inherit; font-size: 14px;
  color: inherit; background: #fff; border: 1px solid #c8c6bf; border-radius: 7px; }
body.nightMode .nd-tools select, body.nightMode .nd-tools button { background: #1e1f22;
  border-color: #3a3d42; }
.nd-report { margin: 12px 0 0; padding: 8px 12px; border-radius: 8px; font-size: 14px;
  background: #fff8c5; border: 1px solid #d4a72c; }
.nd-report.nd-failing { background: #ffebe9; border-color: #cf222e; }
body.nightMode .nd-report { background: #3b2e00; border-color: #9e6a03; }
body.nightMode .nd-report.nd-failing { background: #3c1618; border-color: #f85149; }
.nd-problems { display: block; margin: 4px 0; padding-left: 1.2em; font-size: 13px;
  text-align: left; }
.nd-problems code { font-size: 12px; }
.nd-hint { display: block; color: #57606a; }
body.nightMode .nd-hint { color: #9da5ae; }
li.nd-error { color: #a40e26; }
body.nightMode li.nd-error { color: #ff7b72; }
.nd-note.nd-has-problems > .nd-problems { margin: 0 0 6px; padding: 6px 10px 6px 1.6em;
  border-left: 4px solid #cf222e; background: #ffebe9; border-radius: 6px; }
body.nightMode .nd-note.nd-has-problems > .nd-problems { background: #3c1618; }
.nd-ok { margin: 8px 0 0; font-size: 13px; color: #1a7f37; }
.nd-stale { margin: 4px 0 0; font-style: italic; }
.nd-live { font-size: 12px; color: #6e7781; }
"""

SCRIPT = """\
(function () {
  "use strict";
  var version = document.body.getAttribute("data-version");
  var box = document.getElementById("nd-search");
  var tagBox = document.getElementById("nd-tag");
  var deckBox = document.getElementById("nd-subdeck");
  var count = document.getElementById("nd-count");
  var live = document.getElementById("nd-live");
  function apply() {
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var tag = tagBox.value, sub = deckBox.value;
    var notes = document.querySelectorAll(".nd-note"), shown = 0;
    Array.prototype.forEach.call(notes, function (el) {
      var text = el.textContent.toLowerCase();
      var tags = (el.getAttribute("data-tags") || "").split(" ");
      var deck = el.getAttribute("data-subdeck") || "";
      var hit = words.every(function (w) { return text.indexOf(w) >= 0; }) &&
        (!tag || tags.indexOf(tag) >= 0) &&
        (!sub || deck === sub || deck.indexOf(sub + "::") === 0);
      el.hidden = !hit;
      if (hit) { shown += 1; }
    });
    Array.prototype.forEach.call(document.querySelectorAll(".nd-subdeck"), function (s) {
      s.hidden = !s.querySelector(".nd-note:not([hidden])");
    });
    var filtered = words.length || tag || sub;
    count.textContent = filtered ? shown + " of " + notes.length + " notes" : "";
  }
  function fill(select, values, label) {
    var keep = select.value;
    select.textContent = "";
    [""].concat(values).forEach(function (v) {
      var option = document.createElement("option");
      option.value = v;
      option.textContent = v || label;
      select.appendChild(option);
    });
    select.value = values.indexOf(keep) >= 0 ? keep : "";
  }
  function show(data) {
    version = String(data.version);
    document.getElementById("nd-title").textContent = data.title;
    document.getElementById("nd-meta").textContent = data.meta;
    document.getElementById("nd-report").innerHTML = data.problems;
    document.getElementById("nd-cards").innerHTML = data.cards;
    fill(tagBox, data.tags, "All tags");
    fill(deckBox, data.subdecks, "All subdecks");
    live.textContent = "Updated " + new Date().toLocaleTimeString();
    apply();
  }
  function poll() {
    fetch("/version", {cache: "no-store"}).then(function (r) { return r.text(); })
      .then(function (v) {
        if (v === version) { return null; }
        return fetch("/content", {cache: "no-store"}).then(function (r) { return r.json(); })
          .then(show);
      })
      .catch(function () { live.textContent = "Preview stopped: run neurodeck preview again"; })
      .then(function () { setTimeout(poll, 300); });
  }
  var night = document.getElementById("nd-night");
  function setNight(on) {
    document.body.classList.toggle("nightMode", on);
    document.body.classList.toggle("night_mode", on);
    night.textContent = on ? "Light mode" : "Night mode";
  }
  var hash = location.hash.slice(1);
  var dark = window.matchMedia && matchMedia("(prefers-color-scheme: dark)").matches;
  setNight(hash === "night" || (dark && hash !== "day"));
  night.addEventListener("click", function () {
    setNight(!document.body.classList.contains("nightMode"));
  });
  box.addEventListener("input", apply);
  tagBox.addEventListener("change", apply);
  deckBox.addEventListener("change", apply);
  fetch("/content", {cache: "no-store"}).then(function (r) { return r.json(); }).then(show)
    .then(poll, poll);
})();
"""

_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def page_html(preview: Preview) -> str:
    """The page shell; the script fills in the content from /content at once."""
    data = preview.content()
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(str(data["title"]))}: live preview</title>
<link rel="stylesheet" href="/deck.css">
<link rel="stylesheet" href="/page.css">
</head>
<body data-version="">
<header class="nd-top">
<h1 id="nd-title">{html.escape(str(data["title"]))}</h1>
<p class="nd-meta"><span id="nd-meta"></span> <span class="nd-live" id="nd-live"></span></p>
<div class="nd-tools">
<input type="search" id="nd-search" placeholder="Search cards…" aria-label="Search cards">
<select id="nd-tag" aria-label="Tag"><option value="">All tags</option></select>
<select id="nd-subdeck" aria-label="Subdeck"><option value="">All subdecks</option></select>
<button type="button" id="nd-night">Night mode</button>
<output id="nd-count" for="nd-search" aria-live="polite"></output>
</div>
<div id="nd-report"></div>
</header>
<main id="nd-cards"></main>
<script src="/preview.js"></script>
</body>
</html>
"""


def _deck_css(preview: Preview) -> str:
    snapshot = preview.current().snapshot
    if snapshot is None:
        from .notetypes import CSS

        return CSS
    return "\n".join(dict.fromkeys(nt.css for nt in snapshot.notetypes.values()))


class _Handler(BaseHTTPRequestHandler):
    preview: Preview  # set on the subclass made by serve()

    def do_GET(self) -> None:
        routes: dict[str, tuple[str, Callable[[], str]]] = {
            "/": ("text/html", lambda: page_html(self.preview)),
            "/version": ("text/plain", lambda: str(self.preview.current().version)),
            "/content": (
                "application/json",
                lambda: json.dumps(self.preview.content(), ensure_ascii=False),
            ),
            "/preview.js": ("text/javascript", lambda: SCRIPT),
            "/page.css": ("text/css", lambda: PAGE_CSS + PREVIEW_CSS),
            "/deck.css": ("text/css", lambda: _deck_css(self.preview)),
        }
        path = self.path.split("?", 1)[0]
        if path not in routes:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        kind, make = routes[path]
        body = make().encode("utf-8")
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", _POLICY)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per poll would drown the terminal


def make_server(preview: Preview, port: int = 0) -> ThreadingHTTPServer:
    """A server for the preview on 127.0.0.1 (port 0: a free one)."""
    handler = type("PreviewHandler", (_Handler,), {"preview": preview})
    server = ThreadingHTTPServer((HOST, port), handler)
    server.daemon_threads = True
    return server


def watch(
    preview: Preview, stop: threading.Event, on_rebuild: Callable[[PreviewState], None]
) -> None:
    """Rebuild whenever a deck file is saved, until `stop` is set."""
    import watchfiles  # only the preview needs it

    def wanted(_change: watchfiles.Change, path: str) -> bool:
        rel = Path(path).relative_to(preview.deck_dir.resolve()).parts
        if not rel or rel[0] == "build" or any(p.startswith(".") for p in rel):
            return False
        return rel[-1].lower().endswith(_WATCHED_SUFFIXES)

    for _changes in watchfiles.watch(
        preview.deck_dir.resolve(),
        watch_filter=wanted,
        stop_event=stop,
        debounce=150,
        step=50,
        raise_interrupt=False,
    ):
        on_rebuild(preview.rebuild())


def serve(deck_dir: Path, *, port: int, clock: int, echo: Callable[[str], None]) -> None:
    """Serve the preview until Ctrl-C; the deck must at least have a deck.yaml."""
    if not (deck_dir / DECK_FILE).is_file():
        load_header(deck_dir, [])  # raises the usual located "no deck.yaml" problem
    if threading.current_thread() is threading.main_thread():
        # `kill` and service managers stop it the way Ctrl-C does: cleanly, no traceback.
        signal.signal(signal.SIGTERM, _interrupt)
    preview = Preview(deck_dir, clock=clock)
    report(preview.rebuild(), echo)
    server = make_server(preview, port)
    stop = threading.Event()
    watcher = threading.Thread(
        target=watch,
        args=(preview, stop, lambda s: report(s, echo)),
        name="neurodeck-watch",
        daemon=True,
    )
    watcher.start()
    echo(
        f"Previewing {display_path(deck_dir)} at http://{HOST}:{server.server_port}/ "
        "(updates on save; Ctrl-C to stop)"
    )
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
        watcher.join(timeout=2)
    echo("Preview stopped")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def report(state: PreviewState, echo: Callable[[str], None]) -> None:
    """One line on the terminal per rebuild."""
    stamp = time.strftime("%H:%M:%S", time.localtime(state.built_at))
    notes = len(state.snapshot.notes) if state.snapshot else 0
    echo(f"[{stamp}] {notes} notes; {_counts(state.problems)}")


def _counts(problems: list[Problem]) -> str:
    """ "1 error, 2 warnings"."""
    errors = sum(p.severity == "error" for p in problems)
    return f"{plural(errors, 'error')}, {plural(len(problems) - errors, 'warning')}"

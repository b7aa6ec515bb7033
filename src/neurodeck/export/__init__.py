"""Exports of a deck directory's compiled package: what Anki gets, in other formats.

csv for Anki's own text importer, html for a searchable, printable preview, json for tools,
and md for a plain study sheet. Each renderer reads a Snapshot (the built package) and an
iterable of its notes, so a caller can wrap the notes in a progress bar.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from ..apkg import replace_together, stage, write_atomically
from ..snapshot import PackagedNote, Snapshot, stream_prepared
from .csv_export import render_csv
from .html_export import render_html
from .json_export import json_end, notes_json, render_json
from .md_export import render_markdown

Renderer = Callable[[Snapshot, Iterable[PackagedNote]], str]

FORMATS: dict[str, Renderer] = {
    "csv": render_csv,
    "html": render_html,
    "json": render_json,
    "md": render_markdown,
}

__all__ = [
    "FORMATS",
    "default_path",
    "render_csv",
    "render_html",
    "render_json",
    "render_markdown",
    "stream_json_export",
    "write_export",
]


def default_path(snapshot: Snapshot, fmt: str) -> Path:
    """build/<deck id>.<format>, beside the .apkg that `neurodeck build` writes."""
    return Path("build") / f"{snapshot.deck_slug or 'deck'}.{fmt}"


def write_export(
    snapshot: Snapshot, fmt: str, path: Path, notes: Iterable[PackagedNote] | None = None
) -> int:
    """Render `notes` (default: all) in `fmt` and replace `path` atomically; returns the cards.

    The Markdown sheet links its images into a folder beside it, `<name>_media/`, which gets
    a copy of each (html inlines them; csv and json name them as the package does).
    """
    notes = snapshot.notes if notes is None else notes
    if fmt == "md" and snapshot.media:
        folder = path.with_name(f"{path.stem}_media")
        text = render_markdown(snapshot, notes, media_dir=folder.name)
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in sorted(snapshot.media.items()):
            write_atomically(folder / name, data)
    else:
        text = FORMATS[fmt](snapshot, notes)
    write_atomically(path, text.encode("utf-8"))
    return sum(len(note.ordinals) for note in snapshot.notes)


def stream_json_export(deck_dir: Path, path: Path, *, clock: int) -> tuple[int, int]:
    """Compile a deck directory and write its JSON export as its notes come, never holding
    them all; `path` is replaced only once the export is complete and the deck has no
    errors. Returns the notes and cards written. Each note's JSON is made in the worker
    process that compiled it: the main process only writes."""
    counts = [0, 0]

    def write(out: IO[bytes]) -> None:
        started = False

        def take(prepared: _JsonChunk) -> None:
            nonlocal started
            head, text, notes, cards = prepared
            if notes:
                out.write((",\n    " if started else head).encode("utf-8"))
                out.write(text)
                started = True
                counts[0] += notes
                counts[1] += cards

        header, _ = stream_prepared(
            deck_dir, clock=clock, prepare=_json_chunk, on_prepared=take, media=_no_media
        )
        out.write(json_end(header, started=started).encode("utf-8"))

    path.parent.mkdir(parents=True, exist_ok=True)
    replace_together([stage(path, write)])
    return counts[0], counts[1]


# Some notes' JSON as the main process writes it: the export's opening text (written before
# the first notes), the notes joined and encoded, how many notes, and their cards.
_JsonChunk = tuple[str, bytes, int, int]


def _json_chunk(snapshot: Snapshot, notes: list[PackagedNote]) -> _JsonChunk:
    """notes_json's pieces, joined and encoded in the worker that compiled the notes: the
    main process, which every note passes through, only writes the bytes (it used to
    unpickle, join and encode each note's text, ~0.2 s of its CPU at 100,000 notes)."""
    head, texts, cards = notes_json(snapshot, notes)
    return head, ",\n    ".join(texts).encode("utf-8"), len(texts), cards


def _no_media(name: str) -> bool:
    return False  # the JSON names images as the package does; it holds none

"""Import a built package into a throwaway Anki collection and report what Anki sees.

This uses Anki's own library (the `anki` package, `pip install 'neurodeck[anki]'`), so the
importer, the note matching and the card rendering are Anki's, not ours. The library is
imported here, lazily, and nowhere else: `neurodeck build` never pays for it.
"""

from __future__ import annotations

import re
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .ankitext import shows_nothing
from .errors import Location, NeurodeckError, Problem, plural
from .markup import html_to_text
from .snapshot import refuse_active_sql
from .unpack import check_package, extract_collection

INSTALL_COMMAND = "pip install 'neurodeck[anki]'"

# Anki renders a broken template or a blank front into the card itself, as a message that
# links to this page of its manual; the message is translated, the link is not.
_TEMPLATE_ERROR_LINK = "templates/errors.html"
_LINK_RE = re.compile(r"<a\b[^>]*>.*?</a>", re.DOTALL)  # Anki's "More information" link
_LOG_KEYS = ("new", "updated", "duplicate", "conflicting")


@dataclass(frozen=True)
class Verification:
    """What Anki made of a package imported into an empty collection."""

    path: Path
    anki_version: str
    found_notes: int  # notes in the package, as Anki's importer counted them
    notes: int  # notes in the collection after the import
    cards: int
    decks: tuple[str, ...]  # sorted, without Anki's empty "Default"
    note_types: tuple[str, ...]  # sorted, without Anki's stock note types
    log: dict[str, int]  # new, updated, duplicate, conflicting
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        """True when every note imported and every card renders."""
        return not self.problems

    def summary(self) -> dict[str, object]:
        """The counts as a JSON-ready dict."""
        return {
            "path": str(self.path),
            "anki": self.anki_version,
            "found_notes": self.found_notes,
            "notes": self.notes,
            "cards": self.cards,
            "decks": list(self.decks),
            "note_types": list(self.note_types),
            "log": dict(self.log),
        }


def verify_apkg(path: Path) -> Verification:
    """Import `path` into a fresh temporary collection with Anki's default options.

    Anki's library must be installed (cli.py asks anki_is_installed() first). Raises
    NeurodeckError when the file is not a package Anki can read; other import problems
    (conflicts, missing notes, cards that do not render) are returned in `problems`.
    """
    anki = _Anki()
    if not zipfile.is_zipfile(path):  # a missing file, too (`verify` asks click for one)
        raise _error(
            path,
            "not an Anki package: the file is not a zip archive",
            hint="rebuild it with `neurodeck build`; the file may be truncated",
        )
    # The package may be hostile: before Anki's importer unpacks it, refuse what diff
    # refuses (zip or zstd bombs, odd entry names, a collection with views or triggers).
    check_package(path)
    with tempfile.TemporaryDirectory(prefix="neurodeck-verify-") as tmp:
        refuse_active_sql(extract_collection(path, Path(tmp)), str(path))
    with tempfile.TemporaryDirectory(prefix="neurodeck-verify-") as tmp:
        col = anki.Collection(str(Path(tmp) / "collection.anki2"))
        try:
            return _import_and_inspect(anki, col, path)
        finally:
            col.close()


class _Anki:
    """The parts of Anki's library that verify uses, imported on first use."""

    def __init__(self) -> None:
        from anki.buildinfo import version
        from anki.collection import (
            Collection,
            ImportAnkiPackageOptions,
            ImportAnkiPackageRequest,
        )
        from anki.errors import AnkiException

        self.version = version
        self.Collection = Collection
        self.Options = ImportAnkiPackageOptions
        self.Request = ImportAnkiPackageRequest
        self.Error = AnkiException


def anki_is_installed() -> bool:
    """Whether Anki's own library can be imported (the `anki` extra)."""
    try:
        _Anki()
    except ImportError:
        return False
    return True


def _import_and_inspect(anki: _Anki, col: Any, path: Path) -> Verification:
    stock_notetypes = {nt.id for nt in col.models.all_names_and_ids()}
    # An empty options message is the import dialog's default: update notes and note
    # types "if newer", no merging, no scheduling (pinned in tests/test_anki_helpers.py).
    request = anki.Request(package_path=str(path.resolve()), options=anki.Options())
    try:
        log = col.import_anki_package(request).log
    except anki.Error as err:
        raise _error(
            path,
            f"Anki could not import the package: {err}",
            hint="rebuild it with `neurodeck build`",
        ) from None
    col.models._clear_cache()  # pylib's note-type cache is stale after an import

    counts = {key: len(getattr(log, key)) for key in _LOG_KEYS}
    notes, cards = col.note_count(), col.card_count()
    problems = _log_problems(path, log, counts, notes)
    orphans = col.db.scalar("select count() from notes where id not in (select nid from cards)")
    if orphans:
        problems.append(_problem(path, f"{plural(orphans, 'note')} imported without any card"))
    for cid in col.find_cards(""):
        problems += _card_problems(path, col.get_card(cid))

    cards_by_deck = dict(col.db.all("select did, count() from cards group by did"))
    decks = tuple(
        sorted(d.name for d in col.decks.all_names_and_ids() if d.id != 1 or cards_by_deck.get(1))
    )
    note_types = tuple(
        sorted(nt.name for nt in col.models.all_names_and_ids() if nt.id not in stock_notetypes)
    )
    return Verification(
        path,
        anki.version,
        log.found_notes,
        notes,
        cards,
        decks,
        note_types,
        counts,
        tuple(problems),
    )


def _log_problems(path: Path, log: Any, counts: dict[str, int], notes: int) -> list[Problem]:
    problems = []
    if counts["conflicting"]:
        problems.append(
            _problem(
                path,
                f"{plural(counts['conflicting'], 'note')} conflicted with a note type and "
                "were not imported",
            )
        )
    for key, what in (
        ("missing_notetype", "have no note type in the package"),
        ("missing_deck", "have no deck in the package"),
        ("empty_first_field", "have an empty first field"),
    ):
        if missing := len(getattr(log, key)):
            problems.append(_problem(path, f"{plural(missing, 'note')} {what}"))
    if notes != log.found_notes:
        problems.append(
            _problem(
                path,
                f"the package holds {plural(log.found_notes, 'note')}, but the collection "
                f"has {notes} after importing it",
            )
        )
    return problems


def _card_problems(path: Path, card: Any) -> list[Problem]:
    rendered = card.render_output(reload=True)
    question, answer = rendered.question_text, rendered.answer_text
    note = card.note()
    first_field = _visible(note.fields[0]) if note.fields else ""
    which = f"card {card.ord + 1} of note {first_field[:50]!r} (guid {note.guid})"
    for side, text in (("front", question), ("back", answer)):
        if _TEMPLATE_ERROR_LINK in text:
            message = _visible(_LINK_RE.sub("", text))
            return [_problem(path, f"{which}: Anki cannot render the {side}: {message}")]
    if shows_nothing(question):  # as Anki judges it: an image alone is not empty
        return [_problem(path, f"{which}: the front is empty")]
    return []


def _visible(fragment: str) -> str:
    """The text of an HTML fragment, on one line, without the marks Anki puts around each
    field to isolate its direction of writing."""
    return html_to_text(fragment.replace("\u2068", "").replace("\u2069", ""))


def _problem(path: Path, message: str) -> Problem:
    return Problem(Location(str(path)), message)


def _error(path: Path, message: str, hint: str | None = None) -> NeurodeckError:
    return NeurodeckError([Problem(Location(str(path)), message, hint=hint)])

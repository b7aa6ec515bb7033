"""Rebuild a lost or damaged lock from the last released package (`neurodeck lock --from`).

Learners have the released package: for them, a note's modification time is the one in it.
A note whose content is still what the package holds keeps that time, so the next release
does not overwrite learners' own edits on it; a note that changed since gets the clock (and
is newer than the package), so learners receive the edit. The same goes for a note whose
text is as released but which shows an image whose bytes differ from the package's copy.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from . import lock as lockfile
from . import pipeline
from .apkg import write_lines_atomically
from .diff import changed_parts
from .errors import Location, NeurodeckError, Problem, display_path
from .snapshot import NoteType, from_compiled, read_apkg
from .unpack import read_media


@dataclass(frozen=True)
class Relocked:
    """What `lock --from` recorded."""

    path: Path
    kept: int  # notes whose content equals the package's: they keep its time
    changed: int  # notes edited since the package: they get the clock
    added: int  # notes the package does not have
    warnings: list[Problem]


def relock(deck_dir: Path, package: Path, *, clock: int, force: bool = False) -> Relocked:
    """Write DECK_DIR's lock from the released `package`; see the module's docstring."""
    lock_path = deck_dir / lockfile.LOCK_FILE
    if not force:
        _refuse_a_good_lock(lock_path)
    released = read_apkg(package)
    # The deck as a first build at `clock` would package it (one pass; nothing is written).
    compiled = pipeline.check(deck_dir, clock=clock, keep="package", old_lock=lockfile.EMPTY)
    current = from_compiled(compiled, display_path(deck_dir))
    fresh = compiled.lock
    shared = [n for n in current.notes if n.guid in released.by_guid]
    if released.notes and not shared:
        raise NeurodeckError(
            [
                Problem(
                    Location(display_path(package)),
                    "no note of this package belongs to the deck: it is another deck's release, or "
                    "the deck's `id` changed since",
                    hint="pass the package last released from this deck directory",
                )
            ]
        )
    redrawn = _redrawn_notes(package, compiled)
    notes = lockfile.NoteTable()
    kept = changed = added = 0
    for note in current.notes:
        assert note.note_id is not None  # a deck directory's notes are named
        note_id = note.note_id
        entry = fresh.notes[note_id]
        before = released.by_guid.get(note.guid)
        if before is None:
            mod, added = entry.mod, added + 1
        elif note_id in redrawn or changed_parts(released, before, current, note):
            mod, changed = max(clock, before.mod + 1), changed + 1
        else:
            mod, kept = before.mod, kept + 1
        notes.add(note_id, entry.hash, mod, entry.kind, entry.subdeck, entry.cards)
    notetypes = {}
    for key, entry in fresh.notetypes.items():
        now = next((t for t in current.notetypes.values() if t.key == key), None)
        then = released.notetypes.get(now.id) if now is not None else None
        if now is not None and then is not None and _same(now, then):
            notetypes[key] = lockfile.Entry(entry.hash, then.mod)
        else:
            notetypes[key] = lockfile.Entry(
                entry.hash, max(clock, then.mod + 1) if then is not None else entry.mod
            )
    # Diagrams' card numbers come from this build: a package does not say which region a
    # cloze number was (a region removed since the release would move the numbers after it).
    rebuilt = lockfile.Lock(
        notes,
        notetypes,
        released.deck_name or fresh.deck_name,
        fresh.occlusions,
        deck_id=fresh.deck_id,
        media=fresh.media,  # as the next build will find them: the notes above say the rest
    )
    try:
        write_lines_atomically(lock_path, lockfile.lock_lines(rebuilt))
    except OSError as err:
        raise NeurodeckError(
            [
                Problem(
                    Location(display_path(lock_path)), f"cannot write the lock file: {err.strerror}"
                )
            ]
        ) from None
    return Relocked(lock_path, kept, changed, added, compiled.warnings)


def _redrawn_notes(package: Path, compiled: pipeline.CompiledDeck) -> set[str]:
    """The notes that show an image whose file now has other bytes than the package holds
    under its name (a package that lists no media gives nothing to compare)."""
    current = compiled.lock.media
    released = {
        name: lockfile.image_digest(io.BytesIO(data))
        for name, data in read_media(package, current.__contains__).items()
    }
    changed = {name for name, digest in released.items() if current[name] != digest}
    names = compiled.media_names
    return {
        note.id
        for note in compiled.package_notes
        if any(names.get(written) in changed for written in note.images)
    }


def _refuse_a_good_lock(lock_path: Path) -> None:
    """A readable lock knows more than any package: replacing it needs --force."""
    try:
        lockfile.parse_lock_file(lock_path, display_path(lock_path))
    except (FileNotFoundError, NeurodeckError):
        return  # lost or damaged: this is what `lock --from` is for
    except OSError:
        return  # unreadable: writing it will say why, if it fails too
    raise NeurodeckError(
        [
            Problem(
                Location(display_path(lock_path)),
                f"{lockfile.LOCK_FILE} exists and is readable; `lock --from` rebuilds only a lost "
                "or damaged lock",
                hint="keep it; pass --force only if you know it is wrong",
            )
        ]
    )


def _same(now: NoteType, then: NoteType) -> bool:
    return (now.name, now.fields, now.templates, now.css) == (
        then.name,
        then.fields,
        then.templates,
        then.css,
    )

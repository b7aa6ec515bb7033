"""The lock file: when each note's content last changed.

Anki updates a learner's note on import only when the package's modification time is newer
than the learner's copy. Using the build time would overwrite learners' own edits on every
release and make two builds differ; using a constant would hide real edits. So the lock,
committed beside the cards, records a content hash and a modification time per note (and
per note type). A build moves a time forward only where the hash changed.

The format is one tab-separated line per entry, sorted, so that a release's diff shows
exactly which notes changed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass

from .errors import Location, NeurodeckError, Problem

LOCK_FILE = "neurodeck.lock"
LOCK_VERSION = 1
_HEADER = (
    f"# neurodeck lock, version {LOCK_VERSION}: when each note last changed. "
    "Commit it with the cards; `neurodeck build` updates it.\n"
    "# deck\tname | notetype\tkey\thash\tmod | note\tid\thash\tmod\ttype\tcards\tsubdeck\n"
)


@dataclass(frozen=True, slots=True)
class Entry:
    """What the lock knows about one note or note type."""

    hash: str
    mod: int  # seconds since the epoch when the content last changed
    kind: str = ""  # note type key (notes only)
    subdeck: str = ""  # subdeck path (notes only)
    cards: str = ""  # the card ordinals it makes, e.g. "0,1" (notes only)


@dataclass(frozen=True)
class Lock:
    """Entries for notes and note types, by id and key."""

    notes: dict[str, Entry]
    notetypes: dict[str, Entry]
    deck_name: str | None = None  # the root deck's name when the lock was written

    @property
    def earliest(self) -> int | None:
        """The oldest modification time in the lock (None when empty)."""
        mods = [e.mod for e in (*self.notes.values(), *self.notetypes.values())]
        return min(mods, default=None)

    @property
    def latest(self) -> int:
        """The newest modification time in the lock (0 when empty)."""
        mods = [e.mod for e in (*self.notes.values(), *self.notetypes.values())]
        return max(mods, default=0)


EMPTY = Lock({}, {})


def parse_lock(path: str, text: str) -> Lock:
    """Read a lock file's text; a damaged lock is a located error, never silently ignored."""
    notes: dict[str, Entry] = {}
    notetypes: dict[str, Entry] = {}
    deck_name = None
    intern = sys.intern  # type and deck repeat on every line; keep one copy of each
    for number, line in enumerate(text.splitlines(), start=1):
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t", 6)
        try:
            if parts[0] == "note" and len(parts) == 7:
                notes[parts[1]] = Entry(parts[2], int(parts[3]), intern(parts[4]), intern(parts[6]),
                                        intern(parts[5]))
            elif parts[0] == "deck" and len(parts) >= 2:
                deck_name = line.split("\t", 1)[1]
            elif parts[0] == "notetype" and len(parts) == 4:
                notetypes[parts[1]] = Entry(parts[2], int(parts[3]))
            else:
                raise ValueError("expected `deck`, `note` or `notetype` and tab-separated values")
        except ValueError as err:
            raise NeurodeckError([Problem(
                Location(path, number), f"cannot read the lock file: {err}",
                hint="restore it from version control, or delete it to start afresh "
                "(learners may then not receive edits until a note changes again)",
            )]) from None
    return Lock(notes, notetypes, deck_name)


def format_lock(lock: Lock) -> str:
    """The lock's text: a header, then note types and notes, one sorted line each."""
    return "".join(lock_lines(lock))


def lock_lines(lock: Lock) -> Iterator[str]:
    """The lock's text line by line, so that a large lock is never held twice in memory."""
    yield _HEADER
    if lock.deck_name is not None:
        yield f"deck\t{lock.deck_name}\n"
    for k, e in sorted(lock.notetypes.items()):
        yield f"notetype\t{k}\t{e.hash}\t{e.mod}\n"
    for k in sorted(lock.notes):
        e = lock.notes[k]
        yield f"note\t{k}\t{e.hash}\t{e.mod}\t{e.kind}\t{e.cards}\t{e.subdeck}\n"


def modified_time(before: Entry | None, content_hash: str, clock: int) -> int:
    """An entry's modification time: kept while its hash is, else moved forward."""
    if before is None:
        return clock
    if before.hash == content_hash:
        return before.mod
    return max(clock, before.mod + 1)


class LockUpdater:
    """Builds this build's lock entry by entry: unchanged entries keep their time.

    A changed entry gets `clock`, or one second past its old time if the clock is behind,
    so that Anki always sees the edit as newer.
    """

    def __init__(self, old: Lock, clock: int, deck_name: str) -> None:
        self.old = old
        self.clock = clock
        self.deck_name = deck_name
        self.notes: dict[str, Entry] = {}
        self.notetypes: dict[str, Entry] = {}
        self.added = self.changed = 0

    def note(self, note_id: str, content_hash: str, kind: str, subdeck: str,
             cards: str) -> int:
        """Record a note's current content; returns its modification time."""
        before = self.old.notes.get(note_id)
        if before is None:
            self.added += 1
        mod = self._mod(before, content_hash)
        if before is not None and mod != before.mod:
            self.changed += 1
        # type, subdeck and cards repeat across thousands of notes: keep one copy of each.
        self.notes[note_id] = Entry(content_hash, mod, sys.intern(kind), sys.intern(subdeck),
                                    sys.intern(cards))
        return mod

    def notetype(self, key: str, content_hash: str) -> int:
        """Record a note type's current fingerprint; returns its modification time."""
        mod = self._mod(self.old.notetypes.get(key), content_hash)
        self.notetypes[key] = Entry(content_hash, mod)
        return mod

    def _mod(self, before: Entry | None, content_hash: str) -> int:
        return modified_time(before, content_hash, self.clock)

    def lock(self) -> Lock:
        """The lock as recorded so far."""
        return Lock(self.notes, self.notetypes, self.deck_name)

    def changes(self) -> list[str]:
        """Short phrases for what differs from the old lock (empty when nothing does)."""
        removed = len(self.old.notes.keys() - self.notes.keys())
        types = {k for k, e in self.notetypes.items() if e != self.old.notetypes.get(k)}
        types |= self.old.notetypes.keys() - self.notetypes.keys()
        parts = []
        for count, what in ((self.added, "added"), (self.changed, "changed"), (removed, "removed")):
            if count:
                parts.append(f"{count} note{'s' if count != 1 else ''} {what}")
        if types:
            parts.append(f"note types changed: {', '.join(sorted(types))}")
        if self.old.deck_name is not None and self.deck_name != self.old.deck_name:
            parts.append("deck name changed")
        return parts

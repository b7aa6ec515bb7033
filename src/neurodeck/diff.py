"""What changed between two releases: notes added, changed and removed, by note id.

Both sides are Snapshots (what Anki gets), matched by GUID as Anki matches them. A deck
directory on either side names its notes by id; notes only a package knows are shown by GUID
and the text of their first field.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import re
import signal
import threading
from array import array
from bisect import bisect_right
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

from . import lock as lockfile
from .anki_rules import static_media
from .ankitext import media_names
from .errors import NeurodeckError, printable
from .markup import html_to_text
from .notetypes import CLOZE_RE
from .pipeline import no_gc, read_lock, usable_cpus
from .snapshot import (
    NoteType,
    PackagedNote,
    PackageReader,
    Snapshot,
    open_package,
    read_side,
    stream_prepared,
)
from .source_links import without_origin
from .unpack import media_digests, read_media

# Parts of a note a change can touch, in the order they are reported.
# "image": an image it shows has other bytes under the same name (the fields are equal).
PARTS = ("front", "back", "text", "extra", "source", "mine", "tags", "deck", "type", "image")
_MD_SPECIAL_RE = re.compile(r"([\\`*_\[\]<>#|])")


@dataclass(frozen=True)
class NoteRef:
    """How a change names a note: its id when a deck directory knows it, else its GUID."""

    guid: str
    note_id: str | None
    subdeck: str
    text: str  # the first field as plain text, shortened

    def __str__(self) -> str:
        return repr(self.note_id) if self.note_id else f"GUID {self.guid} ({self.text!r})"


@dataclass(frozen=True)
class NoteChange:
    """A note on both sides that differs in what a learner sees."""

    ref: NoteRef
    parts: tuple[str, ...]  # from PARTS
    old: PackagedNote
    new: PackagedNote


@dataclass(frozen=True)
class DeckDiff:
    """Every note-level difference between an old and a new release, in curriculum order.

    `old` and `new` describe the sides (their notes are not kept when a side was streamed);
    the notes themselves are kept only where something differs.
    """

    old: Snapshot
    new: Snapshot
    added: tuple[NoteRef, ...]
    changed: tuple[NoteChange, ...]
    removed: tuple[NoteRef, ...]
    old_count: int  # notes on each side
    new_count: int
    added_notes: tuple[PackagedNote, ...]  # the notes `added` and `removed` name, in order
    removed_notes: tuple[PackagedNote, ...]
    # Notes whose content is the same on both sides but whose modification time moved
    # forward (Anki updates them anyway), in the new side's order.
    touched: tuple[PackagedNote, ...]

    @property
    def empty(self) -> bool:
        """True when learners would see no difference in any note."""
        return not (self.added or self.changed or self.removed)


def diff_snapshots(old: Snapshot, new: Snapshot) -> DeckDiff:
    """Compare two sides note by note, matching GUIDs as Anki's importer does."""
    comparison = _Comparison(NoteIndex.of_snapshot(old))
    comparison.take(new, list(new.notes))
    return comparison.finish(new, len(new.notes))


def diff_paths(old: Path, new: Path, *, clock: int) -> DeckDiff:
    """diff_snapshots of the two sides as read_side reads them, without holding every note
    of either: the old side becomes a digest per GUID (a package's notes stay in its
    collection until a change asks for one), and a deck directory's notes are compared as
    its pass compiles them."""
    if not new.is_dir():
        with index_side(old, clock=clock) as (index, _):
            comparison = _Comparison(index)
            side = read_side(new, clock=clock)
            comparison.take(side, list(side.notes))
            return comparison.finish(replace(side, notes=()), len(side.notes))
    # The deck's lock is read while the old package is digested: both come before the pass.
    with index_side(old, clock=clock, meanwhile=lambda: _indexed_lock(new)) as (index, lock):
        comparison = _Comparison(index)
        # Compared in the workers that compile the notes (they inherit the old side's
        # index): the main process only records what they found.
        header, count = stream_prepared(
            new,
            clock=clock,
            prepare=comparison.compare,
            on_prepared=comparison.took,
            media=static_media,
            old_lock=lock,
        )
        return comparison.finish(header, count)


def _indexed_lock(deck_dir: Path) -> lockfile.Lock:
    """The deck's lock, ready for the lookups the pass's workers make (as the pass would
    make it ready before forking them)."""
    lock = read_lock(deck_dir)
    lock.notes.index()
    return lock


T = TypeVar("T")


@contextmanager
def index_side(
    path: Path, *, clock: int, meanwhile: Callable[[], T] | None = None
) -> Iterator[tuple[NoteIndex, T | None]]:
    """The side at `path` as a NoteIndex (a package stays open while it is used), and what
    `meanwhile` gives: it runs while a large package is digested by other processes.

    A package is read before the deck's pass starts: its transient objects are gone, and
    their memory given back, before the pass forks its workers and builds its own state.
    """
    if not path.is_file():  # a deck directory, or read_side's error
        index = NoteIndex.of_snapshot(read_side(path, clock=clock))
        yield index, meanwhile() if meanwhile else None
        return
    with open_package(path) as reader:
        index = NoteIndex(reader.fetch)
        with no_gc():  # many small objects that make no cycles
            first_deck, done = _index_package(reader, index, meanwhile)
        # Of the package's media, only what Anki's import rules look at (anki_rules.py).
        index.header = replace(
            reader.header(first_deck),
            media=read_media(path, static_media),
            media_digests=media_digests(path),
        )
        _return_free_memory()
        yield index, done


# From this many notes on, two forked processes digest a package's notes, a half each:
# reading a package is the part of diff and release-check that runs before the pass uses
# every CPU.
SPLIT_MIN_NOTES = 5_000


def _index_package(
    reader: PackageReader, index: NoteIndex, meanwhile: Callable[[], T] | None
) -> tuple[str, T | None]:
    """Add every note of the package to `index`; returns the deck of its first note and
    what `meanwhile` gave. A large package is digested by two forked processes, a half
    each, while this one runs `meanwhile`; a half whose process fails is digested here
    (which reports what is wrong with it). A problem `meanwhile` raises comes after the
    package's own."""
    count = reader.count()
    # fork() in a process with threads can deadlock (and some systems have no fork).
    if (
        count < SPLIT_MIN_NOTES
        or usable_cpus() < 2
        or threading.active_count() > 1
        or not hasattr(os, "fork")
    ):
        first = _add_rows(reader, index, None)[1]
        index.freeze()
        return first, meanwhile() if meanwhile else None
    halves = (range(count // 2), range(count // 2, count))
    children: list[tuple[int, int]] = []  # (pid, pipe) of each child not yet waited for
    digested: list[bytes | None] = []
    late: NeurodeckError | None = None
    try:
        for rows in halves:
            children.append(_digest_in_child(reader, rows))
        try:
            done = meanwhile() if meanwhile else None
        except NeurodeckError as err:
            late, done = err, None
        while children:
            digested.append(_digested(*children[0]))
            children.pop(0)
    except BaseException:
        for pid, pipe in children:
            with contextlib.suppress(OSError):
                os.close(pipe)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        raise
    firsts: list[tuple[int, str]] = []  # each half's first note: its place and deck
    for rows, data in zip(halves, digested, strict=True):
        if data is None:
            half = NoteIndex(reader.fetch)
            firsts.append(_add_rows(reader, half, rows))
            half.freeze()
            index.append(half.frozen())
        else:
            *frozen, (place, deck) = marshal.loads(data)
            index.append(tuple(frozen))
            firsts.append((place, deck))
    if late is not None:
        raise late
    return str(min(firsts, key=itemgetter(0))[1]), done  # on a tie, the earlier row


def _digest_in_child(reader: PackageReader, rows: range) -> tuple[int, int]:
    """Fork a process that digests these rows, sorts them and sends them down a pipe;
    returns its pid and the pipe's reading end."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its rows, as bytes down the pipe, then gone without a trace
        status = 1
        try:
            os.close(read_end)
            part = NoteIndex(reader.fetch)
            with PackageReader(reader.db, reader.source) as own:  # never share a connection
                first = _add_rows(own, part, rows)
            part.freeze()
            with open(write_end, "wb") as pipe:
                pipe.write(marshal.dumps((*part.frozen(), first)))
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    return pid, read_end


def _digested(pid: int, read_end: int) -> bytes | None:
    """What the child sent, once it ended; None if it failed."""
    with open(read_end, "rb", closefd=False) as pipe:
        data = pipe.read()
    status = os.waitpid(pid, 0)[1]
    os.close(read_end)
    return data if status == 0 else None


def _add_rows(reader: PackageReader, index: NoteIndex, rows: range | None) -> tuple[int, str]:
    """Add these rows' notes to `index`; returns the place and deck of the first one."""
    first = (2**63, "")
    for row, place, guid, notetype, fields, tags, mod, deck, _ in reader.records(rows):
        index.add(row, place, guid, mod, note_digest(notetype, fields, tags, deck))
        if place < first[0]:
            first = (place, deck)
    return first


_ODD_MOD = -(2**63)  # stands for a time outside 64 bits (a crafted package's)


# A frozen NoteIndex as bytes: keys, digests, times, rows, places, key prefixes, odd times.
Frozen = tuple[bytes, bytes, bytes, bytes, bytes, bytes, dict[int, int]]


class NoteIndex:
    """One side of a diff as about 60 bytes per note, in a few flat arrays rather than an
    object per note: a hash of its GUID, a digest of what changed_parts compares, its
    modification time, row and place. The notes that turn out to differ are fetched again
    by row. Flat arrays also stay shared with the pass's forked workers: reading them
    touches no per-note object, so no page is copied.

    The arrays are one or more segments, each sorted by GUID hash (and row): a large
    package's two halves are sorted by the processes that digest them, and put end to end."""

    def __init__(self, fetch: Callable[[Collection[int]], dict[int, PackagedNote]]) -> None:
        self.header = Snapshot("", "", None, {}, ())
        self.count = 0
        self.fetch = fetch
        # Filled by add in row order, then sorted by GUID hash (and row) by freeze.
        self._keys = b""  # 16 bytes a note
        self._digests = b""  # 16 bytes a note
        self._added: tuple[list[bytes], list[bytes]] = ([], [])  # keys, digests until freeze
        self._mods = array("q")
        self._rows = array("q")
        self._places = array("q")
        self._prefixes = array("Q")  # each key's first 8 bytes, for bisect
        self._seen = bytearray()
        self._odd_mods: dict[int, int] = {}
        self._segments = [0]  # where each sorted segment starts; later ones hold later rows
        self._shared: set[int] = set()  # key prefixes found in more than one segment

    @classmethod
    def of_snapshot(cls, side: Snapshot) -> NoteIndex:
        """A side read whole (a deck directory, compiled in memory)."""
        notes = side.notes
        index = cls(lambda rows: {row: notes[row] for row in rows})
        for row, note in enumerate(notes):
            index.add(row, row, note.guid, note.mod, digest(side.notetypes, note))
        index.freeze()
        index.header = side
        return index

    def add(self, row: int, place: int, guid: str, mod: int, note_digest: bytes) -> None:
        """Record a note (rows in increasing order); a later note of the same GUID hides it
        from lookups, as Snapshot.by_guid does."""
        if not -(2**63) < mod < 2**63:
            self._odd_mods[row], mod = mod, _ODD_MOD
        self._added[0].append(_key(guid))
        self._added[1].append(note_digest)
        self._mods.append(mod)
        self._rows.append(row)
        self._places.append(place)

    def freeze(self) -> None:
        """Sort the records by GUID hash, then row, once every note was added."""
        (keys, digests), mods, rows, places = self._added, self._mods, self._rows, self._places
        self._added = ([], [])
        self.count = len(keys)
        order = sorted(range(self.count), key=keys.__getitem__)
        self._keys = b"".join([keys[i] for i in order])
        self._digests = b"".join([digests[i] for i in order])
        self._mods = array("q", [mods[i] for i in order])
        self._rows = array("q", [rows[i] for i in order])
        self._places = array("q", [places[i] for i in order])
        self._prefixes = array("Q", [int.from_bytes(keys[i][:8], "big") for i in order])
        self._seen = bytearray(self.count)

    def frozen(self) -> Frozen:
        """The sorted arrays as bytes (and the odd times), for another process's `append`."""
        arrays = (self._mods, self._rows, self._places, self._prefixes)
        mods, rows, places, prefixes = (a.tobytes() for a in arrays)
        return self._keys, self._digests, mods, rows, places, prefixes, self._odd_mods

    def append(self, frozen: Frozen) -> None:
        """Put a frozen index of later rows (what its `frozen` gave) after this one, as a
        segment of its own."""
        keys, digests, mods, rows, places, prefixes, odd_mods = frozen
        if self.count:
            self._segments.append(self.count)
            self._shared |= set(self._prefixes).intersection(array("Q", prefixes))
        self._keys += keys
        self._digests += digests
        self._mods.frombytes(mods)
        self._rows.frombytes(rows)
        self._places.frombytes(places)
        self._prefixes.frombytes(prefixes)
        self._odd_mods.update(odd_mods)
        self.count = len(self._rows)
        self._seen = bytearray(self.count)

    def find(self, guid: str) -> int:
        """Where the last note with this GUID is (-1 if there is none); marks nothing, so
        a forked worker may ask (the main process then marks what it found)."""
        key = _key(guid)
        prefix = int.from_bytes(key[:8], "big")
        end = self.count
        for start in reversed(self._segments):  # the later rows first
            found = self._find_in(key, prefix, start, end)
            if found >= 0:
                return found
            end = start
        return -1

    def _find_in(self, key: bytes, prefix: int, start: int, end: int) -> int:
        keys, prefixes = self._keys, self._prefixes
        i = bisect_right(prefixes, prefix, start, end) - 1
        while i >= start and prefixes[i] == prefix and not keys.startswith(key, 16 * i):
            i -= 1
        if i < start or prefixes[i] != prefix:
            return -1
        return i

    def mark(self, found: int) -> None:
        """Every note with the GUID of the note found is no longer among the unmatched."""
        keys = self._keys
        key = keys[16 * found : 16 * found + 16]
        ends = [found + 1]
        if self._prefixes[found] in self._shared:  # the GUID may be in other segments too
            prefix, end = self._prefixes[found], self.count
            for start in reversed(self._segments):
                last = self._find_in(key, prefix, start, end)
                if last >= 0 and last != found:
                    ends.append(last + 1)
                end = start
        for i in ends:
            i -= 1
            while i >= 0 and keys.startswith(key, 16 * i):
                self._seen[i] = 1
                i -= 1

    def same(self, found: int, note_digest: bytes) -> bool:
        """Whether the note found has this digest."""
        return self._digests.startswith(note_digest, 16 * found)

    def mod(self, found: int) -> int:
        """The modification time of the note found."""
        return self._odd_mods.get(self._rows[found], self._mods[found])

    def row(self, found: int) -> int:
        """The row of the note found."""
        return self._rows[found]

    def unmatched(self) -> list[int]:
        """The rows of notes whose GUID the other side never asked for, in this side's order."""
        places, rows = self._places, self._rows
        left = sorted((places[i], rows[i]) for i, seen in enumerate(self._seen) if not seen)
        return [row for _, row in left]


def _return_free_memory() -> None:
    """Give the memory that reading a large package used and freed back to the system
    before the pass forks its workers (glibc keeps it otherwise, and the workers would
    inherit it)."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def _key(guid: str) -> bytes:
    """A GUID as 16 bytes (two different GUIDs never meet the same key by chance)."""
    return hashlib.blake2b(guid.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def digest(notetypes: Mapping[int, NoteType], note: PackagedNote) -> bytes:
    """note_digest of a note."""
    return note_digest(notetypes[note.notetype_id], note.fields, note.tags, note.deck)


def note_digest(notetype: NoteType, fields: Sequence[str], tags: Iterable[str], deck: str) -> bytes:
    """Everything changed_parts compares, hashed: two notes with the same digest differ in
    no part (fields without their origin link, the set of tags, subdeck, note type id)."""
    plan = _PLANS.get(id(notetype))
    if plan is None or plan[0] is not notetype:
        # A field's value by key, the last field of a key winning (as Snapshot.fields_of).
        positions = {f.key: i for i, f in enumerate(notetype.fields)}
        keys = sorted(positions)
        values_of = itemgetter(*[positions[key] for key in keys]) if keys else lambda _: ()
        plan = _PLANS[id(notetype)] = (notetype, tuple(keys), values_of)
    if "nd-origin" in "".join(fields):
        fields = [without_origin(value) for value in fields]
    # The values in the order of their keys: two note types with the same field keys give
    # the same digest exactly when changed_parts finds no change. (Note types that differ in
    # their keys give different digests, and changed_parts then decides.) marshal writes
    # each value with its type and length, so no two different notes give the same bytes;
    # version 2 writes equal values alike, however Python shares them.
    data = (notetype.id, deck.partition("::")[2], sorted(set(tags)), plan[1], plan[2](fields))
    return hashlib.blake2b(marshal.dumps(data, 2), digest_size=16).digest()


# Per note type: the note type, its field keys sorted, and what picks their values.
_PLANS: dict[int, tuple[NoteType, tuple[str, ...], Callable[[Sequence[str]], Any]]] = {}


# The old side's positions a few notes matched, and those of them that differ: (note, old
# row or -1 for an added note, whether its digest differs).
_Compared = tuple["array[int]", list[tuple[PackagedNote, int, bool]]]


class _Comparison:
    """The new side's notes, compared one by one with the old side's index as they come;
    only the notes that differ are kept."""

    def __init__(self, old: NoteIndex) -> None:
        self.old = old
        # (note, old row or -1 for an added note, whether its digest differs)
        self._differ: list[tuple[PackagedNote, int, bool]] = []

    def take(self, side: Snapshot, notes: list[PackagedNote]) -> None:
        """Compare some of the new side's notes, in its order (`side`: its note types)."""
        self.took(self.compare(side, notes))

    def compare(self, side: Snapshot, notes: list[PackagedNote]) -> _Compared:
        """What `take` learns from some notes, without changing anything: the positions
        found in the old side, and the notes that differ (run in the pass's workers)."""
        old, found_at, differ = self.old, array("q"), []
        for note in notes:
            found = old.find(note.guid)
            if found < 0:
                differ.append((note, -1, True))
                continue
            found_at.append(found)
            if not old.same(found, digest(side.notetypes, note)):
                differ.append((note, old.row(found), True))
            elif note.mod > old.mod(found):
                differ.append((note, old.row(found), False))
        return found_at, differ

    def took(self, compared: _Compared) -> None:
        """Record what `compare` learnt, in the new side's order."""
        found_at, differ = compared
        for found in found_at:
            self.old.mark(found)
        self._differ += differ

    def finish(self, new: Snapshot, new_count: int) -> DeckDiff:
        """The diff, once every note of the new side went by (`new`: its header)."""
        old = self.old.header
        removed_rows = self.old.unmatched()
        before = self.old.fetch({row for _, row, _ in self._differ if row >= 0} | set(removed_rows))
        added, added_notes, changed, same = [], [], [], []
        for note, row, differs in self._differ:
            if row < 0:
                added.append(note_ref(new, note, {}))
                added_notes.append(note)
            elif differs and (parts := changed_parts(old, before[row], new, note)):
                # A side that is a package borrows the note's id from a deck directory.
                old_id = before[row].note_id
                ids = {note.guid: old_id} if old_id else {}
                changed.append(NoteChange(note_ref(new, note, ids), parts, before[row], note))
            elif note.mod > before[row].mod:
                if _image_redrawn(old, new, note):
                    old_id = before[row].note_id
                    ids = {note.guid: old_id} if old_id else {}
                    changed.append(
                        NoteChange(note_ref(new, note, ids), ("image",), before[row], note)
                    )
                else:
                    same.append(note)
        changed_guids = {c.new.guid for c in changed}
        removed_notes = [before[row] for row in removed_rows]
        return DeckDiff(
            old,
            new,
            tuple(added),
            tuple(changed),
            tuple(note_ref(old, note, {}) for note in removed_notes),
            self.old.count,
            new_count,
            tuple(added_notes),
            tuple(removed_notes),
            tuple(note for note in same if note.guid not in changed_guids),
        )


def _image_redrawn(old: Snapshot, new: Snapshot, note: PackagedNote) -> bool:
    """Whether an image the note shows has other bytes on the new side under the same name
    (a side that does not list a file's digest tells nothing)."""
    for name in media_names(note.fields):
        before, after = old.media_digests.get(name), new.media_digests.get(name)
        if before is not None and after is not None and before != after:
            return True
    return False


def note_ref(side: Snapshot, note: PackagedNote, ids: Mapping[str, str]) -> NoteRef:
    """Name a note, borrowing its id from the other side when only that side knows it."""
    # The text as learners read it in Anki's browser: cloze markers show their answers. A
    # diagram's first field is mask markup, so it is named by its header (or image) instead.
    first = CLOZE_RE.sub(lambda m: m.group(2).split("::")[0], note.fields[0] if note.fields else "")
    if side.notetype_of(note).key == "occlusion":
        fields = side.fields_of(note)
        first = "Diagram: " + (fields.get("header") or fields.get("image", ""))
    return NoteRef(
        note.guid,
        note.note_id or ids.get(note.guid),
        side.subdeck_of(note),
        shorten(html_to_text(first)),
    )


def changed_parts(
    old: Snapshot, before: PackagedNote, new: Snapshot, after: PackagedNote
) -> tuple[str, ...]:
    """Which parts of a note differ; a modification time alone is not a change."""
    old_fields, new_fields = old.fields_of(before), new.fields_of(after)
    # The link back to the fact set moves with every line inserted above and with every
    # release's tag; it is generated, never an edit (see source_links.py).
    for fields in (old_fields, new_fields):
        for key, value in fields.items():
            fields[key] = without_origin(value)
    parts = {
        key
        for key in old_fields.keys() | new_fields.keys()
        if old_fields.get(key, "") != new_fields.get(key, "")
    }
    if set(before.tags) != set(after.tags):
        parts.add("tags")
    if old.subdeck_of(before) != new.subdeck_of(after):
        parts.add("deck")
    if before.notetype_id != after.notetype_id:  # Anki compares note types by id
        parts.add("type")
    return tuple(sorted(parts, key=lambda p: (PARTS.index(p) if p in PARTS else len(PARTS), p)))


def shorten(text: str, width: int = 60) -> str:
    """At most `width` characters, cut at a word with an ellipsis."""
    if len(text) <= width:
        return text
    return text[: width - 1].rsplit(" ", 1)[0].rstrip(" ,.;:") + "…"


def describe_change(change: NoteChange, diff: DeckDiff) -> str:
    """The parts that changed, with before → after for the deck and the note type."""
    words = []
    for part in change.parts:
        if part == "deck":
            words.append(f"deck ({_deck(diff.old, change.old)} → {_deck(diff.new, change.new)})")
        elif part == "type":
            words.append(
                f"type ({diff.old.notetype_of(change.old).key} → "
                f"{diff.new.notetype_of(change.new).key})"
            )
        else:
            words.append(part)
    return ", ".join(words)


def _deck(side: Snapshot, note: PackagedNote) -> str:
    return side.subdeck_of(note) or "(root)"


def _side(side: Snapshot) -> str:
    return f"{side.version or 'unversioned'} ({printable(side.source)})"


def summary(diff: DeckDiff) -> str:
    """One line: which releases, and how many notes were added, changed and removed."""
    counts = f"{len(diff.added)} added, {len(diff.changed)} changed, {len(diff.removed)} removed"
    return f"{diff.new.deck_name}: {_side(diff.old)} → {_side(diff.new)}: {counts}"


def format_text(diff: DeckDiff) -> str:
    """The diff for a terminal: a summary line, then one line per note."""
    sections = (
        ("Added", [f"{_ref_text(r)}  [{r.subdeck or '(root)'}] {r.text}" for r in diff.added]),
        ("Changed", [f"{_ref_text(c.ref)}: {describe_change(c, diff)}" for c in diff.changed]),
        ("Removed", [f"{_ref_text(r)}  [{r.subdeck or '(root)'}] {r.text}" for r in diff.removed]),
    )
    lines = [summary(diff)]
    for title, items in sections:
        if items:
            lines += ["", f"{title}:", *(f"  {item}" for item in items)]
    return "\n".join(lines) + "\n"


def _ref_text(ref: NoteRef) -> str:
    return ref.note_id or f"GUID {ref.guid}"


def format_markdown(diff: DeckDiff) -> str:
    """The diff as a Markdown changelog section, for release notes."""
    old, new = diff.old.version or "the previous release", diff.new.version or "this release"
    lines = [f"## Changes from {md_escape(old)} to {md_escape(new)}", ""]
    if diff.empty:
        return "\n".join([*lines, "No note changed.", ""])
    lines += [_counts_sentence(diff), ""]
    sections = (
        (
            "Added",
            [
                f"- {_ref_md(r)} ({md_escape(r.subdeck or '(root)')}): {md_escape(r.text)}"
                for r in diff.added
            ],
        ),
        (
            "Changed",
            [
                f"- {_ref_md(c.ref)} ({md_escape(c.ref.subdeck or '(root)')}): "
                f"{md_escape(c.ref.text)} — {md_escape(describe_change(c, diff))}"
                for c in diff.changed
            ],
        ),
        (
            "Removed",
            [
                f"- {_ref_md(r)} ({md_escape(r.subdeck or '(root)')}): {md_escape(r.text)}"
                for r in diff.removed
            ],
        ),
    )
    for title, items in sections:
        if items:
            lines += [f"### {title}", "", *items, ""]
    return "\n".join(lines)


def _counts_sentence(diff: DeckDiff) -> str:
    counts = [
        (n, what)
        for n, what in (
            (len(diff.added), "added"),
            (len(diff.changed), "changed"),
            (len(diff.removed), "removed"),
        )
        if n
    ]
    (first, what), rest = counts[0], counts[1:]
    parts = [f"{first} note{'s' if first != 1 else ''} {what}", *(f"{n} {w}" for n, w in rest)]
    return ", ".join(parts) + "."


def _ref_md(ref: NoteRef) -> str:
    return code_span(ref.note_id) if ref.note_id else f"GUID {code_span(ref.guid)}"


def md_escape(text: str) -> str:
    """Text that Markdown shows as typed."""
    return _MD_SPECIAL_RE.sub(r"\\\1", text)


def code_span(text: str) -> str:
    """An inline code span that survives backticks in `text` (GUIDs may contain them)."""
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def diff_to_json(diff: DeckDiff) -> dict[str, object]:
    """The diff as JSON-ready data, for tools."""

    def ref(r: NoteRef) -> dict[str, object]:
        return {"id": r.note_id, "guid": r.guid, "deck": r.subdeck, "text": r.text}

    def side(s: Snapshot, count: int) -> dict[str, object]:
        return {
            "source": s.source,
            "deck": s.deck_name,
            "version": s.version,
            "notes": count,
        }

    return {
        "old": side(diff.old, diff.old_count),
        "new": side(diff.new, diff.new_count),
        "added": [ref(r) for r in diff.added],
        "changed": [{**ref(c.ref), "changed": list(c.parts)} for c in diff.changed],
        "removed": [ref(r) for r in diff.removed],
    }

"""The lock file: when each note's content last changed.

Anki updates a learner's note on import only when the package's modification time is newer
than the learner's copy. Using the build time would overwrite learners' own edits on every
release and make two builds differ; using a constant would hide real edits. So the lock,
committed beside the cards, records a content hash and a modification time per note (and
per note type). A build moves a time forward only where the hash changed.

A note's hash covers its text, not the bytes of the images it shows, which the package
holds under their file names. Anki copies a changed image under a new name, but points only
the notes it updates at it: a note left alone keeps showing the old image. So the lock also
records a digest of each packaged image, and a changed digest moves the time of every note
that uses the image (see `image_changed`).

The format is one tab-separated line per entry, sorted, so that a release's diff shows
exactly which notes changed.
"""

from __future__ import annotations

import bisect
import hashlib
import io
import itertools
import re
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .errors import Location, NeurodeckError, Problem

LOCK_FILE = "neurodeck.lock"
# The format written. Version 3 added `media` records; versions 1 (no `lock` line) and 2 are
# still read (see LockUpdater.migration).
LOCK_VERSION = 3
MEDIA_VERSION = 3  # the first format with `media` records
# The latest time a lock may hold: a zip file cannot date anything after 2107, and every
# time in the lock ends up as the package's zip date. 0 is the earliest.
MAX_TIME = 4354819199  # 2107-12-31 23:59:59 UTC
RECOVER_HINT = (
    "restore it from version control; if it is lost, rebuild it from the last "
    "released package with `neurodeck lock --from RELEASE.apkg`"
)
_HEADER = (
    "# neurodeck lock: when each note last changed. Commit it with the cards; "
    "`neurodeck build` updates it.\n"
    "# Lost or damaged? Never delete it: `neurodeck lock --from LAST-RELEASE.apkg` rebuilds it.\n"
    "# lock\tformat\tdeck id | deck\tname | notetype\tkey\thash\tmod | media\tfile\tdigest"
    " | note\tid\thash\tmod\ttype\tcards\tsubdeck | occlusion\tnote\tshape id\tcard number\n"
)


class Entry(NamedTuple):
    """What the lock knows about one note or note type (made per lookup: a named tuple is
    made four times faster than a frozen dataclass)."""

    hash: str
    mod: int  # seconds since the epoch when the content last changed
    kind: str = ""  # note type key (notes only)
    subdeck: str = ""  # subdeck path (notes only)
    cards: str = ""  # the card ordinals it makes, e.g. "0,1" (notes only)


# A note's content hash is 16 hex digits; the table keeps it as one 64-bit number.
_HASH_RE = re.compile("[0-9a-f]{16}")
_HASHES_RE = re.compile("(?:[0-9a-f]{16})*")
_HASH_MASK = (1 << 64) - 1  # hash() as an unsigned 64-bit number


def _bad_hash(content_hash: str) -> str:
    return f"a note's hash must be 16 lowercase hex digits, not {content_hash!r}"


class NoteTable(Mapping[str, Entry]):
    """The lock's note entries by id, kept in flat arrays rather than as objects.

    A build holds the old lock and the new one, and its forked worker processes read the
    old one. As a dict of objects they were a build's largest memory, and every lookup in a
    worker wrote to them (reference counts), copying those pages into each worker. Here the
    ids are one byte string and the rest arrays of numbers, found through a sorted array of
    the ids' hashes; entries come back as Entry objects on lookup. `add` may come in any
    order; lookups, iteration and `lines` give the ids in order, as a lock file writes them.
    """

    def __init__(self, entries: Mapping[str, Entry] | None = None) -> None:
        self._ids = bytearray()  # every id, UTF-8, one after another
        self._ends = array("Q")  # where each id ends in _ids
        self._hashes = array("Q")
        self._mods = array("q")
        self._shapes = array("L")  # index into _shape_list
        self._shape_list: list[tuple[str, str, str]] = []
        self._shape_index: dict[tuple[str, str, str], int] = {}
        self._sorted = True
        self._increasing = True  # each id greater than the one before
        self._in_added_order = True
        self._last = b""
        # hash() of each id, sorted, and the entry each belongs to; made on the first lookup.
        # (str hashes differ between Python processes, but forked workers share the parent's.)
        self._keys: array[int] | None = None
        self._slots = array("Q")
        self._buckets = array("Q")
        self._shift = 64
        for note_id, entry in (entries or {}).items():
            self.add(note_id, entry.hash, entry.mod, entry.kind, entry.subdeck, entry.cards)

    def add(
        self, note_id: str, content_hash: str, mod: int, kind: str, subdeck: str, cards: str
    ) -> None:
        """Record a note (see `drop_repeats` for an id that comes twice)."""
        if not _HASH_RE.fullmatch(content_hash):
            raise ValueError(_bad_hash(content_hash))
        self.append_checked(note_id, content_hash, mod, kind, subdeck, cards)

    def append_checked(
        self, note_id: str, content_hash: str, mod: int, kind: str, subdeck: str, cards: str
    ) -> None:
        """As `add`, for a hash known to be 16 lowercase hex digits."""
        shape = (kind, subdeck, cards)
        index = self._shape_index.get(shape)
        if index is None:
            index = self._shape_index[shape] = len(self._shape_list)
            self._shape_list.append(shape)
        encoded = note_id.encode()
        if encoded <= self._last:  # UTF-8 bytes sort as the text's code points do
            self._increasing = False  # so an id may come twice
            if encoded < self._last:
                self._sorted = False
        self._last = encoded
        self._ids += encoded
        self._ends.append(len(self._ids))
        self._hashes.append(int(content_hash, 16))
        self._mods.append(mod)
        self._shapes.append(index)
        self._keys = None

    def extend(
        self,
        ids: Sequence[str],
        hashes: Sequence[str],
        mods: Iterable[int | str],
        kinds: Iterable[str],
        subdecks: Iterable[str],
        cards: Iterable[str],
    ) -> None:
        """Add many entries at once, as `add` would one by one (times may be digits)."""
        if not _HASHES_RE.fullmatch("".join(hashes)):
            raise ValueError(_bad_hash(next(h for h in hashes if not _HASH_RE.fullmatch(h))))
        encoded = [note_id.encode() for note_id in ids]
        if not encoded:
            return
        before = [self._last, *encoded[:-1]]
        if not all(map(bytes.__lt__, before, encoded)):
            self._increasing = False
            self._sorted = self._sorted and all(map(bytes.__le__, before, encoded))
        self._last = encoded[-1]
        base = len(self._ids)
        self._ids += b"".join(encoded)
        self._ends.extend(itertools.accumulate(map(len, encoded), initial=base))
        self._ends.pop(len(self._ends) - len(encoded) - 1)  # the `initial`
        self._hashes.extend([int(content_hash, 16) for content_hash in hashes])
        self._mods.extend(map(int, mods))
        shape_index, shape_list = self._shape_index, self._shape_list
        for shape in zip(kinds, subdecks, cards, strict=True):
            index = shape_index.get(shape)
            if index is None:
                index = shape_index[shape] = len(shape_list)
                shape_list.append(shape)
            self._shapes.append(index)
        self._keys = None

    def __getitem__(self, note_id: str) -> Entry:
        entry = self.get(note_id)
        if entry is None:
            raise KeyError(note_id)
        return entry

    def get(self, note_id: str, default: Entry | None = None) -> Entry | None:  # type: ignore[override]
        """The note's entry, or `default`."""
        at = self._find(note_id)
        if at < 0:
            return default
        kind, subdeck, cards = self._shape_list[self._shapes[at]]
        return Entry(f"{self._hashes[at]:016x}", self._mods[at], kind, subdeck, cards)

    def __contains__(self, note_id: object) -> bool:
        return isinstance(note_id, str) and self._find(note_id) >= 0

    def lines(self) -> Iterator[str]:
        """Each note's line of the lock file, in id order."""
        self._sort()
        tails = [f"{kind}\t{cards}\t{subdeck}\n" for kind, subdeck, cards in self._shape_list]
        for note_id, number, mod, shape in zip(
            self._all_encoded(), self._hashes, self._mods, self._shapes, strict=True
        ):
            yield f"note\t{note_id.decode()}\t{number:016x}\t{mod}\t{tails[shape]}"

    def __iter__(self) -> Iterator[str]:
        self._sort()
        return (note_id.decode() for note_id in self._all_encoded())

    def __len__(self) -> int:
        return len(self._ends)

    def mods(self) -> array[int]:
        """Every note's modification time."""
        return self._mods

    def index(self) -> None:
        """Get ready for lookups now (before forking workers, which then share the work)."""
        self._find("")

    def drop_repeats(self) -> list[tuple[str, int, int]]:
        """Keep only the first entry of each id; return (id, position of the first, position
        of the repeat) for each repeat, positions counting entries in the order added.
        Called before any lookup, which would put the entries in id order."""
        if not self._in_added_order:
            raise RuntimeError("drop_repeats after the entries were reordered")
        if self._sorted and self._increasing:
            return []
        ids = self._all_encoded()
        order = sorted(range(len(ids)), key=ids.__getitem__)  # stable: the first comes first
        repeats, keep = [], array("Q")
        previous, first = None, 0
        for at in order:
            if ids[at] == previous:
                repeats.append((ids[at].decode(), first, at))
            else:
                previous, first = ids[at], at
                keep.append(at)
        repeats.sort(key=lambda repeat: repeat[2])
        self._take(keep, ids)
        return repeats

    def ids_not_in(self, other: NoteTable) -> list[str]:
        """This table's ids that `other` lacks, in id order."""
        self._sort()
        theirs = set(other._all_encoded())
        return [note_id.decode() for note_id in self._all_encoded() if note_id not in theirs]

    def _all_encoded(self) -> list[bytes]:
        """Every id, UTF-8 encoded, in the table's order."""
        ids, ends = bytes(self._ids), self._ends
        starts = itertools.chain((0,), ends)
        return [ids[start:end] for start, end in zip(starts, ends, strict=False)]

    def _find(self, note_id: str) -> int:
        """The position of the note's entry, or -1."""
        if self._keys is None:
            self._make_index()
        assert self._keys is not None
        encoded = note_id.encode()
        key = hash(encoded) & _HASH_MASK
        bucket = key >> self._shift
        keys, ends = self._keys, self._ends
        found = bisect.bisect_left(keys, key, self._buckets[bucket], self._buckets[bucket + 1])
        while found < len(keys) and keys[found] == key:  # rarely more than one turn
            at = self._slots[found]
            if self._ids[ends[at - 1] if at else 0 : ends[at]] == encoded:
                return at
            found += 1
        return -1

    def _make_index(self) -> None:
        # Each id's hash, sorted, with the entry it belongs to; and where each bucket of
        # hashes (by their top bits) starts, so a lookup bisects a handful of keys.
        self._sort()
        hashes = array("Q", [hash(note_id) & _HASH_MASK for note_id in self._all_encoded()])
        slots = sorted(range(len(hashes)), key=hashes.__getitem__)
        self._slots = array("Q", slots)
        keys = self._keys = array("Q", [hashes[at] for at in slots])
        bits = max(len(keys).bit_length() - 2, 0)  # about four keys a bucket
        self._shift = 64 - bits
        self._buckets = array(
            "Q", [bisect.bisect_left(keys, bucket << self._shift) for bucket in range(1 << bits)]
        )
        self._buckets.append(len(keys))

    def _sort(self) -> None:
        if not self._sorted:
            ids = self._all_encoded()
            self._take(array("Q", sorted(range(len(ids)), key=ids.__getitem__)), ids)

    def _take(self, positions: array[int], ids: list[bytes]) -> None:
        """Keep the entries at `positions`, in that order (which must be id order); `ids`
        holds every entry's id, encoded."""
        self._in_added_order = False
        self._ids = bytearray(b"".join([ids[at] for at in positions]))
        self._ends = array("Q", itertools.accumulate(len(ids[at]) for at in positions))
        self._hashes = array("Q", [self._hashes[at] for at in positions])
        self._mods = array("q", [self._mods[at] for at in positions])
        self._shapes = array("L", [self._shapes[at] for at in positions])
        self._sorted, self._increasing, self._keys = True, True, None


@dataclass(frozen=True)
class Lock:
    """Entries for notes and note types, by id and key."""

    notes: NoteTable
    notetypes: dict[str, Entry]
    deck_name: str | None = None  # the root deck's name when the lock was written
    # Diagrams: note id -> occlusion (or group) id -> cloze number. A card's review history
    # belongs to its number, so a region keeps its number for good, even after it is removed.
    occlusions: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    deck_id: str | None = None  # deck.yaml's `id` (None in a version 1 lock)
    format: int = LOCK_VERSION  # the format it was read in; 0 for no lock file at all
    # Each packaged image's digest (image_digest) by its name in the package; a lock in a
    # format before MEDIA_VERSION has none.
    media: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.notes, NoteTable):  # a plain mapping, as tests write one
            object.__setattr__(self, "notes", NoteTable(self.notes))

    @property
    def earliest(self) -> int | None:
        """The oldest modification time in the lock (None when empty)."""
        mods = [*self.notes.mods(), *(e.mod for e in self.notetypes.values())]
        return min(mods, default=None)

    @property
    def latest(self) -> int:
        """The newest modification time in the lock (0 when empty)."""
        mods = [*self.notes.mods(), *(e.mod for e in self.notetypes.values())]
        return max(mods, default=0)


EMPTY = Lock(NoteTable(), {}, format=0)


def parse_lock(path: str, text: str) -> Lock:
    """Read a lock file's text; a damaged lock is a located error, never silently ignored."""
    return parse_lock_lines(path, text.splitlines())


# Columns of each record kind, the kind included. A line with more or fewer is damaged:
# reading it anyway would shift every value after the gap.
_COLUMNS = {"lock": 3, "deck": 2, "notetype": 4, "media": 3, "note": 7, "occlusion": 4}
_CARDS_RE = re.compile(r"(?:\d+(?:,\d+)*)?")
_KIND_RE = re.compile(r"[a-z][a-z0-9-]*")
# A note line as neurodeck writes it; any other line takes the slow path, which says what
# is wrong with it.
_NOTE_LINE = re.compile(
    rf"note\t([^\t]+)\t({_HASH_RE.pattern})\t([0-9]+)\t({_KIND_RE.pattern})"
    rf"\t({_CARDS_RE.pattern})\t([^\t]*)"
)


def parse_lock_lines(path: str, lines: Iterable[str]) -> Lock:
    """As parse_lock, line by line (a file object will do), so a large lock is never held
    twice."""
    notes = NoteTable()
    columns = _Columns(notes)  # note lines, added to `notes` in batches
    notetypes: dict[str, Entry] = {}
    deck_name = deck_id = None
    version = 1  # a lock without a `lock` line is version 1
    last_id = ""
    occlusions: dict[str, dict[str, int]] = {}
    media: dict[str, str] = {}
    last_media = ""
    number = 0
    try:
        for number, line in enumerate(lines, start=1):  # noqa: B007 - named on error
            line = line.rstrip("\r\n")
            if (well_formed := _NOTE_LINE.fullmatch(line)) is not None:  # most lines
                note_id, content_hash, mod, kind, cards, subdeck = well_formed.groups()
                if note_id <= last_id:
                    raise ValueError(f"note {note_id!r} is out of order or repeated")
                last_id = note_id
                if len(mod) >= len(_MAX_TIME_TEXT) and (
                    len(mod) > len(_MAX_TIME_TEXT) or mod > _MAX_TIME_TEXT
                ):
                    _time(mod)  # says why
                columns.add(note_id, content_hash, mod, kind, subdeck, cards)
                continue
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t")
            kind = parts[0]
            if kind not in _COLUMNS:
                raise ValueError(
                    f"unknown record {kind!r}; expected `lock`, `deck`, "
                    "`notetype`, `media`, `note` or `occlusion` and tab-separated values"
                )
            if len(parts) != _COLUMNS[kind]:
                raise ValueError(
                    f"a `{kind}` line has {_COLUMNS[kind]} tab-separated "
                    f"columns, this one has {len(parts)}"
                )
            if kind == "note":
                if parts[1] <= last_id:  # neurodeck writes each note once, in id order
                    raise ValueError(f"note {parts[1]!r} is out of order or repeated")
                last_id = parts[1]
                if not _KIND_RE.fullmatch(parts[4]) or not _CARDS_RE.fullmatch(parts[5]):
                    raise ValueError(f"note {parts[1]!r} has a damaged type or card list")
                if not _HASH_RE.fullmatch(parts[2]):
                    raise ValueError(_bad_hash(parts[2]))
                columns.add(parts[1], parts[2], str(_time(parts[3])), parts[4], parts[6], parts[5])
            elif kind == "notetype":
                if parts[1] in notetypes:
                    raise ValueError(f"note type {parts[1]!r} is repeated")
                notetypes[parts[1]] = Entry(parts[2], _time(parts[3]))
            elif kind == "media":
                name, digest = parts[1], parts[2]
                if version < MEDIA_VERSION:
                    raise ValueError(
                        f"a `media` record in a lock of format {version}, which has none"
                    )
                if not name or name <= last_media:  # neurodeck writes each once, by name
                    raise ValueError(f"media file {name!r} is out of order or repeated")
                if not _HASH_RE.fullmatch(digest):
                    raise ValueError(
                        f"media file {name!r} has a damaged digest {digest[:30]!r}; it must "
                        "be 16 lowercase hex digits"
                    )
                last_media = name
                media[name] = digest
            elif kind == "occlusion":
                _read_occlusion_record(occlusions.setdefault(parts[1], {}), parts[2], parts[3])
            elif kind == "deck":
                if deck_name is not None:
                    raise ValueError("the `deck` line is repeated")
                deck_name = parts[1]
            else:
                if (
                    deck_id is not None
                    or deck_name is not None
                    or notetypes
                    or notes
                    or columns.ids
                    or occlusions
                    or media
                ):
                    raise ValueError("the `lock` line must come once, before every other record")
                version, deck_id = _format(parts[1]), parts[2]
                if not deck_id:
                    raise ValueError("the `lock` line names no deck id")
        columns.flush()
    except UnicodeDecodeError:
        raise  # a file's bytes: parse_lock_file says where
    except ValueError as err:
        newer = isinstance(err, _NewerFormat)
        raise NeurodeckError(
            [
                Problem(
                    Location(path, number),
                    f"cannot read the lock file: {err}",
                    hint="upgrade neurodeck (pip install -U neurodeck)" if newer else RECOVER_HINT,
                )
            ]
        ) from None
    return Lock(notes, notetypes, deck_name, occlusions, deck_id, version, media)


def parse_lock_file(path: Path, shown: str) -> Lock:
    """parse_lock_lines over the lock file at `path` (`shown` as the user names it); a byte
    that is not UTF-8 (a lock saved in another encoding) is one problem at its line."""
    try:
        with path.open(encoding="utf-8", newline="\n") as lines:
            return parse_lock_lines(shown, lines)
    except UnicodeDecodeError:
        data = path.read_bytes()  # read whole only on this error path
    try:
        data.decode("utf-8")
        line = column = 0  # the file changed meanwhile: no place to name
        shown_byte = ""
    except UnicodeDecodeError as err:
        start = err.start
        line_start = data.rfind(b"\n", 0, start) + 1
        line = data.count(b"\n", 0, start) + 1
        column = len(data[line_start:start].decode("utf-8", "replace")) + 1
        shown_byte = f" (byte 0x{data[start]:02x})"
    raise NeurodeckError(
        [
            Problem(
                Location(shown, line, column),
                f"cannot read the lock file: it is not UTF-8 text{shown_byte}",
                hint=RECOVER_HINT,
            )
        ]
    )


_MAX_TIME_TEXT = str(MAX_TIME)  # digits compare as numbers when there are as many


class _Columns:
    """Note lines as read, by column, added to a NoteTable a few thousand at a time (faster
    than one by one, and a large lock is mostly note lines; a few at a time, so that the
    build's heap is not left full of holes that its forked workers would copy)."""

    BATCH = 4096

    def __init__(self, table: NoteTable) -> None:
        self.table = table
        self.ids: list[str] = []
        self.hashes: list[str] = []
        self.mods: list[str] = []  # digits, a time in range
        self.kinds: list[str] = []
        self.subdecks: list[str] = []
        self.cards: list[str] = []

    def add(
        self, note_id: str, content_hash: str, mod: str, kind: str, subdeck: str, cards: str
    ) -> None:
        self.ids.append(note_id)
        self.hashes.append(content_hash)
        self.mods.append(mod)
        self.kinds.append(kind)
        self.subdecks.append(subdeck)
        self.cards.append(cards)
        if len(self.ids) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        self.table.extend(self.ids, self.hashes, self.mods, self.kinds, self.subdecks, self.cards)
        for column in (self.ids, self.hashes, self.mods, self.kinds, self.subdecks, self.cards):
            column.clear()


class _NewerFormat(ValueError):
    """A lock written by a newer neurodeck."""


def _format(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise ValueError(f"lock format {text!r} is not a version number")
    if int(text) > LOCK_VERSION:
        raise _NewerFormat(
            f"it is in format {int(text)}, written by a newer neurodeck; this "
            f"one reads formats up to {LOCK_VERSION}"
        )
    return int(text)


def _time(text: str) -> int:
    """A modification time: whole seconds since the epoch, in the range a package can date."""
    if not text.isascii() or not text.isdigit() or not 0 <= int(text) <= MAX_TIME:
        raise ValueError(f"time {text[:30]!r} is not whole seconds since 1970 before 2108")
    return int(text)


def _read_occlusion_record(numbers: dict[str, int], key: str, written: str) -> None:
    if not written.isascii() or not written.isdigit():
        raise ValueError(f"occlusion {key!r} has a card number {written[:30]!r} that is not one")
    number = int(written)
    if key in numbers or number in numbers.values() or number < 1:
        raise ValueError(f"occlusion {key!r} or its card number {number} is repeated or invalid")
    numbers[key] = number


def check_time(value: int) -> bool:
    """Whether a clock value can be a modification time (see MAX_TIME)."""
    return 0 <= value <= MAX_TIME


def format_lock(lock: Lock) -> str:
    """The lock's text: a header, then note types and notes, one sorted line each."""
    return "".join(lock_lines(lock))


def lock_lines(lock: Lock) -> Iterator[str]:
    """The lock's text line by line, so that a large lock is never held twice in memory."""
    yield _HEADER
    yield f"lock\t{LOCK_VERSION}\t{lock.deck_id or ''}\n"
    if lock.deck_name is not None:
        yield f"deck\t{lock.deck_name}\n"
    for k, e in sorted(lock.notetypes.items()):
        yield f"notetype\t{k}\t{e.hash}\t{e.mod}\n"
    for name, digest in sorted(lock.media.items()):
        yield f"media\t{name}\t{digest}\n"
    yield from lock.notes.lines()
    for note_id in sorted(lock.occlusions):
        for key, number in sorted(lock.occlusions[note_id].items(), key=lambda kv: kv[1]):
            yield f"occlusion\t{note_id}\t{key}\t{number}\n"


def modified_time(
    before: Entry | None, content_hash: str, clock: int, images_changed: bool = False
) -> int:
    """An entry's modification time: kept while its hash is (and the images it shows are,
    see image_changed), else moved forward."""
    if before is None:
        return clock
    if before.hash == content_hash and not images_changed:
        return before.mod
    return max(clock, before.mod + 1)


def image_digest(file: io.BufferedIOBase) -> str:
    """What the lock records of an image's bytes (read from `file` in chunks): 16 hex
    digits, like a note's hash."""
    digest = hashlib.sha256()  # hashlib.file_digest is Python 3.11+; 3.10 is supported
    for chunk in iter(lambda: file.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()[:16]


def image_changed(old: Lock, name: str, digest: str) -> bool:
    """Whether the image packaged as `name` has other bytes than the old lock recorded. An
    image the old lock has no record of is not a change: a note that starts to show it
    changed its text, and a lock in a format before MEDIA_VERSION records no image."""
    return old.media.get(name, digest) != digest


def _names(names: Iterable[str]) -> str:
    listed = sorted(names)
    return ", ".join(listed[:5]) + (", ..." if len(listed) > 5 else "")


class LockUpdater:
    """Builds this build's lock entry by entry: unchanged entries keep their time.

    A changed entry gets `clock`, or one second past its old time if the clock is behind,
    so that Anki always sees the edit as newer. Every note is recorded as it comes, a
    repeated id too: `finish` keeps the first of each and names the repeats.
    """

    def __init__(self, old: Lock, clock: int, deck_name: str, deck_id: str | None = None) -> None:
        self.old = old
        self.clock = clock
        self.deck_name = deck_name
        self.deck_id = deck_id if deck_id is not None else old.deck_id
        self.notes = NoteTable()
        self.notetypes: dict[str, Entry] = {}
        self.occlusions: dict[str, dict[str, int]] = {}
        self.media: dict[str, str] = {}  # each packaged image's digest, by name
        self.added = self.changed = 0
        self._old_mods = array("q")  # per note as recorded; -1 for a new note
        self._where = array("Q")  # per note as recorded: the caller's packed location
        self._repeats: list[tuple[str, int, int]] | None = None
        self._removed: list[str] | None = None

    def note(self, note_id: str, content_hash: str, kind: str, subdeck: str, cards: str) -> int:
        """Record a note's current content; returns its modification time."""
        before = self.old.notes.get(note_id)
        mod = self._mod(before, content_hash)
        self.note_seen(
            note_id, content_hash, mod, kind, subdeck, cards, None if before is None else before.mod
        )
        return mod

    def note_seen(
        self,
        note_id: str,
        content_hash: str,
        mod: int,
        kind: str,
        subdeck: str,
        cards: str,
        old_mod: int | None,
        where: int = 0,
    ) -> None:
        """Record a note whose time was already worked out (by `modified_time`, in a worker
        process) from its old entry, which had `old_mod` (None for a new note). `where` is
        whatever the caller wants back for a repeated id (a packed location)."""
        if self._repeats is not None:
            raise RuntimeError("a note recorded after the lock was finished")
        self.notes.add(note_id, content_hash, mod, kind, subdeck, cards)
        self._old_mods.append(-1 if old_mod is None else old_mod)
        self._where.append(where)

    def notes_seen(
        self,
        ids: Sequence[str],
        hashes: Sequence[str],
        mods: Iterable[int],
        kinds: Iterable[str],
        subdecks: Iterable[str],
        cards: Iterable[str],
        old_mods: Iterable[int | None],
        wheres: Iterable[int],
    ) -> None:
        """As `note_seen`, for many notes at once, by column."""
        if self._repeats is not None:
            raise RuntimeError("a note recorded after the lock was finished")
        self.notes.extend(ids, hashes, mods, kinds, subdecks, cards)
        self._old_mods.extend([-1 if old_mod is None else old_mod for old_mod in old_mods])
        self._where.extend(wheres)

    def occlusion_numbers(self, note_id: str, numbers: Iterable[tuple[str, int]]) -> None:
        """Record a diagram's cloze number for each occlusion or group id (the first note
        with an id keeps it, as the lock does)."""
        self.occlusions.setdefault(note_id, dict(numbers))

    def finish(self) -> list[tuple[str, int, int]]:
        """Stop recording notes: keep the first note of each id, and return (id, where the
        first was, where the repeat is) for every repeat, in the order they came."""
        if self._repeats is None:
            mods = self.notes.mods()  # in the order recorded: drop_repeats sorts the table
            repeats = self.notes.drop_repeats()
            repeated = {at for _, _, at in repeats}
            for at, (old, mod) in enumerate(zip(self._old_mods, mods, strict=True)):
                if at in repeated:
                    continue
                if old == -1:
                    self.added += 1
                elif mod != old:
                    self.changed += 1
            self._repeats = [
                (note_id, self._where[first], self._where[at]) for note_id, first, at in repeats
            ]
        return self._repeats

    def removed(self) -> list[str]:
        """The old lock's notes that this build did not record, in id order."""
        if self._removed is None:
            self.finish()
            self._removed = self.old.notes.ids_not_in(self.notes)
        return self._removed

    def notetype(self, key: str, content_hash: str) -> int:
        """Record a note type's current fingerprint; returns its modification time."""
        mod = self._mod(self.old.notetypes.get(key), content_hash)
        self.notetypes[key] = Entry(content_hash, mod)
        return mod

    def _mod(self, before: Entry | None, content_hash: str) -> int:
        return modified_time(before, content_hash, self.clock)

    def lock(self) -> Lock:
        """The lock as recorded (which finishes it)."""
        self.finish()
        return Lock(
            self.notes,
            self.notetypes,
            self.deck_name,
            self.occlusions,
            self.deck_id,
            media=dict(sorted(self.media.items())),
        )

    def changes(self) -> list[str]:
        """Short phrases for what differs from the old lock (empty when nothing does)."""
        removed = len(self.removed())
        # A first build records the note types; only a later one can change them.
        types = {
            k
            for k, e in self.notetypes.items()
            if k in self.old.notetypes and e != self.old.notetypes[k]
        }
        types |= self.old.notetypes.keys() - self.notetypes.keys()
        if self.old.notetypes:
            types |= self.notetypes.keys() - self.old.notetypes.keys()
        parts = []
        for count, what in ((self.added, "added"), (self.changed, "changed"), (removed, "removed")):
            if count:
                parts.append(f"{count} note{'s' if count != 1 else ''} {what}")
        if types:
            parts.append(f"note types changed: {', '.join(sorted(types))}")
        if self.old.deck_name is not None and self.deck_name != self.old.deck_name:
            parts.append("deck name changed")
        # A new diagram is counted as an added note; here only released diagrams count.
        if any(
            dict(self.old.occlusions.get(k, {})) != v
            for k, v in self.occlusions.items()
            if k in self.old.notes
        ):
            parts.append("occlusion card numbers changed")
        if self.old.format >= MEDIA_VERSION:  # older locks record no image: see migration
            old, new = self.old.media, self.media
            for what, names in (
                ("changed", [n for n in new.keys() & old.keys() if new[n] != old[n]]),
                ("added", new.keys() - old.keys()),
                ("removed", old.keys() - new.keys()),
            ):
                if names:
                    parts.append(f"images {what}: {_names(names)}")
        return parts

    def migration(self) -> str | None:
        """How the lock's format changes (None when it does not). Not a change for --frozen:
        an old release's lock must still build it."""
        if 0 < self.old.format < LOCK_VERSION:
            told = f"lock format {self.old.format} rewritten as format {LOCK_VERSION}"
            if self.old.format < MEDIA_VERSION and self.media:
                # Nothing says what learners have of each image: from now on a changed one
                # moves its notes' times; this build moves none.
                told += " (recorded each image's digest; no note's time moved)"
            return told
        return None

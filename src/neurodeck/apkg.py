"""Write a package's rows into a collection database, and that into a reproducible .apkg."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import sqlite3
import struct
import tempfile
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from . import rows

# zlib level 1: the package is 3% larger than at level 3, and deflating it, the last step of
# a build with nothing beside it, takes a third less time.
_COMPRESS_LEVEL = 1
# Zip cannot store dates before 1980.
_EARLIEST_ZIP_TIME = 315532800


class CollectionWriter:
    """A collection.anki2 file, written note by note (rows.py says what goes in the rows).

    Notes are written as they are compiled, so memory stays flat however large the deck.
    A large deck is written in parts (one per fact set, possibly by another process) that
    `merge` then appends in curriculum order.
    """

    def __init__(self, path: Path, *, part: bool = False) -> None:
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None)
        # A scratch file: no journal and no fsync until we close it.
        self._conn.execute("PRAGMA journal_mode = OFF")
        self._conn.execute("PRAGMA synchronous = OFF")
        self._cursor = self._conn.cursor()
        if part:
            # A part is only read back by `merge`: the notes and cards tables are all it
            # needs, and rows go in faster without indexes.
            for sql in _part_tables():
                self._cursor.execute(sql)
        else:
            # With its indexes: keeping them up to date as parts are appended (mostly at their
            # ends) costs less than building them at `finish`, where nothing runs beside it.
            rows.create_collection(self._cursor)
        self._notes: list[rows.NoteRow] = []
        self._cards: list[rows.CardRow] = []

    def add(self, note: rows.NoteRow, cards: Iterable[rows.CardRow]) -> None:
        """Write one note and its cards (buffered: one execute per row costs more than
        SQLite's work on it)."""
        self._notes.append(note)
        self._cards.extend(cards)

    def close(self) -> None:
        """Write what `add` has buffered, and close the database."""
        self._flush()
        self._conn.close()

    def merge(self, part: Path, *, row_shift: int, due_shift: int) -> None:
        """Append a part's notes and cards, moving their row ids and due numbers along.

        A part numbers its notes from 1, not knowing how many notes come before it; the
        shifts make its rows what writing them here, in order, would have made.
        """
        self._flush()
        self._cursor.execute("ATTACH DATABASE ? AS part", (str(part),))
        try:
            self._cursor.execute("BEGIN")
            self._cursor.execute(
                "INSERT INTO notes SELECT id + ?1, guid, mid, mod, usn, tags, flds, sfld, csum,"
                " flags, data FROM part.notes ORDER BY id",
                (row_shift,),
            )
            self._cursor.execute(
                "INSERT INTO cards SELECT id + ?1, nid + ?1, did, ord, mod, usn, type, queue,"
                " due + ?2, ivl, factor, reps, lapses, left, odue, odid, flags, data"
                " FROM part.cards ORDER BY id",
                (row_shift, due_shift),
            )
            self._cursor.execute("COMMIT")
        finally:
            # An interrupt can leave the transaction open, and DETACH would then fail with
            # "database part is locked" instead of letting the interrupt through.
            with contextlib.suppress(sqlite3.Error):
                if self._conn.in_transaction:
                    self._cursor.execute("ROLLBACK")
                self._cursor.execute("DETACH DATABASE part")

    def finish(
        self, decks: Iterable[rows.DeckRecord], models: Iterable[rows.NoteTypeRecord]
    ) -> None:
        """Write the decks and note types, and close the database."""
        self._flush()
        self._cursor.execute("BEGIN")
        rows.write_decks_and_models(self._cursor, decks, list(models))
        self._cursor.execute("COMMIT")
        self._conn.close()

    def abandon(self) -> None:
        """Close without finishing (the caller removes the file)."""
        self._conn.close()

    def _flush(self) -> None:
        if self._notes:
            self._cursor.execute("BEGIN")
            self._cursor.executemany(rows.NOTE_INSERT, self._notes)
            self._cursor.executemany(rows.CARD_INSERT, self._cards)
            self._cursor.execute("COMMIT")
            self._notes, self._cards = [], []


@functools.cache
def _part_tables() -> tuple[str, ...]:
    """The CREATE TABLE statements of the notes and cards tables."""
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        rows.create_collection(conn.cursor())
        found = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table'"
            " AND name IN ('notes', 'cards') ORDER BY name"
        ).fetchall()
    return tuple(sql for (sql,) in found)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` only once it is fully written."""
    _replace_atomically(path, lambda out: out.write(data))


def write_lines_atomically(path: Path, lines: Iterable[str]) -> None:
    """Replace `path` with UTF-8 lines, written as they come, once all are written."""
    _replace_atomically(path, lambda out: out.writelines(line.encode("utf-8") for line in lines))


def write_apkg(collection: Path, media: Mapping[str, Path], path: Path, *, timestamp: int) -> None:
    """Zip a collection database and media into `path`, atomically and reproducibly.

    Entries are sorted, deflated, and dated `timestamp` rather than the clock, and the
    previous file is replaced only once the new one is complete.
    """
    _replace_atomically(path, apkg_writer(collection, media, timestamp=timestamp))


def apkg_writer(
    collection: Path, media: Mapping[str, Path], *, timestamp: int
) -> Callable[[IO[bytes]], None]:
    """What writes the package into an open file (for `stage`)."""
    names = sorted(media)
    index = json.dumps({str(i): name for i, name in enumerate(names)}).encode()
    entries: dict[str, Path | bytes] = {"collection.anki2": collection, "media": index}
    entries.update({str(i): media[name] for i, name in enumerate(names)})
    year, month, day, hour, minute, second = time.gmtime(max(timestamp, _EARLIEST_ZIP_TIME))[:6]
    dos_date = (year - 1980) << 9 | month << 5 | day
    dos_time = hour << 11 | minute << 5 | second // 2

    def write_zip(out: IO[bytes]) -> None:
        directory = []
        for name in sorted(entries):
            offset = out.tell()
            encoded = name.encode("ascii")
            out.write(_LOCAL_HEADER.pack(b"PK\x03\x04", *(0,) * 9, len(encoded), 0) + encoded)
            crc = size = compressed = 0
            for raw, deflated in _deflated(entries[name]):
                crc, size = zlib.crc32(raw, crc), size + len(raw)
                compressed += len(deflated)
                out.write(deflated)
            if max(size, compressed) > _ZIP32_LIMIT:
                raise RuntimeError("File size too large, try using force_zip64")
            # The header again, now that the CRC and sizes are known.
            fields = (dos_time, dos_date, crc, compressed, size, len(encoded))
            end = out.tell()
            out.seek(offset)
            out.write(_LOCAL_HEADER.pack(b"PK\x03\x04", 20, 0, 0, 8, *fields, 0))
            out.seek(end)
            directory.append(
                _CENTRAL_HEADER.pack(
                    b"PK\x01\x02", 20, 3, 20, 0, 0, 8, *fields, 0, 0, 0, 0, 0o644 << 16, offset
                )
                + encoded
            )
        start = out.tell()
        central = b"".join(directory)
        out.write(central)
        count = len(directory)
        out.write(_END_RECORD.pack(b"PK\x05\x06", 0, 0, count, count, len(central), start, 0))

    return write_zip


# The zip container, as APPNOTE.TXT (and Python's zipfile) writes it: every entry deflated,
# made on Unix (3) by version 2.0 (20), rw-r--r--, no extra fields, sizes known up front.
# Written here rather than with zipfile, which has no public way to take an entry's deflate
# stream from elsewhere; tests/test_apkg.py holds the bytes equal to zipfile's.
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_CENTRAL_HEADER = struct.Struct("<4s4B4HL2L5H2L")
_END_RECORD = struct.Struct("<4s4H2LH")
_ZIP32_LIMIT = (1 << 31) - 1


# Deflating a large collection is the last step of a build, with nothing else left to run
# beside it. zlib lets go of the GIL, so two threads deflate it in half the time, pigz-style:
# the file is cut into chunks, each deflated with the 32 KiB before it as its dictionary and
# ended on a byte boundary, so the pieces join into one deflate stream. The bytes depend on
# the chunk size only, never on how the threads were scheduled.
_CHUNK = 1 << 20
_WINDOW = 32 * 1024
_AHEAD = 4  # chunks deflating at once: memory stays a few MiB


def _deflated(source: Path | bytes) -> Iterator[tuple[bytes, bytes]]:
    """An entry's data chunk by chunk, each with its piece of one raw deflate stream (a file
    larger than a chunk is deflated on two threads)."""
    if isinstance(source, bytes) or source.stat().st_size <= _CHUNK:  # no threads to start
        chunk = source if isinstance(source, bytes) else source.read_bytes()
        yield chunk, _deflate(chunk, b"", True)
        return
    from concurrent.futures import Future, ThreadPoolExecutor

    with source.open("rb") as data, ThreadPoolExecutor(max_workers=2) as pool:
        pending: deque[tuple[bytes, Future[bytes]]] = deque()
        previous = b""
        chunk = data.read(_CHUNK)
        while True:
            following = data.read(_CHUNK)
            last = not following
            pending.append((chunk, pool.submit(_deflate, chunk, previous[-_WINDOW:], last)))
            while pending and (last or len(pending) >= _AHEAD):
                raw, deflated = pending.popleft()
                yield raw, deflated.result()
            if last:
                return
            previous, chunk = chunk, following


def _deflate(chunk: bytes, dictionary: bytes, last: bool) -> bytes:
    """One chunk as raw deflate data, continuing from the data in `dictionary`."""
    if dictionary:
        compressor = zlib.compressobj(
            _COMPRESS_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, zdict=dictionary
        )
    else:
        compressor = zlib.compressobj(_COMPRESS_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(chunk) + compressor.flush(
        zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH
    )


def _replace_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    # A temp file beside the target, then os.replace: a failed build never leaves a partial
    # file and never destroys the previous good one.
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_together([stage(path, write)])


TEMP_SUFFIX = ".tmp"


@dataclass
class Staged:
    """A new version of `path`, complete in `temp` (beside it), not yet in place.

    The temp file stays open and flock'ed until it is replaced or discarded: the lock tells
    a later build whether a temp file it finds was left by a killed build (see remove_stale).
    """

    path: Path
    temp: Path
    file: IO[bytes]


def stage(
    path: Path, write: Callable[[IO[bytes]], object], *, temp_dir: Path | None = None
) -> Staged:
    """Write the new content of `path` to a temp file (in `temp_dir`, on the same file
    system, or beside it) and flush it to disk; `path` itself is untouched."""
    # realpath: tempfile would drop `link/..` as text, a directory other than the OS finds.
    directory = os.path.realpath(path.parent if temp_dir is None else temp_dir)
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    out = os.fdopen(fd, "wb")
    staged = Staged(path, Path(temp), out)
    try:
        _hold(out)
        write(out)
        out.flush()
        os.fsync(out.fileno())
        os.fchmod(out.fileno(), 0o644)
    except BaseException:
        discard(staged)
        raise
    return staged


def discard(staged: Staged) -> None:
    """Remove a staged file that will not be used."""
    try:
        with contextlib.suppress(OSError):  # closing flushes, which fails on a full disk
            staged.file.close()
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged.temp)


def replace_together(staged: list[Staged]) -> None:
    """Put every staged file in place, in order: all of them, or (if one fails) none.

    Each target is first hard-linked to a backup beside it; if a later replace fails, the
    earlier targets are put back from their backups. SIGINT and SIGTERM wait until the
    replacing is over, so an interrupt cannot split it either.
    """
    done: list[tuple[Staged, Path | None]] = []
    try:
        with signals_deferred():
            try:
                for item in staged:
                    backup = _backup(item.path)
                    try:
                        os.replace(item.temp, item.path)
                    except BaseException:
                        if backup is not None:
                            os.unlink(backup)
                        raise
                    done.append((item, backup))
            except BaseException:
                for item, backup in reversed(done):
                    if backup is None:
                        os.unlink(item.path)
                    else:
                        os.replace(backup, item.path)
                done.clear()
                raise
    finally:
        for item in staged:
            discard(item)
        for _, backup in done:
            if backup is not None:
                with contextlib.suppress(OSError):
                    os.unlink(backup)


def _backup(path: Path) -> Path | None:
    """A hard link to `path`'s current file (None when there is none), to restore it from."""
    backup = path.with_name(f".{path.name}.{os.getpid()}.old{TEMP_SUFFIX}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(backup)
    try:
        os.link(path, backup, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError:  # a file system without hard links: copy it
        try:
            shutil.copy2(path, backup, follow_symlinks=False)
        except FileNotFoundError:
            return None
    return backup


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is over (in the main thread; elsewhere,
    Python cannot install handlers and the block runs as it is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {
        signum: signal.signal(signum, lambda number, _frame: caught.append(number))
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: installed outside Python, and left as it is
                signal.signal(signum, handler)
        if caught:
            signal.raise_signal(caught[0])


def _hold(file: IO[bytes]) -> None:
    """Mark a temp file as in use for as long as it is open (a no-op without flock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return
    fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def remove_stale(directory: Path, prefix: str) -> None:
    """Remove temp files and scratch directories named `prefix*` that a build killed
    before it could clean up left in `directory` (those still held by a running build stay).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return
    try:
        names = [n for n in os.listdir(directory) if n.startswith(prefix)]
    except OSError:
        return
    for name in names:
        path = directory / name
        if path.is_symlink():
            continue
        if path.is_dir():
            holder = path / SCRATCH_OWNER
        elif name.endswith(TEMP_SUFFIX):
            holder = path
        else:
            continue
        try:
            with open(holder, "rb") as file:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                if holder != path:
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
        except FileNotFoundError:
            if holder != path:  # killed before it could mark its scratch directory
                with contextlib.suppress(OSError):
                    if time.time() - path.stat().st_mtime > 3600:
                        shutil.rmtree(path)
        except OSError:
            continue  # held by a running build, or not ours to remove


SCRATCH_OWNER = ".owner"


@contextlib.contextmanager
def scratch_directory(parent: Path, prefix: str) -> Iterator[Path]:
    """A temp directory in `parent`, marked as in use until the block ends, then removed."""
    with (
        tempfile.TemporaryDirectory(prefix=prefix, dir=os.path.realpath(parent)) as scratch,
        open(Path(scratch) / SCRATCH_OWNER, "wb") as owner,
    ):
        _hold(owner)
        yield Path(scratch)

"""Write a genanki package as a reproducible .apkg, atomically."""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import genanki

# Zip cannot store dates before 1980.
_EARLIEST_ZIP_TIME = 315532800


def collection_bytes(package: genanki.Package, timestamp: int) -> bytes:
    """The package's collection.anki2 database as bytes, built in memory."""
    conn = sqlite3.connect(":memory:")
    try:
        # genanki draws row ids from id_gen only for notes without their own (ours all have).
        package.write_to_db(conn.cursor(), timestamp, iter(range(timestamp * 1000, 1 << 62)))
        conn.commit()
        if hasattr(conn, "serialize"):
            return bytes(conn.serialize())
        return _bytes_via_file(conn)  # Python 3.10 has no Connection.serialize
    finally:
        conn.close()


def _bytes_via_file(conn: sqlite3.Connection) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "collection.anki2"
        target = sqlite3.connect(path)
        try:
            conn.backup(target)
        finally:
            target.close()
        return path.read_bytes()


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` only once it is fully written."""
    _replace_atomically(path, lambda out: out.write(data))


def write_apkg(package: genanki.Package, media: Mapping[str, bytes], path: Path, *,
               timestamp: int) -> None:
    """Write `path` atomically; same package, media and timestamp give the same bytes.

    Entries are sorted and carry `timestamp` as their date rather than the clock, and the
    previous file is replaced only once the new one is complete.
    """
    names = sorted(media)
    entries = {"collection.anki2": collection_bytes(package, timestamp)}
    entries["media"] = json.dumps({str(i): name for i, name in enumerate(names)}).encode()
    entries.update({str(i): media[name] for i, name in enumerate(names)})
    date = time.gmtime(max(timestamp, _EARLIEST_ZIP_TIME))[:6]

    def write_zip(out: IO[bytes]) -> None:
        with zipfile.ZipFile(out, "w") as archive:
            for name in sorted(entries):
                info = zipfile.ZipInfo(name, date_time=date)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                info.create_system = 3  # the same on every platform
                archive.writestr(info, entries[name], compresslevel=6)

    _replace_atomically(path, write_zip)


def _replace_atomically(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    # A temp file beside the target, then os.replace: a failed build never leaves a partial
    # file and never destroys the previous good one.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise

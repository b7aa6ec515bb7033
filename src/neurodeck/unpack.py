"""Take the collection database out of a .apkg that may be hostile, without trusting it.

A package handed to `diff`, `release-check` or `verify` may come from anywhere (a download,
an old release, a learner's export). Zip bombs (deflate or zstd), entry names that climb out
of the target folder, truncated or corrupt archives and missing databases all become one
located NeurodeckError.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Protocol

from .errors import Location, NeurodeckError, Problem, display_path
from .lock import image_digest

# What we unpack (the collection, or media of a deck we built): generous for flashcards (a
# 10,000-note collection is ~10 MiB), small enough that a crafted archive cannot fill the disk.
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
# Media of other packages is never unpacked, but an archive that claims more is not a deck.
MAX_ARCHIVE_BYTES = 4 * 1024 * 1024 * 1024
MAX_ENTRIES = 100_000
# An Anki collection deflates about 6:1; zip bombs reach 1000:1. Tiny entries are exempt
# because their ratio says nothing (a 2-byte media list can "compress" 1:50).
MAX_RATIO = 100
RATIO_EXEMPT_BYTES = 1024 * 1024

# Newest first, as Anki reads them. Anki 2.1.50+ exports collection.anki21b (schema 18,
# zstd-compressed) beside a legacy collection.anki2 that holds only a "please update Anki"
# note; older exports have collection.anki21 (schema 11) or only collection.anki2.
_COLLECTION_NAMES = ("collection.anki21b", "collection.anki21", "collection.anki2")
_MODERN_COLLECTION = _COLLECTION_NAMES[0]
# In such a package every entry but these two is zstd-compressed (the media list included).
_NEVER_ZSTD = ("meta", "collection.anki2")
_CHUNK = 1024 * 1024


def extract_collection(apkg: Path, into: Path) -> Path:
    """Check the archive, then copy its collection database into the directory `into`."""
    with _checked_archive(apkg) as (where, archive):
        info = _collection_entry(where, {i.filename: i for i in archive.infolist()})
        target = into / "collection.anki2"
        with target.open("wb") as out:
            _copy_capped(
                where,
                archive,
                info,
                out,
                MAX_UNPACKED_BYTES,
                zstd=info.filename == _MODERN_COLLECTION,
            )
        return target


def check_package(apkg: Path) -> None:
    """Unpack every entry to nowhere, as Anki's importer would unpack it, within our limits.

    `verify` hands the package to Anki's importer, which unpacks the collection and every
    media file into a temporary folder; this refuses first what would fill the disk.
    """
    with _checked_archive(apkg) as (where, archive):
        infos = archive.infolist()
        entries = {i.filename: i for i in infos}
        _collection_entry(where, entries)
        modern = _MODERN_COLLECTION in entries
        budget = MAX_ARCHIVE_BYTES
        for info in infos:
            zstd = modern and info.filename not in _NEVER_ZSTD
            limit = budget
            if info.filename.startswith("collection"):
                limit = min(budget, MAX_UNPACKED_BYTES)
            elif zstd:  # a media file: the zip ratio rule, applied to what zstd unpacks
                limit = min(budget, max(RATIO_EXEMPT_BYTES, MAX_RATIO * info.file_size))
            budget -= _copy_capped(where, archive, info, _Discard(), limit, zstd=zstd)


class _Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


class _Discard:
    """A sink that only counts."""

    def write(self, data: bytes, /) -> int:
        return len(data)


def read_media(apkg: Path, wanted: Callable[[str], bool] | None = None) -> dict[str, bytes]:
    """The package's media files by name, only those `wanted` accepts when it is given.

    A modern export (collection.anki21b) lists its media in a compressed format that is not
    read here: it gives no media.
    """
    with _checked_archive(apkg) as (where, archive):
        entries = {i.filename: i for i in archive.infolist()}
        media, budget = {}, MAX_UNPACKED_BYTES
        for name, entry in _media_entries(where, archive, entries).items():
            if wanted is not None and not wanted(name):
                continue
            data = io.BytesIO()
            budget -= _copy_capped(where, archive, entry, data, budget)
            media[name] = data.getvalue()
        return media


def media_digests(apkg: Path) -> dict[str, str]:
    """Each media file's digest as a lock records it (lock.image_digest), by name: read in
    chunks, never held whole (the archive's checks bound what it unpacks)."""
    with _checked_archive(apkg) as (where, archive):
        entries = {i.filename: i for i in archive.infolist()}
        digests = {}
        for name, entry in _media_entries(where, archive, entries).items():
            with archive.open(entry) as file:
                digests[name] = image_digest(file)  # type: ignore[arg-type]
        return digests


def _media_entries(
    where: Location, archive: zipfile.ZipFile, entries: dict[str, zipfile.ZipInfo]
) -> dict[str, zipfile.ZipInfo]:
    """The media files' entries by name, from the package's media list (none in a modern
    export: see read_media)."""
    if "media" not in entries or _MODERN_COLLECTION in entries:
        return {}
    listing = io.BytesIO()
    _copy_capped(where, archive, entries["media"], listing, _CHUNK)
    try:
        names = json.loads(listing.getvalue())
    except ValueError as err:
        raise _error(where, f"has a damaged media list: {err}") from None
    if not isinstance(names, dict):
        raise _error(where, "has a damaged media list: not a JSON object")
    found = {}
    for number, name in names.items():
        if str(number) not in entries or not isinstance(name, str) or "/" in name:
            raise _error(where, f"has a damaged media list entry {number!r}: {name!r}")
        found[name] = entries[str(number)]
    return found


@contextmanager
def _checked_archive(apkg: Path) -> Iterator[tuple[Location, zipfile.ZipFile]]:
    where = Location(display_path(apkg))
    try:
        with zipfile.ZipFile(apkg) as archive:
            _check_entries(where, archive.infolist())
            yield where, archive
    except zipfile.BadZipFile as err:
        raise _error(
            where,
            f"is not an Anki package: not a readable zip archive ({err})",
            "pass a .apkg exported by Anki or built by `neurodeck build`",
        ) from None
    # zipfile raises NotImplementedError for compression methods it cannot read (and
    # RuntimeError for encrypted entries, which _check_entries refuses first): both mean a
    # package we cannot use.
    except (zlib.error, EOFError, NotImplementedError, RuntimeError) as err:
        raise _error(
            where, f"is a damaged Anki package: {err}", "download or build the package again"
        ) from None
    except OSError as err:
        raise _error(where, f"cannot read the package: {err.strerror or err}") from None


def _check_entries(where: Location, infos: list[zipfile.ZipInfo]) -> None:
    if len(infos) > MAX_ENTRIES:
        raise _error(where, f"has {len(infos)} entries (more than {MAX_ENTRIES}); refusing it")
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        if not _is_safe_name(name):
            raise _error(
                where,
                f"has an unsafe entry name {name!r} (it points outside the " "package)",
                "Anki never writes such names: do not use this file",
            )
        if name in seen:
            raise _error(
                where,
                f"has two entries named {name!r}",
                "Anki never writes such archives: do not use this file",
            )
        seen.add(name)
        if info.flag_bits & 1:  # zipfile's own error would show the entry's repr
            raise _error(
                where,
                f"has a password-protected entry {name!r}",
                "Anki never encrypts packages: do not use this file",
            )
    declared = sum(i.file_size for i in infos)
    if declared > MAX_ARCHIVE_BYTES:
        raise _error(
            where,
            f"claims {declared} bytes uncompressed (more than "
            f"{MAX_ARCHIVE_BYTES}); refusing a possible zip bomb",
        )
    compressed = max(1, sum(i.compress_size for i in infos))
    if declared > RATIO_EXEMPT_BYTES and declared / compressed > MAX_RATIO:
        raise _error(
            where, f"expands more than {MAX_RATIO}:1 when unpacked; refusing a " "possible zip bomb"
        )


def _is_safe_name(name: str) -> bool:
    if not name or "\\" in name or "\x00" in name or name.startswith("/"):
        return False
    if len(name) > 1 and name[1] == ":":  # a Windows drive such as C:
        return False
    return ".." not in PurePosixPath(name).parts


def _collection_entry(where: Location, entries: dict[str, zipfile.ZipInfo]) -> zipfile.ZipInfo:
    for name in _COLLECTION_NAMES:
        if name in entries:
            return entries[name]
    raise _error(
        where,
        "has no collection.anki2: it is not an Anki deck package",
        "pass a .apkg exported by Anki or built by `neurodeck build`",
    )


def _copy_capped(
    where: Location,
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    out: _Sink,
    limit: int,
    *,
    zstd: bool = False,
) -> int:
    """Copy one entry, at most `limit` bytes, unpacking zstd as Anki does; returns the bytes
    copied."""
    if zstd:
        return _unzstd_capped(where, archive, info, out, limit)
    if info.file_size > limit:
        raise _error(
            where,
            f"has a {info.file_size}-byte entry {info.filename!r} (more than "
            f"{limit}); refusing a possible zip bomb",
        )
    if info.file_size > RATIO_EXEMPT_BYTES and info.file_size > MAX_RATIO * info.compress_size:
        raise _error(
            where,
            f"has an entry {info.filename!r} that expands more than "
            f"{MAX_RATIO}:1; refusing a possible zip bomb",
        )
    # Trust neither the declared size nor the ratio alone: count what comes out.
    written = 0
    with archive.open(info) as source:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > info.file_size:
                raise _error(
                    where,
                    f"has an entry {info.filename!r} larger than it declares; "
                    "refusing a possible zip bomb",
                )
            out.write(chunk)
    return written


def _unzstd_capped(
    where: Location, archive: zipfile.ZipFile, info: zipfile.ZipInfo, out: _Sink, limit: int
) -> int:
    # Anki 2.1.50+ compresses the collection and each media file with zstd inside a stored
    # zip entry. The zip's own sizes say nothing about what that expands to, so count.
    try:
        import zstandard
    except ImportError:  # pragma: no cover - a core dependency
        raise _error(
            where,
            f"entry {info.filename!r} is zstd-compressed, and the `zstandard` "
            "package is not installed",
            "install it with: pip install zstandard",
        ) from None
    written = 0
    try:
        with (
            archive.open(info) as raw,
            zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True) as source,
        ):
            while chunk := source.read(_CHUNK):
                written += len(chunk)
                if written > limit:
                    raise _error(
                        where,
                        f"has an entry {info.filename!r} that unpacks to more "
                        f"than {limit} bytes; refusing a possible zip bomb",
                    )
                out.write(chunk)
    except zstandard.ZstdError as err:
        raise _error(
            where,
            f"is a damaged Anki package: entry {info.filename!r}: {err}",
            "download or export the package again",
        ) from None
    return written


def _error(where: Location, message: str, hint: str | None = None) -> NeurodeckError:
    return NeurodeckError([Problem(where, message, hint=hint)])

"""What Anki gets from one side of a release: notes, note types and decks as a package holds them.

A side is a deck directory, compiled in memory into what `neurodeck build` would package, or a
built .apkg, read as untrusted input. Both become the same Snapshot, so diff, release-check and
the exports see what Anki imports, not what the YAML says (tests hold the two readings equal).
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar, cast

from . import ids, pipeline, schema18
from . import lock as lockfile
from .anki_rules import static_media
from .compile import PackageParts
from .errors import Location, NeurodeckError, Problem, display_path
from .markup import replace_image_sources
from .model import NoteKind
from .notetypes import NOTE_TYPES
from .unpack import extract_collection, media_digests, read_media

# Field and template ids are the same in every neurodeck deck (ids.py), so they name the
# neurodeck key of a field or note type even in a package whose deck id we do not know.
_FIELD_KEYS = {ids.field_id(nt.key, key): key for nt in NOTE_TYPES.values() for key, _ in nt.fields}
_NOTETYPE_KEYS = {
    frozenset(ids.template_id(nt.key, t[0]) for t in nt.templates): nt.key
    for nt in NOTE_TYPES.values()
}
# compile.deck_description ends the root deck's description with the release version.
_VERSION_RE = re.compile(r"<p><small>Version (.*?)</small></p>\s*\Z", re.DOTALL)

T = TypeVar("T")


@dataclass(frozen=True)
class Field:
    """A note type's field; `key` is neurodeck's key (front, text, …) or the lower-cased name."""

    id: int | None
    name: str
    key: str


@dataclass(frozen=True)
class Template:
    """A card template: Anki's front (qfmt) and back (afmt) HTML."""

    id: int | None
    name: str
    front: str
    back: str


@dataclass(frozen=True)
class NoteType:
    """A note type as the package defines it; `key` is basic/reversed/cloze when recognised."""

    id: int
    name: str
    key: str
    is_cloze: bool
    fields: tuple[Field, ...]
    templates: tuple[Template, ...]
    css: str
    mod: int


@dataclass(frozen=True)
class PackagedNote:
    """A note as the package holds it. `note_id` and `loc` are known for deck directories only."""

    guid: str
    notetype_id: int
    fields: tuple[str, ...]  # in the note type's field order
    tags: tuple[str, ...]
    mod: int
    deck: str  # the full deck name of its cards ("Root::Sub")
    ordinals: tuple[int, ...]  # its cards: template number, or cloze number - 1
    note_id: str | None = None
    loc: Location | None = None


@dataclass(frozen=True)
class Snapshot:
    """One side of a release, as Anki would import it."""

    source: str  # the deck directory or package, as the user named it
    deck_name: str
    version: str | None
    notetypes: Mapping[int, NoteType]
    notes: tuple[PackagedNote, ...]  # curriculum order
    deck_slug: str | None = None  # deck.yaml `id`, known for deck directories only
    media: Mapping[str, bytes] = field(default_factory=dict)
    # Every media file's digest (lock.image_digest) by name: a note that shows an image
    # whose bytes changed under the same name is an updated note.
    media_digests: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def by_guid(self) -> dict[str, PackagedNote]:
        """Notes by GUID, the identity Anki matches on."""
        return {note.guid: note for note in self.notes}

    def notetype_of(self, note: PackagedNote) -> NoteType:
        """The note type a note belongs to."""
        return self.notetypes[note.notetype_id]

    def fields_of(self, note: PackagedNote) -> dict[str, str]:
        """A note's fields by key (front, back, text, extra, source, mine)."""
        notetype = self.notetype_of(note)
        return {f.key: value for f, value in zip(notetype.fields, note.fields, strict=True)}

    def subdeck_of(self, note: PackagedNote) -> str:
        """The note's deck below the root deck ("" for the root itself)."""
        return note.deck.partition("::")[2] if "::" in note.deck else ""


def read_side(path: Path, *, clock: int) -> Snapshot:
    """A deck directory (compiled in memory) or a built .apkg; nothing is written beside them."""
    if path.is_dir():
        return compile_snapshot(path, clock=clock)
    if path.is_file():
        # Of the package's media, only what Anki's import rules look at (anki_rules.py).
        return replace(
            read_apkg(path), media=read_media(path, static_media), media_digests=media_digests(path)
        )
    raise NeurodeckError(
        [
            Problem(
                Location(display_path(path)),
                "no such deck directory or .apkg file",
                hint="pass a directory holding deck.yaml, or a built .apkg",
            )
        ]
    )


def compile_snapshot(deck_dir: Path, *, clock: int) -> Snapshot:
    """A deck directory as `neurodeck build` at `clock` would package it, compiled in memory:
    nothing is written, and the lock beside the cards is read, never refreshed."""
    compiled = pipeline.check(deck_dir, clock=clock, keep="package")
    with pipeline.no_gc():
        return from_compiled(compiled, display_path(deck_dir))


def from_compiled(compiled: pipeline.CompiledDeck, source: str) -> Snapshot:
    """What a package built from `compiled` would hold, read from the compiled deck itself
    (kept: "package")."""
    notes = _packaged(compiled.package_notes, compiled.package, compiled.media_names)
    return replace(_compiled_header(compiled, source, len(notes)), notes=tuple(notes))


def stream_prepared(
    deck_dir: Path,
    *,
    clock: int,
    prepare: Callable[[Snapshot, list[PackagedNote]], T],
    on_prepared: Callable[[T], None],
    media: Callable[[str], bool] | None = None,
    old_lock: lockfile.Lock | None = None,
) -> tuple[Snapshot, int]:
    """compile_snapshot without keeping the notes: `prepare` runs on each fact set's notes
    (as the package holds them) in the worker process that compiled them, so a command's
    work per note runs on every core, and `on_prepared` takes each result in curriculum
    order. Raises when the deck has errors (after the notes went by); returns the snapshot
    without notes, with only the media `media` accepts, and how many notes there were.
    `old_lock`: the deck's lock, when the caller read it already."""
    source = display_path(deck_dir)
    count = 0
    headers: dict[int, Snapshot] = {}  # made once in each process, not once per fact set

    def in_worker(
        notes: list[pipeline.PackageNote], package: PackageParts, names: Mapping[str, str]
    ) -> tuple[int, T]:
        header = headers.get(id(package))
        if header is None:
            header = headers[id(package)] = _streamed_header(source, package)
        return len(notes), prepare(header, _packaged(notes, package, names))

    def take(result: object) -> None:
        nonlocal count
        notes, prepared = cast("tuple[int, T]", result)
        count += notes
        on_prepared(prepared)

    compiled = pipeline.check(
        deck_dir,
        clock=clock,
        keep="counts",
        old_lock=old_lock,
        prepare=in_worker,
        on_prepared=take,
    )
    return _compiled_header(compiled, source, count, media), count


def _streamed_header(source: str, package: PackageParts) -> Snapshot:
    """The side's header while its notes stream: every note type the deck may use."""
    deck = package.deck
    notetypes = _notetypes(package, package.models)
    return Snapshot(source, deck.name, deck.version or None, notetypes, (), deck.id)


def _compiled_header(
    compiled: pipeline.CompiledDeck,
    source: str,
    count: int,
    media: Callable[[str], bool] | None = None,
) -> Snapshot:
    deck = compiled.deck
    return Snapshot(
        source,
        deck.name if count else "",
        deck.version or None,
        _notetypes(compiled.package, compiled.kinds),
        (),
        deck_slug=deck.id,
        media={
            name: path.read_bytes()
            for name, path in sorted(compiled.media.items())
            if media is None or media(name)
        },
        media_digests=compiled.lock.media,
    )


def _notetypes(package: PackageParts, kinds: Iterable[NoteKind]) -> dict[int, NoteType]:
    models = [package.models[kind] for kind in kinds]
    return {model.model_id: _notetype(model.model_id, model.to_json(0)) for model in models}


def _packaged(
    notes: Iterable[pipeline.PackageNote], package: PackageParts, names: Mapping[str, str]
) -> list[PackagedNote]:
    """Notes as the package holds them: images under their names in the package, cards in
    their full deck names."""
    notetype_ids = {str(kind): model.model_id for kind, model in package.models.items()}
    packaged = []
    for note in notes:
        fields = note.fields
        if note.images:
            fields = tuple(replace_image_sources(value, names) for value in fields)
        packaged.append(
            PackagedNote(
                guid=note.guid,
                notetype_id=notetype_ids[note.kind],
                fields=fields,
                tags=note.tags,
                mod=note.mod,
                deck=package.deck_for(note.subdeck).name,
                ordinals=note.ordinals,
                note_id=note.id,
                loc=note.loc,
            )
        )
    return packaged


def read_apkg(path: Path, *, source: str | None = None) -> Snapshot:
    """Read a built package, treating it as untrusted input."""
    with tempfile.TemporaryDirectory(prefix="neurodeck-") as tmp:
        db = extract_collection(path, Path(tmp))
        return read_collection(db, source or display_path(path))


# Reading a real collection of any size takes seconds; a crafted one is cut off here.
MAX_READ_SECONDS = 60
# What a collection must hold to be read: the tables Anki's schema 11 (all note types and
# decks as JSON in `col`) or schema 18 (rows with protobuf blobs) defines for them.
_LEGACY_TABLES = ("col", "notes", "cards")
_SCHEMA18_TABLES = (*_LEGACY_TABLES, "notetypes", "fields", "templates", "decks")


def read_collection(db: Path, source: str) -> Snapshot:
    """Read a collection database (opened read-only, its work bounded) into a Snapshot."""
    with PackageReader(db, source) as reader:
        header, notes = reader.header(), reader.notes()
        return replace(header, notes=tuple(notes))


@contextmanager
def open_package(path: Path, *, source: str | None = None) -> Iterator[PackageReader]:
    """A built package, open to read its notes one at a time (treated as untrusted input)."""
    with tempfile.TemporaryDirectory(prefix="neurodeck-") as tmp:
        db = extract_collection(path, Path(tmp))
        with PackageReader(db, source or display_path(path)) as reader:
            yield reader


# A note's parts, as PackageReader.records reads them: row, curriculum place, GUID, note
# type, fields, tags, modification time, deck, card ordinals.
PackagedRecord = tuple[int, int, str, "NoteType", list[str], list[str], int, str, tuple[int, ...]]


def _note(record: PackagedRecord) -> PackagedNote:
    _, _, guid, notetype, fields, tags, mod, deck, ordinals = record
    return PackagedNote(guid, notetype.id, tuple(fields), tuple(tags), mod, deck, ordinals)


class PackageReader:
    """A collection database opened read-only, its notes read on demand rather than held
    (what diff and release-check compare a large release with). Its work is bounded and its
    failures are one located problem: a crafted file never ends in a traceback or runs for
    ever."""

    def __init__(self, db: Path, source: str) -> None:
        self.db, self.source = db, source
        self._deadline = time.monotonic() + MAX_READ_SECONDS
        with self._reading():
            self._conn = _connect_read_only(db)
        try:
            self._read_header()
        except BaseException:
            self._conn.close()
            raise

    def _read_header(self) -> None:
        with self._reading():
            # A query of a crafted file could run for ever or spill into temporary files:
            # keep SQLite's scratch in memory and stop it at the deadline.
            self._conn.execute("pragma temp_store = memory")
            self._conn.set_progress_handler(lambda: time.monotonic() > self._deadline, 10_000)
            tables = _checked_tables(self._conn)
            if "notetypes" in tables:
                models, decks = schema18.read_models_and_decks(self._conn)
            else:
                header = self._conn.execute("select models, decks from col").fetchone()
                if header is None:
                    raise _Damaged("its col table is empty")
                models, decks = (
                    _json_object(text, what)
                    for text, what in zip(header, ("note types", "decks"), strict=True)
                )
            self.notetypes = {int(mid): _notetype(int(mid), m) for mid, m in models.items()}
            self._decks = decks
            self._deck_names = {int(did): str(d["name"]) for did, d in decks.items()}
            self._first_deck: str | None = None

    def __enter__(self) -> PackageReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.close()

    def header(self, first_deck: str | None = None) -> Snapshot:
        """Everything but the notes. The first note's deck names the root deck: given, or
        known once `records` read every note (else read here)."""
        if first_deck is None:
            if self._first_deck is None:
                for _ in self.records():
                    pass
            first_deck = self._first_deck
        assert first_deck is not None
        root = first_deck.split("::")[0]
        with self._reading():
            description = next(
                (str(d.get("desc", "")) for d in self._decks.values() if d["name"] == root), ""
            )
        version = _VERSION_RE.search(description)
        return Snapshot(
            self.source,
            root,
            html.unescape(version.group(1)) if version else None,
            self.notetypes,
            (),
        )

    def notes(self) -> list[PackagedNote]:
        """Every note, in curriculum order: the order of their first cards in the new-card
        queue."""
        return [_note(record) for record in sorted(self.records(), key=lambda r: (r[1], r[0]))]

    def fetch(self, rows: Collection[int]) -> dict[int, PackagedNote]:
        """The notes of these rows (as `records` numbered them)."""
        return {record[0]: _note(record) for record in self.records(rows)} if rows else {}

    def count(self) -> int:
        """How many notes the package holds."""
        with self._reading():
            return int(self._conn.execute("select count(*) from notes").fetchone()[0])

    def records(self, wanted: Collection[int] | None = None) -> Iterator[PackagedRecord]:
        """Every note (or the `wanted` rows) as the parts a PackagedNote is made of, rows
        numbered from 0 in the package's own order; notes without cards come last. Plain
        tuples: a large package's notes are digested without an object per note."""
        first: PackagedRecord | None = None
        notes, skip = "from notes order by id", 0
        if isinstance(wanted, range) and wanted.step == 1:  # SQLite skips the rows before
            notes, skip = f"{notes} limit {len(wanted)} offset {wanted.start}", wanted.start
        with self._reading():
            # The notes query first: a crafted file's broken notes table is reported before
            # its cards are read.
            note_rows = self._conn.execute(f"select guid, mid, mod, tags, flds {notes}")
            guids = None  # of a range of rows, only the cards of their GUIDs are kept
            if isinstance(wanted, range) and wanted.step == 1:
                guids = {str(guid) for (guid,) in self._conn.execute(f"select guid {notes}")}
            cards, last = self._cards(guids)  # notes without cards come after every other
            notetypes, deck_names = self.notetypes, self._deck_names
            for row, (guid, mid, mod, tags, flds) in enumerate(note_rows, skip):
                if wanted is not None and row not in wanted:
                    continue
                notetype = notetypes.get(int(mid))
                if notetype is None:
                    raise _Damaged(f"note {guid} has an unknown note type {mid}")
                # Fit each note to its note type's field count: a sloppy package is compared,
                # not refused.
                width = len(notetype.fields)
                fields = str(flds).split("\x1f")
                if len(fields) != width:
                    fields = (fields + [""] * width)[:width]
                guid = str(guid)
                place, card, ordinals = cards.get(guid, (last, None, ()))
                deck = deck_names.get(card[1], "") if card else ""
                record = (
                    row,
                    place,
                    guid,
                    notetype,
                    fields,
                    str(tags).split(),
                    int(mod),
                    deck,
                    ordinals,
                )
                if first is None or place < first[1]:
                    first = record
                yield record
        if wanted is None:
            self._first_deck = first[7] if first else ""

    def _cards(
        self, guids: set[str] | None = None
    ) -> tuple[dict[str, tuple[int, tuple[int, int], tuple[int, ...]]], int]:
        """The cards of each GUID (of `guids` only, when given), as Anki's importer pools
        them: the place of its first card in the new-card queue (among all cards, so that
        places from different rows compare), its smallest (ordinal, deck id) (the note's
        deck), and its ordinals; and the number of cards. A few shared objects per note,
        not some per card."""
        cards: dict[str, tuple[int, tuple[int, int], tuple[int, ...]]] = {}
        shared: dict[object, Any] = {}  # equal small tuples, stored once
        rows = self._conn.execute(
            "select n.guid, c.did, c.ord from cards c join notes n "
            "on n.id = c.nid order by c.due, c.ord, c.id"
        )
        place = 0
        for place, (guid, did, ordinal) in enumerate(rows, 1):
            key = str(guid)
            if guids is not None and key not in guids:
                continue
            card = (int(ordinal), int(did))
            card = shared.setdefault(card, card)
            own = cards.get(key)
            if own is None:
                ordinals: tuple[int, ...] = (card[0],)
                cards[key] = (place, card, shared.setdefault(ordinals, ordinals))
            elif card[0] not in own[2] or card < own[1]:
                ordinals = tuple(sorted({*own[2], card[0]}))
                cards[key] = (own[0], min(own[1], card), shared.setdefault(ordinals, ordinals))
        return cards, place + 1

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """Each read gets MAX_READ_SECONDS; whatever goes wrong is one located problem."""
        self._deadline = time.monotonic() + MAX_READ_SECONDS
        try:
            yield
            return
        except sqlite3.Error as err:
            reason = str(err)
            if reason == "interrupted" and time.monotonic() <= self._deadline:
                # Ctrl-C (or SIGTERM: the CLI tells them apart) while SQLite ran the
                # progress handler, which swallowed it.
                raise KeyboardInterrupt from None
            if time.monotonic() > self._deadline:
                reason = (
                    f"reading it took more than {MAX_READ_SECONDS} seconds, far longer than "
                    "any real collection takes"
                )
        except (_Damaged, schema18.SchemaError) as err:
            reason = str(err)
        except (
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
            OverflowError,
            RecursionError,
        ) as err:
            reason = f"damaged note type, deck or note data ({type(err).__name__}: {err})"
        raise NeurodeckError(
            [
                Problem(
                    Location(self.source),
                    f"is not a readable Anki collection: {reason}",
                    hint="pass a .apkg exported by Anki or built by `neurodeck build`",
                )
            ]
        )


def refuse_active_sql(db: Path, source: str) -> None:
    """Refuse a collection holding SQL that would run when it is read (views, triggers,
    virtual tables, computed columns), before another program such as Anki reads it.

    Anything else wrong with the file is left to that reader to report.
    """
    try:
        conn = _connect_read_only(db)
        try:
            _refuse_active_sql(conn)
        finally:
            conn.close()
    except sqlite3.Error:
        return
    except _Damaged as err:
        raise NeurodeckError(
            [
                Problem(
                    Location(source),
                    f"is not a readable Anki collection: " f"{err}",
                    hint="do not import this file into Anki",
                )
            ],
        ) from None


def _connect_read_only(db: Path) -> sqlite3.Connection:
    # Our own unpacked copy, which nothing else changes: `immutable` reads it without locks
    # and without the -wal and -shm files that a WAL-mode database would otherwise get.
    return sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro&immutable=1", uri=True)


def _checked_tables(conn: sqlite3.Connection) -> set[str]:
    """The collection's tables, when it holds what Anki writes and nothing that runs code."""
    tables = _refuse_active_sql(conn)
    needed = _SCHEMA18_TABLES if "notetypes" in tables else _LEGACY_TABLES
    for table in needed:
        if table not in tables:
            raise _Damaged(f"it has no {table} table")
    return tables


def _refuse_active_sql(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("select type, name, sql from sqlite_master").fetchall()
    for kind, name, sql in rows:
        # A view or trigger named like Anki's tables would run the crafter's SQL on our reads.
        if kind in ("view", "trigger"):
            raise _Damaged(f"it defines a {kind} {name!r}, which Anki never writes")
        if kind == "table" and str(sql or "").lstrip().upper().startswith("CREATE VIRTUAL"):
            raise _Damaged(f"{name!r} is a virtual table, which Anki never writes")
    tables = {str(name) for kind, name, _ in rows if kind == "table"}
    for table in sorted(tables):
        for column in conn.execute("select name, hidden from pragma_table_xinfo(?)", (table,)):
            if column[1] in (2, 3):  # a generated column is computed on every read
                raise _Damaged(
                    f"its {table} table has a computed column {column[0]!r}, "
                    "which Anki never writes"
                )
    return tables


class _Damaged(Exception):
    """A collection whose structure is not what Anki writes."""


def _json_object(text: object, what: str) -> dict[str, Any]:
    try:
        value = json.loads(str(text), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as err:
        raise _Damaged(f"its {what} are not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise _Damaged(f"its {what} are not a JSON object")
    return value


def _refuse_constant(name: str) -> object:
    # Python's json reads NaN and Infinity, which JSON does not have and Anki never writes.
    raise ValueError(f"{name} is not a JSON number")


def _notetype(mid: int, model: dict[str, Any]) -> NoteType:
    fields = tuple(
        Field(f.get("id"), str(f["name"]), _FIELD_KEYS.get(f.get("id"), str(f["name"]).lower()))
        for f in sorted(model["flds"], key=lambda f: int(f["ord"]))
    )
    templates = tuple(
        Template(t.get("id"), str(t["name"]), str(t["qfmt"]), str(t["afmt"]))
        for t in sorted(model["tmpls"], key=lambda t: int(t["ord"]))
    )
    template_ids = frozenset(t.id for t in templates if t.id is not None)
    key = _NOTETYPE_KEYS.get(template_ids, str(model["name"]))
    return NoteType(
        mid,
        str(model["name"]),
        key,
        int(model.get("type", 0)) == 1,
        fields,
        templates,
        str(model.get("css", "")),
        int(model.get("mod", 0)),
    )

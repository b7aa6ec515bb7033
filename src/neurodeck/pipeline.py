"""load → validate → compile, in one pass, then write: every command runs on that pass.

The pass turns a deck directory and its old lock into a CompiledDeck: the notes, every
problem, and the new lock as a value. `check` stops there; `build` writes the package and
the lock from it; export, diff and release-check read it (snapshot.py).

A deck is processed file by file: each fact set is parsed, checked, compiled and (for a
build) written as rows of its own small collection, in worker processes when the deck is
large. The main process checks what spans files (duplicate ids, the lock, media) and appends
each file's rows to the package in curriculum order. Memory stays flat however many notes
there are, and the output does not depend on how the work was split.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import os
import signal
import sqlite3
import stat
import threading
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal, NamedTuple, TypeVar

from . import anki_rules, ids
from . import lock as lockfile
from .apkg import (
    CollectionWriter,
    Staged,
    apkg_writer,
    discard,
    remove_stale,
    replace_together,
    scratch_directory,
    signals_deferred,
    stage,
)
from .compile import CompiledNote, NoteCompiler, PackageParts, notetype_hashes
from .errors import Location, NeurodeckError, Problem, display_path
from .load import find_fact_sets, load_header, read_fact_set, top_level_key_location
from .model import NOTE_KINDS, Deck, Note, NoteKind
from .occlusion import check_image, check_numbers
from .order import FileDeck, study_order_problems
from .validate import (
    FILE_SOURCE,
    PackedLocations,
    SubdeckNames,
    check_header,
    check_note,
    duplicate_id,
)

# Below this much YAML, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 2 * 1024 * 1024
# Beyond this many workers the main process, which checks and appends every file's notes,
# is the slower side; each worker has one file in flight, and one more waits for the main
# process, so memory stays bounded.
_MAX_WORKERS = 4
_R = TypeVar("_R")


class NoteRecord(NamedTuple):
    """What the main process keeps of each note: where it is, its lock entry and its images."""

    id: str
    line: int
    column: int
    hash: str  # of everything a learner would see
    mod: int  # its modification time in this build
    old_mod: int | None  # in the old lock; None for a new note
    kind: str
    subdeck: str
    cards: str  # its card ordinals, "0,1"
    images: tuple[str, ...]  # image paths as written
    numbers: tuple[tuple[str, int], ...]  # a diagram's card number for each occlusion id


# A NoteRecord's fields as a plain tuple: what a worker sends, since a plain tuple pickles
# five times faster than a named one (the main process reads them back with _make).
_RecordFields = tuple[
    str, int, int, str, int, int | None, str, str, str, tuple[str, ...], tuple[tuple[str, int], ...]
]
# What a package holds of a note beyond its record: GUID, fields, tags and card ordinals.
_Contents = tuple[str, tuple[str, ...], tuple[str, ...], tuple[int, ...]]


class PackageNote(NamedTuple):
    """A note as the package holds it (its images still as written), and where it starts."""

    id: str
    loc: Location
    kind: str
    subdeck: str
    guid: str
    fields: tuple[str, ...]  # in the note type's field order
    tags: tuple[str, ...]
    ordinals: tuple[int, ...]
    images: tuple[str, ...]
    mod: int


# Work a command does with each fact set's notes inside the worker that compiled them (so
# that it runs on every core): it gets the notes as the package holds them (their images
# still as written), the package's parts, and the images' names in the package, and
# returns what the main process then hands to `on_prepared`.
NotePreparer = Callable[[list[PackageNote], PackageParts, Mapping[str, str]], object]

# What a pass keeps of each note: nothing but counts (build, and the commands that stream
# the notes through `prepare`), the compiled notes (Python callers, stats), or the notes as
# the package holds them (export, diff, release-check). A worker sends compiled notes only
# slowly: a Note pickles 100 times slower than the package's few strings. "problems" is
# `check`'s: its counts and problems, with notes only outlined (no field HTML, GUIDs or
# content hashes), and so no new lock.
Keep = Literal["problems", "counts", "notes", "package"]


@dataclass(frozen=True)
class CompiledDeck:
    """One pass over a deck directory: what `build` writes and the other commands read.

    Nothing is written to make it. `lock` is the lock file a build would write (with
    keep="problems", the lock as it was read: a check makes no new one); `package`
    holds the package's note types and decks. The notes themselves are kept only as asked
    (Keep): a build streams them into the package instead.
    """

    deck: Deck
    notes: list[CompiledNote]  # kept: "notes"
    package_notes: list[PackageNote]  # kept: "package"
    problems: list[Problem]
    strict: bool
    lock: lockfile.Lock
    lock_changes: list[str]
    package: PackageParts
    kinds: list[NoteKind]  # the note types the package holds
    media: dict[str, Path]  # name in the package -> file
    media_names: dict[str, str]  # image path as written -> name in the package
    note_count: int
    card_count: int
    subdecks: list[str]  # that hold notes, in curriculum order ("" is the root)

    @property
    def failed(self) -> bool:
        """Whether a problem fails the run: an error, or any problem under --strict."""
        return any(p.severity == "error" or self.strict for p in self.problems)

    @property
    def warnings(self) -> list[Problem]:
        """The problems that do not fail the run."""
        return [p for p in self.problems if p.severity == "warning" and not self.strict]

    def raise_if_failed(self) -> CompiledDeck:
        """Raise with the errors (and warnings under --strict); otherwise return self."""
        if self.failed:
            raise NeurodeckError([p for p in self.problems if p.severity == "error" or self.strict])
        return self


Checked = CompiledDeck  # what `check` returns


@dataclass(frozen=True)
class Built:
    """What a build wrote, and what it found."""

    path: Path
    notes: int
    cards: int
    subdecks: int
    warnings: list[Problem]
    lock_changes: list[str] = field(default_factory=list)
    lock: lockfile.Lock = lockfile.EMPTY  # the lock as this build recorded it


@dataclass(frozen=True)
class _FileResult:
    """One fact set, parsed, checked and compiled; for a build, written to a part collection."""

    path: str  # as locations show it
    records: list[_RecordFields]
    notes: list[CompiledNote]  # kept: "notes"
    contents: list[_Contents]  # kept: "package"
    problems: list[Problem]
    part: Path | None  # its rows; None when not building, or a problem stopped the writing
    card_count: int
    prepared: object = None  # what the job's `prepare` made of the notes
    media: dict[str, str] = field(default_factory=dict)  # its images' digests, by name


@dataclass(frozen=True)
class _Job:
    """What every fact set of one pass shares (worker processes inherit it by fork)."""

    deck: Deck
    old: lockfile.Lock
    package: PackageParts
    clock: int
    strict: bool
    keep: Keep
    scratch: Path | None  # where to write part collections; None when not building
    media_root: Path
    prepare: NotePreparer | None = None
    # Image file -> digest, filled as notes use them: each process (a worker, or the main
    # one) reads an image once per pass, however many notes show it.
    digests: dict[Path, str | None] = field(default_factory=dict)


def _compile_file(job: _Job, index: int, path: Path) -> _FileResult:
    """Check and compile one fact set; when building, write its rows, numbered from 1, to a
    part collection."""
    problems: list[Problem] = []
    fact_set = read_fact_set(path, problems)
    deck, old, clock, package = job.deck, job.old, job.clock, job.package
    compiler = NoteCompiler(deck, old.occlusions)
    compiled: list[CompiledNote] = []
    records: list[_RecordFields] = []
    history: list[Problem] = []  # reported after the file's other problems
    note_rows = []  # made even for a file that fails: few do
    card_texts: dict[tuple[int, ...], str] = {}  # card ordinals as the lock writes them
    card_count = 0
    media: dict[str, str] = {}  # the file's images' digests, by name in the package
    # One turn per note: the hot loop of a worker process.
    for due, note in enumerate(fact_set.notes if fact_set is not None else (), start=1):
        problems += check_note(deck, note)
        each = compiler.outline(note) if job.keep == "problems" else compiler.compile(note)
        compiled.append(each)
        if note.diagram is not None:
            problems += _check_diagram_image(deck, note)
            problems += check_numbers(note, each.numbers)
        ordinals = each.ordinals
        card_count += len(ordinals)
        cards = card_texts.get(ordinals)
        if cards is None:
            cards = card_texts[ordinals] = ",".join(map(str, ordinals))
        before = old.notes.get(note.id)
        if before is not None and (
            before.kind != note.kind or before.subdeck != note.subdeck or before.cards != cards
        ):
            history += _history_warnings(each, before, old.occlusions.get(note.id, {}))
        names: dict[str, str] = {}
        images_changed = False
        if each.images and job.keep != "problems":  # rare: most notes show no image
            targets = _image_targets(job.media_root, each.images)
            names = {written: target.name for written, target in targets.items()}
            for target in targets.values():
                digest = _digest(job, target)
                if digest is not None:
                    media[target.name] = digest
                    images_changed |= lockfile.image_changed(old, target.name, digest)
        mod = lockfile.modified_time(before, each.hash, clock, images_changed)
        loc = note.loc
        records.append(
            (
                note.id,
                loc.line,
                loc.column,
                each.hash,
                mod,
                None if before is None else before.mod,
                note.kind,
                note.subdeck,
                cards,
                each.images,
                each.numbers,
            )
        )
        if job.scratch is not None:
            note_rows.append(package.note_rows(each, mod=mod, due=due, media_names=names))
    problems = _once_per_file(path, problems) + history
    # A note that failed a check never reaches the package, and the build will fail anyway.
    failed = any(p.severity == "error" or job.strict for p in problems)
    part = None
    if job.scratch is not None and not failed:
        part = job.scratch / f"part-{index:06d}.anki2"
        writer = CollectionWriter(part, part=True)
        for note_row, card_rows in note_rows:
            writer.add(note_row, card_rows)
        writer.close()
    contents: list[_Contents] = []
    if job.keep == "package":
        contents = [_contents(each) for each in compiled]
    prepared = None
    if job.prepare is not None:
        here = display_path(path)
        packaged: dict[str, str] = {}  # the file's images' names in the package
        for each in compiled:
            if each.images:
                packaged.update(_packaged_names(job.media_root, each.images))
        prepared = job.prepare(
            [
                _package_note(here, NoteRecord._make(record), _contents(each))
                for each, record in zip(compiled, records, strict=True)
            ],
            job.package,
            packaged,
        )
    return _FileResult(
        display_path(path),
        records,
        compiled if job.keep == "notes" else [],
        contents,
        problems,
        part,
        card_count,
        prepared,
        media,
    )


def _digest(job: _Job, image: Path) -> str | None:
    """The image file's digest for the lock, read once per pass and process; None when it
    cannot be read or is too large, which the main process reports (_Media)."""
    if image not in job.digests:
        job.digests[image] = None
        if image.is_relative_to(job.media_root):  # never read a file outside the deck
            # Non-blocking, so that a FIFO cannot hang the build; only a regular file is read.
            with (
                contextlib.suppress(OSError),
                os.fdopen(os.open(image, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as file,
            ):
                status = os.fstat(file.fileno())
                if stat.S_ISREG(status.st_mode) and status.st_size <= MAX_MEDIA_BYTES:
                    job.digests[image] = lockfile.image_digest(file)
    return job.digests[image]


def _contents(each: CompiledNote) -> _Contents:
    return each.guid, each.fields, each.tags, each.ordinals


def _package_note(path: str, record: NoteRecord, contents: _Contents) -> PackageNote:
    """A note as the package holds it, from what the pass keeps of it."""
    return PackageNote(
        record.id,
        Location(path, record.line, record.column),
        record.kind,
        record.subdeck,
        *contents,
        record.images,
        record.mod,
    )


def _at_deck_line(problems: list[Problem]) -> list[Problem]:
    """Problems with a file's subdeck, moved from its first note to its own `deck:` line."""
    return [
        dataclasses.replace(
            p, location=top_level_key_location(Path(p.location.path), p.location.path, "deck")
        )
        for p in problems
    ]


def _once_per_file(path: Path, problems: list[Problem]) -> list[Problem]:
    """Each problem once: a mistake in the file's own `tags:` or `source:` is every note's,
    but is reported once, at the line of the mistake."""
    unique = list(dict.fromkeys(problems))
    for index, problem in enumerate(unique):
        if not problem.location.line and problem.message.endswith(FILE_SOURCE):
            where = top_level_key_location(path, problem.location.path, "source")
            unique[index] = dataclasses.replace(problem, location=where)
    return unique


def _check_diagram_image(deck: Deck, note: Note) -> list[Problem]:
    """Whether a diagram's image is a real image (a missing or outside file is _Media's)."""
    assert note.diagram is not None
    root = Path(deck.root).resolve()
    try:
        target = _image_file(root, note.diagram.image)
        if target is None or not target.is_relative_to(root) or not target.is_file():
            return []
        with target.open("rb") as file:
            data = file.read(_SNIFF_BYTES)
    except (OSError, RuntimeError):
        return []  # _Media reports what is wrong with the path
    return list(check_image(note, data, note.diagram.image_loc))


_SNIFF_BYTES = 64 * 1024  # enough for any image format's header (JPEG's may follow EXIF data)


class _Pass:
    """One pass over a deck directory: every note compiled and checked, in curriculum order,
    and the lock this deck would have."""

    def __init__(
        self, deck_dir: Path, *, clock: int, strict: bool, lock: lockfile.Lock | None = None
    ) -> None:
        self.deck_dir = deck_dir
        self.clock = clock
        self.strict = strict
        self.problems: list[Problem] = []
        self.deck = load_header(deck_dir, self.problems)
        self.problems += check_header(self.deck)
        self.lock = read_lock(deck_dir) if lock is None else lock
        if self.lock.deck_id is not None and self.lock.deck_id != self.deck.id:
            # Raised at once: every later comparison with this lock would be noise.
            raise NeurodeckError(
                [
                    *self.problems,
                    Problem(
                        self.deck.loc,
                        f"deck id changed from {self.lock.deck_id!r} (in {lockfile.LOCK_FILE}) "
                        f"to {self.deck.id!r}: every note's identity in Anki comes from the deck "
                        "id, so every learner would get a second copy of every note, without its "
                        "review history",
                        hint=f"put back `id: {self.lock.deck_id}` in deck.yaml: a released deck's "
                        "id is permanent (a new, separate deck belongs in its own directory)",
                    ),
                ]
            )
        self.lock.notes.index()  # before workers fork: they share it
        self.media = _Media(deck_dir)
        self._locations = PackedLocations()
        self._subdecks = SubdeckNames()
        self._file_decks: list[FileDeck] = []  # each fact set's subdeck, for the study order
        self._scanned, self._failed = 0, False
        self.updater = lockfile.LockUpdater(self.lock, clock, self.deck.name, self.deck.id)
        # The text note types go into every package; the image-occlusion one only into decks
        # that have diagrams. Workers need every model's time before the notes are known.
        self._fingerprints = notetype_hashes(self.deck)
        notetype_mods = {
            key: lockfile.modified_time(self.lock.notetypes.get(key), fingerprint, clock)
            for key, fingerprint in self._fingerprints.items()
        }
        self.package = PackageParts(self.deck, notetype_mods, self.lock.earliest or clock)
        if self.lock.deck_name is not None and self.lock.deck_name != self.deck.name:
            rule = anki_rules.DECK_RENAMED
            change = anki_rules.deck_renamed(self.lock.deck_name, self.deck.name)
            self.problems.append(
                Problem(self.deck.loc, rule.message(change), severity="warning", hint=rule.hint)
            )

    def run(
        self,
        *,
        keep: Keep = "counts",
        scratch: Path | None = None,
        on_part: Callable[[Path, int], None] | None = None,
        prepare: NotePreparer | None = None,
        on_prepared: Callable[[object], None] | None = None,
    ) -> CompiledDeck:
        """Compile every fact set; with `scratch`, workers write each one's rows to a part
        there, and `on_part(part, notes before it)` takes them in curriculum order while no
        problem fails the run. With `prepare`, the worker that compiled a fact set runs it on
        the notes, and `on_prepared` takes its result, in curriculum order."""
        job = _Job(
            self.deck,
            self.lock,
            self.package,
            self.clock,
            self.strict,
            keep,
            scratch,
            self.media.root,
            prepare,
        )
        notes: list[CompiledNote] = []
        package_notes: list[PackageNote] = []
        subdecks: dict[str, None] = {}
        kinds: dict[NoteKind, None] = dict.fromkeys(NOTE_KINDS)
        note_count = card_count = 0
        media, updater, pack_all = self.media, self.updater, self._locations.pack_all
        digests: dict[str, str] = {}  # each image's digest, by name in the package
        work = functools.partial(_compile_file, job)
        with no_gc(), contextlib.closing(self._results(work)) as results:
            for result in results:
                self.problems += result.problems
                digests.update(result.media)
                path = result.path
                contents = iter(result.contents)
                if result.records:  # a fact set's notes share its subdeck
                    first = NoteRecord._make(result.records[0])
                    where = Location(path, first.line, first.column)
                    self.problems += _at_deck_line(self._subdecks.check(first.subdeck, where))
                    self._file_deck(path, first.subdeck, first.id)
                records = result.records
                if records:  # by column, file by file: a large deck has many notes
                    ids, lines, columns, hashes, mods, old_mods, kinds_, subdecks_, cards = list(
                        zip(*records, strict=True)
                    )[:9]
                    # Every note, a repeated id too: the updater finds repeats at the end.
                    updater.notes_seen(
                        ids,
                        hashes,
                        mods,
                        kinds_,
                        subdecks_,
                        cards,
                        old_mods,
                        pack_all(path, lines, columns),
                    )
                    kinds.update(dict.fromkeys(kinds_))
                    subdecks.update(dict.fromkeys(subdecks_))
                rare = keep == "package" or any(r[9] or r[10] for r in records)
                for record in map(NoteRecord._make, records if rare else ()):
                    if record.numbers:
                        updater.occlusion_numbers(record.id, record.numbers)
                    if record.images:
                        loc = Location(path, record.line, record.column)
                        self.problems += media.add(record.images, record.id, loc)
                    if keep == "package":
                        package_notes.append(_package_note(path, record, next(contents)))
                notes += result.notes
                if prepare is not None and on_prepared is not None:
                    on_prepared(result.prepared)
                if result.part is not None:
                    if on_part is not None and not self._has_failed():
                        on_part(result.part, note_count)
                    result.part.unlink()
                note_count += len(result.records)
                card_count += result.card_count
        self._finish()
        for subdeck in subdecks:
            self.package.deck_for(subdeck)  # every subdeck gets its deck (workers made their own)
        for kind in kinds:
            updater.notetype(kind, self._fingerprints[kind])
        updater.media = {name: digests[name] for name in media.files if name in digests}
        outlined = keep == "problems"  # no content hashes: the lock stays as it was
        return CompiledDeck(
            self.deck,
            notes,
            package_notes,
            self.problems,
            self.strict,
            self.lock if outlined else updater.lock(),
            [] if outlined else updater.changes(),
            self.package,
            list(kinds),
            media.files,
            media.names,
            note_count,
            card_count,
            list(subdecks),
        )

    def _file_deck(self, path: str, subdeck: str, first_note_id: str) -> None:
        before = self.lock.notes.get(first_note_id)
        released = before is not None and before.subdeck == subdeck
        self._file_decks.append(FileDeck(path, subdeck, released))

    def _finish(self) -> None:
        unpack = self._locations.unpack
        for note_id, first, repeat in self.updater.finish():  # the lock records the first
            self.problems.append(duplicate_id(note_id, unpack(repeat), unpack(first)))
        self.problems += study_order_problems(self._file_decks)
        removed = self.updater.removed()
        if removed:
            shown = ", ".join(repr(r) for r in removed[:5]) + (", ..." if len(removed) > 5 else "")
            count = len(removed)
            rule = anki_rules.REMOVED
            self.problems.append(
                Problem(
                    Location(display_path(self.deck_dir / lockfile.LOCK_FILE)),
                    rule.message(
                        f"{count} released note{'s' if count != 1 else ''} no longer in "
                        f"the deck ({shown})"
                    ),
                    severity="warning",
                    hint=rule.hint,
                )
            )

    def _results(self, work: Callable[[int, Path], _R]) -> Generator[_R, None, None]:
        """work(index, path) for each fact set, in order: here, or in worker processes."""
        paths = find_fact_sets(self.deck_dir, self.problems)
        size = sum(_size(p) for p in paths)
        # fork() in a process with threads can deadlock; such callers get the sequential path.
        if (
            size < PARALLEL_MIN_BYTES
            or len(paths) < 2
            or usable_cpus() < 2
            or threading.active_count() > 1
        ):
            for index, path in enumerate(paths):
                yield work(index, path)
            return
        yield from _parallel(work, paths)

    def _has_failed(self) -> bool:
        """Whether any problem so far fails the run (cheap to ask after every file)."""
        for problem in self.problems[self._scanned :]:
            self._failed |= problem.severity == "error" or self.strict
        self._scanned = len(self.problems)
        return self._failed


def usable_cpus() -> int:
    """The CPUs this process may run on (a container or `taskset` may allow fewer than the
    machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without sched_getaffinity
        return os.cpu_count() or 1


def compile_deck(
    deck_dir: Path,
    *,
    clock: int,
    strict: bool = False,
    keep: Keep = "notes",
    old_lock: lockfile.Lock | None = None,
    prepare: NotePreparer | None = None,
    on_prepared: Callable[[object], None] | None = None,
) -> CompiledDeck:
    """Load, validate and compile a deck directory in memory, with the lock a build at
    `clock` would write; nothing is written. Problems are in the result, not raised.
    `old_lock` stands in for the lock file (to rebuild a lost one); `prepare` and
    `on_prepared` as _Pass.run."""
    return _Pass(deck_dir, clock=clock, strict=strict, lock=old_lock).run(
        keep=keep, prepare=prepare, on_prepared=on_prepared
    )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # reading it will say why


def _parallel(work: Callable[[int, Path], _R], paths: list[Path]) -> Iterator[_R]:
    # Forked workers inherit `work` and everything it refers to (the deck, the old lock, the
    # note types) instead of receiving a pickled copy with every file. Results come back in
    # file order, so the output is the same as the sequential path's, and at most a few
    # files are in flight, so memory stays bounded when the main process is the slower side.
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor, wait

    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # pragma: no cover - platforms without fork
        yield from (work(i, p) for i, p in enumerate(paths))
        return
    workers = min(usable_cpus(), _MAX_WORKERS)
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_inherit, initargs=(work, os.getpid())
    )
    pending: deque[Future[_R]] = deque()
    stuck = False
    try:
        for index, path in enumerate(paths):
            # An interrupt inside submit() could leave the pool waiting for work it never
            # queued, and the first submit forks the workers, where a Ctrl-C would be
            # swallowed by fork's own hooks ("Exception ignored"): it waits until after.
            with signals_deferred():
                pending.append(pool.submit(_work_in_worker, index, path))  # type: ignore[arg-type]
            if len(pending) > workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BaseException:  # an error, an interrupt, or the consumer gave up (GeneratorExit)
        # Workers ignore Ctrl-C and finish the file in hand: one killed while it sends its
        # result would leave the pool's reader blocked for ever on half a message. Only a
        # worker that does not finish in time is killed.
        for future in pending:
            future.cancel()
        stuck = bool(wait(pending, timeout=_STOP_WAIT_SECONDS).not_done)
        if stuck:
            for process in list(getattr(pool, "_processes", {}).values()):
                with contextlib.suppress(OSError):
                    process.kill()
        raise
    finally:
        pool.shutdown(wait=not stuck, cancel_futures=True)


_STOP_WAIT_SECONDS = 30


_work: Callable[[int, Path], object] | None = None  # in a worker process: what it is for


def _inherit(work: Callable[[int, Path], object], parent: int) -> None:
    global _work
    _work = work
    # Ctrl-C reaches the whole process group: the main process handles it and ends the
    # workers, which must not print tracebacks of their own. SIGTERM ends a worker at once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with(parent)


def _die_with(parent: int) -> None:
    """End this worker when the main process dies, even by SIGKILL: a worker left behind
    would hold the build's output pipe open for ever (`neurodeck build | cat` would hang)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)  # Linux; elsewhere there is no prctl
    except (OSError, AttributeError):
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _watch_parent(parent: int) -> None:  # pragma: no cover - systems without prctl
    import time

    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _work_in_worker(index: int, path: Path) -> object:
    assert _work is not None
    return _work(index, path)


def check(
    deck_dir: Path,
    *,
    strict: bool = False,
    clock: int = 0,
    keep: Keep = "notes",
    old_lock: lockfile.Lock | None = None,
    prepare: NotePreparer | None = None,
    on_prepared: Callable[[object], None] | None = None,
) -> CompiledDeck:
    """Load, validate and compile in memory; raise with the problems that fail the run."""
    return compile_deck(
        deck_dir,
        clock=clock,
        strict=strict,
        keep=keep,
        old_lock=old_lock,
        prepare=prepare,
        on_prepared=on_prepared,
    ).raise_if_failed()


def build(
    deck_dir: Path,
    output: Path | None = None,
    *,
    clock: int,
    frozen: bool = False,
    strict: bool = False,
) -> Built:
    """Compile, then write the .apkg and refresh the lock file beside the cards.

    The package and the lock are replaced together or not at all; a failed or interrupted
    build leaves both as they were. With `frozen`, a lock that would change is an error and
    nothing is written (for CI).
    """
    run = _Pass(deck_dir, clock=clock, strict=strict)
    path = output or Path("build") / f"{run.deck.id}.apkg"
    lock_path = deck_dir / lockfile.LOCK_FILE
    with contextlib.ExitStack() as stack:
        with _writing(path, "the package"):
            path.parent.mkdir(parents=True, exist_ok=True)
            # Scratch and temp files of a build that was killed (SIGKILL, power loss).
            remove_stale(path.parent, _SCRATCH_PREFIX)
            remove_stale(path.parent, f".{path.name}.")
            remove_stale(deck_dir, f".{lockfile.LOCK_FILE}.")
            scratch = stack.enter_context(scratch_directory(path.parent, _SCRATCH_PREFIX))
            writer = CollectionWriter(scratch / "collection.anki2")

        def append(part: Path, notes_before: int) -> None:
            # The part numbered its notes from 1; they follow the notes before them.
            with _writing(path, "the package"):
                writer.merge(part, row_shift=notes_before * ids.ROW_STRIDE, due_shift=notes_before)

        try:
            compiled = run.run(scratch=scratch, on_part=append)
            compiled.problems.extend(run.media.refuse_output(path))
            compiled.raise_if_failed()
            changes = compiled.lock_changes
            if frozen and changes:
                raise NeurodeckError(
                    [
                        Problem(
                            Location(display_path(lock_path)),
                            f"{lockfile.LOCK_FILE} is out of date ({'; '.join(changes)})",
                            hint="run `neurodeck build` and commit the updated lock file with the "
                            "cards",
                        )
                    ]
                )
            package = compiled.package
            with _writing(path, "the package"):
                writer.finish(package.unique_decks(), [package.models[k] for k in compiled.kinds])
        except BaseException:
            writer.abandon()
            raise
        new_lock = compiled.lock
        if not lockfile.check_time(new_lock.latest):
            raise NeurodeckError(
                [
                    Problem(
                        Location(display_path(lock_path)),
                        f"a modification time would pass {lockfile.MAX_TIME}, the last second a "
                        "package can date (2107)",
                        hint=lockfile.RECOVER_HINT,
                    )
                ]
            )
        staged: list[Staged] = []
        try:
            migration = None if frozen else run.updater.migration()
            if migration is not None:
                changes.append(migration)
            if changes or run.lock.format == 0:
                with _writing(lock_path, "the lock file"):
                    staged.append(stage(lock_path, _lock_writer(new_lock)))
            with _writing(path, "the package"):
                staged.append(
                    stage(
                        path,
                        apkg_writer(writer.path, compiled.media, timestamp=new_lock.latest),
                        temp_dir=scratch,
                    )
                )
            with _writing(path, "the package" if len(staged) == 1 else "the package and lock"):
                replace_together(staged)
        finally:
            for item in staged:
                discard(item)
    return Built(
        path,
        compiled.note_count,
        compiled.card_count,
        len(compiled.subdecks),
        compiled.warnings,
        changes,
        new_lock,
    )


_SCRATCH_PREFIX = ".neurodeck-"


@contextlib.contextmanager
def _writing(target: Path, what: str) -> Iterator[None]:
    """Turn a failure to write (read-only, full disk, file size limit, permissions) into a
    located problem; the previous files are untouched by then."""
    try:
        yield
    except (OSError, sqlite3.Error) as err:
        reason = (err.strerror or str(err)) if isinstance(err, OSError) else str(err)
        raise NeurodeckError(
            [Problem(Location(display_path(target)), f"cannot write {what}: {reason}")]
        ) from None


def _lock_writer(lock: lockfile.Lock) -> Callable[[IO[bytes]], None]:
    def write(out: IO[bytes]) -> None:
        out.writelines(line.encode("utf-8") for line in lockfile.lock_lines(lock))

    return write


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """No garbage collection while a pass gathers many small objects that live until it
    ends: they make no reference cycles, and the collector's repeated scans of a growing heap
    would make large decks superlinear."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def stats(deck_dir: Path) -> dict[str, object]:
    """Notes and cards by subdeck, note type and tag."""
    checked = check(deck_dir, keep="package")
    by_subdeck: Counter[str] = Counter()
    cards_by_subdeck: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    cards_by_type: Counter[str] = Counter()
    by_tag: Counter[str] = Counter()
    for note in checked.package_notes:
        name = "::".join(p for p in (checked.deck.name, note.subdeck) if p)
        by_subdeck[name] += 1
        cards_by_subdeck[name] += len(note.ordinals)
        by_type[note.kind] += 1
        cards_by_type[note.kind] += len(note.ordinals)
        by_tag.update(note.tags)
    return {
        "deck": checked.deck.name,
        "id": checked.deck.id,
        "version": checked.deck.version,
        "notes": checked.note_count,
        "cards": checked.card_count,
        "subdecks": {k: {"notes": by_subdeck[k], "cards": cards_by_subdeck[k]} for k in by_subdeck},
        "note_types": {k: {"notes": by_type[k], "cards": cards_by_type[k]} for k in by_type},
        "tags": dict(sorted(by_tag.items())),
    }


def read_lock(deck_dir: Path) -> lockfile.Lock:
    """The deck's lock file as it is (an empty lock when there is none)."""
    path = deck_dir / lockfile.LOCK_FILE
    try:
        return lockfile.parse_lock_file(path, display_path(path))
    except FileNotFoundError:
        return lockfile.EMPTY
    except OSError as err:
        raise NeurodeckError(
            [
                Problem(
                    Location(display_path(path)),
                    f"cannot read the lock file: {err.strerror or err}",
                )
            ]
        ) from None


def _history_warnings(
    compiled: CompiledNote, before: lockfile.Entry, regions: Mapping[str, int]
) -> list[Problem]:
    """What Anki will not carry to learners who have the previous release, in which the
    note had the lock entry `before` (and, for a diagram, these card numbers by region)."""
    note = compiled.note
    names = {number - 1: key for key, number in regions.items()}
    was = anki_rules.NoteShape(
        before.kind,
        before.subdeck,
        {int(card) for card in before.cards.split(",") if card},
        names if note.diagram is not None else None,
    )
    now = anki_rules.NoteShape(note.kind, note.subdeck, set(compiled.ordinals))
    return [
        Problem(note.loc, rule.message(change), severity="warning", hint=rule.hint)
        for rule, change, _ in anki_rules.note_changes(repr(note.id), was, now)
    ]


# Anki's own limit for one media file (rslib MAX_INDIVIDUAL_MEDIA_FILE_SIZE): larger files are
# not synced to AnkiWeb or other devices, and Check Media lists them as oversized.
MAX_MEDIA_BYTES = 100 * 1024 * 1024


class _Media:
    """Image files referenced by notes: resolved inside the deck directory, or refused."""

    def __init__(self, deck_dir: Path) -> None:
        self.root = deck_dir.resolve()
        self.files: dict[str, Path] = {}  # name in the package -> file
        self._refused: set[str] = set()
        self.names: dict[str, str] = {}  # path as written -> name in the package
        self._owner: dict[str, Path] = {}

    def add(self, images: tuple[str, ...], note_id: str, loc: Location) -> list[Problem]:
        """Resolve a note's images; returns the problems with any of them."""
        problems: list[Problem] = []
        for written in images:
            if written not in self.names and written not in self._refused:
                problem = self._resolve(written, note_id, loc)
                if problem is not None:
                    self._refused.add(written)
                    problems.append(problem)
        return problems

    def _resolve(self, written: str, note_id: str, loc: Location) -> Problem | None:
        try:
            target = _image_file(self.root, written)
            outside = (
                target is None
                or written.startswith(("/", "\\"))
                or not target.is_relative_to(self.root)
            )
            missing = not outside and not target.is_file()  # type: ignore[union-attr]
            size = 0 if outside or missing else target.stat().st_size  # type: ignore[union-attr]
            if not outside and not missing:
                with open(target, "rb"):  # type: ignore[arg-type]
                    pass  # unreadable: say so here, not as a failure to write the package
        except (OSError, RuntimeError) as err:  # a symlink loop, a name too long, ...
            reason = err.strerror if isinstance(err, OSError) and err.strerror else err
            return Problem(
                loc,
                f"image {written!r} in note {note_id!r} cannot be read: {reason}",
                hint="check the path; it is relative to the deck directory",
            )
        if outside:
            return Problem(
                loc,
                f"image {written!r} in note {note_id!r} is outside the deck directory",
                hint="copy the image into the deck directory and refer to it by a relative "
                "path such as images/figure.png",
            )
        assert target is not None
        if missing:
            return Problem(
                loc,
                f"image {written!r} in note {note_id!r} does not exist",
                hint="check the path; it is relative to the deck directory",
            )
        if size > MAX_MEDIA_BYTES:
            return Problem(
                loc,
                f"image {written!r} in note {note_id!r} is {size:,} bytes; a "
                f"media file may be at most 100 MiB ({MAX_MEDIA_BYTES:,} bytes)",
                hint="make the image smaller: Anki does not sync larger media files, "
                "and a card image rarely needs more than 1 MB",
            )
        if "\t" in target.name or target.name.splitlines() != [target.name]:
            return Problem(
                loc,
                f"image {written!r} in note {note_id!r} has a tab or a line break in its name",
                hint="rename the file: the lock records each image by its name, one per line",
            )
        if self._owner.setdefault(target.name, target) != target:
            return Problem(
                loc,
                f"two different images are both named {target.name!r}",
                hint="rename one: Anki keeps all media in one folder",
            )
        self.names[written] = target.name
        self.files[target.name] = target
        return None

    def refuse_output(self, output: Path) -> list[Problem]:
        """A problem if the package would replace one of the images it contains."""
        try:
            target = output.resolve()
        except (OSError, RuntimeError):
            return []
        return [
            Problem(
                Location(display_path(output)),
                "the output is an image of the deck; building would replace it",
                hint="write the package to build/ instead",
            )
            for file in self.files.values()
            if file == target
        ][:1]


def output_problem(deck_dir: Path, output: Path, *, suffix: str = ".apkg") -> str | None:
    """Why `output` must not be written by a build of deck_dir (None when it may be).

    A build replaces its output, so an output that is one of the deck's inputs (deck.yaml, a
    fact set, the lock, an image) would destroy it, and replacing a device or a FIFO would put
    a regular file in its place.
    """
    try:
        mode = output.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as err:
        return f"cannot be checked: {err.strerror}"
    if mode is not None:
        for test, what in (
            (stat.S_ISDIR, "a directory"),
            (stat.S_ISCHR, "a device"),
            (stat.S_ISBLK, "a device"),
            (stat.S_ISFIFO, "a FIFO"),
            (stat.S_ISSOCK, "a socket"),
        ):
            if test(mode):
                return f"is {what}; write to a regular file such as build/deck{suffix}"
    try:
        target = output.resolve()
        inside = target.is_relative_to(deck_dir.resolve())
    except (OSError, RuntimeError) as err:
        return f"cannot be checked: {err}"
    if inside and target.suffix.lower() != suffix:
        return (
            "is inside the deck directory, where it would replace or become one of the "
            "deck's inputs (deck.yaml, a fact set, the lock, an image); write it to "
            f"build/ or give it a name ending in {suffix}"
        )
    return None


def _image_file(root: Path, written: str) -> Path | None:
    """The file an image path as written refers to (None for a URL or nothing)."""
    return (root / written).resolve() if written and ":" not in written else None


def _packaged_names(root: Path, images: tuple[str, ...]) -> dict[str, str]:
    """The name each image gets in the package: its file's name (the main process checks
    that the file is inside the deck and that no two files share a name)."""
    return {written: target.name for written, target in _image_targets(root, images).items()}


def _image_targets(root: Path, images: tuple[str, ...]) -> dict[str, Path]:
    """The file each image path as written refers to, where there is one."""
    targets = {}
    for written in images:
        try:
            target = _image_file(root, written)
        except (OSError, RuntimeError):
            continue  # the main process reports it, and the build fails
        if target is not None:
            targets[written] = target
    return targets

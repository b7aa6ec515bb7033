"""load → validate → compile → write. Raises one NeurodeckError with every problem found.

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
from typing import IO, TypeVar

from . import ids
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
from .errors import Location, NeurodeckError, Problem
from .load import (
    display_path,
    find_fact_sets,
    load_header,
    read_fact_set,
    top_level_key_location,
)
from .model import NOTE_KINDS, Deck, Note, NoteKind
from .occlusion import check_image, check_numbers
from .order import FileDeck, study_order_problems
from .validate import FILE_SOURCE, SubdeckNames, UniqueIds, check_header, check_note

# Below this much YAML, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 2 * 1024 * 1024
_IN_FLIGHT = 3  # files parsed ahead of the writer
_R = TypeVar("_R")


@dataclass(frozen=True)
class Checked:
    """A deck that passed validation, its compiled notes, and any warnings."""

    deck: Deck
    notes: list[CompiledNote]
    warnings: list[Problem]

    @property
    def card_count(self) -> int:
        """Cards the deck makes: one per template, or per cloze number."""
        return sum(len(n.ordinals) for n in self.notes)

    @property
    def subdecks(self) -> list[str]:
        """Subdeck paths that hold notes, in curriculum order ("" is the root)."""
        return list(dict.fromkeys(n.note.subdeck for n in self.notes))


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
    """One fact set, parsed, checked and compiled (for `check`)."""

    notes: list[CompiledNote]
    problems: list[Problem]


def _process_file(deck: Deck, path: Path,
                  occlusion_numbers: Mapping[str, Mapping[str, int]]) -> _FileResult:
    problems: list[Problem] = []
    fact_set = read_fact_set(path, problems)
    if fact_set is None:
        return _FileResult([], problems)
    compiler = NoteCompiler(deck, occlusion_numbers)
    compiled = []
    for note in fact_set.notes:
        problems += check_note(deck, note)
        compiled.append(compiler.compile(note))
        if note.diagram is not None:
            problems += _check_diagram_image(deck, note)
            problems += check_numbers(note, compiled[-1].numbers)
    return _FileResult(compiled, _once_per_file(path, problems))


def _at_deck_line(problems: list[Problem]) -> list[Problem]:
    """Problems with a file's subdeck, moved from its first note to its own `deck:` line."""
    return [dataclasses.replace(p, location=top_level_key_location(
        Path(p.location.path), p.location.path, "deck")) for p in problems]


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


# What the main process needs of each note a worker has written, as a plain tuple (which
# pickles several times faster than a named one): id, line, column, content hash, time,
# time in the old lock (None for a new note), type, subdeck, cards ("0,1"), images, and for a
# diagram the cloze number of each occlusion id.
_Written = tuple[str, int, int, str, int, int | None, str, str, str, tuple[str, ...],
                 tuple[tuple[str, int], ...]]


@dataclass(frozen=True)
class _WrittenFile:
    """One fact set, checked, compiled and written to its own part collection (for `build`)."""

    path: str  # as locations show it
    notes: list[_Written]
    problems: list[Problem]
    part: Path | None  # its rows; None when a problem stopped the writing
    card_count: int


@dataclass(frozen=True)
class _BuildJob:
    """What every fact set of one build shares (worker processes inherit it by fork)."""

    deck: Deck
    old: lockfile.Lock
    parts: PackageParts
    clock: int
    strict: bool
    scratch: Path
    media_root: Path


def _write_file(job: _BuildJob, index: int, path: Path) -> _WrittenFile:
    """Check and compile one fact set and write its rows, numbered from 1, to a part."""
    result = _process_file(job.deck, path, job.old.occlusions)
    problems = result.problems
    old_entries = [job.old.notes.get(compiled.note.id) for compiled in result.notes]
    for compiled, before in zip(result.notes, old_entries, strict=True):
        problems += _history_warnings(compiled, before)
    # A note that failed a check never reaches genanki, and the build will fail anyway.
    failed = any(p.severity == "error" or job.strict for p in problems)
    part = None if failed else job.scratch / f"part-{index:06d}.anki2"
    writer = None if part is None else CollectionWriter(part, part=True)
    written: list[_Written] = []
    card_count = 0
    for due, (compiled, before) in enumerate(zip(result.notes, old_entries, strict=True),
                                             start=1):
        note = compiled.note
        mod = lockfile.modified_time(before, compiled.hash, job.clock)
        if writer is not None:
            names = _packaged_names(job.media_root, compiled.images)
            genanki_note = job.parts.note(compiled, mod=mod, due=due, media_names=names)
            writer.add(genanki_note, job.parts.deck_for(note.subdeck).deck_id)
        written.append((note.id, note.loc.line, note.loc.column, compiled.hash, mod,
                        None if before is None else before.mod, note.kind, note.subdeck,
                        _ordinals_text(compiled), compiled.images, compiled.numbers))
        card_count += len(compiled.ordinals)
    if writer is not None:
        writer.close()
    return _WrittenFile(display_path(path), written, problems, part, card_count)


class _Pass:
    """One pass over a deck directory: compiled notes in curriculum order, and every problem."""

    def __init__(self, deck_dir: Path, *, strict: bool, lock: lockfile.Lock | None = None
                 ) -> None:
        self.deck_dir = deck_dir
        self.strict = strict
        self.problems: list[Problem] = []
        self.deck = load_header(deck_dir, self.problems)
        self.problems += check_header(self.deck)
        self.lock = _read_lock(deck_dir) if lock is None else lock
        if self.lock.deck_id is not None and self.lock.deck_id != self.deck.id:
            # Raised at once: every later comparison with this lock would be noise.
            raise NeurodeckError([*self.problems, Problem(
                self.deck.loc,
                f"deck id changed from {self.lock.deck_id!r} (in {lockfile.LOCK_FILE}) to "
                f"{self.deck.id!r}: every note's identity in Anki comes from the deck id, so "
                "every learner would get a second copy of every note, without its review "
                "history",
                hint=f"put back `id: {self.lock.deck_id}` in deck.yaml: a released deck's id is "
                "permanent (a new, separate deck belongs in its own directory)",
            )])
        self.media = _Media(deck_dir)
        self._ids = UniqueIds()
        self._subdecks = SubdeckNames()
        self._scanned, self._failed = 0, False
        self._file_decks: list[FileDeck] = []  # each fact set's subdeck, for the study order
        if self.lock.deck_name is not None and self.lock.deck_name != self.deck.name:
            self.problems.append(Problem(
                self.deck.loc,
                f"deck renamed from {self.lock.deck_name!r} to {self.deck.name!r}; Anki matches "
                "decks by name, so learners' cards stay in the old deck and new ones go to a "
                "new one",
                severity="warning",
                hint="keep the released name, or ask learners to rename their deck before "
                "importing",
            ))

    def notes(self) -> Iterator[CompiledNote]:
        """Compiled notes in curriculum order; problems accumulate as they are found."""
        deck = self.deck
        numbers = self.lock.occlusions
        for result in self._results(lambda _index, path: _process_file(deck, path, numbers)):
            self.problems += result.problems
            if result.notes:
                first = result.notes[0].note
                self.problems += _at_deck_line(self._subdecks.check(first.subdeck, first.loc))
                self._file_deck(first.loc.path, first.subdeck, first.id)
            for compiled in result.notes:
                note = compiled.note
                self.problems += self._ids.check(note)
                self.problems += _history_warnings(compiled, self.lock.notes.get(note.id))
                if compiled.images:
                    self.problems += self.media.add(compiled.images, note.id, note.loc)
                yield compiled
        self._finish()

    def written_files(self, job: _BuildJob) -> Generator[_WrittenFile, None, None]:
        """Each fact set written to a part, in curriculum order, its notes checked deck-wide."""
        for result in self._results(functools.partial(_write_file, job)):
            self.problems += result.problems
            path, check_at = result.path, self._ids.check_at
            if result.notes:
                note_id, line, column, *_, subdeck, _, _, _ = result.notes[0]
                self.problems += _at_deck_line(
                    self._subdecks.check(subdeck, Location(path, line, column)))
                self._file_deck(path, subdeck, note_id)
            for note_id, line, column, *_, images, _numbers in result.notes:
                self.problems += check_at(note_id, path, line, column)
                if images:
                    loc = Location(path, line, column)
                    self.problems += self.media.add(images, note_id, loc)
            yield result
            if result.part is not None:
                result.part.unlink()
        self._finish()

    def _file_deck(self, path: str, subdeck: str, first_note_id: str) -> None:
        before = self.lock.notes.get(first_note_id)
        released = before is not None and before.subdeck == subdeck
        self._file_decks.append(FileDeck(path, subdeck, released))

    def _finish(self) -> None:
        self.problems += study_order_problems(self._file_decks)
        removed = sorted(self.lock.notes.keys() - self._ids.seen())
        if removed:
            shown = ", ".join(repr(r) for r in removed[:5]) + (", ..." if len(removed) > 5 else "")
            self.problems.append(Problem(
                Location(display_path(self.deck_dir / lockfile.LOCK_FILE)),
                f"{len(removed)} released note{'s' if len(removed) != 1 else ''} no longer in the "
                f"deck ({shown}); learners who have them keep them",
                severity="warning",
                hint="say so in the release notes; learners can suspend or delete them",
            ))

    def _results(self, work: Callable[[int, Path], _R]) -> Iterator[_R]:
        """work(index, path) for each fact set, in order: here, or in worker processes."""
        paths = find_fact_sets(self.deck_dir, self.problems)
        size = sum(_size(p) for p in paths)
        # fork() in a process with threads can deadlock; such callers get the sequential path.
        if (size < PARALLEL_MIN_BYTES or len(paths) < 2 or (os.cpu_count() or 1) < 2
                or threading.active_count() > 1):
            for index, path in enumerate(paths):
                yield work(index, path)
            return
        yield from _parallel(work, paths)

    def has_failed(self) -> bool:
        """Whether any problem so far fails the run (cheap to ask after every note)."""
        for problem in self.problems[self._scanned:]:
            self._failed |= problem.severity == "error" or self.strict
        self._scanned = len(self.problems)
        return self._failed

    def raise_if_failed(self) -> list[Problem]:
        """Raise with the errors (and warnings under --strict); otherwise return the warnings."""
        errors = [p for p in self.problems if p.severity == "error" or self.strict]
        if errors:
            raise NeurodeckError(errors)
        return [p for p in self.problems if p.severity == "warning"]


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
    pool = ProcessPoolExecutor(max_workers=2, mp_context=context, initializer=_inherit,
                               initargs=(work, os.getpid()))
    pending: deque[Future[_R]] = deque()
    stuck = False
    try:
        for index, path in enumerate(paths):
            # An interrupt inside submit() could leave the pool waiting for work it never
            # queued, and the first submit forks the workers, where a Ctrl-C would be
            # swallowed by fork's own hooks ("Exception ignored"): it waits until after.
            with signals_deferred():
                pending.append(pool.submit(_work_in_worker, index, path))  # type: ignore[arg-type]
            if len(pending) >= _IN_FLIGHT:
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


def check(deck_dir: Path, *, strict: bool = False) -> Checked:
    """Load, validate and compile in memory; nothing is written."""
    with _no_gc():
        run = _Pass(deck_dir, strict=strict)
        notes = list(run.notes())
    warnings = run.raise_if_failed()
    return Checked(run.deck, notes, warnings)


def build(deck_dir: Path, output: Path | None = None, *, clock: int, frozen: bool = False,
          strict: bool = False, write_lock: bool = True,
          old_lock: lockfile.Lock | None = None) -> Built:
    """Check, then write the .apkg and refresh the lock file beside the cards.

    The package and the lock are replaced together or not at all; a failed or interrupted
    build leaves both as they were. With `frozen`, a lock that would change is an error and
    nothing is written (for CI). Without `write_lock`, only the package is written (for
    commands that must leave the deck directory untouched); `old_lock` stands in for the
    lock file (for rebuilding a lost one).
    """
    with _no_gc():
        return _build(deck_dir, output, clock=clock, frozen=frozen, strict=strict,
                      write_lock=write_lock, old_lock=old_lock)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    # A build makes no reference cycles worth collecting, and the collector's repeated scans
    # of a growing heap would make large decks superlinear.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_SCRATCH_PREFIX = ".neurodeck-"


@contextlib.contextmanager
def _writing(target: Path, what: str) -> Iterator[None]:
    """Turn a failure to write (read-only, full disk, file size limit, permissions) into a
    located problem; the previous files are untouched by then."""
    try:
        yield
    except (OSError, sqlite3.Error) as err:
        reason = (err.strerror or str(err)) if isinstance(err, OSError) else str(err)
        raise NeurodeckError([Problem(
            Location(display_path(target)), f"cannot write {what}: {reason}")]) from None


def _build(deck_dir: Path, output: Path | None, *, clock: int, frozen: bool,
           strict: bool, write_lock: bool, old_lock: lockfile.Lock | None) -> Built:
    run = _Pass(deck_dir, strict=strict, lock=old_lock)
    deck = run.deck
    path = output or Path("build") / f"{deck.id}.apkg"
    lock_path = deck_dir / lockfile.LOCK_FILE
    updater = lockfile.LockUpdater(run.lock, clock, deck.name, deck.id)
    # The text note types go into every package; the image-occlusion one only into decks
    # that have diagrams. Workers need every model's time before the notes are known.
    hashes = notetype_hashes(deck)
    notetype_mods = {key: lockfile.modified_time(run.lock.notetypes.get(key), h, clock)
                     for key, h in hashes.items()}
    used_kinds: dict[NoteKind, None] = dict.fromkeys(NOTE_KINDS)
    first_build = run.lock.earliest or clock
    parts = PackageParts(deck, notetype_mods, first_build)
    counts: Counter[str] = Counter()
    subdecks: dict[str, None] = {}  # in curriculum order, which the package's decks follow
    with contextlib.ExitStack() as stack:
        with _writing(path, "the package"):
            path.parent.mkdir(parents=True, exist_ok=True)
            # Scratch and temp files of a build that was killed (SIGKILL, power loss).
            remove_stale(path.parent, _SCRATCH_PREFIX)
            remove_stale(path.parent, f".{path.name}.")
            if write_lock:
                remove_stale(deck_dir, f".{lockfile.LOCK_FILE}.")
            scratch = stack.enter_context(scratch_directory(path.parent, _SCRATCH_PREFIX))
            writer = CollectionWriter(scratch / "collection.anki2")
        job = _BuildJob(deck, run.lock, parts, clock, strict, scratch, run.media.root)
        try:
            with _writing(path, "the package"), \
                    contextlib.closing(run.written_files(job)) as written_files:
                for written in written_files:
                    for (note_id, _, _, content_hash, mod, old_mod, kind, subdeck, cards, _,
                         numbers) in written.notes:
                        updater.note_seen(note_id, content_hash, mod, kind, subdeck, cards,
                                          old_mod)
                        used_kinds[kind] = None  # type: ignore[index]  # a kind from the lock
                        if numbers:
                            updater.occlusion_numbers(note_id, numbers)
                        subdecks[subdeck] = None
                    if written.part is not None and not run.has_failed():
                        # The part numbered its notes from 1; they follow the notes before them.
                        writer.merge(written.part, row_shift=counts["notes"] * ids.ROW_STRIDE,
                                     due_shift=counts["notes"])
                    counts["notes"] += len(written.notes)
                    counts["cards"] += written.card_count
            for subdeck in subdecks:
                parts.deck_for(subdeck)  # every subdeck gets its deck (workers made their own)
            models = [parts.models[kind] for kind in used_kinds]
            for kind in used_kinds:
                updater.notetype(kind, hashes[kind])
            run.problems += run.media.refuse_output(path)
            warnings = run.raise_if_failed()
            changes = updater.changes()
            if frozen and changes:
                raise NeurodeckError([Problem(
                    Location(display_path(lock_path)),
                    f"{lockfile.LOCK_FILE} is out of date ({'; '.join(changes)})",
                    hint="run `neurodeck build` and commit the updated lock file with the cards",
                )])
            with _writing(path, "the package"):
                writer.finish(parts.unique_decks(), models)
        except BaseException:
            writer.abandon()
            raise
        new_lock = updater.lock()
        if not lockfile.check_time(new_lock.latest):
            raise NeurodeckError([Problem(
                Location(display_path(lock_path)),
                f"a modification time would pass {lockfile.MAX_TIME}, the last second a "
                "package can date (2107)", hint=lockfile.RECOVER_HINT)])
        staged: list[Staged] = []
        try:
            migration = None if frozen else updater.migration()
            if migration is not None:
                changes.append(migration)
            if write_lock and (changes or run.lock.format == 0):
                with _writing(lock_path, "the lock file"):
                    staged.append(stage(lock_path, _lock_writer(new_lock)))
            with _writing(path, "the package"):
                staged.append(stage(path, apkg_writer(writer.path, run.media.files,
                                                      timestamp=new_lock.latest),
                                    temp_dir=scratch))
            with _writing(path, "the package" if len(staged) == 1 else "the package and lock"):
                replace_together(staged)
        finally:
            for item in staged:
                discard(item)
    return Built(path, counts["notes"], counts["cards"], len(subdecks), warnings, changes,
                 new_lock)


def _lock_writer(lock: lockfile.Lock) -> Callable[[IO[bytes]], None]:
    def write(out: IO[bytes]) -> None:
        out.writelines(line.encode("utf-8") for line in lockfile.lock_lines(lock))
    return write


def stats(deck_dir: Path) -> dict[str, object]:
    """Notes and cards by subdeck, note type and tag."""
    checked = check(deck_dir)
    by_subdeck: Counter[str] = Counter()
    cards_by_subdeck: Counter[str] = Counter()
    by_type: Counter[str] = Counter()
    cards_by_type: Counter[str] = Counter()
    by_tag: Counter[str] = Counter()
    for compiled in checked.notes:
        note = compiled.note
        name = "::".join(p for p in (checked.deck.name, note.subdeck) if p)
        by_subdeck[name] += 1
        cards_by_subdeck[name] += len(compiled.ordinals)
        by_type[note.kind] += 1
        cards_by_type[note.kind] += len(compiled.ordinals)
        by_tag.update(compiled.tags)
    return {
        "deck": checked.deck.name,
        "id": checked.deck.id,
        "version": checked.deck.version,
        "notes": len(checked.notes),
        "cards": checked.card_count,
        "subdecks": {k: {"notes": by_subdeck[k], "cards": cards_by_subdeck[k]} for k in by_subdeck},
        "note_types": {k: {"notes": by_type[k], "cards": cards_by_type[k]} for k in by_type},
        "tags": dict(sorted(by_tag.items())),
    }


def _read_lock(deck_dir: Path) -> lockfile.Lock:
    path = deck_dir / lockfile.LOCK_FILE
    try:
        with path.open(encoding="utf-8", newline="\n") as lines:
            return lockfile.parse_lock_lines(display_path(path), lines)
    except FileNotFoundError:
        return lockfile.EMPTY
    except (OSError, UnicodeDecodeError) as err:
        raise NeurodeckError([Problem(Location(display_path(path)),
                                      f"cannot read the lock file: {err}")]) from None


def _ordinals_text(compiled: CompiledNote) -> str:
    return ",".join(map(str, compiled.ordinals))


def _history_warnings(compiled: CompiledNote, before: lockfile.Entry | None) -> list[Problem]:
    """Changes to a note that Anki will not carry to learners who have the previous release
    (`before` is its entry in the old lock)."""
    note = compiled.note
    if before is None:
        return []
    if before.kind != note.kind:
        return [Problem(
            note.loc,
            f"note {note.id!r} changed type from {before.kind} to {note.kind}; Anki will not "
            "update it for learners who have the previous release",
            severity="warning",
            hint="keep its type, or give the new version a new id and retire the old one",
        )]
    problems = []
    if before.subdeck != note.subdeck:
        problems.append(Problem(
            note.loc,
            f"note {note.id!r} moved from subdeck {before.subdeck or '(root)'!r} to "
            f"{note.subdeck or '(root)'!r}; learners' existing cards stay in the old subdeck",
            severity="warning",
            hint="learners can move them in the browser; say so in the release notes",
        ))
    lost = set(before.cards.split(",")) - set(_ordinals_text(compiled).split(",")) - {""}
    if lost and note.diagram is not None:
        by_number = {number - 1: key for key, number in compiled.numbers}
        gone = ", ".join(repr(by_number.get(int(o), f"c{int(o) + 1}"))
                         for o in sorted(lost, key=int))
        problems.append(Problem(
            note.loc,
            f"diagram {note.id!r} no longer has occlusion {gone}; learners keep that card and "
            "its history, and it shows an error until they run Tools → Empty Cards",
            severity="warning",
            hint="say so in the release notes; the lock keeps its card number, so no other "
            "region ever gets its history",
        ))
    elif lost:
        numbers = ", ".join(str(int(o) + 1) for o in sorted(lost, key=int))
        problems.append(Problem(
            note.loc,
            f"note {note.id!r} no longer makes card {numbers}; learners keep that card, and it "
            "shows an error until they run Tools → Empty Cards",
            severity="warning",
            hint="keep the cloze numbers a released note had; add new deletions with new numbers",
        ))
    return problems


# Anki's own limit for one media file (rslib MAX_INDIVIDUAL_MEDIA_FILE_SIZE): larger files are
# not synced to AnkiWeb or other devices, and Check Media lists them as oversized.
MAX_MEDIA_BYTES = 100 * 1024 * 1024


class _Media:
    """Image files referenced by notes: resolved inside the deck directory, or refused."""

    def __init__(self, deck_dir: Path) -> None:
        self.root = deck_dir.resolve()
        self.files: dict[str, Path] = {}  # name in the package -> file
        self._refused: set[str] = set()
        self._names: dict[str, str] = {}  # path as written -> name in the package
        self._owner: dict[str, Path] = {}

    def add(self, images: tuple[str, ...], note_id: str, loc: Location) -> list[Problem]:
        """Resolve a note's images; returns the problems with any of them."""
        problems: list[Problem] = []
        for written in images:
            if written not in self._names and written not in self._refused:
                problem = self._resolve(written, note_id, loc)
                if problem is not None:
                    self._refused.add(written)
                    problems.append(problem)
        return problems

    def _resolve(self, written: str, note_id: str, loc: Location) -> Problem | None:
        try:
            target = _image_file(self.root, written)
            outside = (target is None or written.startswith(("/", "\\"))
                       or not target.is_relative_to(self.root))
            missing = not outside and not target.is_file()  # type: ignore[union-attr]
            size = 0 if outside or missing else target.stat().st_size  # type: ignore[union-attr]
            if not outside and not missing:
                with open(target, "rb"):  # type: ignore[arg-type]
                    pass  # unreadable: say so here, not as a failure to write the package
        except (OSError, RuntimeError) as err:  # a symlink loop, a name too long, ...
            reason = err.strerror if isinstance(err, OSError) and err.strerror else err
            return Problem(loc, f"image {written!r} in note {note_id!r} cannot be read: {reason}",
                           hint="check the path; it is relative to the deck directory")
        if outside:
            return Problem(
                loc, f"image {written!r} in note {note_id!r} is outside the deck directory",
                hint="copy the image into the deck directory and refer to it by a relative "
                "path such as images/figure.png",
            )
        assert target is not None
        if missing:
            return Problem(loc, f"image {written!r} in note {note_id!r} does not exist",
                           hint="check the path; it is relative to the deck directory")
        if size > MAX_MEDIA_BYTES:
            return Problem(loc, f"image {written!r} in note {note_id!r} is {size:,} bytes; a "
                           f"media file may be at most 100 MiB ({MAX_MEDIA_BYTES:,} bytes)",
                           hint="make the image smaller: Anki does not sync larger media files, "
                           "and a card image rarely needs more than 1 MB")
        if self._owner.setdefault(target.name, target) != target:
            return Problem(loc, f"two different images are both named {target.name!r}",
                           hint="rename one: Anki keeps all media in one folder")
        self._names[written] = target.name
        self.files[target.name] = target
        return None

    def refuse_output(self, output: Path) -> list[Problem]:
        """A problem if the package would replace one of the images it contains."""
        try:
            target = output.resolve()
        except (OSError, RuntimeError):
            return []
        return [Problem(Location(display_path(output)),
                        "the output is an image of the deck; building would replace it",
                        hint="write the package to build/ instead")
                for file in self.files.values() if file == target][:1]


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
        for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a device"),
                           (stat.S_ISBLK, "a device"), (stat.S_ISFIFO, "a FIFO"),
                           (stat.S_ISSOCK, "a socket")):
            if test(mode):
                return f"is {what}; write to a regular file such as build/deck{suffix}"
    try:
        target = output.resolve()
        inside = target.is_relative_to(deck_dir.resolve())
    except (OSError, RuntimeError) as err:
        return f"cannot be checked: {err}"
    if inside and target.suffix.lower() != suffix:
        return ("is inside the deck directory, where it would replace or become one of the "
                "deck's inputs (deck.yaml, a fact set, the lock, an image); write it to "
                f"build/ or give it a name ending in {suffix}")
    return None


def _image_file(root: Path, written: str) -> Path | None:
    """The file an image path as written refers to (None for a URL or nothing)."""
    return (root / written).resolve() if written and ":" not in written else None


def _packaged_names(root: Path, images: tuple[str, ...]) -> dict[str, str]:
    """The name each image gets in the package: its file's name (the main process checks
    that the file is inside the deck and that no two files share a name)."""
    names = {}
    for written in images:
        try:
            target = _image_file(root, written)
        except (OSError, RuntimeError):
            continue  # the main process reports it, and the build fails
        if target is not None:
            names[written] = target.name
    return names

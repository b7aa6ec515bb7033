"""load → validate → compile → write. Raises one NeurodeckError with every problem found.

A deck is processed file by file: each fact set is parsed, checked and compiled on its own
(in a second process when the deck is large), and the main process checks what spans files
(duplicate ids, the lock) and streams notes into the package. Memory stays flat however
many notes there are, and the output does not depend on how the work was split.
"""

from __future__ import annotations

import contextlib
import gc
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import lock as lockfile
from .apkg import CollectionWriter, write_apkg, write_lines_atomically
from .compile import CompiledNote, NoteCompiler, PackageParts, notetype_hashes
from .errors import Location, NeurodeckError, Problem
from .load import display_path, find_fact_sets, load_header, read_fact_set
from .model import Deck, Note
from .validate import UniqueIds, check_header, check_note

# Below this much YAML, starting worker processes costs more than it saves.
PARALLEL_MIN_BYTES = 2 * 1024 * 1024
_IN_FLIGHT = 3  # files parsed ahead of the writer


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


@dataclass(frozen=True)
class _FileResult:
    """One fact set, parsed, checked and compiled: what a worker sends back."""

    notes: list[CompiledNote]
    problems: list[Problem]


def _process_file(deck: Deck, path: Path) -> _FileResult:
    problems: list[Problem] = []
    fact_set = read_fact_set(path, problems)
    if fact_set is None:
        return _FileResult([], problems)
    compiler = NoteCompiler(deck)
    compiled = []
    for note in fact_set.notes:
        problems += check_note(deck, note)
        compiled.append(compiler.compile(note))
    return _FileResult(compiled, problems)


class _Pass:
    """One pass over a deck directory: compiled notes in curriculum order, and every problem."""

    def __init__(self, deck_dir: Path, *, strict: bool) -> None:
        self.deck_dir = deck_dir
        self.strict = strict
        self.problems: list[Problem] = []
        self.deck = load_header(deck_dir, self.problems)
        self.problems += check_header(self.deck)
        self.lock = _read_lock(deck_dir)
        self.media = _Media(deck_dir)
        self._ids = UniqueIds()
        self._scanned, self._failed = 0, False
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
        for result in self._file_results():
            self.problems += result.problems
            for compiled in result.notes:
                self.problems += self._ids.check(compiled.note)
                self.problems += _history_warnings(compiled, self.lock)
                if compiled.images:
                    self.problems += self.media.add(compiled)
                yield compiled
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

    def _file_results(self) -> Iterator[_FileResult]:
        paths = find_fact_sets(self.deck_dir)
        size = sum(p.stat().st_size for p in paths)
        # fork() in a process with threads can deadlock; such callers get the sequential path.
        if (size < PARALLEL_MIN_BYTES or len(paths) < 2 or (os.cpu_count() or 1) < 2
                or threading.active_count() > 1):
            for path in paths:
                yield _process_file(self.deck, path)
            return
        yield from _parallel(self.deck, paths)

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


def _parallel(deck: Deck, paths: list[Path]) -> Iterator[_FileResult]:
    # Fork shares the loaded modules with the workers, so they start in milliseconds. Results
    # come back in file order, so the output is the same as the sequential path's, and at most
    # a few files are in flight, so memory stays bounded when the writer is the slower side.
    import multiprocessing
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # pragma: no cover - platforms without fork
        yield from (_process_file(deck, p) for p in paths)
        return
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        pending: deque[Future[_FileResult]] = deque()
        for path in paths:
            pending.append(pool.submit(_process_file, deck, path))
            if len(pending) >= _IN_FLIGHT:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def check(deck_dir: Path, *, strict: bool = False) -> Checked:
    """Load, validate and compile in memory; nothing is written."""
    with _no_gc():
        run = _Pass(deck_dir, strict=strict)
        notes = list(run.notes())
    warnings = run.raise_if_failed()
    return Checked(run.deck, notes, warnings)


def build(deck_dir: Path, output: Path | None = None, *, clock: int, frozen: bool = False,
          strict: bool = False) -> Built:
    """Check, then write the .apkg atomically and refresh the lock file beside the cards.

    With `frozen`, a lock that would change is an error and nothing is written (for CI).
    """
    with _no_gc():
        return _build(deck_dir, output, clock=clock, frozen=frozen, strict=strict)


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


def _build(deck_dir: Path, output: Path | None, *, clock: int, frozen: bool,
           strict: bool) -> Built:
    run = _Pass(deck_dir, strict=strict)
    deck = run.deck
    path = output or Path("build") / f"{deck.id}.apkg"
    updater = lockfile.LockUpdater(run.lock, clock, deck.name)
    notetype_mods = {key: updater.notetype(key, h) for key, h in notetype_hashes().items()}
    first_build = run.lock.earliest or clock
    parts = PackageParts(deck, notetype_mods, first_build)
    counts: Counter[str] = Counter()
    subdecks: set[str] = set()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".neurodeck-", dir=path.parent) as scratch:
        writer = CollectionWriter(Path(scratch) / "collection.anki2")
        try:
            for due, compiled in enumerate(run.notes(), start=1):
                if run.has_failed():
                    continue  # keep finding problems, but write nothing that failed a check
                note = compiled.note
                mod = updater.note(note.id, compiled.hash, note.kind, note.subdeck,
                                   _ordinals_text(compiled))
                names = run.media.names_for(compiled) if compiled.images else {}
                genanki_note = parts.note(compiled, mod=mod, due=due, media_names=names)
                writer.add(genanki_note, parts.deck_for(note.subdeck).deck_id)
                counts["notes"] += 1
                counts["cards"] += len(compiled.ordinals)
                subdecks.add(note.subdeck)
            warnings = run.raise_if_failed()
            changes = updater.changes()
            lock_path = deck_dir / lockfile.LOCK_FILE
            if frozen and changes:
                raise NeurodeckError([Problem(
                    Location(display_path(lock_path)),
                    f"{lockfile.LOCK_FILE} is out of date ({'; '.join(changes)})",
                    hint="run `neurodeck build` and commit the updated lock file with the cards",
                )])
            writer.finish(parts.unique_decks(), parts.models.values())
        except BaseException:
            writer.abandon()
            raise
        new_lock = updater.lock()
        write_apkg(writer.path, run.media.files, path, timestamp=new_lock.latest)
    if changes or not lock_path.exists():
        write_lines_atomically(lock_path, lockfile.lock_lines(new_lock))
    return Built(path, counts["notes"], counts["cards"], len(subdecks), warnings, changes)


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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return lockfile.EMPTY
    except (OSError, UnicodeDecodeError) as err:
        raise NeurodeckError([Problem(Location(display_path(path)),
                                      f"cannot read the lock file: {err}")]) from None
    return lockfile.parse_lock(display_path(path), text)


def _ordinals_text(compiled: CompiledNote) -> str:
    return ",".join(map(str, compiled.ordinals))


def _history_warnings(compiled: CompiledNote, old: lockfile.Lock) -> list[Problem]:
    """Changes to a note that Anki will not carry to learners who have the previous release."""
    note = compiled.note
    before = old.notes.get(note.id)
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
    if lost:
        numbers = ", ".join(str(int(o) + 1) for o in sorted(lost, key=int))
        problems.append(Problem(
            note.loc,
            f"note {note.id!r} no longer makes card {numbers}; learners keep that card, and it "
            "shows an error until they run Tools → Empty Cards",
            severity="warning",
            hint="keep the cloze numbers a released note had; add new deletions with new numbers",
        ))
    return problems


class _Media:
    """Image files referenced by notes: resolved inside the deck directory, or refused."""

    def __init__(self, deck_dir: Path) -> None:
        self.root = deck_dir.resolve()
        self.files: dict[str, Path] = {}  # name in the package -> file
        self._refused: set[str] = set()
        self._names: dict[str, str] = {}  # path as written -> name in the package
        self._owner: dict[str, Path] = {}

    def add(self, compiled: CompiledNote) -> list[Problem]:
        """Resolve the note's images; returns the problems with any of them."""
        problems: list[Problem] = []
        for written in compiled.images:
            if written not in self._names and written not in self._refused:
                problem = self._resolve(written, compiled.note)
                if problem is not None:
                    self._refused.add(written)
                    problems.append(problem)
        return problems

    def names_for(self, compiled: CompiledNote) -> dict[str, str]:
        """The note's mapping of image path as written to file name in the package."""
        return {w: self._names[w] for w in compiled.images if w in self._names}

    def _resolve(self, written: str, note: Note) -> Problem | None:
        try:
            target = (self.root / written).resolve() if written and ":" not in written else None
            outside = (target is None or written.startswith(("/", "\\"))
                       or not target.is_relative_to(self.root))
            missing = not outside and not target.is_file()  # type: ignore[union-attr]
        except (OSError, RuntimeError) as err:  # a symlink loop, a name too long, ...
            return Problem(note.loc, f"image {written!r} in note {note.id!r} cannot be read: {err}",
                           hint="check the path; it is relative to the deck directory")
        if outside:
            return Problem(
                note.loc, f"image {written!r} in note {note.id!r} is outside the deck directory",
                hint="copy the image into the deck directory and refer to it by a relative "
                "path such as images/figure.png",
            )
        assert target is not None
        if missing:
            return Problem(note.loc, f"image {written!r} in note {note.id!r} does not exist",
                           hint="check the path; it is relative to the deck directory")
        if self._owner.setdefault(target.name, target) != target:
            return Problem(note.loc, f"two different images are both named {target.name!r}",
                           hint="rename one: Anki keeps all media in one folder")
        self._names[written] = target.name
        self.files[target.name] = target
        return None

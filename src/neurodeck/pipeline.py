"""load → validate → compile → write. Raises one NeurodeckError with every problem found."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import lock as lockfile
from .apkg import write_apkg, write_atomically
from .compile import CompiledNote, build_package, compile_notes, notetype_hashes
from .errors import Location, NeurodeckError, Problem
from .load import display_path, load_deck
from .model import Deck
from .validate import validate


@dataclass(frozen=True)
class Checked:
    """A deck that passed validation, its compiled notes, and any warnings."""

    deck: Deck
    notes: list[CompiledNote]
    warnings: list[Problem]
    lock: lockfile.Lock  # the lock as committed, before this build

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
    """What a build wrote."""

    checked: Checked
    path: Path
    lock_changes: list[str] = field(default_factory=list)


def check(deck_dir: Path, *, strict: bool = False) -> Checked:
    """Load, validate and compile in memory; nothing is written."""
    problems: list[Problem] = []
    deck = load_deck(deck_dir, problems)
    problems += validate(deck)
    old_lock = _read_lock(deck_dir)
    problems += _history_warnings(deck, old_lock, deck_dir)
    errors = [p for p in problems if p.severity == "error" or strict]
    if errors:
        raise NeurodeckError(errors)
    warnings = [p for p in problems if p.severity == "warning"]
    return Checked(deck, compile_notes(deck), warnings, old_lock)


def build(deck_dir: Path, output: Path | None = None, *, clock: int, frozen: bool = False,
          strict: bool = False) -> Built:
    """Check, then write the .apkg atomically and refresh the lock file beside the cards.

    With `frozen`, a lock that would change is an error and nothing is written (for CI).
    """
    checked = check(deck_dir, strict=strict)
    deck, old_lock = checked.deck, checked.lock
    new_lock = lockfile.refresh(
        old_lock,
        {n.note.id: lockfile.Entry(n.hash, 0, n.note.kind, n.note.subdeck) for n in checked.notes},
        {key: lockfile.Entry(h, 0) for key, h in notetype_hashes().items()},
        clock,
    )
    changes = lockfile.describe_changes(old_lock, new_lock)
    lock_path = deck_dir / lockfile.LOCK_FILE
    if frozen and changes:
        raise NeurodeckError([Problem(
            Location(display_path(lock_path)),
            f"{lockfile.LOCK_FILE} is out of date ({'; '.join(changes)})",
            hint="run `neurodeck build` and commit the updated lock file with the cards",
        )])
    media_names, media = _collect_media(deck_dir, checked.notes)
    package = build_package(deck, checked.notes, new_lock, media_names)
    path = output or Path("build") / f"{deck.id}.apkg"
    write_apkg(package, media, path, timestamp=new_lock.latest)
    if changes or not lock_path.exists():
        write_atomically(lock_path, lockfile.format_lock(new_lock).encode("utf-8"))
    return Built(checked, path, changes)


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


def _history_warnings(deck: Deck, old: lockfile.Lock, deck_dir: Path) -> list[Problem]:
    """Changes that Anki will not carry to learners who have the previous release."""
    problems = []
    for note in deck.notes():
        before = old.notes.get(note.id)
        if before is None:
            continue
        if before.kind != note.kind:
            problems.append(Problem(
                note.loc,
                f"note {note.id!r} changed type from {before.kind} to {note.kind}; Anki will not "
                "update it for learners who have the previous release",
                severity="warning",
                hint="keep its type, or give the new version a new id and retire the old one",
            ))
        elif before.subdeck != note.subdeck:
            problems.append(Problem(
                note.loc,
                f"note {note.id!r} moved from subdeck {before.subdeck or '(root)'!r} to "
                f"{note.subdeck or '(root)'!r}; learners' existing cards stay in the old subdeck",
                severity="warning",
                hint="learners can move them in the browser; say so in the release notes",
            ))
    return problems


def _collect_media(deck_dir: Path, notes: list[CompiledNote]) -> tuple[dict[str, str], dict[str, bytes]]:
    """Resolve image references inside the deck directory; anything else is refused."""
    root = deck_dir.resolve()
    names: dict[str, str] = {}
    media: dict[str, bytes] = {}
    owner: dict[str, Path] = {}
    problems = []
    for compiled in notes:
        for written in compiled.images:
            if written in names:
                continue
            where = compiled.note.loc
            target = (root / written).resolve() if written and ":" not in written else None
            if target is None or written.startswith(("/", "\\")) or not target.is_relative_to(root):
                problems.append(Problem(
                    where, f"image {written!r} in note {compiled.note.id!r} is outside the deck "
                    "directory", hint="copy the image into the deck directory and refer to it "
                    "by a relative path such as images/figure.png",
                ))
                continue
            if not target.is_file():
                problems.append(Problem(where, f"image {written!r} in note "
                                        f"{compiled.note.id!r} does not exist",
                                        hint="check the path; it is relative to the deck directory"))
                continue
            name = target.name
            if owner.setdefault(name, target) != target:
                problems.append(Problem(where, f"two different images are both named {name!r}",
                                        hint="rename one: Anki keeps all media in one folder"))
                continue
            names[written] = name
            media[name] = target.read_bytes()
    if problems:
        raise NeurodeckError(problems)
    return names, media

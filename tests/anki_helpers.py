"""Import built .apkg files into a throwaway Anki collection and report what a learner sees.

Uses the ``anki`` PyPI package (the Rust core shared with Anki desktop), so imports,
note/card matching, rendering and scheduling are Anki's own, not re-implementations.

Typical use in a test::

    view = import_apkg(apkg_path, tmp_path)           # one-shot
    with LearnerCollection(tmp_path / "learner") as col:   # "release" scenario
        col.import_apkg(v1)
        col.answer_all(ease=4)
        log = col.import_apkg(v2)
        view = col.view()
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

# anki.collection must be imported before anki.cards (circular import inside anki).
from anki.collection import Collection, ImportAnkiPackageRequest
from anki.decks import DeckId
from anki.import_export_pb2 import (
    ImportAnkiPackageOptions,
    ImportAnkiPackageUpdateCondition,
    ImportResponse,
)
from anki.notes import NoteId

if TYPE_CHECKING:
    from anki.cards import Card
    from anki.notes import Note

__all__ = [
    "ALWAYS",
    "IF_NEWER",
    "NEVER",
    "ImportLog",
    "LearnerCard",
    "LearnerCollection",
    "LearnerNote",
    "LearnerView",
    "default_import_options",
    "import_apkg",
]

# Values for the ``update_notes`` / ``update_notetypes`` import options.
IF_NEWER = ImportAnkiPackageUpdateCondition.IMPORT_ANKI_PACKAGE_UPDATE_CONDITION_IF_NEWER
ALWAYS = ImportAnkiPackageUpdateCondition.IMPORT_ANKI_PACKAGE_UPDATE_CONDITION_ALWAYS
NEVER = ImportAnkiPackageUpdateCondition.IMPORT_ANKI_PACKAGE_UPDATE_CONDITION_NEVER
_CONDITIONS = {"if_newer": IF_NEWER, "always": ALWAYS, "never": NEVER}

# Daily limit used by answer_all() so that no card is held back by "new cards/day".
_UNLIMITED = 9_999  # Anki silently resets larger per-day values to the default (20)


@dataclass(frozen=True)
class LearnerCard:
    """One card as the learner's collection holds it, with Anki's own rendering."""

    card_id: int
    note_guid: str
    deck: str
    ord: int
    question: str  # rendered front HTML (no <style> block)
    answer: str  # rendered back HTML (no <style> block)
    ivl: int
    reps: int
    type: int  # 0=new 1=learning 2=review 3=relearning
    queue: int  # 0=new 1=learn 2=review 3=day-learn -1=suspended ...
    due: int  # new cards: position in the new queue; review cards: day number


@dataclass(frozen=True)
class LearnerNote:
    """One note as stored in the learner's collection."""

    note_id: int
    guid: str
    notetype: str
    fields: dict[str, str]
    tags: tuple[str, ...]
    mod: int


@dataclass(frozen=True)
class ImportLog:
    """Counts (and Anki note ids) from one Anki package import log."""

    new: int = 0
    updated: int = 0
    duplicate: int = 0  # matched an existing note by guid but was not updated
    conflicting: int = 0  # matched by guid but the note type differs: not updated
    first_field_match: int = 0
    missing_notetype: int = 0
    missing_deck: int = 0
    empty_first_field: int = 0
    found_notes: int = 0  # notes in the package
    new_ids: tuple[int, ...] = ()
    updated_ids: tuple[int, ...] = ()
    duplicate_ids: tuple[int, ...] = ()  # ids of the matching notes in the collection
    conflicting_ids: tuple[int, ...] = ()  # ids as they were in the package

    @classmethod
    def from_proto(cls, log: ImportResponse.Log) -> ImportLog:
        """Convert Anki's protobuf import log."""
        return cls(
            new=len(log.new),
            updated=len(log.updated),
            duplicate=len(log.duplicate),
            conflicting=len(log.conflicting),
            first_field_match=len(log.first_field_match),
            missing_notetype=len(log.missing_notetype),
            missing_deck=len(log.missing_deck),
            empty_first_field=len(log.empty_first_field),
            found_notes=log.found_notes,
            new_ids=tuple(n.id.nid for n in log.new),
            updated_ids=tuple(n.id.nid for n in log.updated),
            duplicate_ids=tuple(n.id.nid for n in log.duplicate),
            conflicting_ids=tuple(n.id.nid for n in log.conflicting),
        )

    def counts(self) -> dict[str, int]:
        """The four headline counts, handy for a single equality assert."""
        return {
            "new": self.new,
            "updated": self.updated,
            "duplicate": self.duplicate,
            "conflicting": self.conflicting,
        }


@dataclass(frozen=True)
class LearnerView:
    """Snapshot of the learner's collection plus the log of the last import."""

    decks: tuple[str, ...]  # sorted; "Default" left out while it has no cards
    notetypes: tuple[str, ...]  # sorted; unused stock note types left out
    notes: dict[str, LearnerNote]  # by guid
    cards: list[LearnerCard]  # sorted by (deck, due, ord, card_id)
    log: ImportLog = field(default_factory=ImportLog)

    def cards_of(self, guid: str) -> list[LearnerCard]:
        """Cards of one note, by ord."""
        return sorted((c for c in self.cards if c.note_guid == guid), key=lambda c: c.ord)

    def cards_in(self, deck: str) -> list[LearnerCard]:
        """Cards whose deck is exactly ``deck`` (children not included), in view order."""
        return [c for c in self.cards if c.deck == deck]


def default_import_options() -> ImportAnkiPackageOptions:
    """Anki's import-dialog defaults (fresh profile): no merge, update if newer, no scheduling."""
    return ImportAnkiPackageOptions(
        merge_notetypes=False,
        update_notes=IF_NEWER,
        update_notetypes=IF_NEWER,
        with_scheduling=False,
        with_deck_configs=False,
    )


def _build_options(options: dict[str, Any]) -> ImportAnkiPackageOptions:
    """Defaults overridden by keyword options; conditions may be "if_newer", "always", "never"."""
    opts = default_import_options()
    for key, value in options.items():
        if key not in ImportAnkiPackageOptions.DESCRIPTOR.fields_by_name:
            raise TypeError(f"unknown Anki import option: {key!r}")
        if key in ("update_notes", "update_notetypes") and isinstance(value, str):
            value = _CONDITIONS[value.lower()]
        setattr(opts, key, value)
    return opts


class LearnerCollection:
    """A real Anki collection in a temporary directory, driven like a learner would."""

    def __init__(self, path: Path) -> None:
        """Create (or open) the collection; ``path`` is a directory or an ``.anki2`` file."""
        path = Path(path)
        if path.suffix != ".anki2":
            path.mkdir(parents=True, exist_ok=True)
            path = path / "collection.anki2"
        self.path = path
        self.col = Collection(str(path))
        self._stock_notetype_ids = {nt.id for nt in self.col.models.all_names_and_ids()}
        self.last_log = ImportLog()

    def __enter__(self) -> LearnerCollection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying collection (idempotent)."""
        if self.col.db is not None:
            self.col.close()

    def import_apkg(self, apkg: Path, **options: Any) -> ImportLog:
        """Import with Anki's importer; keyword args override default_import_options() fields."""
        request = ImportAnkiPackageRequest(
            package_path=str(Path(apkg).resolve()), options=_build_options(options)
        )
        response = self.col.import_anki_package(request)
        self._forget_cached_notetypes()
        self.last_log = ImportLog.from_proto(response.log)
        return self.last_log

    def view(self) -> LearnerView:
        """The collection's current decks, note types, notes and rendered cards."""
        col = self.col
        self._forget_cached_notetypes()
        deck_names = {d.id: d.name for d in col.decks.all_names_and_ids()}
        card_count_by_deck = self._count_by("select did, count() from cards group by did")
        decks = tuple(
            sorted(
                name
                for did, name in deck_names.items()
                if not (did == 1 and name == "Default" and not card_count_by_deck.get(did))
            )
        )

        note_count_by_mid = self._count_by("select mid, count() from notes group by mid")
        notetypes = tuple(
            sorted(
                nt.name
                for nt in col.models.all_names_and_ids()
                if nt.id not in self._stock_notetype_ids or note_count_by_mid.get(nt.id)
            )
        )

        notes: dict[str, LearnerNote] = {}
        guid_by_nid: dict[int, str] = {}
        for nid in col.find_notes(""):
            note = col.get_note(nid)
            notetype = note.note_type()
            assert notetype is not None
            guid_by_nid[note.id] = note.guid
            notes[note.guid] = LearnerNote(
                note_id=note.id,
                guid=note.guid,
                notetype=notetype["name"],
                fields=dict(note.items()),
                tags=tuple(note.tags),
                mod=note.mod,
            )

        cards = [
            self._learner_card(col.get_card(cid), guid_by_nid, deck_names)
            for cid in col.find_cards("")
        ]
        cards.sort(key=lambda c: (c.deck, c.due, c.ord, c.card_id))
        return LearnerView(
            decks=decks, notetypes=notetypes, notes=notes, cards=cards, log=self.last_log
        )

    def _forget_cached_notetypes(self) -> None:
        """Drop pylib's note-type cache, which import_anki_package() leaves stale."""
        # Without this, a note type changed by an import (e.g. a merged-in field) keeps its
        # old field list in Python and Note.items() silently drops the new field.
        self.col.models._clear_cache()

    @staticmethod
    def _learner_card(
        card: Card, guid_by_nid: dict[int, str], deck_names: dict[int, str]
    ) -> LearnerCard:
        """Build a LearnerCard using Anki's real template rendering."""
        rendered = card.render_output(reload=True)
        return LearnerCard(
            card_id=card.id,
            note_guid=guid_by_nid[card.nid],
            deck=deck_names[card.did],
            ord=card.ord,
            question=rendered.question_text,
            answer=rendered.answer_text,
            ivl=card.ivl,
            reps=card.reps,
            type=card.type,
            queue=card.queue,
            due=card.due,
        )

    def answer_all(self, ease: int = 3) -> int:
        """Answer every card the scheduler offers today once (no daily limits); return count."""
        if ease not in (1, 2, 3, 4):
            raise ValueError(f"ease must be 1..4, got {ease}")
        col = self.col
        self._lift_daily_limits()
        pending = set(col.find_cards("(is:new OR is:due) -is:suspended -is:buried"))
        previous_deck = col.decks.get_current_id()
        answered: set[int] = set()
        try:
            # The v3 scheduler only studies the selected deck (and its children), so visit
            # every top-level deck in turn.
            for entry in sorted(col.decks.all_names_and_ids(), key=lambda d: d.name):
                if "::" in entry.name:
                    continue
                col.decks.select(DeckId(entry.id))
                while (card := col.sched.getCard()) is not None and card.id not in answered:
                    card.start_timer()
                    col.sched.answerCard(card, ease)  # type: ignore[arg-type]
                    answered.add(card.id)
        finally:
            col.decks.select(previous_deck)
        missed = pending - answered
        if missed:
            raise RuntimeError(
                f"scheduler did not offer {len(missed)} due card(s): {sorted(missed)}"
            )
        return len(answered)

    def _lift_daily_limits(self) -> None:
        """Raise new/review per-day limits in every deck preset so nothing is held back."""
        for conf in self.col.decks.all_config():
            conf["new"]["perDay"] = _UNLIMITED
            conf["rev"]["perDay"] = _UNLIMITED
            self.col.decks.update_config(conf)

    def note(self, guid: str) -> Note:
        """The live anki Note with this guid, e.g. to simulate a learner's own edit."""
        assert self.col.db is not None, "collection is closed"
        nid = self.col.db.scalar("select id from notes where guid = ?", guid)
        if nid is None:
            raise KeyError(guid)
        return self.col.get_note(NoteId(nid))

    def review_logs(self) -> dict[int, int]:
        """Card id -> number of review log entries."""
        return self._count_by("select cid, count() from revlog group by cid")

    def _count_by(self, sql: str) -> dict[int, int]:
        """Run a two-column ``select key, count()`` query into a dict."""
        assert self.col.db is not None, "collection is closed"
        return {int(key): int(count) for key, count in self.col.db.all(sql)}


def import_apkg(apkg: Path, tmp_path: Path, **options: Any) -> LearnerView:
    """Import ``apkg`` into a brand-new collection under ``tmp_path`` and return the view."""
    Path(tmp_path).mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="learner-", dir=tmp_path))
    with LearnerCollection(directory) as learner:
        learner.import_apkg(apkg, **options)
        return learner.view()

"""What changed between two releases: notes added, changed and removed, by note id.

Both sides are Snapshots (what Anki gets), matched by GUID as Anki matches them. A deck
directory on either side names its notes by id; notes only a package knows are shown by GUID
and the text of their first field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import printable
from .markup import html_to_text
from .notetypes import CLOZE_RE
from .snapshot import PackagedNote, Snapshot
from .source_links import without_origin

# Parts of a note a change can touch, in the order they are reported.
PARTS = ("front", "back", "text", "extra", "source", "mine", "tags", "deck", "type")
_MD_SPECIAL_RE = re.compile(r"([\\`*_\[\]<>#|])")


@dataclass(frozen=True)
class NoteRef:
    """How a change names a note: its id when a deck directory knows it, else its GUID."""

    guid: str
    note_id: str | None
    subdeck: str
    text: str  # the first field as plain text, shortened

    def __str__(self) -> str:
        return repr(self.note_id) if self.note_id else f"GUID {self.guid} ({self.text!r})"


@dataclass(frozen=True)
class NoteChange:
    """A note on both sides that differs in what a learner sees."""

    ref: NoteRef
    parts: tuple[str, ...]  # from PARTS
    old: PackagedNote
    new: PackagedNote


@dataclass(frozen=True)
class DeckDiff:
    """Every note-level difference between an old and a new release, in curriculum order."""

    old: Snapshot
    new: Snapshot
    added: tuple[NoteRef, ...]
    changed: tuple[NoteChange, ...]
    removed: tuple[NoteRef, ...]

    @property
    def empty(self) -> bool:
        """True when learners would see no difference in any note."""
        return not (self.added or self.changed or self.removed)


def diff_snapshots(old: Snapshot, new: Snapshot) -> DeckDiff:
    """Compare two sides note by note, matching GUIDs as Anki's importer does."""
    ids = {n.guid: n.note_id for side in (old, new) for n in side.notes if n.note_id}
    added, changed = [], []
    for note in new.notes:
        before = old.by_guid.get(note.guid)
        if before is None:
            added.append(note_ref(new, note, ids))
        elif parts := changed_parts(old, before, new, note):
            changed.append(NoteChange(note_ref(new, note, ids), parts, before, note))
    removed = [note_ref(old, n, ids) for n in old.notes if n.guid not in new.by_guid]
    return DeckDiff(old, new, tuple(added), tuple(changed), tuple(removed))


def note_ref(side: Snapshot, note: PackagedNote, ids: Mapping[str, str]) -> NoteRef:
    """Name a note, borrowing its id from the other side when only that side knows it."""
    # The text as learners read it in Anki's browser: cloze markers show their answers. A
    # diagram's first field is mask markup, so it is named by its header (or image) instead.
    first = CLOZE_RE.sub(lambda m: m.group(2).split("::")[0], note.fields[0] if note.fields else "")
    if side.notetype_of(note).key == "occlusion":
        fields = side.fields_of(note)
        first = "Diagram: " + (fields.get("header") or fields.get("image", ""))
    return NoteRef(
        note.guid,
        note.note_id or ids.get(note.guid),
        side.subdeck_of(note),
        shorten(html_to_text(first)),
    )


def changed_parts(
    old: Snapshot, before: PackagedNote, new: Snapshot, after: PackagedNote
) -> tuple[str, ...]:
    """Which parts of a note differ; a modification time alone is not a change."""
    old_fields, new_fields = old.fields_of(before), new.fields_of(after)
    # The link back to the fact set moves with every line inserted above and with every
    # release's tag; it is generated, never an edit (see source_links.py).
    for fields in (old_fields, new_fields):
        for key, value in fields.items():
            fields[key] = without_origin(value)
    parts = {
        key
        for key in old_fields.keys() | new_fields.keys()
        if old_fields.get(key, "") != new_fields.get(key, "")
    }
    if set(before.tags) != set(after.tags):
        parts.add("tags")
    if old.subdeck_of(before) != new.subdeck_of(after):
        parts.add("deck")
    if before.notetype_id != after.notetype_id:  # Anki compares note types by id
        parts.add("type")
    return tuple(sorted(parts, key=lambda p: (PARTS.index(p) if p in PARTS else len(PARTS), p)))


def shorten(text: str, width: int = 60) -> str:
    """At most `width` characters, cut at a word with an ellipsis."""
    if len(text) <= width:
        return text
    return text[: width - 1].rsplit(" ", 1)[0].rstrip(" ,.;:") + "…"


def describe_change(change: NoteChange, diff: DeckDiff) -> str:
    """The parts that changed, with before → after for the deck and the note type."""
    words = []
    for part in change.parts:
        if part == "deck":
            words.append(f"deck ({_deck(diff.old, change.old)} → {_deck(diff.new, change.new)})")
        elif part == "type":
            words.append(
                f"type ({diff.old.notetype_of(change.old).key} → "
                f"{diff.new.notetype_of(change.new).key})"
            )
        else:
            words.append(part)
    return ", ".join(words)


def _deck(side: Snapshot, note: PackagedNote) -> str:
    return side.subdeck_of(note) or "(root)"


def _side(side: Snapshot) -> str:
    return f"{side.version or 'unversioned'} ({printable(side.source)})"


def summary(diff: DeckDiff) -> str:
    """One line: which releases, and how many notes were added, changed and removed."""
    counts = f"{len(diff.added)} added, {len(diff.changed)} changed, {len(diff.removed)} removed"
    return f"{diff.new.deck_name}: {_side(diff.old)} → {_side(diff.new)}: {counts}"


def format_text(diff: DeckDiff) -> str:
    """The diff for a terminal: a summary line, then one line per note."""
    sections = (
        ("Added", [f"{_ref_text(r)}  [{r.subdeck or '(root)'}] {r.text}" for r in diff.added]),
        ("Changed", [f"{_ref_text(c.ref)}: {describe_change(c, diff)}" for c in diff.changed]),
        ("Removed", [f"{_ref_text(r)}  [{r.subdeck or '(root)'}] {r.text}" for r in diff.removed]),
    )
    lines = [summary(diff)]
    for title, items in sections:
        if items:
            lines += ["", f"{title}:", *(f"  {item}" for item in items)]
    return "\n".join(lines) + "\n"


def _ref_text(ref: NoteRef) -> str:
    return ref.note_id or f"GUID {ref.guid}"


def format_markdown(diff: DeckDiff) -> str:
    """The diff as a Markdown changelog section, for release notes."""
    old, new = diff.old.version or "the previous release", diff.new.version or "this release"
    lines = [f"## Changes from {md_escape(old)} to {md_escape(new)}", ""]
    if diff.empty:
        return "\n".join([*lines, "No note changed.", ""])
    lines += [_counts_sentence(diff), ""]
    sections = (
        (
            "Added",
            [
                f"- {_ref_md(r)} ({md_escape(r.subdeck or '(root)')}): {md_escape(r.text)}"
                for r in diff.added
            ],
        ),
        (
            "Changed",
            [
                f"- {_ref_md(c.ref)} ({md_escape(c.ref.subdeck or '(root)')}): "
                f"{md_escape(c.ref.text)} — {md_escape(describe_change(c, diff))}"
                for c in diff.changed
            ],
        ),
        (
            "Removed",
            [
                f"- {_ref_md(r)} ({md_escape(r.subdeck or '(root)')}): {md_escape(r.text)}"
                for r in diff.removed
            ],
        ),
    )
    for title, items in sections:
        if items:
            lines += [f"### {title}", "", *items, ""]
    return "\n".join(lines)


def _counts_sentence(diff: DeckDiff) -> str:
    counts = [
        (n, what)
        for n, what in (
            (len(diff.added), "added"),
            (len(diff.changed), "changed"),
            (len(diff.removed), "removed"),
        )
        if n
    ]
    (first, what), rest = counts[0], counts[1:]
    parts = [f"{first} note{'s' if first != 1 else ''} {what}", *(f"{n} {w}" for n, w in rest)]
    return ", ".join(parts) + "."


def _ref_md(ref: NoteRef) -> str:
    return code_span(ref.note_id) if ref.note_id else f"GUID {code_span(ref.guid)}"


def md_escape(text: str) -> str:
    """Text that Markdown shows as typed."""
    return _MD_SPECIAL_RE.sub(r"\\\1", text)


def code_span(text: str) -> str:
    """An inline code span that survives backticks in `text` (GUIDs may contain them)."""
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def diff_to_json(diff: DeckDiff) -> dict[str, object]:
    """The diff as JSON-ready data, for tools."""

    def ref(r: NoteRef) -> dict[str, object]:
        return {"id": r.note_id, "guid": r.guid, "deck": r.subdeck, "text": r.text}

    def side(s: Snapshot) -> dict[str, object]:
        return {
            "source": s.source,
            "deck": s.deck_name,
            "version": s.version,
            "notes": len(s.notes),
        }

    return {
        "old": side(diff.old),
        "new": side(diff.new),
        "added": [ref(r) for r in diff.added],
        "changed": [{**ref(c.ref), "changed": list(c.parts)} for c in diff.changed],
        "removed": [ref(r) for r in diff.removed],
    }

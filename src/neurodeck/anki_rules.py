"""What Anki does with a release's changes, for learners who have the previous release.

Anki's importer matches notes by GUID and never deletes one; it updates a note only when the
package's modification time is newer, and not at all when the note changed its note type;
it leaves existing cards in their deck, matches decks by name, and keeps review history
with the card number. A media file whose name starts with `_` or `latex-` is copied only
when the learner has no file of that name, so such a changed file never arrives; any other
changed file arrives under a new name, but only for the notes the import updates (so the
lock moves the time of every note that shows a changed image). (tests/test_release_scenario.py,
test_media_updates.py and test_anki_helpers.py show each of these in Anki itself.)

Each rule is written here once, in the words a deck author reads: `build` warns with them,
and `release-check` judges a release by them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Set
from typing import NamedTuple


class Rule(NamedTuple):
    """One way a release's change fails to reach learners as intended."""

    key: str
    consequence: str  # what Anki does, said after the change itself
    hint: str  # what the deck author can do instead
    tell_learners: str = ""  # what learners should do, with {notes}; "" when nothing

    def message(self, change: str) -> str:
        """The change, then what Anki does about it."""
        return f"{change}: {self.consequence}" if self.consequence else change


TYPE_CHANGED = Rule(
    "type-changed",
    "Anki will not update it for learners who have the previous release",
    "keep its type, or give the new version a new id and retire the old one",
    "These notes changed type and Anki keeps your old version. To get the new one, delete "
    "the old note and import the deck again: {notes}.",
)
MOVED = Rule(
    "moved",
    "learners' existing cards stay in the old subdeck",
    "keep it in its subdeck, or tell learners to move the cards themselves",
    "These notes moved to another subdeck, but your existing cards stay where they were. "
    "Move them in the browser with Change Deck: {notes}.",
)
CARD_LOST = Rule(
    "cloze-removed",
    "learners keep that card, and it shows an error until they run Tools → Empty Cards",
    "keep the cloze numbers a released note had; add new deletions with new numbers",
    "Some cloze cards were dropped ({notes}); Anki leaves them as empty cards. Remove them "
    "with Tools → Empty Cards.",
)
CLOZE_RENUMBERED = Rule(
    "cloze-renumbered",
    "review history stays with the number, so it now belongs to different text",
    "keep each deletion's number; give new deletions new numbers",
    "Cloze numbers moved in {notes}; the review history of those cards now belongs to "
    "another blank. Reset (Forget) them to relearn them.",
)
OCCLUSION_REMOVED = Rule(
    "occlusion-removed",
    "learners keep its card and history, and the card shows an error until they run "
    "Tools → Empty Cards",
    "keep the occlusion, or say so in the release notes and tell learners to run Tools → "
    "Empty Cards (the lock keeps its card number, so no other region ever gets its history)",
    "Some regions left their diagrams ({notes}); Anki keeps their cards, which now show an "
    "error. Remove them with Tools → Empty Cards.",
)
OCCLUSION_RENUMBERED = Rule(
    "occlusion-renumbered",
    "review history stays with the number, so it now belongs to another region",
    "restore the `occlusion` lines of the lock from the last release and build again",
    "Diagram regions changed card numbers in {notes}; the review history of those cards now "
    "belongs to another region. Reset (Forget) them to relearn them.",
)
DECK_RENAMED = Rule(
    "deck-renamed",
    "Anki matches decks by name, so learners' existing cards stay in the old deck and new "
    "cards go to a second one",
    "keep the deck's name once it is released, or ask learners to rename their deck before "
    "importing",
    "The deck was renamed ({notes}). Before importing, rename your copy of the deck to the "
    "new name, or your existing cards stay under the old one.",
)
REMOVED = Rule(
    "removed",
    "Anki never deletes a note on import, so learners who have it keep it",
    "ship it once more with `retired: true` (it gets the `retired` tag), and remove it in a "
    "later release",
    "These notes left the deck. Anki keeps your copies; delete or suspend them if you no "
    "longer want them: {notes}.",
)
RENAMED = Rule(
    "renamed",
    "Anki sees a new note, and learners keep the old one and its review history, so they "
    "study both",
    "give the note back its old id: a note id is permanent",
    "These notes were replaced by a new copy, so you will see both. Delete the old copy: "
    "{notes}.",
)
NOTETYPE_SCHEMA = Rule(
    "notetype-schema",
    "Anki will not update its notes for learners who have the previous release",
    "keep fields and templates as they are; add them only with a new note type",
    "Note types changed their fields or templates ({notes}). When you import, turn on "
    "“Merge note types” and set “Update notes” to “Always”, or notes of these types will "
    "keep their old content.",
)
NOT_NEWER = Rule(
    "not-newer",
    "its modification time did not move forward, so Anki will skip the change",
    "build with `neurodeck build` so the lock records the change, and commit the lock",
)
NOTETYPE_NOT_NEWER = NOT_NEWER._replace(key="notetype-not-newer")
TOUCHED = Rule(
    "touched",
    "Anki will update it and overwrite learners' own edits on it (“My notes”)",
    "the lock lost this note's time: rebuild it from the last release with "
    "`neurodeck lock --from OLD.apkg`, then build again",
)
STATIC_MEDIA_CHANGED = Rule(
    "static-media-changed",
    "Anki copies a file whose name starts with `_` (or `latex-`) only when the learner has no "
    "file of that name, so learners who have the previous release keep the old one",
    "give the changed file a new name (such as _diagram-2.png) and refer to that name",
    "Some files changed that Anki does not replace ({notes}). To get them, delete your "
    "copies from the collection's media folder and import the deck again.",
)
UPDATED = Rule(
    "updated",
    "Anki replaces the whole note, so learners' own edits on it (“My notes”, a diagram's "
    "“Comments”) are emptied",
    "nothing to do: list these notes in the release notes (release-check tells learners)",
    "These notes were updated. Anki replaces an updated note whole, so whatever you wrote in "
    "its “My notes” (or a diagram's “Comments”) is emptied: copy it out before you import: "
    "{notes}.",
)
RETIRED = Rule(
    "retired",
    "",
    "it can be removed in the next release",
    "Some notes are retired: search `tag:retired` in the browser and delete or suspend "
    "them: {notes}.",
)

RULES = {
    rule.key: rule
    for rule in (
        REMOVED,
        RENAMED,
        RETIRED,
        UPDATED,
        NOTETYPE_SCHEMA,
        TYPE_CHANGED,
        CARD_LOST,
        CLOZE_RENUMBERED,
        OCCLUSION_REMOVED,
        OCCLUSION_RENUMBERED,
        DECK_RENAMED,
        MOVED,
        STATIC_MEDIA_CHANGED,
        NOT_NEWER,
        NOTETYPE_NOT_NEWER,
        TOUCHED,
    )
}


class NoteShape(NamedTuple):
    """What Anki's rules look at in a note: its type, its subdeck and its card numbers."""

    kind: str  # the note type, as the author names it (basic, reversed, cloze, ...)
    subdeck: str  # "" for the root deck
    cards: Set[int]  # 0-based card ordinals (cloze number - 1)
    regions: Mapping[int, str] | None = None  # a diagram's occlusion id by card ordinal


def note_changes(note: str, before: NoteShape, after: NoteShape) -> Iterator[tuple[Rule, str, str]]:
    """The rules a released note's change breaks: (rule, the change in words, its detail).

    `note` names the note as the author knows it (its id, quoted).
    """
    if before.kind != after.kind:
        change = f"note {note} changed type from {before.kind} to {after.kind}"
        yield TYPE_CHANGED, change, f"{before.kind} → {after.kind}"
        return  # Anki ignores the rest of this note's changes
    if before.subdeck != after.subdeck:
        was, now = before.subdeck or "(root)", after.subdeck or "(root)"
        yield MOVED, f"note {note} moved from subdeck {was!r} to {now!r}", f"{was} → {now}"
    if (lost := sorted(set(before.cards) - set(after.cards))) and before.regions is not None:
        names = ", ".join(f"{before.regions.get(o, f'c{o + 1}')!r} (c{o + 1})" for o in lost)
        yield OCCLUSION_REMOVED, f"diagram {note} lost occlusion {names}", names
    elif lost:
        numbers = ", ".join(f"c{ordinal + 1}" for ordinal in lost)
        yield CARD_LOST, f"note {note} lost cloze deletion {numbers}", numbers


def deck_renamed(before: str, after: str) -> str:
    """The change that DECK_RENAMED judges."""
    return f"the deck was renamed from {before!r} to {after!r}"


def static_media(name: str) -> bool:
    """Whether Anki copies this media file only when the learner has none of its name, and
    never under another name (rslib import media.rs `is_static`)."""
    return name.startswith(("_", "latex-"))

"""Judge a release by Anki's import rules: what will not reach learners, or will hurt them.

Anki matches notes by GUID and never deletes one on import; it skips a note whose
modification time is not newer, refuses notes whose note type changed its fields or templates
(or is another note type altogether), leaves existing cards in their old deck, and keeps
review history with the card number, not the cloze text. Each rule below is one of these.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .compile import RETIRED_TAG
from .diff import DeckDiff, NoteChange, NoteRef, diff_snapshots, note_ref, plain_text
from .errors import Location, Problem, Severity, printable
from .occlusion import answers_by_number
from .snapshot import NoteType, PackagedNote, Snapshot
from .validate import CLOZE_RE

# A note shipped with this tag has been announced as retired; removing it later is expected.
_SEMVER_MAJOR_RE = re.compile(r"v?(\d+)(?:\.\d+)*(?:[-+].*)?")

# What learners should do about each kind of finding; {notes} lists the notes concerned.
_TELL_LEARNERS = {
    "removed": "These notes left the deck. Anki keeps your copies; delete or suspend them if "
               "you no longer want them: {notes}.",
    "renamed": "These notes were replaced by a new copy, so you will see both. Delete the old "
               "copy: {notes}.",
    "retired": "Some notes are retired: search `tag:retired` in the browser and delete or "
               "suspend them: {notes}.",
    "notetype-schema": "Note types changed their fields or templates ({notes}). When you import, "
                       "turn on “Merge note types” and set “Update notes” to “Always”, or notes "
                       "of these types will keep their old content.",
    "type-changed": "These notes changed type and Anki keeps your old version. To get the new "
                    "one, delete the old note and import the deck again: {notes}.",
    "cloze-removed": "Some cloze cards were dropped ({notes}); Anki leaves them as empty cards. "
                     "Remove them with Tools → Empty Cards.",
    "cloze-renumbered": "Cloze numbers moved in {notes}; the review history of those cards "
                        "now belongs to another blank. Reset (Forget) them to relearn them.",
    "occlusion-removed": "Some regions left their diagrams ({notes}); Anki keeps their cards, "
                         "which now show an error. Remove them with Tools → Empty Cards.",
    "occlusion-renumbered": "Diagram regions changed card numbers in {notes}; the review "
                            "history of those cards now belongs to another region. Reset "
                            "(Forget) them to relearn them.",
    "deck-renamed": "The deck was renamed ({notes}). Before importing, rename your copy of the "
                    "deck to the new name, or your existing cards stay under the old one.",
    "moved": "These notes moved to another subdeck, but your existing cards stay where they "
             "were. Move them in the browser with Change Deck: {notes}.",
}


@dataclass(frozen=True)
class Finding:
    """One change that Anki will not carry to learners as intended."""

    rule: str  # a key of _TELL_LEARNERS, or "not-newer" / "notetype-not-newer" / "touched"
    where: Location
    message: str
    hint: str
    subject: str = ""  # how learners recognise the note or note type
    breaking: bool = True


@dataclass(frozen=True)
class Verdict:
    """The findings for a release, and whether its version allows breaking changes."""

    diff: DeckDiff
    findings: tuple[Finding, ...]

    @property
    def breaking(self) -> list[Finding]:
        """Findings that hurt learners who have the old release."""
        return [f for f in self.findings if f.breaking]

    @property
    def major_raised(self) -> bool:
        """True when the new version's major number is above the old one's (semver)."""
        old, new = major(self.diff.old.version), major(self.diff.new.version)
        return old is not None and new is not None and new > old

    @property
    def passed(self) -> bool:
        """No breaking change, or a major version announcing them."""
        return not self.breaking or self.major_raised

    def problems(self) -> list[Problem]:
        """The findings as located problems: errors while they would fail the check."""
        severity: Severity = "warning" if self.major_raised else "error"
        return [Problem(f.where, f.message, hint=f.hint,
                        severity=severity if f.breaking else "warning") for f in self.findings]

    def tell_learners(self) -> list[str]:
        """One instruction per kind of finding, naming the notes it concerns."""
        subjects: dict[str, list[str]] = {}
        for finding in self.findings:
            if finding.rule in _TELL_LEARNERS:
                subjects.setdefault(finding.rule, []).append(finding.subject)
        return [_TELL_LEARNERS[rule].format(notes=", ".join(dict.fromkeys(names)))
                for rule, names in subjects.items()]


def major(version: str | None) -> int | None:
    """The major number of a semver version such as 1.4.2 (None when it is not one)."""
    match = _SEMVER_MAJOR_RE.fullmatch(version.strip()) if version else None
    return int(match.group(1)) if match else None


def check_release(old: Snapshot, new: Snapshot) -> Verdict:
    """Every finding for releasing `new` to learners who have `old`."""
    diff = diff_snapshots(old, new)
    findings = [*_version(diff), *_deck_renamed(diff), *_removed(diff), *_retired(diff),
                *_notetypes(old, new)]
    for change in diff.changed:
        findings += _changed(diff, change)
    findings += _touched(diff)
    return Verdict(diff, tuple(findings))


def _touched(diff: DeckDiff) -> Iterator[Finding]:
    """Notes whose content is unchanged but whose modification time moved forward: Anki
    updates them anyway, and learners lose their own edits on them ("My notes")."""
    changed = {c.new.guid for c in diff.changed}
    for note in diff.new.notes:
        before = diff.old.by_guid.get(note.guid)
        if before is None or note.guid in changed or note.mod <= before.mod:
            continue
        ref = note_ref(diff.new, note, {})
        yield Finding(
            "touched", _where(diff.new, note),
            f"note {ref} did not change but its modification time moved forward: Anki will "
            "update it and overwrite learners' own edits on it (“My notes”)",
            "the lock lost this note's time: rebuild it from the last release with "
            "`neurodeck lock --from OLD.apkg`, then build again", _quoted(ref))


def _where(side: Snapshot, note: PackagedNote) -> Location:
    return note.loc or Location(side.source)


def _deck_yaml(side: Snapshot) -> Location:
    return Location(f"{side.source}/deck.yaml" if side.deck_slug else side.source)


def _quoted(ref: NoteRef) -> str:
    return f"“{ref.text}”"


def _deck_renamed(diff: DeckDiff) -> Iterator[Finding]:
    old, new = diff.old.deck_name, diff.new.deck_name
    if old and new and old != new:
        where = _deck_yaml(diff.new)
        yield Finding(
            "deck-renamed", where,
            f"the deck was renamed from {old!r} to {new!r}: Anki matches decks by name, so "
            "learners' existing cards stay in the old deck and new cards go to a second one",
            "keep the deck's name once it is released", f"“{old}” → “{new}”")


def _removed(diff: DeckDiff) -> Iterator[Finding]:
    def identity(side: Snapshot, note: PackagedNote) -> tuple[str, str]:
        return plain_text(note.fields[0] if note.fields else ""), side.notetype_of(note).key

    added = {identity(diff.new, diff.new.by_guid[r.guid]): r for r in diff.added}
    for ref in diff.removed:
        note = diff.old.by_guid[ref.guid]
        if RETIRED_TAG in note.tags:
            continue  # announced in the release that retired it
        twin = added.get(identity(diff.old, note))
        if twin is not None:
            yield Finding(
                "renamed", _where(diff.new, diff.new.by_guid[twin.guid]),
                f"note {ref} seems to be renamed to {twin}: Anki sees a new note, and learners "
                "keep the old one and its review history, so they study both",
                "give the note back its old id: a note id is permanent", _quoted(ref))
        else:
            yield Finding(
                "removed", _where(diff.old, note),
                f"note {ref} was removed: Anki never deletes notes on import, so learners keep it",
                "ship it once more with `retired: true` (it gets the `retired` tag), and remove "
                "it in a later release", _quoted(ref))


def _retired(diff: DeckDiff) -> Iterator[Finding]:
    for note in diff.new.notes:
        before = diff.old.by_guid.get(note.guid)
        if RETIRED_TAG in note.tags and before is not None and RETIRED_TAG not in before.tags:
            ref = note_ref(diff.new, note, {})
            yield Finding("retired", _where(diff.new, note), f"note {ref} is retired",
                          "it can be removed in the next release", _quoted(ref), breaking=False)


def _version(diff: DeckDiff) -> Iterator[Finding]:
    old, new = diff.old.version, diff.new.version
    if not diff.empty and old == new:
        where = _deck_yaml(diff.new)
        yield Finding("version", where, f"notes changed but the version is still {new}",
                      "raise `version` in deck.yaml so learners can tell the releases apart",
                      breaking=False)


def _notetypes(old: Snapshot, new: Snapshot) -> Iterator[Finding]:
    for mid, before in old.notetypes.items():
        after = new.notetypes.get(mid)
        if after is None:
            continue
        where = Location(new.source)
        if schema := _schema_changes(before, after):
            yield Finding(
                "notetype-schema", where,
                f"note type {after.name!r} changed its {schema}: Anki will not update its notes "
                "for learners who have the previous release",
                "keep fields and templates as they are; add them only with a new note type",
                f"“{after.name}”")
        elif (before.templates, before.css, before.name) != (
                after.templates, after.css, after.name) and after.mod <= before.mod:
            yield Finding(
                "notetype-not-newer", where,
                f"note type {after.name!r} changed its templates or styling but its "
                "modification time did not move forward: Anki will skip the change",
                "build with `neurodeck build` so the lock records the change, and commit the lock")


def _schema_changes(before: NoteType, after: NoteType) -> str:
    parts = []
    for what, old, new in (("fields", before.fields, after.fields),
                           ("templates", before.templates, after.templates)):
        if [(x.id, x.name) for x in old] != [(x.id, x.name) for x in new]:
            gone = [x.name for x in old if x.id not in {y.id for y in new}]
            came = [x.name for x in new if x.id not in {y.id for y in old}]
            detail = "; ".join(filter(None, (
                f"removed {', '.join(gone)}" if gone else "",
                f"added {', '.join(came)}" if came else "",
            ))) or "renamed or reordered"
            parts.append(f"{what} ({detail})")
    return " and ".join(parts)


def _changed(diff: DeckDiff, change: NoteChange) -> Iterator[Finding]:
    old, new, ref = diff.old, diff.new, change.ref
    where = _where(new, change.new)
    if "type" in change.parts:
        yield Finding(
            "type-changed", where,
            f"note {ref} changed type from {old.notetype_of(change.old).key} to "
            f"{new.notetype_of(change.new).key}: Anki refuses to update it for learners",
            "keep its type, or give the new version a new id and retire the old one",
            _quoted(ref))
        return  # Anki ignores the rest of this note's changes
    if "deck" in change.parts:
        before = old.subdeck_of(change.old) or "(root)"
        after = new.subdeck_of(change.new) or "(root)"
        yield Finding(
            "moved", where,
            f"note {ref} moved from subdeck {before!r} to {after!r}: learners' existing cards "
            f"stay in {before!r}",
            "keep it in its subdeck, or tell learners to move the cards themselves",
            f"{_quoted(ref)} ({before} → {after})")
    if old.notetype_of(change.old).key == new.notetype_of(change.new).key == "occlusion":
        yield from _occlusions(old, new, change, where)
    elif old.notetype_of(change.old).is_cloze and new.notetype_of(change.new).is_cloze:
        yield from _cloze(old, new, change, where)
    visible = set(change.parts) - {"deck"}
    if visible and change.new.mod <= change.old.mod:
        yield Finding(
            "not-newer", where,
            f"note {ref} changed ({', '.join(sorted(visible))}) but its modification time did "
            "not move forward: Anki will skip the change",
            "build with `neurodeck build` so the lock records the change, and commit the lock")


def _cloze(old: Snapshot, new: Snapshot, change: NoteChange, where: Location) -> Iterator[Finding]:
    before = _deletions(old.fields_of(change.old).get("text", ""))
    after = _deletions(new.fields_of(change.new).get("text", ""))
    ref = change.ref
    gone = sorted(before.keys() - after.keys())
    if gone:
        numbers = ", ".join(f"c{n}" for n in gone)
        yield Finding(
            "cloze-removed", where,
            f"note {ref} lost cloze deletion {numbers}: learners keep the card, now empty",
            "keep the deletion numbers, or tell learners to run Tools → Empty Cards",
            f"{_quoted(ref)} {numbers}")
    moves = [
        f"c{n} → c{m}"
        for n in sorted(before.keys() & after.keys()) if not before[n] <= after[n]
        for m in sorted(after) if m != n and before[n] <= after[m]
    ]
    if moves:
        yield Finding(
            "cloze-renumbered", where,
            f"note {ref} renumbered its cloze deletions ({', '.join(moves)}): review history "
            "stays with the number, so it now belongs to different text",
            "keep each deletion's number; give new deletions new numbers", _quoted(ref))


def _occlusions(old: Snapshot, new: Snapshot, change: NoteChange,
                where: Location) -> Iterator[Finding]:
    """A diagram's regions are known by the occlusion ids its Back Extra records per card."""
    before = answers_by_number(old.fields_of(change.old).get("back_extra", ""))
    after = answers_by_number(new.fields_of(change.new).get("back_extra", ""))
    ref = change.ref
    if gone := sorted(before.keys() - after.keys()):
        names = ", ".join(f"{before[n]!r} (c{n})" for n in gone)
        yield Finding(
            "occlusion-removed", where,
            f"diagram {ref} lost occlusion {names}: learners keep its card and history, and "
            "the card shows an error until they run Tools → Empty Cards",
            "keep the occlusion, or tell learners to run Tools → Empty Cards",
            f"{_quoted(ref)} {names}")
    numbers_after = {key: n for n, key in after.items()}
    moves = [f"{key!r} c{n} → c{numbers_after[key]}" for n, key in sorted(before.items())
             if key in numbers_after and numbers_after[key] != n]
    if moves:
        yield Finding(
            "occlusion-renumbered", where,
            f"diagram {ref} gave its regions other card numbers ({', '.join(moves)}): review "
            "history stays with the number, so it now belongs to another region",
            "restore the `occlusion` lines of the lock from the last release and build again",
            _quoted(ref))


def _deletions(text: str) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for number, body in CLOZE_RE.findall(text):
        found.setdefault(int(number), set()).add(plain_text(body.split("::")[0]))
    return found


def format_verdict(verdict: Verdict) -> str:
    """The verdict for a terminal: what breaks, what to do, and what to tell learners."""
    diff = verdict.diff
    old, new = diff.old.version or "unversioned", diff.new.version or "unversioned"
    lines = [printable(f"{diff.new.deck_name}: {old} ({diff.old.source}) → {new} "
                       f"({diff.new.source})")]
    lines += [str(p) for p in verdict.problems()]
    count = len(verdict.breaking)
    if not count:
        lines.append(f"No breaking changes: learners who have {old} get every change in {new}.")
    elif verdict.major_raised:
        lines.append(f"{count} breaking change{'s' if count != 1 else ''}, announced by the "
                     f"major version {new}.")
    else:
        lines.append(f"{count} breaking change{'s' if count != 1 else ''}: fix "
                     f"{'them' if count != 1 else 'it'}, or raise the major version in deck.yaml "
                     f"(now {new}) to release {'them' if count != 1 else 'it'} anyway.")
    if tell := verdict.tell_learners():
        lines += ["", "Tell learners:", *(f"- {line}" for line in tell)]
    return "\n".join(lines) + "\n"


def verdict_to_json(verdict: Verdict) -> dict[str, object]:
    """The verdict as JSON-ready data, for CI."""
    return {
        "ok": verdict.passed,
        "old_version": verdict.diff.old.version,
        "new_version": verdict.diff.new.version,
        "major_raised": verdict.major_raised,
        "breaking": len(verdict.breaking),
        "findings": [{**p.to_json(), "rule": f.rule, "breaking": f.breaking}
                     for f, p in zip(verdict.findings, verdict.problems(), strict=True)],
        "tell_learners": verdict.tell_learners(),
    }

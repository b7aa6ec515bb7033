"""Judge a release by Anki's import rules (anki_rules.py): what will not reach learners, or
will hurt them. Each finding names the rule it breaks, in that rule's words.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from . import anki_rules
from .anki_rules import RULES, Rule
from .compile import RETIRED_TAG
from .diff import DeckDiff, NoteChange, NoteRef, diff_snapshots, note_ref
from .errors import Location, Problem, Severity, printable
from .markup import html_to_text
from .notetypes import CLOZE_RE
from .occlusion import answers_by_number
from .snapshot import NoteType, PackagedNote, Snapshot

_SEMVER_MAJOR_RE = re.compile(r"v?(\d+)(?:\.\d+)*(?:[-+].*)?")


@dataclass(frozen=True)
class Finding:
    """One change that Anki will not carry to learners as intended."""

    rule: str  # a key of anki_rules.RULES, or "version"
    where: Location
    message: str
    hint: str
    subject: str = ""  # how learners recognise the note or note type
    breaking: bool = True
    # False for what only learners need to hear (an ordinary update), which would otherwise
    # list every edited note as a problem line.
    listed: bool = True


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

    @property
    def listed(self) -> list[Finding]:
        """Findings shown as problems (every finding but ordinary updates)."""
        return [f for f in self.findings if f.listed]

    def problems(self) -> list[Problem]:
        """The listed findings as located problems: errors while they would fail the check."""
        severity: Severity = "warning" if self.major_raised else "error"
        return [
            Problem(f.where, f.message, hint=f.hint, severity=severity if f.breaking else "warning")
            for f in self.listed
        ]

    def tell_learners(self) -> list[str]:
        """One instruction per kind of finding, naming the notes it concerns."""
        subjects: dict[str, list[str]] = {}
        for finding in self.findings:
            if finding.rule in RULES and RULES[finding.rule].tell_learners:
                subjects.setdefault(finding.rule, []).append(finding.subject)
        return [
            RULES[rule].tell_learners.format(notes=", ".join(dict.fromkeys(names)))
            for rule, names in subjects.items()
        ]


def major(version: str | None) -> int | None:
    """The major number of a semver version such as 1.4.2 (None when it is not one)."""
    match = _SEMVER_MAJOR_RE.fullmatch(version.strip()) if version else None
    return int(match.group(1)) if match else None


def check_release(old: Snapshot, new: Snapshot) -> Verdict:
    """Every finding for releasing `new` to learners who have `old`."""
    return judge(diff_snapshots(old, new))


def judge(diff: DeckDiff) -> Verdict:
    """Every finding for releasing the diff's new side to learners who have its old side."""
    old, new = diff.old, diff.new
    findings = [
        *_version(diff),
        *_deck_renamed(diff),
        *_removed(diff),
        *_retired(diff),
        *_notetypes(old, new),
        *_static_media(old, new),
    ]
    for change in diff.changed:
        findings += _changed(diff, change)
    findings += _touched(diff)
    return Verdict(diff, tuple(findings))


def _touched(diff: DeckDiff) -> Iterator[Finding]:
    """Notes whose content is unchanged but whose modification time moved forward: Anki
    updates them anyway, and learners lose their own edits on them ("My notes")."""
    for note in diff.touched:
        ref = note_ref(diff.new, note, {})
        yield _finding(
            anki_rules.TOUCHED,
            _where(diff.new, note),
            f"note {ref} did not change but its modification time moved forward",
            _quoted(ref),
        )


def _where(side: Snapshot, note: PackagedNote) -> Location:
    return note.loc or Location(side.source)


def _deck_yaml(side: Snapshot) -> Location:
    return Location(f"{side.source}/deck.yaml" if side.deck_slug else side.source)


def _quoted(ref: NoteRef) -> str:
    return f"“{ref.text}”"


def _finding(
    rule: Rule, where: Location, change: str, subject: str = "", *, breaking: bool = True
) -> Finding:
    return Finding(rule.key, where, rule.message(change), rule.hint, subject, breaking)


def _deck_renamed(diff: DeckDiff) -> Iterator[Finding]:
    old, new = diff.old.deck_name, diff.new.deck_name
    if old and new and old != new:
        yield _finding(
            anki_rules.DECK_RENAMED,
            _deck_yaml(diff.new),
            anki_rules.deck_renamed(old, new),
            f"“{old}” → “{new}”",
        )


def _removed(diff: DeckDiff) -> Iterator[Finding]:
    def identity(side: Snapshot, note: PackagedNote) -> tuple[str, str]:
        return html_to_text(note.fields[0] if note.fields else ""), side.notetype_of(note).key

    # A GUID's last note, as Snapshot.by_guid gives it (a crafted package may repeat GUIDs).
    added_notes = {note.guid: note for note in diff.added_notes}
    removed_notes = {note.guid: note for note in diff.removed_notes}
    added = {identity(diff.new, added_notes[r.guid]): r for r in diff.added}
    for ref in diff.removed:
        note = removed_notes[ref.guid]
        if RETIRED_TAG in note.tags:
            continue  # announced in the release that retired it
        twin = added.get(identity(diff.old, note))
        if twin is not None:
            yield _finding(
                anki_rules.RENAMED,
                _where(diff.new, added_notes[twin.guid]),
                f"note {ref} seems to be renamed to {twin}",
                _quoted(ref),
            )
        else:
            yield _finding(
                anki_rules.REMOVED, _where(diff.old, note), f"note {ref} was removed", _quoted(ref)
            )


def _retired(diff: DeckDiff) -> Iterator[Finding]:
    for change in diff.changed:  # a tag that came makes the note a changed one
        note, before = change.new, change.old
        if RETIRED_TAG in note.tags and RETIRED_TAG not in before.tags:
            ref = note_ref(diff.new, note, {})
            yield _finding(
                anki_rules.RETIRED,
                _where(diff.new, note),
                f"note {ref} is retired",
                _quoted(ref),
                breaking=False,
            )


def _version(diff: DeckDiff) -> Iterator[Finding]:
    old, new = diff.old.version, diff.new.version
    if not diff.empty and old == new:
        where = _deck_yaml(diff.new)
        yield Finding(
            "version",
            where,
            f"notes changed but the version is still {new}"
            if new
            else "notes changed and neither release has a version",
            f"{'raise `version` in' if new else 'add a `version` to'} deck.yaml so learners "
            "can tell the releases apart",
            breaking=False,
        )


def _notetypes(old: Snapshot, new: Snapshot) -> Iterator[Finding]:
    for mid, before in old.notetypes.items():
        after = new.notetypes.get(mid)
        if after is None:
            continue
        where = Location(new.source)
        if schema := _schema_changes(before, after):
            yield _finding(
                anki_rules.NOTETYPE_SCHEMA,
                where,
                f"note type {after.name!r} changed its {schema}",
                f"“{after.name}”",
            )
        elif (before.templates, before.css, before.name) != (
            after.templates,
            after.css,
            after.name,
        ) and after.mod <= before.mod:
            yield _finding(
                anki_rules.NOTETYPE_NOT_NEWER,
                where,
                f"note type {after.name!r} changed its templates or styling",
            )


def _static_media(old: Snapshot, new: Snapshot) -> Iterator[Finding]:
    for name, data in sorted(new.media.items()):
        if anki_rules.static_media(name) and old.media.get(name, data) != data:
            yield _finding(
                anki_rules.STATIC_MEDIA_CHANGED,
                Location(new.source),
                f"media file {name!r} changed",
                name,
            )


def _schema_changes(before: NoteType, after: NoteType) -> str:
    parts = []
    for what, old, new in (
        ("fields", before.fields, after.fields),
        ("templates", before.templates, after.templates),
    ):
        if [(x.id, x.name) for x in old] != [(x.id, x.name) for x in new]:
            gone = [x.name for x in old if x.id not in {y.id for y in new}]
            came = [x.name for x in new if x.id not in {y.id for y in old}]
            detail = (
                "; ".join(
                    filter(
                        None,
                        (
                            f"removed {', '.join(gone)}" if gone else "",
                            f"added {', '.join(came)}" if came else "",
                        ),
                    )
                )
                or "renamed or reordered"
            )
            parts.append(f"{what} ({detail})")
    return " and ".join(parts)


# Findings whose subject names the cards concerned.
_NAMING_CARDS = (anki_rules.CARD_LOST, anki_rules.OCCLUSION_REMOVED)


def _shape(side: Snapshot, note: PackagedNote, other: NoteType) -> anki_rules.NoteShape:
    notetype = side.notetype_of(note)
    # Anki tells note types apart by id; two with the same key get their ids shown.
    kind = (
        notetype.key
        if notetype.key != other.key or notetype.id == other.id
        else (f"{notetype.key} ({notetype.id})")
    )
    regions = None
    if notetype.key == "occlusion":  # its regions, by card, from its Back Extra
        answers = answers_by_number(side.fields_of(note).get("back_extra", ""))
        regions = {number - 1: key for number, key in answers.items()}
    return anki_rules.NoteShape(kind, side.subdeck_of(note), set(note.ordinals), regions)


def _changed(diff: DeckDiff, change: NoteChange) -> Iterator[Finding]:
    old, new, ref = diff.old, diff.new, change.ref
    where = _where(new, change.new)
    before = _shape(old, change.old, new.notetype_of(change.new))
    after = _shape(new, change.new, old.notetype_of(change.old))
    for rule, words, detail in anki_rules.note_changes(str(ref), before, after):
        subject = (
            f"{_quoted(ref)} ({detail})"
            if rule is anki_rules.MOVED
            else (f"{_quoted(ref)} {detail}" if rule in _NAMING_CARDS else _quoted(ref))
        )
        yield _finding(rule, where, words, subject)
        if rule is anki_rules.TYPE_CHANGED:
            return  # Anki ignores the rest of this note's changes
    if old.notetype_of(change.old).key == new.notetype_of(change.new).key == "occlusion":
        yield from _regions_renumbered(old, new, change, where)
    elif old.notetype_of(change.old).is_cloze and new.notetype_of(change.new).is_cloze:
        yield from _renumbered(old, new, change, where)
    visible = set(change.parts) - {"deck"}
    if visible and change.new.mod <= change.old.mod:
        yield _finding(
            anki_rules.NOT_NEWER, where, f"note {ref} changed ({', '.join(sorted(visible))})"
        )
    elif change.new.mod > change.old.mod:
        # An ordinary update: nothing breaks, but learners lose their own notes on it.
        yield Finding(
            anki_rules.UPDATED.key,
            where,
            anki_rules.UPDATED.message(f"note {ref} was updated"),
            anki_rules.UPDATED.hint,
            _quoted(ref),
            breaking=False,
            listed=False,
        )


def _renumbered(
    old: Snapshot, new: Snapshot, change: NoteChange, where: Location
) -> Iterator[Finding]:
    before = _deletions(old.fields_of(change.old).get("text", ""))
    after = _deletions(new.fields_of(change.new).get("text", ""))
    moves = [
        f"c{n} → c{m}"
        for n in sorted(before.keys() & after.keys())
        if not before[n] <= after[n]
        for m in sorted(after)
        if m != n and before[n] <= after[m]
    ]
    if moves:
        yield _finding(
            anki_rules.CLOZE_RENUMBERED,
            where,
            f"note {change.ref} renumbered its cloze deletions ({', '.join(moves)})",
            _quoted(change.ref),
        )


def _regions_renumbered(
    old: Snapshot, new: Snapshot, change: NoteChange, where: Location
) -> Iterator[Finding]:
    """A diagram's regions are known by the occlusion ids its Back Extra records per card."""
    before = answers_by_number(old.fields_of(change.old).get("back_extra", ""))
    after = {
        key: n
        for n, key in answers_by_number(new.fields_of(change.new).get("back_extra", "")).items()
    }
    moves = [
        f"{key!r} c{n} → c{after[key]}"
        for n, key in sorted(before.items())
        if key in after and after[key] != n
    ]
    if moves:
        yield _finding(
            anki_rules.OCCLUSION_RENUMBERED,
            where,
            f"diagram {change.ref} gave its regions other card numbers " f"({', '.join(moves)})",
            _quoted(change.ref),
        )


def _deletions(text: str) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for number, body in CLOZE_RE.findall(text):
        found.setdefault(int(number), set()).add(html_to_text(body.split("::")[0]))
    return found


def format_verdict(verdict: Verdict) -> str:
    """The verdict for a terminal: what breaks, what to do, and what to tell learners."""
    diff = verdict.diff
    old, new = diff.old.version or "unversioned", diff.new.version or "unversioned"
    # A side without notes has no deck name (it comes from the first note's deck).
    deck = diff.new.deck_name or diff.old.deck_name or "A deck without notes"
    lines = [printable(f"{deck}: {old} ({diff.old.source}) → {new} ({diff.new.source})")]
    lines += [str(p) for p in verdict.problems()]
    count = len(verdict.breaking)
    if not count:
        lines.append(f"No breaking changes: learners who have {old} get every change in {new}.")
    elif verdict.major_raised:
        lines.append(
            f"{count} breaking change{'s' if count != 1 else ''}, announced by the "
            f"major version {new}."
        )
    else:
        lines.append(
            f"{count} breaking change{'s' if count != 1 else ''}: fix "
            f"{'them' if count != 1 else 'it'}, or raise the major version in deck.yaml "
            f"(now {new}) to release {'them' if count != 1 else 'it'} anyway."
        )
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
        "findings": [
            {**p.to_json(), "rule": f.rule, "breaking": f.breaking}
            for f, p in zip(verdict.listed, verdict.problems(), strict=True)
        ],
        "tell_learners": verdict.tell_learners(),
    }

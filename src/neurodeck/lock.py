"""The lock file: when each note's content last changed.

Anki updates a learner's note on import only when the package's modification time is newer
than the learner's copy. Using the build time would overwrite learners' own edits on every
release and make two builds differ; using a constant would hide real edits. So the lock,
committed beside the cards, records a content hash and a modification time per note (and
per note type). A build moves a time forward only where the hash changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from .errors import Location, NeurodeckError, Problem

LOCK_FILE = "neurodeck.lock"
LOCK_VERSION = 1


@dataclass(frozen=True)
class Entry:
    """What the lock knows about one note or note type."""

    hash: str
    mod: int  # seconds since the epoch when the content last changed
    kind: str = ""  # note type key (notes only)
    subdeck: str = ""  # subdeck path (notes only)


@dataclass(frozen=True)
class Lock:
    """Entries for notes and note types, by id and key."""

    notes: dict[str, Entry]
    notetypes: dict[str, Entry]

    @property
    def latest(self) -> int:
        """The newest modification time in the lock (0 when empty)."""
        mods = [e.mod for e in (*self.notes.values(), *self.notetypes.values())]
        return max(mods, default=0)


EMPTY = Lock({}, {})


def parse_lock(path: str, text: str) -> Lock:
    """Read a lock file's text; a damaged lock is a located error, never silently ignored."""
    try:
        data = json.loads(text)
        if data.get("version") != LOCK_VERSION:
            raise ValueError(f"unsupported lock version {data.get('version')!r}")
        notes = {k: Entry(v["hash"], int(v["mod"]), v["type"], v["deck"])
                 for k, v in data["notes"].items()}
        notetypes = {k: Entry(v["hash"], int(v["mod"])) for k, v in data["notetypes"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        line = getattr(err, "lineno", 0)
        raise NeurodeckError(
            [Problem(Location(path, line), f"cannot read the lock file: {err}",
                     hint="restore it from version control, or delete it to start afresh "
                     "(learners may then not receive edits until a note changes again)")]
        ) from None
    return Lock(notes, notetypes)


def format_lock(lock: Lock) -> str:
    """The lock as stable JSON, one entry a line, so that diffs are readable."""
    def line(key: str, entry: dict[str, object]) -> str:
        return f"    {json.dumps(key)}: {json.dumps(entry, sort_keys=True)}"

    notes = [line(k, {"hash": e.hash, "mod": e.mod, "type": e.kind, "deck": e.subdeck})
             for k, e in sorted(lock.notes.items())]
    types = [line(k, {"hash": e.hash, "mod": e.mod}) for k, e in sorted(lock.notetypes.items())]
    return (
        "{\n"
        f'  "version": {LOCK_VERSION},\n'
        '  "notetypes": {\n' + ",\n".join(types) + "\n  },\n"
        '  "notes": {\n' + ",\n".join(notes) + "\n  }\n"
        "}\n"
    )


def refresh(old: Lock, notes: dict[str, Entry], notetypes: dict[str, Entry], clock: int) -> Lock:
    """The lock for this build: unchanged entries keep their time, changed ones move forward.

    `notes` and `notetypes` carry the current hashes (their `mod` is ignored). A changed entry
    gets `clock`, or one second past its old time if the clock is behind, so that Anki always
    sees the edit as newer.
    """
    def merge(current: dict[str, Entry], previous: dict[str, Entry]) -> dict[str, Entry]:
        merged = {}
        for key, entry in current.items():
            before = previous.get(key)
            if before is not None and before.hash == entry.hash:
                merged[key] = replace(entry, mod=before.mod)
            else:
                mod = clock if before is None else max(clock, before.mod + 1)
                merged[key] = replace(entry, mod=mod)
        return merged

    return Lock(merge(notes, old.notes), merge(notetypes, old.notetypes))


def describe_changes(old: Lock, new: Lock) -> list[str]:
    """Short phrases for what differs between two locks (for `build --frozen`)."""
    added = new.notes.keys() - old.notes.keys()
    removed = old.notes.keys() - new.notes.keys()
    changed = {k for k in new.notes.keys() & old.notes.keys() if new.notes[k] != old.notes[k]}
    types = {k for k in new.notetypes if new.notetypes[k] != old.notetypes.get(k)}
    types |= old.notetypes.keys() - new.notetypes.keys()
    parts = []
    for count, what in ((len(added), "added"), (len(changed), "changed"),
                        (len(removed), "removed")):
        if count:
            parts.append(f"{count} note{'s' if count != 1 else ''} {what}")
    if types:
        parts.append(f"note types changed: {', '.join(sorted(types))}")
    return parts

"""Find deck.yaml and the fact sets, and turn their nodes into the typed model.

This stage reports shape problems: missing, unknown, duplicate and wrong-typed keys. Rules
about the content (ids, tags, cloze markers, sources) are validate.py's.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar, cast

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from . import fastread, yamlsrc
from .errors import Location, NeurodeckError, Problem, display_path
from .model import (
    FACT_SET_KEYS,
    FIELDS_BY_KIND,
    LABEL_KEYS,
    NOTE_KEYS,
    NOTE_KINDS,
    OCCLUSION_KEYS,
    OCCLUSION_KIND,
    OCCLUSION_MODES,
    OCCLUSION_NOTE_KEYS,
    OPTIONAL_FIELDS,
    SHAPE_KINDS,
    Deck,
    Diagram,
    FactSet,
    Label,
    Note,
    NoteKind,
    Occlusion,
    OcclusionMode,
    Shape,
    Source,
    SourceLink,
    Tag,
)
from .validate import check_fields, check_id, closest

DECK_FILE = "deck.yaml"
DECK_KEYS = ("name", "id", "version", "description", "sources", "source_link")
SOURCE_KEYS = ("title", "author", "url", "kind", "year", "venue")
SOURCE_LINK_KEYS = ("repository", "ref", "path", "forge")

_Entries = dict[str, tuple[Node, Node]]  # key -> (key node, value node)
T = TypeVar("T")


def find_fact_sets(deck_dir: Path, problems: list[Problem]) -> list[Path]:
    """Every fact set under deck_dir, in sorted (curriculum) order; problems with the tree
    are added to `problems`.

    One rule, in the README: a file whose name ends in .yaml or .yml (in any case) is a fact
    set, except deck.yaml at the top; names starting with a dot (hidden files, editor lock
    files such as .#x.yaml, .git) are skipped. A directory that cannot be read, a symlink
    leading outside the deck directory or to nothing, and a fact set that is not a regular
    file are errors, never skipped: a note that silently drops out of a build would come
    back later as a new note, with learners' history lost.
    """
    root = deck_dir.resolve()
    found: list[Path] = []
    pending = [deck_dir]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as err:
            problems.append(
                Problem(
                    Location(display_path(directory)),
                    f"cannot read directory: {err.strerror}",
                    hint="make it readable, or move it out of the deck directory",
                )
            )
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            is_yaml = entry.name.lower().endswith((".yaml", ".yml"))
            try:
                if entry.is_symlink():
                    problem = _symlink_problem(path, root, is_yaml)
                    if problem is not None:
                        problems.append(problem)
                        continue
                    if entry.is_dir():  # inside the deck: its files are read where they are
                        continue
                elif entry.is_dir(follow_symlinks=False):
                    pending.append(path)
                    continue
                if not is_yaml:
                    continue
                if directory == deck_dir and entry.name.lower() in ("deck.yaml", "deck.yml"):
                    if entry.name != DECK_FILE:
                        problems.append(
                            Problem(
                                Location(display_path(path)),
                                f"{entry.name!r} is neither the deck's header nor a fact set",
                                hint=f"name the header exactly {DECK_FILE}",
                            )
                        )
                    continue
                if not entry.is_file():
                    problems.append(
                        Problem(
                            Location(display_path(path)),
                            f"fact set is not a regular file ({_file_kind(path)})",
                            hint="replace it with a plain text file, or rename it so it does not "
                            "end in .yaml",
                        )
                    )
                    continue
            except OSError as err:
                if not is_yaml:
                    continue  # not read unless a note refers to it, which reports it
                problems.append(
                    Problem(
                        Location(display_path(path)),
                        f"cannot read: {err.strerror}",
                        hint="make it readable, or move it out of the deck",
                    )
                )
                continue
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(deck_dir).as_posix())


def _symlink_problem(path: Path, root: Path, is_yaml: bool) -> Problem | None:
    """Why a symlink in the deck may not be read (None when it leads inside the deck)."""
    try:
        target = path.resolve()
        exists = target.exists()
    except (OSError, RuntimeError) as err:  # a loop, a name too long
        if not is_yaml:
            return None  # not read unless a note refers to it, which reports it
        return Problem(
            Location(display_path(path)),
            f"symlink cannot be followed: {err}",
            hint="replace the symlink with the file itself",
        )
    if not exists:
        if not is_yaml:
            return None
        return Problem(
            Location(display_path(path)),
            "fact set is a symlink to nothing",
            hint="remove the broken symlink, or point it at the file",
        )
    if not target.is_relative_to(root):
        if not is_yaml and not target.is_dir():
            return None  # an image: refused where a note refers to it, with the note's line
        return Problem(
            Location(display_path(path)),
            f"symlink leads outside the deck directory (to {target})",
            hint="copy what it points to into the deck directory: a deck holds its own files",
        )
    return None


def _file_kind(path: Path) -> str:
    try:
        mode = path.stat().st_mode
    except OSError:
        return "unreadable"
    for test, what in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    ):
        if test(mode):
            return what
    return "not a regular file"


_TOP_LEVEL_KEY_RE = "^{key}:[ \t]*"


def top_level_key_location(path: Path, shown: str, key: str) -> Location:
    """Where a fact set's own `key:` value starts, for a problem about the whole file
    (the file alone when the key cannot be found on a line of its own)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeError):
        return Location(shown)
    match = re.search(_TOP_LEVEL_KEY_RE.format(key=re.escape(key)), text, re.MULTILINE)
    if match is None:
        return Location(shown)
    line = text.count("\n", 0, match.start()) + 1
    return Location(shown, line, match.end() - match.start() + 1)


def load_deck(deck_dir: Path) -> Deck:
    """Read a deck directory into a Deck; raises NeurodeckError with every shape problem.
    (The pipeline reads one fact set at a time instead: load_header, then read_fact_set.)"""
    problems: list[Problem] = []
    header = load_header(deck_dir, problems)
    fact_sets = []
    for path in find_fact_sets(deck_dir, problems):
        fact_set = read_fact_set(path, problems)
        if fact_set is not None:
            fact_sets.append(fact_set)
    if problems:
        raise NeurodeckError(problems)
    return dataclasses.replace(header, fact_sets=tuple(fact_sets))


def load_header(deck_dir: Path, problems: list[Problem]) -> Deck:
    """Read deck.yaml into a Deck without fact sets; shape problems are added to `problems`.

    Raises NeurodeckError when there is no usable deck.yaml (no name or id to build with).
    """
    deck_path = deck_dir / DECK_FILE
    if deck_path.is_symlink():
        problem = _symlink_problem(deck_path, deck_dir.resolve(), True)
        if problem is not None:
            raise NeurodeckError([problem])
    if deck_path.exists() and not deck_path.is_file():
        raise NeurodeckError(
            [
                Problem(
                    Location(display_path(deck_path)),
                    f"{DECK_FILE} is not a regular file ({_file_kind(deck_path)})",
                    hint=f"make {DECK_FILE} a plain text file",
                )
            ]
        )
    if not deck_path.is_file():
        raise NeurodeckError(
            [
                Problem(
                    Location(display_path(deck_dir)),
                    f"no {DECK_FILE} in this directory",
                    hint=f"create {DECK_FILE} with at least `name:` and `id:`, "
                    "or pass the directory that holds it",
                )
            ]
        )
    source = _read_text(deck_path, problems)
    header = None if source is None else _read_nodes(*source, _read_deck_header, problems)
    if header is None:
        raise NeurodeckError(problems)
    return dataclasses.replace(header, root=str(deck_dir))


def read_fact_set(path: Path, problems: list[Problem]) -> FactSet | None:
    """Read one fact-set file; shape problems are added to `problems`.

    Returns the notes that loaded (None when the file as a whole is unusable).
    """
    source = _read_text(path, problems)
    if source is None:
        return None
    shown, text = source
    # Nearly every file is in the shape fastread reads, in block style, a line at a time.
    # It returns None for anything else, and for any file with a problem, which the general
    # path below then reads and reports.
    fact_set = fastread.read_fact_set(shown, text)
    if fact_set is not None:
        return fact_set
    return _read_nodes(shown, text, _read_fact_set, problems)


def _read_text(path: Path, problems: list[Problem]) -> tuple[str, str] | None:
    """The path as shown to the user and the file's text; None (and a problem) if unreadable."""
    shown = display_path(path)
    try:
        return shown, yamlsrc.decode(shown, _read_bounded(shown, path))
    except NeurodeckError as err:
        problems.extend(err.problems)
    except OSError as err:
        problems.append(
            Problem(
                Location(shown),
                f"cannot read file: {err.strerror}",
                hint="check that the file exists and that you may read it",
            )
        )
    return None


def _read_nodes(
    shown: str,
    text: str,
    read: Callable[[_Reader, Node], T | None],
    problems: list[Problem],
) -> T | None:
    """Compose the text into nodes and read them; every problem is added to `problems`."""
    try:
        root = yamlsrc.compose(shown, text)
    except NeurodeckError as err:
        problems.extend(err.problems)
        return None
    if root is None:
        problems.append(
            Problem(Location(shown, 1, 1), "file is empty", hint=_EMPTY_HINT[read.__name__])
        )
        return None
    return read(_Reader(shown, problems), root)


def _read_bounded(shown: str, path: Path) -> bytes:
    """The file's bytes; a file over the size limit is refused before any of it is read."""
    with path.open("rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size > yamlsrc.MAX_FILE_BYTES:
            raise NeurodeckError([yamlsrc.too_big_problem(shown, size)])
        # read(n) allocates n bytes up front, so ask for the size stat gave (plus one byte to
        # notice a file that grew since); decode() refuses whatever ends up over the limit.
        data = file.read(size + 1)
        if len(data) > size:
            data += file.read(yamlsrc.MAX_FILE_BYTES + 1 - len(data))
        return data


_EMPTY_HINT = {
    "_read_deck_header": "write at least `name:` and `id:` in deck.yaml",
    "_read_fact_set": "add a `notes:` list, or delete the file",
}


class _Reader:
    """Turns nodes of one file into values, collecting a Problem for each shape mistake."""

    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = problems

    def loc(self, node: Node) -> Location:
        return yamlsrc.loc(self.path, node)

    def error(self, node: Node, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(self.loc(node), message, hint))

    def mapping(self, node: Node, what: str, allowed: tuple[str, ...]) -> _Entries | None:
        """A mapping's entries by key; reports duplicate, unknown and non-text keys."""
        if not isinstance(node, MappingNode):
            self.error(
                node,
                f"{what} must be a mapping of keys to values, not {_kind(node)}",
                hint=f"expected keys: {', '.join(allowed)}",
            )
            return None
        entries: _Entries = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.error(
                    key_node,
                    f"keys in {what} must be text, not {_kind(key_node)}",
                    hint=f"expected keys: {', '.join(allowed)}",
                )
                continue
            key = key_node.value
            if key in entries:
                first = self.loc(entries[key][0])
                self.error(
                    key_node,
                    f"duplicate key {key!r} in {what} (first at line {first.line})",
                    hint="YAML keeps only the last value; remove or rename one of them",
                )
                continue
            if key not in allowed:
                self.error(
                    key_node, f"unknown key {key!r} in {what}", hint=_did_you_mean(key, allowed)
                )
                continue
            entries[key] = (key_node, value_node)
        return entries

    def text(self, node: Node, what: str) -> str | None:
        """A scalar's text exactly as written; lists and mappings are errors."""
        if isinstance(node, ScalarNode):
            value = cast(str, node.value)
            # A double-quoted escape ("\0", "\x07", "\ud800") can still put a character on
            # the card that the YAML reader refuses in the file itself.
            bad = yamlsrc.NON_PRINTABLE_RE.search(value)
            if bad is None:
                return value
            self.error(
                node,
                f"{what} contains the invisible control character U+{ord(bad.group()):04X}",
                hint="remove the escape (such as \\0 or \\x07) that puts it there",
            )
            return None
        self.error(
            node,
            f"{what} must be text, not {_kind(node)}",
            hint="quote the whole value, or use a YAML block scalar (|) for several lines",
        )
        return None

    def tags(self, node: Node, what: str) -> tuple[Tag, ...]:
        """A list of tags; a single tag written as text is accepted."""
        if isinstance(node, ScalarNode):
            items: Iterable[Node] = [node] if node.value else []
        elif isinstance(node, SequenceNode):
            items = node.value
        else:
            self.error(
                node,
                f"{what} must be a list of tags, not {_kind(node)}",
                hint="write tags: [topic::sub, other]",
            )
            return ()
        tags = []
        for item in items:
            value = self.text(item, f"a tag in {what}")
            if value is not None:
                tags.append(Tag(value, self.loc(item)))
        return tuple(tags)


def _read_deck_header(reader: _Reader, root: Node) -> Deck | None:
    entries = reader.mapping(root, DECK_FILE, DECK_KEYS)
    if entries is None:
        return None
    values: dict[str, str | None] = {}
    for key in ("name", "id", "version", "description"):
        if key in entries:
            values[key] = reader.text(entries[key][1], f"`{key}`")
    for key in ("name", "id"):
        if key not in entries:
            reader.error(root, f"{DECK_FILE} is missing `{key}`", hint=_DECK_KEY_HINT[key])
    sources: dict[str, Source] = {}
    if "sources" in entries:
        sources = _read_sources(reader, entries["sources"][1])
    source_link = None
    if "source_link" in entries:
        source_link = _read_source_link(reader, entries["source_link"][1])
    name, deck_id = values.get("name"), values.get("id")
    if name is None or deck_id is None:
        return None
    return Deck(
        id=deck_id,
        name=name,
        version=values.get("version"),
        description=values.get("description") or "",
        sources=sources,
        fact_sets=(),
        root="",
        loc=reader.loc(root),
        source_link=source_link,
    )


def _read_source_link(reader: _Reader, node: Node) -> SourceLink | None:
    entries = reader.mapping(node, "`source_link`", SOURCE_LINK_KEYS)
    if entries is None:
        return None
    values = {k: reader.text(v, f"`{k}` of `source_link`") for k, (_, v) in entries.items()}
    if "repository" not in entries:
        reader.error(
            node,
            "`source_link` is missing `repository`",
            hint="add repository: https://github.com/OWNER/NAME",
        )
        return None
    if any(value is None for value in values.values()):
        return None
    return SourceLink(
        repository=values["repository"] or "",
        forge=values.get("forge"),
        ref=values["ref"] or "" if "ref" in values else "v{version}",
        path=values.get("path") or "",
        loc=reader.loc(node),
    )


_DECK_KEY_HINT = {
    "name": "add `name: My Deck` (the deck name learners see in Anki)",
    "id": "add `id: my-deck`: a short slug that namespaces every note; never change it later",
}


def _read_sources(reader: _Reader, node: Node) -> dict[str, Source]:
    if not isinstance(node, MappingNode):
        reader.error(
            node,
            f"`sources` must be a mapping of source ids, not {_kind(node)}",
            hint='write sources:\n    my-source: {title: "Title"}',
        )
        return {}
    sources = {}
    seen: dict[str, Node] = {}
    for key_node, value_node in node.value:
        source_id = reader.text(key_node, "a source id")
        if source_id is None:
            continue
        if source_id in seen:
            first = reader.loc(seen[source_id])
            reader.error(
                key_node, f"duplicate source id {source_id!r} (first at line {first.line})"
            )
            continue
        seen[source_id] = key_node
        entries = reader.mapping(value_node, f"source {source_id!r}", SOURCE_KEYS)
        if entries is None:
            continue
        values = {
            k: reader.text(v, f"`{k}` of source {source_id!r}") for k, (_, v) in entries.items()
        }
        if "title" not in entries:
            reader.error(
                value_node,
                f"source {source_id!r} is missing `title`",
                hint='add title: "..." (shown on the back of cards that cite it)',
            )
            continue
        if values["title"] is None:
            continue
        sources[source_id] = Source(
            id=source_id,
            title=values["title"],
            author=values.get("author"),
            url=values.get("url"),
            kind=values.get("kind"),
            year=values.get("year"),
            venue=values.get("venue"),
            loc=reader.loc(key_node),
            key_locs={k: reader.loc(v) for k, (_, v) in entries.items()},
        )
    return sources


def _read_fact_set(reader: _Reader, root: Node) -> FactSet | None:
    if isinstance(root, SequenceNode):  # notes written with no `notes:` line over them
        reader.error(
            root,
            "a fact set must be a mapping of keys to values, not a list",
            hint="add the line `notes:` at the top of the file, above the first note",
        )
        return None
    entries = reader.mapping(root, "a fact set", FACT_SET_KEYS)
    if entries is None:
        return None
    subdeck = ""
    if "deck" in entries:
        subdeck = reader.text(entries["deck"][1], "`deck`") or ""
    file_tags = reader.tags(entries["tags"][1], "`tags`") if "tags" in entries else ()
    file_source = reader.text(entries["source"][1], "`source`") if "source" in entries else None
    if "notes" not in entries:
        reader.error(root, "fact set has no `notes:` list", hint="add notes:\n  - id: ...")
        return None
    notes_node = entries["notes"][1]
    if not isinstance(notes_node, SequenceNode):
        reader.error(
            notes_node,
            f"`notes` must be a list of notes, not {_kind(notes_node)}",
            hint="start each note with `- id: ...`",
        )
        return None
    notes = []
    for item in notes_node.value:
        note = _read_note(reader, item, subdeck, file_tags, file_source)
        if note is not None:
            notes.append(note)
    return FactSet(path=reader.path, notes=tuple(notes))


def _read_note(
    reader: _Reader,
    node: Node,
    subdeck: str,
    file_tags: tuple[Tag, ...],
    file_source: str | None,
) -> Note | None:
    entries = reader.mapping(node, "a note", _note_keys(node))
    if entries is None:
        return None
    if "id" not in entries:
        reader.error(
            node,
            "note has no `id`",
            hint="add `id: some-slug`, unique in the deck and never changed later",
        )
        return None
    note_id = reader.text(entries["id"][1], "`id`")
    if note_id is None:
        return None
    what = f"note {note_id!r}"
    kind: NoteKind = "basic"
    if "type" in entries:
        written = reader.text(entries["type"][1], f"`type` of {what}")
        if written is None:
            return None
        if written not in (*NOTE_KINDS, OCCLUSION_KIND):
            reader.error(
                entries["type"][1],
                f"unknown note type {written!r} in {what}",
                hint=_did_you_mean(written, (*NOTE_KINDS, OCCLUSION_KIND)),
            )
            reader.problems += check_id(note_id, reader.loc(node))  # not hidden by the type
            return None
        kind = cast(NoteKind, written)

    ok = True
    fields: dict[str, str] = {}
    field_locs: dict[str, Location] = {}
    wanted = FIELDS_BY_KIND[kind]
    for key in ("front", "back", "text", "extra"):
        if key not in entries:
            continue
        key_node, value_node = entries[key]
        if key not in wanted and key not in OPTIONAL_FIELDS:
            article = "an" if kind == OCCLUSION_KIND else "a"
            reader.error(
                key_node,
                f"`{key}` does not belong on {article} {kind} note ({what})",
                hint=_WRONG_FIELD_HINT[kind],
            )
            ok = False
            continue
        value = reader.text(value_node, f"`{key}` of {what}")
        if value is None:
            ok = False
            continue
        fields[key] = value
        field_locs[key] = reader.loc(value_node)
    for key in wanted:
        if key not in entries:
            reader.error(node, f"{what} is missing `{key}`", hint=_MISSING_FIELD_HINT[kind])
            ok = False
    diagram = None
    if kind == OCCLUSION_KIND:
        diagram = _read_diagram(reader, node, entries, what, fields, field_locs)
        ok = ok and diagram is not None

    tags = file_tags
    if "tags" in entries:
        tags = file_tags + reader.tags(entries["tags"][1], f"`tags` of {what}")
    source = file_source
    if "source" in entries:
        source = reader.text(entries["source"][1], f"`source` of {what}")
        field_locs["source"] = reader.loc(entries["source"][1])
    section = None
    if "section" in entries:
        section = reader.text(entries["section"][1], f"`section` of {what}")
    retired = False
    if "retired" in entries:
        written = reader.text(entries["retired"][1], f"`retired` of {what}")
        if written not in ("true", "false"):
            if written is not None:
                reader.error(
                    entries["retired"][1],
                    f"`retired` of {what} must be true or false",
                    hint="write `retired: true` to ship the note once more, tagged retired",
                )
            ok = False
        retired = written == "true"
    note = Note(
        id=note_id,
        kind=kind,
        fields=fields,
        tags=tags,
        subdeck=subdeck,
        source=source,
        section=section,
        loc=reader.loc(node),
        field_locs=field_locs,
        retired=retired,
        diagram=diagram,
    )
    if not ok:
        # Refused for its shape; what can be checked of it is reported now, not next run.
        reader.problems += check_id(note_id, note.loc) + check_fields(note)
        return None
    return note


def _note_keys(node: Node) -> tuple[str, ...]:
    """The keys a note may have: a diagram's (`type: occlusion`), or a text note's."""
    if isinstance(node, MappingNode) and any(
        isinstance(k, ScalarNode)
        and k.value == "type"
        and isinstance(v, ScalarNode)
        and v.value == OCCLUSION_KIND
        for k, v in node.value
    ):
        return NOTE_KEYS + OCCLUSION_NOTE_KEYS  # front, back, text: reported as misplaced
    return NOTE_KEYS


def _read_diagram(
    reader: _Reader,
    node: Node,
    entries: _Entries,
    what: str,
    fields: dict[str, str],
    field_locs: dict[str, Location],
) -> Diagram | None:
    """The image, shapes and labels of an occlusion note; `header` goes into `fields`."""
    ok = True
    if "header" in entries:
        header = reader.text(entries["header"][1], f"`header` of {what}")
        if header is None:
            ok = False
        else:
            fields["header"] = header
            field_locs["header"] = reader.loc(entries["header"][1])
    image = None
    if "image" not in entries:
        reader.error(
            node,
            f"{what} is missing `image`",
            hint="add `image: media/figure.png`, a file inside the deck directory",
        )
        ok = False
    else:
        image = reader.text(entries["image"][1], f"`image` of {what}")
    mode: OcclusionMode = "hide-all"
    if "mode" in entries:
        written = reader.text(entries["mode"][1], f"`mode` of {what}")
        if written in OCCLUSION_MODES:
            mode = cast(OcclusionMode, written)
        elif written is not None:
            reader.error(entries["mode"][1], f"unknown mode {written!r} in {what}", hint=_MODE_HINT)
            ok = False
    occlusions: list[Occlusion] = []
    if "occlusions" not in entries:
        reader.error(
            node,
            f"{what} is missing `occlusions`",
            hint="list the regions to hide: occlusions:\n  - {id: acc, answer: "
            "Anterior cingulate cortex, rect: [0.52, 0.30, 0.10, 0.08]}",
        )
        ok = False
    else:
        items = _sequence(
            reader,
            entries["occlusions"][1],
            f"`occlusions` of {what}",
            "start each occlusion with `- {id: ..., rect: [...]}`",
        )
        if items is None:
            ok = False
        for item in items or ():
            occlusion = _read_occlusion(reader, item, what)
            ok = ok and occlusion is not None
            if occlusion is not None:
                occlusions.append(occlusion)
    labels: list[Label] = []
    if "labels" in entries:
        items = _sequence(
            reader,
            entries["labels"][1],
            f"`labels` of {what}",
            "write labels:\n  - {text: Anterior, at: [0.05, 0.05]}",
        )
        ok = ok and items is not None
        for item in items or ():
            label = _read_label(reader, item, what)
            ok = ok and label is not None
            if label is not None:
                labels.append(label)
    if not ok or image is None:
        return None
    return Diagram(
        image=image,
        mode=mode,
        occlusions=tuple(occlusions),
        labels=tuple(labels),
        image_loc=reader.loc(entries["image"][1]),
    )


_MODE_HINT = (
    "write `mode: hide-all` (every region is covered, one is asked) or "
    "`mode: hide-one` (only the asked region is covered)"
)


def _sequence(reader: _Reader, node: Node, what: str, hint: str) -> list[Node] | None:
    if isinstance(node, SequenceNode) and node.value:
        return list(node.value)
    shown = "empty" if isinstance(node, SequenceNode) else _kind(node)
    reader.error(node, f"{what} must be a non-empty list, not {shown}", hint=hint)
    return None


def _read_occlusion(reader: _Reader, node: Node, what: str) -> Occlusion | None:
    entries = reader.mapping(node, f"an occlusion of {what}", OCCLUSION_KEYS)
    if entries is None:
        return None
    if "id" not in entries:
        reader.error(
            node,
            f"an occlusion of {what} has no `id`",
            hint="add `id: some-slug`: it ties the card to this region for good",
        )
        return None
    occlusion_id = reader.text(entries["id"][1], f"`id` of an occlusion of {what}")
    if occlusion_id is None:
        return None
    where = f"occlusion {occlusion_id!r} of {what}"
    values = {
        key: reader.text(entries[key][1], f"`{key}` of {where}")
        for key in ("answer", "group")
        if key in entries
    }
    ok = all(value is not None for value in values.values())
    written_shapes = [key for key in SHAPE_KINDS if key in entries]
    if len(written_shapes) != 1:
        reader.error(
            node if not written_shapes else entries[written_shapes[1]][0],
            f"{where} needs exactly one shape, not {len(written_shapes)}",
            hint="give it one of `rect: [left, top, width, height]`, "
            "`ellipse: [left, top, width, height]` or `polygon: [[x, y], ...]`; "
            "to hide several shapes on one card, give each the same `group`",
        )
        return None
    kind = written_shapes[0]
    shape_node = entries[kind][1]
    coords = _read_coords(reader, shape_node, kind, where)
    if coords is None or not ok:
        return None
    shape = Shape(kind=kind, coords=coords, loc=reader.loc(shape_node))  # type: ignore[arg-type]
    return Occlusion(
        id=occlusion_id,
        answer=values.get("answer"),
        group=values.get("group"),
        shape=shape,
        loc=reader.loc(node),
    )


_SHAPE_HINT = {
    "rect": "write rect: [left, top, width, height], fractions of the image (0 to 1)",
    "ellipse": "write ellipse: [left, top, width, height], the box the ellipse fills, "
    "as fractions of the image (0 to 1)",
    "polygon": "write polygon: [[x1, y1], [x2, y2], [x3, y3], ...], fractions of the image",
}


def _read_coords(reader: _Reader, node: Node, kind: str, where: str) -> tuple[float, ...] | None:
    what = f"`{kind}` of {where}"
    if not isinstance(node, SequenceNode):
        reader.error(node, f"{what} must be a list, not {_kind(node)}", hint=_SHAPE_HINT[kind])
        return None
    items: list[Node] = list(node.value)
    if kind == "polygon":
        if len(items) < 3 or not all(
            isinstance(i, SequenceNode) and len(i.value) == 2 for i in items
        ):
            reader.error(
                node,
                f"{what} must be a list of at least three [x, y] points",
                hint=_SHAPE_HINT[kind],
            )
            return None
        items = [value for point in items for value in point.value]
    elif len(items) != 4:
        reader.error(node, f"{what} must have 4 numbers, not {len(items)}", hint=_SHAPE_HINT[kind])
        return None
    numbers = [_number(reader, item, what, _SHAPE_HINT[kind]) for item in items]
    if any(n is None for n in numbers):
        return None
    return tuple(cast(list[float], numbers))


def _number(reader: _Reader, node: Node, what: str, hint: str) -> float | None:
    if isinstance(node, ScalarNode) and node.style is None:
        try:
            value = float(node.value)
        except ValueError:
            pass
        else:
            if math.isfinite(value):
                return value
    reader.error(
        node,
        f"{what} has {node.value if isinstance(node, ScalarNode) else _kind(node)!r}"
        " where a number belongs",
        hint=hint,
    )
    return None


def _read_label(reader: _Reader, node: Node, what: str) -> Label | None:
    entries = reader.mapping(node, f"a label of {what}", LABEL_KEYS)
    if entries is None:
        return None
    hint = "write - {text: Anterior, at: [0.05, 0.05]} (the text's top-left corner)"
    for key in ("text", "at"):
        if key not in entries:
            reader.error(node, f"a label of {what} is missing `{key}`", hint=hint)
            return None
    text = reader.text(entries["text"][1], f"`text` of a label of {what}")
    at_node = entries["at"][1]
    at = None
    if isinstance(at_node, SequenceNode) and len(at_node.value) == 2:
        at = [_number(reader, n, f"`at` of a label of {what}", hint) for n in at_node.value]
    else:
        reader.error(at_node, f"`at` of a label of {what} must be [left, top]", hint=hint)
    size = None
    if "size" in entries:
        size = _number(
            reader,
            entries["size"][1],
            f"`size` of a label of {what}",
            "write size: 0.04 (the text's height as a fraction of the image's)",
        )
        if size is None:
            return None
    if text is None or at is None or at[0] is None or at[1] is None:
        return None
    return Label(text=text, left=at[0], top=at[1], size=size, loc=reader.loc(node))


_WRONG_FIELD_HINT: dict[NoteKind, str] = {
    "basic": "basic notes use `front` and `back`; for a cloze deletion set `type: cloze`",
    "reversed": "reversed notes use `front` and `back`; for a cloze deletion set `type: cloze`",
    "cloze": "cloze notes use `text` with {{c1::...}} deletions (and optional `extra`)",
    "occlusion": "occlusion notes use `image`, `occlusions` and optional `header`, `labels`, "
    "`mode` and `extra`",
}
_MISSING_FIELD_HINT: dict[NoteKind, str] = {
    "basic": "basic notes need both `front` (the prompt) and `back` (the answer)",
    "reversed": "reversed notes need both `front` and `back`; each becomes a prompt",
    "cloze": "cloze notes need `text` with at least one {{c1::...}} deletion",
    "occlusion": "occlusion notes need `image` and `occlusions`",
}


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    close = closest(word, choices)
    if close:
        return f"did you mean {close!r}?"
    return f"expected one of: {', '.join(choices)}"


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, ScalarNode) and node.value == "" and node.style is None:
        return "an empty value"
    return "text"

"""The order Anki shows subdecks in, compared with the curriculum (the order of the fact sets).

With Anki's default deck options (new cards gathered by deck), a learner studying the root
deck gets each subdeck's new cards in turn, subdecks sorted by name, not in file order. Anki
compares deck names without regard to case (Unicode case folding: "ß" is "ss") and otherwise
by code point, one `::` level at a time (tests/test_learner.py pins this against Anki).
neurodeck does not rename subdecks on its own, since renaming a released subdeck moves
learners' cards, so `check` warns with the renames that would make the two orders agree.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import Location, Problem
from .load import top_level_key_location


def anki_sort_key(subdeck: str) -> tuple[str, ...]:
    """The key Anki sorts a subdeck path by ("" is the root deck, which comes first)."""
    return tuple(part.strip().casefold() for part in subdeck.split("::")) if subdeck else ()


@dataclass(frozen=True)
class FileDeck:
    """The subdeck of one fact set, in curriculum order, and whether learners already have it."""

    path: str  # as locations show it
    subdeck: str
    released: bool


def study_order_problems(files: list[FileDeck]) -> list[Problem]:
    """A warning when Anki would show the subdecks in another order than the fact sets'."""
    in_anki_order = sorted(files, key=lambda f: anki_sort_key(f.subdeck))  # stable
    if [f.subdeck for f in in_anki_order] == [f.subdeck for f in files]:
        return []
    first = next(f for f, g in zip(files, in_anki_order, strict=True) if f != g)
    names = list(dict.fromkeys(f.subdeck for f in in_anki_order))
    shown = ", ".join(repr(s or "(root)") for s in names[:_SHOWN])
    if len(names) > _SHOWN:
        shown += f", ... ({len(names)} in all)"
    message = (
        f"Anki shows new cards subdeck by subdeck in name order ({shown}), not in the "
        "order of the fact sets"
    )
    warning = functools.partial(
        Problem, _deck_key_location(first.path), message, severity="warning"
    )
    file_renames = _file_renames(files, in_anki_order)
    reorder_files = (
        "rename the files so that they sort in the order Anki shows the " f"subdecks:{file_renames}"
        if file_renames
        else "move the files so that they sort in the order Anki shows the subdecks"
    )
    curriculum = list(dict.fromkeys(f.subdeck for f in files))
    split = len(curriculum) != len(
        [s for i, s in enumerate(f.subdeck for f in files) if i == 0 or files[i - 1].subdeck != s]
    )
    if split:  # one subdeck's files apart: no renaming of subdecks can keep this order
        return [
            warning(hint=f"one subdeck's fact sets are not next to each other; " f"{reorder_files}")
        ]
    renames = _renames(curriculum)
    renamed = [renames[s] for s in curriculum]
    if renamed != sorted(renamed, key=anki_sort_key):
        return [
            warning(
                hint="Anki shows the root deck's own notes first, and a subdeck's own "
                f"notes before those of the subdecks inside it; {reorder_files}"
            )
        ]
    if any(f.released for f in files if renames[f.subdeck] != f.subdeck):
        return [
            warning(
                hint="renaming a subdeck learners have leaves their cards in the old "
                f"one; {reorder_files}"
            )
        ]
    edits = _edit_list(
        [
            f"{f.path}: `deck: {renames[f.subdeck]}`"
            for f in files
            if renames[f.subdeck] != f.subdeck
        ]
    )
    return [warning(hint=f"to show them in the order of the files, rename the subdecks:{edits}")]


def _file_renames(files: list[FileDeck], in_anki_order: list[FileDeck]) -> str:
    """ "a.yaml → 2-a.yaml; …": names that sort the files as Anki sorts their subdecks, or ""
    when the fact sets are not all in one directory (a rename could not reorder them)."""
    paths = [Path(f.path) for f in in_anki_order]
    if len({p.parent for p in paths}) != 1:
        return ""
    width = max(2, len(str(len(paths))))
    while True:  # wider numbers until no new name is another file's old one: `mv` would lose it
        new_paths = [
            path.with_name(f"{number:0{width}d}-{_unnumbered(path.name)}")
            for number, path in enumerate(paths, start=1)
        ]
        if not any(new in paths and new != old for old, new in zip(paths, new_paths, strict=True)):
            break
        width += 1
    return _edit_list(
        [
            f"{old.as_posix()} → {new.as_posix()}"
            for old, new in zip(paths, new_paths, strict=True)
            if new != old
        ]
    )


_SHOWN = 6  # subdecks named in the message; the hint's edits are always complete


def _edit_list(edits: list[str]) -> str:
    """The edits, to follow a colon: a few on the hint's line; more, one a line (a deck of a
    hundred fact sets would otherwise get a line of many kilobytes)."""
    if len(edits) <= _SHOWN:
        return " " + "; ".join(edits)
    return "".join(f"\n    {edit}" for edit in edits)


def _renames(curriculum: list[str]) -> dict[str, str]:
    """Each subdeck's new name: a number in curriculum order before each part that needs it.

    Siblings (subdecks under one parent) are numbered only where Anki's order of them
    differs from the curriculum's; numbers are zero-padded so that "10" sorts after "9".
    """
    paths = [tuple(p.strip() for p in s.split("::")) if s else () for s in curriculum]
    siblings: dict[tuple[str, ...], list[str]] = {}  # parent -> child parts, curriculum order
    for path in paths:
        for depth in range(len(path)):
            children = siblings.setdefault(path[:depth], [])
            if path[depth] not in children:
                children.append(path[depth])
    numbered: dict[tuple[str, ...], dict[str, str]] = {}
    for parent, children in siblings.items():
        if children != sorted(children, key=lambda c: c.casefold()):
            width = len(str(len(children)))
            numbered[parent] = {
                c: f"{i:0{width}d} {_unnumbered(c)}" for i, c in enumerate(children, start=1)
            }
    renames = {}
    for subdeck, path in zip(curriculum, paths, strict=True):
        parts = [numbered.get(path[:d], {}).get(part, part) for d, part in enumerate(path)]
        renames[subdeck] = "::".join(parts)
    return renames


_NUMBER_PREFIX_RE = re.compile(r"^[0-9]+[ .)_-]+(?=\S)")  # at the start only


def _unnumbered(part: str) -> str:
    # "3 Brain Regions" renumbered is "1 Brain Regions", not "1 3 Brain Regions".
    return _NUMBER_PREFIX_RE.sub("", part, count=1)


def _deck_key_location(shown: str) -> Location:
    return top_level_key_location(Path(shown), shown, "deck")

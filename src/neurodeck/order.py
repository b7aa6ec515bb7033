"""The order Anki shows subdecks in, compared with the curriculum (the order of the fact sets).

With Anki's default deck options (new cards gathered by deck), a learner studying the root
deck gets each subdeck's new cards in turn, subdecks sorted by name, not in file order. Anki
compares deck names without regard to case (Unicode case folding: "ß" is "ss") and otherwise
by code point, one `::` level at a time (tests/test_learner.py pins this against Anki).
neurodeck does not rename subdecks on its own, since renaming a released subdeck moves
learners' cards, so `check` warns with the renames that would make the two orders agree.
"""

from __future__ import annotations

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
    curriculum: list[str] = []  # subdecks in the order their files come, runs merged
    for file in files:
        if not curriculum or curriculum[-1] != file.subdeck:
            curriculum.append(file.subdeck)
    anki = sorted(dict.fromkeys(curriculum), key=anki_sort_key)
    if curriculum == anki:
        return []
    first = next(f for f in files if f.subdeck != anki[len(_common_prefix(curriculum, anki))])
    shown = ", ".join(repr(s or "(root)") for s in anki)
    message = (f"Anki shows new cards subdeck by subdeck in name order ({shown}), not in the "
               "order of the fact sets")
    if len(curriculum) != len(anki):
        hint = ("the fact sets of one subdeck are not next to each other; number the files "
                "so that each subdeck's files follow one another")
        return [Problem(_deck_key_location(first.path), message, hint, "warning")]
    renames = _renames(curriculum)
    renamed = [renames[s] for s in curriculum]
    if renamed != sorted(renamed, key=anki_sort_key):
        hint = ("Anki shows the root deck's own notes first, and a subdeck's own notes before "
                "those of the subdecks inside it: move those fact sets first")
        return [Problem(_deck_key_location(first.path), message, hint, "warning")]
    edits = "; ".join(f"{f.path}: `deck: {renames[f.subdeck]}`"
                      for f in files if renames[f.subdeck] != f.subdeck)
    hint = f"to show them in the order of the files, rename the subdecks: {edits}"
    if any(f.released for f in files if renames[f.subdeck] != f.subdeck):
        hint = ("renaming a built subdeck leaves learners' cards in the old one: once "
                "released, rename the files instead so that they sort as Anki shows the "
                f"subdecks; before that, {hint}")
    return [Problem(_deck_key_location(first.path), message, hint, "warning")]


def _common_prefix(a: list[str], b: list[str]) -> list[str]:
    prefix = []
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        prefix.append(x)
    return prefix


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
            numbered[parent] = {c: f"{i:0{width}d} {_unnumbered(c)}"
                                for i, c in enumerate(children, start=1)}
    renames = {}
    for subdeck, path in zip(curriculum, paths, strict=True):
        parts = [numbered.get(path[:d], {}).get(part, part) for d, part in enumerate(path)]
        renames[subdeck] = "::".join(parts)
    return renames


_NUMBER_PREFIX_RE = re.compile(r"[0-9]+[ .)_-]+(?=\S)")


def _unnumbered(part: str) -> str:
    # "3 Brain Regions" renumbered is "1 Brain Regions", not "1 3 Brain Regions".
    return _NUMBER_PREFIX_RE.sub("", part, count=1)


def _deck_key_location(shown: str) -> Location:
    return top_level_key_location(Path(shown), shown, "deck")

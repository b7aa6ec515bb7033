"""Located problems and the one error type that carries them."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Severity = Literal["error", "warning"]

# Characters that would act on a terminal instead of showing: C0 and C1 controls (an escape
# sequence can recolour, move the cursor or retitle the window), DEL, line and paragraph
# separators, bidirectional overrides that reorder what is shown, and the lone surrogates
# that stand for undecodable bytes in a file name (a terminal could not print them).
_UNPRINTABLE_RE = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_UNPRINTABLE_OR_NEWLINE_RE = re.compile(f"{_UNPRINTABLE_RE.pattern[:-1]}\n]")


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """Text safe to print on a terminal: control characters shown as escapes (\\x1b)."""
    pattern = _UNPRINTABLE_RE if keep_newlines else _UNPRINTABLE_OR_NEWLINE_RE
    if not pattern.search(text):
        return text
    return pattern.sub(_escape, text)


def plural(number: int, word: str) -> str:
    """ "1 note", "2 notes": a number and its noun, in the plural when the number wants it."""
    return f"{number} {word}{'' if number == 1 else 's'}"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def display_path(path: Path) -> str:
    """A path as the user will recognise it: relative to the working directory when inside it."""
    # abspath, not resolve: a symlink is shown by its own name, and a loop cannot fail here.
    try:
        return Path(os.path.abspath(path)).relative_to(os.getcwd()).as_posix()
    except (ValueError, OSError):
        pass
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError, RuntimeError):
        return str(path)


@dataclass(frozen=True, order=True)
class Location:
    """A place in an input file; line and column are 1-based, 0 means unknown."""

    path: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        path = printable(self.path)  # a file name can hold any character but / and NUL
        if not self.line:
            return path
        if not self.column:
            return f"{path}:{self.line}"
        return f"{path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, where it is, and what to do about it."""

    location: Location
    message: str
    hint: str | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        text = f"{self.location}: {self.severity}: {printable(self.message, keep_newlines=True)}"
        if self.hint:
            text += f"\n  hint: {printable(self.hint, keep_newlines=True)}"
        return text

    def to_json(self) -> dict[str, object]:
        """The problem as a JSON-ready dict, for editors and CI."""
        return {
            "path": self.location.path,
            "line": self.location.line,
            "column": self.location.column,
            "severity": self.severity,
            "message": self.message,
            "hint": self.hint,
        }


def sort_problems(problems: list[Problem]) -> list[Problem]:
    """Problems in reading order: by file, line and column."""
    return sorted(problems, key=lambda p: (p.location, p.message))


class NeurodeckError(Exception):
    """Raised once with every problem found; the CLI is the only place that catches it."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sort_problems(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

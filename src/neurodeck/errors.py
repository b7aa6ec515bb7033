"""Located problems and the one error type that carries them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Severity = Literal["error", "warning"]


def display_path(path: Path) -> str:
    """A path as the user will recognise it: relative to the working directory when inside it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


@dataclass(frozen=True, order=True)
class Location:
    """A place in an input file; line and column are 1-based, 0 means unknown."""

    path: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if not self.line:
            return self.path
        if not self.column:
            return f"{self.path}:{self.line}"
        return f"{self.path}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, where it is, and what to do about it."""

    location: Location
    message: str
    hint: str | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        text = f"{self.location}: {self.severity}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
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

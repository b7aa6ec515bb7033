"""Tools for people who write decks: the editor schemas and a new deck directory.

The schemas are JSON files shipped in the package (schema/); `neurodeck new` copies the
files in templates/new, filling in the deck's name and a fresh id.
"""

from __future__ import annotations

import json
import re
import secrets
from importlib import resources
from pathlib import Path

from . import __version__
from .errors import Location, NeurodeckError, Problem, display_path
from .load import DECK_FILE

SCHEMAS = ("deck", "factset")

# Where each template goes in the new deck directory.
NEW_DECK_FILES = {
    "deck.yaml": DECK_FILE,
    "01-example.yaml": "01-example.yaml",
    "README.md": "README.md",
    "gitignore": ".gitignore",
    "deck-workflow.yml": ".github/workflows/deck.yml",
    "pre-commit-config.yaml": ".pre-commit-config.yaml",
    "example-diagram.png": "media/example-diagram.png",
}


def schema_text(which: str) -> str:
    """The JSON Schema of `deck` (deck.yaml) or `factset`, as shipped."""
    return (resources.files("neurodeck") / "schema" / f"{which}.schema.json").read_text("utf-8")


def schema(which: str) -> dict[str, object]:
    """The JSON Schema of `deck` or `factset`, parsed."""
    value: dict[str, object] = json.loads(schema_text(which))
    return value


def fresh_deck_id(name: str) -> str:
    """A slug from the name plus six random hex digits, so two new decks never share notes."""
    words = re.findall(r"[a-z0-9]+", name.lower())
    stem = "-".join(words)[:40].strip("-") or "deck"
    return f"{stem}-{secrets.token_hex(3)}"


def new_deck(deck_dir: Path, name: str | None = None) -> list[Path]:
    """Write a working deck directory; refuses (nothing written) if any file is there already.

    Returns the files written, in the order written.
    """
    name = name or _name_from(deck_dir)
    targets = {template: deck_dir / rel for template, rel in NEW_DECK_FILES.items()}
    taken = [path for path in targets.values() if path.exists() or path.is_symlink()]
    if taken:
        raise NeurodeckError(
            [
                Problem(
                    Location(display_path(taken[0])),
                    "already exists; `neurodeck new` overwrites nothing, so nothing was written",
                    hint="choose a directory that does not hold a deck yet",
                )
            ]
        )
    if not name.strip() or any(not part.strip() for part in name.split("::")):
        raise NeurodeckError(
            [
                Problem(
                    Location(display_path(deck_dir)),
                    f"deck name {name!r} is empty or has an empty part",
                    hint='pass --name "My Deck"',
                )
            ]
        )
    deck_id = fresh_deck_id(name)
    values = {
        "__NAME_YAML__": json.dumps(name, ensure_ascii=False),  # a JSON string is valid YAML
        "__NAME__": name,
        "__ID__": deck_id,
        "__NEURODECK_VERSION__": __version__,
    }
    files = resources.files("neurodeck") / "templates" / "new"
    written = []
    for template, path in targets.items():
        data = (files / template).read_bytes()
        if not template.endswith(".png"):
            text = data.decode("utf-8")
            for token, value in values.items():
                text = text.replace(token, value)
            data = text.encode("utf-8")
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("xb") as out:  # "x": never replace a file
            out.write(data)
        written.append(path)
    for which in SCHEMAS:
        path = deck_dir / "schema" / f"{which}.schema.json"
        path.parent.mkdir(exist_ok=True)
        if not path.exists():
            path.write_text(schema_text(which), encoding="utf-8")
            written.append(path)
    return written


def _name_from(deck_dir: Path) -> str:
    words = re.split(r"[-_\s]+", deck_dir.resolve().name)
    return " ".join(w[:1].upper() + w[1:] for w in words if w) or "My Deck"


def decks_holding(files: tuple[Path, ...] | list[Path]) -> list[Path]:
    """The deck directories (holding deck.yaml) at or above each file, each once, in order."""
    decks: dict[Path, None] = {}
    for file in files:
        for folder in [file, *file.parents] if file.is_dir() else file.parents:
            if (folder / DECK_FILE).is_file():
                decks[folder] = None
                break
    return list(decks)

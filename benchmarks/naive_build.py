#!/usr/bin/env python3
"""Naive reference builder: the YAML-to-genanki script a competent user writes in an afternoon.

Usage: python benchmarks/naive_build.py DECK_DIR OUT.apkg

This is the baseline that neurodeck's speed-up targets are measured against, so it is
deliberately ordinary rather than slow: plain ``yaml.safe_load`` (the pure-Python SafeLoader,
as most people write it), ``html.escape`` instead of Markdown, no validation, no error locations,
and genanki's own ``write_to_file``. It does use stable GUIDs, as any serious deck script must.
"""

from __future__ import annotations

import hashlib
import html
import sys
from pathlib import Path
from typing import Any

import genanki  # type: ignore[import-untyped]
import yaml

CSS = ".card { font-family: arial; font-size: 20px; text-align: center; }"

# Fixed model ids: a model id that changes between builds makes Anki duplicate the note type.
BASIC = genanki.Model(
    1_640_000_001,
    "Naive Basic",
    fields=[{"name": "Front"}, {"name": "Back"}, {"name": "Extra"}, {"name": "Source"}],
    templates=[
        {
            "name": "Card 1",
            "qfmt": "{{Front}}",
            "afmt": "{{FrontSide}}<hr id=answer>{{Back}}<br>{{Extra}}<br>{{Source}}",
        }
    ],
    css=CSS,
)
REVERSED = genanki.Model(
    1_640_000_002,
    "Naive Basic (and reversed card)",
    fields=[{"name": "Front"}, {"name": "Back"}, {"name": "Extra"}, {"name": "Source"}],
    templates=[
        {
            "name": "Card 1",
            "qfmt": "{{Front}}",
            "afmt": "{{FrontSide}}<hr id=answer>{{Back}}<br>{{Extra}}<br>{{Source}}",
        },
        {
            "name": "Card 2",
            "qfmt": "{{Back}}",
            "afmt": "{{FrontSide}}<hr id=answer>{{Front}}<br>{{Extra}}<br>{{Source}}",
        },
    ],
    css=CSS,
)
CLOZE = genanki.Model(
    1_640_000_003,
    "Naive Cloze",
    fields=[{"name": "Text"}, {"name": "Extra"}, {"name": "Source"}],
    templates=[
        {
            "name": "Cloze",
            "qfmt": "{{cloze:Text}}",
            "afmt": "{{cloze:Text}}<br>{{Extra}}<br>{{Source}}",
        }
    ],
    css=CSS,
    model_type=genanki.Model.CLOZE,
)


def deck_id(name: str) -> int:
    """A stable positive deck id from the deck's full name."""
    return int.from_bytes(hashlib.sha1(name.encode()).digest()[:4], "big")


def naive_build(deck_dir: Path, out: Path) -> None:
    """Compile every fact set in DECK_DIR into one .apkg at OUT."""
    meta: dict[str, Any] = yaml.safe_load((deck_dir / "deck.yaml").read_text(encoding="utf-8"))
    sources: dict[str, dict[str, str]] = meta.get("sources") or {}
    decks: dict[str, Any] = {}
    for path in sorted(deck_dir.glob("*.yaml")):
        if path.name == "deck.yaml":
            continue
        data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        name = f"{meta['name']}::{data['deck']}" if data.get("deck") else meta["name"]
        if name not in decks:
            decks[name] = genanki.Deck(deck_id(name), name)
        source = sources.get(data.get("source", ""), {}).get("title", "")
        for item in data["notes"]:
            where = f"{source}, {item['section']}" if "section" in item else source
            extra = html.escape(item.get("extra", ""))
            if item.get("type") == "cloze":
                model = CLOZE
                fields = [html.escape(item["text"]), extra, html.escape(where)]
            else:
                model = REVERSED if item.get("type") == "reversed" else BASIC
                front, back = html.escape(item["front"]), html.escape(item["back"])
                fields = [front, back, extra, html.escape(where)]
            note = genanki.Note(
                model=model,
                fields=fields,
                tags=[*data.get("tags", []), *item.get("tags", [])],
                # GUID from the note's id, not its fields, so edits keep review history.
                guid=genanki.guid_for(meta["id"], item["id"]),
            )
            decks[name].add_note(note)
    genanki.Package(list(decks.values())).write_to_file(str(out))


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: naive_build.py DECK_DIR OUT.apkg", file=sys.stderr)
        return 2
    naive_build(Path(argv[0]), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

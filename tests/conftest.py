"""Shared fixtures: decks written from a dict of files, and a CLI runner."""

from __future__ import annotations

import struct
import textwrap
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

DECK_YAML = """\
name: Test Deck
id: test
version: 1.0.0
description: A *small* deck for tests.
sources:
  intimacy: {title: "Neurobiological Foundations of Intimacy"}
"""

PEPTIDES_YAML = """\
deck: Neuropeptides
tags: [neuropeptides]
source: intimacy
notes:
  - id: oxytocin-touch
    front: Which neuropeptide is released during physical touch and intimacy?
    back: Oxytocin
    extra: Often called the "bonding hormone".
    tags: [oxytocin]
    section: Neural Pathways of Intimacy
  - id: vasopressin-pair-bonding
    type: reversed
    front: Vasopressin
    back: Neuropeptide linked to pair bonding in mammals
    section: Neural Pathways of Intimacy
  - id: mirror-neurons-fire
    type: cloze
    text: Mirror neurons fire when we {{c1::perform an action}} and when we {{c2::observe it}}.
    section: Mirror Neurons
"""

MakeDeck = Callable[..., Path]


@pytest.fixture
def make_deck(tmp_path: Path) -> MakeDeck:
    """Write files (name -> dedented text) into a deck dir; deck.yaml defaults to DECK_YAML."""

    def make(files: dict[str, str | bytes] | None = None, *, name: str = "cards") -> Path:
        deck_dir = tmp_path / name
        deck_dir.mkdir(parents=True, exist_ok=True)
        files = {"deck.yaml": DECK_YAML, **(files or {})}
        for rel, content in files.items():
            path = deck_dir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(textwrap.dedent(content), encoding="utf-8")
        return deck_dir

    return make


@pytest.fixture
def sample_deck(make_deck: MakeDeck) -> Path:
    """The three-note deck from the README: basic, reversed and cloze."""
    return make_deck({"peptides.yaml": PEPTIDES_YAML})


@pytest.fixture
def runner() -> CliRunner:
    """A click runner; stdout and stderr are kept apart."""
    return CliRunner()


@pytest.fixture(autouse=True)
def _fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Builds in tests use a fixed clock unless a test sets SOURCE_DATE_EPOCH itself."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")


def png(width: int, height: int) -> bytes:
    """A real, tiny grey PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )

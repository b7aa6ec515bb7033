"""A deck directory's snapshot comes from the compiled deck, without building: it must hold
exactly what the package built from the same deck holds, as read back from that package."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from conftest import PEPTIDES_YAML, MakeDeck

from neurodeck import pipeline
from neurodeck.snapshot import compile_snapshot, read_apkg, read_side

ROOT_YAML = """\
notes:
  - id: root-note
    front: "Which figure? ![a](images/_shared.png) ![b](images/brain.png)"
    back: "**This** one"
    retired: true
"""


def test_a_deck_directory_snapshot_equals_its_built_package(
    make_deck: MakeDeck, tmp_path: Path
) -> None:
    deck_dir = make_deck(
        {
            "01-peptides.yaml": PEPTIDES_YAML,
            "02-root.yaml": ROOT_YAML,
            "images/_shared.png": b"shared",
            "images/brain.png": b"brain",
        }
    )
    clock = 1_700_000_000
    pipeline.build(deck_dir, tmp_path / "first.apkg", clock=clock - 100)  # a lock to keep
    (deck_dir / "01-peptides.yaml").write_text(PEPTIDES_YAML.replace("Oxytocin", "OT"))
    lock = (deck_dir / "neurodeck.lock").read_bytes()

    compiled = compile_snapshot(deck_dir, clock=clock)
    assert (deck_dir / "neurodeck.lock").read_bytes() == lock  # read, never refreshed
    built = pipeline.build(deck_dir, tmp_path / "deck.apkg", clock=clock).path
    packaged = read_apkg(built)

    assert compiled.notetypes == packaged.notetypes
    assert (compiled.deck_name, compiled.version) == (packaged.deck_name, packaged.version)
    unnamed = [dataclasses.replace(n, note_id=None, loc=None) for n in compiled.notes]
    assert unnamed == list(packaged.notes)
    assert {n.mod for n in compiled.notes} == {clock - 100, clock}  # kept, and moved forward
    assert [n.note_id for n in compiled.notes] == [
        "oxytocin-touch",
        "vasopressin-pair-bonding",
        "mirror-neurons-fire",
        "root-note",
    ]
    assert compiled.media == {"_shared.png": b"shared", "brain.png": b"brain"}
    # A package's side keeps only the media Anki's import rules look at.
    assert read_side(built, clock=clock).media == {"_shared.png": b"shared"}

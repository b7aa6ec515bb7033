"""The shipped brain diagrams: figures, shapes, attribution, and their place in the curriculum."""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path

import pytest

from neurodeck.load import find_fact_sets, load_deck

CARDS = Path(__file__).resolve().parents[1] / "cards"
MEDIA = CARDS / "media"
FIGURES = json.loads((MEDIA / "figures.json").read_text(encoding="utf-8"))
CITATION = "Unbiased nonlinear average age-appropriate brain templates from birth to adulthood"
NOTICE = (
    "Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, Montreal "
    "Neurological Institute, McGill University."
)


def diagram_notes():
    return {n.diagram.image: n for n in load_deck(CARDS).notes() if n.diagram is not None}


def test_every_figure_has_its_note_with_the_shapes_the_script_wrote():
    """The fact set's ellipses, ids, groups and answers are the ones make_figures.py placed."""
    notes = diagram_notes()
    assert sorted(notes) == sorted(f["image"] for f in FIGURES.values())
    for figure in FIGURES.values():
        note = notes[figure["image"]]
        written = [
            (o.id, o.group, o.answer, o.shape.kind, list(o.shape.coords))
            for o in note.diagram.occlusions
        ]
        expected = [
            (o["id"], o.get("group"), o["answer"], "ellipse", o["ellipse"])
            for o in figure["occlusions"]
        ]
        assert written == expected
        assert note.fields["header"] == figure["header"]
        assert note.subdeck == "Brain Regions"
        assert "topic::brain-regions" in [t.name for t in note.tags]


def test_figures_are_plain_pngs_of_the_recorded_size_with_no_metadata():
    """No tEXt or tIME chunk: nothing in the files depends on when or where they were made."""
    for figure in FIGURES.values():
        data = (CARDS / figure["image"]).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert struct.unpack(">II", data[16:24]) == (figure["width"], figure["height"])
        chunks, pos = [], 8
        while pos < len(data):
            (length,) = struct.unpack(">I", data[pos : pos + 4])
            chunks.append(data[pos + 4 : pos + 8])
            pos += 12 + length
        assert chunks == [b"IHDR", b"IDAT", b"IEND"]


def test_template_citation_and_notice_travel_with_the_images_and_the_deck():
    readme = " ".join((MEDIA / "README.md").read_text(encoding="utf-8").split())
    description = " ".join(load_deck(CARDS).description.split())
    for text in (readme, description):
        assert CITATION in text and "Fonov" in text and NOTICE in text


def test_diagrams_follow_the_brain_region_cards_in_the_curriculum():
    names = [p.name for p in find_fact_sets(CARDS, [])]
    assert names.index("02b-brain-diagrams.yaml") == names.index("02-brain-regions.yaml") + 1


@pytest.mark.skipif(
    importlib.util.find_spec("nilearn") is None,
    reason="nilearn renders the figures; it is not a neurodeck dependency",
)
def test_rendering_again_gives_the_same_bytes(tmp_path):
    """make_figures.py is reproducible: a fresh run matches the committed PNGs and shapes."""
    spec = importlib.util.spec_from_file_location("make_figures", MEDIA / "make_figures.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main(["--out", str(tmp_path)])
    for name in ("midsagittal.png", "coronal.png", "axial.png", "figures.json"):
        assert (tmp_path / name).read_bytes() == (MEDIA / name).read_bytes(), name

"""Diagrams (`type: occlusion`): Anki's own image-occlusion notes, checked against Anki itself.

The note type is compared with the one Anki makes (`add_image_occlusion_notetype`), the notes
are read back with Anki's image-occlusion API, and a release that moves, reorders, adds and
removes shapes is studied with Anki's scheduler in between.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest
from anki_helpers import LearnerCollection, import_apkg
from conftest import png

from neurodeck.cli import cli
from neurodeck.errors import NeurodeckError
from neurodeck.ids import note_guid
from neurodeck.lock import LOCK_FILE, format_lock, parse_lock
from neurodeck.notetypes import ANKI_IO_CSS, OCCLUSION
from neurodeck.occlusion import anki_number, sniff_image
from neurodeck.pipeline import build, check

T1, T2 = 1_700_000_000, 2_000_000_000


DIAGRAM_YAML = """\
deck: Brain Regions
tags: [topic::brain-regions]
source: intimacy
notes:
  - id: midline
    type: occlusion
    image: media/midsagittal.png
    header: Midsagittal view
    occlusions:
      - {id: acc, answer: Anterior cingulate cortex, rect: [0.50, 0.30, 0.10, 0.08]}
      - {id: vta, answer: Ventral tegmental area, ellipse: [0.47, 0.62, 0.04, 0.04]}
      - {id: amygdala-left, group: amygdala, answer: Amygdala, ellipse: [0.30, 0.70, 0.05, 0.05]}
      - {id: amygdala-right, group: amygdala, polygon: [[0.6, 0.7], [0.66, 0.7], [0.63, 0.76]]}
    labels:
      - {text: Anterior, at: [0.02, 0.02], size: 0.05}
    mode: hide-all
    extra: Positions are approximate.
"""


@pytest.fixture
def diagram_deck(make_deck):
    return make_deck({"regions.yaml": DIAGRAM_YAML, "media/midsagittal.png": png(400, 300)})


def anki_stock_notetype(tmp_path: Path) -> dict:
    """The image-occlusion note type exactly as Anki 26.9.3 creates it."""
    from anki.collection import Collection

    col = Collection(str(tmp_path / "stock.anki2"))
    try:
        col.add_image_occlusion_notetype()
        (stock,) = [m for m in col.models.all() if m.get("originalStockKind") == 6]
        return stock
    finally:
        col.close()


def shape_of(notetype: dict) -> dict:
    """What makes a note type an image-occlusion one, as Anki's reviewer and editor see it."""
    return {
        "type": notetype["type"],
        "originalStockKind": notetype["originalStockKind"],
        "fields": [(f["name"], f["ord"], f["tag"], f["preventDeletion"]) for f in notetype["flds"]],
        "templates": [(t["qfmt"], t["afmt"]) for t in notetype["tmpls"]],
    }


OURS = OCCLUSION.name_in("Test Deck")  # Anki's name for our note type in the test deck


def test_our_note_type_is_ankis_image_occlusion_note_type(diagram_deck, tmp_path):
    """Pins the note type to Anki's: a cloze type, originalStockKind 6, Occlusion, Image, Header,
    Back Extra and Comments tagged 0-4, and Anki's templates word for word. Only the styling
    adds to Anki's (each card's answer)."""
    stock = anki_stock_notetype(tmp_path)
    apkg = build(diagram_deck, tmp_path / "d.apkg", clock=T1).path
    with LearnerCollection(tmp_path / "learner") as learner:
        learner.import_apkg(apkg)
        (ours,) = [m for m in learner.col.models.all() if m["name"] == OURS]
        assert shape_of(ours) == shape_of(stock)
        assert stock["type"] == 1 and stock["originalStockKind"] == 6
        assert [f["name"] for f in stock["flds"]] == [
            "Occlusion",
            "Image",
            "Header",
            "Back Extra",
            "Comments",
        ]
        assert stock["css"] == ANKI_IO_CSS
        assert ours["css"].startswith(stock["css"])


def test_anki_reads_each_shape_with_its_card_number(diagram_deck, tmp_path):
    """Anki's image-occlusion API parses the notes: rect, ellipse (left/top of its box, rx, ry),
    polygon, the grouped shapes under one number, the label as c0, and hide-all as oi=1."""
    apkg = build(diagram_deck, tmp_path / "d.apkg", clock=T1).path
    with LearnerCollection(tmp_path / "learner") as learner:
        col = learner.col
        learner.import_apkg(apkg)
        (nid,) = col.find_notes("")
        note = col.get_image_occlusion_note(nid).note
        assert note.image_file_name == "midsagittal.png" and note.occlude_inactive
        assert note.header == "Midsagittal view"
        found = sorted(
            (o.ordinal, s.shape, tuple((p.name, p.value) for p in s.properties))
            for o in note.occlusions
            for s in o.shapes
        )
    assert found == [
        (
            0,
            "text",
            (
                ("left", ".02"),
                ("top", ".02"),
                ("text", "Anterior"),
                ("scale", "1"),
                ("fs", ".05"),
                ("oi", "1"),
            ),
        ),
        (
            1,
            "rect",
            (("left", ".5"), ("top", ".3"), ("width", ".1"), ("height", ".08"), ("oi", "1")),
        ),
        (
            2,
            "ellipse",
            (("left", ".47"), ("top", ".62"), ("rx", ".02"), ("ry", ".02"), ("oi", "1")),
        ),
        (
            3,
            "ellipse",
            (("left", ".3"), ("top", ".7"), ("rx", ".025"), ("ry", ".025"), ("oi", "1")),
        ),
        (
            3,
            "polygon",
            (("left", ".6"), ("top", ".7"), ("points", ".6,.7 .66,.7 .63,.76"), ("oi", "1")),
        ),
    ]


def test_import_makes_one_card_per_occlusion_or_group_with_the_image(diagram_deck, tmp_path):
    """Three cards (acc, vta, the amygdala pair), the image in the media folder, the asked
    region as Anki's active mask on the front, and the region's name on the back."""
    apkg = build(diagram_deck, tmp_path / "d.apkg", clock=T1).path
    with LearnerCollection(tmp_path / "learner") as learner:
        learner.import_apkg(apkg)
        view = learner.view()
        assert learner.col.media.have("midsagittal.png")
        media = Path(learner.col.media.dir()) / "midsagittal.png"
        assert media.read_bytes() == (diagram_deck / "media/midsagittal.png").read_bytes()
    cards = view.cards_of(note_guid("test", "midline"))
    assert [c.ord for c in cards] == [0, 1, 2]
    assert {c.deck for c in cards} == {"Test Deck::Brain Regions"}
    answers = ["Anterior cingulate cortex", "Ventral tegmental area", "Amygdala"]
    for number, (card, answer) in enumerate(zip(cards, answers, strict=True), start=1):
        active = re.findall(
            r'<div class="cloze" data-ordinal="(\d+)" data-shape="(\w+)"', card.question
        )
        assert {n for n, _ in active} == {str(number), "0"}  # the asked region and the label
        assert '<img src="midsagittal.png">' in card.question
        assert "Midsagittal view" in card.question
        assert answer not in card.question
        assert f'<div class="nd-io-answer nd-io-c{number}" data-occlusion="' in card.answer
        assert answer in card.answer and "Positions are approximate." in card.answer
    assert ".card3 .nd-io-c3" in OCCLUSION.css  # the back shows card N's answer on card N only
    note = view.notes[note_guid("test", "midline")]
    assert "topic::brain-regions" in note.tags and note.notetype == OURS


def test_hide_one_leaves_the_other_regions_uncovered(make_deck, tmp_path):
    """mode: hide-one writes no oi=1, Anki's "hide one, guess one"."""
    deck = make_deck(
        {
            "regions.yaml": DIAGRAM_YAML.replace("hide-all", "hide-one"),
            "media/midsagittal.png": png(400, 300),
        }
    )
    view = import_apkg(build(deck, tmp_path / "d.apkg", clock=T1).path, tmp_path)
    (note,) = view.notes.values()
    assert "image-occlusion:rect:left=.5:top=.3:width=.1:height=.08}}" in note.fields["Occlusion"]
    assert ":oi=" not in note.fields["Occlusion"]


def test_moving_reordering_adding_and_removing_shapes_keeps_every_regions_history(
    diagram_deck, tmp_path
):
    """The learner studies release 1; release 2 moves vta, lists the amygdala first, removes
    acc and adds the nucleus accumbens. Each region keeps its card and history, the new one
    gets an unused number, and the removed one's card stays the learner's (with a warning)."""
    build(diagram_deck, tmp_path / "r1.apkg", clock=T1)
    lock = (diagram_deck / LOCK_FILE).read_text()
    assert re.findall(r"^occlusion\t.*$", lock, re.M) == [
        "occlusion\tmidline\tacc\t1",
        "occlusion\tmidline\tvta\t2",
        "occlusion\tmidline\tamygdala\t3",
    ]
    path = diagram_deck / "regions.yaml"
    text = path.read_text()
    acc = "      - {id: acc, answer: Anterior cingulate cortex, rect: [0.50, 0.30, 0.10, 0.08]}\n"
    vta = "      - {id: vta, answer: Ventral tegmental area, ellipse: [0.47, 0.62, 0.04, 0.04]}\n"
    amygdala = text[text.index("      - {id: amygdala-left") : text.index("    labels:")]
    moved_vta = vta.replace("[0.47, 0.62,", "[0.45, 0.60,")
    nacc = "      - {id: nacc, answer: Nucleus accumbens, ellipse: [0.40, 0.55, 0.05, 0.04]}\n"
    path.write_text(text.replace(acc + vta + amygdala, amygdala + moved_vta + nacc))

    guid = note_guid("test", "midline")
    with LearnerCollection(tmp_path / "learner") as learner:
        learner.import_apkg(tmp_path / "r1.apkg")
        assert learner.answer_all(ease=3) == 3
        before = {c.ord: c for c in learner.view().cards_of(guid)}
        warnings = check(diagram_deck).warnings
        log = learner.import_apkg(build(diagram_deck, tmp_path / "r2.apkg", clock=T2).path)
        after = {c.ord: c for c in learner.view().cards_of(guid)}
        logs = learner.review_logs()
    assert log.counts() == {"new": 0, "updated": 1, "duplicate": 0, "conflicting": 0}
    assert sorted(after) == [0, 1, 2, 3]
    for ordinal in (0, 1, 2):  # acc (now removed), vta (moved), amygdala (reordered)
        kept, was = after[ordinal], before[ordinal]
        assert (kept.card_id, kept.ivl, kept.reps, kept.type) == (
            was.card_id,
            was.ivl,
            was.reps,
            was.type,
        )
        assert logs[kept.card_id] == 1
    assert 'data-left=".45"' in after[1].question  # vta moved, on its own card
    assert after[3].reps == 0 and "Nucleus accumbens" in after[3].answer  # a new card, c4
    assert re.findall(r"^occlusion\t.*$", (diagram_deck / LOCK_FILE).read_text(), re.M) == [
        "occlusion\tmidline\tacc\t1",
        "occlusion\tmidline\tvta\t2",
        "occlusion\tmidline\tamygdala\t3",
        "occlusion\tmidline\tnacc\t4",
    ]
    (removed,) = [w for w in warnings if "lost occlusion" in w.message]
    assert removed.message.startswith("diagram 'midline' lost occlusion 'acc' (c1)")


def test_a_removed_occlusion_never_lends_its_number_to_a_new_one(diagram_deck, tmp_path):
    """Removing acc (c1) and adding nacc gives nacc c4; adding acc back gives it c1 again."""
    build(diagram_deck, tmp_path / "r1.apkg", clock=T1)
    path = diagram_deck / "regions.yaml"
    text = path.read_text()
    path.write_text(text.replace("{id: acc,", "{id: nacc,"))
    build(diagram_deck, tmp_path / "r2.apkg", clock=T2)
    path.write_text(text)
    build(diagram_deck, tmp_path / "r3.apkg", clock=T2 + 10)
    lock = (diagram_deck / LOCK_FILE).read_text()
    assert re.findall(r"^occlusion\tmidline\t(\S+)\t(\d+)$", lock, re.M) == [
        ("acc", "1"),
        ("vta", "2"),
        ("amygdala", "3"),
        ("nacc", "4"),
    ]


def test_lock_occlusion_records_round_trip_and_refuse_repeats():
    text = format_lock(parse_lock("l", "occlusion\tmidline\tvta\t2\nocclusion\tmidline\tacc\t1\n"))
    assert [line for line in text.splitlines() if not line.startswith(("#", "lock\t"))] == [
        "occlusion\tmidline\tacc\t1",
        "occlusion\tmidline\tvta\t2",
    ]
    with pytest.raises(NeurodeckError, match="repeated or invalid"):
        parse_lock("l", "occlusion\tmidline\tvta\t2\nocclusion\tmidline\tacc\t2\n")


@pytest.mark.parametrize(
    ("value", "written"),
    [(0, ".0000"), (0.5, ".5"), (0.3734, ".3734"), (0.12345, ".1235"), (1, "1."), (0.02, ".02")],
)
def test_numbers_are_written_as_ankis_editor_writes_them(value, written):
    assert anki_number(value) == written


def test_image_formats_and_sizes_are_read_from_the_first_bytes():
    jpeg = (
        b"\xff\xd8\xff\xe0"
        + struct.pack(">H", 16)
        + b"JFIF\x00"
        + b"\x00" * 9
        + b"\xff\xc0"
        + struct.pack(">HBHH", 17, 8, 300, 400)
        + b"\x00" * 12
    )
    webp = (
        b"RIFF\x00\x00\x00\x00WEBPVP8X"
        + b"\x00" * 8
        + (399).to_bytes(3, "little")
        + (299).to_bytes(3, "little")
    )
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 300">'
    assert tuple(sniff_image(png(400, 300))) == ("png", 400, 300)
    assert tuple(sniff_image(jpeg)) == ("jpeg", 400, 300)
    assert tuple(sniff_image(webp)) == ("webp", 400, 300)
    assert tuple(sniff_image(svg)) == ("svg", 400, 300)
    assert sniff_image(b"GIF89a") is None and sniff_image(b"name: deck") is None


def test_every_image_layout_gives_its_size_or_none():
    """Lossy and lossless WebP, SVG sizes in attributes, JPEG padding markers; a file whose
    size cannot be read is still its format (and its shapes are not judged in pixels)."""
    riff = b"RIFF\x00\x00\x00\x00WEBP"
    lossy = (
        riff + b"VP8 " + b"\x00" * 4 + b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", 400, 300)
    )
    bits = (400 - 1) | (300 - 1) << 14
    lossless = riff + b"VP8L" + b"\x00" * 4 + b"\x2f" + bits.to_bytes(4, "little")
    assert tuple(sniff_image(lossy)) == ("webp", 400, 300)
    assert tuple(sniff_image(lossless)) == ("webp", 400, 300)
    assert tuple(sniff_image(riff + b"ALPH" + b"\x00" * 20)) == ("webp", None, None)
    sized = b'<svg width="400px" height=\'300\' viewBox="0 0 40 30">'
    assert tuple(sniff_image(sized)) == ("svg", 400, 300)
    assert tuple(sniff_image(b"<svg>")) == ("svg", None, None)
    assert tuple(sniff_image(b"<!-- a comment --><svg")) == ("svg", None, None)  # tag not closed
    frame = b"\xff\xc0" + struct.pack(">HBHH", 17, 8, 300, 400) + b"\x00" * 12
    assert tuple(sniff_image(b"\xff\xd8\xff\xd0" + frame)) == ("jpeg", 400, 300)  # RST0 skipped
    assert tuple(sniff_image(b"\xff\xd8\xff\xe0\x00\x02XY" + frame)) == ("jpeg", None, None)
    assert tuple(sniff_image(b"\xff\xd8\xff")) == ("jpeg", None, None)


def test_shapes_on_an_image_without_a_pixel_size_are_not_judged_in_pixels(make_deck):
    tiny = "      - {id: dot, rect: [0.1, 0.1, 0.001, 0.001]}\n    labels:"
    regions = DIAGRAM_YAML.replace("midsagittal.png", "plain.svg").replace("    labels:", tiny)
    svg = '<svg xmlns="http://www.w3.org/2000/svg"{}></svg>'
    deck = make_deck({"regions.yaml": regions, "media/plain.svg": svg.format("")})
    assert check(deck).warnings == []
    (deck / "media" / "plain.svg").write_text(svg.format(' width="400" height="300"'))
    (warning,) = check(deck).warnings
    assert warning.message.startswith("occlusion 'dot' of note 'midline' is 0.3 pixels across")


def test_a_diagram_whose_image_is_a_symlink_loop_is_one_located_error(make_deck, runner):
    deck = make_deck({"regions.yaml": DIAGRAM_YAML})
    (deck / "media").mkdir()
    (deck / "media" / "midsagittal.png").symlink_to("midsagittal.png")
    result = runner.invoke(cli, ["check", str(deck)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{deck / 'regions.yaml'}:5:5: error: image 'media/midsagittal.png' in note 'midline' "
        f"cannot be read: Symlink loop from '{deck / 'media' / 'midsagittal.png'}'",
        "  hint: check the path; it is relative to the deck directory",
        "1 problem found",
    ]


def test_a_shape_under_five_pixels_is_a_warning(make_deck):
    """Anki's editor drops such shapes when the learner edits the note, so check says so."""
    deck = make_deck({"regions.yaml": DIAGRAM_YAML, "media/midsagittal.png": png(100, 100)})
    warnings = [w for w in check(deck).warnings if "pixels across" in w.message]
    assert [w.message for w in warnings] == [
        "occlusion 'vta' of note 'midline' is 4.0 pixels across on this 100x100 image"
    ]


def test_the_fix_the_hint_suggests_builds(make_deck, tmp_path):
    """Applying the hint for a shape outside the image (keep left + width within 1) works."""
    bad = DIAGRAM_YAML.replace("[0.50, 0.30, 0.10, 0.08]", "[0.95, 0.30, 0.10, 0.08]")
    deck = make_deck({"regions.yaml": bad, "media/midsagittal.png": png(400, 300)})
    with pytest.raises(NeurodeckError, match="reaches outside the image"):
        check(deck)
    (deck / "regions.yaml").write_text(
        DIAGRAM_YAML.replace("[0.50, 0.30, 0.10, 0.08]", "[0.90, 0.30, 0.10, 0.08]")
    )
    assert check(deck).card_count == 3


def test_release_check_flags_a_removed_occlusion_and_passes_a_moved_one(diagram_deck, tmp_path):
    """Moving a shape is a plain update; removing one orphans its card, which release-check
    names (and tells learners to run Empty Cards); a lost lock that renumbers regions is
    caught too."""
    from neurodeck.release_check import check_release
    from neurodeck.snapshot import read_side

    v1 = build(diagram_deck, tmp_path / "v1.apkg", clock=T1).path
    path = diagram_deck / "regions.yaml"
    text = path.read_text()
    path.write_text(text.replace("[0.47, 0.62,", "[0.45, 0.60,"))
    moved = build(diagram_deck, tmp_path / "v2.apkg", clock=T2).path
    verdict = check_release(read_side(v1, clock=T1), read_side(moved, clock=T2))
    assert [f.rule for f in verdict.listed] == ["version"]  # the move is an ordinary update

    acc = "      - {id: acc, answer: Anterior cingulate cortex, rect: [0.50, 0.30, 0.10, 0.08]}\n"
    path.write_text(text.replace(acc, ""))
    removed = build(diagram_deck, tmp_path / "v3.apkg", clock=T2 + 5).path
    verdict = check_release(read_side(v1, clock=T1), read_side(removed, clock=T2))
    rules = [f.rule for f in verdict.findings]
    assert "occlusion-removed" in rules and "occlusion-renumbered" not in rules
    (finding,) = [f for f in verdict.findings if f.rule == "occlusion-removed"]
    assert "lost occlusion 'acc' (c1)" in finding.message
    assert any("Tools → Empty Cards" in line for line in verdict.tell_learners())

    (diagram_deck / LOCK_FILE).unlink()  # the lock is lost: numbers restart at 1
    renumbered = build(diagram_deck, tmp_path / "v4.apkg", clock=T2 + 9).path
    verdict = check_release(read_side(v1, clock=T1), read_side(renumbered, clock=T2))
    (finding,) = [f for f in verdict.findings if f.rule == "occlusion-renumbered"]
    assert "'vta' c2 → c1" in finding.message


def test_readme_diagram_example_builds_into_the_cards_it_promises(make_deck, tmp_path):
    """The README's example: three cards (the insula pair, the accumbens, the claustrum)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Diagrams: image-occlusion notes") :]
    example = re.search(r"```yaml\n(.*?)```", section, re.DOTALL).group(1)
    deck_yaml = "name: Test Deck\nid: test\nsources:\n  fonov-2009: {title: MNI template}\n"
    deck = make_deck(
        {"deck.yaml": deck_yaml, "diagrams.yaml": example, "media/coronal.png": png(450, 390)}
    )
    view = import_apkg(build(deck, tmp_path / "d.apkg", clock=T1).path, tmp_path)
    (note,) = view.notes.values()
    assert note.fields["Occlusion"].count("{{c") == 5
    assert (
        "{{c2::image-occlusion:rect:left=.4:top=.64:width=.2:height=.07:oi=1}}"
        in (note.fields["Occlusion"])
    )
    assert [c.ord for c in view.cards] == [0, 1, 2]


def test_html_export_draws_each_diagram_card_with_numbered_shapes(diagram_deck, tmp_path):
    """The preview page has no Anki script, so it draws the masks as SVG over the inlined image:
    the asked region red on the front and outlined on the back, the others yellow, numbered."""
    from click.testing import CliRunner

    from neurodeck.cli import cli

    out = tmp_path / "preview.html"
    result = CliRunner().invoke(
        cli, ["export", str(diagram_deck), "--format", "html", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert page.count('<svg class="nd-io-masks" viewBox="0 0 400 300"') == 6  # 3 cards, 2 sides
    assert page.count('<img src="data:image/png;base64,') == 6
    first = page[page.index("midline</code> · Cloze 1") : page.index("midline</code> · Cloze 2")]
    front, back = first.split("<figcaption>Back</figcaption>")
    assert '<rect x="200.0" y="90.0" width="40.0" height="24.0" fill="#ff8e8e"' in front
    assert '<rect x="200.0" y="90.0" width="40.0" height="24.0" fill="none"' in back
    assert front.count('fill="#ffeba2"') == 3  # vta and the two amygdala shapes
    assert ">1</text>" in front and ">3</text>" in front and ">Anterior</text>" in front
    assert "Anterior cingulate cortex" in back and "Anterior cingulate cortex" not in front


def test_html_export_of_hide_one_outlines_the_regions_not_asked(make_deck, tmp_path):
    """In hide-one mode only the asked region is covered: the others are drawn as outlines."""
    from neurodeck.export import render_html
    from neurodeck.snapshot import compile_snapshot

    deck = make_deck(
        {
            "regions.yaml": DIAGRAM_YAML.replace("mode: hide-all", "mode: hide-one"),
            "media/midsagittal.png": png(400, 300),
        }
    )
    snapshot = compile_snapshot(deck, clock=T1)
    page = render_html(snapshot, snapshot.notes)
    first = page[page.index("midline</code> · Cloze 1") : page.index("midline</code> · Cloze 2")]
    front = first.split("<figcaption>Back</figcaption>")[0]
    assert '<rect x="200.0" y="90.0" width="40.0" height="24.0" fill="#ff8e8e"' in front
    assert 'fill="#ffeba2"' not in page
    assert front.count('fill="none" stroke="#8c959f"') == 3  # vta and the two amygdala shapes


def test_markdown_export_shows_the_diagram_and_each_cards_answer(diagram_deck, tmp_path):
    """A study sheet has no masks: the image, which region is asked, and its answer."""
    from neurodeck.export import write_export
    from neurodeck.snapshot import compile_snapshot

    out = tmp_path / "sheet.md"
    write_export(compile_snapshot(diagram_deck, clock=T1), "md", out)
    card = (
        "**Q:** Midsagittal view\n\n![](sheet_media/midsagittal.png)\n\n(region {n})\n\n"
        "**A:** {answer}\n\nPositions are approximate.\n\n"
        "*Neurobiological Foundations of Intimacy*\n"
    )
    answers = ["Anterior cingulate cortex", "Ventral tegmental area", "Amygdala"]
    assert out.read_text(encoding="utf-8") == (
        "# Test Deck\n\nVersion 1.0.0 · 1 note · 3 cards\n\n## Brain Regions\n\n"
        + "\n---\n\n".join(card.format(n=n, answer=a) for n, a in enumerate(answers, 1))
    )
    assert (tmp_path / "sheet_media" / "midsagittal.png").read_bytes() == png(400, 300)


def test_card_numbers_above_the_styling_limit_are_an_error(diagram_deck):
    """After more than 100 occlusions came and went, a new one would get c101, whose answer the
    note type's styling cannot show: check says so and names the fix."""
    build(diagram_deck, diagram_deck.parent / "r1.apkg", clock=T1)
    lock = diagram_deck / LOCK_FILE
    lock.write_text(
        lock.read_text().replace("occlusion\tmidline\tamygdala\t3", "occlusion\tmidline\told\t100")
    )
    with pytest.raises(NeurodeckError) as caught:
        check(diagram_deck)
    (problem,) = caught.value.problems
    assert problem.message == (
        "diagram 'midline' has card numbers above 100: 'amygdala' (c101); "
        "their backs would show no answer"
    )


def test_verify_passes_on_a_deck_with_diagrams(diagram_deck, tmp_path):
    """`neurodeck verify`: Anki imports every diagram note and renders every card."""
    from neurodeck.verify import verify_apkg

    result = verify_apkg(build(diagram_deck, tmp_path / "d.apkg", clock=T1).path)
    assert result.ok, result.problems
    assert (result.notes, result.cards) == (1, 3)
    assert result.note_types == (OURS,)


def test_markup_from_a_hostile_package_stays_inside_its_attribute_and_never_crashes():
    """Diff and the exports read packages too: odd values are escaped or counted as 0."""
    from neurodeck.export.cards import _cloze
    from neurodeck.export.diagram import _fraction

    hostile = '{{c1::image-occlusion:rect:left=" onmouseover="alert(1):top=nan:width=.1}}'
    rendered = _cloze(hostile, 1, answer=False)
    assert 'data-left="&quot; onmouseover=&quot;alert(1)"' in rendered
    assert [_fraction(v) for v in ("abc", "nan", "inf", None, ".25")] == [0, 0, 0, 0, 0.25]


def test_diff_names_a_diagram_by_its_header(diagram_deck, tmp_path):
    """A diagram's first field is mask markup; diff and the changelog show its header."""
    from click.testing import CliRunner

    from neurodeck.cli import cli

    empty = diagram_deck.parent / "empty"
    empty.mkdir()
    (empty / "deck.yaml").write_text((diagram_deck / "deck.yaml").read_text())
    result = CliRunner().invoke(cli, ["diff", str(empty), str(diagram_deck), "--format", "md"])
    assert "- `midline` (Brain Regions): Diagram: Midsagittal view\n" in result.stdout


_ACC = "{id: acc, answer: Anterior cingulate cortex,"


@pytest.mark.parametrize(
    ("original", "broken", "message", "repaired"),
    [
        # A second `vta`; the hint: give every shape its own id.
        (_ACC, _ACC.replace("acc", "vta", 1), "duplicate occlusion id 'vta'", _ACC),
        # The group answers twice, differently; the hint: write it once, or make them the same.
        (
            "group: amygdala, polygon:",
            "group: amygdala, answer: Hypothalamus, polygon:",
            "answers 'Hypothalamus', but",
            "group: amygdala, answer: Amygdala, polygon:",
        ),
        # A colon in a label; the hint: leave out ':'.
        ("{text: Anterior,", "{text: 'Anterior: front',", "contains ':'", "{text: Anterior front,"),
    ],
)
def test_applying_the_hint_fixes_the_diagram(make_deck, original, broken, message, repaired):
    """Each case breaks the example diagram, checks the message, then applies the hint."""
    deck = make_deck(
        {
            "regions.yaml": DIAGRAM_YAML.replace(original, broken),
            "media/midsagittal.png": png(400, 300),
        }
    )
    with pytest.raises(NeurodeckError) as caught:
        check(deck)
    assert any(message in p.message for p in caught.value.problems)
    (deck / "regions.yaml").write_text(DIAGRAM_YAML.replace(original, repaired))
    assert check(deck).card_count == 3


def test_the_back_of_each_card_shows_only_its_own_answer_in_a_browser(diagram_deck, tmp_path):
    """The back carries every region's name, and the note type's CSS shows only the asked
    one's (Anki puts `cardN` on the body): rendered in Chromium with the CSS Anki stored, the
    visible text of each back names its own region and no other."""
    from test_export import run_chromium

    apkg = build(diagram_deck, tmp_path / "d.apkg", clock=T1).path
    with LearnerCollection(tmp_path / "learner") as learner:
        learner.import_apkg(apkg)
        view = learner.view()
        css = learner.col.models.by_name(OURS)["css"]
    cards = view.cards_of(note_guid("test", "midline"))
    answers = ["Anterior cingulate cortex", "Ventral tegmental area", "Amygdala"]
    for number, card in enumerate(cards, start=1):
        page = tmp_path / f"back-{number}.html"
        # innerText leaves out what CSS hides; the script swaps the page for its visible text.
        page.write_text(
            f"<!doctype html><html><head><style>{css}</style></head>"
            f'<body class="card card{number}">{card.answer}'
            "<script>document.body.textContent = '[' + document.body.innerText + ']';</script>"
            "</body></html>",
            encoding="utf-8",
        )
        visible = run_chromium(tmp_path, "--dump-dom", page.as_uri())
        shown = [a for a in answers if a in visible]
        assert shown == [answers[number - 1]], (number, visible[-400:])

"""`neurodeck export`: csv checked with Anki's own text importer, the html preview checked in
headless Chromium and against Anki's card rendering, json and the Markdown study sheet."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from anki.collection import ImportCsvRequest
from anki_helpers import LearnerCollection, LearnerView, import_apkg
from click.testing import CliRunner
from conftest import PEPTIDES_YAML, MakeDeck

from neurodeck import ids
from neurodeck.cli import cli, progress_wanted
from neurodeck.export import render_html, render_json
from neurodeck.export.cards import render_cards
from neurodeck.export.csv_export import csv_guid, quote
from neurodeck.export.html_export import PAGE_CSS, SCRIPT
from neurodeck.snapshot import compile_snapshot

SHIPPED_DECK = Path(__file__).parent.parent / "cards"


def export(runner: CliRunner, deck_dir: Path, fmt: str, out: Path) -> str:
    result = runner.invoke(cli, ["export", str(deck_dir), "--format", fmt, "-o", str(out)])
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    return out.read_text(encoding="utf-8")


def build(runner: CliRunner, deck_dir: Path, out: Path) -> Path:
    result = runner.invoke(cli, ["build", str(deck_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


# ------------------------------------------------------------------------------------ csv


def test_csv_starts_with_the_header_lines_anki_reads(
    runner: CliRunner, sample_deck: Path, tmp_path: Path
) -> None:
    text = export(runner, sample_deck, "csv", tmp_path / "deck.csv")
    assert text.splitlines()[:8] == [
        "#separator:tab",
        "#html:true",
        "#guid column:1",
        "#notetype column:2",
        "#deck column:3",
        "#tags column:6",
        "#columns:GUID\tNote type\tDeck\tFront or Text\tBack or Back Extra\tTags",
        "\t".join(
            [
                csv_guid(ids.note_guid("test", "oxytocin-touch")),
                "Basic",
                "Test Deck::Neuropeptides",
                "Which neuropeptide is released during physical " "touch and intimacy?",
                "Oxytocin<br><br>"
                "Often called the &quot;bonding hormone&quot;.<br><br>"
                "<small><cite>Neurobiological Foundations of Intimacy</cite> · Neural Pathways "
                "of Intimacy</small>",
                "neuropeptides oxytocin test::Neuropeptides",
            ]
        ),
    ]


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("plain", "plain"),
        ("tab\there", '"tab\there"'),
        ('say "hi"', '"say ""hi"""'),
        ("two\nlines", '"two\nlines"'),
        ("#hash", '"#hash"'),
        (" padded ", '" padded "'),
        ("", ""),
    ],
)
def test_csv_values_are_quoted_as_anki_expects(value: str, quoted: str) -> None:
    assert quote(value) == quoted


def notes_and_cards(view: LearnerView) -> tuple[dict[str, object], list[tuple[str, int, str]]]:
    notes = {g: (n.notetype, n.fields, sorted(n.tags)) for g, n in view.notes.items()}
    cards = sorted((c.note_guid, c.ord, c.deck) for c in view.cards)
    return notes, cards


def test_anki_imports_tricky_values_from_the_csv_as_typed(
    runner: CliRunner, make_deck: MakeDeck, tmp_path: Path
) -> None:
    """Tabs, hashes, quotes and several paragraphs survive Anki's CSV reader."""
    tricky = PEPTIDES_YAML + (
        "  - id: tricky\n"
        '    front: "Tabs\\tand #hashes, \'quotes\' and \\"doubles\\""\n'
        "    back: |\n      Two paragraphs.\n\n      - and\n      - a list\n"
    )
    deck_dir = make_deck({"peptides.yaml": tricky})
    csv_path = tmp_path / "deck.csv"
    export(runner, deck_dir, "csv", csv_path)
    with LearnerCollection(tmp_path / "from-csv") as learner:
        col = learner.col
        metadata = col.get_csv_metadata(str(csv_path), None)
        log = col.import_csv(ImportCsvRequest(path=str(csv_path), metadata=metadata)).log
        assert (len(log.new), len(log.conflicting), len(log.missing_notetype)) == (4, 0, 0)
        got = learner.view()
    note = got.notes[csv_guid(ids.note_guid("test", "tricky"))]
    assert note.fields["Front"] == "Tabs\tand #hashes, 'quotes' and &quot;doubles&quot;"
    assert note.fields["Back"].startswith(
        "<p>Two paragraphs.</p>\n<ul>\n<li>and</li>\n<li>a list</li>\n</ul>"
    )


def test_the_csv_next_to_the_apkg_never_touches_the_apkg_notes(
    runner: CliRunner, sample_deck: Path, tmp_path: Path
) -> None:
    """CSV notes have GUIDs of their own: importing both gives two copies, each intact."""
    apkg = build(runner, sample_deck, tmp_path / "deck.apkg")
    csv_path = tmp_path / "deck.csv"
    export(runner, sample_deck, "csv", csv_path)
    with LearnerCollection(tmp_path / "learner") as learner:
        learner.import_apkg(apkg)
        before = learner.view()
        metadata = learner.col.get_csv_metadata(str(csv_path), None)
        log = learner.col.import_csv(ImportCsvRequest(path=str(csv_path), metadata=metadata)).log
        assert (len(log.new), len(log.conflicting)) == (3, 0)
        after = learner.view()
        log = learner.import_apkg(apkg)
        assert log.counts() == {"new": 0, "updated": 0, "duplicate": 3, "conflicting": 0}
    for guid, note in before.notes.items():
        assert after.notes[guid] == note


# ----------------------------------------------------------------------------------- html


def test_cards_render_exactly_as_anki_renders_them(runner: CliRunner, tmp_path: Path) -> None:
    """Our template subset against Anki's renderer, for every card of the shipped deck.

    Anki also writes the hidden answer into a data-cloze attribute on the front; the preview
    leaves it out, and this comparison ignores it.
    """
    deck_dir = tmp_path / "cards"
    shutil.copytree(SHIPPED_DECK, deck_dir)
    snapshot = compile_snapshot(deck_dir, clock=1_700_000_000)
    ours = {
        (n.guid, c.ordinal): (c.front, c.back)
        for n in snapshot.notes
        for c in render_cards(snapshot, n)
    }
    view = import_apkg(build(runner, deck_dir, tmp_path / "deck.apkg"), tmp_path)
    drop = re.compile(r' data-cloze="[^"]*"')
    anki = {
        (c.note_guid, c.ord): (drop.sub("", c.question), drop.sub("", c.answer)) for c in view.cards
    }
    assert ours == anki


def test_cards_with_formulas_render_exactly_as_anki_renders_them(
    runner: CliRunner, make_deck: MakeDeck, tmp_path: Path
) -> None:
    """A cloze deletion inside MathJax is bare text in Anki, not a <span>: so in the preview."""
    from test_learner import MATH_YAML

    deck_dir = make_deck({"math.yaml": MATH_YAML})
    snapshot = compile_snapshot(deck_dir, clock=1_700_000_000)
    ours = {
        (n.guid, c.ordinal): (c.front, c.back)
        for n in snapshot.notes
        for c in render_cards(snapshot, n)
    }
    view = import_apkg(build(runner, deck_dir, tmp_path / "deck.apkg"), tmp_path)
    drop = re.compile(r' data-cloze="[^"]*"')
    anki = {
        (c.note_guid, c.ord): (drop.sub("", c.question), drop.sub("", c.answer)) for c in view.cards
    }
    assert ours == anki


def test_the_page_is_self_contained_and_allows_only_its_own_script(
    runner: CliRunner, sample_deck: Path, tmp_path: Path
) -> None:
    page = export(runner, sample_deck, "html", tmp_path / "deck.html")
    assert re.findall(r"<(script|style|link)\b", page) == ["style", "style", "script"]
    assert not re.search(r'\bsrc="https?:', page)
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert policy is not None and policy.group(1).startswith("default-src 'none'; img-src data:;")
    assert f"<script>{SCRIPT}</script>" in page and f"<style>{PAGE_CSS}</style>" in page
    assert page.count('<article class="nd-item">') == 5  # 1 basic + 2 reversed + 2 cloze


def test_card_text_cannot_inject_markup(make_deck: MakeDeck, tmp_path: Path) -> None:
    deck_dir = make_deck(
        {
            "x.yaml": """\
        deck: "<img src=x onerror=alert(1)>"
        tags: ["<b>"]
        notes:
          - id: evil
            front: "<script>alert(1)</script>"
            back: "</div><style>body{display:none}</style>"
        """
        }
    )
    page = render_html(snapshot := compile_snapshot(deck_dir, clock=0), snapshot.notes)
    assert page.count("<script") == 1 and page.count("<style") == 2
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img" not in page


def test_cloze_shows_the_gap_on_the_front_and_highlights_it_on_the_back(
    sample_deck: Path,
) -> None:
    snapshot = compile_snapshot(sample_deck, clock=0)
    mirror = next(n for n in snapshot.notes if n.note_id == "mirror-neurons-fire")
    first = render_cards(snapshot, mirror)[0]
    assert '<span class="cloze" data-ordinal="1">[...]</span>' in first.front
    assert '<span class="cloze" data-ordinal="1">perform an action</span>' in first.back


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip(
            "chromium is not on PATH (apt-get install chromium) to check the html " "preview"
        )
    return path


def run_chromium(tmp_path: Path, *args: str) -> str:
    command = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


def test_chromium_shows_every_card_and_the_search_filters_them(
    runner: CliRunner, sample_deck: Path, tmp_path: Path
) -> None:
    page = tmp_path / "deck.html"
    export(runner, sample_deck, "html", page)
    dom = run_chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.count('<article class="nd-item">') == 5  # the script ran and hid nothing
    assert "Which neuropeptide is released during physical touch and intimacy?" in dom
    assert 'id="nd-count" for="nd-search" aria-live="polite"></output>' in dom

    dom = run_chromium(tmp_path, "--dump-dom", page.as_uri() + "#q=mirror%20OBSERVE&night")
    assert dom.count('<article class="nd-item" hidden="">') == 3
    assert dom.count('<section class="nd-subdeck" id="subdeck-1">') == 1
    assert ">2 of 5 cards</output>" in dom
    assert '<body class="nightMode night_mode">' in dom


def test_chromium_screenshot_of_the_preview(
    runner: CliRunner, sample_deck: Path, tmp_path: Path
) -> None:
    page = tmp_path / "deck.html"
    export(runner, sample_deck, "html", page)
    shot = tmp_path / "preview.png"
    run_chromium(
        tmp_path,
        "--hide-scrollbars",
        "--window-size=1280,900",
        f"--screenshot={shot}",
        page.as_uri(),
    )
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000


# ------------------------------------------------------------------------------ json, md


def test_json_lists_notes_with_ids_guids_fields_and_cards(
    runner: CliRunner, sample_deck: Path, tmp_path: Path
) -> None:
    data = json.loads(export(runner, sample_deck, "json", tmp_path / "deck.json"))
    assert data["deck"] == {"id": "test", "name": "Test Deck", "version": "1.0.0"}
    assert [n["id"] for n in data["notes"]] == [
        "oxytocin-touch",
        "vasopressin-pair-bonding",
        "mirror-neurons-fire",
    ]
    vasopressin = data["notes"][1]
    assert vasopressin["guid"] == ids.note_guid("test", "vasopressin-pair-bonding")
    assert (vasopressin["type"], vasopressin["deck"]) == ("reversed", "Test Deck::Neuropeptides")
    assert vasopressin["tags"] == ["neuropeptides", "test::Neuropeptides"]
    assert vasopressin["fields"]["front"] == "Vasopressin"
    assert [(c["ordinal"], c["name"]) for c in vasopressin["cards"]] == [
        (1, "Card 1"),
        (2, "Card 2"),
    ]
    assert vasopressin["cards"][1]["front"] == (
        '<div class="nd-prompt">Neuropeptide linked to pair bonding in mammals</div>'
    )


def test_markdown_is_a_study_sheet_by_subdeck(
    runner: CliRunner, sample_deck: Path, tmp_path: Path
) -> None:
    text = export(runner, sample_deck, "md", tmp_path / "deck.md")
    source = "*Neurobiological Foundations of Intimacy*"
    assert (
        text
        == f"""\
# Test Deck

Version 1.0.0 · 3 notes · 5 cards

## Neuropeptides

**Q:** Which neuropeptide is released during physical touch and intimacy?

**A:** Oxytocin

Often called the "bonding hormone".

{source} · Neural Pathways of Intimacy

---

**Q:** Vasopressin

**A:** Neuropeptide linked to pair bonding in mammals

{source} · Neural Pathways of Intimacy

---

**Q:** Neuropeptide linked to pair bonding in mammals

**A:** Vasopressin

{source} · Neural Pathways of Intimacy

---

**Q:** Mirror neurons fire when we **\\[...\\]** and when we observe it.

**A:** Mirror neurons fire when we **perform an action** and when we observe it.

{source} · Mirror Neurons

---

**Q:** Mirror neurons fire when we perform an action and when we **\\[...\\]**.

**A:** Mirror neurons fire when we perform an action and when we **observe it**.

{source} · Mirror Neurons
"""
    )


def test_nested_subdecks_get_nested_headings(
    make_deck: MakeDeck, tmp_path: Path, runner: CliRunner
) -> None:
    deck_dir = make_deck(
        {
            "a.yaml": "deck: Psychotherapy\nnotes:\n  - {id: a, front: A?, back: a}\n",
            "b.yaml": (
                "deck: Psychotherapy::Neuro-Informed\nnotes:\n  - {id: b, front: B?, back: b}\n"
            ),
            "c.yaml": "deck: Other::Deeper\nnotes:\n  - {id: c, front: C?, back: c}\n",
        }
    )
    text = export(runner, deck_dir, "md", tmp_path / "deck.md")
    assert re.findall(r"^#+ .*$", text, re.MULTILINE) == [
        "# Test Deck",
        "## Psychotherapy",
        "### Neuro-Informed",
        "## Other",
        "### Deeper",
    ]


def test_markdown_keeps_numbered_and_nested_lists(
    make_deck: MakeDeck, tmp_path: Path, runner: CliRunner
) -> None:
    # A rule line in a field is only a paragraph break: `---` separates the sheet's cards.
    back = "Steps:\n\n1. Touch\n2. Oxytocin\n   - bonding\n   - trust\n\n***\n\nEnd"
    deck_dir = make_deck(
        {"a.yaml": f"notes:\n  - id: a\n    front: How?\n    back: {json.dumps(back)}\n"}
    )
    text = export(runner, deck_dir, "md", tmp_path / "deck.md")
    assert "**A:** Steps:\n\n1. Touch\n2. Oxytocin\n\n   - bonding\n   - trust\n\nEnd\n" in text


# ------------------------------------------------------------------------- the command


def test_export_writes_to_build_by_default_and_leaves_the_deck_alone(
    runner: CliRunner, sample_deck: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in sample_deck.iterdir())
    result = runner.invoke(cli, ["export", "cards", "--format", "md"])
    assert (result.exit_code, result.stdout, result.stderr) == (
        0,
        "Wrote build/test.md: 3 notes, 5 cards\n",
        "",
    )  # no progress bar off a terminal
    assert sorted(p.name for p in sample_deck.iterdir()) == before


@pytest.mark.parametrize("fmt", ["html", "json"])
def test_a_failed_export_keeps_the_previous_file(
    runner: CliRunner, make_deck: MakeDeck, tmp_path: Path, fmt: str
) -> None:
    # JSON is written as the notes come: the fifty before the mistake went to a temp file,
    # which is dropped.
    deck_dir = make_deck(
        {
            "a.yaml": "deck: A\nnotes:\n"
            + "".join(f"  - {{id: n{i}, front: Q{i}?, back: A{i}}}\n" for i in range(50)),
            "bad.yaml": "notes:\n  - id: x\n    frnt: Q\n    back: A\n",
        }
    )
    out = tmp_path / f"deck.{fmt}"
    out.write_text("previous good export")
    result = runner.invoke(cli, ["export", str(deck_dir), "--format", fmt, "-o", str(out)])
    assert result.exit_code == 1
    assert "unknown key 'frnt'" in result.stderr
    assert out.read_text() == "previous good export"
    assert not list(tmp_path.glob(".*.tmp"))


def test_progress_bars_stay_off_in_ci_and_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal:
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", Terminal())
    monkeypatch.delenv("CI", raising=False)
    assert progress_wanted()
    monkeypatch.setenv("CI", "true")
    assert not progress_wanted()
    monkeypatch.undo()
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not progress_wanted()


def test_an_export_on_a_terminal_advances_a_bar_on_stderr_and_writes_the_same_file(
    runner: CliRunner, sample_deck: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain, barred = tmp_path / "plain.md", tmp_path / "barred.md"
    result = runner.invoke(cli, ["export", str(sample_deck), "--format", "md", "-o", str(plain)])
    assert (result.exit_code, result.stderr) == (0, "")
    monkeypatch.setattr("neurodeck.cli.progress_wanted", lambda: True)
    result = runner.invoke(cli, ["export", str(sample_deck), "--format", "md", "-o", str(barred)])
    assert (result.exit_code, result.stdout) == (0, f"Wrote {barred}: 3 notes, 5 cards\n")
    assert result.stderr.startswith("Exporting md")
    assert barred.read_bytes() == plain.read_bytes()


def test_markdown_sheet_links_images_that_are_copied_beside_it(
    runner: CliRunner, make_deck: MakeDeck, tmp_path: Path
) -> None:
    """The sheet linked `brain scan.png` beside itself, where no such file was."""
    import re
    import urllib.parse

    png = b"\x89PNG\r\n\x1a\nnot really"
    deck_dir = make_deck(
        {
            "fig.yaml": "source: intimacy\nnotes:\n  - id: figure\n"
            "    front: 'Where is it? ![a diagram](<images/brain scan.png>)'\n"
            "    back: Here\n",
            "images/brain scan.png": png,
        }
    )
    sheet = tmp_path / "out" / "sheet.md"
    sheet.parent.mkdir()
    text = export(runner, deck_dir, "md", sheet)
    (link,) = re.findall(r"!\[a diagram\]\(([^)]*)\)", text)
    assert link == "sheet_media/brain%20scan.png"
    assert (sheet.parent / urllib.parse.unquote(link)).read_bytes() == png


def test_markdown_urls_and_file_names_cannot_break_out_into_html(
    make_deck: MakeDeck, tmp_path: Path, runner: CliRunner
) -> None:
    """A source URL with `) <img onerror=…> (` used to end the link and put live HTML in the .md."""
    from markdown_it import MarkdownIt

    evil = "https://example.com/a) <img src=x onerror=alert(1)> ("
    deck_dir = make_deck(
        {
            "deck.yaml": f"name: T\nid: t\nsources:\n  s: {{title: Paper, url: '{evil}'}}\n",
            "x.yaml": "source: s\nnotes:\n  - id: a\n    front: 'Q? ![a (b)](<images/x) y.png>)'\n"
            "    back: A\n",
            "images/x) y.png": b"\x89PNG\r\n\x1a\n",
        }
    )
    text = export(runner, deck_dir, "md", tmp_path / "deck.md")
    assert (
        "[*Paper*](https://example.com/a%29%20%3Cimg%20src=x%20onerror=alert%281%29%3E%20%28)"
        in text
    )
    assert "![a (b)](deck_media/x%29%20y.png)" in text  # copied beside the sheet
    # A Markdown renderer that passes raw HTML through (as many do) finds no tag but ours.
    page = MarkdownIt("commonmark").render(text)
    assert "<img src=x" not in page and "onerror=alert(1)>" not in page
    assert re.findall(r"<(img|a) [^>]*>", page) == ["img", "a"]


@pytest.mark.parametrize("files", [{}, {"peptides.yaml": PEPTIDES_YAML}])
def test_the_json_export_is_what_one_json_dump_would_write(
    make_deck: MakeDeck, files: dict[str, str]
) -> None:
    snapshot = compile_snapshot(make_deck(files), clock=1_700_000_000)
    notes = [
        {
            "id": note.note_id,
            "guid": note.guid,
            "type": snapshot.notetype_of(note).key,
            "deck": note.deck,
            "tags": list(note.tags),
            "fields": snapshot.fields_of(note),
            "cards": [
                {"ordinal": c.ordinal + 1, "name": c.name, "front": c.front, "back": c.back}
                for c in render_cards(snapshot, note)
            ],
        }
        for note in snapshot.notes
    ]
    data = {
        "deck": {"id": snapshot.deck_slug, "name": snapshot.deck_name, "version": snapshot.version},
        "notes": notes,
    }
    text = render_json(snapshot, snapshot.notes)
    assert text == json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def test_a_line_break_in_a_field_stays_a_line_break_in_the_study_sheet():
    """A `<br>` became two trailing spaces, which the sheet's own clean-up then removed."""
    from markdown_it import MarkdownIt

    from neurodeck.export.md_export import html_to_markdown

    sheet = html_to_markdown("<p>first line<br>second line<br></p><p>next<br></p>")
    assert sheet == "first line\\\nsecond line\n\nnext"
    assert MarkdownIt("commonmark").render(sheet) == (
        "<p>first line<br />\nsecond line</p>\n<p>next</p>\n"
    )

"""`neurodeck verify`: a built package imported by Anki's own library, reported as Anki sees it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import anki.buildinfo
import genanki
import pytest

from neurodeck.cli import cli
from neurodeck.errors import NeurodeckError
from neurodeck.pipeline import build
from neurodeck.verify import verify_apkg

ANKI = anki.buildinfo.version


@pytest.fixture
def apkg(sample_deck: Path, tmp_path: Path) -> Path:
    """The README's three-note deck (basic, reversed, cloze with two deletions), built."""
    return build(sample_deck, tmp_path / "test.apkg", clock=1_700_000_000).path


def test_verify_reports_what_anki_imported_and_exits_0(runner, apkg: Path) -> None:
    result = runner.invoke(cli, ["verify", str(apkg)])
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        f"Anki {ANKI} imported {apkg}: 3 notes, 5 cards, 2 decks, 3 note types",
        "Import log: 3 new, 0 updated, 0 duplicate, 0 conflicting",
        "All 5 cards render with a front and a back",
    ]


def test_verify_json_lists_decks_note_types_and_the_import_log(runner, apkg: Path) -> None:
    result = runner.invoke(cli, ["verify", str(apkg), "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {
        "ok": True,
        "path": str(apkg),
        "anki": ANKI,
        "found_notes": 3,
        "notes": 3,
        "cards": 5,
        "decks": ["Test Deck", "Test Deck::Neuropeptides"],
        "note_types": [
            "Test Deck: Basic",
            "Test Deck: Basic (and reversed card)",
            "Test Deck: Cloze",
        ],
        "log": {"new": 3, "updated": 0, "duplicate": 0, "conflicting": 0},
        "problems": [],
    }


def test_verify_leaves_nothing_behind(apkg: Path, tmp_path: Path, monkeypatch) -> None:
    """The throwaway collection lives in a temporary directory that is removed afterwards."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr("tempfile.tempdir", None)
    assert verify_apkg(apkg).ok
    assert list(scratch.iterdir()) == []


def test_a_file_that_is_not_a_zip_is_a_clear_error(runner, tmp_path: Path) -> None:
    bad = tmp_path / "broken.apkg"
    bad.write_bytes(b"this is not a zip archive")
    result = runner.invoke(cli, ["verify", str(bad)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{bad}: error: not an Anki package: the file is not a zip archive",
        "  hint: rebuild it with `neurodeck build`; the file may be truncated",
        "1 problem found",
    ]


def test_a_zip_anki_cannot_read_is_a_clear_error(runner, tmp_path: Path) -> None:
    bad = tmp_path / "garbage.apkg"
    with zipfile.ZipFile(bad, "w") as archive:
        archive.writestr("collection.anki2", b"not a database" * 100)
        archive.writestr("media", "{}")
    with pytest.raises(NeurodeckError) as caught:
        verify_apkg(bad)
    (problem,) = caught.value.problems
    assert problem.message.startswith("Anki could not import the package: ")
    result = runner.invoke(cli, ["verify", str(bad)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stderr.startswith(f"{bad}: error: Anki could not import the package: ")


def test_a_truncated_package_is_a_clear_error(runner, apkg: Path) -> None:
    apkg.write_bytes(apkg.read_bytes()[: apkg.stat().st_size // 2])
    result = runner.invoke(cli, ["verify", str(apkg), "--format", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["problems"][0]["message"] == (
        "not an Anki package: the file is not a zip archive"
    )


def test_cards_anki_cannot_render_and_notes_without_cards_fail(runner, tmp_path: Path) -> None:
    """Anki renders template errors and blank fronts into the card; verify must catch both."""
    fields = [{"name": "Front"}, {"name": "Back"}]
    unknown_field = genanki.Model(
        1_900_000_001,
        "Broken",
        fields=fields,
        templates=[{"name": "Card 1", "qfmt": "{{Front}} {{Nope}}", "afmt": "{{Back}}"}],
    )
    conditional = genanki.Model(
        1_900_000_002,
        "Conditional",
        fields=fields,
        templates=[{"name": "Card 1", "qfmt": "{{#Back}}{{Front}}{{/Back}}", "afmt": "{{Back}}"}],
    )
    deck = genanki.Deck(1_900_000_003, "Broken deck")
    deck.add_note(genanki.Note(model=unknown_field, fields=["one", "1"], guid="g-one"))
    blank = genanki.Note(model=conditional, fields=["two", ""], guid="g-two")
    blank.cards = [genanki.Card(0)]  # genanki would make none: Anki shows a blank front
    deck.add_note(blank)
    no_cards = genanki.Note(model=conditional, fields=["three", ""], guid="g-three")
    deck.add_note(no_cards)
    path = tmp_path / "broken.apkg"
    genanki.Package(deck).write_to_file(str(path), timestamp=1_700_000_000)

    result = runner.invoke(cli, ["verify", str(path)])
    assert result.exit_code == 1
    assert result.stdout.splitlines()[:2] == [
        f"Anki {ANKI} imported {path}: 3 notes, 2 cards, 1 deck, 2 note types",
        "Import log: 3 new, 0 updated, 0 duplicate, 0 conflicting",
    ]
    assert result.stderr.splitlines() == [
        f"{path}: error: 1 note imported without any card",
        f"{path}: error: card 1 of note 'one' (guid g-one): Anki cannot render the front: "
        "Front template has a problem: Found '{{Nope}}', but there is no field called 'Nope'",
        f"{path}: error: card 1 of note 'two' (guid g-two): Anki cannot render the front: "
        "The front of this card is blank.",
        "3 problems found by Anki",
    ]


def test_without_anki_verify_says_how_to_install_it(runner, apkg: Path, monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "anki" or m.startswith("anki.")]:
        monkeypatch.setitem(sys.modules, name, None)  # importing it now raises ImportError
    result = runner.invoke(cli, ["verify", str(apkg)])
    assert result.exit_code == 2  # a usage problem: the deck is not at fault
    assert result.stderr.splitlines() == [
        "Error: `neurodeck verify` needs Anki's own library (the `anki` package), "
        "which is not installed",
        "  hint: install it with: pip install 'neurodeck[anki]'",
    ]
    assert "Traceback" not in result.output


def test_build_imports_only_what_it_needs(sample_deck: Path, tmp_path: Path) -> None:
    """Start-up time: `neurodeck build` must not pay for Anki's library (about 0.5 s), nor for
    the asyncio that genanki's cached-property backport would import (about 50 ms)."""
    code = (
        "import sys\n"
        "from neurodeck.cli import cli\n"
        f"cli.main(['build', {str(sample_deck)!r}, '-o', {str(tmp_path / 'x.apkg')!r}],"
        " standalone_mode=False)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('anki', 'asyncio', 'cached_property')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[]"


def test_verify_help_names_the_extra(runner) -> None:
    result = runner.invoke(cli, ["verify", "--help"])
    assert result.exit_code == 0
    assert "pip install 'neurodeck[anki]'" in result.stdout
    assert "neurodeck verify build/neurodeck.apkg" in result.stdout


def test_the_shipped_deck_verifies(runner, tmp_path: Path) -> None:
    cards = Path(__file__).resolve().parent.parent / "cards"
    if not (cards / "deck.yaml").is_file():
        pytest.skip("cards/deck.yaml does not exist yet: the shipped deck is being written")
    deck_dir = shutil.copytree(cards, tmp_path / "cards")  # never touch the repository's lock
    apkg = build(deck_dir, tmp_path / "neurodeck.apkg", clock=1_700_000_000).path
    result = runner.invoke(cli, ["verify", str(apkg), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["problems"] == []
    assert report["log"] == {
        "new": report["found_notes"],
        "updated": 0,
        "duplicate": 0,
        "conflicting": 0,
    }
    assert report["notes"] == report["found_notes"] > 0


@pytest.mark.parametrize("option", ["--version", "--help"])
def test_version_and_help_import_only_the_command_line(option: str) -> None:
    """Start-up time: `neurodeck --version` and `--help` load click and the command line,
    not the pipeline, YAML, genanki or SQLite that the commands themselves need."""
    code = (
        "import sys\n"
        "from neurodeck.cli import cli\n"
        f"cli.main([{option!r}], standalone_mode=False)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('yaml', 'genanki', 'sqlite3', 'markdown_it')"
        " or m.startswith('neurodeck.') and m not in ('neurodeck.cli', 'neurodeck.errors')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[]"

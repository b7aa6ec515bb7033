"""`neurodeck diff`: notes added, changed and removed between deck directories and packages,
and reading a .apkg as untrusted input."""

from __future__ import annotations

import json
import sqlite3
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import PEPTIDES_YAML, MakeDeck

from neurodeck import ids
from neurodeck.cli import cli
from neurodeck.diff import diff_snapshots
from neurodeck.snapshot import read_side
from neurodeck.unpack import MAX_RATIO

# The sample deck, one release later: an edited answer, a new tag, a note moved to another
# file's subdeck, one note removed and one added.
PEPTIDES_V2 = (
    PEPTIDES_YAML.replace("    back: Oxytocin\n", "    back: Oxytocin (OT)\n")
    .replace("    tags: [oxytocin]\n", "    tags: [oxytocin, touch]\n")
    .split("  - id: mirror-neurons-fire")[0]
    + """\
  - id: dopamine-reward
    front: Which neurotransmitter signals reward?
    back: Dopamine
"""
)


def build(runner: CliRunner, deck_dir: Path, out: Path) -> Path:
    """Build with the CLI, as a release would (SOURCE_DATE_EPOCH comes from conftest)."""
    result = runner.invoke(cli, ["build", str(deck_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def new_deck(make_deck: MakeDeck) -> Path:
    return make_deck({"peptides.yaml": PEPTIDES_V2}, name="new")


def test_diff_of_deck_directories_names_notes_by_id(
    runner: CliRunner, sample_deck: Path, new_deck: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(sample_deck.parent)
    result = runner.invoke(cli, ["diff", "cards", "new"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert (
        result.stdout
        == """\
Test Deck: 1.0.0 (cards) → 1.0.0 (new): 1 added, 1 changed, 1 removed

Added:
  dopamine-reward  [Neuropeptides] Which neurotransmitter signals reward?

Changed:
  oxytocin-touch: back, tags

Removed:
  mirror-neurons-fire  [Neuropeptides] Mirror neurons fire when we perform an action and when we…
"""
    )


def test_a_markdown_changelog_of_no_change_says_so(runner: CliRunner, sample_deck: Path) -> None:
    result = runner.invoke(cli, ["diff", str(sample_deck), str(sample_deck), "--format", "md"])
    assert (result.exit_code, result.stdout) == (
        0,
        "## Changes from 1.0.0 to 1.0.0\n\nNo note changed.\n",
    )


def test_diff_as_markdown_is_a_changelog_section(
    runner: CliRunner, sample_deck: Path, new_deck: Path
) -> None:
    result = runner.invoke(cli, ["diff", str(sample_deck), str(new_deck), "--format", "md"])
    assert result.exit_code == 0
    assert (
        result.stdout
        == """\
## Changes from 1.0.0 to 1.0.0

1 note added, 1 changed, 1 removed.

### Added

- `dopamine-reward` (Neuropeptides): Which neurotransmitter signals reward?

### Changed

- `oxytocin-touch` (Neuropeptides): Which neuropeptide is released during physical touch and… \
— back, tags

### Removed

- `mirror-neurons-fire` (Neuropeptides): Mirror neurons fire when we perform an action and \
when we…
"""
    )


def test_diff_as_json_gives_ids_guids_and_changed_parts(
    runner: CliRunner, sample_deck: Path, new_deck: Path
) -> None:
    result = runner.invoke(cli, ["diff", str(sample_deck), str(new_deck), "--format", "json"])
    data = json.loads(result.stdout)
    assert data["changed"] == [
        {
            "id": "oxytocin-touch",
            "guid": ids.note_guid("test", "oxytocin-touch"),
            "deck": "Neuropeptides",
            "text": "Which neuropeptide is released during physical touch and…",
            "changed": ["back", "tags"],
        }
    ]
    assert [n["id"] for n in data["added"]] == ["dopamine-reward"]
    assert [n["id"] for n in data["removed"]] == ["mirror-neurons-fire"]
    assert (data["old"]["notes"], data["new"]["notes"]) == (3, 3)


def test_a_package_side_borrows_note_ids_from_the_deck_directory(
    runner: CliRunner, sample_deck: Path, new_deck: Path, tmp_path: Path
) -> None:
    """Packages hold no note ids; the other side's ids name the notes both sides have."""
    old = build(runner, sample_deck, tmp_path / "v1.apkg")
    result = runner.invoke(cli, ["diff", str(old), str(new_deck)])
    assert result.exit_code == 0
    assert "  oxytocin-touch: back, tags\n" in result.stdout
    # Only the package knows the removed note: it is named by GUID and first field.
    guid = ids.note_guid("test", "mirror-neurons-fire")
    assert f"  GUID {guid}  [Neuropeptides] Mirror neurons fire when" in result.stdout


def test_two_packages_are_compared_by_guid_and_first_field(
    runner: CliRunner, sample_deck: Path, new_deck: Path, tmp_path: Path
) -> None:
    old = build(runner, sample_deck, tmp_path / "v1.apkg")
    new = build(runner, new_deck, tmp_path / "v2.apkg")
    changes = diff_snapshots(read_side(old, clock=0), read_side(new, clock=0))
    assert [(c.ref.note_id, c.ref.text, c.parts) for c in changes.changed] == [
        (None, "Which neuropeptide is released during physical touch and…", ("back", "tags"))
    ]
    assert [r.guid for r in changes.added] == [ids.note_guid("test", "dopamine-reward")]


def test_a_moved_and_retyped_note_says_from_what_to_what(
    runner: CliRunner, sample_deck: Path, make_deck: MakeDeck
) -> None:
    vasopressin = PEPTIDES_YAML[
        PEPTIDES_YAML.index("  - id: vasopressin-pair-bonding") : PEPTIDES_YAML.index(
            "  - id: mirror-neurons-fire"
        )
    ]
    new = make_deck(
        {
            "peptides.yaml": PEPTIDES_YAML.replace(vasopressin, ""),
            "hormones.yaml": "deck: Hormones\ntags: [neuropeptides]\nsource: intimacy\nnotes:\n"
            + vasopressin.replace("    type: reversed\n", ""),
        },
        name="moved",
    )
    result = runner.invoke(cli, ["diff", str(sample_deck), str(new)])
    assert result.stdout.splitlines()[-1] == (
        "  vasopressin-pair-bonding: tags, "
        "deck (Neuropeptides → Hormones), "
        "type (reversed → basic)"
    )


def test_identical_sides_have_no_changes_and_diff_writes_nothing(
    runner: CliRunner, sample_deck: Path, tmp_path: Path
) -> None:
    """diff builds a copy: the deck directory gets no lock file and no build/ folder."""
    before = sorted(p.name for p in sample_deck.iterdir())
    result = runner.invoke(cli, ["diff", str(sample_deck), str(sample_deck)])
    assert result.stdout.endswith(": 0 added, 0 changed, 0 removed\n")
    assert sorted(p.name for p in sample_deck.iterdir()) == before
    assert not (tmp_path / "build").exists()


# ----------------------------------------------------------------- untrusted packages


def zip_of(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def sqlite_bytes(tmp_path: Path, sql: str) -> bytes:
    db = tmp_path / "made.anki2"
    conn = sqlite3.connect(db)
    conn.executescript(sql)
    conn.close()
    data = db.read_bytes()
    db.unlink()
    return data


def bad_packages(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Each bad package, with the message it must give (after 'PATH: error: ')."""
    tables = (
        "create table col (models text, decks text);"
        "create table notes (id, guid, mid, mod, tags, flds);"
        "create table cards (id, nid, did, ord, due);"
    )
    return {
        "not a zip": (
            tmp_path / "text.apkg",
            "is not an Anki package: not a readable zip " "archive (File is not a zip file)",
        ),
        "no collection": (
            zip_of(tmp_path / "empty.apkg", {"media": b"{}"}),
            "has no collection.anki2: it is not an Anki deck package",
        ),
        "not zstd": (
            zip_of(tmp_path / "zstd.apkg", {"collection.anki21b": b"x"}),
            "is a damaged Anki package: entry 'collection.anki21b': zstd decompress "
            "error: Unknown frame descriptor",
        ),
        "climbs out": (
            zip_of(tmp_path / "slip.apkg", {"../../etc/cron.d/x": b"", "collection.anki2": b""}),
            "has an unsafe entry name '../../etc/cron.d/x' (it points outside the " "package)",
        ),
        "absolute": (
            zip_of(tmp_path / "abs.apkg", {"/tmp/x": b""}),
            "has an unsafe entry name '/tmp/x' (it points outside the package)",
        ),
        "bomb": (
            zip_of(tmp_path / "bomb.apkg", {"collection.anki2": bytes(8 << 20)}),
            f"expands more than {MAX_RATIO}:1 when unpacked; refusing a possible zip bomb",
        ),
        "not sqlite": (
            zip_of(tmp_path / "junk.apkg", {"collection.anki2": b"junk" * 100}),
            "is not a readable Anki collection: file is not a database",
        ),
        "no tables": (
            zip_of(
                tmp_path / "bare.apkg",
                {
                    "collection.anki2": sqlite_bytes(
                        tmp_path, "create table col (models text, decks text);"
                    )
                },
            ),
            "is not a readable Anki collection: it has no notes table",
        ),
        "empty col": (
            zip_of(tmp_path / "nocol.apkg", {"collection.anki2": sqlite_bytes(tmp_path, tables)}),
            "is not a readable Anki collection: its col table is empty",
        ),
        "bad json": (
            zip_of(
                tmp_path / "json.apkg",
                {
                    "collection.anki2": sqlite_bytes(
                        tmp_path, tables + "insert into col values ('{', '{}');"
                    )
                },
            ),
            "is not a readable Anki collection: its note types are not valid JSON (Expecting "
            "property name enclosed in double quotes: line 1 column 2 (char 1))",
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "not a zip",
        "no collection",
        "not zstd",
        "climbs out",
        "absolute",
        "bomb",
        "not sqlite",
        "no tables",
        "empty col",
        "bad json",
    ],
)
def test_a_bad_package_is_one_clear_error_never_a_traceback(
    runner: CliRunner, sample_deck: Path, tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "text.apkg").write_text("not a zip")
    path, message = bad_packages(tmp_path)[case]
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["diff", path.name, str(sample_deck)])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # handled, not a crash
    assert result.stderr.splitlines()[0] == f"{path.name}: error: {message}"
    assert result.stdout == ""


def test_a_truncated_package_is_reported_as_damaged(
    runner: CliRunner, sample_deck: Path, tmp_path: Path
) -> None:
    whole = build(runner, sample_deck, tmp_path / "whole.apkg").read_bytes()
    cut = tmp_path / "cut.apkg"
    cut.write_bytes(whole[: len(whole) // 2])
    result = runner.invoke(cli, ["diff", str(cut), str(sample_deck)])
    assert result.exit_code == 1
    assert "error: is not an Anki package: not a readable zip archive" in result.stderr


def test_a_missing_side_is_a_located_error(runner: CliRunner, sample_deck: Path) -> None:
    result = runner.invoke(cli, ["diff", "no/such.apkg", str(sample_deck)])
    assert result.exit_code == 1
    assert result.stderr.startswith("no/such.apkg: error: no such deck directory or .apkg file\n")

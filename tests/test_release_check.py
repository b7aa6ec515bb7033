"""`neurodeck release-check`: each of Anki's import rules that can keep a change from learners,
the major-version escape hatch, what learners are told, and reproducible release builds."""

from __future__ import annotations

import json
import shutil
import sqlite3
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import PEPTIDES_YAML

from neurodeck import ids
from neurodeck.cli import cli
from neurodeck.release_check import check_release, major
from neurodeck.snapshot import read_side

MIRROR = PEPTIDES_YAML[PEPTIDES_YAML.index("  - id: mirror-neurons-fire") :]
RETIRE_MIRROR = (
    "    section: Mirror Neurons\n",
    "    section: Mirror Neurons\n    retired: true\n",
)


@pytest.fixture
def deck(sample_deck: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The sample deck, with paths shown relative to its parent (as `cards/...`)."""
    monkeypatch.chdir(sample_deck.parent)
    return Path("cards")


@pytest.fixture
def v1(runner: CliRunner, deck: Path) -> Path:
    """The first release, built as CI builds it (this also writes the deck's lock)."""
    result = runner.invoke(cli, ["build", str(deck), "-o", "v1.apkg"])
    assert result.exit_code == 0, result.output
    return Path("v1.apkg")


def edit(deck: Path, old: str, new: str, *, version: str | None = None) -> None:
    """Change the sample deck's fact set (and its version) as an author would."""
    peptides = deck / "peptides.yaml"
    text = peptides.read_text()
    assert old in text
    peptides.write_text(text.replace(old, new))
    if version:
        deck_yaml = deck / "deck.yaml"
        deck_yaml.write_text(deck_yaml.read_text().replace("version: 1.0.0", f"version: {version}"))


def release_check(runner: CliRunner, old: Path, new: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["release-check", str(old), str(new), *args])
    assert result.stderr == ""
    return result.exit_code, result.stdout


def rewrite_package(apkg: Path, out: Path, change: Callable[[sqlite3.Connection], Any]) -> Path:
    """A copy of a package with its database edited: an older release that differed."""
    work = out.with_suffix(".anki2")
    with zipfile.ZipFile(apkg) as archive:
        work.write_bytes(archive.read("collection.anki2"))
    conn = sqlite3.connect(work)
    change(conn)
    conn.commit()
    conn.close()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(work, "collection.anki2")
        archive.writestr("media", "{}")
    work.unlink()
    return out


def edit_notetype(key: str, change: Callable[[dict[str, Any]], None]) -> Callable[[Any], None]:
    def run(conn: sqlite3.Connection) -> None:
        (models,) = conn.execute("select models from col").fetchone()
        models = json.loads(models)
        change(models[str(ids.notetype_id("test", key))])
        conn.execute("update col set models = ?", (json.dumps(models),))

    return run


def test_a_release_that_adds_and_edits_notes_passes(
    runner: CliRunner, deck: Path, v1: Path
) -> None:
    edit(deck, "back: Oxytocin\n", "back: Oxytocin (OT)\n", version="1.1.0")
    (deck / "more.yaml").write_text("notes:\n  - id: extra-note\n    front: Q?\n    back: A\n")
    assert release_check(runner, v1, deck) == (
        0,
        """\
Test Deck: 1.0.0 (v1.apkg) → 1.1.0 (cards)
No breaking changes: learners who have 1.0.0 get every change in 1.1.0.

Tell learners:
- These notes were updated. Anki replaces an updated note whole, so whatever you wrote in its \
“My notes” (or a diagram's “Comments”) is emptied: copy it out before you import: “Which \
neuropeptide is released during physical touch and…”.
""",
    )
    # An ordinary update is for learners to hear about, not a problem line, even as JSON.
    code, out = release_check(runner, v1, deck, "--format", "json")
    data = json.loads(out)
    assert (code, data["ok"], data["findings"]) == (0, True, [])
    assert [line.split(".")[0] for line in data["tell_learners"]] == ["These notes were updated"]


def test_a_note_type_the_new_release_no_longer_has_is_no_finding(
    runner: CliRunner, deck: Path, v1: Path
) -> None:
    """Only its notes matter (each one removed is a finding of its own); here it has none."""

    def add_unused_type(conn: sqlite3.Connection) -> None:
        (models,) = conn.execute("select models from col").fetchone()
        models = json.loads(models)
        old = {**models[str(ids.notetype_id("test", "basic"))], "id": 99, "name": "Old kind"}
        conn.execute("update col set models = ?", (json.dumps({**models, "99": old}),))

    older = rewrite_package(v1, Path("older.apkg"), add_unused_type)
    assert release_check(runner, older, deck) == (
        0,
        "Test Deck: 1.0.0 (older.apkg) → 1.0.0 (cards)\n"
        "No breaking changes: learners who have 1.0.0 get every change in 1.0.0.\n",
    )


def test_removing_a_note_fails_and_says_what_to_tell_learners(
    runner: CliRunner, deck: Path, v1: Path
) -> None:
    edit(deck, MIRROR, "", version="1.1.0")
    assert release_check(runner, v1, deck) == (
        1,
        f"""\
Test Deck: 1.0.0 (v1.apkg) → 1.1.0 (cards)
v1.apkg: error: note GUID {ids.note_guid("test", "mirror-neurons-fire")} ('Mirror neurons fire \
when we perform an action and when we…') was removed: Anki never deletes a note on import, \
so learners who have it keep it
  hint: ship it once more with `retired: true` (it gets the `retired` tag), and remove it in a \
later release
1 breaking change: fix it, or raise the major version in deck.yaml (now 1.1.0) to release it \
anyway.

Tell learners:
- These notes left the deck. Anki keeps your copies; delete or suspend them if you no longer \
want them: “Mirror neurons fire when we perform an action and when we…”.
""",
    )


def test_comparing_deck_directories_names_the_removed_note_by_id(
    runner: CliRunner, deck: Path, v1: Path
) -> None:
    shutil.copytree(deck, "previous")
    edit(deck, MIRROR, "")
    code, out = release_check(runner, Path("previous"), deck)
    assert code == 1
    assert "previous/peptides.yaml:16:5: error: note 'mirror-neurons-fire' was removed" in out


def test_raising_the_major_version_lets_breaking_changes_through(
    runner: CliRunner, deck: Path, v1: Path
) -> None:
    edit(deck, MIRROR, "", version="2.0.0")
    code, out = release_check(runner, v1, deck)
    assert code == 0
    assert "v1.apkg: warning: note GUID" in out
    assert "1 breaking change, announced by the major version 2.0.0.\n" in out
    assert "\nTell learners:\n- These notes left the deck." in out


def test_a_note_retired_in_the_previous_release_may_be_removed(
    runner: CliRunner, deck: Path
) -> None:
    edit(deck, *RETIRE_MIRROR)
    assert runner.invoke(cli, ["build", str(deck), "-o", "retiring.apkg"]).exit_code == 0
    edit(deck, MIRROR + "    retired: true\n", "", version="1.1.0")
    code, out = release_check(runner, Path("retiring.apkg"), deck)
    assert (code, out.splitlines()[1:]) == (
        0,
        ["No breaking changes: learners who have 1.0.0 get every change in 1.1.0."],
    )


def test_retiring_a_note_tells_learners_how_to_find_it(
    runner: CliRunner, deck: Path, v1: Path
) -> None:
    edit(deck, *RETIRE_MIRROR, version="1.1.0")
    code, out = release_check(runner, v1, deck)
    assert code == 0
    assert "cards/peptides.yaml:16:5: warning: note 'mirror-neurons-fire' is retired\n" in out
    assert "- Some notes are retired: search `tag:retired` in the browser" in out


def test_an_unchanged_version_is_a_warning(runner: CliRunner, deck: Path, v1: Path) -> None:
    edit(deck, "back: Oxytocin\n", "back: Oxytocin (OT)\n")
    code, out = release_check(runner, v1, deck)
    assert code == 0
    assert "cards/deck.yaml: warning: notes changed but the version is still 1.0.0\n" in out


def test_renaming_the_deck_is_breaking(runner: CliRunner, deck: Path, v1: Path) -> None:
    deck_yaml = deck / "deck.yaml"
    deck_yaml.write_text(deck_yaml.read_text().replace("name: Test Deck", "name: Best Deck"))
    code, out = release_check(runner, v1, deck)
    assert code == 1
    assert (
        "cards/deck.yaml: error: the deck was renamed from 'Test Deck' to 'Best Deck': Anki "
        "matches decks by name, so learners' existing cards stay in the old deck and new "
        "cards go to a second one\n"
    ) in out
    assert "- The deck was renamed (“Test Deck” → “Best Deck”). Before importing" in out


def test_a_renamed_id_is_reported_as_a_rename(runner: CliRunner, deck: Path, v1: Path) -> None:
    edit(deck, "id: oxytocin-touch", "id: oxytocin-and-touch", version="1.1.0")
    code, out = release_check(runner, v1, deck)
    assert code == 1
    assert (
        "cards/peptides.yaml:5:5: error: note GUID "
        f"{ids.note_guid('test', 'oxytocin-touch')} ('Which neuropeptide is released during "
        "physical touch and…') seems to be renamed to 'oxytocin-and-touch'"
    ) in out
    assert "- These notes were replaced by a new copy, so you will see both." in out


def test_a_note_type_that_changed_its_fields_is_breaking(
    runner: CliRunner, deck: Path, v1: Path
) -> None:
    def add_field(model: dict[str, Any]) -> None:
        model["flds"].append({**model["flds"][-1], "name": "Mnemonic", "ord": 5, "id": 42})

    old = rewrite_package(v1, Path("v0.apkg"), edit_notetype("basic", add_field))
    code, out = release_check(runner, old, deck)
    assert code == 1
    assert (
        "cards: error: note type 'Test Deck: Basic' changed its fields (removed Mnemonic): "
        "Anki will not update its notes for learners who have the previous release"
    ) in out
    assert "turn on “Merge note types” and set “Update notes” to “Always”" in out


def test_a_styling_change_whose_time_did_not_move_forward_is_breaking(
    runner: CliRunner, deck: Path, v1: Path
) -> None:
    def restyle_in_the_future(model: dict[str, Any]) -> None:
        model["css"] += "\n.card { color: red; }"
        model["mod"] = 2_000_000_000

    old = rewrite_package(v1, Path("v0.apkg"), edit_notetype("cloze", restyle_in_the_future))
    code, out = release_check(runner, old, deck)
    assert code == 1
    assert (
        "cards: error: note type 'Test Deck: Cloze' changed its templates or styling: its "
        "modification time did not move forward, so Anki will skip the change"
    ) in out


def test_an_edit_whose_time_did_not_move_forward_is_breaking(
    runner: CliRunner, deck: Path, v1: Path
) -> None:
    """A lock reset or a clock behind the previous release: Anki would skip the edit."""
    old = rewrite_package(
        v1, Path("v0.apkg"), lambda conn: conn.execute("update notes set mod = 2000000000")
    )
    edit(deck, "back: Oxytocin\n", "back: Oxytocin (OT)\n", version="1.1.0")
    code, out = release_check(runner, old, deck)
    assert code == 1
    assert (
        "cards/peptides.yaml:5:5: error: note 'oxytocin-touch' changed (back): its "
        "modification time did not move forward, so Anki will skip the change\n"
    ) in out


def test_changing_a_notes_type_is_breaking(runner: CliRunner, deck: Path, v1: Path) -> None:
    edit(deck, "    type: reversed\n", "", version="1.1.0")
    code, out = release_check(runner, v1, deck)
    assert code == 1
    assert (
        "cards/peptides.yaml:11:5: error: note 'vasopressin-pair-bonding' changed type "
        "from reversed to basic: Anki will not update it for learners who have the previous "
        "release\n"
    ) in out
    assert "delete the old note and import the deck again: “Vasopressin”." in out


def test_renumbering_cloze_deletions_is_breaking(runner: CliRunner, deck: Path, v1: Path) -> None:
    edit(
        deck,
        "{{c1::perform an action}} and when we {{c2::observe it}}",
        "{{c2::perform an action}} and when we {{c1::observe it}}",
        version="1.1.0",
    )
    code, out = release_check(runner, v1, deck)
    assert code == 1
    assert (
        "cards/peptides.yaml:16:5: error: note 'mirror-neurons-fire' renumbered its cloze "
        "deletions (c1 → c2, c2 → c1): review history stays with the number, so it now "
        "belongs to different text\n"
    ) in out


def test_removing_a_cloze_deletion_is_breaking(runner: CliRunner, deck: Path, v1: Path) -> None:
    edit(deck, "{{c2::observe it}}", "observe it", version="1.1.0")
    code, out = release_check(runner, v1, deck)
    assert code == 1
    assert (
        "cards/peptides.yaml:16:5: error: note 'mirror-neurons-fire' lost cloze deletion c2: "
        "learners keep that card, and it shows an error until they run Tools → Empty Cards\n"
    ) in out
    assert "Remove them with Tools → Empty Cards." in out


def test_moving_a_note_to_another_subdeck_is_breaking(
    runner: CliRunner, deck: Path, v1: Path
) -> None:
    edit(deck, MIRROR, "", version="1.1.0")
    (deck / "mirror.yaml").write_text("deck: Mirrors\nsource: intimacy\nnotes:\n" + MIRROR)
    code, out = release_check(runner, v1, deck)
    assert code == 1
    assert (
        "cards/mirror.yaml:4:5: error: note 'mirror-neurons-fire' moved from subdeck "
        "'Neuropeptides' to 'Mirrors': learners' existing cards stay in the old subdeck\n"
    ) in out
    assert "Change Deck: “Mirror neurons fire when we" in out


def test_release_check_as_json_for_ci(runner: CliRunner, deck: Path, v1: Path) -> None:
    edit(deck, MIRROR, "", version="1.1.0")
    code, out = release_check(runner, v1, deck, "--format", "json")
    data = json.loads(out)
    assert code == 1
    assert (data["ok"], data["breaking"], data["major_raised"]) == (False, 1, False)
    assert [(f["rule"], f["severity"], f["path"]) for f in data["findings"]] == [
        ("removed", "error", "v1.apkg")
    ]


def test_comparing_two_packages_needs_no_deck_directory(
    runner: CliRunner, deck: Path, v1: Path
) -> None:
    edit(deck, "back: Oxytocin\n", "back: Oxytocin (OT)\n", version="1.0.1")
    assert runner.invoke(cli, ["build", str(deck), "-o", "v2.apkg"]).exit_code == 0
    verdict = check_release(read_side(v1, clock=0), read_side(Path("v2.apkg"), clock=0))
    assert (verdict.passed, verdict.listed, verdict.diff.new.version) == (True, [], "1.0.1")
    assert [f.rule for f in verdict.findings] == ["updated"]  # for learners, not a problem


def test_a_release_without_notes_is_still_named(
    runner: CliRunner, deck: Path, v1: Path, tmp_path: Path
) -> None:
    """A package without cards has no deck name of its own (a sloppy or crafted one): the
    verdict's first line names the deck it is compared with, never an empty name."""
    empty = rewrite_package(v1, tmp_path / "empty.apkg", lambda c: c.execute("delete from cards"))
    code, out = release_check(runner, v1, empty)
    assert code == 1
    assert out.startswith("Test Deck: 1.0.0 (v1.apkg) → unversioned (")
    code, out = release_check(runner, empty, empty)
    assert out.startswith("A deck without notes: unversioned (")


@pytest.mark.parametrize(
    ("version", "expected"),
    [("1.4.2", 1), ("v2.0.0", 2), ("3", 3), ("10.0.0-rc.1", 10), ("next", None), (None, None)],
)
def test_the_major_number_comes_from_a_semver_version(
    version: str | None, expected: int | None
) -> None:
    assert major(version) == expected


def test_two_builds_of_the_same_tag_are_byte_identical(
    runner: CliRunner, deck: Path, v1: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two checkouts of one tag, built by CI with --frozen: the same bytes, wherever built."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1712345678")
    shutil.copytree(deck, "checkout-a")
    shutil.copytree(deck, "checkout-b")
    outputs = []
    for checkout in ("checkout-a", "checkout-b"):
        out = Path(checkout) / "build" / "deck.apkg"
        result = runner.invoke(cli, ["build", checkout, "--frozen", "--strict", "-o", str(out)])
        assert result.exit_code == 0, result.output
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == v1.read_bytes()


def test_a_changed_file_named_with_an_underscore_is_breaking(runner: CliRunner, deck: Path) -> None:
    """Anki never replaces a learner's `_` file (tests/test_release_scenario.py shows it):
    the change is flagged, and renaming the file is the fix."""
    edit(deck, "    back: Oxytocin\n", "    back: Oxytocin ![x](_touch.png)\n")
    (deck / "_touch.png").write_bytes(b"v1")
    assert runner.invoke(cli, ["build", str(deck), "-o", "v1.apkg"]).exit_code == 0
    (deck / "_touch.png").write_bytes(b"v2")
    edit(deck, "Oxytocin ![x]", "Oxytocin (OT) ![x]", version="1.1.0")
    code, out = release_check(runner, Path("v1.apkg"), deck)
    assert code == 1
    assert (
        "cards: error: media file '_touch.png' changed: Anki copies a file whose name "
        "starts with `_` (or `latex-`) only when the learner has no file of that name, so "
        "learners who have the previous release keep the old one\n"
        "  hint: give the changed file a new name (such as _diagram-2.png) and refer to "
        "that name\n"
    ) in out
    assert "- Some files changed that Anki does not replace (_touch.png)." in out
    # The fix the hint gives: a new name, referred to by the note.
    (deck / "_touch.png").rename(deck / "_touch-2.png")
    edit(deck, "](_touch.png)", "](_touch-2.png)")
    assert release_check(runner, Path("v1.apkg"), deck)[0] == 0

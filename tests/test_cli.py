"""The command line: exit codes, summaries, located errors, JSON output."""

from __future__ import annotations

import json

import pytest
from conftest import PEPTIDES_YAML

from neurodeck import __version__
from neurodeck.cli import cli

BAD_NOTE = """\
source: intimacy
notes:
  - id: oxytocin-touch
    frnt: Which neuropeptide?
    back: Oxytocin
  - id: bad-source
    front: What?
    back: That
    source: intimacey
"""


def test_build_writes_package_and_prints_summary(runner, sample_deck, tmp_path):
    """A first build said "1 subdecks" and "note types changed" (there was nothing before)."""
    out = tmp_path / "out" / "deck.apkg"
    result = runner.invoke(cli, ["build", str(sample_deck), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"Wrote {out}: 3 notes, 5 cards, 1 subdeck",
        "Updated neurodeck.lock: 3 notes added",
    ]
    assert out.stat().st_size > 0


def test_one_of_each_is_counted_in_the_singular(runner, make_deck, tmp_path):
    deck_dir = make_deck({"one.yaml": "notes:\n  - id: a\n    front: Q\n    back: A\n"})
    deck_dir.joinpath("deck.yaml").write_text("name: T\nid: t\n", encoding="utf-8")
    out = tmp_path / "one.apkg"
    result = runner.invoke(cli, ["build", str(deck_dir), "-o", str(out)])
    assert result.stdout.splitlines() == [
        f"Wrote {out}: 1 note, 1 card, 1 subdeck",
        "Updated neurodeck.lock: 1 note added",
    ]
    result = runner.invoke(cli, ["check", str(deck_dir)])
    assert result.stdout == "1 note, 1 card, 0 errors, 0 warnings\n"
    result = runner.invoke(cli, ["stats", str(deck_dir)])
    assert result.stdout.splitlines()[:4] == [
        "T (t): 1 note, 1 card",
        "",
        "Subdecks:",
        "  T: 1 note, 1 card",
    ]


def test_build_defaults_to_build_dir_named_after_deck_id(
    runner, sample_deck, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["build", str(sample_deck)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "build" / "test.apkg").is_file()


def test_check_reports_every_problem_with_location_and_hint(runner, make_deck):
    deck_dir = make_deck(
        {
            "a.yaml": BAD_NOTE,
            "b.yaml": PEPTIDES_YAML.replace("id: vasopressin-pair-bonding", "id: oxytocin-touch"),
        }
    )
    result = runner.invoke(cli, ["check", str(deck_dir)])
    assert result.exit_code == 1
    a, b = deck_dir / "a.yaml", deck_dir / "b.yaml"
    assert result.stderr.splitlines() == [
        f"{a}:3:5: error: note 'oxytocin-touch' is missing `front`",
        "  hint: basic notes need both `front` (the prompt) and `back` (the answer)",
        f"{a}:4:5: error: unknown key 'frnt' in a note",
        "  hint: did you mean 'front'?",
        f"{a}:9:13: error: unknown source 'intimacey' in note 'bad-source'",
        "  hint: did you mean 'intimacy'?",
        f"{b}:11:5: error: duplicate note id 'oxytocin-touch'",
        f"  hint: first defined at {b}:5:5; every note needs its own id",
        "4 problems found",
    ]
    assert "Traceback" not in result.output


def test_check_clean_deck(runner, sample_deck):
    result = runner.invoke(cli, ["check", str(sample_deck)])
    assert (result.exit_code, result.stdout) == (0, "3 notes, 5 cards, 0 errors, 0 warnings\n")


def test_check_json_of_a_clean_deck(runner, sample_deck):
    result = runner.invoke(cli, ["check", str(sample_deck), "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"ok": True, "notes": 3, "cards": 5, "problems": []}


def test_check_json_lists_findings(runner, make_deck):
    deck_dir = make_deck({"a.yaml": BAD_NOTE})
    result = runner.invoke(cli, ["check", str(deck_dir), "--format", "json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["problems"][1] == {
        "path": str(deck_dir / "a.yaml"),
        "line": 4,
        "column": 5,
        "severity": "error",
        "message": "unknown key 'frnt' in a note",
        "hint": "did you mean 'front'?",
    }


def test_failed_build_keeps_previous_output(runner, make_deck, tmp_path):
    deck_dir = make_deck({"a.yaml": BAD_NOTE})
    out = tmp_path / "deck.apkg"
    out.write_bytes(b"previous good build")
    result = runner.invoke(cli, ["build", str(deck_dir), "-o", str(out)])
    assert result.exit_code == 1
    assert out.read_bytes() == b"previous good build"
    assert not list(tmp_path.glob(".*.tmp"))


def test_warnings_pass_unless_strict(runner, make_deck, tmp_path):
    deck_dir = make_deck({"a.yaml": "notes:\n  - {id: a, front: What?, back: This}\n"})
    out = str(tmp_path / "o.apkg")
    lenient = runner.invoke(cli, ["build", str(deck_dir), "-o", out])
    assert lenient.exit_code == 0
    assert "warning: note 'a' cites no source" in lenient.stderr
    strict = runner.invoke(cli, ["build", str(deck_dir), "-o", out, "--strict"])
    assert strict.exit_code == 1
    assert "warning: note 'a' cites no source" in strict.stderr


def test_frozen_build_fails_on_stale_lock_and_writes_nothing(runner, sample_deck, tmp_path):
    out = tmp_path / "o.apkg"
    result = runner.invoke(cli, ["build", str(sample_deck), "-o", str(out), "--frozen"])
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"{sample_deck / 'neurodeck.lock'}: error: neurodeck.lock is out of date (3 notes added)"
    )
    assert not out.exists() and not (sample_deck / "neurodeck.lock").exists()
    assert runner.invoke(cli, ["build", str(sample_deck), "-o", str(out)]).exit_code == 0
    frozen = runner.invoke(cli, ["build", str(sample_deck), "-o", str(out), "--frozen"])
    assert frozen.exit_code == 0


def test_type_change_warns_that_learners_keep_the_old_note(runner, sample_deck, tmp_path):
    out = str(tmp_path / "o.apkg")
    assert runner.invoke(cli, ["build", str(sample_deck), "-o", out]).exit_code == 0
    path = sample_deck / "peptides.yaml"
    path.write_text(path.read_text().replace("type: reversed", "type: basic"))
    result = runner.invoke(cli, ["check", str(sample_deck)])
    assert result.exit_code == 0
    assert (
        "warning: note 'vasopressin-pair-bonding' changed type from reversed to basic"
        in result.stderr
    )


def test_build_json_summary(runner, sample_deck, tmp_path):
    result = runner.invoke(
        cli, ["build", str(sample_deck), "-o", str(tmp_path / "o.apkg"), "--format", "json"]
    )
    report = json.loads(result.stdout)
    assert (report["ok"], report["notes"], report["cards"], report["subdecks"]) == (True, 3, 5, 1)


def test_stats_json(runner, sample_deck):
    result = runner.invoke(cli, ["stats", str(sample_deck), "--json"])
    numbers = json.loads(result.stdout)
    assert numbers["subdecks"] == {"Test Deck::Neuropeptides": {"notes": 3, "cards": 5}}
    assert numbers["note_types"]["cloze"] == {"notes": 1, "cards": 2}
    assert numbers["tags"]["oxytocin"] == 1


def test_missing_deck_yaml_is_a_content_error(runner, tmp_path):
    result = runner.invoke(cli, ["check", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{tmp_path}: error: no deck.yaml in this directory" in result.stderr


def test_usage_error_exits_2(runner):
    assert runner.invoke(cli, ["build", "--no-such-option"]).exit_code == 2


def test_bad_source_date_epoch_is_a_usage_error(runner, sample_deck, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    result = runner.invoke(cli, ["build", str(sample_deck)])
    assert result.exit_code == 2
    assert "SOURCE_DATE_EPOCH must be whole seconds" in result.stderr


def test_version(runner):
    result = runner.invoke(cli, ["--version"])
    assert result.stdout == f"neurodeck, version {__version__}\n"


@pytest.mark.parametrize("command", ["check", "build", "stats", "export"])
def test_a_deck_directory_that_does_not_exist_is_a_usage_error(
    command, runner, tmp_path, monkeypatch
):
    """`check nosuch` said "no deck.yaml in this directory" and exited 1."""
    monkeypatch.chdir(tmp_path)
    args = [command, "nosuch"] + (["--format", "md"] if command == "export" else [])
    result = runner.invoke(cli, args)
    assert result.exit_code == 2
    assert "Directory 'nosuch' does not exist." in result.stderr
    assert not (tmp_path / "build").exists()


def test_stats_takes_format_json_like_every_other_command(runner, sample_deck):
    """`stats --json` was the odd one out; both spellings give the same JSON."""
    by_format = runner.invoke(cli, ["stats", str(sample_deck), "--format", "json"])
    by_flag = runner.invoke(cli, ["stats", str(sample_deck), "--json"])
    assert by_format.exit_code == by_flag.exit_code == 0
    assert by_format.stdout == by_flag.stdout
    assert json.loads(by_format.stdout)["notes"] == 3
    assert "--format [text|json]" in runner.invoke(cli, ["stats", "--help"]).stdout

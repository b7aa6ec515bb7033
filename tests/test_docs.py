"""The README is a promise: its commands exist and its example error is the real output."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from neurodeck.cli import cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_every_command_is_documented_with_help_and_example(name, runner):
    assert f"neurodeck {name}" in README
    help_text = runner.invoke(cli, [name, "--help"]).stdout
    assert "Example" in help_text


def test_readme_error_example_is_the_real_output(runner, make_deck, monkeypatch, tmp_path):
    """The README shows one bad fact set and what `neurodeck check` prints for it."""
    section = README[README.index("Every mistake is reported at once") :]
    bad_yaml, expected = re.findall(r"```(?:yaml|text)\n(.*?)```", section, re.DOTALL)[:2]
    make_deck({"neuropeptides.yaml": bad_yaml})
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["check", "cards/"])
    assert result.exit_code == 1
    assert result.stderr == expected


def test_readme_set_up_commands_are_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install . && neurodeck build" in README
    assert "pip install '.[test]' && python -m pytest" in README
    assert "pip install '.[test]' && python -m pytest" in ci

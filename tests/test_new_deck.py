"""`neurodeck new`, the reusable action (action.yml) and the pre-commit hooks.

A new deck checks and builds at once, and Anki imports it. The action's and the new deck's
CI steps are run here as GitHub would run them (their `run:` scripts, in bash, with the
inputs in the environment) against a deck made by `neurodeck new` in a git repository.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from anki_helpers import LearnerCollection
from test_schema import VALIDATORS, editor_view

from neurodeck.cli import cli

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(sys.executable).parent  # where the neurodeck command is installed


def new(runner, path: Path, *args: str):
    return runner.invoke(cli, ["new", str(path), *args])


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_new_deck_checks_builds_and_imports_in_anki(runner, tmp_path: Path) -> None:
    deck_dir = tmp_path / "intro-psych"
    result = new(runner, deck_dir, "--name", "Introduction to Psychology")
    assert result.exit_code == 0, result.output
    for name in (
        "deck.yaml",
        "01-example.yaml",
        "README.md",
        ".gitignore",
        ".github/workflows/deck.yml",
        ".pre-commit-config.yaml",
        "schema/deck.schema.json",
        "schema/factset.schema.json",
        "media/example-diagram.png",
    ):
        assert (deck_dir / name).is_file(), name

    checked = runner.invoke(cli, ["check", str(deck_dir)])
    assert checked.exit_code == 0, checked.output + checked.stderr
    assert "4 notes, 8 cards, 0 errors, 0 warnings" in checked.output
    assert runner.invoke(cli, ["check", "--strict", str(deck_dir)]).exit_code == 0

    out = tmp_path / "deck.apkg"
    built = runner.invoke(cli, ["build", str(deck_dir), "-o", str(out)])
    assert built.exit_code == 0, built.output + built.stderr
    with LearnerCollection(tmp_path / "learner") as col:
        log = col.import_apkg(out)
        view = col.view()
        assert col.answer_all(ease=3) == 8
    assert log.counts() == {"new": 4, "updated": 0, "duplicate": 0, "conflicting": 0}
    assert view.decks == (
        "Introduction to Psychology",
        "Introduction to Psychology::Getting Started",
    )
    assert len({n.notetype for n in view.notes.values()}) == 4  # one note of each type
    backs = " ".join(c.answer for c in view.cards)
    assert "One card, from front to back" in backs
    assert '<span class="cloze" data-ordinal="2">another</span>' in backs
    assert (
        "Blue ellipse" in backs
        and len(view.cards_of(next(guid for guid, n in view.notes.items() if "Image" in n.fields)))
        == 3
    )


def test_new_deck_files_validate_against_the_schemas(runner, tmp_path: Path) -> None:
    deck_dir = tmp_path / "d"
    assert new(runner, deck_dir).exit_code == 0
    deck_text = (deck_dir / "deck.yaml").read_text(encoding="utf-8")
    assert deck_text.startswith("# yaml-language-server: $schema=schema/deck.schema.json\n")
    assert VALIDATORS["deck"].is_valid(editor_view(deck_text)[1])
    example = (deck_dir / "01-example.yaml").read_text(encoding="utf-8")
    assert example.startswith("# yaml-language-server: $schema=schema/factset.schema.json\n")
    assert VALIDATORS["factset"].is_valid(editor_view(example)[1])
    # The modelines' relative paths lead to the schema files, which are the shipped ones.
    for which in ("deck", "factset"):
        shipped = ROOT / "src" / "neurodeck" / "schema" / f"{which}.schema.json"
        assert (deck_dir / "schema" / f"{which}.schema.json").read_bytes() == shipped.read_bytes()


def test_each_new_deck_gets_a_fresh_id(runner, tmp_path: Path) -> None:
    ids = set()
    for n in range(3):
        assert new(runner, tmp_path / f"deck{n}" / "psych", "--name", "Psych").exit_code == 0
        text = (tmp_path / f"deck{n}" / "psych" / "deck.yaml").read_text(encoding="utf-8")
        ids.add(re.search(r"^id: (.+)$", text, re.M).group(1))  # type: ignore[union-attr]
    assert len(ids) == 3 and all(re.fullmatch(r"psych-[0-9a-f]{6}", i) for i in ids)


def test_a_name_yaml_would_misread_is_quoted(runner, tmp_path: Path) -> None:
    name = 'Psych: "Week 1" #1 & more'
    assert new(runner, tmp_path / "d", "--name", name).exit_code == 0
    assert yaml.safe_load((tmp_path / "d" / "deck.yaml").read_text())["name"] == name
    assert runner.invoke(cli, ["check", str(tmp_path / "d")]).exit_code == 0


def test_new_refuses_to_overwrite_with_one_line_and_exit_2(runner, tmp_path: Path) -> None:
    deck_dir = tmp_path / "d"
    assert new(runner, deck_dir).exit_code == 0
    (deck_dir / "01-example.yaml").write_text("notes: []\n", encoding="utf-8")  # work done
    before = tree_digest(deck_dir)
    again = new(runner, deck_dir)
    assert again.exit_code == 2
    assert again.stdout == ""
    assert len(again.stderr.splitlines()) == 1
    assert "already exists" in again.stderr and "nothing was written" in again.stderr
    assert again.stderr.endswith("; choose a directory that does not hold a deck yet\n")
    assert tree_digest(deck_dir) == before

    # Any one of its files is enough to refuse; a directory with other things is fine.
    other = tmp_path / "other"
    other.mkdir()
    (other / ".gitignore").write_text("mine\n", encoding="utf-8")
    assert new(runner, other).exit_code == 2
    assert (other / ".gitignore").read_text(encoding="utf-8") == "mine\n"
    assert sorted(p.name for p in other.iterdir()) == [".gitignore"]
    cloned = tmp_path / "cloned"
    (cloned / ".git").mkdir(parents=True)
    assert new(runner, cloned).exit_code == 0


def test_new_refuses_a_file_in_the_way_and_a_name_with_an_empty_part(
    runner, tmp_path: Path
) -> None:
    in_the_way = tmp_path / "notes.txt"
    in_the_way.write_text("mine\n", encoding="utf-8")
    result = new(runner, in_the_way)
    assert result.exit_code == 2
    assert result.stderr.endswith("is a file.\n")  # click's own usage error
    assert in_the_way.read_text(encoding="utf-8") == "mine\n"
    for name in ("  ", "Psychology::"):
        result = new(runner, tmp_path / "d", "--name", name)
        assert result.exit_code == 2
        assert result.stderr == (
            f"neurodeck new: {tmp_path / 'd'} deck name {name!r} is empty or has an empty part; "
            'pass --name "My Deck"\n'
        )
    assert new(runner, tmp_path / "hinted", "--name", "My Deck").exit_code == 0  # the hint
    assert not (tmp_path / "d").exists()
    assert new(runner, tmp_path / "d", "--name", "Psychology::Memory").exit_code == 0


def test_hidden_files_are_not_fact_sets(runner, tmp_path: Path) -> None:
    """The workflow and pre-commit YAML live in the deck directory and are never read."""
    deck_dir = tmp_path / "d"
    assert new(runner, deck_dir).exit_code == 0
    (deck_dir / ".draft.yaml").write_text("not: [a fact set\n", encoding="utf-8")
    result = runner.invoke(cli, ["check", str(deck_dir)])
    assert result.exit_code == 0, result.stderr


# --- CI: the action, the new deck's workflow, pre-commit ------------------------------------


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "T",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "T",
        "GIT_COMMITTER_EMAIL": "t@example.org",
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    }
    done = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.fixture
def released_repo(runner, tmp_path: Path) -> Path:
    """A deck repository made by `neurodeck new`: release v1.0.0 tagged, then one edit."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    assert new(runner, repo, "--name", "Psych").exit_code == 0
    run_cli(repo, "build", ".")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "Release 1.0.0")
    git(repo, "tag", "v1.0.0")
    example = repo / "01-example.yaml"
    example.write_text(
        example.read_text().replace("One card, from front to back", "One card, front then back")
    )
    (repo / "deck.yaml").write_text(
        (repo / "deck.yaml").read_text().replace("version: 1.0.0", "version: 1.0.1")
    )
    run_cli(repo, "build", ".")
    git(repo, "commit", "-qam", "Release 1.0.1")
    git(repo, "tag", "v1.0.1")
    return repo


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(SCRIPTS / "neurodeck"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=ci_env(cwd),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def ci_env(cwd: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    env["PATH"] = f"{SCRIPTS}{os.pathsep}{env.get('PATH', '')}"
    runner_temp = cwd.parent / "runner-temp"
    runner_temp.mkdir(exist_ok=True)
    env.update(
        RUNNER_TEMP=str(runner_temp),
        GITHUB_OUTPUT=str(cwd.parent / "github-output"),
        CI="true",
        **extra,
    )
    return env


_EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def evaluate(expression: str, context: dict[str, str]) -> str:
    """The few GitHub expressions the files use: inputs.X, github.X, steps.X.outputs.Y."""
    return _EXPRESSION.sub(lambda m: context.get(m.group(1), ""), expression)


def condition_holds(condition: str, context: dict[str, str]) -> bool:
    """`inputs.x != ''`, `inputs.x == 'true'` and `startsWith(github.ref, 'refs/tags/v')`."""
    condition = condition.strip()
    if match := re.fullmatch(r"startsWith\((\S+), '([^']*)'\)", condition):
        return context.get(match.group(1), "").startswith(match.group(2))
    match = re.fullmatch(r"(\S+) (==|!=) '([^']*)'", condition)
    assert match, f"a condition this test cannot evaluate: {condition}"
    equal = context.get(match.group(1), "") == match.group(3)
    return equal if match.group(2) == "==" else not equal


def run_steps(
    steps: list[dict[str, object]], cwd: Path, context: dict[str, str], skip: set[str]
) -> list[str]:
    """Run each `run:` step in bash as a runner would; returns the names of steps run."""
    ran = []
    for number, step in enumerate(steps):
        name = str(step.get("id") or step.get("name") or number)
        if "run" not in step or name in skip:
            continue
        if "if" in step and not condition_holds(str(step["if"]), context):
            continue
        env = ci_env(
            cwd, **{k: evaluate(str(v), context) for k, v in dict(step.get("env", {})).items()}
        )  # type: ignore[call-overload]
        script = evaluate(str(step["run"]), context)
        done = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", script],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"step {name} failed:\n{done.stdout}\n{done.stderr}"
        output = Path(env["GITHUB_OUTPUT"])
        if output.exists():
            for line in output.read_text().splitlines():
                key, _, value = line.partition("=")
                context[f"steps.{name}.outputs.{key}"] = value
        ran.append(name)
    return ran


def action_context(action: dict[str, object], **inputs: str) -> dict[str, str]:
    context = {f"inputs.{k}": str(v.get("default", "")) for k, v in action["inputs"].items()}  # type: ignore[attr-defined]
    context.update({f"inputs.{k}": v for k, v in inputs.items()})
    context["github.action_path"] = str(ROOT)
    return context


def test_the_action_checks_builds_and_judges_against_the_previous_release(
    released_repo: Path,
) -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    uses = [s["uses"].split("@")[0] for s in steps if "uses" in s]
    assert uses == ["actions/setup-python", "actions/upload-artifact"]
    context = action_context(action, deck=".", **{"previous-release": "v1.0.0"})
    ran = run_steps(steps, released_repo, context, skip={"install"})  # neurodeck is installed
    assert ran == ["check", "build", "release-check"]
    apkg = released_repo / context["steps.build.outputs.apkg"]
    assert apkg.is_file() and apkg.name.startswith("psych-")
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert evaluate(upload["with"]["path"], context) == context["steps.build.outputs.apkg"]

    # Same commit, same bytes: build --frozen with the commit's time.
    first = apkg.read_bytes()
    run_steps(steps, released_repo, context, skip={"install", "release-check"})
    assert apkg.read_bytes() == first


def test_the_action_fails_a_deck_with_a_mistake_and_an_uncommitted_lock(
    released_repo: Path,
) -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    steps = action["runs"]["steps"]
    check = next(s for s in steps if s.get("id") == "check")
    build = next(s for s in steps if s.get("id") == "build")
    context = action_context(action, deck=".")
    example = released_repo / "01-example.yaml"
    original = example.read_text()
    example.write_text(original.replace("back: One card", "bakc: One card"))
    with pytest.raises(AssertionError, match="unknown key 'bakc'"):
        run_steps([check], released_repo, context, skip=set())
    example.write_text(original.replace("in each direction", "in both directions"))
    with pytest.raises(AssertionError, match="lock"):  # --frozen: the lock must be committed
        run_steps([build], released_repo, context, skip=set())


def test_the_action_takes_a_released_apkg_as_the_previous_release(
    released_repo: Path, tmp_path: Path
) -> None:
    previous = tmp_path / "previous.apkg"
    git(released_repo, "worktree", "add", "-q", str(tmp_path / "v1"), "v1.0.0")
    run_cli(tmp_path / "v1", "build", ".", "-o", str(previous))
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    context = action_context(action, deck=".", **{"previous-release": str(previous)})
    ran = run_steps(action["runs"]["steps"], released_repo, context, skip={"install"})
    assert "release-check" in ran


def test_the_new_decks_workflow_runs_on_a_tag(released_repo: Path) -> None:
    workflow = yaml.safe_load((released_repo / ".github/workflows/deck.yml").read_text())
    steps = workflow["jobs"]["deck"]["steps"]
    names = [s.get("name") for s in steps if "run" in s]
    assert names == [
        "Install neurodeck",
        "Check",
        "Build",
        "Compare with the previous release",
        "Publish the release",
    ]
    context = {"github.ref": "refs/tags/v1.0.1", "github.token": ""}
    ran = run_steps(
        steps, released_repo, context, skip={"Install neurodeck", "Publish the release"}
    )  # pip and GitHub's API
    assert ran == ["Check", "Build", "Compare with the previous release"]
    apkg = next(s for s in steps if "upload-artifact" in s.get("uses", ""))["with"]["path"]
    assert (released_repo / apkg).is_file()
    publish = next(s for s in steps if s.get("name") == "Publish the release")
    assert apkg in publish["run"]


def test_pre_commit_hooks_check_the_decks_of_changed_files(
    released_repo: Path, tmp_path: Path
) -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    by_id = {hook["id"]: hook for hook in hooks}
    assert set(by_id) == {"neurodeck-check", "neurodeck-check-strict"}
    local = yaml.safe_load((released_repo / ".pre-commit-config.yaml").read_text())
    new_deck_hook = local["repos"][0]["hooks"][0]
    for hook in (by_id["neurodeck-check"], new_deck_hook):
        assert hook["types"] == ["yaml"]
        command = [*hook["entry"].split(), "01-example.yaml", ".github/workflows/deck.yml"]

        def run(command: list[str] = command) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                command,
                cwd=released_repo,
                capture_output=True,
                text=True,
                env=ci_env(released_repo),
            )

        done = run()
        assert done.returncode == 0, done.stderr
        assert ".: 4 notes, 8 cards, 0 errors" in done.stdout
        example = released_repo / "01-example.yaml"
        original = example.read_text()
        example.write_text(original.replace("id: example-cloze", "id: Example Cloze"))
        done = run()
        assert done.returncode == 1
        assert "01-example.yaml:" in done.stderr and "not a lowercase slug" in done.stderr
        example.write_text(original)
    # Files in no deck are left alone.
    stray = tmp_path / "stray.yaml"
    stray.write_text("anything: [\n")
    done = subprocess.run(
        [*by_id["neurodeck-check"]["entry"].split(), str(stray)],
        capture_output=True,
        text=True,
        env=ci_env(released_repo),
    )
    assert done.returncode == 0 and done.stdout == ""

"""Issue 11: the lock is never misread, the output never destroys an input, and the deck
tree is read by one rule, with every odd file reported rather than skipped or crashed on."""

from __future__ import annotations

import os
import socket
import sys

import pytest
from conftest import PEPTIDES_YAML
from test_release_check import edit_notetype, rewrite_package

from neurodeck.cli import cli
from neurodeck.lock import LOCK_FILE, MAX_TIME

COMMANDS = ["check", "build", "stats", "export"]


def built(runner, deck_dir, out):
    result = runner.invoke(cli, ["build", str(deck_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out.read_bytes(), (deck_dir / LOCK_FILE).read_bytes()


# --- The lock -------------------------------------------------------------------------------


def test_a_lock_with_an_extra_column_fails_the_build_and_frozen(runner, sample_deck, tmp_path):
    """It used to give a bogus warning per note, and --frozen passed."""
    out = tmp_path / "out.apkg"
    package, _ = built(runner, sample_deck, out)
    lock_path = sample_deck / LOCK_FILE
    lock_path.write_text(
        lock_path.read_text().replace("\tNeuropeptides\n", "\tNeuropeptides\tjunk\n")
    )
    for extra in ([], ["--frozen"]):
        result = runner.invoke(cli, ["build", str(sample_deck), "-o", str(out), *extra])
        assert result.exit_code == 1
        first = result.stderr.splitlines()[0]
        assert first.startswith(
            f"{lock_path}:9: error: cannot read the lock file: a `note` "
            "line has 7 tab-separated columns, this one has 8"
        )
        assert "warning" not in result.stderr
    assert out.read_bytes() == package


_BASIC = "notetype\tbasic\t93f5ae21b63e71cf\t1700000000\n"
_LAST = (
    "note\tvasopressin-pair-bonding\t442808d8a42cf42e\t1700000000\treversed\t0,1\tNeuropeptides\n"
)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (  # a merge conflict left its markers
            lambda t: t.replace("lock\t3\ttest\n", "lock\t3\ttest\n<<<<<<< HEAD\n"),
            "5: error: cannot read the lock file: unknown record '<<<<<<< HEAD'; expected `lock`, "
            "`deck`, `notetype`, `media`, `note` or `occlusion` and tab-separated values",
        ),
        (  # ... or kept both sides of a line
            lambda t: t.replace(_BASIC, _BASIC + _BASIC),
            "7: error: cannot read the lock file: note type 'basic' is repeated",
        ),
        (
            lambda t: t.replace("deck\tTest Deck\n", "deck\tTest Deck\ndeck\tTest Deck\n"),
            "6: error: cannot read the lock file: the `deck` line is repeated",
        ),
        (
            lambda t: t + _LAST.replace("reversed", "Reversed"),
            "12: error: cannot read the lock file: note 'vasopressin-pair-bonding' is out of "
            "order or repeated",
        ),
        (
            lambda t: t.replace("\tbasic\t0\t", "\tBasic\t0\t"),
            "10: error: cannot read the lock file: note 'oxytocin-touch' has a damaged type or "
            "card list",
        ),
        (
            lambda t: t + "occlusion\toxytocin-touch\tregion\tx\n",
            "12: error: cannot read the lock file: occlusion 'region' has a card number 'x' that "
            "is not one",
        ),
    ],
)
def test_a_damaged_lock_line_fails_the_build_with_its_line(
    edit, message, runner, sample_deck, tmp_path
):
    out = tmp_path / "out.apkg"
    package, _ = built(runner, sample_deck, out)
    lock_path = sample_deck / LOCK_FILE
    lock_path.write_text(edit(lock_path.read_text()))
    damaged = lock_path.read_bytes()
    result = runner.invoke(cli, ["build", str(sample_deck), "-o", str(out)])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:2] == [
        f"{lock_path}:{message}",
        "  hint: restore it from version control; if it is lost, rebuild it from the last "
        "released package with `neurodeck lock --from RELEASE.apkg`",
    ]
    assert (out.read_bytes(), lock_path.read_bytes()) == (package, damaged)


def test_a_lock_saved_in_another_encoding_is_a_located_error(runner, sample_deck, tmp_path):
    built(runner, sample_deck, tmp_path / "out.apkg")
    lock_path = sample_deck / LOCK_FILE
    lock_path.write_bytes(
        lock_path.read_bytes().replace(b"Test Deck", "Tëst Deck".encode("latin-1"))
    )
    result = runner.invoke(cli, ["build", str(sample_deck), "-o", str(tmp_path / "new.apkg")])
    assert result.exit_code == 1
    # The ë is the 7th character of the line that names the deck.
    lines = lock_path.read_bytes().splitlines()
    number = 1 + lines.index("deck\tTëst Deck".encode("latin-1"))
    assert result.stderr.splitlines()[:2] == [
        f"{lock_path}:{number}:7: error: cannot read the lock file: it is not UTF-8 text "
        "(byte 0xeb)",
        "  hint: restore it from version control; if it is lost, rebuild it from the last "
        "released package with `neurodeck lock --from RELEASE.apkg`",
    ]
    assert not (tmp_path / "new.apkg").exists()


def test_a_change_past_the_last_time_a_package_can_date_is_refused(runner, sample_deck, tmp_path):
    """A lock whose note already has the latest time (a clock once set to 2107): its next
    change would need a later one."""
    out = tmp_path / "out.apkg"
    package, _ = built(runner, sample_deck, out)
    lock_path = sample_deck / LOCK_FILE
    lock_path.write_text(lock_path.read_text().replace("1700000000\tbasic", f"{MAX_TIME}\tbasic"))
    peptides = sample_deck / "peptides.yaml"
    peptides.write_text(peptides.read_text().replace("back: Oxytocin", "back: Oxytocin (OXT)"))
    damaged = lock_path.read_bytes()
    result = runner.invoke(cli, ["build", str(sample_deck), "-o", str(out)])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"{lock_path}: error: a modification time would pass {MAX_TIME}, the last second a "
        "package can date (2107)"
    )
    assert (out.read_bytes(), lock_path.read_bytes()) == (package, damaged)


def test_lock_from_gives_the_clock_to_what_is_new_or_restyled_since_the_release(
    runner, make_deck, tmp_path
):
    deck_dir = make_deck({"peptides.yaml": PEPTIDES_YAML.split("  - id: vasopressin")[0]})
    release = tmp_path / "release.apkg"
    built(runner, deck_dir, release)
    restyle = edit_notetype("basic", lambda model: model.update(css=model["css"] + "\n.x {}"))
    release = rewrite_package(release, tmp_path / "older.apkg", restyle)
    (deck_dir / "peptides.yaml").write_text(PEPTIDES_YAML)  # + two notes
    (deck_dir / LOCK_FILE).unlink()
    later = {"SOURCE_DATE_EPOCH": "1800000000"}
    result = runner.invoke(cli, ["lock", str(deck_dir), "--from", str(release)], env=later)
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("1 note as released, 0 edited since, 2 new\n")
    times = {
        tuple(line.split("\t")[:2]): line.split("\t")[3]
        for line in (deck_dir / LOCK_FILE).read_text().splitlines()
        if line.startswith("note")
    }
    assert times == {
        ("note", "oxytocin-touch"): "1700000000",
        ("note", "vasopressin-pair-bonding"): "1800000000",
        ("note", "mirror-neurons-fire"): "1800000000",
        ("notetype", "basic"): "1800000000",
        ("notetype", "reversed"): "1700000000",
        ("notetype", "cloze"): "1700000000",
    }


def test_a_directory_named_like_the_lock_is_one_line_for_build_and_lock_from(
    runner, sample_deck, tmp_path
):
    release = tmp_path / "release.apkg"
    built(runner, sample_deck, release)
    lock_path = sample_deck / LOCK_FILE
    lock_path.unlink()
    lock_path.mkdir()
    result = runner.invoke(cli, ["build", str(sample_deck), "-o", str(tmp_path / "new.apkg")])
    assert (result.exit_code, result.stderr) == (
        1,
        f"{lock_path}: error: cannot read the lock file: Is a directory\n"
        "1 problem; nothing was written\n",
    )
    result = runner.invoke(cli, ["lock", str(sample_deck), "--from", str(release)])
    assert (result.exit_code, result.stderr) == (
        1,
        f"{lock_path}: error: cannot write the lock file: Is a directory\n1 problem found\n",
    )
    assert lock_path.is_dir() and not list(lock_path.iterdir())
    assert not (tmp_path / "new.apkg").exists()


@pytest.mark.parametrize("bad", ["100000000000000000000", str(2**63), "1e20", "-5"])
def test_a_source_date_epoch_out_of_range_is_a_usage_error(bad, runner, sample_deck, tmp_path):
    result = runner.invoke(
        cli,
        ["build", str(sample_deck), "-o", str(tmp_path / "o.apkg")],
        env={"SOURCE_DATE_EPOCH": bad},
    )
    assert result.exit_code == 2
    assert "SOURCE_DATE_EPOCH must be whole seconds since 1970" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_huge_time_in_the_lock_is_a_located_error(runner, sample_deck, tmp_path):
    built(runner, sample_deck, tmp_path / "out.apkg")
    lock_path = sample_deck / LOCK_FILE
    lock_path.write_text(lock_path.read_text().replace("\t1700000000\tcloze", f"\t{2**63}\tcloze"))
    result = runner.invoke(cli, ["check", str(sample_deck)])
    assert result.exit_code == 1
    assert f"{lock_path}:9: error: cannot read the lock file: time '{2**63}'" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_lock_from_a_newer_neurodeck_is_refused(runner, sample_deck, tmp_path):
    built(runner, sample_deck, tmp_path / "out.apkg")
    lock_path = sample_deck / LOCK_FILE
    lock_path.write_text(lock_path.read_text().replace("lock\t3\ttest", "lock\t9\ttest"))
    result = runner.invoke(cli, ["check", str(sample_deck)])
    assert result.exit_code == 1
    assert "written by a newer neurodeck" in result.stderr


def test_changing_the_deck_id_while_a_lock_exists_is_an_error(runner, sample_deck, tmp_path):
    out = tmp_path / "out.apkg"
    package, lock = built(runner, sample_deck, out)
    deck_yaml = sample_deck / "deck.yaml"
    deck_yaml.write_text(deck_yaml.read_text().replace("id: test", "id: test-two"))
    for command in (["check"], ["build", "-o", str(out)]):
        result = runner.invoke(cli, [command[0], str(sample_deck), *command[1:]])
        assert result.exit_code == 1
        assert (
            f"{deck_yaml}:1:1: error: deck id changed from 'test' (in neurodeck.lock) to "
            "'test-two'"
        ) in result.stderr
        assert "every learner would get a second copy of every note" in result.stderr
        assert "put back `id: test`" in result.stderr
    assert (out.read_bytes(), (sample_deck / LOCK_FILE).read_bytes()) == (package, lock)
    # The hint, applied, works.
    deck_yaml.write_text(deck_yaml.read_text().replace("id: test-two", "id: test"))
    assert (
        runner.invoke(cli, ["build", str(sample_deck), "-o", str(out), "--frozen"]).exit_code == 0
    )


def test_a_version_1_lock_still_builds_frozen_and_is_migrated_by_build(
    runner, sample_deck, tmp_path
):
    """An old release's committed lock must still rebuild it with --frozen, byte for byte."""
    out = tmp_path / "out.apkg"
    package, _ = built(runner, sample_deck, out)
    lock_path = sample_deck / LOCK_FILE
    v2 = lock_path.read_text()
    v1 = "".join(line for line in v2.splitlines(keepends=True) if not line.startswith("lock\t"))
    lock_path.write_text(v1)
    result = runner.invoke(cli, ["build", str(sample_deck), "-o", str(out), "--frozen"])
    assert result.exit_code == 0, result.output
    assert (out.read_bytes(), lock_path.read_text()) == (package, v1)
    result = runner.invoke(cli, ["build", str(sample_deck), "-o", str(out)])
    assert result.exit_code == 0
    assert "Updated neurodeck.lock: lock format 1 rewritten as format 3" in result.stdout
    assert lock_path.read_text() == v2  # no time moved


# --- The output path --------------------------------------------------------------------------


def _fifo(path):
    os.mkfifo(path)


def _socket(path):
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    return sock


@pytest.mark.parametrize(
    "target",
    [
        "deck.yaml",
        "peptides.yaml",
        LOCK_FILE,
        "images/x.png",
        "new.yaml",
        "directory",
        "fifo",
        "socket",
        "device",
        "symlink loop",
        "-",
    ],
)
def test_an_output_that_would_destroy_something_is_refused(
    target, runner, make_deck, tmp_path, monkeypatch
):
    deck_dir = make_deck({"peptides.yaml": PEPTIDES_YAML, "images/x.png": b"\x89PNG"})
    built(runner, deck_dir, tmp_path / "first.apkg")
    keep = None
    if target == "directory":
        out = tmp_path / "a-directory"
        out.mkdir()
    elif target == "fifo":
        out = tmp_path / "fifo"
        _fifo(out)
    elif target == "socket":
        out = tmp_path / "sock"
        keep = _socket(out)
    elif target == "device":
        out = tmp_path / "null"
        os.symlink("/dev/null", out)  # a link to a device is the device
    elif target == "symlink loop":
        out = tmp_path / "loop.apkg"
        os.symlink(out.name, out)
    elif target == "-":
        monkeypatch.chdir(tmp_path)
        out = "-"
    else:
        out = deck_dir / target
    before = {p: p.read_bytes() for p in deck_dir.rglob("*") if p.is_file()}
    result = runner.invoke(cli, ["build", str(deck_dir), "-o", str(out)])
    if keep is not None:
        keep.close()
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{out}: error: -o ")
    assert {p: p.read_bytes() for p in deck_dir.rglob("*") if p.is_file()} == before
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("target", ["deck.yaml", "peptides.yaml", LOCK_FILE, "-"])
def test_an_export_that_would_destroy_an_input_is_refused(target, runner, sample_deck, monkeypatch):
    monkeypatch.chdir(sample_deck.parent)
    out = target if target == "-" else str(sample_deck / target)
    before = {p: p.read_bytes() for p in sample_deck.iterdir()}
    result = runner.invoke(cli, ["export", str(sample_deck), "--format", "md", "-o", out])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{out}: error: -o ")
    assert {p: p.read_bytes() for p in sample_deck.iterdir()} == before
    assert not (sample_deck.parent / "-").exists()


def test_an_apkg_inside_the_deck_directory_is_allowed(runner, sample_deck):
    result = runner.invoke(cli, ["build", str(sample_deck), "-o", str(sample_deck / "d.apkg")])
    assert result.exit_code == 0, result.output


# --- The deck tree ----------------------------------------------------------------------------


def run_all(runner, deck_dir, tmp_path):
    """Every command that reads a deck directory; none may leave a traceback."""
    results = {}
    for command in COMMANDS:
        args = [command, str(deck_dir)]
        if command == "build":
            args += ["-o", str(tmp_path / "t.apkg")]
        if command == "export":
            args += ["--format", "json", "-o", str(tmp_path / "t.json")]
        results[command] = result = runner.invoke(cli, args)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            command,
            result.exception,
        )
    for command in ("diff", "release-check"):
        results[command] = result = runner.invoke(cli, [command, str(deck_dir), str(deck_dir)])
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            command,
            result.exception,
        )
    return results


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks and FIFOs")
@pytest.mark.parametrize("kind", ["fact set", "directory", "deck.yaml"])
def test_a_symlink_leading_outside_the_deck_is_refused_by_every_command(
    kind, runner, make_deck, tmp_path
):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text(PEPTIDES_YAML)
    deck_dir = make_deck({"a.yaml": "notes:\n  - {id: a, front: A, back: B}\n"})
    if kind == "fact set":
        link = deck_dir / "b.yaml"
        link.symlink_to(outside / "secret.yaml")
    elif kind == "directory":
        link = deck_dir / "more"
        link.symlink_to(outside, target_is_directory=True)
    else:
        (outside / "deck.yaml").write_text((deck_dir / "deck.yaml").read_text())
        link = deck_dir / "deck.yaml"
        link.unlink()
        link.symlink_to(outside / "deck.yaml")
    for command, result in run_all(runner, deck_dir, tmp_path).items():
        assert result.exit_code == 1, (command, result.output)
        assert f"{link}: error: symlink leads outside the deck directory" in result.output, (
            command,
            result.output,
        )
        assert "oxytocin" not in result.output


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks and FIFOs")
def test_dangling_symlinks_fifos_and_editor_lock_files_never_give_a_traceback(
    runner, make_deck, tmp_path
):
    deck_dir = make_deck({"a.yaml": "notes:\n  - {id: a, front: A, back: B}\n"})
    (deck_dir / ".#a.yaml").symlink_to("root@host.1234:1700000000")  # what Emacs leaves
    (deck_dir / "gone.yaml").symlink_to("nowhere.yaml")
    os.mkfifo(deck_dir / "pipe.yaml")
    for command, result in run_all(runner, deck_dir, tmp_path).items():
        assert result.exit_code == 1, (command, result.output)
        assert (
            f"{deck_dir / 'gone.yaml'}: error: fact set is a symlink to nothing" in result.output
        ), command
        assert (
            f"{deck_dir / 'pipe.yaml'}: error: fact set is not a regular file (a FIFO)"
            in result.output
        ), command
        assert ".#a.yaml" not in result.output


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks")
def test_symlinks_inside_the_deck_are_read_once_and_a_loop_is_reported(runner, make_deck):
    deck_dir = make_deck(
        {
            "sub/a.yaml": "notes:\n  - {id: a, front: A, back: B}\n",
            "text/b.txt": "notes:\n  - {id: b, front: A, back: B}\n",
        }
    )
    (deck_dir / "same-sub").symlink_to("sub", target_is_directory=True)  # read as sub/
    (deck_dir / "b.yaml").symlink_to("text/b.txt")  # a fact set, wherever its text lives
    (deck_dir / "figure.png").symlink_to("nowhere.png")  # reported only if a note uses it
    result = runner.invoke(cli, ["check", str(deck_dir)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("2 notes, 2 cards")
    (deck_dir / "loop.yaml").symlink_to("loop.yaml")
    result = runner.invoke(cli, ["check", str(deck_dir)])
    assert result.exit_code == 1
    assert f"{deck_dir / 'loop.yaml'}: error: symlink cannot be followed: " in result.stderr


def test_hidden_files_are_skipped_and_upper_case_extensions_read(runner, make_deck):
    deck_dir = make_deck(
        {
            "a.YAML": "notes:\n  - {id: upper, front: A, back: B}\n",
            "b.Yml": "notes:\n  - {id: mixed, front: A, back: B}\n",
            ".hidden.yaml": "notes:\n  - {id: hidden, front: A, back: B}\n",
            ".git/x.yaml": "not: [yaml",
            "sub/.x.yaml": "not: [yaml",
        }
    )
    result = runner.invoke(cli, ["check", str(deck_dir)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("2 notes, 2 cards")


def test_a_header_named_in_capitals_is_reported(runner, make_deck):
    deck_dir = make_deck({"Deck.YAML": "name: X\nid: x\n"})
    result = runner.invoke(cli, ["check", str(deck_dir)])
    assert result.exit_code == 1
    assert "'Deck.YAML' is neither the deck's header nor a fact set" in result.stderr


def test_file_names_with_control_characters_are_escaped(runner, make_deck):
    name = "evil\x1b]0;pwned\x07\x1b[31m.yaml"
    deck_dir = make_deck({name: "notes:\n  - {id: a, front: A}\n"})
    result = runner.invoke(cli, ["check", str(deck_dir)])
    assert result.exit_code == 1
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "evil\\x1b]0;pwned\\x07\\x1b[31m.yaml:2:5: error:" in result.stderr


@pytest.mark.parametrize("odd", ["\u2028", "\x85", "\r"])
def test_line_and_column_stay_right_after_odd_line_breaks_in_a_value(odd, runner, make_deck):
    deck_dir = make_deck(
        {
            "a.yaml": (
                "notes:\n"
                f"  - id: a\n    front: 'one{odd}two'\n    back: B\n"
                '  - id: b\n    front: "bad \\q"\n'
            ).encode()
        }
    )
    result = runner.invoke(cli, ["check", str(deck_dir)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{deck_dir / 'a.yaml'}:6:18: error: invalid YAML")
    deck_dir = make_deck(
        {
            "a.yaml": (
                f"notes:\n  - id: a\n    front: 'one{odd}two'\n    back: B\n    bak: C\n"
            ).encode()
        },
        name="second",
    )
    result = runner.invoke(cli, ["check", str(deck_dir)])
    assert f"{deck_dir / 'a.yaml'}:5:5: error: unknown key 'bak'" in result.stderr

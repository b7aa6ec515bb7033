"""Issue 11: nothing lost, whatever goes wrong. Real faults, in real subprocesses.

Read-only and unreadable files: the tests run as root here, and root ignores permission
bits, so the build runs with CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH dropped from its
capability bounding set (then chmod bites, as for any user). A full disk is a small tmpfs;
a file size limit is RLIMIT_FSIZE; signals go to a real build of a deck large enough for the
parallel path (pipeline.PARALLEL_MIN_BYTES). Each test says why when the machine cannot
produce its fault.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import PEPTIDES_YAML

from neurodeck import apkg, pipeline
from neurodeck.cli import cli
from neurodeck.lock import LOCK_FILE

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Linux faults (prctl, tmpfs)")

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH = 1, 2


def _drop_dac() -> None:
    """preexec_fn: lose root's power to ignore permission bits."""
    if os.geteuid() != 0:
        return  # permission bits already apply
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _permissions_bite() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "open('/proc/1/environ').read()"],
        preexec_fn=_drop_dac,
        capture_output=True,
    )
    return probe.returncode != 0


needs_permissions = pytest.mark.skipif(
    not _permissions_bite(),
    reason="cannot drop root's CAP_DAC_OVERRIDE here, so read-only files stay writable",
)


_CWD = [Path.cwd()]  # where the last neurodeck() ran: messages show paths relative to it


def neurodeck(
    args: list[str],
    cwd: Path,
    *,
    preexec: Callable[[], None] | None = None,
    epoch: int = 1_800_000_000,
) -> subprocess.CompletedProcess[str]:
    _CWD[0] = cwd
    return subprocess.run(
        [sys.executable, "-m", "neurodeck", *args],
        cwd=cwd,
        text=True,
        capture_output=True,
        preexec_fn=preexec,
        timeout=300,
        env={**os.environ, "SOURCE_DATE_EPOCH": str(epoch)},
    )


def leftovers(*dirs: Path) -> list[str]:
    """Temp files and scratch directories a build left behind."""
    return sorted(
        p.name
        for d in dirs
        for p in d.iterdir()
        if p.name.startswith(".") and p.name not in (".", "..")
    )


def assert_one_line_failure(
    result: subprocess.CompletedProcess[str], where: Path, message: str
) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    first, summary = result.stderr.splitlines()
    cwd = _CWD[0]
    shown = where.relative_to(cwd) if where.is_relative_to(cwd) else where
    assert first.startswith(f"{shown}: error: {message}"), first
    assert summary == "1 problem; nothing was written"


@pytest.fixture
def released(make_deck, tmp_path) -> Iterator[tuple[Path, Path, dict[Path, bytes]]]:
    """A deck built once (package and lock), then edited so that a build changes both."""
    deck_dir = make_deck({"peptides.yaml": PEPTIDES_YAML})
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    package = out_dir / "deck.apkg"
    assert neurodeck(["build", str(deck_dir), "-o", str(package)], tmp_path).returncode == 0
    fact_set = deck_dir / "peptides.yaml"
    fact_set.write_text(fact_set.read_text().replace("back: Oxytocin", "back: Oxytocin (OXT)"))
    before = {
        package: package.read_bytes(),
        deck_dir / LOCK_FILE: (deck_dir / LOCK_FILE).read_bytes(),
    }
    yield deck_dir, package, before
    for directory in (deck_dir, out_dir):
        directory.chmod(0o755)


def unchanged(before: dict[Path, bytes]) -> bool:
    return all(path.read_bytes() == data for path, data in before.items())


# --- Read-only and unreadable ------------------------------------------------------------------


@needs_permissions
def test_a_read_only_deck_directory_leaves_package_and_lock_as_they_were(released, tmp_path):
    """The package used to be replaced, then writing the lock raised a traceback."""
    deck_dir, package, before = released
    deck_dir.chmod(0o555)
    result = neurodeck(["build", str(deck_dir), "-o", str(package)], tmp_path, preexec=_drop_dac)
    assert_one_line_failure(
        result, deck_dir / LOCK_FILE, "cannot write the lock file: Permission denied"
    )
    assert unchanged(before)
    assert leftovers(deck_dir, package.parent) == []


@needs_permissions
def test_a_read_only_output_directory_leaves_package_and_lock_as_they_were(released, tmp_path):
    deck_dir, package, before = released
    package.parent.chmod(0o555)
    result = neurodeck(["build", str(deck_dir), "-o", str(package)], tmp_path, preexec=_drop_dac)
    assert_one_line_failure(result, package, "cannot write the package: Permission denied")
    assert unchanged(before)
    assert leftovers(deck_dir, package.parent) == []


@needs_permissions
@pytest.mark.parametrize("fmt", ["md", "json"])  # json is streamed by a writer of its own
def test_an_export_into_a_read_only_directory_is_one_line(fmt, released, tmp_path):
    deck_dir, package, before = released
    export = package.parent / f"deck.{fmt}"
    export.write_text("previous")
    package.parent.chmod(0o555)
    result = neurodeck(
        ["export", str(deck_dir), "--format", fmt, "-o", str(export)], tmp_path, preexec=_drop_dac
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"{export.relative_to(tmp_path)}: error: cannot write the export: Permission denied",
        "1 problem found",
    ]
    assert export.read_text() == "previous"
    assert unchanged(before)


@needs_permissions
@pytest.mark.parametrize("what", ["directory", "file", "image"])
def test_an_unreadable_part_of_the_deck_is_an_error(what, make_deck, tmp_path):
    """An unreadable subdirectory used to be skipped, so its notes fell out of the lock."""
    deck_dir = make_deck(
        {
            "a.yaml": "notes:\n  - {id: a, front: 'A ![x](sub/x.png)', back: B}\n",
            "sub/b.yaml": "notes:\n  - {id: b, front: A, back: B}\n",
            "sub/x.png": b"\x89PNG\r\n\x1a\n",
        }
    )
    unreadable = {
        "directory": deck_dir / "sub",
        "file": deck_dir / "sub" / "b.yaml",
        "image": deck_dir / "sub" / "x.png",
    }[what]
    unreadable.chmod(0o000)
    try:
        for command in (["check"], ["build", "-o", str(tmp_path / "o.apkg")]):
            result = neurodeck(
                [command[0], str(deck_dir), *command[1:]], tmp_path, preexec=_drop_dac
            )
            assert result.returncode == 1, result.stderr
            shown = unreadable.relative_to(tmp_path)
            expected = {
                "directory": f"{shown}: error: cannot read directory: Permission denied",
                "file": f"{shown}: error: cannot read file: Permission denied",
                "image": "error: image 'sub/x.png' in note 'a' cannot be read: Permission denied",
            }[what]
            assert expected in result.stderr
            assert "Traceback" not in result.stderr
        assert not (tmp_path / "o.apkg").exists() and not (deck_dir / LOCK_FILE).exists()
    finally:
        unreadable.chmod(0o755)


# --- Full disk and file size limit ------------------------------------------------------------


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({mounted.stderr.decode().strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> None:
    """Fill the file system `directory` is on, to the last block."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass  # full
    finally:
        os.close(fd)


def test_a_full_disk_under_the_package_leaves_package_and_lock_as_they_were(make_deck, tmp_path):
    deck_dir = make_deck({"peptides.yaml": PEPTIDES_YAML})
    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        package = disk / "deck.apkg"
        assert neurodeck(["build", str(deck_dir), "-o", str(package)], tmp_path).returncode == 0
        fact_set = deck_dir / "peptides.yaml"
        fact_set.write_text(fact_set.read_text().replace("back: Oxytocin", "back: OXT"))
        before = {
            package: package.read_bytes(),
            deck_dir / LOCK_FILE: (deck_dir / LOCK_FILE).read_bytes(),
        }
        fill(disk)
        result = neurodeck(["build", str(deck_dir), "-o", str(package)], tmp_path)
        assert_one_line_failure(result, package, "cannot write the package: ")
        assert unchanged(before)
        assert leftovers(deck_dir, disk) == []


def test_a_full_disk_under_the_lock_leaves_package_and_lock_as_they_were(make_deck, tmp_path):
    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        deck_dir = disk / "cards"
        shutil.copytree(make_deck({"peptides.yaml": PEPTIDES_YAML}), deck_dir)
        package = tmp_path / "deck.apkg"
        assert neurodeck(["build", str(deck_dir), "-o", str(package)], tmp_path).returncode == 0
        fact_set = deck_dir / "peptides.yaml"
        fact_set.write_text(fact_set.read_text().replace("back: Oxytocin", "back: OXT"))
        before = {
            package: package.read_bytes(),
            deck_dir / LOCK_FILE: (deck_dir / LOCK_FILE).read_bytes(),
        }
        fill(disk)
        result = neurodeck(["build", str(deck_dir), "-o", str(package)], tmp_path)
        assert_one_line_failure(
            result, deck_dir / LOCK_FILE, "cannot write the lock file: No space left on device"
        )
        assert unchanged(before)
        assert leftovers(deck_dir, tmp_path) == []


def test_a_file_size_limit_leaves_package_and_lock_as_they_were(released, tmp_path):
    """`ulimit -f`: writes past the limit fail with EFBIG (Python ignores SIGXFSZ)."""
    deck_dir, package, before = released

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))

    result = neurodeck(["build", str(deck_dir), "-o", str(package)], tmp_path, preexec=limit)
    assert_one_line_failure(result, package, "cannot write the package: ")
    assert unchanged(before)
    assert leftovers(deck_dir, package.parent) == []


# --- Package and lock together -----------------------------------------------------------------


def _no_hard_links(*args, **kwargs):
    raise OSError(errno.EPERM, "Operation not permitted")  # exFAT, some network shares


@pytest.mark.parametrize("hard_links", [True, False])
def test_when_the_package_cannot_be_replaced_the_new_lock_is_rolled_back(
    hard_links, released, runner, monkeypatch
):
    """The lock goes in first; if the package then fails, the old lock comes back (from a
    copy where the file system has no hard links)."""
    deck_dir, package, before = released
    if not hard_links:
        monkeypatch.setattr(apkg.os, "link", _no_hard_links)
    real_replace = os.replace

    def failing_replace(src, dst, *args, **kwargs):
        if Path(dst) == package:
            raise OSError(5, "Input/output error")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(apkg.os, "replace", failing_replace)
    result = runner.invoke(cli, ["build", str(deck_dir), "-o", str(package)])
    assert result.exit_code == 1, result.output
    assert (
        f"{package}: error: cannot write the package and lock: Input/output error" in result.stderr
    )
    assert unchanged(before)
    assert leftovers(deck_dir, package.parent) == []


def test_a_first_build_whose_package_cannot_be_written_leaves_no_lock(
    make_deck, runner, tmp_path, monkeypatch
):
    deck_dir = make_deck({"peptides.yaml": PEPTIDES_YAML})
    package = tmp_path / "deck.apkg"
    real_replace = os.replace

    def failing_replace(src, dst, *args, **kwargs):
        if Path(dst) == package:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(apkg.os, "replace", failing_replace)
    result = runner.invoke(cli, ["build", str(deck_dir), "-o", str(package)])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[0] == (
        f"{package}: error: cannot write the package and lock: No space left on device"
    )
    assert not package.exists() and not (deck_dir / LOCK_FILE).exists()
    assert leftovers(deck_dir, tmp_path) == []


def test_an_interrupt_during_a_merge_is_not_masked_by_sqlite(tmp_path):
    """Ctrl-C during the merge used to end in `OperationalError: database part is locked`."""
    part = apkg.CollectionWriter(tmp_path / "part.anki2", part=True)
    part.close()
    writer = apkg.CollectionWriter(tmp_path / "collection.anki2")

    class InterruptedCursor:
        def __init__(self, cursor: sqlite3.Cursor) -> None:
            self.cursor = cursor

        def execute(self, sql: str, *args: object) -> object:
            if sql.startswith("INSERT INTO cards"):
                raise KeyboardInterrupt
            return self.cursor.execute(sql, *args)

    writer._cursor = InterruptedCursor(writer._cursor)  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt):
        writer.merge(tmp_path / "part.anki2", row_shift=0, due_shift=0)
    writer.abandon()


# --- Signals -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_release(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    """A deck over PARALLEL_MIN_BYTES in four files, built once: its files, package, lock."""
    root = tmp_path_factory.mktemp("big")
    deck_dir = root / "cards"
    deck_dir.mkdir()
    (deck_dir / "deck.yaml").write_text("name: Big\nid: big\n")
    for part in range(4):
        lines = [f"deck: Part {part}", "notes:"]
        for i in range(4000):
            lines += [
                f"  - id: n{part}-{i}",
                f"    front: Question {i} of part {part} about the brain and its regions?",
                f"    back: Answer {i}, with a few more words to make the note longer.",
            ]
        (deck_dir / f"{part:02d}.yaml").write_text("\n".join(lines) + "\n")
    assert sum(p.stat().st_size for p in deck_dir.glob("*.yaml")) > pipeline.PARALLEL_MIN_BYTES
    out = root / "out"
    out.mkdir()
    assert (
        neurodeck(
            ["build", str(deck_dir), "-o", str(out / "big.apkg")], root, epoch=1_700_000_000
        ).returncode
        == 0
    )
    return root, {
        "package": (out / "big.apkg").read_bytes(),
        "lock": (deck_dir / LOCK_FILE).read_bytes(),
    }


@pytest.fixture
def big(big_release, tmp_path) -> tuple[Path, Path, dict[Path, bytes]]:
    """A copy of the big release, with one note edited so that a build changes both files."""
    root, data = big_release
    deck_dir = shutil.copytree(root / "cards", tmp_path / "cards")
    out = tmp_path / "out"
    out.mkdir()
    package = out / "big.apkg"
    package.write_bytes(data["package"])
    last = deck_dir / "03.yaml"
    last.write_text(last.read_text().replace("Answer 3999,", "Answer 3999 (edited),"))
    return deck_dir, package, {package: data["package"], deck_dir / LOCK_FILE: data["lock"]}


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its parent's wait is missing


def _wait_for(
    condition: Callable[[], bool], process: subprocess.Popen[bytes], timeout: float = 120
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.005)
    return False


def _start_build(deck_dir: Path, package: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "neurodeck", "build", str(deck_dir), "-o", str(package)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, "SOURCE_DATE_EPOCH": "1800000000"},
    )


def _phase_reached(phase: str, process: subprocess.Popen[bytes], out: Path) -> bool:
    def scratch_files() -> list[Path]:
        return [f for d in out.glob(".neurodeck-*") for f in d.iterdir()]

    if phase == "workers":
        return _wait_for(lambda: len(_children(process.pid)) >= 2, process)
    if phase == "merge":  # the package's collection holds merged rows
        return _wait_for(
            lambda: any(
                f.name == "collection.anki2" and f.stat().st_size > 1 << 20 for f in scratch_files()
            ),
            process,
        )
    return _wait_for(lambda: any(f.name.endswith(".tmp") for f in scratch_files()), process)


@pytest.mark.parametrize(
    ("signum", "code", "phase"),
    [
        (signal.SIGINT, 130, "workers"),
        (signal.SIGINT, 130, "merge"),
        (signal.SIGINT, 130, "zip"),
        (signal.SIGTERM, 143, "workers"),
        (signal.SIGTERM, 143, "zip"),
    ],
)
def test_an_interrupted_build_exits_cleanly_and_leaves_the_previous_output(
    signum, code, phase, big
):
    deck_dir, package, before = big
    process = _start_build(deck_dir, package)
    workers: list[int] = []
    if not _wait_for(lambda: len(_children(process.pid)) >= 2, process):
        pytest.fail(f"the build started no workers: {process.communicate()}")
    workers = _children(process.pid)
    if not _phase_reached(phase, process, package.parent):
        process.communicate()
        pytest.skip(f"the build finished before the {phase} phase could be interrupted")
    if signum == signal.SIGINT:
        os.killpg(process.pid, signum)  # Ctrl-C reaches the whole process group
    else:
        os.kill(process.pid, signum)
    stdout, stderr = process.communicate(timeout=60)
    name = signal.Signals(signum).name
    assert (process.returncode, stderr.decode()) == (
        code,
        f"neurodeck: interrupted by {name}; stopped\n",
    ), stderr.decode()
    assert stdout == b""
    assert not [w for w in workers if _alive(w)]
    assert unchanged(before)
    assert leftovers(deck_dir, package.parent) == []


def test_workers_do_not_outlive_a_killed_build_and_its_scratch_is_removed_later(big):
    deck_dir, package, before = big
    process = _start_build(deck_dir, package)
    if not _wait_for(lambda: len(_children(process.pid)) >= 2, process):
        pytest.fail(f"the build started no workers: {process.communicate()}")
    workers = _children(process.pid)
    process.kill()
    # `neurodeck build | cat` must see the end of the pipe: no worker may hold it open.
    stdout, _ = process.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while [w for w in workers if _alive(w)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [w for w in workers if _alive(w)]
    assert unchanged(before)
    killed_leftovers = leftovers(package.parent)
    result = neurodeck(["build", str(deck_dir), "-o", str(package)], deck_dir.parent)
    assert result.returncode == 0, result.stderr
    assert leftovers(deck_dir, package.parent) == []
    assert killed_leftovers  # there was scratch to remove


def test_a_build_sweeps_only_the_leftovers_no_running_build_holds(released, runner, tmp_path):
    """What a killed build leaves is removed by the next one; what may still be in use (held,
    or a scratch directory too young to be abandoned) or is not ours stays."""
    deck_dir, package, _ = released
    out = package.parent
    outside = tmp_path / "outside"
    outside.mkdir()
    (out / ".deck.apkg.killed.tmp").write_bytes(b"half a package")
    (out / ".deck.apkg.notes").write_text("not a temp file")
    (out / ".neurodeck-link").symlink_to(outside)
    for name in (".neurodeck-abandoned", ".neurodeck-starting"):
        (out / name).mkdir()  # killed before it could write its .owner
    hour_ago = time.time() - 3700
    os.utime(out / ".neurodeck-abandoned", (hour_ago, hour_ago))
    with (out / ".deck.apkg.running.tmp").open("wb") as held:
        apkg._hold(held)
        result = runner.invoke(cli, ["build", str(deck_dir), "-o", str(package)])
    assert result.exit_code == 0, result.output
    assert leftovers(deck_dir, out) == [
        ".deck.apkg.notes",
        ".deck.apkg.running.tmp",
        ".neurodeck-link",
        ".neurodeck-starting",
    ]
    assert outside.is_dir()


def test_an_interrupt_between_the_two_replaces_waits_until_both_are_done(tmp_path, monkeypatch):
    """Ctrl-C while the lock is already replaced but the package not yet would leave them
    disagreeing; the interrupt is held until both are in place."""
    lock_path, package = tmp_path / "neurodeck.lock", tmp_path / "deck.apkg"
    lock_path.write_text("old lock")
    package.write_text("old package")
    staged = [
        apkg.stage(lock_path, lambda out: out.write(b"new lock")),
        apkg.stage(package, lambda out: out.write(b"new package")),
    ]
    real_replace = os.replace

    def replace_then_interrupt(src, dst, *args, **kwargs):
        real_replace(src, dst, *args, **kwargs)
        if Path(dst) == lock_path:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C right after the first replace

    monkeypatch.setattr(apkg.os, "replace", replace_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        apkg.replace_together(staged)
    assert (lock_path.read_text(), package.read_text()) == ("new lock", "new package")
    assert leftovers(tmp_path) == []

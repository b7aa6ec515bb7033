"""Packages from elsewhere (`diff`, `release-check`, `verify`): Anki's own modern exports are read
from the real collection, and hostile ones are refused with one line, quickly, leaving nothing."""

from __future__ import annotations

import random
import signal
import sqlite3
import sys
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import zstandard
from anki.collection import ExportAnkiPackageOptions
from anki_helpers import LearnerCollection
from click.testing import CliRunner

from neurodeck import cli as cli_module
from neurodeck import snapshot, unpack
from neurodeck.cli import cli
from neurodeck.pipeline import build
from neurodeck.unpack import MAX_RATIO, MAX_UNPACKED_BYTES

TABLES = (
    "create table col (models text, decks text);"
    "create table notes (id integer primary key, guid, mid, mod, tags, flds);"
    "create table cards (id integer primary key, nid, did, ord, due);"
)
MODELS = '{"1": {"name": "Basic", "flds": [{"name": "Front", "ord": 0}], "tmpls": []}}'
DECKS = '{"1": {"name": "Default"}}'


def sqlite_bytes(tmp_path: Path, sql: str) -> bytes:
    db = tmp_path / "made.anki2"
    conn = sqlite3.connect(db)
    conn.executescript(sql)
    conn.close()
    data = db.read_bytes()
    db.unlink()
    return data


def package(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def zstd_zeros(size: int) -> bytes:
    """`size` zero bytes, zstd-compressed to a few kilobytes (streamed, never held whole)."""
    compressor = zstandard.ZstdCompressor().compressobj()
    chunk = bytes(1 << 20)
    parts = [compressor.compress(chunk) for _ in range(size >> 20)]
    return b"".join([*parts, compressor.flush()])


def errors_of(runner: CliRunner, command: str, path: Path, other: Path) -> list[str]:
    """The stderr lines of `diff` / `release-check` (path first) or `verify` on a bad package."""
    args = [command, str(path)] if command == "verify" else [command, str(path), str(other)]
    result = runner.invoke(cli, args)
    assert "Traceback" not in result.output + result.stderr
    assert isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1, result.output
    return result.stderr.splitlines()


COMMANDS = ["diff", "release-check", "verify"]


@pytest.fixture
def built(sample_deck: Path, tmp_path: Path) -> Path:
    return build(sample_deck, tmp_path / "built.apkg", clock=1_700_000_000).path


# ------------------------------------------------------------- Anki's own modern export


def anki_export(apkg: Path, tmp_path: Path, *, legacy: bool) -> Path:
    """`apkg` imported into a real collection, then exported by Anki (modern: .anki21b)."""
    out = tmp_path / ("legacy.apkg" if legacy else "modern.apkg")
    with LearnerCollection(tmp_path / "exporter") as learner:
        learner.import_apkg(apkg)
        options = ExportAnkiPackageOptions(
            with_scheduling=False, with_deck_configs=False, with_media=True, legacy=legacy
        )
        learner.col.export_anki_package(out_path=str(out), options=options, limit=None)
    return out


def test_a_modern_anki_export_is_read_from_its_real_collection(
    runner: CliRunner, built: Path, tmp_path: Path
) -> None:
    """Anki 2.1.50+ exports collection.anki21b (zstd, schema 18) beside a stub collection.anki2
    whose one note says "please update Anki"; diff used to compare that stub."""
    modern = anki_export(built, tmp_path, legacy=False)
    with zipfile.ZipFile(modern) as archive:
        assert {"collection.anki21b", "collection.anki2", "meta"} <= set(archive.namelist())
    ours, anki = snapshot.read_apkg(built), snapshot.read_apkg(modern)
    assert len(anki.notes) == len(ours.notes) == 3
    assert [(n.guid, n.fields, n.tags, n.mod, n.deck, n.ordinals) for n in anki.notes] == [
        (n.guid, n.fields, n.tags, n.mod, n.deck, n.ordinals) for n in ours.notes
    ]
    assert {nt.key for nt in anki.notetypes.values()} >= {"basic", "reversed", "cloze"}
    result = runner.invoke(cli, ["diff", str(built), str(modern)])
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith(": 0 added, 0 changed, 0 removed\n")
    result = runner.invoke(cli, ["release-check", str(built), str(modern)])
    assert result.exit_code == 0, result.output


def test_the_legacy_and_modern_exports_read_alike(built: Path, tmp_path: Path) -> None:
    legacy = snapshot.read_apkg(anki_export(built, tmp_path, legacy=True))
    modern = snapshot.read_apkg(anki_export(built, tmp_path, legacy=False))
    assert legacy.notes == modern.notes
    assert (
        (legacy.deck_name, legacy.version)
        == (modern.deck_name, modern.version)
        == ("Test Deck", "1.0.0")
    )
    used = {n.notetype_id for n in legacy.notes}
    assert {m: legacy.notetypes[m] for m in used} == {m: modern.notetypes[m] for m in used}


# ----------------------------------------------------------------------------- bombs


@pytest.mark.parametrize("command", COMMANDS)
def test_a_zip_bomb_is_refused_by_every_command(
    command: str, runner: CliRunner, built: Path, tmp_path: Path
) -> None:
    """verify handed packages straight to Anki's importer: 2 MB could write 2 GB to /tmp."""
    bomb = package(tmp_path / "bomb.apkg", {"collection.anki2": bytes(8 << 20)})
    assert errors_of(runner, command, bomb, built)[0] == (
        f"{bomb}: error: expands more than {MAX_RATIO}:1 when unpacked; refusing a possible "
        "zip bomb"
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_a_zstd_bomb_in_a_modern_package_is_refused(
    command: str, runner: CliRunner, built: Path, tmp_path: Path
) -> None:
    """A zstd frame inside a stored zip entry: the zip's sizes say nothing about it."""
    bomb = package(
        tmp_path / "zbomb.apkg",
        {
            "meta": b"\x08\x03",
            "collection.anki2": b"",
            "collection.anki21b": zstd_zeros(MAX_UNPACKED_BYTES + (1 << 20)),
        },
    )
    assert bomb.stat().st_size < 100_000
    assert errors_of(runner, command, bomb, built)[0] == (
        f"{bomb}: error: has an entry 'collection.anki21b' that unpacks to more than "
        f"{MAX_UNPACKED_BYTES} bytes; refusing a possible zip bomb"
    )


def test_verify_refuses_a_zstd_media_bomb(runner: CliRunner, built: Path, tmp_path: Path) -> None:
    modern = anki_export(built, tmp_path, legacy=False)
    bomb = tmp_path / "media-bomb.apkg"
    with zipfile.ZipFile(modern) as source, zipfile.ZipFile(bomb, "w") as target:
        for info in source.infolist():
            target.writestr(info, source.read(info))
        target.writestr("0", zstd_zeros(64 << 20))
    assert errors_of(runner, "verify", bomb, built)[0].startswith(
        f"{bomb}: error: has an entry '0' that unpacks to more than "
    )


# ---------------------------------------------------------------- damaged archives


def entries_of(apkg: Path, **changes: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(apkg) as archive:
        return {**{n: archive.read(n) for n in archive.namelist()}, **changes}


def patched(path: Path, offset: int, value: int) -> Path:
    """The first entry's central directory record, one byte changed (8: flags, 10: method)."""
    data = bytearray(path.read_bytes())
    data[data.index(b"PK\x01\x02") + offset] = value
    path.write_bytes(data)
    return path


NOISE = random.Random(0).randbytes(2 << 20).hex().encode()  # 4 MiB that deflates only 2:1
DAMAGED = {
    "media list not JSON": (
        lambda b, t: package(t, entries_of(b, media=b"{oops")),
        "has a damaged media list: Expecting property name enclosed in double quotes: line 1 "
        "column 2 (char 1)",
    ),
    "media list a JSON list": (
        lambda b, t: package(t, entries_of(b, media=b"[]")),
        "has a damaged media list: not a JSON object",
    ),
    "media list names a missing entry": (
        lambda b, t: package(t, entries_of(b, media=b'{"7": "brain.png"}')),
        "has a damaged media list entry '7': 'brain.png'",
    ),
    "media name with a slash": (
        lambda b, t: package(t, entries_of(b, media=b'{"0": "../x.png"}', **{"0": b"x"})),
        "has a damaged media list entry '0': '../x.png'",
    ),
    "media list over 1 MiB": (
        lambda b, t: package(t, entries_of(b, media=NOISE)),
        f"has a {len(NOISE)}-byte entry 'media' (more than 1048576); refusing a possible zip bomb",
    ),
    "a Windows drive in an entry name": (
        lambda b, t: package(t, entries_of(b, **{"C:evil": b""})),
        "has an unsafe entry name 'C:evil' (it points outside the package)",
    ),
    "one entry a bomb, the archive not": (
        lambda b, t: package(t, entries_of(b, **{"collection.anki2": bytes(8 << 20), "1": NOISE})),
        f"has an entry 'collection.anki2' that expands more than {MAX_RATIO}:1; refusing a "
        "possible zip bomb",
    ),
    "password-protected": (
        lambda b, t: patched(package(t, entries_of(b)), 8, 1),
        "has a password-protected entry 'collection.anki2'",
    ),
    "an unknown compression method": (
        lambda b, t: patched(package(t, entries_of(b)), 10, 99),
        "is a damaged Anki package: That compression method is not supported",
    ),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_damaged_package_is_one_located_line(
    case: str, runner: CliRunner, built: Path, tmp_path: Path
) -> None:
    make, message = DAMAGED[case]
    bad = make(built, tmp_path / "bad.apkg")
    assert errors_of(runner, "diff", bad, built)[0] == f"{bad}: error: {message}"


def test_two_entries_of_one_name_are_refused(
    runner: CliRunner, built: Path, tmp_path: Path
) -> None:
    bad = package(tmp_path / "twice.apkg", entries_of(built))
    with zipfile.ZipFile(bad, "a") as archive, pytest.warns(UserWarning, match="Duplicate"):
        archive.writestr("media", b"{}")
    assert errors_of(runner, "verify", bad, built)[:2] == [
        f"{bad}: error: has two entries named 'media'",
        "  hint: Anki never writes such archives: do not use this file",
    ]


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("MAX_ENTRIES", "has {entries} entries (more than 1); refusing it"),
        (
            "MAX_ARCHIVE_BYTES",
            "claims {size} bytes uncompressed (more than 1); refusing a " "possible zip bomb",
        ),
    ],
)
def test_the_archive_limits_are_refused_before_unpacking(
    limit: str, message: str, runner: CliRunner, built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real limits (100,000 entries, 4 GiB) scaled down, so the test stays small."""
    monkeypatch.setattr(unpack, limit, 1)
    with zipfile.ZipFile(built) as archive:
        infos = archive.infolist()
    expected = message.format(entries=len(infos), size=sum(i.file_size for i in infos))
    assert errors_of(runner, "verify", built, built)[0] == f"{built}: error: {expected}"


# ------------------------------------------------------------- SQL that runs on reads


ACTIVE_SQL = {
    "recursive view": (
        "create table col (models text, decks text); create table cards (id, nid, did, ord, due);"
        "create view notes as with recursive r(x) as (select 1 union all select x + 1 from r) "
        "select x as id, 'g' as guid, 1 as mid, 0 as mod, '' as tags, '' as flds from r;",
        "it defines a view 'notes', which Anki never writes",
    ),
    "trigger": (
        TABLES + "create table log (x); create trigger t after insert on notes "
        "begin insert into log values (1); end;",
        "it defines a trigger 't', which Anki never writes",
    ),
    "virtual table": (
        TABLES + "create virtual table v using fts5(x);",
        "'v' is a virtual table, which Anki never writes",
    ),
    "computed column": (
        "create table col (models text, decks text); create table cards (id, nid, did, ord, due);"
        "create table notes (id, guid, mid, mod, tags, flds as (zeroblob(1000000000)));",
        "its notes table has a computed column 'flds', which Anki never writes",
    ),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", sorted(ACTIVE_SQL))
def test_a_collection_with_sql_that_runs_on_reads_is_refused_at_once(
    case: str, command: str, runner: CliRunner, built: Path, tmp_path: Path
) -> None:
    """A `notes` view made of a recursive query ran for ever and filled /tmp."""
    sql, message = ACTIVE_SQL[case]
    bad = package(tmp_path / "active.apkg", {"collection.anki2": sqlite_bytes(tmp_path, sql)})
    started = time.monotonic()
    lines = errors_of(runner, command, bad, built)
    assert time.monotonic() - started < 30
    assert lines[0] == f"{bad}: error: is not a readable Anki collection: {message}"


def _many_notes(tmp_path: Path) -> Path:
    """A package of 50,000 notes: long enough to read that a deadline or a Ctrl-C lands."""
    return package(
        tmp_path / "many.apkg",
        {
            "collection.anki2": sqlite_bytes(
                tmp_path,
                (
                    f"{TABLES} insert into col values ('{MODELS}', '{DECKS}');"
                    "insert into notes with recursive r(x) as "
                    "(select 1 union all select x + 1 from r where x < 50000) "
                    "select x, 'g' || x, 1, 0, '', 'f' from r;"
                ),
            )
        },
    )


def test_reading_a_collection_is_cut_off_at_the_deadline(
    runner: CliRunner, built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever else could make SQLite work without end stops at MAX_READ_SECONDS."""
    many = _many_notes(tmp_path)
    monkeypatch.setattr(snapshot, "MAX_READ_SECONDS", 0)
    assert errors_of(runner, "diff", many, built)[0] == (
        f"{many}: error: is not a readable Anki collection: reading it took more than 0 "
        "seconds, far longer than any real collection takes"
    )


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_while_sqlite_reads_is_an_interrupt_not_a_damaged_file(
    runner: CliRunner,
    built: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    signum: signal.Signals,
    code: int,
) -> None:
    """SQLite swallows a Ctrl-C (or a SIGTERM) that arrives in its progress handler and says
    "interrupted": that is the user stopping the command, not a fault of the package, and
    the command says which signal it was."""
    many = _many_notes(tmp_path)
    fired = []
    monkeypatch.setattr(cli_module, "_TERMINATED", [], raising=False)

    def monotonic() -> float:
        if not fired and sys._getframe(1).f_code.co_name == "<lambda>":  # the handler
            fired.append(True)
            if signum == signal.SIGTERM:
                cli_module._terminate(signum, None)  # as main() installs it
            raise KeyboardInterrupt
        return time.monotonic()

    monkeypatch.setattr(snapshot, "time", SimpleNamespace(monotonic=monotonic))
    result = runner.invoke(cli, ["diff", str(many), str(built)])
    assert fired
    name = signal.Signals(signum).name
    assert (result.exit_code, result.output) == (
        code,
        f"neurodeck: interrupted by {name}; stopped\n",
    )


# ------------------------------------------------------------------- schema surprises


SURPRISES = {
    "Infinity in a note type": (
        f"insert into col values ('{MODELS[:-2]}, \"mod\": Infinity}}}}', '{DECKS}');",
        "its note types are not valid JSON (Infinity is not a JSON number)",
    ),
    "NaN in a deck": (
        f"insert into col values ('{MODELS}', '{{\"1\": {{\"name\": NaN}}}}');",
        "its decks are not valid JSON (NaN is not a JSON number)",
    ),
    "infinite note time": (
        f"insert into col values ('{MODELS}', '{DECKS}');"
        "insert into notes values (1, 'g', 1, 9e999, '', 'x');",
        "damaged note type, deck or note data (OverflowError: cannot convert float infinity "
        "to integer)",
    ),
    "note type id not a number": (
        f"insert into col values ('{MODELS}', '{DECKS}');"
        "insert into notes values (1, 'g', 'basic', 0, '', 'x');",
        "damaged note type, deck or note data (ValueError: invalid literal for int() with "
        "base 10: 'basic')",
    ),
    "note types a list": (
        f"insert into col values ('[]', '{DECKS}');",
        "its note types are not a JSON object",
    ),
    "fields not a list": (
        'insert into col values (\'{"1": {"name": "B", "flds": 3, "tmpls": []}}\', ' f"'{DECKS}');",
        "damaged note type, deck or note data (TypeError: 'int' object is not iterable)",
    ),
}


@pytest.mark.parametrize("case", sorted(SURPRISES))
def test_schema_surprises_are_an_error_not_a_traceback(
    case: str, runner: CliRunner, built: Path, tmp_path: Path
) -> None:
    sql, message = SURPRISES[case]
    bad = package(tmp_path / "odd.apkg", {"collection.anki2": sqlite_bytes(tmp_path, TABLES + sql)})
    assert errors_of(runner, "diff", bad, built)[0] == (
        f"{bad}: error: is not a readable Anki collection: {message}"
    )


@pytest.mark.parametrize(("mod", "moved_forward"), [("1e19", False), (str(-(2**63)), True)])
def test_a_note_time_outside_64_bits_is_compared_as_a_time(
    mod: str, moved_forward: bool, runner: CliRunner, tmp_path: Path
) -> None:
    """diff keeps times in 64-bit arrays; a crafted one beyond them is kept aside, and an
    edit to time 5 after it is (or is not) a time that moved forward."""

    def one_note(name: str, mod: str, front: str) -> Path:
        rows = f"insert into col values ('{MODELS}', '{DECKS}');"
        rows += f"insert into notes values (1, 'g', 1, {mod}, '', '{front}');"
        return package(tmp_path / name, {"collection.anki2": sqlite_bytes(tmp_path, TABLES + rows)})

    old, new = one_note("old.apkg", mod, "x"), one_note("new.apkg", "5", "y")
    result = runner.invoke(cli, ["release-check", str(old), str(new)])
    lines = result.stdout.splitlines()
    assert lines[1:3] == [
        f"{new}: warning: notes changed and neither release has a version",
        "  hint: add a `version` to deck.yaml so learners can tell the releases apart",
    ]
    skipped = (
        f"{new}: error: note GUID g ('y') changed (front): its modification time did not move "
        "forward, so Anki will skip the change"
    )
    assert (result.exit_code, skipped in lines) == ((0, False) if moved_forward else (1, True))


BROKEN_PROTOBUF = {
    b"\x0a\xff": "a protobuf blob has a broken number",
    b"\x0f": "a protobuf blob has wire type 7",
    b"\x1a\x02\xff\xfe": "protobuf field 3 is not UTF-8 text",
    b"\x08" + b"\xff" * 11: "a protobuf blob has a broken number",
    b"\x0a\x05ab": "a protobuf blob is truncated",
    b"\x0d\x01\x02\x03\x04": "protobuf field 1 is not a number",  # fixed32, not a varint
    b"\x18\x01": "protobuf field 3 is a number, not text",
    "text": "a protobuf blob is str, not bytes",
}


def modern_edited(built: Path, tmp_path: Path, sql: str, value: bytes | str) -> Path:
    """Anki's modern export of `built`, its collection changed by `sql` (one parameter)."""
    modern = anki_export(built, tmp_path, legacy=False)
    with zipfile.ZipFile(modern) as archive:
        db = tmp_path / "real.anki2"
        db.write_bytes(
            zstandard.ZstdDecompressor()
            .decompressobj()
            .decompress(archive.read("collection.anki21b"))
        )
        entries = {name: archive.read(name) for name in archive.namelist()}
    conn = sqlite3.connect(db)
    conn.execute(sql, (value,))
    conn.commit()
    conn.close()
    entries["collection.anki21b"] = zstandard.ZstdCompressor().compress(db.read_bytes())
    return package(tmp_path / "edited.apkg", entries)


@pytest.mark.parametrize("blob", list(BROKEN_PROTOBUF))
def test_a_broken_protobuf_in_a_modern_collection_is_an_error(
    blob: bytes | str, runner: CliRunner, built: Path, tmp_path: Path
) -> None:
    bad = modern_edited(built, tmp_path, "update notetypes set config = ?", blob)
    line = errors_of(runner, "diff", bad, built)[0]
    assert line == f"{bad}: error: is not a readable Anki collection: {BROKEN_PROTOBUF[blob]}"


def test_fields_without_an_id_in_a_modern_collection_are_read(
    runner: CliRunner, built: Path, tmp_path: Path
) -> None:
    """Protobuf leaves out a zero id, as in fields of note types older than Anki 2.1.50."""
    modern = modern_edited(built, tmp_path, "update fields set config = ?", b"")
    result = runner.invoke(cli, ["diff", str(built), str(modern)])
    assert (result.exit_code, result.stdout) == (
        0,
        f"Test Deck: 1.0.0 ({built}) → 1.0.0 ({modern}): 0 added, 0 changed, 0 removed\n",
    )

"""The command line: parse options, call the pipeline, print, and exit.

Each command imports what it runs when it runs, so `--version` and `--help` start fast.

Exit codes: 0 success, 1 problems in the deck or a failed build, 2 usage errors.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__
from .errors import Location, NeurodeckError, Problem, display_path, plural, printable

T = TypeVar("T")
# A deck directory that does not exist is a usage error (exit 2), said by click itself.
DECK_DIR = click.Path(exists=True, file_okay=False, path_type=Path)
_JSON_KEY = "neurodeck.json"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every `finally` and `with` cleans up."""


# Whether SIGTERM arrived: SQLite swallows an exception its progress handler raises and
# reports the query as interrupted, which the reader re-raises as a plain KeyboardInterrupt.
_TERMINATED: list[bool] = []


def _terminate(_signum: int, _frame: object) -> None:
    _TERMINATED.append(True)
    raise Terminated


class ReportingGroup(click.Group):
    """Prints every problem of a NeurodeckError, located, and exits 1: no traceback.

    An interrupt (Ctrl-C, SIGTERM) prints one line and exits 130 or 143, as a shell does.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as err:
            terminated = isinstance(err, Terminated) or bool(_TERMINATED)
            name, code = ("SIGTERM", 143) if terminated else ("SIGINT", 130)
            click.echo(f"neurodeck: interrupted by {name}; stopped", err=True)
            if threading.active_count() > 1:
                # Cleanup is done; a worker pool's thread that was cut off mid-message
                # could hold up the interpreter's exit for ever.
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
            ctx.exit(code)
        except NeurodeckError as err:
            if ctx.meta.get(_JSON_KEY):
                click.echo(json.dumps(_report(err.problems, ok=False), indent=2))
            else:
                for problem in err.problems:
                    click.echo(problem, err=True)
                count = len(err.problems)
                outcome = "; nothing was written" if ctx.invoked_subcommand == "build" else " found"
                click.echo(f"{count} problem{'s' if count != 1 else ''}{outcome}", err=True)
            ctx.exit(1)


def _report(problems: list[Problem], *, ok: bool, **extra: object) -> dict[str, object]:
    return {"ok": ok, **extra, "problems": [p.to_json() for p in problems]}


def build_clock() -> int:
    """Seconds since the epoch for edited notes: SOURCE_DATE_EPOCH when set, else now."""
    from .lock import MAX_TIME, check_time

    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None:
        return int(time.time())
    try:
        clock = int(value)
    except ValueError:
        clock = -1
    if not check_time(clock):
        # Every time ends up as a zip date, which cannot be before 1970 here or after 2107.
        raise click.UsageError(
            f"SOURCE_DATE_EPOCH must be whole seconds since 1970 up to {MAX_TIME} (2107), "
            f"not {value[:40]!r}"
        )
    return clock


def _warn(problems: list[Problem]) -> None:
    for problem in problems:
        click.echo(problem, err=True)


def _format_option(func: Any) -> Any:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="Output for people or for tools.",
    )(func)


@click.group(cls=ReportingGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="neurodeck")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Compile YAML fact sets into Anki decks (.apkg).

    \b
    Example:
      neurodeck check cards/
      neurodeck build cards/ -o build/neurodeck.apkg
    """
    from . import yamlsrc

    # Every command reads YAML, and only libyaml reads it as neurodeck expects.
    if yamlsrc.libyaml_missing():
        click.echo(f"error: {yamlsrc.LIBYAML_MISSING}", err=True)
        ctx.exit(2)


@cli.command()
@click.argument("deck_dir", type=DECK_DIR, default="cards")
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Where to write the package (default: build/<deck id>.apkg).",
)
@click.option(
    "--frozen",
    is_flag=True,
    help="Fail instead of updating neurodeck.lock (for CI: the lock must be committed).",
)
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@_format_option
@click.pass_context
def build(
    ctx: click.Context, deck_dir: Path, output: str | None, frozen: bool, strict: bool, fmt: str
) -> None:
    """Compile DECK_DIR (default: cards) into an Anki package.

    Notes whose content changed get a new modification time in DECK_DIR/neurodeck.lock, so
    learners receive the edit; commit the lock with the cards.

    \b
    Example:
      SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) neurodeck build cards/ --frozen
    """
    from . import pipeline

    ctx.meta[_JSON_KEY] = fmt == "json"
    out = None if output is None else _output_path(ctx, deck_dir, output)
    built = pipeline.build(deck_dir, out, clock=build_clock(), frozen=frozen, strict=strict)
    _warn(built.warnings)
    summary = {
        "path": str(built.path),
        "notes": built.notes,
        "cards": built.cards,
        "subdecks": built.subdecks,
        "lock_changes": built.lock_changes,
    }
    if fmt == "json":
        click.echo(json.dumps(_report(built.warnings, ok=True, **summary), indent=2))
        return
    click.echo(
        f"Wrote {printable(str(built.path))}: {plural(built.notes, 'note')}, "
        f"{plural(built.cards, 'card')}, {plural(built.subdecks, 'subdeck')}"
    )
    if built.lock_changes:
        click.echo(f"Updated neurodeck.lock: {'; '.join(built.lock_changes)}")


def _output_path(ctx: click.Context, deck_dir: Path, output: str, suffix: str = ".apkg") -> Path:
    """The -o path, or exit 2 with one line when writing it could destroy something."""
    from . import pipeline

    if output == "-":
        reason: str | None = "standard output is not supported; give a file name"
    else:
        reason = pipeline.output_problem(deck_dir, Path(output), suffix=suffix)
    if reason is not None:
        click.echo(f"{printable(output)}: error: -o {reason}", err=True)
        ctx.exit(2)
    return Path(output)


@cli.command("lock")
@click.argument("deck_dir", type=DECK_DIR, default="cards")
@click.option(
    "--from",
    "package",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The package last released to learners.",
)
@click.option("--force", is_flag=True, help="Replace a lock that is still readable.")
def lock_command(deck_dir: Path, package: Path, force: bool) -> None:
    """Rebuild DECK_DIR's lost or damaged neurodeck.lock from the last released package.

    A note whose content equals the package's keeps the package's modification time, so
    learners' own edits on it survive the next release; a note edited since gets the clock
    (SOURCE_DATE_EPOCH or now), so learners receive the edit. Commit the rebuilt lock.

    \b
    Example:
      neurodeck lock cards/ --from releases/neurodeck-1.0.0.apkg
    """
    from .relock import relock

    result = relock(deck_dir, package, clock=build_clock(), force=force)
    _warn(result.warnings)
    click.echo(
        f"Wrote {printable(str(result.path))} from {printable(str(package))}: "
        f"{plural(result.kept, 'note')} as released, {result.changed} edited since, "
        f"{result.added} new"
    )


@cli.command()
@click.argument("deck_dir", type=DECK_DIR, default="cards")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@_format_option
@click.pass_context
def check(ctx: click.Context, deck_dir: Path, strict: bool, fmt: str) -> None:
    """Validate DECK_DIR (default: cards) and report every problem at once; writes nothing.

    Exit status: 0 clean, 1 problems found, 2 usage error.

    \b
    Example:
      neurodeck check cards/ --format json
    """
    from . import pipeline

    ctx.meta[_JSON_KEY] = fmt == "json"
    checked = pipeline.check(deck_dir, strict=strict, keep="problems")
    if fmt == "json":
        click.echo(
            json.dumps(
                _report(
                    checked.warnings, ok=True, notes=checked.note_count, cards=checked.card_count
                ),
                indent=2,
            )
        )
        return
    _warn(checked.warnings)
    warnings = len(checked.warnings)
    click.echo(
        f"{plural(checked.note_count, 'note')}, {plural(checked.card_count, 'card')}, "
        f"0 errors, {plural(warnings, 'warning')}"
    )


@cli.command()
@click.argument("deck_dir", type=DECK_DIR, default="cards")
@_format_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    hidden=True,
    help="The same as --format json (kept for scripts that use it).",
)
def stats(deck_dir: Path, fmt: str, as_json: bool) -> None:
    """Count notes and cards in DECK_DIR by subdeck, note type and tag.

    \b
    Example:
      neurodeck stats cards/ --format json
    """
    from . import pipeline

    numbers = pipeline.stats(deck_dir)
    if as_json or fmt == "json":
        click.echo(json.dumps(numbers, indent=2))
        return
    notes, cards = int(numbers["notes"]), int(numbers["cards"])  # type: ignore[call-overload]
    click.echo(
        f"{numbers['deck']} ({numbers['id']}): {plural(notes, 'note')}, " f"{plural(cards, 'card')}"
    )
    for title, key in (("Subdecks", "subdecks"), ("Note types", "note_types")):
        click.echo(f"\n{title}:")
        for name, counts in numbers[key].items():  # type: ignore[attr-defined]
            click.echo(
                f"  {name}: {plural(counts['notes'], 'note')}, "
                f"{plural(counts['cards'], 'card')}"
            )
    click.echo("\nTags:")
    for tag, count in numbers["tags"].items():  # type: ignore[attr-defined]
        click.echo(f"  {tag}: {count}")


@cli.command()
@click.argument("apkg", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_format_option
@click.pass_context
def verify(ctx: click.Context, apkg: Path, fmt: str) -> None:
    """Import APKG into an empty Anki collection with Anki's own library and report.

    Exit status 1 if Anki cannot import it, a note is missing or conflicts, or a card does
    not render. Needs the optional extra: pip install 'neurodeck[anki]'.

    \b
    Example:
      neurodeck verify build/neurodeck.apkg
    """
    from .verify import INSTALL_COMMAND, anki_is_installed, verify_apkg

    if not anki_is_installed():  # a missing tool is a usage problem, not a deck problem
        click.echo(
            "Error: `neurodeck verify` needs Anki's own library (the `anki` package), "
            f"which is not installed\n  hint: install it with: {INSTALL_COMMAND}",
            err=True,
        )
        ctx.exit(2)
    ctx.meta[_JSON_KEY] = fmt == "json"
    result = verify_apkg(apkg)
    if fmt == "json":
        click.echo(
            json.dumps(_report(list(result.problems), ok=result.ok, **result.summary()), indent=2)
        )
    else:
        log = result.log
        decks, types = len(result.decks), len(result.note_types)
        click.echo(
            f"Anki {result.anki_version} imported {printable(str(apkg))}: "
            f"{plural(result.notes, 'note')}, "
            f"{plural(result.cards, 'card')}, {plural(decks, 'deck')}, "
            f"{plural(types, 'note type')}"
        )
        click.echo(
            f"Import log: {log['new']} new, {log['updated']} updated, "
            f"{log['duplicate']} duplicate, {log['conflicting']} conflicting"
        )
        _warn(list(result.problems))
        if result.ok:
            click.echo(f"All {result.cards} cards render with a front and a back")
        else:
            count = len(result.problems)
            click.echo(f"{count} problem{'s' if count != 1 else ''} found by Anki", err=True)
    if not result.ok:
        ctx.exit(1)


# --- Releases: diff, release-check, export (issue #7) ---------------------------------------

_SIDE = click.Path(path_type=Path)  # a deck directory or a built .apkg; checked by read_side


@cli.command()
@click.argument("old", type=_SIDE)
@click.argument("new", type=_SIDE)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "md", "json"]),
    default="text",
    show_default=True,
    help="For people, for release notes, or for tools.",
)
@click.pass_context
def diff(ctx: click.Context, old: Path, new: Path, fmt: str) -> None:
    """List the notes added, changed and removed from OLD to NEW.

    OLD and NEW are deck directories or built .apkg files. Notes are matched by GUID, as
    Anki matches them, and named by note id wherever a deck directory tells it. A changed
    note lists what changed: front, back, text, extra, source, tags, deck or type.

    \b
    Example:
      neurodeck diff ../v1.0.0/cards cards --format md >> CHANGELOG.md
    """
    from .diff import diff_paths, diff_to_json, format_markdown, format_text

    ctx.meta[_JSON_KEY] = fmt == "json"
    changes = diff_paths(old, new, clock=build_clock())
    if fmt == "json":
        click.echo(json.dumps(diff_to_json(changes), indent=2, ensure_ascii=False))
    else:
        click.echo(format_markdown(changes) if fmt == "md" else format_text(changes), nl=False)


@cli.command("release-check")
@click.argument("old", type=_SIDE)
@click.argument("new", type=_SIDE)
@_format_option
@click.pass_context
def release_check(ctx: click.Context, old: Path, new: Path, fmt: str) -> None:
    """Judge releasing NEW to learners who have OLD, by Anki's import rules.

    Flags every change that will not reach learners or will hurt them: a removed or renamed
    note, a note type whose fields or templates changed, a note that changed type or moved
    to another subdeck, a renumbered or removed cloze deletion, and an edit whose
    modification time did not move forward. Prints what to tell learners.

    Exit status 1 when a breaking change is found, unless NEW raises the major version
    (deck.yaml `version`); 0 otherwise.

    \b
    Example:
      neurodeck release-check build/previous.apkg cards/
    """
    from .diff import diff_paths
    from .release_check import format_verdict, judge, verdict_to_json

    ctx.meta[_JSON_KEY] = fmt == "json"
    verdict = judge(diff_paths(old, new, clock=build_clock()))
    if fmt == "json":
        click.echo(json.dumps(verdict_to_json(verdict), indent=2, ensure_ascii=False))
    else:
        click.echo(format_verdict(verdict), nl=False)
    if not verdict.passed:
        ctx.exit(1)


@cli.command("export")
@click.argument("deck_dir", type=DECK_DIR, default="cards")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "html", "json", "md"]),
    required=True,
    help="csv: notes for any Anki collection; html: preview; json: tools; md: study " "sheet.",
)
@click.option(
    "-o", "--output", metavar="FILE", help="Where to write (default: build/<deck id>.<format>)."
)
@click.pass_context
def export_command(ctx: click.Context, deck_dir: Path, fmt: str, output: str | None) -> None:
    """Export the notes of DECK_DIR (default: cards) as Anki will get them.

    \b
    csv   for Anki's File > Import into any collection, without the .apkg: notes use the
          note types every collection has (Basic, Basic (and reversed card), Cloze, by
          their English names), with the extra and source after the answer. Learners
          who want releases that keep their history import the .apkg instead; the two
          never share notes.
    html  a searchable, printable preview of every card, with the deck's styling.
    json  every note with its id, GUID, fields and rendered cards, for tools.
    md    a Markdown study sheet; its images are copied into a folder beside it.

    DECK_DIR and its lock file are left unchanged.

    \b
    Example:
      neurodeck export cards/ --format html -o build/preview.html
    """
    from .export import default_path, write_export
    from .snapshot import compile_snapshot

    out = None if output is None else _output_path(ctx, deck_dir, output, f".{fmt}")
    if fmt == "json":  # written as the notes are compiled: a large deck is never held
        _export_json(deck_dir, out)
        return
    snapshot = compile_snapshot(deck_dir, clock=build_clock())
    path = out or default_path(snapshot, fmt)
    with _progress(snapshot.notes, length=len(snapshot.notes), label=f"Exporting {fmt}") as notes:
        try:
            cards = write_export(snapshot, fmt, path, notes)
        except OSError as err:  # read-only, full, too large: the previous file is intact
            raise NeurodeckError(
                [Problem(Location(display_path(path)), f"cannot write the export: {err.strerror}")]
            ) from None
    click.echo(
        f"Wrote {printable(str(path))}: {plural(len(snapshot.notes), 'note')}, "
        f"{plural(cards, 'card')}"
    )


def _export_json(deck_dir: Path, out: Path | None) -> None:
    from .export import stream_json_export
    from .load import load_header

    path = out or Path("build") / f"{load_header(deck_dir, []).id or 'deck'}.json"
    try:
        notes, cards = stream_json_export(deck_dir, path, clock=build_clock())
    except OSError as err:  # read-only, full, too large: the previous file is intact
        raise NeurodeckError(
            [Problem(Location(display_path(path)), f"cannot write the export: {err.strerror}")]
        ) from None
    click.echo(f"Wrote {printable(str(path))}: {plural(notes, 'note')}, {plural(cards, 'card')}")


# --- Authoring: schema, new, preview (issue #15) ----------------------------------------


@cli.command("schema")
@click.argument("which", type=click.Choice(["deck", "factset"]), default="factset")
def schema_command(which: str) -> None:
    """Print the JSON Schema (draft 2020-12) of deck.yaml or of a fact set, for editors.

    Editors with a YAML language server (VS Code's YAML extension and others) then complete
    keys and flag mistakes as you type. `neurodeck check` still has the last word.

    \b
    Example:
      neurodeck schema factset > schema/factset.schema.json
      # first line of a fact set:
      # yaml-language-server: $schema=schema/factset.schema.json
    """
    from .authoring import schema_text

    click.echo(schema_text(which), nl=False)


@cli.command("new")
@click.argument("deck_dir", type=click.Path(file_okay=False, path_type=Path))  # may not exist
@click.option("--name", help="The deck name learners see (default: from DECK_DIR).")
def new_command(deck_dir: Path, name: str | None) -> None:
    """Make DECK_DIR a working deck: deck.yaml with a fresh id, an example fact set showing
    each note type, a README for contributors, .gitignore, a CI workflow, a pre-commit
    configuration and the editor schemas.

    Overwrites nothing: if any of those files exists, prints one line and exits 2.

    \b
    Example:
      neurodeck new intro-psych --name "Introduction to Psychology"
      neurodeck check intro-psych
    """
    from .authoring import new_deck

    try:
        written = new_deck(deck_dir, name)
    except NeurodeckError as err:  # a usage mistake, not a deck problem: one line, exit 2
        (problem,) = err.problems
        hint = f"; {problem.hint}" if problem.hint else ""
        click.echo(f"neurodeck new: {problem.location} {problem.message}{hint}", err=True)
        sys.exit(2)
    click.echo(f"Created {len(written)} files in {deck_dir}:")
    for path in written:
        click.echo(f"  {path.relative_to(deck_dir).as_posix()}")
    click.echo(f"Next: neurodeck check {deck_dir} && neurodeck preview {deck_dir}")


@cli.command("check-files")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def check_files(files: tuple[Path, ...], strict: bool) -> None:
    """Check each deck that holds one of FILES (for pre-commit, which passes changed files).

    A file's deck is the nearest directory at or above it holding deck.yaml; files in no
    deck are ignored. Exit status 1 if any of those decks has problems.

    \b
    Example:
      neurodeck check-files cards/01-basics.yaml other-deck/deck.yaml
    """
    from . import pipeline
    from .authoring import decks_holding

    failed = False
    for deck_dir in decks_holding(files):
        try:
            checked = pipeline.check(deck_dir, strict=strict, keep="problems")
        except NeurodeckError as err:
            _warn(err.problems)
            count = len(err.problems)
            click.echo(f"{deck_dir}: {count} problem{'s' if count != 1 else ''} found", err=True)
            failed = True
            continue
        _warn(checked.warnings)
        click.echo(
            f"{deck_dir}: {checked.note_count} notes, {checked.card_count} cards, " "0 errors"
        )
    if failed:
        sys.exit(1)


@cli.command("preview")
@click.argument("deck_dir", type=DECK_DIR, default="cards")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port).",
)
def preview_command(deck_dir: Path, port: int) -> None:
    """Serve a live preview of DECK_DIR (default: cards) on 127.0.0.1 until Ctrl-C.

    Every card's front and back as Anki renders them (light and night mode), searchable by
    text, tag and subdeck, with `check` problems at the top and beside their notes. The page
    updates by itself within about a second of saving a file. Nothing is written.

    \b
    Example:
      neurodeck preview cards/
    """
    from .preview import serve

    clock = build_clock()
    try:
        serve(deck_dir, port=port, clock=clock, echo=lambda line: click.echo(line))
    except KeyboardInterrupt:  # Ctrl-C before the server was up
        click.echo("Preview stopped")
    except OSError as err:  # e.g. the port is taken
        click.echo(f"neurodeck preview: cannot serve on 127.0.0.1:{port}: {err.strerror}", err=True)
        sys.exit(2)


def progress_wanted() -> bool:
    """True on an interactive terminal; False when `CI` is set or stderr is not a TTY."""
    return not os.environ.get("CI") and sys.stderr.isatty()


@contextlib.contextmanager
def _progress(items: Iterable[T], *, length: int, label: str) -> Iterator[Iterable[T]]:
    """`items`, advancing a bar on stderr as they are consumed (or unchanged when not wanted)."""
    if not progress_wanted():
        yield items
        return
    # Redrawing for every one of 20,000 notes would cost more than the notes themselves.
    with click.progressbar(
        items, length=length, label=label, file=sys.stderr, update_min_steps=max(1, length // 200)
    ) as bar:
        yield bar


def main() -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _terminate)
    cli(prog_name="neurodeck")

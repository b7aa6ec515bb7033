"""The command line: parse options, call the pipeline, print, exit 0 / 1 (deck problems) / 2 (usage)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click

from . import __version__, pipeline
from .errors import NeurodeckError, Problem

DECK_DIR = click.Path(file_okay=False, path_type=Path)
_JSON_KEY = "neurodeck.json"


class ReportingGroup(click.Group):
    """Prints every problem of a NeurodeckError, located, and exits 1: no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NeurodeckError as err:
            if ctx.meta.get(_JSON_KEY):
                click.echo(json.dumps(_report(err.problems, ok=False), indent=2))
            else:
                for problem in err.problems:
                    click.echo(problem, err=True)
                errors = sum(p.severity == "error" for p in err.problems) or len(err.problems)
                click.echo(f"{errors} problem{'s' if errors != 1 else ''}; nothing was written",
                           err=True)
            ctx.exit(1)


def _report(problems: list[Problem], *, ok: bool, **extra: object) -> dict[str, object]:
    return {"ok": ok, **extra, "problems": [p.to_json() for p in problems]}


def build_clock() -> int:
    """Seconds since the epoch for edited notes: SOURCE_DATE_EPOCH when set, else now."""
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if value is None:
        return int(time.time())
    try:
        return int(value)
    except ValueError:
        raise click.UsageError(f"SOURCE_DATE_EPOCH must be whole seconds, not {value!r}") from None


def _warn(problems: list[Problem]) -> None:
    for problem in problems:
        click.echo(problem, err=True)


def _format_option(func: Any) -> Any:
    return click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
                        show_default=True, help="Output for people or for tools.")(func)


@click.group(cls=ReportingGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="neurodeck")
def cli() -> None:
    """Compile YAML fact sets into Anki decks (.apkg).

    \b
    Example:
      neurodeck check cards/
      neurodeck build cards/ -o build/neurodeck.apkg
    """


@cli.command()
@click.argument("deck_dir", type=DECK_DIR, default="cards")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the package (default: build/<deck id>.apkg).")
@click.option("--frozen", is_flag=True,
              help="Fail instead of updating neurodeck.lock (for CI: the lock must be committed).")
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@_format_option
@click.pass_context
def build(ctx: click.Context, deck_dir: Path, output: Path | None, frozen: bool, strict: bool,
          fmt: str) -> None:
    """Compile DECK_DIR (default: cards) into an Anki package.

    Notes whose content changed get a new modification time in DECK_DIR/neurodeck.lock, so
    learners receive the edit; commit the lock with the cards.

    \b
    Example:
      SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) neurodeck build cards/ --frozen
    """
    ctx.meta[_JSON_KEY] = fmt == "json"
    built = pipeline.build(deck_dir, output, clock=build_clock(), frozen=frozen, strict=strict)
    checked = built.checked
    _warn(checked.warnings)
    summary = {
        "path": str(built.path),
        "notes": len(checked.notes),
        "cards": checked.card_count,
        "subdecks": len(checked.subdecks),
        "lock_changes": built.lock_changes,
    }
    if fmt == "json":
        click.echo(json.dumps(_report(checked.warnings, ok=True, **summary), indent=2))
        return
    click.echo(f"Wrote {built.path}: {summary['notes']} notes, {summary['cards']} cards, "
               f"{summary['subdecks']} subdecks")
    if built.lock_changes:
        click.echo(f"Updated neurodeck.lock: {'; '.join(built.lock_changes)}")


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
    ctx.meta[_JSON_KEY] = fmt == "json"
    checked = pipeline.check(deck_dir, strict=strict)
    if fmt == "json":
        click.echo(json.dumps(_report(checked.warnings, ok=True, notes=len(checked.notes),
                                      cards=checked.card_count), indent=2))
        return
    _warn(checked.warnings)
    warnings = len(checked.warnings)
    click.echo(f"{len(checked.notes)} notes, {checked.card_count} cards, 0 errors, "
               f"{warnings} warning{'s' if warnings != 1 else ''}")


@cli.command()
@click.argument("deck_dir", type=DECK_DIR, default="cards")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def stats(deck_dir: Path, as_json: bool) -> None:
    """Count notes and cards in DECK_DIR by subdeck, note type and tag.

    \b
    Example:
      neurodeck stats cards/ --json
    """
    numbers = pipeline.stats(deck_dir)
    if as_json:
        click.echo(json.dumps(numbers, indent=2))
        return
    click.echo(f"{numbers['deck']} ({numbers['id']}): {numbers['notes']} notes, "
               f"{numbers['cards']} cards")
    for title, key in (("Subdecks", "subdecks"), ("Note types", "note_types")):
        click.echo(f"\n{title}:")
        for name, counts in numbers[key].items():  # type: ignore[attr-defined]
            click.echo(f"  {name}: {counts['notes']} notes, {counts['cards']} cards")
    click.echo("\nTags:")
    for tag, count in numbers["tags"].items():  # type: ignore[attr-defined]
        click.echo(f"  {tag}: {count}")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="neurodeck")

"""Progress bars for long commands: on a terminal's stderr only, never in CI or pipes."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

import click

T = TypeVar("T")


def wanted() -> bool:
    """True on an interactive terminal; False when `CI` is set or stderr is not a TTY."""
    return not os.environ.get("CI") and sys.stderr.isatty()


@contextlib.contextmanager
def progress(items: Iterable[T], *, length: int, label: str) -> Iterator[Iterable[T]]:
    """`items`, advancing a bar on stderr as they are consumed (or unchanged when not wanted)."""
    if not wanted():
        yield items
        return
    # Redrawing for every one of 20,000 notes would cost more than the notes themselves.
    with click.progressbar(items, length=length, label=label, file=sys.stderr,
                           update_min_steps=max(1, length // 200)) as bar:
        yield bar

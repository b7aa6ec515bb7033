"""deck.yaml `source_link`: a small link on each card's back to its note in the fact set.

The link goes into the Source field's HTML (generated, never a field learners edit) and
points at the fact set's file at the release's tag, at the line where the note starts.
It is left out of a note's content hash: inserting a note shifts the lines of every note
below it, and a release bumps `{version}` in every link; neither is a change learners
should receive, as each would count as an edit and overwrite their "My notes". A learner
keeps the link of the release in which their copy of the note last changed, and that link
still shows exactly the text they have, because it names that release's tag.
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote

from .errors import Problem
from .markup import escape_anki_markers
from .model import Deck, SourceLink

FORGES = ("github", "gitlab")
# https, a host name, an optional port and at least owner/name: nothing else (no query,
# no fragment, no quotes or spaces), so the address cannot break out of an attribute.
REPOSITORY_RE = re.compile(
    r"https://[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~-]+){2,}/?"
)
_PATH_PART_RE = re.compile(r"[A-Za-z0-9._~ -]+")
# What compile adds to the Source field, so that diff and release-check can set it aside.
ORIGIN_RE = re.compile(r'(?: · )?<a class="nd-origin" href="[^"<>]*">[^<]*</a>')


def forge_of(link: SourceLink) -> str | None:
    """github or gitlab: as written, or known from the host; None when it cannot be told."""
    if link.forge is not None:
        return link.forge if link.forge in FORGES else None
    host = link.repository.split("/")[2].lower() if link.repository.count("/") >= 2 else ""
    host = host.split(":")[0]
    if host == "github.com" or host.endswith(".github.com"):
        return "github"
    if host == "gitlab.com" or "gitlab" in host.split("."):
        return "gitlab"
    return None


def check_source_link(deck: Deck) -> list[Problem]:
    """The rules `source_link` must follow; nothing when it is absent."""
    link = deck.source_link
    if link is None:
        return []
    problems = []
    where = link.loc
    if not REPOSITORY_RE.fullmatch(link.repository):
        problems.append(
            Problem(
                where,
                f"`repository` of `source_link` is not a repository address: "
                f"{link.repository!r}",
                hint="write the https:// address you open in a browser, such as "
                "https://github.com/OWNER/NAME (no query, no #)",
            )
        )
    elif forge_of(link) is None:
        if link.forge is not None:
            problems.append(
                Problem(
                    where,
                    f"unknown `forge` {link.forge!r} in `source_link`",
                    hint=f"write one of: {', '.join(FORGES)}",
                )
            )
        else:
            problems.append(
                Problem(
                    where,
                    f"cannot tell how {link.repository} forms file addresses",
                    hint="add `forge: github` or `forge: gitlab` to `source_link`",
                )
            )
    ref = link.ref
    if not ref.strip() or any(c.isspace() for c in ref):
        problems.append(
            Problem(
                where,
                f"`ref` of `source_link` must be a tag, branch or "
                f"commit without spaces, not {ref!r}",
                hint='write ref: "v{version}" (the default) or a branch name',
            )
        )
    elif "{version}" in ref and not deck.version:
        problems.append(
            Problem(
                where,
                "`ref` of `source_link` uses {version}, but deck.yaml has no `version`",
                hint="add `version: 1.0.0`, or write a branch name as `ref`",
            )
        )
    elif re.search(r"[{}]", ref.replace("{version}", "")):
        problems.append(
            Problem(
                where,
                f"`ref` of `source_link` has a stray brace: {ref!r}",
                hint='the only placeholder is {version}, as in "v{version}"',
            )
        )
    path = link.path.strip("/")
    if path and (
        not all(_PATH_PART_RE.fullmatch(p) for p in path.split("/"))
        or any(p in (".", "..") for p in path.split("/"))
    ):
        problems.append(
            Problem(
                where,
                f"`path` of `source_link` is not a folder inside the repository: {link.path!r}",
                hint="write the deck directory's folder as it is in the "
                "repository, such as `cards`, or leave `path` out",
            )
        )
    return problems


def file_url(deck: Deck, link: SourceLink, file: str, line: int) -> str:
    """The address of `file` (relative to the deck directory) at `line`, at the release."""
    ref = link.ref.replace("{version}", deck.version or "")
    path = "/".join(p for p in (link.path.strip("/"), file) if p)
    blob = "/-/blob/" if forge_of(link) == "gitlab" else "/blob/"
    return (
        link.repository.rstrip("/")
        + blob
        + quote(ref, safe="")
        + "/"
        + quote(path, safe="/")
        + f"#L{line}"
    )


def origin_html(deck: Deck, file: str, line: int) -> str:
    """The link compile appends to the Source field: small print, the file and line named."""
    link = deck.source_link
    if link is None:
        return ""
    href = html.escape(file_url(deck, link, file, line))
    # A file named "[sound:x].yaml" must not become a play button.
    label = escape_anki_markers(html.escape(f"{file.rsplit('/', 1)[-1]}:{line}"))
    return f'<a class="nd-origin" href="{href}">{label}</a>'


def without_origin(field_html: str) -> str:
    """A Source field without the link, as compared between releases."""
    return ORIGIN_RE.sub("", field_html) if "nd-origin" in field_html else field_html

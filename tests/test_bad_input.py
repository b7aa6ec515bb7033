"""Hostile and malformed input: every bad deck gets located errors, exit 1, and no damage.

`tests/bad/<case>.yaml` is a corpus of bad fact sets; `<case>.expected` holds exactly the
problem lines `neurodeck build` prints for it (the file is copied into a deck as bad.yaml).
To add a case, write both files; the test below picks them up.
"""

from __future__ import annotations

import html.parser
import json
import os
import sqlite3
import sys
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import DECK_YAML, PEPTIDES_YAML

from neurodeck import yamlsrc
from neurodeck.cli import cli
from neurodeck.compile import compile_notes, deck_description
from neurodeck.errors import NeurodeckError
from neurodeck.load import load_deck

BAD = Path(__file__).parent / "bad"
CASES = sorted(BAD.glob("*.yaml"))
PREVIOUS = b"previous good build"


def run_build(runner, deck_dir: Path, tmp_path: Path, monkeypatch, *args: str):
    """`neurodeck build` from inside deck_dir (so paths print as bad.yaml) over a good file."""
    out = tmp_path / "release" / "deck.apkg"
    out.parent.mkdir(exist_ok=True)
    out.write_bytes(PREVIOUS)
    monkeypatch.chdir(deck_dir)
    result = runner.invoke(cli, ["build", ".", "-o", str(out), *args])
    return result, out


def assert_failed_without_damage(result, out: Path, deck_dir: Path) -> list[str]:
    """Exit 1, no traceback, the old package intact, nothing left behind; the problem lines."""
    assert "Traceback" not in result.output + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1, result.output
    assert out.read_bytes() == PREVIOUS
    assert sorted(p.name for p in out.parent.iterdir()) == ["deck.apkg"]  # no .*.tmp, no scratch
    assert not (deck_dir / "neurodeck.lock").exists()
    lines = result.stderr.splitlines()
    assert lines[-1].endswith(
        (
            "problem; nothing was written",
            "problems; nothing was written",
            "problem found",
            "problems found",
        )
    ), lines[-1]
    return lines[:-1]


def expected_lines(case: Path) -> list[str]:
    return case.with_suffix(".expected").read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_bad_fact_set_is_reported_exactly_and_damages_nothing(
    case, make_deck, runner, tmp_path, monkeypatch
):
    """Each corpus case prints exactly its expected problems, located, with hints."""
    deck_dir = make_deck({"bad.yaml": case.read_bytes()})
    result, out = run_build(runner, deck_dir, tmp_path, monkeypatch)
    assert assert_failed_without_damage(result, out, deck_dir) == expected_lines(case)


def test_every_corpus_case_has_an_expectation():
    assert CASES
    for case in CASES:
        lines = expected_lines(case)
        assert lines and lines[0].startswith("bad.yaml:"), case.name
        assert all(line.startswith(("bad.yaml:", "  ")) for line in lines), case.name


def test_every_problem_of_several_files_in_one_run_sorted_by_file_and_line(
    make_deck, runner, tmp_path, monkeypatch
):
    """A deck with several bad files reports all their problems at once, in reading order."""
    deck_dir = make_deck(
        {
            "a-syntax.yaml": (BAD / "syntax-unquoted-colon.yaml").read_bytes(),
            "b-shape.yaml": (BAD / "unknown-key.yaml").read_bytes(),
            "c-content.yaml": (BAD / "cloze-no-deletion.yaml").read_bytes(),
            "d-encoding.yaml": b"notes:\n  - id: latin\n    front: caf\xe9\n    back: x\n",
            "e-fine.yaml": PEPTIDES_YAML,
        }
    )
    result, out = run_build(runner, deck_dir, tmp_path, monkeypatch)
    assert assert_failed_without_damage(result, out, deck_dir) == [
        "a-syntax.yaml:3:16: error: invalid YAML: a value contains ': ' but is not in quotes",
        '  hint: put quotes around the value, e.g. front: "Ratio: 2 to 1"',
        "b-shape.yaml:2:5: error: note 'oxytocin-touch' is missing `back`",
        "  hint: basic notes need both `front` (the prompt) and `back` (the answer)",
        "b-shape.yaml:4:5: error: unknown key 'bakc' in a note",
        "  hint: did you mean 'back'?",
        "c-content.yaml:4:11: error: cloze note 'oxytocin-touch' has no deletion",
        "  hint: mark the hidden part as {{c1::text}} (and put the whole value in quotes if "
        "it then starts with {{), or make it a basic note",
        "d-encoding.yaml:3:15: error: file is not valid UTF-8 (byte 0xe9)",
        "  hint: save the file with the UTF-8 encoding (in most editors: Save As → Encoding)",
        "e-fine.yaml:5:5: error: duplicate note id 'oxytocin-touch'",
        "  hint: first defined at c-content.yaml:2:5; every note needs its own id",
    ]


def test_broken_deck_yaml_is_located(make_deck, runner, tmp_path, monkeypatch):
    deck_dir = make_deck(
        {
            "deck.yaml": "name: Test Deck\nid: test\ndescription: 'unclosed\n",
            "peptides.yaml": PEPTIDES_YAML,
        }
    )
    result, out = run_build(runner, deck_dir, tmp_path, monkeypatch)
    assert assert_failed_without_damage(result, out, deck_dir) == [
        "deck.yaml:3:14: error: invalid YAML: a quoted value is never closed",
        "  hint: close the quote at the end of the value; inside '...' write an apostrophe "
        "as two ('')",
    ]


@pytest.mark.parametrize(
    ("deck_yaml", "expected"),
    [
        (
            "- name: Test\n- id: test\n",
            [
                "deck.yaml:1:1: error: deck.yaml must be a mapping of keys to values, not a list",
                "  hint: expected keys: name, id, version, description, sources, source_link",
            ],
        ),
        (
            "name: Test\nid: test\nsources: [a, b]\n",
            [
                "deck.yaml:3:10: error: `sources` must be a mapping of source ids, not a list",
                "  hint: write sources:",
                '    my-source: {title: "Title"}',
            ],
        ),
        (
            "name: Test\nid: test\nsources:\n  a: {title: One}\n  a: {title: Two}\n",
            ["deck.yaml:5:3: error: duplicate source id 'a' (first at line 4)"],
        ),
        (
            "name: Test\nid: test\nsources:\n  ? [a]\n  : {title: One}\n",
            [
                "deck.yaml:4:5: error: a source id must be text, not a list",
                "  hint: quote the whole value, or use a YAML block scalar (|) for several lines",
            ],
        ),
        (
            "name: Test\nid: test\nsources:\n  a: {title: [One]}\n",
            [
                "deck.yaml:4:14: error: `title` of source 'a' must be text, not a list",
                "  hint: quote the whole value, or use a YAML block scalar (|) for several lines",
            ],
        ),
        (
            b"name: Caf\xe9\nid: test\n",
            [
                "deck.yaml:1:10: error: file is not valid UTF-8 (byte 0xe9)",
                "  hint: save the file with the UTF-8 encoding "
                "(in most editors: Save As → Encoding)",
            ],
        ),
    ],
    ids=[
        "not-a-mapping",
        "sources-a-list",
        "source-twice",
        "source-id-a-list",
        "title-a-list",
        "not-utf8",
    ],
)
def test_a_broken_deck_yaml_is_reported_exactly(
    deck_yaml, expected, make_deck, runner, tmp_path, monkeypatch
):
    deck_dir = make_deck(
        {"deck.yaml": deck_yaml, "a.yaml": "notes:\n  - {id: a, front: Q, back: A}\n"}
    )
    result, out = run_build(runner, deck_dir, tmp_path, monkeypatch)
    assert assert_failed_without_damage(result, out, deck_dir) == expected


def test_a_deck_yaml_that_is_a_directory_is_reported(make_deck, runner, tmp_path, monkeypatch):
    deck_dir = make_deck({"peptides.yaml": PEPTIDES_YAML})
    (deck_dir / "deck.yaml").unlink()
    (deck_dir / "deck.yaml").mkdir()
    result, out = run_build(runner, deck_dir, tmp_path, monkeypatch)
    assert assert_failed_without_damage(result, out, deck_dir) == [
        "deck.yaml: error: deck.yaml is not a regular file (a directory)",
        "  hint: make deck.yaml a plain text file",
    ]


def test_duplicate_id_across_files_names_both_places(make_deck, runner, tmp_path, monkeypatch):
    deck_dir = make_deck({"a.yaml": PEPTIDES_YAML, "b.yaml": PEPTIDES_YAML})
    result, out = run_build(runner, deck_dir, tmp_path, monkeypatch)
    lines = assert_failed_without_damage(result, out, deck_dir)
    assert lines[:2] == [
        "b.yaml:5:5: error: duplicate note id 'oxytocin-touch'",
        "  hint: first defined at a.yaml:5:5; every note needs its own id",
    ]


# --- Encodings ---------------------------------------------------------------------------------


def test_non_utf8_byte_is_located_by_characters_not_bytes(make_deck, runner, tmp_path, monkeypatch):
    """The column counts characters: 'ï' before the bad byte is one column, not two bytes."""
    bad = "notes:\n  - id: a\n    front: naïve ".encode() + b"caf\xe9\n    back: x\n"
    deck_dir = make_deck({"bad.yaml": bad})
    result, out = run_build(runner, deck_dir, tmp_path, monkeypatch)
    assert assert_failed_without_damage(result, out, deck_dir) == [
        "bad.yaml:3:21: error: file is not valid UTF-8 (byte 0xe9)",
        "  hint: save the file with the UTF-8 encoding (in most editors: Save As → Encoding)",
    ]


def test_utf16_file_gets_a_hint_naming_utf16(make_deck, runner, tmp_path, monkeypatch):
    deck_dir = make_deck({"bad.yaml": PEPTIDES_YAML.encode("utf-16")})
    result, out = run_build(runner, deck_dir, tmp_path, monkeypatch)
    assert assert_failed_without_damage(result, out, deck_dir) == [
        "bad.yaml:1:1: error: file is not valid UTF-8 (byte 0xff)",
        "  hint: the file is saved as UTF-16; save the file with the UTF-8 encoding "
        "(in most editors: Save As → Encoding)",
    ]


def test_control_character_in_the_file_is_located(make_deck, runner, tmp_path, monkeypatch):
    deck_dir = make_deck({"bad.yaml": b"notes:\n  - id: a\n    front: ring\x07\n    back: x\n"})
    result, out = run_build(runner, deck_dir, tmp_path, monkeypatch)
    assert assert_failed_without_damage(result, out, deck_dir) == [
        "bad.yaml:3:16: error: an invisible control character (U+0007) is not allowed in YAML",
        "  hint: delete it (it often comes from copying text out of another program)",
    ]


def test_byte_order_mark_is_accepted(make_deck, runner, tmp_path, monkeypatch):
    """Windows editors save UTF-8 with a BOM; the file builds and the card is unchanged."""
    deck_dir = make_deck(
        {
            "peptides.yaml": b"\xef\xbb\xbf" + PEPTIDES_YAML.encode(),
            "deck.yaml": b"\xef\xbb\xbf" + DECK_YAML.encode(),
        }
    )
    out = tmp_path / "deck.apkg"
    result = runner.invoke(cli, ["build", str(deck_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    fields = packaged_fields(out)
    assert fields[0][:2] == (
        "Which neuropeptide is released during physical touch and intimacy?",
        "Oxytocin",
    )


# --- Size -------------------------------------------------------------------------------------


def test_file_over_the_size_limit_is_refused_before_it_is_read(
    make_deck, runner, tmp_path, monkeypatch
):
    """A huge fact set is refused from its size alone: quickly, and without reading it."""
    size = yamlsrc.MAX_FILE_BYTES + 1
    deck_dir = make_deck()
    with open(deck_dir / "huge.yaml", "wb") as huge:
        huge.write(b"notes:\n")
        huge.truncate(size)  # sparse: the test stays fast
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(NeurodeckError):
            load_deck(deck_dir)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert peak < 1024 * 1024  # the 8 MiB file was never read into memory
    result, out = run_build(runner, deck_dir, tmp_path, monkeypatch)
    assert assert_failed_without_damage(result, out, deck_dir) == [
        f"huge.yaml: error: file is {size:,} bytes; a fact set may be at most 8 MiB "
        f"({yamlsrc.MAX_FILE_BYTES:,} bytes)",
        "  hint: split it into several smaller fact-set files",
    ]


def test_a_fact_set_that_grows_after_its_size_is_taken_is_read_whole(tmp_path, monkeypatch):
    """The reader asks for the size stat gave; bytes written since are read too, not cut off."""
    from neurodeck.load import read_fact_set

    path = tmp_path / "a.yaml"
    path.write_text("notes:\n  - {id: a, front: Q, back: A}\n  - {id: b, front: Q, back: A}\n")
    real_fstat = os.fstat

    def stale_fstat(fd: int) -> os.stat_result:
        values = list(real_fstat(fd))
        values[6] = 10  # st_size: as it was when only the first line was written
        return os.stat_result(values)

    monkeypatch.setattr(os, "fstat", stale_fstat)
    problems: list = []
    fact_set = read_fact_set(path, problems)
    assert problems == [] and fact_set is not None
    assert [note.id for note in fact_set.notes] == ["a", "b"]


def test_decode_refuses_too_many_bytes_with_the_same_message():
    with pytest.raises(NeurodeckError) as caught:
        yamlsrc.decode("big.yaml", b"#" * (yamlsrc.MAX_FILE_BYTES + 1))
    assert str(caught.value.problems[0]).startswith("big.yaml: error: file is 8,388,609 bytes;")


# --- Anchors, aliases, nesting ----------------------------------------------------------------


def test_billion_laughs_is_refused_without_expanding():
    """30 levels of 10 aliases each would expand to 10**30 nodes; refusing takes milliseconds."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 30)]
    text = "\n".join(lines) + "\nnotes: [*l29]\n"
    started = time.perf_counter()
    with pytest.raises(NeurodeckError) as caught:
        yamlsrc.compose("laughs.yaml", text)
    assert time.perf_counter() - started < 2.0
    assert len(caught.value.problems) == 29 * 10 + 1
    assert str(caught.value.problems[0]) == (
        "laughs.yaml:2:10: error: YAML alias '*l0' is not allowed in fact sets\n"
        "  hint: write the text out in full here (the anchor '&l0' is at line 1)"
    )


@pytest.mark.parametrize(
    "text", ["[" * 100_000 + "]" * 100_000, "- " * 100_000 + "x\n", "{a: " * 50_000 + "}" * 50_000]
)
def test_deep_nesting_is_an_error_not_a_crash(text):
    """libyaml's own composer recursed in C: 100,000 brackets crashed the interpreter."""
    with pytest.raises(NeurodeckError) as caught:
        yamlsrc.compose("deep.yaml", text)
    (problem,) = caught.value.problems
    assert problem.message == "YAML nested more than 100 levels deep"
    assert problem.location.line == 1


# --- What the author typed is what the card shows ---------------------------------------------

YAML11_TRAPS = {
    "no": "no",
    "yes": "yes",
    "on": "on",
    "off": "off",
    "y": "y",
    "time": "1:30",
    "octal": "010",
    "date": "2024-01-01",
    "float": "1e3",
    "tilde": "~",
    "null": "null",
    "hex": "0x1F",
    "inf": ".inf",
    "nan": ".NaN",
    "bool": "True",
    "sexagesimal": "190:20:30",
}


def test_yaml_11_values_reach_the_card_exactly_as_typed(make_deck, runner, tmp_path):
    """PyYAML would construct False, 90, 8, a date, 1000.0 and None; the loader keeps text."""
    notes = "".join(
        f"  - id: trap-{name}\n    front: What did the author type for {name}?\n    back: {typed}\n"
        for name, typed in YAML11_TRAPS.items()
    )
    deck_dir = make_deck({"traps.yaml": "source: intimacy\nnotes:\n" + notes})
    backs = [c.fields[1] for c in compile_notes(load_deck(deck_dir))]
    assert backs == list(YAML11_TRAPS.values())
    out = tmp_path / "deck.apkg"
    result = runner.invoke(cli, ["build", str(deck_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert [f[1] for f in packaged_fields(out)] == list(YAML11_TRAPS.values())


# --- Script injection -------------------------------------------------------------------------

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "<iframe src=https://example.com></iframe>",
    "[pic](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "<a href=javascript:alert(1)>x</a>",
    "<svg onload=alert(1)>",
    "[x](JaVaScRiPt:alert(1))",
    "<javascript:alert(1)>",
]


class _TagCollector(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


SAFE_TAGS = {
    "p",
    "em",
    "strong",
    "a",
    "img",
    "cite",
    "code",
    "pre",
    "ul",
    "ol",
    "li",
    "br",
    "small",
    "hr",
    "blockquote",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "span",
    "div",
}


def assert_no_live_markup(field_html: str) -> None:
    """No script-capable element, no event handler, no javascript:/data: link or source."""
    collector = _TagCollector()
    collector.feed(field_html)
    collector.close()
    for tag, attrs in collector.tags:
        assert tag in SAFE_TAGS, (tag, field_html)
        for name, value in attrs:
            assert not name.startswith("on"), (name, field_html)
            if name in ("href", "src"):
                scheme = (value or "").strip().lower().replace("\t", "").replace("\n", "")
                assert not scheme.startswith(("javascript:", "data:", "vbscript:")), field_html


@pytest.mark.parametrize("payload", PAYLOADS)
def test_script_injection_never_reaches_a_card_as_markup(payload, make_deck, runner, tmp_path):
    """Raw HTML is shown as text and unsafe links lose their target, in every field."""
    quoted = json.dumps(payload)  # a JSON string is a valid YAML double-quoted scalar
    deck_dir = make_deck(
        {
            "deck.yaml": f"name: Test Deck\nid: test\ndescription: {quoted}\n"
            f"sources:\n  evil: {{title: {quoted}, author: {quoted}}}\n",
            "evil.yaml": f"""\
            source: evil
            notes:
              - id: basic
                front: {quoted}
                back: {json.dumps(payload + " again")}
                extra: {quoted}
                section: {quoted}
              - id: cloze
                type: cloze
                text: {json.dumps("{{c1::x}} " + payload)}
                section: {quoted}
            """,
        }
    )
    deck = load_deck(deck_dir)
    htmls = [f for c in compile_notes(deck) for f in c.fields] + [deck_description(deck)]
    for field_html in htmls:
        assert_no_live_markup(field_html)
    out = tmp_path / "deck.apkg"
    result = runner.invoke(cli, ["build", str(deck_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    packaged = [f for fields in packaged_fields(out) for f in fields] + packaged_descriptions(out)
    if "alert(1)" in payload:
        assert any("alert(1)" in f for f in packaged)  # the text is there, shown as text
    for field_html in packaged:
        assert_no_live_markup(field_html)


def test_raw_html_is_escaped_and_unsafe_links_are_dropped(make_deck):
    deck_dir = make_deck(
        {
            "x.yaml": """\
        source: intimacy
        notes:
          - id: a
            front: "<script>alert(1)</script> [data](data:image/png;base64,AA) [ok](https://example.com)"
            back: "[js](javascript:alert(1))"
        """
        }
    )
    (compiled,) = compile_notes(load_deck(deck_dir))
    assert compiled.fields[:2] == (
        '&lt;script&gt;alert(1)&lt;/script&gt; <a>data</a> <a href="https://example.com">ok</a>',
        "[js](javascript:alert(1))",
    )


def test_source_url_must_be_http(make_deck, runner, tmp_path, monkeypatch):
    deck_dir = make_deck(
        {
            "deck.yaml": "name: T\nid: test\n"
            "sources:\n  evil: {title: X, url: 'javascript:alert(1)'}\n",
            "x.yaml": "source: evil\nnotes:\n  - id: a\n    front: x\n    back: y\n",
        }
    )
    result, out = run_build(runner, deck_dir, tmp_path, monkeypatch)
    assert assert_failed_without_damage(result, out, deck_dir) == [
        "deck.yaml:4:3: error: source 'evil' has a url that is not http(s)",
        "  hint: write a full https:// address, or remove `url`",
    ]


def test_anki_template_syntax_in_a_field_is_shown_literally(make_deck, runner, tmp_path):
    """Anki substitutes fields once; `{{Back}}` typed in a field is text, not a reference.

    A cloze note's `text` is different: there `{{...}}` must be a deletion (see the corpus).
    """
    anki_helpers = pytest.importorskip("anki_helpers")
    deck_dir = make_deck(
        {
            "x.yaml": """\
        source: intimacy
        notes:
          - id: template
            front: "Shows {{Back}} and {{FrontSide}} and {{#Back}}x{{/Back}} as typed"
            back: Answer
        """
        }
    )
    out = tmp_path / "deck.apkg"
    result = runner.invoke(cli, ["build", str(deck_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    view = anki_helpers.import_apkg(out, tmp_path / "learner")
    (card,) = view.cards
    assert "Shows {{Back}} and {{FrontSide}} and {{#Back}}x{{/Back}} as typed" in card.question


# --- Media ------------------------------------------------------------------------------------

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
    b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


def image_note(target: str) -> str:
    return (
        "source: intimacy\nnotes:\n  - id: figure\n"
        f"    front: 'Where is it? ![diagram]({target})'\n    back: Here\n"
    )


def test_image_inside_the_deck_is_packaged(make_deck, runner, tmp_path):
    deck_dir = make_deck({"fig.yaml": image_note("images/brain.png"), "images/brain.png": PNG})
    out = tmp_path / "deck.apkg"
    result = runner.invoke(cli, ["build", str(deck_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as archive:
        media = json.loads(archive.read("media"))
        assert media == {"0": "brain.png"}
        assert archive.read("0") == PNG
    assert packaged_fields(out)[0][0] == 'Where is it? <img src="brain.png" alt="diagram" />'


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
@pytest.mark.parametrize("link", ["file", "directory"])
def test_symlink_out_of_the_deck_is_refused(link, make_deck, runner, tmp_path, monkeypatch):
    secret_dir = tmp_path / "outside"
    secret_dir.mkdir()
    (secret_dir / "secret.png").write_bytes(PNG)
    target = "images/brain.png" if link == "file" else "images/secret.png"
    deck_dir = make_deck({"fig.yaml": image_note(target)})
    if link == "file":
        (deck_dir / "images").mkdir()
        (deck_dir / "images" / "brain.png").symlink_to(secret_dir / "secret.png")
    else:
        (deck_dir / "images").symlink_to(secret_dir, target_is_directory=True)
    result, out = run_build(runner, deck_dir, tmp_path, monkeypatch)
    directory_refused = (
        [
            f"images: error: symlink leads outside the deck directory (to {secret_dir})",
            "  hint: copy what it points to into the deck directory: a deck holds its own files",
        ]
        if link == "directory"
        else []
    )
    assert assert_failed_without_damage(result, out, deck_dir) == [
        f"fig.yaml:3:5: error: image {target!r} in note 'figure' is outside the deck directory",
        "  hint: copy the image into the deck directory and refer to it by a relative path "
        "such as images/figure.png",
        *directory_refused,
    ]


def test_two_images_of_one_name_in_different_folders_are_refused(
    make_deck, runner, tmp_path, monkeypatch
):
    """Anki keeps all media in one folder: one would silently replace the other."""
    two = image_note("a/brain.png") + "  - id: other\n    front: '![](b/brain.png)'\n    back: B\n"
    deck_dir = make_deck({"fig.yaml": two, "a/brain.png": PNG, "b/brain.png": PNG + b"\0"})
    result, out = run_build(runner, deck_dir, tmp_path, monkeypatch)
    assert assert_failed_without_damage(result, out, deck_dir) == [
        "fig.yaml:6:5: error: two different images are both named 'brain.png'",
        "  hint: rename one: Anki keeps all media in one folder",
    ]


@pytest.mark.parametrize("problem", ["symlink loop", "name too long"])
def test_unreadable_image_path_is_a_located_error(
    problem, make_deck, runner, tmp_path, monkeypatch
):
    """A symlink loop or an over-long name used to escape as RuntimeError / OSError."""
    target = "images/loop.png" if problem == "symlink loop" else "x" * 300 + ".png"
    deck_dir = make_deck({"fig.yaml": image_note(target)})
    if problem == "symlink loop":
        (deck_dir / "images").mkdir()
        (deck_dir / "images" / "loop.png").symlink_to("loop.png")
    result, out = run_build(runner, deck_dir, tmp_path, monkeypatch)
    lines = assert_failed_without_damage(result, out, deck_dir)
    assert len(lines) == 2
    assert lines[0].startswith(
        f"fig.yaml:3:5: error: image {target!r} in note 'figure' cannot be read: "
    )
    assert lines[1] == "  hint: check the path; it is relative to the deck directory"


# --- JSON output ------------------------------------------------------------------------------


def test_check_json_reports_located_problems_on_stdout(make_deck, runner, monkeypatch):
    deck_dir = make_deck(
        {
            "bad.yaml": (BAD / "syntax-unclosed-quote.yaml").read_bytes(),
            "dup.yaml": (BAD / "duplicate-key.yaml").read_bytes(),
        }
    )
    monkeypatch.chdir(deck_dir)
    result = runner.invoke(cli, ["check", ".", "--format", "json"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["problems"] == [
        {
            "path": "bad.yaml",
            "line": 3,
            "column": 12,
            "severity": "error",
            "message": "invalid YAML: a quoted value is never closed",
            "hint": "close the quote at the end of the value; inside '...' write an apostrophe "
            "as two ('')",
        },
        {
            "path": "dup.yaml",
            "line": 5,
            "column": 5,
            "severity": "error",
            "message": "duplicate key 'back' in a note (first at line 4)",
            "hint": "YAML keeps only the last value; remove or rename one of them",
        },
    ]


# --- Helpers ----------------------------------------------------------------------------------


def _query(apkg: Path, sql: str) -> list[tuple]:
    with zipfile.ZipFile(apkg) as archive, tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "collection.anki2"
        db.write_bytes(archive.read("collection.anki2"))
        conn = sqlite3.connect(db)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()


def packaged_fields(apkg: Path) -> list[tuple[str, ...]]:
    """Each note's fields as stored in the package, in curriculum order."""
    rows = _query(
        apkg,
        "SELECT n.flds FROM notes n JOIN cards c ON c.nid = n.id WHERE c.ord = 0 ORDER BY c.due",
    )
    return [tuple(flds.split("\x1f")) for (flds,) in rows]


def packaged_descriptions(apkg: Path) -> list[str]:
    """Every deck's description as stored in the package."""
    ((decks,),) = _query(apkg, "SELECT decks FROM col")
    return [deck.get("desc", "") for deck in json.loads(decks).values()]


@pytest.mark.parametrize(
    "case", ["syntax-colons-in-three-notes", "syntax-unquoted-colon", "syntax-over-indented-note"]
)
def test_syntax_errors_of_several_notes_are_each_reported(case):
    """Each note's syntax error is found by re-reading the file with that note blanked out."""
    text = (BAD / f"{case}.yaml").read_text(encoding="utf-8")
    with pytest.raises(NeurodeckError) as caught:
        yamlsrc.compose("bad.yaml", text)
    found = [str(p) for p in caught.value.problems]
    assert "\n".join(found).splitlines() == expected_lines(BAD / f"{case}.yaml")


def test_libyaml_decides_and_pyyaml_only_words_a_problem_on_the_same_line():
    """PyYAML refuses a tab after a plain value, which libyaml reads; its words for that
    line must not replace libyaml's for the real mistake further down."""
    tab_then_mistake = "notes:\n  - id: a\n    front: a\t\n    back: 'it's'\n"
    with pytest.raises(NeurodeckError) as caught:
        yamlsrc.compose("x.yaml", tab_then_mistake)
    (problem,) = caught.value.problems
    assert problem.location.line == 4
    assert "tab" not in problem.message
    note = yamlsrc.compose("x.yaml", "notes:\n  - id: a\n    front: a\tb\n")
    assert note is not None  # the tab libyaml reads is no problem at all


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (  # too big to parse again with PyYAML: libyaml's own words, still located
            "notes:\n"
            + "".join(f"  - {{id: n{i}, front: Q, back: A}}\n" for i in range(9000))
            + "  - {id: x, front: 'unclosed\n",
            (9002, 20),
            "invalid YAML: a quoted value is never closed",
        ),
        (  # PyYAML stops at the control character libyaml never reached: libyaml's words
            "a: b: c\n#" + "x" * 40_000 + "\n\x07",
            (1, 5),
            "invalid YAML: a value contains ': ' but is not in quotes",
        ),
    ],
    ids=["over-the-reread-limit", "pyyaml-refuses-sooner"],
)
def test_when_pyyaml_cannot_word_it_libyamls_syntax_error_stands(text, where, message):
    with pytest.raises(NeurodeckError) as caught:
        yamlsrc.compose("x.yaml", text)
    (problem,) = caught.value.problems
    assert (problem.location.line, problem.location.column) == where
    assert problem.message == message


def test_every_command_refuses_to_run_without_libyaml(runner, monkeypatch, tmp_path):
    """The pure-Python parser reads some files differently: one line names the fix, exit 2."""
    monkeypatch.setattr(yaml, "__with_libyaml__", False)
    for args in (["check", str(tmp_path)], ["build", str(tmp_path)], ["stats", str(tmp_path)]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2
        assert result.stderr == (
            "error: PyYAML was built without libyaml; reinstall it from a wheel: "
            "pip install --force-reinstall --only-binary :all: PyYAML\n"
        )
        assert result.stdout == ""


def test_a_file_full_of_syntax_errors_reports_a_bounded_number():
    """Each further error costs a re-read of the file: at most 50 more are looked for."""
    notes = "".join(f"  - id: n{i}\n    front: Note: {i}\n    back: x\n" for i in range(200))
    with pytest.raises(NeurodeckError) as caught:
        yamlsrc.compose("bad.yaml", "notes:\n" + notes)
    problems = caught.value.problems
    assert len(problems) == 51
    assert [p.location.line for p in problems] == [3 + 3 * i for i in range(51)]

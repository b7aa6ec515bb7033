"""Property tests: whatever the input, the loader ends in a deck or a NeurodeckError.

Arbitrary text, arbitrary bytes, YAML dumped from random data and mutated fact sets go
through the same stages as a build (decode, compose, load, validate, compile). Every run must
end in a valid model or a NeurodeckError, never another exception; the one-pass reader must
equal the general loader; and no rendered field may carry live markup.
"""

from __future__ import annotations

import html.parser
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import genanki
import pytest
import yaml
from conftest import DECK_YAML, PEPTIDES_YAML, png
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from yaml.nodes import MappingNode, Node, ScalarNode

from neurodeck import fastread, load, markup, pipeline, yamlsrc
from neurodeck.compile import NoteCompiler, compile_notes
from neurodeck.errors import NeurodeckError, Problem
from neurodeck.load import NOTE_KEYS, load_deck
from neurodeck.model import FactSet
from neurodeck.validate import answer_repeats_prompt, check_header, check_note

# Modest and repeatable by default, so the file runs in seconds; for a longer random search:
#   NEURODECK_HYPOTHESIS_EXAMPLES=20000 pytest tests/test_hypothesis.py
_EXAMPLES = int(os.environ.get("NEURODECK_HYPOTHESIS_EXAMPLES", "0"))
SETTINGS = settings(
    max_examples=_EXAMPLES or 200,
    deadline=None,
    derandomize=not _EXAMPLES,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Pieces that mean something to YAML, Markdown, Anki or a browser, so that random text
# reaches the interesting corners quickly.
YAML_PIECES = [
    ": ",
    "- ",
    "? ",
    "#",
    "'",
    '"',
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "!",
    "!!str ",
    "!!python/object:os.system ",
    "|",
    ">",
    "%",
    "@",
    "`",
    "\t",
    "\n",
    "\r\n",
    "  ",
    "    ",
    "---",
    "...",
    "\ufeff",
    "\\",
    "\\x07",
    "\\0",
    "~",
    "null",
    "no",
    "1:30",
    "010",
    "notes:",
    "id:",
    "front:",
    "back:",
    "text:",
    "type: cloze",
    "tags:",
    "\u2028",
    "\x85",
]
MARKUP_PIECES = [
    "<script>",
    "</script>",
    "<img src=x onerror=alert(1)>",
    "javascript:",
    "JaVaScRiPt:",
    "data:text/html,",
    "data:image/png;base64,AA",
    "vbscript:",
    "<iframe",
    "<svg onload=x>",
    "[",
    "]",
    "(",
    ")",
    "![",
    "](",
    "<",
    ">",
    '"',
    "'",
    "&#106;",
    "&",
    "*",
    "_",
    "`",
    "\\",
    "{{c1::",
    "}}",
    "::",
    "[sound:a.mp3]",
    "{{Front}}",
    "http://x.y/",
    "<a href=",
    " ",
    "\n",
    "mailto:",
    "#",
    "&lt;",
    "\t",
    "%20",
    "%3A",
    "%3a",
    "%00",
    "%2e%2e/",
]
yaml_text = st.lists(st.one_of(st.sampled_from(YAML_PIECES), st.characters()), max_size=40).map(
    "".join
)
markup_text = st.lists(
    st.one_of(st.sampled_from(MARKUP_PIECES), st.characters(codec="utf-8")), max_size=30
).map("".join)


# --- Helpers ----------------------------------------------------------------------------------


def outcome(thunk):
    """('ok', value) or ('error', problems): anything else propagates and fails the test."""
    try:
        return "ok", thunk()
    except NeurodeckError as err:
        assert err.problems, "a NeurodeckError must carry at least one problem"
        return "error", err.problems


def shape(node: Node | None):
    """A node tree as plain data, marks included, for comparing two parsers' results."""
    if node is None:
        return None
    mark = (node.start_mark.line, node.start_mark.column)
    if isinstance(node, ScalarNode):
        return ("scalar", node.tag, node.value, node.style, mark)
    if isinstance(node, MappingNode):
        return ("map", node.tag, mark, [(shape(k), shape(v)) for k, v in node.value])
    return ("seq", node.tag, mark, [shape(item) for item in node.value])


class _Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag


LIVE_TAGS = {
    "script",
    "iframe",
    "object",
    "embed",
    "svg",
    "math",
    "style",
    "form",
    "input",
    "base",
    "link",
    "meta",
    "frame",
    "frameset",
    "video",
    "audio",
    "source",
}


def assert_no_live_markup(field_html: str) -> None:
    """No <script> or other active element, no on*= handler, no javascript:/data: target."""
    assert "<script" not in field_html.lower()
    parser = _Tags()
    parser.feed(field_html)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag not in LIVE_TAGS, field_html
        for name, value in attrs:
            assert not name.startswith("on"), field_html
            target = re.sub(r"[\x00-\x20]", "", value or "").lower()
            assert not target.startswith(("javascript:", "vbscript:", "data:text")), field_html
            if name == "href":
                assert not target.startswith("data:"), field_html


def run_core(deck_dir: Path) -> None:
    """load → validate → compile, and the pipeline's own check, as a build would run them."""
    status, deck = outcome(lambda: load_deck(deck_dir))
    if status == "ok":
        problems = check_header(deck) + [p for n in deck.notes() for p in check_note(deck, n)]
        if not any(p.severity == "error" for p in problems):
            for compiled in compile_notes(deck):
                for field_html in compiled.fields:
                    assert_no_live_markup(field_html)
    status, checked = outcome(lambda: pipeline.check(deck_dir))
    if status == "ok":
        for compiled in checked.notes:
            for field_html in compiled.fields:
                assert_no_live_markup(field_html)
    assert_check_finds_what_a_build_finds(deck_dir)


def assert_check_finds_what_a_build_finds(deck_dir: Path) -> None:
    """`check` outlines notes (no field HTML, GUIDs or hashes); it must report the very
    problems, notes and cards of the pass a build runs."""

    def found(keep: pipeline.Keep) -> tuple[str, object]:
        status, result = outcome(lambda: pipeline.compile_deck(deck_dir, clock=0, keep=keep))
        if status == "ok":
            return status, (result.problems, result.note_count, result.card_count)
        return status, result

    assert found("problems") == found("counts")


def run_build(deck_dir: Path) -> None:
    """The whole build, package included: it writes a package or raises NeurodeckError."""
    run_core(deck_dir)
    out = deck_dir.parent / "out" / "deck.apkg"
    out.parent.mkdir()
    status, _ = outcome(lambda: pipeline.build(deck_dir, out, clock=1_700_000_000))
    assert out.exists() == (status == "ok")
    assert not [p.name for p in out.parent.iterdir() if p.name != "deck.apkg"]


def with_fact_set(data: bytes, check) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        deck_dir = Path(tmp) / "cards"
        deck_dir.mkdir()
        (deck_dir / "deck.yaml").write_text(DECK_YAML, encoding="utf-8")
        (deck_dir / "facts.yaml").write_bytes(data)
        check(deck_dir)


# --- The YAML reader --------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=200) | yaml_text.map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_bytes_decode_and_compose_or_fail_cleanly(data):
    def read():
        text = yamlsrc.decode("x.yaml", data)
        return yamlsrc.compose("x.yaml", text)

    outcome(read)


# --- Random data dumped as YAML ---------------------------------------------------------------

TRICKY = [
    "no",
    "yes",
    "on",
    "off",
    "1:30",
    "010",
    "2024-01-01",
    "1e3",
    "~",
    "null",
    "",
    " ",
    "{{c1::x}}",
    "{{c1:x}}",
    "{{c0::x}}",
    "{{c1::}}",
    "{{c1000::x}}",
    "<script>x</script>",
    "[a](javascript:alert(1))",
    "![i](../x.png)",
    "a b",
    "topic::sub",
    "::",
    "\x00",
    "\ud7ff",
    "\U0001f600",
    "[sound:x.mp3]",
    "Oxytocin",
    "oxytocin-touch",
    "cloze",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(TRICKY),
)
yaml_data = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(NOTE_KEYS) | st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
field_value = st.one_of(st.sampled_from(TRICKY), st.text(max_size=30), yaml_data)
note = st.fixed_dictionaries(
    {"id": st.sampled_from(["a", "b", "oxytocin-touch", "Bad Id", ""]) | field_value},
    optional={
        "type": st.sampled_from(["basic", "reversed", "cloze", "clozed"]) | field_value,
        "front": field_value,
        "back": field_value,
        "text": field_value,
        "extra": field_value,
        "tags": st.lists(st.sampled_from(TRICKY) | st.text(max_size=8), max_size=3) | field_value,
        "source": st.sampled_from(["intimacy", "intimcy"]) | field_value,
        "section": field_value,
        "bakc": field_value,
    },
)
fact_set_data = (
    st.fixed_dictionaries(
        {"notes": st.lists(note, max_size=4) | yaml_data},
        optional={
            "deck": st.sampled_from(["A::B", "A::", "Neuro"]) | field_value,
            "tags": field_value,
            "source": field_value,
        },
    )
    | yaml_data
)
dumped = st.builds(
    lambda data, flow, unicode: yaml.safe_dump(
        data, default_flow_style=flow, allow_unicode=unicode
    ),
    fact_set_data,
    st.sampled_from([False, None, True]),
    st.booleans(),
)


@SETTINGS
@given(dumped)
def test_dumped_data_loads_checks_and_compiles_or_fails_cleanly(text):
    with_fact_set(text.encode("utf-8"), run_core)


image_field = st.lists(
    st.sampled_from(
        [
            "![a](img.png)",
            "![b](missing.png)",
            "`![c](img.png)`",
            "\\![d](img.png)",
            "![e][ref]\n\n[ref]: img.png",
            "! [f](img.png)",
            "text ",
            "*em* ",
            "\n\n- ",
        ]
    ),
    max_size=4,
).map("".join)


@SETTINGS
@given(
    st.lists(
        st.fixed_dictionaries(
            {"front": image_field, "back": image_field},
            optional={"extra": image_field, "type": st.sampled_from(["basic", "reversed"])},
        ),
        min_size=1,
        max_size=3,
    )
)
def test_check_outlines_the_images_a_build_compiles(notes):
    """`check` finds a note's images without rendering its other fields: it must find the
    images a build packages (and report the missing ones alike)."""
    for i, note in enumerate(notes):
        note["id"] = f"n{i}"
    data = yaml.safe_dump({"deck": "Images", "source": "intimacy", "notes": notes})

    def check(deck_dir: Path) -> None:
        (deck_dir / "img.png").write_bytes(png(4, 4))
        deck = load_deck(deck_dir)
        compiler = NoteCompiler(deck)
        for each in deck.notes():
            outline, compiled = compiler.outline(each), compiler.compile(each)
            assert (outline.images, outline.ordinals) == (compiled.images, compiled.ordinals)
        assert_check_finds_what_a_build_finds(deck_dir)

    with_fact_set(data.encode("utf-8"), check)


# --- A valid fact set, mutated ----------------------------------------------------------------


@st.composite
def mutated_fact_set(draw) -> str:
    """PEPTIDES_YAML with a few random edits: the mistakes of a hurried author, and worse."""
    lines = PEPTIDES_YAML.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        edit = draw(
            st.sampled_from(
                ["insert", "delete", "duplicate", "indent", "dedent", "replace value", "swap"]
            )
        )
        line = lines[i]
        if edit == "insert":
            at = draw(st.integers(0, len(line)))
            piece = draw(st.sampled_from(YAML_PIECES + MARKUP_PIECES) | st.characters())
            lines[i] = line[:at] + piece + line[at:]
        elif edit == "delete" and line:
            at = draw(st.integers(0, len(line) - 1))
            lines[i] = line[:at] + line[at + draw(st.integers(1, 5)) :]
        elif edit == "duplicate":
            lines.insert(i, line)
        elif edit == "indent":
            lines[i] = draw(st.sampled_from([" ", "  ", "\t"])) + line
        elif edit == "dedent":
            lines[i] = line[1:] if line.startswith(" ") else line
        elif edit == "replace value" and ": " in line:
            key = line.split(": ", 1)[0]
            value = draw(st.sampled_from(TRICKY + MARKUP_PIECES) | st.text(max_size=20))
            lines[i] = f"{key}: {value}\n"
        elif edit == "swap" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
    return "".join(lines)


@SETTINGS
@given(mutated_fact_set())
def test_mutated_fact_set_builds_or_fails_cleanly(text):
    with_fact_set(text.encode("utf-8", "surrogatepass"), run_build)


# --- Markup -----------------------------------------------------------------------------------


@SETTINGS
@given(st.from_regex(markup._PLAIN_RE, fullmatch=True))
def test_plain_text_fast_path_renders_what_markdown_renders(text):
    """The shortcut for plain sentences must give exactly the full parser's HTML."""
    assert markup.render(text) == markup._render_markdown(text)


# Markup characters, and characters the fast paths take as text (or must not).
FAST_PATH_EDGES = "ab _*`~<>&\"'()[]{}:;,./?!#=+-|\\\n0123456789%$^@\u2212éø\u2019\u00a0"


@SETTINGS
@given(st.text(alphabet=FAST_PATH_EDGES, max_size=20))
def test_fast_paths_are_taken_only_when_they_are_exact(text):
    assert markup.render(text) == markup._render_markdown(text)


# Sentences of words, punctuation and emphasised words, in the shapes flash cards use and
# in the shapes that sit on the fast path's edges (`*a*b`, `(*a*)`, `***a***`, `_a_b_`).
emphasis_pieces = st.one_of(
    st.sampled_from(["a", "Word", "x2", "the", "B"]),
    st.sampled_from([" ", "  ", ",", ".", ";", ":", "?", "'", '"', "(", ")", "-", "/", "!"]),
    # Code spans, and text the plain path takes past a sentence's first letter.
    st.sampled_from(["`a`", "`a b`", "` a`", "`a `", "``a``", "`*a*`", "`", "& ", "&", "&amp;"]),
    st.sampled_from(["é", "\u2212", "%", "=", "#", "+", "|", "\u00a0", "ø", "ß"]),
    st.builds(
        lambda mark, word: f"{mark}{word}{mark}",
        st.sampled_from(["*", "_", "**", "__", "***"]),
        st.sampled_from(["a", "key", "X1", "a b", "a_b", ""]),
    ),
    st.sampled_from(["*", "_", "**"]),
)


@SETTINGS
@given(st.lists(emphasis_pieces, max_size=12).map("".join))
def test_emphasis_fast_path_renders_what_markdown_renders(text):
    """The shortcut for emphasised words must give exactly the full parser's HTML."""
    assert markup.render(text) == markup._render_markdown(text)


key_term_pieces = st.one_of(
    st.sampled_from(["a", "Wo", "x2", " ", " ", ",", ".", ";", ":", "?", "'", '"', "(", ")"]),
    st.builds(
        lambda mark, word: f"{mark}{word}{mark}",
        st.sampled_from(["*", "_", "**", "__"]),
        st.sampled_from(["a", "key", "X1", "key term", "a b c", " a", "a "]),
    ),
)


@SETTINGS
@given(st.lists(key_term_pieces, min_size=1, max_size=12).map("".join))
def test_emphasis_fast_path_renders_what_markdown_renders_for_key_terms(text):
    # Pieces that mostly stay on the fast path, so that it is exercised, not just skipped.
    assert markup.render(text) == markup._render_markdown(text)


term_word = st.sampled_from(
    [
        *["a", "Key", "x2", "the", "B9", "(IPNB)", "a,", "b.", "c:", "d)", "`a::b`", "`x*y*`"],
        *["Lømo", "&", "50%", "x = 2", "\u221218", "#1", "a+b"],
    ]
)
term_span = st.builds(
    lambda mark, words: f"{mark}{' '.join(words)}{mark}",
    st.sampled_from(["*", "_", "**", "__"]),
    st.lists(term_word, min_size=1, max_size=3),
)
term_sentence = st.lists(
    st.tuples(
        st.one_of(term_word, term_word, term_span),
        st.sampled_from(["", ",", ".", ";", ":", "?", " (", ")", "'", '"']),
    ),
    min_size=1,
    max_size=8,
).map(lambda pieces: " ".join(token + after for token, after in pieces))


@SETTINGS
@given(term_sentence)
def test_emphasis_fast_path_renders_what_markdown_renders_for_sentences(text):
    # Sentences with emphasised spans: two in five of these take the fast path.
    assert markup.render(text) == markup._render_markdown(text)


@st.composite
def simple_blocks(draw) -> str:
    """Paragraphs and bullet lists of such sentences, with the odd line out of place."""
    blocks = []
    for _ in range(draw(st.integers(1, 4))):
        lines = draw(st.lists(term_sentence, min_size=1, max_size=3))
        if draw(st.booleans()):  # a list: items, some going on in indented lines
            lines = [
                ("  " if i and draw(st.booleans()) else "- ") + line for i, line in enumerate(lines)
            ]
        blocks.append("\n".join(lines))
    text = "".join(block + draw(st.sampled_from(["\n\n", "\n\n\n", "\n"])) for block in blocks)
    if draw(st.integers(0, 3)) == 0:
        at = draw(st.integers(0, len(text)))
        extra = draw(st.sampled_from(["\n", " ", "- ", "  ", "1. ", "#", "*"]))
        text = text[:at] + extra + text[at:]
    return text


@SETTINGS
@given(simple_blocks())
def test_block_fast_path_renders_what_markdown_renders(text):
    assert markup.render(text) == markup._render_markdown(text)


def test_emphasis_fast_path_is_taken_for_key_terms():
    # Without this, the properties above would hold even if the fast path never matched.
    for text in (
        "The *amygdala* detects threat.",
        "**Oxytocin** and _vasopressin_, both",
        "Which is the *bonding hormone*?",
    ):
        assert markup._EMPHASISED_RE.fullmatch(text)
        assert markup.render(text) == markup._render_markdown(text)
    description = "A deck on\n*emotion*.\n\n- **Affect (AN)**: fMRI.\n- Two\n  lines\n\nEnd."
    assert markup._simple_blocks_html(description) is not None
    assert markup.render(description) == markup._render_markdown(description)


@pytest.mark.parametrize(
    "text",
    [
        "Midsagittal slice (x = 2 mm)",
        "Axial slice (z = \u221218 mm), about 50% likelier",
        "What did Bliss and Lømo (1973) discover?",
        "Fonov & Evans, *NeuroImage*, 47",
        "`evidence::established` or `evidence::contested`; the *Extra* says why",
        'Tagged `a & b`: "quoted"',
    ],
)
def test_fast_paths_are_taken_for_the_shipped_decks_text(text):
    """Signs, letters of other scripts, `&` and code spans stay off the Markdown parser,
    whose import alone is a sixth of the shipped deck's build."""
    assert markup.sentence_html(text) is not None
    assert markup.render(text) == markup._render_markdown(text)


@pytest.mark.parametrize(
    "text", ["Hear `[sound:a.mp3]` now", "`[anki:tts]x[/anki:tts]`", "See `\\(x^2\\)` here"]
)
def test_code_spans_anki_would_read_take_the_full_path(text):
    """Anki reads [sound:…] and MathJax even inside <code>; the full path makes them text."""
    assert markup.sentence_html(text) is None
    assert markup.render(text) == markup._render_markdown(text)
    assert "[sound:" not in markup.render(text).html
    assert "[anki:" not in markup.render(text).html


def test_the_shipped_deck_builds_without_the_markdown_parser():
    code = (
        "import sys; from pathlib import Path; from neurodeck import pipeline; "
        "pipeline.compile_deck(Path('cards'), clock=1); "
        "assert 'markdown_it' not in sys.modules, 'a field left the fast paths'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


@SETTINGS
@given(st.one_of(st.text(st.characters(max_codepoint=127)), st.text()))
def test_plain_text_finds_the_same_words_on_its_ascii_path(text):
    assert markup.plain_text(text) == " ".join(markup.WORD_RE.findall(text.lower()))


@SETTINGS
@given(st.text(st.sampled_from("aAb .İé\u0130ß_")), st.text(st.sampled_from("aAb .İé\u0130ß_")))
def test_an_answer_repeats_its_prompt_when_its_words_are_among_the_prompts(prompt, answer):
    """The first-word shortcut of answer_repeats_prompt never changes its verdict."""
    words = markup.plain_text(answer)
    expected = bool(words) and words in markup.plain_text(prompt)
    assert answer_repeats_prompt(prompt, answer) == expected
    assert answer_repeats_prompt(prompt + " " + answer, answer) == bool(words)


@SETTINGS
@given(st.text(st.sampled_from("ab_1 *.é\n")) | st.text())
def test_stars_between_letters_are_found_as_a_look_behind_finds_them(text):
    """The star-first pattern (fast to search) finds the same stars as the plain one."""
    plain = re.compile(r"(?<=[^\W_])\*+(?=[^\W_])")
    found = [m.span() for m in markup._INTRAWORD_STAR_RE.finditer(text)]
    assert found == [m.span() for m in plain.finditer(text)]


@SETTINGS
@given(st.text(alphabet="a&<>\"'é", max_size=10))
def test_image_source_escaping_matches_markdown_it(text):
    from markdown_it.common.utils import escapeHtml

    assert markup._escape_like_markdown_it(text) == escapeHtml(text)


@SETTINGS
@given(markup_text)
def test_rendered_fields_never_carry_live_markup(text):
    rendered = markup.render(text)
    assert_no_live_markup(rendered.html)
    # genanki, the oracle of rows.py, finds no unescaped tag in a rendered field.
    assert genanki.Note._find_invalid_html_tags_in_field(rendered.html) == []
    for source in rendered.images:
        assert not source.lower().startswith("javascript:")


# --- The one-pass reader ----------------------------------------------------------------------


def fast_read_summary(fact_set: FactSet) -> list[tuple[object, ...]]:
    """Everything a FactSet holds, locations of tags and the order of dicts included."""
    return [
        (
            note,
            list(note.fields.items()),
            list(note.field_locs.items()),
            [(tag.name, tag.loc) for tag in note.tags],
        )
        for note in fact_set.notes
    ]


def assert_one_pass_reader_is_exact(deck_dir: Path) -> None:
    """fastread answers only for a file the general path loads without a problem, and alike."""
    try:
        text = yamlsrc.decode("facts.yaml", (deck_dir / "facts.yaml").read_bytes())
    except NeurodeckError:
        return
    assert_line_reader_is_exact(text)


def assert_equals_general_path(quick: FactSet | None, text: str) -> None:
    """A fast reader's answer, if any, is the general path's, which reports no problem."""
    if quick is None:
        return
    problems: list[Problem] = []
    general = load._read_nodes("facts.yaml", text, load._read_fact_set, problems)
    assert problems == []
    assert general is not None
    assert quick == general
    assert fast_read_summary(quick) == fast_read_summary(general)


# Fact sets with nothing wrong in their shape, so that the one-pass reader answers for many
# of them: any text (tricky or with characters that need escapes), keys in any order.
any_text = st.text(max_size=30) | st.sampled_from(TRICKY)
any_tags = st.lists(any_text, max_size=3) | any_text
note_extras = {"extra": any_text, "tags": any_tags, "source": any_text, "section": any_text}
valid_note = st.fixed_dictionaries(
    {"id": any_text, "front": any_text, "back": any_text},
    optional={"type": st.sampled_from(["basic", "reversed"]), **note_extras},
) | st.fixed_dictionaries(
    {"id": any_text, "type": st.just("cloze"), "text": any_text}, optional=note_extras
)
valid_dumped = st.builds(
    lambda data, flow, unicode, sort_keys: yaml.safe_dump(
        data, default_flow_style=flow, allow_unicode=unicode, sort_keys=sort_keys
    ),
    st.fixed_dictionaries(
        {"notes": st.lists(valid_note, max_size=4)},
        optional={"deck": any_text, "tags": any_tags, "source": any_text},
    ),
    st.sampled_from([False, None, True]),
    st.booleans(),
    st.booleans(),
)


@SETTINGS
@given(valid_dumped)
def test_one_pass_reader_matches_the_general_path_on_valid_fact_sets(text):
    with_fact_set(text.encode("utf-8"), assert_one_pass_reader_is_exact)


@SETTINGS
@given(dumped)
def test_one_pass_reader_matches_the_general_path_on_dumped_data(text):
    with_fact_set(text.encode("utf-8"), assert_one_pass_reader_is_exact)


@SETTINGS
@given(mutated_fact_set())
def test_one_pass_reader_matches_the_general_path_on_mutated_fact_sets(text):
    with_fact_set(text.encode("utf-8", "surrogatepass"), assert_one_pass_reader_is_exact)


@pytest.mark.parametrize(
    "text",
    [
        PEPTIDES_YAML,
        "notes:\n  - id: a\n    front: F\n    back: B\n    tags: t\n"
        "deck: A::B\ntags: [x, y]\nsource: s\n",
        # `deck` before, `source` and `tags` after the notes; one note cites its own source
        "deck: D\nnotes:\n  - id: a\n    front: F\n    back: B\n    source: own\n"
        "  - id: b\n    front: F\n    back: B\nsource: s\ntags: [x]\n",
        "# a comment\ndeck: D\n\nnotes:\n- id: a\n  front: F\n  back: B\n",
    ],
)
def test_one_pass_reader_answers_for_the_common_shape(text):
    """The fast path must be taken for ordinary files, `notes:` first or last, else it is dead."""
    assert fastread.read_fact_set("facts.yaml", text) is not None
    with_fact_set(text.encode("utf-8"), assert_one_pass_reader_is_exact)


# --- Files written a line per key -------------------------------------------------------------
#
# As programs write them: values quoted, plain or listed on the key's line, items at any
# indent, comments and blank lines between, and values at the edges of what YAML reads as
# text (`a: b`, `a #b`, `~`, anchors, block scalars, flow maps...).

line_values = st.one_of(
    st.text(
        st.characters(blacklist_characters='"\\', blacklist_categories=("Cs",)), max_size=10
    ).map(lambda t: f'"{t}"'),
    st.text(st.characters(blacklist_characters="'", blacklist_categories=("Cs",)), max_size=10).map(
        lambda t: f"'{t}'"
    ),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 _.,;?()/:#-]{0,10}", fullmatch=True),
    st.sampled_from(
        [
            "true",
            "null",
            "~",
            "1.5",
            "0x1F",
            "yes",
            "",
            "-",
            "a: b",
            "a #b",
            "[]",
            "[a, b]",
            '["a", b]',
            '[ "a" ,"b" ]',
            "[a,]",
            "[a b]",
            "{a: b}",
            "&x a",
            "*x",
            "!!str a",
            "|",
            ">",
            "'it''s'",
            '"a\\"b"',
            "a  ",
            "é ü",
            "a\tb",
        ]
    ),
)


@st.composite
def line_fact_set(draw) -> str:
    indent = " " * draw(st.sampled_from([0, 2, 4]))
    lines = []
    top_keys = draw(st.lists(st.sampled_from(["deck", "tags", "source", "tag"]), max_size=3))
    for key in top_keys:
        lines.append(f"{key}: {draw(line_values)}")
    lines.append("notes:")
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["basic", "reversed", "cloze"]))
        keys = ["id", *(("text",) if kind == "cloze" else ("front", "back")), "type"]
        keys += draw(
            st.lists(
                st.sampled_from(["extra", "tags", "source", "section", "retired", "front", "bakc"]),
                max_size=2,
            )
        )
        keys = draw(st.permutations(keys))
        for i, key in enumerate(keys):
            value = kind if key == "type" else draw(line_values)
            lead = f"{indent}- " if i == 0 else f"{indent}  "
            lines.append(f"{lead}{key}: {value}")
            if draw(st.integers(0, 9)) == 0:
                lines.append(draw(st.sampled_from(["", "  # a comment", "#", "   ", " x"])))
    text = "\n".join(lines) + draw(st.sampled_from(["\n", "", "\n\n"]))
    if draw(st.booleans()):  # one random character somewhere
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(list(" -:#\"'[],\n\tx&*!|"))) + text[at:]
    return text


@SETTINGS
@given(line_fact_set())
def test_one_pass_reader_matches_the_general_path_on_files_written_a_line_per_key(text):
    with_fact_set(text.encode("utf-8"), assert_one_pass_reader_is_exact)


@pytest.mark.parametrize("indent", ["", "  ", "    "])
def test_one_pass_reader_answers_for_files_written_a_line_per_key(indent):
    """Without this, the property above would hold even if the one-pass reader never answered."""
    text = (
        "# generated\n"
        'deck: "Topic 3::Part 2"\ntags: ["synthetic", plain-tag]\nsource: \'s1\'\nnotes:\n'
        f'{indent}- id: "n000001"\n{indent}  type: cloze\n'
        f'{indent}  text: "The {{{{c1::amygdala}}}} is *small*: é, ü, 脳."\n'
        f'{indent}  tags: ["topic::t1::s2", "level::basic"]\n\n'
        f"{indent}- id: n2\n{indent}  front: Where is it?\n{indent}  back: 'Here, there.'\n"
        f"{indent}  tags: one\n{indent}  section: Section 3\n{indent}  retired: true\n"
    )
    assert fastread.read_fact_set("facts.yaml", text) is not None
    with_fact_set(text.encode("utf-8"), assert_one_pass_reader_is_exact)


# --- The line reader ---------------------------------------------------------------------------
#
# fastread._Lines reads block-style files a line at a time. Whenever it answers, the general
# path must load the same file without a problem and give the very same notes, locations
# included; anything else it must leave to the general path.


def assert_line_reader_is_exact(text: str) -> FactSet | None:
    quick = fastread.read_fact_set("facts.yaml", text)
    assert_equals_general_path(quick, text)
    return quick


# Text that is plain, quoted or neither, with the characters YAML gives a meaning to.
block_text = st.text(st.sampled_from("aZ 9é脳:#'\"-,[]{}?!&*|>%@`~.\\"), min_size=0, max_size=12)
safe_words = st.from_regex(r"[A-Za-z][A-Za-z0-9 .?*()/:#]{0,12}[A-Za-z0-9.?)]", fullmatch=True)


@st.composite
def block_value(draw, *, safe: bool, indent: int) -> str:
    """A value for a key at column `indent`, written as people write it; `safe` ones are in
    the line reader's subset by construction."""
    text = draw(safe_words).replace(": ", ":").replace(" #", "#") if safe else draw(block_text)
    comment = draw(st.sampled_from(["", "", "", "  # note", " #x"]))
    style = draw(st.sampled_from(["plain", "single", "double", "block"]))
    if style == "single":
        return "'" + text.replace("'", "''") + "'" + comment
    if style == "double" and (not safe or ('"' not in text and "\\" not in text)):
        return '"' + text + '"' + comment
    if style == "block":
        header = draw(st.sampled_from([">-", ">", "|", "|-"] + ([] if safe else ["|+", ">2"])))
        pad = " " * (indent + draw(st.integers(1 if safe else 0, 3)))
        some = st.sampled_from(["", "x y", "#not a comment", "a: b"]) | safe_words
        lines = draw(st.lists(some, min_size=1, max_size=4))
        if safe:
            lines = [line for line in lines if line] or ["text"]
            if draw(st.booleans()) and len(lines) > 1:
                lines.insert(1, "")  # an empty line inside
        body = "\n".join(pad + line if line else "" for line in lines)
        if not safe and draw(st.booleans()):
            body += "\n" + pad + "  more indented"
        return header + comment + "\n" + body
    return text + (comment if not safe or text[-1:] != ":" else "")


@st.composite
def block_tags(draw, *, safe: bool, indent: int) -> str:
    word = safe_words.map(lambda w: w.replace(":", "").replace("#", "")) if safe else block_text
    items = draw(st.lists(word, max_size=3))
    quote = draw(st.sampled_from(["", "'", '"'])) if safe else ""
    style = draw(st.sampled_from(["flow", "block", "one"]))
    if style == "one" and items:
        return draw(block_value(safe=safe, indent=indent))
    if style == "block" and items:
        pad = " " * (indent + draw(st.integers(0, 2)))
        return "".join(f"\n{pad}- {quote}{item}{quote}" for item in items)
    space = draw(st.sampled_from(["", " "]))
    return "[" + space + ", ".join(f"{quote}{item}{quote}" for item in items) + space + "]"


@st.composite
def block_fact_set(draw) -> tuple[str, bool]:
    """A block-style fact set, and whether every part of it is in the line reader's subset."""
    safe = draw(st.booleans())
    item_indent = draw(st.sampled_from([0, 2, 4]))
    dash = draw(st.sampled_from(["- ", "- ", "-  "]))
    key_indent = item_indent + len(dash)
    lines = []
    top = draw(st.permutations(["deck", "tags", "source", "notes"]))
    for key in top:
        if key != "notes":
            make = block_tags if key == "tags" else block_value
            lines.append(f"{key}: {draw(make(safe=safe, indent=0))}")
            continue
        lines.append("notes:" + draw(st.sampled_from(["", "", "  # the notes"])))
        for number in range(draw(st.integers(1, 3))):
            kind = draw(st.sampled_from(["basic", "reversed", "cloze"]))
            keys = ["id", *(("text",) if kind == "cloze" else ("front", "back")), "type"]
            optional = st.sampled_from(["extra", "tags", "source", "section"])
            keys += draw(st.lists(optional, max_size=2, unique=True))
            keys = ["id", *draw(st.permutations(keys[1:]))]
            for i, key in enumerate(keys):
                if key == "id":
                    value = f"n{number}"
                elif key == "type":
                    value = kind
                elif key == "tags":
                    value = draw(block_tags(safe=safe, indent=key_indent))
                else:
                    value = draw(block_value(safe=safe, indent=key_indent))
                lead = " " * item_indent + dash if i == 0 else " " * key_indent
                lines.append(f"{lead}{key}: {value}".replace(": \n", ":\n"))
                if draw(st.integers(0, 5)) == 0:
                    # A deeper comment after a block scalar would be a line of its text.
                    deeper = [] if safe else ["      # deeper"]
                    between = st.sampled_from(["", "# a comment", "   ", *deeper])
                    lines.append(draw(between))
    text = "\n".join(lines) + "\n"
    if not safe and draw(st.booleans()):  # one random character somewhere
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(list(" -:#\"'[],\n\tx&*!|>\r"))) + text[at:]
    return text, safe


@SETTINGS
@given(block_fact_set())
def test_line_reader_matches_the_general_path(case):
    text, safe = case
    quick = assert_line_reader_is_exact(text)
    if safe:  # else the property could hold with a line reader that never answers
        assert quick is not None, text


@pytest.mark.parametrize(
    "text",
    [
        # As the benchmark writes them: plain, quoted, folded, a one-line list of tags.
        "deck: Topic 3::Part 5\ntags: [synthetic]\nsource: s1\nnotes:\n"
        "  - id: n1\n    type: reversed\n    front: Is it *fast*, or (not)?\n"
        "    back: 'It''s \"fast\"'\n    tags: [topic::t8::s4, level::advanced]\n"
        '  - id: n2\n    front: "Where: here #1"\n    back: b\n    extra: >-\n'
        "      Folded over\n      two lines.\n    section: 'Section 1'\n",
        # A literal block, an empty line in a folded one, comments, tags listed below.
        "# a fact set\nnotes:\n- id: a\n  front: F # a comment\n  back: |\n    one\n    two\n"
        "\n  # between keys\n  extra: >\n    a\n\n    b\n  tags:\n  - x\n  - 'y z'\n"
        "tags:\n  - file\ndeck: Late\n",
        "notes:\n  -  id: a\n     type: cloze\n     text: '{{c1::x}} y'\n     tags: []\n",
    ],
)
def test_line_reader_answers_for_block_style_files(text):
    assert assert_line_reader_is_exact(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "notes:\n  - id: a\n    front: two\n      lines\n    back: B\n",  # plain over two lines
        "notes:\n  - id: a\n    front: 'two\n      lines'\n    back: B\n",  # quoted, two lines
        'notes:\n  - id: a\n    front: "\\u00e9"\n    back: B\n',  # an escape
        "notes:\n  - id: a\n    front: |+\n      F\n\n    back: B\n",  # kept final breaks
        "notes:\n  - id: a\n    front: |2\n        F\n    back: B\n",  # an indentation indicator
        "notes:\n  - id: a\n    front: >\n      F\n        more\n    back: B\n",  # more indented
        "notes:\n  - id: a\n    front: |\n\n      F\n    back: B\n",  # a leading empty line
        "notes:\n  - id: a\n    back: B\n    front: |\n      F",  # no final line break
        "notes:\n  - {id: a, front: F, back: B}\n",  # a note in flow style
        "notes:\n  - id: a\n    front: 'F'#x\n    back: B\n",  # a comment without a space
        "notes:\n  - id: a\n    front: F\r\n    back: B\n",  # a carriage return
        "notes:\n  - id: a\n    front: &f F\n    back: B\n",  # an anchor
        "notes:\n  - id: a\n    front: -F\n    back: B\n",  # a leading indicator
        "notes:\n  - id: a\n    front: F\n    back: B\n    tags: [a, ]\n",  # a trailing comma
        "notes:\n  - id: a\n    front: F\n    back: B\n    tags: [a: b]\n",  # a mapping
        "notes:\n  - id: a\n    front:\n    back: B\n",  # a null
        "  notes:\n  - id: a\n    front: F\n    back: B\n",  # an indented document
        "---\nnotes:\n  - id: a\n    front: F\n    back: B\n",  # a document marker
    ],
)
def test_line_reader_leaves_the_rest_to_the_general_path(text):
    assert fastread.read_fact_set("facts.yaml", text) is None

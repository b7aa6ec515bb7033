"""Every hint in the bad-input corpus that suggests an edit works: applying it fixes the file.

An over-indented note once got "put quotes around the value", which fixes nothing. For each
case in tests/bad/, FIXES holds the edit its hints describe, made the way an author would make
it; the test applies it and checks the deck again. Most files are then clean; a few hints fix
their own problem and reveal another, which has its own hint (`clean=False`), and then the
first problem must be gone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import png

from neurodeck.errors import NeurodeckError
from neurodeck.pipeline import check

BAD = Path(__file__).parent / "bad"
CASES = sorted(p.stem for p in BAD.glob("*.yaml"))
QUESTION = "Which neuropeptide is released during touch?"
PNG = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Fix:
    """Replacements (regular expressions) to apply in order, and files the hint asks for."""

    edits: tuple[tuple[str, str], ...] = ()
    files: dict[str, bytes] = field(default_factory=dict)
    delete: bool = False  # the hint says the file may be deleted
    clean: bool = True  # False: the edit reveals another problem with a hint of its own


def sub(old: str, new: str) -> tuple[str, str]:
    """A literal replacement."""
    return re.escape(old), new.replace("\\", "\\\\")


NOTE = f"  - id: oxytocin-touch\n    front: {QUESTION}\n    back: Oxytocin\n"
IMAGE = Fix(
    (sub("](", "](images/figure.png) ("),),  # point it at a file in the deck
    files={"images/figure.png": PNG},
)
FIGURE = {"media/figure.png": png(400, 300)}
A_FIGURE = sub("image: deck.yaml", "image: media/figure.png")  # "export the figure as PNG"
FIXED_LABELS = (
    sub('"Left: front"', '"Left front"'),
    sub("at: [1.5, 0.1], size: 0", "at: [0.5, 0.1], size: 0.04"),
)

FIXES: dict[str, Fix] = {
    "alias": Fix((sub("back: *answer", "back: Oxytocin"),)),
    "bad-note-id": Fix((sub("id: Oxytocin Touch", "id: oxytocin-touch"),)),
    "billion-laughs": Fix(((r"\*[abc]", '"lol"'),), clean=False),
    "cloze-blank-deletion": Fix(
        (sub("{{c1::&nbsp;}}", "{{c1::Oxytocin}}"), sub("{{c2::***}}", "{{c2::touch}}"))
    ),
    "cloze-c0": Fix((sub("{{c0::", "{{c1::"),)),
    "cloze-in-link": Fix(
        (
            sub(
                "[the paper](https://example.org/{{c1::oxytocin}})",
                "[the {{c1::oxytocin}} paper](https://example.org/)",
            ),
            sub(
                """[the paper](https://example.org "{{c1::oxytocin}}")""",
                "[the {{c1::oxytocin}} paper](https://example.org)",
            ),
            sub(
                "![{{c1::amygdala}}](https://example.org/brain.png) sits",
                "![amygdala](images/figure.png) The {{c1::amygdala}} sits",
            ),
            sub("[the paper][p]", "[the {{c1::x}} paper][p]"),
            sub("[p]: https://example.org/{{c1::x}}", "[p]: https://example.org/x"),
        ),
        files={"images/figure.png": PNG},
    ),
    "cloze-empty": Fix((sub("{{c1::}}", "{{c1::Oxytocin}}"),)),
    "cloze-in-basic-note": Fix(
        (sub('front: "{{c1::', 'type: cloze\n    text: "{{c1::'), sub("    back: Oxytocin\n", ""))
    ),
    "cloze-no-deletion": Fix(((r"text: Oxytocin(.*)", r'text: "{{c1::Oxytocin}}\1"'),)),
    "cloze-number-too-high": Fix(((r"\{\{c9+::", "{{c1::"),)),
    "cloze-single-colon": Fix((sub("{{c1:Oxytocin", "{{c1::Oxytocin"),)),
    "cloze-template-syntax": Fix((sub("{{Front}}", "{{c2::Front}}"),)),
    "cloze-unclosed": Fix((sub("{{c1::Oxytocin", "{{c1::Oxytocin}}"),)),
    "comments-only": Fix(delete=True),
    "control-character-escape": Fix((sub("\\0", ""),)),
    "deep-but-valid-yaml": Fix(
        (
            sub(
                "back: {answer: {name: [Oxytocin, [a, [b]]]}}",
                'back: "{answer: {name: [Oxytocin, [a, [b]]]}}"',
            ),
        )
    ),
    "duplicate-id-in-one-file": Fix(
        ((r"(?s)(oxytocin-touch.*)oxytocin-touch", r"\1vasopressin-bonding"),)
    ),
    "duplicate-key": Fix((sub("    back: Vasopressin\n", ""),)),
    "empty": Fix(delete=True),
    "field-is-a-list": Fix((sub("back:\n", "back: |\n"),)),
    "field-is-a-mapping": Fix((sub(f"{{question: {QUESTION}}}", f'"{{question: {QUESTION}}}"'),)),
    "file-source-typo-flow-style": Fix((sub("source: intimcy", "source: intimacy"),)),
    "file-source-typo": Fix((sub("source: intimcy", "source: intimacy"),)),
    "file-tags-with-space": Fix((sub("tags: [week 1]", "tags: [week-1]"),)),
    "front-on-cloze-hides-no-cloze-problem": Fix(
        (
            sub("    front: Which structure consolidates memories?\n", ""),
            sub("{{c1:hippocampus}}", "{{c1::hippocampus}}"),
        )
    ),
    "front-renders-blank": Fix(
        (
            (r'front: "(&nbsp;|\*\*\*|\[\]\(http://a\)|\\u200B|#)"', f"front: {QUESTION}"),
            sub('back: "-"', "back: Oxytocin"),
        )
    ),
    "front-on-cloze-note": Fix((sub(f"    front: {QUESTION}\n", ""),)),
    "image-absolute-path": IMAGE,
    "image-data-url": IMAGE,
    "image-http-url": IMAGE,
    "image-missing": Fix(files={"images/missing.png": PNG}),
    "image-outside-deck": IMAGE,
    "key-is-a-list": Fix(
        (sub("? [front, back]\n    : Oxytocin", f"front: {QUESTION}\n    back: Oxytocin"),)
    ),
    "merge-key": Fix(
        (sub("defaults: &defaults\n  back: Oxytocin\n", ""), sub("<<: *defaults", "back: Oxytocin"))
    ),
    "missing-back": Fix(((r"\Z", "    back: Oxytocin\n"),)),
    "missing-front": Fix((sub("    back:", f"    front: {QUESTION}\n    back:"),)),
    "missing-id": Fix((sub("  - front:", "  - id: oxytocin-touch\n    front:"),)),
    "nesting-too-deep": Fix(((r"front: \[+\]+", f"front: {QUESTION}"),)),
    "no-notes-key": Fix(((r"\Z", "notes:\n" + NOTE),)),
    "occlusion-duplicate-id": Fix(
        (
            sub(
                "{id: acc, answer: Anterior cingulate cortex, rect: [0.5, 0.5",
                "{id: acc-lower, answer: Anterior cingulate cortex, rect: [0.5, 0.5",
            ),
            sub("answer: Hippocampus", "answer: Amygdala"),
            sub("{id: amygdala, rect", "{id: amygdala-core, rect"),
            sub("{id: VTA,", "{id: vta,"),
        ),
        files={"missing/midsagittal.png": png(400, 300)},
    ),
    "occlusion-label-without-text": Fix(
        (A_FIGURE, sub('text: " "', "text: Anterior")), files=FIGURE
    ),
    "occlusion-items-not-mappings": Fix(  # "expected keys: ..."
        (
            sub("- acc", "- {id: acc, rect: [0.5, 0.3, 0.1, 0.1]}"),
            sub("- Anterior", "- {text: Anterior, at: [0.05, 0.05]}"),
        ),
        files=FIGURE,
    ),
    "occlusion-labels": Fix(
        (
            A_FIGURE,
            sub('answer: "  "', "answer: Ventral tegmental area"),
            *FIXED_LABELS,
            sub('"<b>x</b>"', "x"),
        ),
        files=FIGURE,
    ),
    "occlusion-not-an-image": Fix((A_FIGURE,), files=FIGURE),
    "occlusion-shape-outside": Fix(
        (
            A_FIGURE,
            sub("[0.9, 0.3, 0.2, 0.1]", "[0.7, 0.3, 0.2, 0.1]"),
            sub("[0.5, 0.6, 0, 0.02]", "[0.5, 0.6, 0.02, 0.02]"),
            sub("[[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]", "[[0.1, 0.1], [0.2, 0.2], [0.3, 0.1]]"),
            sub("[1.2, 0.2]", "[0.9, 0.2]"),
        ),
        files=FIGURE,
    ),
    "occlusion-shape-of-values": Fix(
        (
            sub("header: [a, b]", 'header: "[a, b]"'),  # "quote the whole value"
            sub(
                "image: media/figure.png\n  - id: values-not-text",
                "image: media/figure.png\n    occlusions:\n      - {id: acc, answer: Anterior "
                "cingulate cortex, rect: [0.52, 0.30, 0.10, 0.08]}\n  - id: values-not-text",
            ),
            sub("{id: [acc],", '{id: "[acc]",'),  # which is then no slug: a hint of its own
            sub("answer: {name: VTA}", 'answer: "{name: VTA}"'),
            sub("size: big", "size: 0.04"),
        ),
        files=FIGURE,
        clean=False,
    ),
    "occlusion-too-many-cards": Fix(  # "group shapes"
        (
            sub("{id: r99, rect", "{id: r99, group: last, rect"),
            sub("{id: r100, rect", "{id: r100, group: last, rect"),
        ),
        files={"missing.png": png(1000, 1000)},  # "check the path"
    ),
    "occlusion-shape-typos": Fix(
        (
            A_FIGURE,
            sub("mode: hide-some", "mode: hide-all"),
            sub("    front: What is this?\n", ""),
            sub("rectangle:", "rect:"),
            sub("[0.5, 0.3, 0.1]}", "[0.5, 0.3, 0.1, 0.1]}"),
            sub("0.1, wide]", "0.1, 0.1]"),
            sub(", ellipse: [0.5, 0.3, 0.1, 0.1]}", "}"),
            sub("[[0.1, 0.1], [0.2, 0.2]]", "[[0.1, 0.1], [0.2, 0.2], [0.3, 0.1]]"),
            sub("{answer: Amygdala,", "{id: amygdala, answer: Amygdala,"),
            *FIXED_LABELS,
            sub(
                "    occlusions: []\n",
                "    image: media/figure.png\n"
                "    occlusions:\n      - {id: acc, rect: [0.5, 0.3, 0.1, 0.1]}\n",
            ),
            sub("    back: Here\n    image: media/figure.png", "    back: Here"),
        ),
        files=FIGURE,
    ),
    "note-is-text": Fix((sub("  - oxytocin-touch\n", NOTE),)),
    "notes-empty": Fix(((r"\Z", NOTE),)),
    "notes-not-a-list": Fix((sub("notes: oxytocin-touch\n", "notes:\n" + NOTE),)),
    "python-tag": Fix((sub("!!python/object/apply:os.system ", ""),), clean=False),
    "retired-not-boolean": Fix((sub("retired: yes", "retired: true"),)),
    "root-is-a-list": Fix(((r"\A", "notes:\n"),)),
    "root-is-text": Fix(((r"\A(?s:.*)", "notes:\n" + NOTE),)),
    "subdeck-spaces": Fix(
        (sub('deck: "Brain Regions :: Amygdala "', "deck: Brain Regions::Amygdala"),)
    ),
    "subdeck-empty-part": Fix((sub('deck: "Topic::"', "deck: Topic::Subtopic"),)),
    "syntax-apostrophe-in-single-quotes": Fix((sub("doesn't", "doesn''t"),)),
    "syntax-at-sign-at-start": Fix((sub("back: @oxytocin", 'back: "@oxytocin"'),)),
    "syntax-bad-indentation": Fix((sub("\n   back:", "\n    back:"),)),
    "syntax-backslash-in-double-quotes": Fix(((r'front: "(.*)"', r"front: '\1'"),)),
    "syntax-bracket-at-start": Fix(((r"front: (\[Review\].*)", r'front: "\1"'),)),
    "syntax-colons-in-three-notes": Fix(((r"(front|back): (.*: .*)", r'\1: "\2"'),)),
    "syntax-continuation-line": Fix((sub("\n    during touch?", "\n      during touch?"),)),
    "syntax-missing-notes-line": Fix((sub("\n- id:", "\nnotes:\n- id:"),)),
    "syntax-missing-notes-line-indented": Fix((sub("\n  - id:", "\nnotes:\n  - id:"),)),
    "syntax-over-indented-key": Fix((sub("\n      back:", "\n    back:"),)),
    "syntax-over-indented-note": Fix(
        (
            (r"(?m)^    (- id: vasopressin-bonding)$", r"  \1"),
            (r"(?m)^      (front|back)(: .*Vaso|: Which.*bonding)", r"    \1\2"),
        )
    ),
    "syntax-star-at-start": Fix(((r"front: (\*Oxytocin\*.*)", r'front: "\1"'),)),
    "syntax-tab-indentation": Fix((sub("\tfront", "    front"),)),
    "syntax-two-documents": Fix((sub("---\nnotes: []\n", ""),)),
    "syntax-unclosed-list": Fix((sub(", touch\n", ", touch]\n"),)),
    "syntax-unclosed-quote": Fix((sub("touch?\n", 'touch?"\n'),)),
    "syntax-unquoted-colon": Fix(((r"front: (Note: .*)", r'front: "\1"'),)),
    "tag-empty-part": Fix((sub('"topic::"', "topic::sub-topic"), sub("'say\"hi'", "say-hi"))),
    "tag-with-space": Fix((sub("social bonding", "social-bonding"),)),
    "text-on-basic-note": Fix(((r'    text: ".*"\n', ""),)),
    "type-typo-hides-no-id-problem": Fix(
        (sub("id: Memory Note", "id: memory-note"), sub("type: reverse", "type: reversed"))
    ),
    "unknown-key": Fix((sub("bakc:", "back:"),)),
    "unknown-source": Fix((sub("source: intimcy", "source: intimacy"),)),
    "unknown-tag": Fix((sub("!question ", ""), sub("!!int ", ""))),
    "unknown-type": Fix((sub("type: clozed", "type: cloze"),)),
}


def problems_of(deck_dir: Path) -> list[str]:
    """Every error line `check` reports for the deck (warnings are not the hint's business)."""
    try:
        check(deck_dir)
    except NeurodeckError as err:
        return [f"{p.location.line}:{p.location.column}: {p.message}" for p in err.problems]
    return []


def test_every_corpus_case_has_its_fix():
    assert sorted(FIXES) == CASES


@pytest.mark.parametrize("case", CASES)
def test_applying_the_hint_fixes_the_file(case, make_deck, monkeypatch):
    fix = FIXES[case]
    text = (BAD / f"{case}.yaml").read_text(encoding="utf-8")
    deck_dir = make_deck({"bad.yaml": text})
    monkeypatch.chdir(deck_dir)
    before = problems_of(deck_dir)
    assert before, f"{case} is no longer bad"
    fixed = text
    for pattern, replacement in fix.edits:
        fixed, count = re.subn(pattern, replacement, fixed)
        assert count, (case, pattern)
    if fix.delete:
        (deck_dir / "bad.yaml").unlink()
        (deck_dir / "other.yaml").write_text("notes:\n" + NOTE, encoding="utf-8")
    else:
        (deck_dir / "bad.yaml").write_text(fixed, encoding="utf-8")
    for name, data in fix.files.items():
        (deck_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (deck_dir / name).write_bytes(data)
    after = problems_of(deck_dir)
    if fix.clean:
        assert after == [], (case, fixed)
    else:
        assert after and not set(before) & set(after), (case, fixed, after)

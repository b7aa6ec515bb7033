"""The editor schemas (`neurodeck schema`): valid, complete, never stricter than `check`.

An editor that flags a file the loader accepts would teach educators to ignore it, so the
rule tested here is one-way: whatever the schema rejects, `check` rejects too. The schema
may let through what only `check` can see (unknown sources, duplicate ids, cloze syntax).
"""

from __future__ import annotations

import json
import re
import tempfile
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import DECK_YAML, PEPTIDES_YAML
from hypothesis import given
from hypothesis import strategies as st
from test_hypothesis import SETTINGS, dumped, field_value, mutated_fact_set

from neurodeck import load, model, pipeline
from neurodeck.authoring import schema, schema_text
from neurodeck.cli import cli
from neurodeck.errors import NeurodeckError

ROOT = Path(__file__).resolve().parent.parent
BAD = Path(__file__).parent / "bad"
VALIDATORS = {
    which: jsonschema.Draft202012Validator(schema(which)) for which in ("deck", "factset")
}


# libyaml where PyYAML has it, like `check`: it follows the spec where pure PyYAML does not
# (a tab after `key:`), as editors' parsers do.
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _EditorLoader(_SAFE_LOADER):  # type: ignore[misc, valid-type]
    """YAML as an editor's language server reads it (1.2 core): dates, `=` and `<<` are text."""


_YAML_1_1_ONLY = {f"tag:yaml.org,2002:{name}" for name in ("timestamp", "value", "merge")}
_EditorLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _YAML_1_1_ONLY]
    for first, resolvers in _SAFE_LOADER.yaml_implicit_resolvers.items()
}


def editor_view(text: str) -> tuple[bool, object]:
    """(parsed, data): what a YAML language server validates, or (False, None) if it cannot."""
    try:
        return True, yaml.load(text, Loader=_EditorLoader)  # a SafeLoader: builds no objects
    except (yaml.YAMLError, ValueError, TypeError, RecursionError):  # UnicodeError is a ValueError
        return False, None


def schema_accepts(which: str, text: str) -> bool:
    parsed, data = editor_view(text)
    if not parsed:
        return False
    try:
        return bool(VALIDATORS[which].is_valid(data))
    except (TypeError, RecursionError):  # keys JSON cannot have: an editor refuses them
        return False


def check_accepts(deck_dir: Path) -> bool:
    try:
        pipeline.check(deck_dir)
    except NeurodeckError:
        return False
    return True


def deck_with(files: dict[str, str]) -> tuple[tempfile.TemporaryDirectory[str], Path]:
    tmp = tempfile.TemporaryDirectory()
    deck_dir = Path(tmp.name) / "cards"
    deck_dir.mkdir()
    for name, text in {"deck.yaml": DECK_YAML, **files}.items():
        (deck_dir / name).write_bytes(text.encode("utf-8", "surrogatepass"))
    return tmp, deck_dir


def assert_schema_no_stricter(which: str, text: str) -> None:
    files = {"deck.yaml": text} if which == "deck" else {"facts.yaml": text}
    if which == "deck":
        files["facts.yaml"] = PEPTIDES_YAML
    tmp, deck_dir = deck_with(files)
    with tmp:
        if not schema_accepts(which, text):
            assert not check_accepts(deck_dir), f"schema rejects, check accepts:\n{text}"


# --- The schemas themselves -----------------------------------------------------------------


@pytest.mark.parametrize("which", ["deck", "factset"])
def test_each_schema_is_valid_draft_2020_12(which: str) -> None:
    value = schema(which)
    assert value["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(value)


@pytest.mark.parametrize("which", ["deck", "factset"])
def test_a_draft_07_reader_gives_the_same_verdicts(which: str) -> None:
    """VS Code's YAML extension has long read schemas as draft-07: ours use only keywords that
    mean the same there, so it flags exactly what a 2020-12 validator flags."""
    as_draft_07 = {**schema(which), "$schema": "http://json-schema.org/draft-07/schema#"}
    jsonschema.Draft7Validator.check_schema(as_draft_07)
    draft_07 = jsonschema.Draft7Validator(as_draft_07)
    texts = [p.read_bytes().decode("utf-8", "replace") for p in sorted(BAD.glob("*.yaml"))]
    texts += [DECK_YAML, PEPTIDES_YAML, *GOOD_FACT_SETS.values()]
    compared = 0
    for text in texts:
        parsed, data = editor_view(text)
        if parsed:
            assert draft_07.is_valid(data) == VALIDATORS[which].is_valid(data), text
            compared += 1
    assert compared > 40


def _properties(node: dict[str, object], root: dict[str, object], path: str):
    """(path, property schema) for every key anywhere in the schema, $refs followed."""
    ref = node.get("$ref")
    if isinstance(ref, str):
        target: object = root
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]  # type: ignore[index]
        node = target  # type: ignore[assignment]
    for key, sub in dict(node.get("properties", {})).items():  # type: ignore[call-overload]
        yield f"{path}.{key}", sub
        yield from _properties(sub, root, f"{path}.{key}")
    for nested in ("items", "additionalProperties"):
        sub = node.get(nested)
        if isinstance(sub, dict):
            yield from _properties(sub, root, f"{path}[]")


@pytest.mark.parametrize("which", ["deck", "factset"])
def test_every_key_has_a_description_and_an_example(which: str) -> None:
    root = schema(which)
    found = list(_properties(root, root, which))
    assert len(found) >= 4
    for path, sub in found:
        if "$ref" in sub:
            sub = root["$defs"][sub["$ref"].rsplit("/", 1)[1]]
        assert sub.get("description"), f"{path} has no description"
        assert sub.get("examples"), f"{path} has no examples"


def _same_keys(where: str, in_schema: object, in_loader: tuple[str, ...]) -> None:
    schema_keys, loader_keys = set(in_schema), set(in_loader)  # type: ignore[call-overload]
    assert schema_keys == loader_keys, (
        f"{where}: the loader accepts {sorted(loader_keys - schema_keys)} that the schema lacks, "
        f"and the schema has {sorted(schema_keys - loader_keys)} that the loader refuses. Edit "
        "src/neurodeck/schema/*.schema.json: each key with a description and examples, never "
        "stricter than `check`"
    )


def test_the_schema_names_exactly_the_keys_the_loader_knows() -> None:
    """Fails when load.py accepts a key the schema lacks (or the schema invents one)."""
    deck, factset = schema("deck"), schema("factset")
    defs = deck["$defs"]
    _same_keys("deck.yaml", deck["properties"], load.DECK_KEYS)
    _same_keys("deck.yaml $defs.source", defs["source"]["properties"], load.SOURCE_KEYS)
    _same_keys(
        "deck.yaml $defs.source_link", defs["source_link"]["properties"], load.SOURCE_LINK_KEYS
    )
    _same_keys("fact set", factset["properties"], model.FACT_SET_KEYS)
    note = factset["$defs"]["note"]
    _same_keys(
        "fact set $defs.note", note["properties"], model.NOTE_KEYS + model.OCCLUSION_NOTE_KEYS
    )
    assert note["properties"]["type"]["enum"] == [*model.NOTE_KINDS, model.OCCLUSION_KIND]
    occlusion = note["properties"]["occlusions"]["items"]
    _same_keys("an occlusion", occlusion["properties"], model.OCCLUSION_KEYS)
    assert [set(shape["required"]) for shape in occlusion["oneOf"]] == [
        {kind} for kind in model.SHAPE_KINDS
    ]
    _same_keys("a label", note["properties"]["labels"]["items"]["properties"], model.LABEL_KEYS)
    assert set(note["properties"]["mode"]["enum"]) == set(model.OCCLUSION_MODES)


def test_neurodeck_schema_prints_the_shipped_files(runner) -> None:
    for which in ("deck", "factset"):
        result = runner.invoke(cli, ["schema", which])
        assert result.exit_code == 0
        assert json.loads(result.output) == schema(which)
        shipped = ROOT / "src" / "neurodeck" / "schema" / f"{which}.schema.json"
        assert result.output == shipped.read_text(encoding="utf-8") == schema_text(which)
    assert runner.invoke(cli, ["schema", "nonsense"]).exit_code == 2


# --- Good decks validate --------------------------------------------------------------------


def test_the_shipped_deck_validates() -> None:
    cards = ROOT / "cards"
    assert VALIDATORS["deck"].is_valid(yaml.safe_load((cards / "deck.yaml").read_text()))
    problems: list = []
    fact_sets = load.find_fact_sets(cards, problems)
    assert not problems
    assert fact_sets
    for path in fact_sets:
        errors = list(VALIDATORS["factset"].iter_errors(yaml.safe_load(path.read_text())))
        assert not errors, f"{path.name}: {errors[0].message}"


GOOD_FACT_SETS = {
    "peptides": PEPTIDES_YAML,
    "root deck, no file keys": "notes:\n  - {id: a, front: Q, back: A}\n",
    "single tag as text": "tags: solo\nnotes:\n  - {id: a, front: Q, back: A, tags: one}\n",
    "numbers as text": "notes:\n  - {id: 12, front: 1.5, back: 2}\n",
    "retired": "notes:\n  - {id: a, front: Q, back: A, retired: true}\n",
    "cloze with extra": "notes:\n  - {id: c, type: cloze, text: '{{c1::x}} y', extra: z}\n",
    "date-like section": "notes:\n  - {id: a, front: Q, back: A, section: 2024-01-31}\n",
}


@pytest.mark.parametrize("text", GOOD_FACT_SETS.values(), ids=GOOD_FACT_SETS.keys())
def test_good_test_fact_sets_validate_and_check(text: str) -> None:
    assert schema_accepts("factset", text)
    tmp, deck_dir = deck_with({"facts.yaml": text})
    with tmp:
        assert check_accepts(deck_dir)


def test_the_test_deck_yaml_and_a_source_link_validate() -> None:
    assert schema_accepts("deck", DECK_YAML)
    linked = DECK_YAML + textwrap.dedent("""\
        source_link:
          repository: https://gitlab.example.org/group/deck
          forge: gitlab
          ref: release-{version}
          path: decks/intro
        """)
    assert schema_accepts("deck", linked)
    tmp, deck_dir = deck_with({"deck.yaml": linked, "facts.yaml": PEPTIDES_YAML})
    with tmp:
        assert check_accepts(deck_dir)


# --- What the schema rejects, check rejects -------------------------------------------------


@pytest.mark.parametrize("case", sorted(BAD.glob("*.yaml")), ids=lambda p: p.stem)
def test_bad_corpus_through_both(case: Path) -> None:
    text = case.read_bytes().decode("utf-8", errors="replace")
    assert_schema_no_stricter("factset", text)


def test_the_schema_catches_most_of_the_bad_corpus() -> None:
    """Not a rule, a measure: the editor flags these before `check` is ever run."""
    cases = sorted(BAD.glob("*.yaml"))
    caught = [
        c for c in cases if not schema_accepts("factset", c.read_bytes().decode("utf-8", "replace"))
    ]
    assert len(caught) >= len(cases) // 3, [c.stem for c in caught]


@SETTINGS
@given(dumped)
def test_generated_fact_set_shapes_schema_never_stricter_than_check(text: str) -> None:
    assert_schema_no_stricter("factset", text)


@SETTINGS
@given(mutated_fact_set())
def test_mutated_fact_sets_schema_never_stricter_than_check(text: str) -> None:
    assert_schema_no_stricter("factset", text)


DIAGRAM_YAML = """\
deck: Diagrams
tags: [diagram]
notes:
  - id: midsagittal
    type: occlusion
    image: media/midsagittal.png
    header: "Midsagittal slice"
    mode: hide-all
    occlusions:
      - {id: acc, answer: Anterior cingulate cortex, ellipse: [0.2, 0.3857, 0.1, 0.0857]}
      - {id: insula-left, group: insula, answer: Insula, rect: [0.2, 0.5, 0.06, 0.1]}
      - {id: insula-right, group: insula, answer: Insula, rect: [0.7, 0.5, 0.06, 0.1]}
      - id: vta
        answer: Ventral tegmental area
        polygon: [[0.48, 0.62], [0.52, 0.62], [0.5, 0.68]]
    labels:
      - {text: Anterior, at: [0.02, 0.02], size: 0.04}
    extra: Shapes mark usual positions.
"""
DIAGRAM_EDITS = [
    (
        "ellipse: [0.2, 0.3857, 0.1, 0.0857]",
        [
            "ellipse: [0.2, 0.3857, 0.1]",
            "elipse: [0.2, 0.3, 0.1, 0.1]",
            "ellipse: [0.2, '0.3', 0.1, 0.1]",
            "ellipse: [0.2, 1e-1, 0.1, 0.1]",
            "ellipse: 0.2",
            "ellipse: [0.2, 0.3, 0.1, 0.1], rect: [0.2, 0.3, 0.1, 0.1]",
            "ellipse: [1.2, 0.3, 0.1, 0.1]",
            "ellipse: [0.2, .inf, 0.1, 0.1]",
            "ellipse: [0.2, 0x1, 0.1, 0.1]",
            "",
        ],
    ),
    ("type: occlusion", ["type: occlusoin", "type: cloze", "type: basic", "type:", ""]),
    ("image: media/midsagittal.png", ["image: media/missing.png", "image:", "img: x.png", ""]),
    ('header: "Midsagittal slice"', ['header: ""', "header:", "front: Q", "text: '{{c1::x}}'", ""]),
    ("mode: hide-all", ["mode: hide-one", "mode: hide", "mode:", ""]),
    ("id: acc,", ["id: Acc,", "id: insula-left,", "", "id: 12,"]),
    (
        "group: insula, answer: Insula, rect: [0.7",
        ["answer: Insula, rect: [0.7", "group: insula, answer: Isle, rect: [0.7"],
    ),
    ("[0.5, 0.68]]", ["[0.5]]", "[0.5, 0.68, 0.1]]", "0.5]"]),
    (
        "{text: Anterior, at: [0.02, 0.02], size: 0.04}",
        [
            "{text: Anterior, at: [0.02]}",
            "{txt: Anterior, at: [0.02, 0.02]}",
            "{at: [0.02, 0.02]}",
            "{text: 'A: B', at: [0.02, 0.02], size: big}",
            "{text: Anterior, at: [0.02, 0.02]}",
        ],
    ),
    ("    labels:\n", ["    labels: []\n    x:\n", "    labels:\n"]),
]


@SETTINGS
@given(
    st.lists(
        st.sampled_from(DIAGRAM_EDITS).flatmap(
            lambda edit: st.tuples(st.just(edit[0]), st.sampled_from(edit[1]))
        ),
        max_size=3,
    )
)
def test_diagram_shapes_schema_never_stricter_than_check(edits) -> None:
    text = DIAGRAM_YAML
    for old, new in edits:
        text = text.replace(old, new, 1)
    tmp, deck_dir = deck_with({"facts.yaml": text})
    with tmp:
        (deck_dir / "media").mkdir()
        image = ROOT / "cards" / "media" / "midsagittal.png"
        (deck_dir / "media" / "midsagittal.png").write_bytes(image.read_bytes())
        if not schema_accepts("factset", text):
            assert not check_accepts(deck_dir), f"schema rejects, check accepts:\n{text}"


def test_a_good_diagram_validates_and_checks() -> None:
    assert schema_accepts("factset", DIAGRAM_YAML)
    tmp, deck_dir = deck_with({"facts.yaml": DIAGRAM_YAML})
    with tmp:
        (deck_dir / "media").mkdir()
        image = ROOT / "cards" / "media" / "midsagittal.png"
        (deck_dir / "media" / "midsagittal.png").write_bytes(image.read_bytes())
        assert check_accepts(deck_dir)


VALID_DECK = {
    "name": "Test Deck",
    "id": "test",
    "version": "1.0.0",
    "description": "A *small* deck.",
    "sources": {
        "intimacy": {
            "title": "T",
            "author": "A",
            "url": "https://x.org/a",
            "kind": "literature",
            "year": "1998",
            "venue": "J, 1(2), 3-4",
        }
    },
    "source_link": {
        "repository": "https://github.com/o/r",
        "ref": "v{version}",
        "path": "cards",
        "forge": "github",
    },
}
ODD_VALUES = (
    st.sampled_from(
        [
            "",
            "A::",
            "Bad Id",
            "ftp://x",
            "javascript:alert(1)",
            "https://github.com/o/r?x=1",
            "http://github.com/o/r",
            'https://github.com/o/r"><b>',
            "https://example.org/o/r",
            "https://gitlab.com/g/r",
            "v {version}",
            "{x}",
            "main",
            "../up",
            "/abs",
            "a b",
            "gitea",
            "gitlab",
            "github",
            "2024-01-31",
            "null",
            "~",
            "true",
            "0x1f",
            "article",
            "Article",
            "1998",
            " 2007a ",
            "199",
            1998,
            "[sound:x.mp3]",
        ]
    )
    | field_value
)
# (path of keys, what to do): replace a value, remove a key, or add a misspelt one.
deck_edits = st.lists(
    st.tuples(
        st.sampled_from(
            [
                ("name",),
                ("id",),
                ("version",),
                ("description",),
                ("sources",),
                ("sources", "intimacy"),
                ("sources", "intimacy", "title"),
                ("sources", "intimacy", "url"),
                ("sources", "intimacy", "kind"),
                ("sources", "intimacy", "year"),
                ("sources", "intimacy", "venue"),
                ("source_link",),
                ("source_link", "repository"),
                ("source_link", "ref"),
                ("source_link", "path"),
                ("source_link", "forge"),
            ]
        ),
        st.sampled_from(["replace", "remove", "misspell"]),
        ODD_VALUES,
    ),
    max_size=3,
)


def edited_deck(edits) -> dict[str, object]:
    data = json.loads(json.dumps(VALID_DECK))
    for keys, action, value in edits:
        parent = data
        for key in keys[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        if action == "replace":
            parent[keys[-1]] = value
        elif action == "remove":
            parent.pop(keys[-1], None)
        else:
            parent[keys[-1][::-1]] = value
    return data


deck_data = deck_edits.map(edited_deck)


@SETTINGS
@given(deck_data, st.sampled_from([False, None, True]))
def test_generated_deck_yaml_schema_never_stricter_than_check(data, flow) -> None:
    text = yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True)
    assert_schema_no_stricter("deck", text)


def test_a_typo_is_flagged_by_both_with_the_same_key_named() -> None:
    text = "notes:\n  - id: a\n    front: Q\n    bakc: A\n"
    errors = list(VALIDATORS["factset"].iter_errors(yaml.safe_load(text)))
    assert any("bakc" in e.message for e in errors)
    tmp, deck_dir = deck_with({"facts.yaml": text})
    with tmp, pytest.raises(NeurodeckError) as caught:
        pipeline.check(deck_dir)
    assert any(re.search(r"unknown key 'bakc'", p.message) for p in caught.value.problems)

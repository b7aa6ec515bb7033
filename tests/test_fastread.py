"""The one-pass fact-set reader: when it answers, and what it leaves behind."""

from __future__ import annotations

import dataclasses
import gc
import re

import pytest
import yaml

from neurodeck import fastread, yamlsrc
from neurodeck.errors import Location
from neurodeck.model import Note, Tag


def test_locations_and_tags_made_directly_equal_those_made_by_init():
    """_location and _tag_at skip the dataclass __init__; they must still make frozen equals."""
    loc, made = fastread._location("a.yaml", 3, 5), Location("a.yaml", 3, 5)
    assert (loc, hash(loc), str(loc), repr(loc)) == (made, hash(made), str(made), repr(made))
    tag = fastread._tag_at("x", "a.yaml", yaml.Mark("a.yaml", 0, 2, 4, None, None))
    assert tag == Tag("x", loc) and tag.loc == loc and hash(tag.loc) == hash(loc)
    with pytest.raises(dataclasses.FrozenInstanceError):
        loc.line = 4  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        tag.name = "y"  # type: ignore[misc]


def test_notes_made_directly_equal_those_the_general_path_makes():
    text = "tags: [t]\nnotes:\n  - {id: a, front: F, back: B, extra: E, section: S}\n"
    fast = fastread.read_fact_set("a.yaml", text)
    assert fast is not None
    (note,) = fast.notes
    assert not hasattr(Note, "__post_init__")
    assert set(vars(note)) == {f.name for f in dataclasses.fields(Note)}
    assert note == dataclasses.replace(note)  # the same as one made by __init__
    assert hash(note.loc) == hash(dataclasses.replace(note.loc))
    with pytest.raises(dataclasses.FrozenInstanceError):
        note.id = "b"  # type: ignore[misc]


@pytest.mark.parametrize(
    "text",
    [
        "notes:\n  - id: a\n    front: F\n    back: B\n    bakc: B\n",  # an unknown key
        "notes:\n  - id: a\n    front: F\n",  # a missing field
        "notes:\n  - &n {id: a, front: F, back: B}\n",  # an anchor
        "notes:\n  - {id: a, front: !!str F, back: B}\n",  # a tag
        'notes:\n  - {id: a, front: "\\x07", back: B}\n',  # a control character
        "notes: [{id: a, front: F, back: B}]\n---\nnotes: []\n",  # a second document
        "notes: [{id: a, front: F, back: [B]}]\n",  # a list where text belongs
        "notes: [{id: a, front: F, back: B, tags: [&t x]}]\n",  # an anchor on a tag
        'notes: [{id: a, front: F, back: B, tags: ["\\x07"]}]\n',  # a control character
        "notes: [{id: a, front: F, back: B, tags: [[x]]}]\n",  # a list where a tag belongs
        "notes: [{id: a, front: F, back: B\n",  # a syntax error
        # Line breaks to libyaml, not to editors: the general path moves the marks after them.
        "notes:\n- {id: a, front: F, back: '\x85 '}\n- {id: b, front: F, back: B}\n",
        "notes:\n- {id: a, front: F, back: '\u2028 '}\n- {id: b, front: F, back: B}\n",
        "",
    ],
)
def test_anything_unusual_is_left_to_the_general_path(text):
    assert fastread.read_fact_set("x.yaml", text) is None


@pytest.mark.parametrize("enabled", [True, False])
def test_the_garbage_collector_is_left_as_it_was(enabled):
    """The pass pauses the collector; it must not switch it on for a caller who turned it off."""
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        for text in ["notes: []\n", "notes: ["]:
            fastread.read_fact_set("x.yaml", text)
            assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_refused_characters_are_exactly_those_yaml_refuses_or_the_line_reader_leaves():
    """The character classes are written as the few refused (a negated class over all of
    Unicode costs milliseconds to compile at every start); they must still say the same."""
    every = "".join(map(chr, range(0x110000)))
    allowed_by_yaml = re.compile(
        "[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
    )
    read_by_lines = re.compile(
        "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
    )
    assert yamlsrc.NON_PRINTABLE_RE.findall(every) == allowed_by_yaml.findall(every)
    assert fastread._BEYOND_LINES_RE.findall(every) == read_by_lines.findall(every)

"""The one-pass fact-set reader: when it answers, and what it leaves behind."""

from __future__ import annotations

import dataclasses
import gc
import re

import pytest

from neurodeck import fastread, yamlsrc
from neurodeck.errors import Location
from neurodeck.model import Note, Tag


def test_locations_and_tags_made_directly_equal_those_made_by_init():
    """_location and _tag skip the dataclass __init__; they must still make frozen equals."""
    loc, made = fastread._location("a.yaml", 3, 5), Location("a.yaml", 3, 5)
    assert (loc, hash(loc), str(loc), repr(loc)) == (made, hash(made), str(made), repr(made))
    tag = fastread._tag("x", "a.yaml", 2, 4)  # 0-based, as the line reader counts
    assert tag == Tag("x", loc) and tag.loc == loc and hash(tag.loc) == hash(loc)
    with pytest.raises(dataclasses.FrozenInstanceError):
        loc.line = 4  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        tag.name = "y"  # type: ignore[misc]


def test_notes_made_directly_equal_those_the_general_path_makes():
    text = "tags: [t]\nnotes:\n  - id: a\n    front: F\n    back: B\n    extra: E\n    section: S\n"
    fast = fastread.read_fact_set("a.yaml", text)
    assert fast is not None
    (note,) = fast.notes
    assert not hasattr(Note, "__post_init__")
    assert set(vars(note)) == {f.name for f in dataclasses.fields(Note)}
    assert note == dataclasses.replace(note)  # the same as one made by __init__
    assert hash(note.loc) == hash(dataclasses.replace(note.loc))
    with pytest.raises(dataclasses.FrozenInstanceError):
        note.id = "b"  # type: ignore[misc]


N = "notes:\n  - id: a\n    front: F\n"  # a note's start, in the block style the reader reads


@pytest.mark.parametrize(
    "text",
    [
        N + "    back: B\n    bakc: B\n",  # an unknown key
        N,  # a missing field
        N + "    back: B\n    front: G\n",  # a repeated key
        "notes:\n  - id: a\n    front: &f F\n    back: *f\n",  # an anchor and an alias
        N + "    back: !!str B\n",  # a tag
        N + '    back: "\\x07"\n',  # an escape (here, of a control character)
        N + "    back: B\n---\nnotes: []\n",  # a second document
        N + "    back: [B]\n",  # a list where text belongs
        N + "    back: B\n    tags: [&t x]\n",  # an anchor on a tag
        N + "    back: B\n    tags: [[x]]\n",  # a list where a tag belongs
        N + "    back: 'B\n",  # a syntax error
        "notes:\n  - {id: a, front: F, back: B}\n",  # a note in flow style
        N + "    back: two\n      lines\n",  # plain text over two lines
        # Line breaks to libyaml, not to editors: the general path moves the marks after them.
        N + "    back: '\x85 '\n  - id: b\n    front: F\n    back: B\n",
        N + "    back: '\u2028 '\n  - id: b\n    front: F\n    back: B\n",
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

"""order.py: when Anki's order of subdecks differs from the files', and the renames that fix it.

Anki's own order is pinned in tests/test_learner.py; these tests cover the shapes of decks.
"""

from __future__ import annotations

from pathlib import Path

from neurodeck.order import FileDeck, anki_sort_key, study_order_problems


def files(*subdecks: str, released: bool = False) -> list[FileDeck]:
    return [FileDeck(f"{i:02d}-f.yaml", s, released) for i, s in enumerate(subdecks, start=1)]


def hint_of(problems) -> str:
    (problem,) = problems
    assert problem.severity == "warning"
    return problem.hint


def test_files_already_in_anki_order_give_no_warning():
    assert study_order_problems(files("", "Attention", "attention::Selective", "Memory")) == []


def test_nested_subdecks_are_numbered_only_where_their_siblings_are_out_of_order():
    hint = hint_of(
        study_order_problems(
            files("", "Memory::Working", "Memory::Episodic", "Attention", "Attention")
        )
    )
    assert hint.endswith(
        "rename the subdecks: 02-f.yaml: `deck: 1 Memory::1 Working`; "
        "03-f.yaml: `deck: 1 Memory::2 Episodic`; 04-f.yaml: `deck: 2 Attention`; "
        "05-f.yaml: `deck: 2 Attention`"
    )
    renamed = ["", "1 Memory::1 Working", "1 Memory::2 Episodic", "2 Attention"]
    assert sorted(renamed, key=anki_sort_key) == renamed


def test_numbers_already_there_are_replaced_and_padded_past_nine():
    names = [f"{n} Topic {chr(ord('a') + 10 - n)}" for n in range(10, 0, -1)]  # 10 … 1
    hint = hint_of(study_order_problems(files(*names)))
    assert "01-f.yaml: `deck: 01 Topic a`" in hint
    assert "10-f.yaml: `deck: 10 Topic j`" in hint


def test_root_notes_after_a_subdeck_can_only_be_fixed_by_moving_files():
    hint = hint_of(study_order_problems(files("Attention", "")))
    assert hint == (
        "Anki shows the root deck's own notes first, and a subdeck's own notes "
        "before those of the subdecks inside it; rename the files so that they "
        "sort in the order Anki shows the subdecks: 02-f.yaml → 001-f.yaml; "
        "01-f.yaml → 002-f.yaml"
    )  # never onto another file's name


def test_released_subdecks_are_not_renamed():
    hint = hint_of(study_order_problems(files("Memory", "Attention", released=True)))
    assert hint.startswith("renaming a subdeck learners have leaves their cards in the old one")
    assert "`deck:" not in hint


def test_file_renames_keep_a_number_inside_the_name_and_the_yaml_suffix():
    """Applying the hint: the new names still end in .yaml (so they stay fact sets) and sort
    in the order Anki shows the subdecks."""
    decks = [FileDeck("set-0001.yaml", "Attention", False), FileDeck("set-0002.yaml", "", False)]
    hint = hint_of(study_order_problems(decks))
    renames = dict(pair.split(" → ") for pair in hint.split(": ")[-1].split("; "))
    assert renames == {"set-0002.yaml": "01-set-0002.yaml", "set-0001.yaml": "02-set-0001.yaml"}
    by_new_name = sorted(decks, key=lambda f: renames[f.path])
    assert [f.subdeck for f in by_new_name] == ["", "Attention"]


# --- Decks of many fact sets: the hint lists one edit a line, and applying it works ------------


def _many_sets(make_deck, subdecks: list[str]):
    return make_deck(
        {
            f"set-{i:02d}.yaml": f"deck: {subdeck}\nnotes:\n  - id: n{i}\n    front: q{i}\n"
            f"    back: a{i}\n"
            for i, subdeck in enumerate(subdecks, start=1)
        }
    )


def _order_warning(deck_dir):
    from neurodeck.pipeline import check

    return [w for w in check(deck_dir).warnings if "name order" in w.message]


def _edit_lines(hint: str) -> list[str]:
    head, *lines = hint.split("\n")
    assert head.endswith(":") and lines, hint
    assert all(line.startswith("    ") for line in lines), hint
    return [line[4:] for line in lines]


def test_many_file_renames_come_one_a_line_and_applying_them_clears_the_warning(make_deck):
    # Root notes last: only moving files can fix it, so the hint lists file renames.
    deck_dir = _many_sets(make_deck, [f"Topic {chr(ord('a') + i)}" for i in range(9)] + [""])
    (warning,) = _order_warning(deck_dir)
    assert warning.message.endswith("... (10 in all)), not in the order of the fact sets")
    assert len(str(warning).splitlines()) == 2 + 10  # message, hint, one line per rename
    for edit in _edit_lines(warning.hint):
        old, new = edit.split(" → ")
        Path(old).rename(new)
    assert _order_warning(deck_dir) == []


def test_many_subdeck_renames_come_one_a_line_and_applying_them_clears_the_warning(make_deck):
    deck_dir = _many_sets(make_deck, [f"Topic {chr(ord('z') - i)}" for i in range(8)])
    (warning,) = _order_warning(deck_dir)
    edits = _edit_lines(warning.hint)
    assert len(edits) == 8
    for edit in edits:
        path, new_line = edit.split(": ", 1)
        file = Path(path)
        file.write_text(new_line.strip("`") + "\n" + file.read_text().split("\n", 1)[1])
    assert _order_warning(deck_dir) == []

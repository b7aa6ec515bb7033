"""A release that changes an image's bytes under the same file name, end to end with Anki.

Anki copies an incoming media file whose name the learner already has with other bytes
under a new name (the name plus the file's SHA-1) and points the notes it imports or
updates at that name; a note it leaves alone (not newer than the learner's copy) keeps
pointing at the old file (rslib import_export/package/apkg/import/media.rs: only media
that the imported notes use is copied). So a changed image reaches learners only if every
note that shows it is newer in the package: the lock records each image's digest, and a
changed digest moves the time of the notes that use it.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import pytest
from anki_helpers import LearnerCollection
from click.testing import CliRunner
from conftest import MakeDeck, png

from neurodeck import lock, pipeline
from neurodeck.cli import cli
from neurodeck.ids import note_guid
from neurodeck.lock import LOCK_FILE
from neurodeck.pipeline import build

T1 = 1_700_000_000  # release 1
T2 = 2_000_000_000  # release 2

OLD, NEW = png(40, 30), png(41, 30)  # the same figure, redrawn

FIGURES_YAML = """\
deck: Figures
source: intimacy
notes:
  - id: figure
    front: 'Which region is marked? ![brain](media/brain.png)'
    back: The amygdala
  - id: figure-again
    front: Name the lobe.
    back: 'The temporal lobe ![brain](media/brain.png)'
  - id: other-figure
    front: 'Which region is this? ![slice](media/other.png)'
    back: The insula
  - id: plain
    front: Which neuropeptide is released during touch?
    back: Oxytocin
"""

DIAGRAM_YAML = """\
deck: Diagrams
source: intimacy
notes:
  - id: midline
    type: occlusion
    image: media/slice.png
    occlusions:
      - {id: acc, answer: Anterior cingulate cortex, rect: [0.2, 0.2, 0.5, 0.5]}
"""

USERS = {"brain.png": ("figure", "figure-again"), "slice.png": ("midline",)}
# Each note's time once only brain.png was redrawn for release 2: its two users moved.
BRAIN_REDRAWN = {"figure": T2, "figure-again": T2, "midline": T1, "other-figure": T1, "plain": T1}


def guid(note_id: str) -> str:
    return note_guid("test", note_id)


def shown_images(card_html: str, media_dir: Path) -> list[bytes]:
    """The bytes of each image a rendered card shows, read from the learner's media folder."""
    names = re.findall(r'<img src="([^"]+)"', card_html)
    assert names, card_html
    return [(media_dir / name).read_bytes() for name in names]


def deck_with_images(make_deck: MakeDeck) -> Path:
    return make_deck(
        {
            "01-figures.yaml": FIGURES_YAML,
            "02-diagrams.yaml": DIAGRAM_YAML,
            "media/brain.png": OLD,
            "media/other.png": png(20, 20),
            "media/slice.png": OLD,
        }
    )


def test_a_redrawn_image_under_the_same_name_reaches_learners_with_their_history(
    make_deck: MakeDeck, tmp_path: Path
) -> None:
    deck_dir = deck_with_images(make_deck)
    release_1 = build(deck_dir, tmp_path / "release-1.apkg", clock=T1).path
    with LearnerCollection(tmp_path / "learner") as learner:
        assert learner.import_apkg(release_1).new == 5
        assert learner.answer_all(ease=4) == 5
        before = learner.view()
        logs = learner.review_logs()
        media_dir = Path(learner.col.media.dir())
        assert shown_images(before.cards_of(guid("figure"))[0].question, media_dir) == [OLD]

        # The author redraws two figures, keeps their names, and touches no text.
        (deck_dir / "media/brain.png").write_bytes(NEW)
        (deck_dir / "media/slice.png").write_bytes(NEW)
        built = build(deck_dir, tmp_path / "release-2.apkg", clock=T2)
        log = learner.import_apkg(built.path)
        after = learner.view()
        logs_after = learner.review_logs()

    assert log.counts() == {"new": 0, "updated": 3, "duplicate": 2, "conflicting": 0}
    figure = after.cards_of(guid("figure"))[0]
    assert shown_images(figure.question, media_dir) == [NEW]
    # README: under a new name, the old one plus the new bytes' SHA-1; the old file stays.
    (shown,) = re.findall(r'<img src="([^"]+)"', figure.question)
    assert shown == f"brain-{hashlib.sha1(NEW).hexdigest()}.png"
    assert (media_dir / "brain.png").read_bytes() == OLD
    assert shown_images(after.cards_of(guid("figure-again"))[0].answer, media_dir) == [NEW]
    (diagram,) = after.cards_of(guid("midline"))
    assert NEW in shown_images(diagram.question, media_dir)
    assert OLD not in shown_images(diagram.answer, media_dir)
    # The unchanged image and the note without one are left alone.
    for note_id in ("other-figure", "plain"):
        assert after.notes[guid(note_id)] == before.notes[guid(note_id)]
    # Updated in place: same cards, same intervals, same review log.
    assert {c.card_id: (c.ivl, c.reps, c.queue) for c in after.cards} == {
        c.card_id: (c.ivl, c.reps, c.queue) for c in before.cards
    }
    assert logs_after == logs
    assert built.lock_changes == ["3 notes changed", "images changed: brain.png, slice.png"]


def note_mods(deck_dir: Path) -> dict[str, int]:
    lines = (deck_dir / LOCK_FILE).read_text(encoding="utf-8").splitlines()
    return {p[1]: int(p[3]) for p in (line.split("\t") for line in lines) if p[0] == "note"}


@pytest.mark.parametrize("workers", [False, True])
def test_a_redrawn_image_moves_exactly_the_notes_that_show_it(
    make_deck: MakeDeck, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: bool
) -> None:
    forked = []
    if workers:  # every fact set in a forked worker, each hashing the images it meets
        monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 0)
        monkeypatch.setattr(pipeline, "usable_cpus", lambda: 2)
        parallel = pipeline._parallel

        def counted(work, paths):
            forked.append(len(paths))
            return parallel(work, paths)

        monkeypatch.setattr(pipeline, "_parallel", counted)
    deck_dir = deck_with_images(make_deck)
    build(deck_dir, tmp_path / "r1.apkg", clock=T1)
    assert set(note_mods(deck_dir).values()) == {T1}
    (deck_dir / "media/brain.png").write_bytes(NEW)
    built = build(deck_dir, tmp_path / "r2.apkg", clock=T2)
    assert built.lock_changes == ["2 notes changed", "images changed: brain.png"]
    assert note_mods(deck_dir) == BRAIN_REDRAWN
    digests = {name: digest for _, name, digest in media_records(deck_dir)}
    assert digests == {
        "brain.png": lock.image_digest(io.BytesIO(NEW)),
        "other.png": lock.image_digest(io.BytesIO(png(20, 20))),
        "slice.png": lock.image_digest(io.BytesIO(OLD)),
    }
    # Built again, nothing moves: the lock now knows the new image.
    lock_text = (deck_dir / LOCK_FILE).read_bytes()
    again = build(deck_dir, tmp_path / "r3.apkg", clock=T2 + 100)
    assert again.lock_changes == []
    assert (deck_dir / LOCK_FILE).read_bytes() == lock_text
    assert (tmp_path / "r3.apkg").read_bytes() == (tmp_path / "r2.apkg").read_bytes()
    assert forked == ([2, 2, 2] if workers else [])


def media_records(deck_dir: Path) -> list[tuple[str, ...]]:
    lines = (deck_dir / LOCK_FILE).read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("\t")) for line in lines if line.startswith("media\t")]


def test_an_unchanged_rebuild_changes_nothing(make_deck: MakeDeck, tmp_path: Path) -> None:
    deck_dir = deck_with_images(make_deck)
    build(deck_dir, tmp_path / "r1.apkg", clock=T1)
    lock_text = (deck_dir / LOCK_FILE).read_bytes()
    assert [name for _, name, _ in media_records(deck_dir)] == [
        "brain.png",
        "other.png",
        "slice.png",
    ]
    assert build(deck_dir, tmp_path / "r2.apkg", clock=T2).lock_changes == []
    assert (deck_dir / LOCK_FILE).read_bytes() == lock_text
    assert (tmp_path / "r2.apkg").read_bytes() == (tmp_path / "r1.apkg").read_bytes()


def as_format_2(deck_dir: Path) -> str:
    """The lock as neurodeck wrote it before format 3: no media records."""
    text = (deck_dir / LOCK_FILE).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines(keepends=True) if not line.startswith("media\t")]
    return "".join(lines).replace("lock\t3\ttest\n", "lock\t2\ttest\n")


def test_a_lock_without_media_records_builds_frozen_and_migrates_keeping_every_time(
    make_deck: MakeDeck, tmp_path: Path, runner: CliRunner
) -> None:
    """The committed lock of every deck built before format 3 must not churn: no note with an
    image may move, or every learner would get every such note again."""
    deck_dir = deck_with_images(make_deck)
    out = tmp_path / "out.apkg"
    build(deck_dir, out, clock=T1)
    package, v3 = out.read_bytes(), (deck_dir / LOCK_FILE).read_text(encoding="utf-8")
    v2 = as_format_2(deck_dir)
    (deck_dir / LOCK_FILE).write_text(v2, encoding="utf-8")
    later = {"SOURCE_DATE_EPOCH": str(T2)}
    frozen = runner.invoke(cli, ["build", str(deck_dir), "-o", str(out), "--frozen"], env=later)
    assert frozen.exit_code == 0, frozen.output
    assert (out.read_bytes(), (deck_dir / LOCK_FILE).read_text(encoding="utf-8")) == (package, v2)
    result = runner.invoke(cli, ["build", str(deck_dir), "-o", str(out)], env=later)
    assert result.exit_code == 0, result.output
    assert (
        "Updated neurodeck.lock: lock format 2 rewritten as format 3 (recorded each image's "
        "digest; no note's time moved)"
    ) in result.stdout
    assert (out.read_bytes(), (deck_dir / LOCK_FILE).read_text(encoding="utf-8")) == (package, v3)


def test_frozen_refuses_a_lock_that_does_not_know_a_redrawn_image(
    make_deck: MakeDeck, tmp_path: Path, runner: CliRunner
) -> None:
    deck_dir = deck_with_images(make_deck)
    out = tmp_path / "out.apkg"
    build(deck_dir, out, clock=T1)
    before = out.read_bytes(), (deck_dir / LOCK_FILE).read_bytes()
    (deck_dir / "media/slice.png").write_bytes(NEW)
    later = {"SOURCE_DATE_EPOCH": str(T2)}
    frozen = runner.invoke(cli, ["build", str(deck_dir), "-o", str(out), "--frozen"], env=later)
    assert frozen.exit_code == 1
    assert (
        f"{deck_dir / LOCK_FILE}: error: neurodeck.lock is out of date (1 note changed; images "
        "changed: slice.png)"
    ) in frozen.stderr
    assert "run `neurodeck build` and commit the updated lock file" in frozen.stderr
    assert (out.read_bytes(), (deck_dir / LOCK_FILE).read_bytes()) == before
    # The hint, applied: build, then the frozen build passes.
    assert runner.invoke(cli, ["build", str(deck_dir), "-o", str(out)], env=later).exit_code == 0
    assert note_mods(deck_dir)["midline"] == T2
    again = runner.invoke(cli, ["build", str(deck_dir), "-o", str(out), "--frozen"], env=later)
    assert again.exit_code == 0, again.output


def test_lock_from_a_release_counts_a_note_whose_image_was_redrawn_since_as_edited(
    make_deck: MakeDeck, tmp_path: Path, runner: CliRunner
) -> None:
    deck_dir = deck_with_images(make_deck)
    release = build(deck_dir, tmp_path / "r1.apkg", clock=T1).path
    (deck_dir / "media/brain.png").write_bytes(NEW)
    (deck_dir / LOCK_FILE).unlink()  # lost
    later = {"SOURCE_DATE_EPOCH": str(T2)}
    result = runner.invoke(cli, ["lock", str(deck_dir), "--from", str(release)], env=later)
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("3 notes as released, 2 edited since, 0 new\n")
    assert note_mods(deck_dir) == BRAIN_REDRAWN
    # The rebuilt lock is what a build would write: the next release builds frozen.
    out = tmp_path / "r2.apkg"
    frozen = runner.invoke(cli, ["build", str(deck_dir), "-o", str(out), "--frozen"], env=later)
    assert frozen.exit_code == 0, frozen.output


def test_an_image_whose_name_has_a_tab_is_refused(make_deck: MakeDeck, runner: CliRunner) -> None:
    """Markdown escapes such a name, but a diagram's `image:` is taken as written."""
    diagram = DIAGRAM_YAML.replace("image: media/slice.png", 'image: "media/a\\tb.png"')
    deck_dir = make_deck({"a.yaml": diagram, "media/a\tb.png": OLD})
    result = runner.invoke(cli, ["check", str(deck_dir)])
    assert result.exit_code == 1
    assert "has a tab or a line break in its name" in result.stderr
    assert "rename the file" in result.stderr


def test_release_check_and_diff_call_a_redrawn_image_an_update(
    make_deck: MakeDeck, tmp_path: Path, runner: CliRunner
) -> None:
    """Its notes' fields are unchanged and their time moved: without the image's bytes they
    looked like a lost lock ("did not change but its modification time moved forward")."""
    deck_dir = deck_with_images(make_deck)
    release_1 = build(deck_dir, tmp_path / "r1.apkg", clock=T1).path
    (deck_dir / "media/brain.png").write_bytes(NEW)
    deck_yaml = deck_dir / "deck.yaml"
    deck_yaml.write_text(deck_yaml.read_text().replace("1.0.0", "1.1.0"))
    later = {"SOURCE_DATE_EPOCH": str(T2)}
    diff = runner.invoke(cli, ["diff", str(release_1), str(deck_dir)], env=later)
    assert diff.exit_code == 0, diff.output
    assert "0 added, 2 changed, 0 removed" in diff.stdout
    assert "  figure: image\n  figure-again: image\n" in diff.stdout
    release_2 = build(deck_dir, tmp_path / "r2.apkg", clock=T2).path
    for new in (deck_dir, release_2):
        checked = runner.invoke(cli, ["release-check", str(release_1), str(new)], env=later)
        assert checked.exit_code == 0, checked.output
        assert "did not change" not in checked.output
        assert "were updated" in checked.stdout
        assert "“Which region is marked?”, “Name the lobe.”" in checked.stdout


@pytest.mark.parametrize("name", ["_shared.png", "latex-formula.png"])
def test_an_image_anki_treats_as_static_is_never_replaced_and_release_check_says_so(
    make_deck: MakeDeck, tmp_path: Path, runner: CliRunner, name: str
) -> None:
    """Anki copies a file whose name starts with `_` or `latex-` only when the learner has
    none of that name, and never renames it (rslib media.rs is_static): the note is updated
    (its time moved with the image), but it still shows the old file."""
    fact_set = f"notes:\n  - {{id: eq, front: 'Solve ![x](media/{name})', back: Done}}\n"
    deck_dir = make_deck({"eq.yaml": fact_set, f"media/{name}": OLD})
    release_1 = build(deck_dir, tmp_path / "r1.apkg", clock=T1).path
    (deck_dir / f"media/{name}").write_bytes(NEW)
    deck_yaml = deck_dir / "deck.yaml"
    deck_yaml.write_text(deck_yaml.read_text().replace("1.0.0", "1.1.0"))
    release_2 = build(deck_dir, tmp_path / "r2.apkg", clock=T2).path
    with LearnerCollection(tmp_path / "learner") as learner:
        learner.import_apkg(release_1)
        assert learner.import_apkg(release_2).counts()["updated"] == 1
        (card,) = learner.view().cards
        assert shown_images(card.question, Path(learner.col.media.dir())) == [OLD]
    later = {"SOURCE_DATE_EPOCH": str(T2)}
    checked = runner.invoke(cli, ["release-check", str(release_1), str(release_2)], env=later)
    assert checked.exit_code == 1
    assert f"error: media file '{name}' changed: Anki copies a file whose name" in checked.output

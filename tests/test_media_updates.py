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

import re
from pathlib import Path

from anki_helpers import LearnerCollection
from conftest import MakeDeck, png

from neurodeck.ids import note_guid
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

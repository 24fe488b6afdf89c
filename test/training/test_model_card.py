"""Hand-written notes in a published model card survive republishing (pipeline.model_card)."""

from __future__ import annotations

from pathlib import Path

from alphanet.pipeline.model_card import CARD_FILE, NOTES_MARKER, TEMPLATE, with_kept_notes


def test_the_template_ends_with_the_notes_marker() -> None:
    assert TEMPLATE.read_text().rstrip().endswith(NOTES_MARKER)


def test_notes_below_the_marker_are_carried_into_the_new_card(tmp_path: Path) -> None:
    old = f"# old generated table\n\n{NOTES_MARKER}\n\n## Caveats\n\n- written by hand\n"
    (tmp_path / CARD_FILE).write_text(old)
    new = with_kept_notes(f"# new generated table\n\n{NOTES_MARKER}\n", tmp_path)
    assert new == f"# new generated table\n\n{NOTES_MARKER}\n\n## Caveats\n\n- written by hand\n"


def test_nothing_to_keep_leaves_the_card_as_generated(tmp_path: Path) -> None:
    card = f"# generated\n\n{NOTES_MARKER}\n"
    assert with_kept_notes(card, tmp_path) == card  # no card published yet
    (tmp_path / CARD_FILE).write_text("# an old card without the marker: all of it generated\n")
    assert with_kept_notes(card, tmp_path) == card
    (tmp_path / CARD_FILE).write_text(f"# old\n\n{NOTES_MARKER}\n\n")
    assert with_kept_notes(card, tmp_path) == card
    (tmp_path / CARD_FILE).write_bytes(b"\xff\xfe not utf-8")
    assert with_kept_notes(card, tmp_path) == card

"""Hand-written notes in a published model card survive republishing (pipeline.model_card)."""

from __future__ import annotations

from pathlib import Path

from alphanet.export.manifest import default_description
from alphanet.pipeline.model_card import (
    CARD_FILE,
    NOTES_MARKER,
    TEMPLATE,
    space_variants_text,
    student_loss_text,
    training_text,
    with_kept_notes,
)
from alphanet.config import load_config
from alphanet.space import load_space
from conftest import TRAINING_DIR


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


def test_the_card_names_where_a_space_departs_from_the_reference(
    tiny_space, tiny_fused_space, tiny_gdc_space, tiny_flatten_space
):
    assert space_variants_text(load_space("imagenet")) == ""
    assert space_variants_text(load_space("fashion_mnist")) == ""  # the bundled card stays as it was
    assert space_variants_text(tiny_space) == ""
    assert "fused-MBConv (one dense kxk expand conv, no depthwise conv) in mb1, mb2" in space_variants_text(
        tiny_fused_space
    )
    gdc = space_variants_text(load_space("fashion_mnist_gdc"))
    assert gdc.startswith(" Unlike the reference: ") and "global depthwise conv" in gdc and "fused" not in gdc
    assert "global depthwise conv" in space_variants_text(tiny_gdc_space)
    assert "flatten + fully connected" in space_variants_text(tiny_flatten_space)


def test_the_card_and_description_say_what_the_students_learned_from() -> None:
    loss = {"distill": "alpha_divergence", "alpha_min": -1.0, "alpha_max": 1.0, "iw_clip": 5.0}
    assert student_loss_text(loss) == (
        "in-place distillation `loss.distill: alpha_divergence` (alpha in [-1.0, 1.0], iw_clip 5.0)"
    )
    assert student_loss_text({**loss, "distill": "kl"}) == "in-place distillation `loss.distill: kl`"
    none = student_loss_text({**loss, "distill": "none"})
    assert none.startswith("no distillation") and "in-place" not in none
    assert default_description("fashion_mnist_gdc", {**loss, "distill": "none"}) == (
        "AlphaNet sub-networks of the 'fashion_mnist_gdc' space "
        "(one weight-sharing supernet, sandwich rule, no distillation)"
    )
    assert default_description("imagenet", None) == "AlphaNet sub-networks of the 'imagenet' space"


def test_the_card_states_the_recipe_the_supernet_trained_by() -> None:
    cfg = load_config(TRAINING_DIR / "configs" / "fashion_mnist.yaml", ["optim.weight_decay=5e-4"])
    text = training_text({"source": {"kind": "train", "training": {"config": cfg}}})
    assert "20 epochs, batch 128 per process, Nesterov SGD lr 0.05 (cosine, 0.3 warm-up epochs)" in text
    assert "weight decay 0.0005 on conv and linear weights" in text
    cfg["optim"]["weight_decay"] = 5e-5
    assert "weight decay 5e-05 " in training_text({"source": {"kind": "train", "training": {"config": cfg}}})

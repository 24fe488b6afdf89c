"""training/README.md states what the code and configs do: the recipes' numbers are read from the
config files, and the pipeline path it lists is at most 8 files that exist."""

from __future__ import annotations

import math
import re

from alphanet.config import load_config
from alphanet.models import complexity
from alphanet.space import available_spaces, load_space
from conftest import TRAINING_DIR

README = (TRAINING_DIR / "README.md").read_text()


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def test_the_fashion_mnist_recipe_in_the_readme_is_the_config_file():
    cfg = load_config(TRAINING_DIR / "configs" / "fashion_mnist.yaml")
    match = re.search(
        r"`fashion_mnist\.yaml` \((\d+) epochs, batch (\d+), lr ([\d.]+), warmup ([\d.]+) epoch, "
        r"distillation from epoch ([\d.]+),\s+(\d+) held-out training images\)",
        README,
    )
    assert match, "training/README.md no longer states the Fashion-MNIST recipe in the checked form"
    epochs, batch, lr, warmup, distill, holdout = map(_number, match.groups())
    assert epochs == cfg["train"]["epochs"], "README epochs differ from configs/fashion_mnist.yaml"
    assert batch == cfg["data"]["batch_size"] and lr == cfg["optim"]["lr"]
    assert warmup == cfg["optim"]["warmup_epochs"] and distill == cfg["loss"]["distill_start_epochs"]
    assert holdout == cfg["data"]["holdout_size"]


def test_the_spaces_table_is_every_bundled_space_with_its_resolutions_size_and_cost():
    rows = re.findall(
        r"^\| `(\w+)` \| \S+ \| ([\d ]+) \| ≈([0-9.e]+) \| ([\d.]+)(?: \([^)]*\))? / ([\d.]+) \|$",
        README,
        re.M,
    )
    assert sorted(name for name, *_ in rows) == available_spaces()
    for name, resolutions, size, low, high in rows:
        space = load_space(name)
        assert tuple(map(int, resolutions.split())) == space.resolutions, name
        mantissa, exponent = f"{math.prod(len(gene.options) for gene in space.choices()):.2e}".split("e")
        assert size == f"{mantissa}e{int(exponent)}", name
        assert float(low) == round(complexity(space, space.min_arch()).mflops, 2), name
        assert float(high) == round(complexity(space, space.max_arch()).mflops, 2), name


def test_the_imagenet_recipe_in_the_readme_is_the_config_file():
    cfg = load_config(TRAINING_DIR / "configs" / "imagenet.yaml")
    match = re.search(
        r"`imagenet\.yaml` \(the reference recipe: (\d+) epochs, (\d+) images per\s+GPU, "
        r"base lr ([\d.]+) scaled by global batch / (\d+), (\d+) warmup epochs, "
        r"weight decay ([\de.-]+), (\d+) calibration\s+batches\)",
        README,
    )
    assert match, "training/README.md no longer states the ImageNet recipe in the checked form"
    epochs, batch, lr, scale, warmup, decay, calib = map(_number, match.groups())
    assert (epochs, batch, lr, scale) == (
        cfg["train"]["epochs"],
        cfg["data"]["batch_size"],
        cfg["optim"]["lr"],
        cfg["optim"]["lr_scale_batch"],
    )
    assert (warmup, decay, calib) == (
        cfg["optim"]["warmup_epochs"],
        cfg["optim"]["weight_decay"],
        cfg["validation"]["calib_batches"],
    )


def test_the_pipeline_path_is_at_most_eight_existing_files_with_one_line_each():
    section = README.split("## The pipeline path, top down", 1)[1].split("\n## ", 1)[0]
    files = re.findall(r"^\d+\. `([^`]+)` — .+$", section, flags=re.M)
    assert 1 <= len(files) <= 8
    assert len(files) == len(re.findall(r"^\d+\. ", section, flags=re.M))
    for name in files:
        assert (TRAINING_DIR / name).is_file(), name

"""Training configs: defaults, bundled YAML files, overrides, validation errors, dumping."""

from __future__ import annotations

import copy
import re

import pytest
import yaml

from alphanet.config import (
    DEFAULTS,
    DEFAULTS_FLAT,
    apply_overrides,
    config_from_dict,
    dump_config,
    load_config,
    parse_override,
)
from alphanet.errors import UserError
from conftest import TRAINING_DIR

CONFIGS = sorted((TRAINING_DIR / "configs").glob("*.yaml"))


def test_bundled_configs_exist():
    names = {p.name for p in CONFIGS}
    assert {"fashion_mnist.yaml", "imagenet.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_bundled_configs_load_and_document_every_key(path):
    cfg = load_config(path)
    assert set(DEFAULTS_FLAT) == set(_flat_keys(yaml.safe_load(path.read_text())))
    # Every leaf line carries a comment.
    for line in path.read_text().splitlines():
        if re.match(r"^\s*[a-z_]+:\s*\S", line):
            assert "#" in line, f"{path.name}: undocumented key line: {line!r}"
    assert cfg["loss"]["distill"] == "alpha_divergence" and cfg["model"]["bn_momentum"] == 0.0


def _flat_keys(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _flat_keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def test_imagenet_config_matches_the_reference_recipe():
    cfg = load_config(TRAINING_DIR / "configs" / "imagenet.yaml")
    assert cfg["space"] == "imagenet" and cfg["train"]["epochs"] == 360
    assert (
        cfg["data"]["batch_size"] == 32 and cfg["optim"]["lr"] == 0.1 and cfg["optim"]["warmup_epochs"] == 5.0
    )
    assert cfg["optim"]["weight_decay"] == 1e-5 and cfg["loss"]["iw_clip"] == 5.0
    assert (cfg["train"]["dropout"], cfg["train"]["drop_connect"]) == (0.2, 0.2)


def test_overrides_are_parsed_as_yaml_and_type_checked():
    cfg = load_config(None, ["optim.lr=0.5", "loss.distill=kl", "validation.subnets=[max]", "seed=3"])
    assert cfg["optim"]["lr"] == 0.5 and cfg["loss"]["distill"] == "kl"
    assert cfg["validation"]["subnets"] == ["max"] and cfg["seed"] == 3
    cfg = apply_overrides(
        cfg, ["optim.weight_decay=0", "validation.max_batches=null", "optim.warmup_epochs=0.5"]
    )
    assert cfg["optim"]["weight_decay"] == 0.0 and isinstance(cfg["optim"]["weight_decay"], float)
    assert cfg["validation"]["max_batches"] is None and cfg["optim"]["warmup_epochs"] == 0.5
    assert parse_override("data.root=/a=b") == ("data.root", "/a=b")


def test_number_keys_take_exponents_that_yaml_1_1_reads_as_text(tmp_path):
    # PyYAML reads "5e-4" and "1.0e5" (no dot, or no exponent sign) as strings.
    cfg = load_config(None, ["optim.weight_decay=5e-4", "optim.lr=1.0e-1", "model.bn_eps=+1E-3"])
    assert (cfg["optim"]["weight_decay"], cfg["optim"]["lr"], cfg["model"]["bn_eps"]) == (5e-4, 0.1, 1e-3)
    (tmp_path / "wd.yaml").write_text("optim:\n  weight_decay: 5e-4\n")
    assert load_config(tmp_path / "wd.yaml")["optim"]["weight_decay"] == 5e-4
    for text in ("e-4", "5e", "5e-4x", "nan"):
        with pytest.raises(UserError, match="optim.weight_decay must be a number"):
            load_config(None, [f"optim.weight_decay={text}"])
    with pytest.raises(UserError, match="train.epochs must be an integer"):
        load_config(None, ["train.epochs=2e1"])


@pytest.mark.parametrize(
    "override,message",
    [
        ("optim.lrr=1", "unknown key 'optim.lrr'"),
        ("optim.lr", "is not KEY=VALUE"),
        ("optim.lr=fast", "optim.lr must be a number"),
        ("train.epochs=2.5", "train.epochs must be an integer"),
        ("optim.nesterov=maybe", "optim.nesterov must be a boolean"),
        ("train.epochs=0", "train.epochs must be > 0"),
        ("train.dropout=1.5", r"train.dropout must be in \[0, 1\)"),
        ("loss.distill=mse", "loss.distill must be one of"),
        ("data.batch_size=null", "must not be null"),
        ("runtime.device=tpu", "runtime.device must be"),
        ("loss.alpha_min=2", "alpha_min must not exceed"),
        ("loss.distill_ramp_epochs=-1", r"loss.distill_ramp_epochs must be >= 0"),
        ("loss.distill_weight=0", r"loss.distill_weight must be in \(0, 1\]"),
        ("data.max_train_samples=many", "data.max_train_samples must be an integer"),
    ],
)
def test_bad_overrides_are_user_errors(override, message):
    with pytest.raises(UserError, match=message):
        load_config(None, [override])


def test_bad_files(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(UserError, match="top level must be a mapping"):
        load_config(tmp_path / "list.yaml")
    (tmp_path / "broken.yaml").write_text("optim: [\n")
    with pytest.raises(UserError, match="cannot parse config"):
        load_config(tmp_path / "broken.yaml")
    (tmp_path / "unknown.yaml").write_text("optim:\n  lr: 0.1\n  betas: [0.9]\n")
    with pytest.raises(UserError, match="unknown key 'optim.betas'"):
        load_config(tmp_path / "unknown.yaml")
    (tmp_path / "flat.yaml").write_text("optim: 3\n")
    with pytest.raises(UserError, match="'optim' must be a mapping"):
        load_config(tmp_path / "flat.yaml")


def test_partial_files_get_defaults_and_dump_round_trips(tmp_path):
    (tmp_path / "small.yaml").write_text("train:\n  epochs: 3\n")
    cfg = load_config(tmp_path / "small.yaml")
    expected = copy.deepcopy(DEFAULTS)
    expected["train"]["epochs"] = 3
    assert cfg == expected
    dump_config(cfg, tmp_path / "config.yaml")
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == cfg
    assert load_config(tmp_path / "config.yaml") == cfg
    assert config_from_dict(yaml.safe_load((tmp_path / "config.yaml").read_text())) == cfg


def _schemas():
    from alphanet.config import TRAINING
    from alphanet.engine.search_config import SEARCH
    from alphanet.pipeline.config import PIPELINE

    return {
        "training": (TRAINING, CONFIGS),
        "search": (SEARCH, sorted((TRAINING_DIR / "configs" / "search").glob("*.yaml"))),
        "pipeline": (PIPELINE, [TRAINING_DIR / "configs" / "pipeline" / "fashion_mnist.yaml"]),
    }


@pytest.mark.parametrize("kind", ["training", "search", "pipeline"])
def test_one_mechanism_declares_every_key_once_with_a_comment_and_the_reference_files_list_them(kind):
    schema, files = _schemas()[kind]
    assert schema.keys and all(spec.doc.strip() for spec in schema.keys.values())
    for path in files:
        listed = schema.documented_keys(path.read_text())
        assert set(listed) == set(schema.keys), f"{path.name}: keys differ from the {kind} schema"
        schema.load(path, [], {"checkpoint": "x"} if kind == "search" else None)  # loads as is


def test_every_kind_shares_the_override_parser_and_its_errors():
    for kind, (schema, _) in _schemas().items():
        with pytest.raises(UserError, match=f"{schema.label}: unknown key 'nope'"):
            schema.parse_override("nope=1")
        with pytest.raises(UserError, match="is not KEY=VALUE"):
            schema.parse_override("novalue")

"""Shared fixtures for the training tests: a tiny search space (fast on CPU) and tiny run configs.

Tests run from ``training/`` (``cd training && python3 -m pytest ../test/training``); the package
directory is also put on sys.path so running from the repository root works too.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch
import yaml

TRAINING_DIR = Path(__file__).resolve().parents[2] / "training"
if str(TRAINING_DIR) not in sys.path:
    sys.path.insert(0, str(TRAINING_DIR))

from alphanet.config import DEFAULTS  # noqa: E402
from alphanet.space import SearchSpace, space_from_dict  # noqa: E402

FMNIST_ROOT = Path("/usr/share/datasets/fashion-mnist")
GOLDEN_DIR = Path(__file__).resolve().parent / "golden"

# Same structure as the real spaces (SE stages, t=1 first stage, strides, identity and projection
# shortcuts, every gene with >= 2 choices where the real space has them), with tiny widths.
TINY_SPACE = {
    "in_channels": 1,
    "num_classes": 10,
    "activation": "swish",
    "resolutions": [12, 16],
    "stem": {"widths": [4, 8], "kernel": 3, "stride": 2},
    "stages": [
        {
            "widths": [4, 8],
            "depths": [1, 2],
            "kernel_sizes": [3, 5],
            "expand_ratios": [1],
            "stride": 1,
            "se": False,
        },
        {
            "widths": [8, 12],
            "depths": [1, 2],
            "kernel_sizes": [3, 5],
            "expand_ratios": [2, 3],
            "stride": 2,
            "se": True,
        },
        {
            "widths": [8, 12],
            "depths": [1, 2],
            "kernel_sizes": [3, 5],
            "expand_ratios": [2, 3],
            "stride": 1,
            "se": False,
        },
        {
            "widths": [12, 16],
            "depths": [1, 2],
            "kernel_sizes": [3, 5],
            "expand_ratios": [2, 3],
            "stride": 2,
            "se": True,
        },
        {
            "widths": [16],
            "depths": [1, 2],
            "kernel_sizes": [3, 5],
            "expand_ratios": [2, 3],
            "stride": 1,
            "se": True,
        },
        {
            "widths": [16, 20],
            "depths": [1, 2],
            "kernel_sizes": [3, 5],
            "expand_ratios": [3],
            "stride": 2,
            "se": True,
        },
        {
            "widths": [20, 24],
            "depths": [1, 2],
            "kernel_sizes": [3, 5],
            "expand_ratios": [3],
            "stride": 1,
            "se": True,
        },
    ],
    "head": {"widths": [32, 40], "expand": 6},
    "data": {
        "input_size": 28,
        "channels": 1,
        "mean": [0.2860],
        "std": [0.3530],
        "resize_short_side": 28,
        "interpolation": "bilinear",
        "train_augment": {"kind": "pad_crop", "padding": 2, "horizontal_flip": True},
    },
    "archs": {
        "mid": {
            "resolution": 16,
            "width": [8, 4, 12, 8, 16, 16, 20, 24, 40],
            "depth": [2, 1, 2, 1, 2, 1, 2],
            "kernel_size": [5, 3, 5, 3, 5, 3, 5],
            "expand_ratio": [1, 2, 3, 2, 3, 3, 3],
        }
    },
}


@pytest.fixture(scope="session", autouse=True)
def _single_thread_torch():
    # Two cores are shared with other jobs; tiny tensors gain nothing from intra-op threads.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_space() -> SearchSpace:
    return space_from_dict("tiny", copy.deepcopy(TINY_SPACE))


def fused_space_dict() -> dict:
    """TINY_SPACE with fused-MBConv in its first two stages (the second mixing expand ratio 1)."""
    raw = copy.deepcopy(TINY_SPACE)
    raw["stages"][0]["fused"] = True
    raw["stages"][1].update({"fused": True, "expand_ratios": [1, 2]})
    raw["archs"] = {}
    return raw


@pytest.fixture(scope="session")
def tiny_fused_space() -> SearchSpace:
    return space_from_dict("tiny-fused", fused_space_dict())


def _one_final_size_space(name: str, pool: str) -> SearchSpace:
    """TINY_SPACE at resolutions that all end on one 2x2 map, its head reading it by ``pool``."""
    raw = copy.deepcopy(TINY_SPACE)
    raw["resolutions"] = [20, 24]
    raw["head"]["pool"] = pool
    raw["archs"] = {}
    return space_from_dict(name, raw)


@pytest.fixture(scope="session")
def tiny_gdc_space() -> SearchSpace:
    """The head pools by a global depthwise conv."""
    return _one_final_size_space("tiny-gdc", "gdc")


@pytest.fixture(scope="session")
def tiny_flatten_space() -> SearchSpace:
    """The head's feature layer reads the whole map (flatten + FC)."""
    return _one_final_size_space("tiny-flatten", "flatten")


@pytest.fixture(scope="session")
def tiny_space_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spaces") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_SPACE))
    return path


@pytest.fixture
def tiny_cfg(tiny_space_file) -> dict:
    """A resolved config for a seconds-long Fashion-MNIST run on the tiny space."""
    cfg = copy.deepcopy(DEFAULTS)
    cfg["space"] = str(tiny_space_file)
    cfg["data"].update(
        {
            "root": str(FMNIST_ROOT),
            "batch_size": 16,
            "eval_batch_size": 100,
            "max_train_samples": 96,
            "max_val_samples": 100,
        }
    )
    cfg["train"]["epochs"] = 2
    cfg["optim"]["warmup_epochs"] = 0.5
    cfg["validation"].update({"calib_batches": 2, "calib_batch_size": 16})
    cfg["checkpoint"].update({"every_steps": 4, "keep_every_epochs": 1})
    cfg["log"]["every_steps"] = 2
    cfg["runtime"].update({"device": "cpu", "threads": 1})
    return cfg


def fmnist_available() -> bool:
    return (FMNIST_ROOT / "train-images-idx3-ubyte.gz").is_file()

"""Cascades in the publish path: the Python validator learns the manifest kind, and the cascades
stage picks on the held-out split only (the evaluation split cannot change what is picked)."""

from __future__ import annotations

import copy
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from alphanet.export.manifest import ManifestError, validate_manifest
from alphanet.pipeline import cascades as stage
from alphanet.pipeline.cascades import SplitInfo, build_cascades

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_ZOO = ROOT / "test" / "fixtures" / "zoo"
DATASET = FIXTURE_ZOO / "fixture-gray28.dataset.bin"
GRAY = ["fixture-gray28-small", "fixture-gray28-large"]


def _cascade(**overrides):
    entry = {
        "name": "fixture-cascade",
        "stages": list(GRAY),
        "rule": "top1Probability",
        "thresholds": [0.9],
        "expectedMflops": 0.5,
        "worstMflops": 2.2637,
        "heldOut": {
            "dataset": "f",
            "split": "holdout",
            "samples": 10,
            "top1": 0.9,
            "exitFractions": [0.8, 0.2],
        },
        "top1": 0.87,
        "evaluation": {
            "dataset": "f",
            "split": "test",
            "samples": 10,
            "runtime": "onnxruntime-node",
            "exitFractions": [0.7, 0.3],
            "meanMflops": 0.8,
        },
    }
    entry.update(overrides)
    return entry


def _manifest(*cascades):
    manifest = json.loads((FIXTURE_ZOO / "manifest.json").read_text())
    if cascades:
        manifest["cascades"] = list(cascades)
    return manifest


def test_python_validator_accepts_zoos_with_and_without_cascades():
    validate_manifest(_manifest())
    validate_manifest(_manifest(_cascade()))
    validate_manifest(json.loads((ROOT / "models" / "manifest.json").read_text()))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"stages": ["fixture-gray28-small", "nope"]}, "'nope' names no model"),
        ({"name": "fixture-gray28-small"}, "is also a model's name"),
        ({"thresholds": [0.5, 0.6]}, "2 stages need 1 threshold"),
        ({"stages": list(reversed(GRAY))}, "MFLOPs must increase strictly"),
        ({"worstMflops": 3.0}, "is not the stages' sum 2.2637"),
        ({"expectedMflops": 0.1}, "expectedMflops: 0.1 is outside"),
        ({"rule": "margin"}, "JSON Schema"),
        ({"thresholds": [1.5]}, "JSON Schema"),
    ],
)
def test_python_validator_refuses_bad_cascades(overrides, message):
    with pytest.raises(ManifestError, match=message.replace("(", r"\(").replace(".", r"\.")):
        validate_manifest(_manifest(_cascade(**overrides)))


def test_python_validator_refuses_another_input_contract_and_duplicates():
    mixed = _cascade(stages=["fixture-gray28-large", "fixture-rgb32"], worstMflops=5.1699, expectedMflops=3.0)
    with pytest.raises(ManifestError, match="another input contract"):
        validate_manifest(_manifest(mixed))
    with pytest.raises(ManifestError, match="duplicate cascade name"):
        validate_manifest(_manifest(_cascade(), copy.deepcopy(_cascade())))


def _with_labels(source: Path, target: Path, labels: np.ndarray) -> Path:
    raw = bytearray(source.read_bytes())
    (length,) = struct.unpack("<I", raw[8:12])
    header = json.loads(raw[12 : 12 + length])
    n, c, h, w = header["shape"]
    start = 12 + length + 4 * n * c * h * w
    raw[start : start + 4 * n] = labels.astype("<i4").tobytes()
    target.write_bytes(bytes(raw))
    return target


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed")
def test_cascades_are_picked_on_held_out_images_only(tmp_path, monkeypatch):
    """Two evaluation splits with different labels: identical picks, different measured top-1;
    the search only ever receives the held-out outputs and labels."""
    manifest = _manifest()
    models = [m for m in manifest["models"] if m["name"] in GRAY]
    from alphanet.pipeline.dataset_file import read_dataset_file

    _, _, labels = read_dataset_file(DATASET)
    labels = np.asarray(labels)
    # Held-out labels = the large member's answers, so a cascade ending in it beats the small one.
    heldout = _with_labels(DATASET, tmp_path / "heldout.azdata", labels)
    seen = []
    original = stage.pick_on_heldout

    def recording(names, mflops, probs, pick_labels, count):
        seen.append(np.asarray(pick_labels).copy())
        return original(names, mflops, probs, pick_labels, count)

    monkeypatch.setattr(stage, "pick_on_heldout", recording)
    runs = []
    for i, eval_labels in enumerate([labels, (labels + 1) % 10]):
        eval_file = _with_labels(DATASET, tmp_path / f"eval{i}.azdata", eval_labels)
        entries, details = build_cascades(
            node_zoo=FIXTURE_ZOO,
            models=models,
            heldout_file=heldout,
            heldout=SplitInfo("fixture", "holdout", len(labels)),
            eval_file=eval_file,
            evaluation=SplitInfo("fixture", "test", len(labels)),
            work_dir=tmp_path / f"work{i}",
            prefix="fixture-",
            host="test",
            latency_p50={name: 1.0 for name in GRAY},
            say=lambda line: None,
        )
        runs.append(entries)
    assert all(np.array_equal(s, labels) for s in seen) and len(seen) == 2
    picks = [[(e["stages"], e["thresholds"], e["expectedMflops"]) for e in run] for run in runs]
    assert picks[0] == picks[1]
    assert runs[0], "the fixture held-out labels make a cascade worth publishing"
    assert [e["top1"] for e in runs[0]] != [e["top1"] for e in runs[1]]
    validate_manifest(_manifest(*runs[0]))

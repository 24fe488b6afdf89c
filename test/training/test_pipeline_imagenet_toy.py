"""TOY SCALE (the slowest pipeline test, ~1-2 minutes on 2 CPU cores): the ImageNet path of the
pipeline end to end -- training/configs/pipeline/toy_imagenet.yaml, the same code as
imagenet_official.yaml -- on synthetic data:

* an official AlphaNet checkpoint synthesised in the reference layout (full ImageNet space, 1000
  classes, ``module.`` prefix, legacy serialisation) and imported through the key mapping;
* a tiny ImageFolder tree (3 classes of random RGB images) for BN calibration (training
  augmentation incl. AutoAugment) and evaluation (resize 256, centre crop 224, bicubic);
* A0 exported, validated in onnxruntime-node (output parity within 1e-4; PyTorch and ORT top-1 on
  the same toy images within 0.1 point -- the figure itself is meaningless on toy data), published
  into a temporary zoo;
* the server started on that zoo, serving and classifying an image with A0.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from alphanet.export.manifest import check_model_files, validate_manifest
from alphanet.export.official_checkpoint import reference_state_dict_from_supernet
from alphanet.models import AlphaNetSupernet, complexity
from alphanet.space import load_space
from pipeline_helpers import CONFIGS, ServerProcess, run_cli

IMAGENET = load_space("imagenet")
TOY_CONFIG = CONFIGS / "pipeline" / "toy_imagenet.yaml"
CLASSES = ("n01440764", "n01443537", "n01484850")


def _image_tree(root: Path, per_class: dict[str, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    for split, count in per_class.items():
        for name in CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                height, width = rng.integers(180, 300, size=2)
                pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{name}_{i}.png")


@pytest.fixture(scope="module")
def official_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    supernet = AlphaNetSupernet(IMAGENET)
    with torch.no_grad():
        for module in supernet.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.0)
    path = tmp_path_factory.mktemp("official") / "alphanet_pretrained.pth.tar"
    checkpoint = {"epoch": 360, "state_dict": reference_state_dict_from_supernet(supernet)}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    return path


def test_official_checkpoint_to_a_served_a0_zoo(official_checkpoint, tmp_path, capsys):
    data_root, zoo, run_dir = tmp_path / "imagenet", tmp_path / "zoo", tmp_path / "run"
    _image_tree(data_root, {"train": 2, "val": 2}, seed=0)
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"class {i}\n" for i in range(1000)))
    data = (
        f"data_overrides=[data.root={data_root}, data.num_workers=0, runtime.device=cpu, runtime.threads=1]"
    )
    code, stdout, stderr = run_cli(
        capsys, "pipeline", "--config", TOY_CONFIG, "--official", official_checkpoint,
        "--run-dir", run_dir, "--zoo-dir", zoo, data, f"zoo.labels_file={labels}",
    )  # fmt: skip
    assert code == 0, stderr
    assert json.loads(stdout)["published"] == ["toy-a0"]
    assert "importing the official AlphaNet checkpoint" in stderr

    manifest = json.loads((zoo / "manifest.json").read_text())
    validate_manifest(manifest)
    assert check_model_files(manifest, zoo) == {}
    (model,) = manifest["models"]
    assert manifest["zoo"]["source"]["checkpoint"] == "official-alphanet"
    assert model["mflops"] == pytest.approx(complexity(IMAGENET, IMAGENET.named("a0"), 1000).mflops, abs=1e-3)
    assert model["mflops"] == pytest.approx(203.39, abs=0.01)
    assert model["resolution"] == 192 and model["arch"]["space"] == "imagenet"
    assert model["input"]["size"] == 224 and model["input"]["resizeShortSide"] == 256
    assert model["input"]["interpolation"] == "bicubic" and model["input"]["channels"] == 3
    assert len(model["labels"]) == 1000 and model["labels"][7] == "class 7"
    assert model["evaluation"] == {
        "dataset": "imagenet",
        "split": "val",
        "samples": 6,
        "runtime": "onnxruntime-node",
    }
    record = json.loads((run_dir / "pipeline-report.json").read_text())["models"][0]
    assert record["ort"]["top1"] == record["pytorch"]["top1"] and record["ort"]["samples"] == 6
    assert record["parityMaxAbsDiff"] <= 1e-4
    assert record["calibration"]["images"] == 4

    server = ServerProcess(zoo, tmp_path / "server.log")
    try:
        assert server.wait_ready()["models"] == 1
        status, listing = server.get("/models")
        assert status == 200 and [m["name"] for m in listing["models"]] == ["toy-a0"]
        image = next((data_root / "val" / CLASSES[0]).iterdir()).read_bytes()
        request = urllib.request.Request(
            f"{server.base}/v1/classify?topK=3",
            data=image,
            headers={"Content-Type": "image/png"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.loads(response.read())
        assert response.status == 200
        assert body["model"]["name"] == "toy-a0"
        assert len(body["predictions"]) == 3 and body["predictions"][0]["label"].startswith("class ")
    finally:
        server.stop()

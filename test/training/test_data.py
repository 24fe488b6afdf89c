"""Data: IDX reader errors, Fashion-MNIST, ImageFolder, transforms, resumable sharded sampler."""

from __future__ import annotations

import copy
import gzip
import random
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from alphanet.data import (
    FashionMNIST,
    ImageFolder,
    ShardedEpochSampler,
    build_dataset,
    build_loader,
    build_transforms,
    read_idx,
)
from alphanet.data.splits import split_indices
from alphanet.data.transforms import RandomResizedCrop
from alphanet.engine.subnet_data import holdout_split
from alphanet.errors import UserError
from alphanet.space import load_space
from conftest import FMNIST_ROOT, fmnist_available

needs_fmnist = pytest.mark.skipif(not fmnist_available(), reason="Fashion-MNIST not installed")


def _idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_fmnist(root, n: int = 5, corrupt: str | None = None) -> None:
    images = np.arange(n * 28 * 28, dtype=np.uint64).reshape(n, 28, 28) % 256
    labels = np.arange(n) % 10
    data = {"train-images-idx3-ubyte": _idx_bytes(images), "train-labels-idx1-ubyte": _idx_bytes(labels)}
    if corrupt == "truncated":
        data["train-images-idx3-ubyte"] = data["train-images-idx3-ubyte"][:-7]
    if corrupt == "magic":
        data["train-labels-idx1-ubyte"] = b"\x00\x00\x0d\x01" + data["train-labels-idx1-ubyte"][4:]
    for name, payload in data.items():
        (root / f"{name}.gz").write_bytes(gzip.compress(payload))


def test_idx_reader_round_trip_and_raw_files(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(_idx_bytes(array))
    assert np.array_equal(read_idx(tmp_path / "a"), array)
    (tmp_path / "a.gz").write_bytes(gzip.compress(_idx_bytes(array)))
    assert np.array_equal(read_idx(tmp_path / "a.gz"), array)


def test_idx_reader_errors(tmp_path):
    with pytest.raises(UserError, match="missing dataset file"):
        read_idx(tmp_path / "nope.gz")
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match="corrupt dataset file"):
        read_idx(tmp_path / "bad.gz")
    (tmp_path / "short").write_bytes(b"\x00")
    with pytest.raises(UserError, match="only 1 bytes"):
        read_idx(tmp_path / "short")


def test_fashion_mnist_reader_with_synthetic_files(tmp_path):
    _write_fmnist(tmp_path)
    ds = FashionMNIST(tmp_path, "train")
    assert len(ds) == 5 and ds.images.shape == (5, 1, 28, 28) and ds.images.dtype == torch.uint8
    img, label = ds[3]
    assert label == 3 and img.shape == (1, 28, 28)
    assert ds.classes[0] == "T-shirt/top" and len(ds.classes) == 10
    with pytest.raises(UserError, match="missing dataset file.*t10k-images"):
        FashionMNIST(tmp_path, "test")
    with pytest.raises(UserError, match="split must be"):
        FashionMNIST(tmp_path, "val")
    with pytest.raises(UserError, match="directory not found"):
        FashionMNIST(tmp_path / "missing", "train")


@pytest.mark.parametrize("corrupt,message", [("truncated", "header says"), ("magic", "bad magic")])
def test_fashion_mnist_corrupt_files(tmp_path, corrupt, message):
    _write_fmnist(tmp_path, corrupt=corrupt)
    with pytest.raises(UserError, match=message):
        FashionMNIST(tmp_path, "train")


@needs_fmnist
def test_real_fashion_mnist_files():
    test = FashionMNIST(FMNIST_ROOT, "test")
    assert len(test) == 10000 and set(test.targets) == set(range(10))
    # The space's mean/std are those of the training images.
    train = FashionMNIST(FMNIST_ROOT, "train")
    assert len(train) == 60000
    pixels = train.images.float() / 255
    assert pixels.mean().item() == pytest.approx(0.2860, abs=1e-3)
    assert pixels.std().item() == pytest.approx(0.3530, abs=1e-3)


def test_image_folder(tmp_path):
    for cls, colour in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (tmp_path / cls).mkdir()
        for i in range(2):
            Image.new("RGB", (40, 30), colour).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "dog" / "notes.txt").write_text("ignored")
    ds = ImageFolder(tmp_path, channels=3)
    assert ds.classes == ["cat", "dog"] and len(ds) == 4 and ds.targets == [0, 0, 1, 1]
    img, label = ds[2]
    assert img.mode == "RGB" and img.size == (40, 30) and label == 1
    assert ImageFolder(tmp_path, channels=1)[0][0].mode == "L"
    (tmp_path / "cat" / "broken.png").write_bytes(b"garbage")
    broken = ImageFolder(tmp_path)
    index = [str(p) for p, _ in broken.samples].index(str(tmp_path / "cat" / "broken.png"))
    with pytest.raises(UserError, match="cannot read image"):
        broken[index]
    with pytest.raises(UserError, match="no class sub-directories"):
        ImageFolder(tmp_path / "cat")
    with pytest.raises(UserError, match="image folder not found"):
        ImageFolder(tmp_path / "nope")


def test_eval_transform_resizes_crops_and_normalises():
    data_cfg = load_space("imagenet").data
    transform = build_transforms(data_cfg, train=False)
    img = Image.new("RGB", (320, 256), (124, 116, 104))
    out = transform(img, random.Random(0))
    assert out.shape == (3, 224, 224)
    expected = (torch.tensor([124, 116, 104]) / 255 - torch.tensor(data_cfg["mean"])) / torch.tensor(
        data_cfg["std"]
    )
    torch.testing.assert_close(out[:, 100, 100], expected.float(), atol=1e-5, rtol=0)


def test_fashion_mnist_train_transform_is_pad_crop_flip_and_seeded():
    data_cfg = load_space("fashion_mnist").data
    transform = build_transforms(data_cfg, train=True)
    img = torch.arange(28 * 28, dtype=torch.int64).remainder(256).to(torch.uint8).view(1, 28, 28)
    a = transform(img, random.Random(1))
    b = transform(img, random.Random(1))
    assert a.shape == (1, 28, 28) and torch.equal(a, b)
    outs = {tuple(transform(img, random.Random(s)).flatten()[:30].tolist()) for s in range(20)}
    assert len(outs) > 5  # crops/flips differ between seeds
    # Every output is a shifted (and possibly flipped) window of the zero-padded image.
    raw = (a * 0.3530 + 0.2860) * 255
    padded = torch.nn.functional.pad(img.float(), (2, 2, 2, 2))
    windows = [padded[:, t : t + 28, s : s + 28] for t in range(5) for s in range(5)]
    windows += [w.flip(-1) for w in windows]
    assert any(torch.allclose(raw, w, atol=1e-3) for w in windows)
    eval_out = build_transforms(data_cfg, train=False)(img, random.Random(0))
    torch.testing.assert_close(eval_out, (img.float() / 255 - 0.2860) / 0.3530)


def test_random_erasing_blanks_one_rectangle_of_the_allowed_size():
    data_cfg = dict(load_space("fashion_mnist").data)
    data_cfg["train_augment"] = {
        "kind": "pad_crop",
        "padding": 0,
        "random_erasing": {"probability": 1.0, "area": [0.1, 0.2], "aspect": [0.5, 2.0], "value": 0},
    }
    transform = build_transforms(data_cfg, train=True)
    img = torch.full((1, 28, 28), 255, dtype=torch.uint8)  # far from the mean: erased pixels stand out
    for seed in range(50):
        out = transform(img, random.Random(seed))
        assert torch.equal(out, transform(img, random.Random(seed)))
        erased = (out == 0).nonzero()
        rows, cols = erased[:, 1], erased[:, 2]
        h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert len(erased) == h * w  # one solid rectangle
        assert 0.1 * 784 - 2 * 28 <= h * w <= 0.2 * 784 + 2 * 28  # area after rounding each side
        assert 0.5 / 1.6 <= h / w <= 2.0 * 1.6
    data_cfg["train_augment"]["random_erasing"].update(probability=0.5, value="random")
    transform = build_transforms(data_cfg, train=True)
    untouched = (img.float() / 255 - 0.2860) / 0.3530
    changed = [not torch.equal(transform(img, random.Random(s)), untouched) for s in range(200)]
    assert 70 <= sum(changed) <= 130  # about half
    noisy = next(transform(img, random.Random(s)) for s in range(200) if changed[s])
    assert noisy.std() > 0.1 and torch.equal(noisy, transform(img, random.Random(changed.index(True))))


@pytest.mark.parametrize(
    "erasing, message",
    [
        ([0.5], "must be a mapping"),
        ({"p": 0.5}, "unknown key"),
        ({"probability": 0}, "probability must be in"),
        ({"probability": True}, "probability must be in"),
        ({"area": [0.4, 0.1]}, "area must be"),
        ({"area": [0.1, 1.0]}, "area must be"),
        ({"aspect": [0, 2]}, "aspect must be"),
        ({"value": "noise"}, "value must be a number or 'random'"),
    ],
)
def test_random_erasing_rejects_bad_settings(erasing, message):
    data_cfg = dict(load_space("fashion_mnist").data)
    data_cfg["train_augment"] = {"kind": "pad_crop", "padding": 2, "random_erasing": erasing}
    with pytest.raises(UserError, match=message):
        build_transforms(data_cfg, train=True)


def test_imagenet_train_transform_shapes():
    data_cfg = load_space("imagenet").data
    transform = build_transforms(data_cfg, train=True)
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (180, 260, 3), dtype=np.uint8))
    for seed in range(5):
        assert transform(img, random.Random(seed)).shape == (3, 224, 224)


def test_random_resized_crop_respects_scale_and_ratio():
    crop = RandomResizedCrop(32, (0.25, 0.5), (0.75, 4 / 3), "bilinear")
    rng = random.Random(0)
    for _ in range(200):
        left, top, w, h = crop._params(200, 100, rng)
        assert 0 <= left and left + w <= 200 and 0 <= top and top + h <= 100
        assert 0.2 <= w * h / 20000 <= 0.55 and 0.7 <= w / h <= 1.4


def test_sampler_shards_like_distributed_sampler_and_reshuffles_per_epoch():
    size = 10
    shards = []
    for rank in range(3):
        sampler = ShardedEpochSampler(size, shuffle=True, seed=4, rank=rank, world_size=3)
        sampler.set_epoch(0)
        shards.append([i for i, _ in sampler])
    assert [len(s) for s in shards] == [4, 4, 4]
    flat = [i for shard in shards for i in shard]
    assert set(flat) == set(range(size))  # padded by wrapping: every sample, 2 repeated
    sampler = ShardedEpochSampler(size, shuffle=True, seed=4)
    sampler.set_epoch(0)
    epoch0 = [i for i, _ in sampler]
    sampler.set_epoch(1)
    assert [i for i, _ in sampler] != epoch0 and sorted(epoch0) == list(range(size))
    seeds = {s for _, s in ShardedEpochSampler(size, shuffle=False, seed=4)}
    assert len(seeds) == size  # one augmentation seed per sample position


def test_sampler_skip_resumes_mid_epoch():
    full = ShardedEpochSampler(20, shuffle=True, seed=1, rank=1, world_size=2)
    full.set_epoch(3)
    items = list(full)
    resumed = ShardedEpochSampler(20, shuffle=True, seed=1, rank=1, world_size=2)
    resumed.set_epoch(3)
    resumed.skip(4)
    assert len(resumed) == 6
    assert list(resumed) == items[4:]
    assert list(resumed) == items  # skip applies to one iteration only


@needs_fmnist
def test_build_loader_is_deterministic_and_resumable(tiny_cfg):
    loader = build_loader(tiny_cfg, "train")
    assert loader.dataset.classes[9] == "Ankle boot" and len(loader) == 96 // 16
    batches = [(x.clone(), y.clone()) for x, y in loader]
    assert batches[0][0].shape == (16, 1, 28, 28) and batches[0][0].dtype == torch.float32
    again = build_loader(tiny_cfg, "train")
    again.sampler.skip(2 * 16)
    for (x, y), (x2, y2) in zip(batches[2:], again):
        assert torch.equal(x, x2) and torch.equal(y, y2)
    val = build_loader(tiny_cfg, "val")
    assert sum(len(y) for _, y in val) == 100
    with pytest.raises(UserError, match="split must be"):
        build_loader(tiny_cfg, "test")


def test_auto_augment_v0_policy_and_ops():
    from alphanet.data.auto_augment import OPS, POLICY_V0, AutoAugment

    assert len(POLICY_V0) == 25 and all(len(sub) == 2 for sub in POLICY_V0)
    assert all(name in OPS and 0.0 <= p <= 1.0 and 0 <= m <= 10 for sub in POLICY_V0 for name, p, m in sub)
    rgb = Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 48, 3), dtype=np.uint8))
    gray = rgb.convert("L")
    for name, op in OPS.items():
        for img in (rgb, gray):
            out = op(img, 7.0, random.Random(0), (124, 116, 104) if img.mode == "RGB" else 124)
            assert out.size == img.size and out.mode == img.mode, name
    # Magnitude semantics of a few ops.
    flat = Image.new("L", (4, 4), 200)
    assert OPS["Invert"](flat, 0, random.Random(0), 0).getpixel((0, 0)) == 55
    assert OPS["Solarize"](flat, 5.0, random.Random(0), 0).getpixel((0, 0)) == 55  # threshold 128
    assert OPS["Solarize"](flat, 10.0, random.Random(0), 0).getpixel((0, 0)) == 200  # threshold 256
    dark = Image.new("L", (4, 4), 100)
    assert OPS["SolarizeAdd"](dark, 10.0, random.Random(0), 0).getpixel((0, 0)) == 210
    assert (
        OPS["Posterize"](Image.new("L", (2, 2), 0b10110111), 5.0, random.Random(0), 0).getpixel((0, 0))
        == 0b10000000
    )
    # The same rng gives the same augmented image; different seeds differ.
    aug = AutoAugment("v0")
    a = np.asarray(aug(rgb, random.Random(3)))
    assert np.array_equal(a, np.asarray(aug(rgb, random.Random(3))))
    assert any(not np.array_equal(a, np.asarray(aug(rgb, random.Random(s)))) for s in range(4, 12))
    with pytest.raises(ValueError, match="unknown AutoAugment policy"):
        AutoAugment("v9")
    with pytest.raises(TypeError, match="PIL images"):
        aug(torch.zeros(1, 4, 4, dtype=torch.uint8), random.Random(0))


def test_split_indices_are_disjoint_cover_and_seeded():
    kept, held = split_indices(1000, 100, seed=7)
    assert len(held) == 100 and len(kept) == 900
    assert not set(kept) & set(held) and sorted(kept + held) == list(range(1000))
    assert split_indices(1000, 100, seed=7) == (kept, held)
    assert split_indices(1000, 100, seed=8)[1] != held
    for bad in (0, 1000, -3):
        with pytest.raises(UserError, match="holdout size"):
            split_indices(1000, bad, seed=0)


@needs_fmnist
def test_training_split_excludes_the_held_out_images(tiny_cfg):
    cfg = copy.deepcopy(tiny_cfg)
    cfg["data"].update({"holdout_size": 32, "holdout_seed": 3})
    train, held = build_dataset(cfg, "train"), build_dataset(cfg, "holdout")
    assert len(train) == 96 - 32 and len(held) == 32
    # disjoint by content as well as by index: no held-out image is a training image
    train_images = {bytes(train[i][0].numpy()) for i in range(len(train))}
    assert all(bytes(held[i][0].numpy()) not in train_images for i in range(len(held)))
    # the trainer's loader and the search's fitness see the same two parts
    pool, held_out, never_trained_on = holdout_split(cfg, holdout_size=10, seed=0)
    assert never_trained_on and pool.indices == train.indices and held_out.indices == held.indices
    # without a training held-out split, the search carves its own from images the supernet saw
    cfg["data"]["holdout_size"] = 0
    pool, held_out, never_trained_on = holdout_split(cfg, holdout_size=10, seed=0)
    assert not never_trained_on and len(pool) == 86 and len(held_out) == 10
    with pytest.raises(UserError, match="holdout_size > 0"):
        build_dataset(cfg, "holdout")
    assert len(build_dataset(cfg, "train")) == 96


@needs_fmnist
def test_trainer_validates_on_the_held_out_split(tiny_cfg, tmp_path):
    from alphanet.engine.trainer import SandwichTrainer

    cfg = copy.deepcopy(tiny_cfg)
    cfg["data"].update({"holdout_size": 32, "max_val_samples": 50})
    trainer = SandwichTrainer(cfg, tmp_path / "run", progress=False)
    assert trainer.val_split == "holdout" and len(trainer.val_loader.dataset) == 32
    assert len(trainer.train_loader.dataset) == 64


def test_loader_workers_never_exceed_the_cores(monkeypatch, caplog):
    from alphanet.data import loader

    monkeypatch.setattr(loader.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert loader.loader_workers(0) == 0 and loader.loader_workers(2) == 2
    with caplog.at_level("WARNING"):
        assert loader.loader_workers(8) == 2
    assert "data.num_workers=8 exceeds the 2 cores available: using 2" in caplog.text
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # two training processes share the node's cores
    assert loader.loader_workers(8) == 1

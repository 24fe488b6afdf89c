"""Train / eval transforms, configured by a space's ``data`` block.

Every transform is called as ``t(img, rng)`` with an explicit `random.Random`: the sampler hands
each sample its own seed (derived from run seed, epoch and position), so augmentation does not
depend on worker count or process state, and a resumed run sees exactly the same images.
Images are PIL images (ImageFolder) or uint8 tensors ``[C, H, W]`` (Fashion-MNIST); the output is a
normalised float tensor ``[C, size, size]``.

Eval: resize the short side to ``resize_short_side`` (``interpolation``), centre-crop
``input_size``, normalise -- exactly what the zoo manifest tells the server to do.
Train (``train_augment.kind``):
* ``pad_crop``: zero-pad by ``padding`` then random ``input_size`` crop, optional horizontal flip;
* ``random_resized_crop``: RandomResizedCrop(``scale``, ``ratio``, ``interpolation``), optional
  horizontal flip, optional AutoAugment (``auto_augment: v0``, the reference's policy).
Either may add ``random_erasing`` (Zhong et al., 2017), applied to the normalised tensor:
``{probability, area: [min, max] fraction of the image, aspect: [min, max] width/height,
value: <number> | random}``
(``value: 0`` erases to the dataset mean; ``random`` to standard-normal noise, as the paper).
"""

from __future__ import annotations

import math
import random
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import UserError

Img = Image.Image | torch.Tensor
_PIL_INTERP = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def _size(img: Img) -> tuple[int, int]:
    """(width, height)."""
    if isinstance(img, torch.Tensor):
        return img.shape[-1], img.shape[-2]
    return img.size


def _crop(img: Img, left: int, top: int, width: int, height: int) -> Img:
    if isinstance(img, torch.Tensor):
        return img[..., top : top + height, left : left + width]
    return img.crop((left, top, left + width, top + height))


def _resize(img: Img, width: int, height: int, interpolation: str) -> Img:
    if _size(img) == (width, height):
        return img
    if isinstance(img, torch.Tensor):
        dtype = img.dtype
        out = F.interpolate(
            img.unsqueeze(0).float(),
            size=(height, width),
            mode=interpolation,
            align_corners=False if interpolation != "nearest" else None,
        )[0]
        if dtype == torch.uint8:
            out = out.round_().clamp_(0, 255).to(torch.uint8)
        return out
    return img.resize((width, height), _PIL_INTERP[interpolation])


def _hflip(img: Img) -> Img:
    if isinstance(img, torch.Tensor):
        return img.flip(-1)
    return img.transpose(Image.FLIP_LEFT_RIGHT)


class Compose:
    def __init__(self, steps: Sequence[Callable[[Img, random.Random], Img]]):
        self.steps = list(steps)

    def __call__(self, img: Img, rng: random.Random) -> torch.Tensor:
        for step in self.steps:
            img = step(img, rng)
        return img


class ResizeShortSide:
    def __init__(self, size: int, interpolation: str):
        self.size, self.interpolation = size, interpolation

    def __call__(self, img: Img, rng: random.Random) -> Img:
        w, h = _size(img)
        if min(w, h) == self.size:
            return img
        if w <= h:
            new_w, new_h = self.size, int(round(h * self.size / w))
        else:
            new_w, new_h = int(round(w * self.size / h)), self.size
        return _resize(img, new_w, new_h, self.interpolation)


class CenterCrop:
    def __init__(self, size: int):
        self.size = size

    def __call__(self, img: Img, rng: random.Random) -> Img:
        w, h = _size(img)
        if w < self.size or h < self.size:
            raise ValueError(f"centre crop {self.size} larger than image {w}x{h}")
        return _crop(
            img, int(round((w - self.size) / 2)), int(round((h - self.size) / 2)), self.size, self.size
        )


class PadRandomCrop:
    """Zero-pad every side by ``padding``, then crop ``size`` at a random offset."""

    def __init__(self, size: int, padding: int):
        self.size, self.padding = size, padding

    def __call__(self, img: Img, rng: random.Random) -> Img:
        p = self.padding
        if isinstance(img, torch.Tensor):
            img = F.pad(img, (p, p, p, p))
        else:
            w, h = img.size
            canvas = Image.new(img.mode, (w + 2 * p, h + 2 * p))
            canvas.paste(img, (p, p))
            img = canvas
        w, h = _size(img)
        left, top = rng.randint(0, w - self.size), rng.randint(0, h - self.size)
        return _crop(img, left, top, self.size, self.size)


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, img: Img, rng: random.Random) -> Img:
        return _hflip(img) if rng.random() < self.p else img


def _random_box(
    width: int,
    height: int,
    area: Sequence[float],
    aspect: Sequence[float],
    max_w: int,
    max_h: int,
    rng: random.Random,
) -> tuple[int, int, int, int] | None:
    """A random (left, top, w, h) box of ``width * height * uniform(area)`` pixels and a log-uniform
    aspect ratio w/h in ``aspect``, at most ``max_w`` x ``max_h``; None after 10 draws that do not fit
    (torchvision's rule, shared by RandomResizedCrop and RandomErasing)."""
    log_aspect = (math.log(aspect[0]), math.log(aspect[1]))
    for _ in range(10):
        target_area = width * height * rng.uniform(*area)
        ratio = math.exp(rng.uniform(*log_aspect))
        w = int(round(math.sqrt(target_area * ratio)))
        h = int(round(math.sqrt(target_area / ratio)))
        if 0 < w <= max_w and 0 < h <= max_h:
            return rng.randint(0, width - w), rng.randint(0, height - h), w, h
    return None


class RandomResizedCrop:
    """Crop a random area fraction ``scale`` and aspect ``ratio``, resize to ``size`` (torchvision rule)."""

    def __init__(self, size: int, scale: Sequence[float], ratio: Sequence[float], interpolation: str):
        self.size, self.scale, self.ratio, self.interpolation = (
            size,
            tuple(scale),
            tuple(ratio),
            interpolation,
        )

    def _params(self, width: int, height: int, rng: random.Random) -> tuple[int, int, int, int]:
        box = _random_box(width, height, self.scale, self.ratio, width, height, rng)
        if box is not None:
            return box
        # Fallback: the whole image, trimmed to the nearest allowed aspect ratio, centred.
        in_ratio = width / height
        if in_ratio < min(self.ratio):
            w, h = width, int(round(width / min(self.ratio)))
        elif in_ratio > max(self.ratio):
            w, h = int(round(height * max(self.ratio))), height
        else:
            w, h = width, height
        return (width - w) // 2, (height - h) // 2, w, h

    def __call__(self, img: Img, rng: random.Random) -> Img:
        left, top, w, h = self._params(*_size(img), rng)
        return _resize(_crop(img, left, top, w, h), self.size, self.size, self.interpolation)


class ToTensorNormalize:
    """uint8 PIL/tensor -> float tensor [C, H, W] in [0, 1], then (x - mean) / std per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, img: Img, rng: random.Random) -> torch.Tensor:
        if isinstance(img, torch.Tensor):
            x = img.float() / 255.0 if img.dtype == torch.uint8 else img.float()
        else:
            arr = np.asarray(img, dtype=np.uint8)
            arr = arr[:, :, None] if arr.ndim == 2 else arr
            x = torch.from_numpy(arr.transpose(2, 0, 1).copy()).float() / 255.0
        if x.shape[0] != self.mean.shape[0]:
            raise ValueError(f"image has {x.shape[0]} channels, normalisation expects {self.mean.shape[0]}")
        return (x - self.mean) / self.std


class RandomErasing:
    """With ``probability``, replace one random rectangle of the normalised tensor by ``value``.

    The rectangle covers an area fraction drawn from ``area`` with an aspect ratio (width/height)
    log-uniform in ``aspect``, smaller than the image on both sides; a draw that does not fit is
    retried (10 tries, then the image is left as is, as torchvision does).
    """

    def __init__(
        self,
        probability: float,
        area: Sequence[float],
        aspect: Sequence[float],
        value: float | str,
    ):
        self.probability, self.area, self.aspect, self.value = probability, tuple(area), tuple(aspect), value

    def __call__(self, x: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if rng.random() >= self.probability:
            return x
        channels, height, width = x.shape
        box = _random_box(width, height, self.area, self.aspect, width - 1, height - 1, rng)
        if box is None:
            return x
        left, top, w, h = box
        x = x.clone()
        if self.value == "random":
            noise = torch.Generator().manual_seed(rng.getrandbits(63))
            x[:, top : top + h, left : left + w] = torch.randn(channels, h, w, generator=noise)
        else:
            x[:, top : top + h, left : left + w] = float(self.value)
        return x


def _random_erasing(cfg: Any) -> RandomErasing:
    """Validated `RandomErasing` from a ``train_augment.random_erasing`` block."""
    where = "train_augment.random_erasing"
    if not isinstance(cfg, dict):
        raise UserError(f"{where} must be a mapping (probability, area, aspect, value), got {cfg!r}")
    unknown = set(cfg) - {"probability", "area", "aspect", "value"}
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    probability = cfg.get("probability", 0.5)
    if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0 < probability <= 1:
        raise UserError(f"{where}.probability must be in (0, 1], got {probability!r}")

    def pair(key: str, default: tuple[float, float], upper: float | None) -> tuple[float, float]:
        value = cfg.get(key, default)
        ok = (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in value)
            and value[0] <= value[1]
            and (upper is None or value[1] < upper)
        )
        if not ok:
            bound = f", below {upper}" if upper is not None else ""
            raise UserError(f"{where}.{key} must be [min, max] with 0 < min <= max{bound}, got {value!r}")
        return float(value[0]), float(value[1])

    value = cfg.get("value", 0)
    if value != "random" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise UserError(f"{where}.value must be a number or 'random', got {value!r}")
    return RandomErasing(probability, pair("area", (0.02, 0.4), 1.0), pair("aspect", (0.3, 3.3), None), value)


def _interp(name: Any, where: str) -> str:
    if name not in _PIL_INTERP:
        raise UserError(f"{where} must be one of {', '.join(_PIL_INTERP)}, got {name!r}")
    return name


def build_transforms(data_cfg: dict[str, Any], train: bool) -> Compose:
    """Transforms for a space's ``data`` block (see module docstring)."""
    size = int(data_cfg["input_size"])
    normalize = ToTensorNormalize(data_cfg["mean"], data_cfg["std"])
    if not train:
        interpolation = _interp(data_cfg["interpolation"], "data.interpolation")
        return Compose(
            [ResizeShortSide(int(data_cfg["resize_short_side"]), interpolation), CenterCrop(size), normalize]
        )
    aug = data_cfg.get("train_augment") or {"kind": "none"}
    kind = aug.get("kind")
    steps: list[Callable[[Img, random.Random], Img]] = []
    if kind == "pad_crop":
        steps.append(PadRandomCrop(size, int(aug.get("padding", 0))))
    elif kind == "random_resized_crop":
        steps.append(
            RandomResizedCrop(
                size,
                aug.get("scale", (0.08, 1.0)),
                aug.get("ratio", (3 / 4, 4 / 3)),
                _interp(aug.get("interpolation", "bicubic"), "train_augment.interpolation"),
            )
        )
    elif kind == "none":
        interpolation = _interp(data_cfg["interpolation"], "data.interpolation")
        steps += [ResizeShortSide(int(data_cfg["resize_short_side"]), interpolation), CenterCrop(size)]
    else:
        raise UserError(f"train_augment.kind must be pad_crop, random_resized_crop or none, got {kind!r}")
    if aug.get("horizontal_flip", False):
        steps.append(RandomHorizontalFlip())
    policy = aug.get("auto_augment")
    if policy:
        from .auto_augment import AutoAugment

        steps.append(AutoAugment(policy, fill=tuple(int(round(m * 255)) for m in data_cfg["mean"])))
    steps.append(normalize)
    if aug.get("random_erasing") is not None:
        steps.append(_random_erasing(aug["random_erasing"]))
    return Compose(steps)

"""AutoAugment with the EfficientNet (TPU) ImageNet policy "v0", as the reference trains ImageNet.

One of the 25 two-op sub-policies is chosen uniformly per image; each op runs with its own
probability. Magnitudes (0..10) get Gaussian noise (std 0.5) and are clipped to [0, 10]; geometric
ops pick a random sign and a random resampling filter (nearest / bilinear / bicubic) and fill
uncovered pixels with the dataset mean colour. Magnitude-to-argument mappings follow the TPU
EfficientNet definitions (rotate up to 30 degrees, shear up to 0.3, relative translate up to 0.45
of the image size, enhance factors 0.1..1.9, posterize keeps 0..4 bits, solarize threshold
0..256, solarize-add up to 110 below 128).
"""

from __future__ import annotations

import random
from typing import Callable

from PIL import Image, ImageOps
from PIL import ImageEnhance

MAX_LEVEL = 10.0
MAGNITUDE_STD = 0.5
_RESAMPLE = (Image.NEAREST, Image.BILINEAR, Image.BICUBIC)

# (op, probability, magnitude) pairs of the "v0" policy.
POLICY_V0: tuple[tuple[tuple[str, float, int], tuple[str, float, int]], ...] = (
    (("Equalize", 0.8, 1), ("ShearY", 0.8, 4)),
    (("Color", 0.4, 9), ("Equalize", 0.6, 3)),
    (("Color", 0.4, 1), ("Rotate", 0.6, 8)),
    (("Solarize", 0.8, 3), ("Equalize", 0.4, 7)),
    (("Solarize", 0.4, 2), ("Solarize", 0.6, 2)),
    (("Color", 0.2, 0), ("Equalize", 0.8, 8)),
    (("Equalize", 0.4, 8), ("SolarizeAdd", 0.8, 3)),
    (("ShearX", 0.2, 9), ("Rotate", 0.6, 8)),
    (("Color", 0.6, 1), ("Equalize", 1.0, 2)),
    (("Invert", 0.4, 9), ("Rotate", 0.6, 0)),
    (("Equalize", 1.0, 9), ("ShearY", 0.6, 3)),
    (("Color", 0.4, 7), ("Equalize", 0.6, 0)),
    (("Posterize", 0.4, 6), ("AutoContrast", 0.4, 7)),
    (("Solarize", 0.6, 8), ("Color", 0.6, 9)),
    (("Solarize", 0.2, 4), ("Rotate", 0.8, 9)),
    (("Rotate", 1.0, 7), ("TranslateYRel", 0.8, 9)),
    (("ShearX", 0.0, 0), ("Solarize", 0.8, 4)),
    (("ShearY", 0.8, 0), ("Color", 0.6, 4)),
    (("Color", 1.0, 0), ("Rotate", 0.6, 2)),
    (("Equalize", 0.8, 4), ("Equalize", 0.0, 8)),
    (("Equalize", 1.0, 4), ("AutoContrast", 0.6, 2)),
    (("ShearY", 0.4, 7), ("SolarizeAdd", 0.6, 7)),
    (("Posterize", 0.8, 2), ("Solarize", 0.6, 10)),
    (("Solarize", 0.6, 8), ("Equalize", 0.6, 1)),
    (("Color", 0.8, 6), ("Rotate", 0.4, 5)),
)
POLICIES = {"v0": POLICY_V0}


def _signed(value: float, rng: random.Random) -> float:
    return -value if rng.random() < 0.5 else value


def _affine(img: Image.Image, matrix: tuple, rng: random.Random, fill: tuple) -> Image.Image:
    return img.transform(img.size, Image.AFFINE, matrix, resample=rng.choice(_RESAMPLE), fillcolor=fill)


def _shear_x(img, level, rng, fill):
    return _affine(img, (1, _signed(level / MAX_LEVEL * 0.3, rng), 0, 0, 1, 0), rng, fill)


def _shear_y(img, level, rng, fill):
    return _affine(img, (1, 0, 0, _signed(level / MAX_LEVEL * 0.3, rng), 1, 0), rng, fill)


def _translate_x_rel(img, level, rng, fill):
    pixels = _signed(level / MAX_LEVEL * 0.45, rng) * img.size[0]
    return _affine(img, (1, 0, pixels, 0, 1, 0), rng, fill)


def _translate_y_rel(img, level, rng, fill):
    pixels = _signed(level / MAX_LEVEL * 0.45, rng) * img.size[1]
    return _affine(img, (1, 0, 0, 0, 1, pixels), rng, fill)


def _rotate(img, level, rng, fill):
    return img.rotate(_signed(level / MAX_LEVEL * 30.0, rng), resample=rng.choice(_RESAMPLE), fillcolor=fill)


def _enhance(kind) -> Callable:
    def apply(img, level, rng, fill):
        return kind(img).enhance(level / MAX_LEVEL * 1.8 + 0.1)

    return apply


def _posterize(img, level, rng, fill):
    bits = int(level / MAX_LEVEL * 4)
    return img if bits >= 8 else ImageOps.posterize(img, bits)


def _solarize(img, level, rng, fill):
    return ImageOps.solarize(img, int(level / MAX_LEVEL * 256))


def _solarize_add(img, level, rng, fill, threshold: int = 128):
    add = int(level / MAX_LEVEL * 110)
    table = [min(255, v + add) if v < threshold else v for v in range(256)]
    return img.point(table * len(img.getbands()))


OPS: dict[str, Callable] = {
    "ShearX": _shear_x,
    "ShearY": _shear_y,
    "TranslateXRel": _translate_x_rel,
    "TranslateYRel": _translate_y_rel,
    "Rotate": _rotate,
    "Color": _enhance(ImageEnhance.Color),
    "Contrast": _enhance(ImageEnhance.Contrast),
    "Brightness": _enhance(ImageEnhance.Brightness),
    "Sharpness": _enhance(ImageEnhance.Sharpness),
    "Posterize": _posterize,
    "Solarize": _solarize,
    "SolarizeAdd": _solarize_add,
    "AutoContrast": lambda img, level, rng, fill: ImageOps.autocontrast(img),
    "Equalize": lambda img, level, rng, fill: ImageOps.equalize(img),
    "Invert": lambda img, level, rng, fill: ImageOps.invert(img),
}


class AutoAugment:
    """``t(img, rng)`` on PIL images; ``fill`` is the mean colour (0..255) per channel."""

    def __init__(self, policy: str, fill: tuple[int, ...] = (124, 116, 104)):
        if policy not in POLICIES:
            raise ValueError(f"unknown AutoAugment policy '{policy}' (known: {', '.join(POLICIES)})")
        self.policy = POLICIES[policy]
        self.fill = tuple(fill)

    def __call__(self, img: Image.Image, rng: random.Random) -> Image.Image:
        if not isinstance(img, Image.Image):
            raise TypeError("AutoAugment works on PIL images (image-folder datasets)")
        fill = self.fill if len(img.getbands()) == len(self.fill) else self.fill[0]
        for name, probability, magnitude in rng.choice(self.policy):
            if rng.random() > probability:
                continue
            level = min(MAX_LEVEL, max(0.0, rng.gauss(magnitude, MAGNITUDE_STD)))
            img = OPS[name](img, level, rng, fill)
        return img

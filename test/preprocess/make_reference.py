"""Reference tensors for the server's image preprocessing, computed with Pillow + numpy.

Run from the repository root (writes test/preprocess/golden/, which is committed):

    /usr/bin/python3 test/preprocess/make_reference.py           # write the goldens
    /usr/bin/python3 test/preprocess/make_reference.py --check   # recompute, compare, write nothing

Why Pillow is the reference: the published accuracy of every zoo model was measured with the
evaluation transforms of training/alphanet/data/transforms.py, which resize PIL images with
Image.resize. The server reimplements Pillow's 8-bit resampling (server/preprocess/resample.ts)
instead of using libvips' resize, so the tensors it builds should equal Pillow's, not approximate
them -- which is why the TypeScript test can demand a max abs difference of 1e-3 for every case,
including bilinear/bicubic down- and up-scaling and nearest-neighbour, rather than only for
crop-only cases. This script is written independently of the TypeScript code, from the
documented semantics:

1. decode the first frame, apply the EXIF orientation (ImageOps.exif_transpose);
2. composite any alpha onto black as floor(colour * alpha / 255) -- the server's documented matte
   (libvips' flatten truncates);
3. grey models: Pillow convert("L") (ITU-R 601-2 luma);
4. the evaluation's ResizeShortSide: untouched if the shorter side already has the target length,
   else shorter side -> target and longer side -> round(long * target / short) (Python round);
5. CenterCrop: offsets round((extent - size) / 2);
6. ToTensor + Normalize in float32: (x / 255 - mean) / std, layout [1, C, H, W].

When the training package is importable, each reference is also checked against its own
evaluation transform (build_transforms(..., train=False)) applied to the decoded image, so the
goldens cannot drift from what evaluation does.

AVIF: Pillow 9 cannot decode it; photo.avif is a lossless encoding of avif-source.png, so that
case reads the PNG (the TypeScript test verifies the two decode to identical pixels).

It also writes golden/resample.{json,bin}: seeded random 8-bit images (grey and RGB) resized by
Pillow with each interpolation at scale factors from 1/20 to 15 (including 1-pixel sides), input
and output bytes, for a direct test of the resampler against Image.resize.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
IMAGES = ROOT / "test" / "fixtures" / "images"
GOLDEN = HERE / "golden"
RESAMPLE = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def case_name(case: dict) -> str:
    return f"{Path(case['image']).name.replace('.', '-')}--{case['contract']}"


def decode(path: Path) -> Image.Image:
    """First frame, upright, alpha composited onto black, as 8-bit RGB."""
    with Image.open(path) as opened:
        opened.seek(0)
        image = ImageOps.exif_transpose(opened)
        image.load()
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    rgba = np.asarray(image.convert("RGBA"), dtype=np.uint32)
    matted = (rgba[..., :3] * rgba[..., 3:4]) // 255
    return Image.fromarray(matted.astype(np.uint8), "RGB")


def resize_short_side(image: Image.Image, target: int, interpolation: str) -> Image.Image:
    width, height = image.size
    if min(width, height) == target:
        return image
    if width <= height:
        size = (target, int(round(height * target / width)))
    else:
        size = (int(round(width * target / height)), target)
    return image.resize(size, RESAMPLE[interpolation])


def center_crop(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    left = int(round((width - size) / 2))
    top = int(round((height - size) / 2))
    return image.crop((left, top, left + size, top + size))


def to_tensor(image: Image.Image, mean: list[float], std: list[float]) -> np.ndarray:
    pixels = np.asarray(image, dtype=np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    x = pixels.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)
    m = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
    return ((x - m) / s)[None].astype(np.float32)


def reference(decoded: Image.Image, contract: dict) -> np.ndarray:
    image = decoded.convert("L") if contract["channels"] == 1 else decoded
    image = resize_short_side(image, contract["resizeShortSide"], contract["interpolation"])
    image = center_crop(image, contract["size"])
    return to_tensor(image, contract["mean"], contract["std"])


def evaluation_transform(contract: dict):
    """The training package's eval transform for this contract, or None if it cannot be imported."""
    sys.path.insert(0, str(ROOT / "training"))
    try:
        from alphanet.data.transforms import build_transforms
    except ImportError:
        return None
    data_cfg = {
        "input_size": contract["size"],
        "mean": contract["mean"],
        "std": contract["std"],
        "resize_short_side": contract["resizeShortSide"],
        "interpolation": contract["interpolation"],
    }
    return build_transforms(data_cfg, train=False)


def compute(spec: dict) -> tuple[dict[str, np.ndarray], list[str]]:
    tensors: dict[str, np.ndarray] = {}
    notes: list[str] = []
    for case in spec["cases"]:
        contract = spec["contracts"][case["contract"]]
        decoded = decode(IMAGES / case.get("reference", case["image"]))
        tensor = reference(decoded, contract)
        expected_shape = (1, contract["channels"], contract["size"], contract["size"])
        if tensor.shape != expected_shape:
            raise SystemExit(f"{case_name(case)}: shape {tensor.shape}, expected {expected_shape}")
        transform = evaluation_transform(contract)
        if transform is not None:
            source = decoded.convert("L") if contract["channels"] == 1 else decoded
            evaluated = transform(source, random.Random(0)).numpy()[None]
            diff = float(np.abs(evaluated - tensor).max())
            if diff > 1e-6:
                raise SystemExit(f"{case_name(case)}: differs from the evaluation transform by {diff}")
            notes.append(f"{case_name(case)}: equals the evaluation transform (max diff {diff:.1e})")
        tensors[case_name(case)] = tensor
    return tensors, notes


# (width, height, out_width, out_height): down, up, mixed, extreme and 1-pixel cases.
RESAMPLE_SIZES = [
    (40, 30, 20, 15),
    (37, 29, 16, 12),
    (61, 23, 5, 3),
    (200, 3, 10, 1),
    (9, 7, 41, 33),
    (3, 2, 45, 20),
    (1, 1, 7, 5),
    (33, 47, 47, 33),
    (32, 32, 31, 33),
    (25, 31, 24, 32),
]


def resample_cases() -> tuple[list[dict], bytes]:
    """Random images resized by Pillow: metadata and one blob of input + output bytes."""
    blob = bytearray()
    cases = []
    seed = 0
    for width, height, out_w, out_h in RESAMPLE_SIZES:
        for interpolation in RESAMPLE:
            for channels in (1, 3):
                seed += 1
                shape = (height, width) if channels == 1 else (height, width, 3)
                pixels = np.random.RandomState(seed).randint(0, 256, size=shape, dtype=np.uint8)
                image = Image.fromarray(pixels, "L" if channels == 1 else "RGB")
                out = np.asarray(image.resize((out_w, out_h), RESAMPLE[interpolation]), dtype=np.uint8)
                case = {"width": width, "height": height, "channels": channels}
                case.update({"outWidth": out_w, "outHeight": out_h, "interpolation": interpolation})
                case.update({"inputOffset": len(blob), "outputOffset": len(blob) + pixels.nbytes})
                blob += pixels.tobytes() + out.tobytes()
                cases.append(case)
    return cases, bytes(blob)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed goldens")
    args = parser.parse_args()
    spec = json.loads((HERE / "cases.json").read_text())
    tensors, notes = compute(spec)
    for note in notes:
        print(note)
    index = {
        name: {"file": f"{name}.bin", "shape": list(t.shape), "dtype": "float32", "byteOrder": "little"}
        for name, t in tensors.items()
    }
    resample_index, resample_blob = resample_cases()
    resample_json = json.dumps({"cases": resample_index}, indent=1) + "\n"
    if args.check:
        # Compared as data: the JSON files may be re-indented by the repository's formatter.
        resample_current = json.loads((GOLDEN / "resample.json").read_text()) == {"cases": resample_index}
        if not resample_current or (GOLDEN / "resample.bin").read_bytes() != resample_blob:
            print("stale goldens: resample.json / resample.bin", file=sys.stderr)
            return 1
        committed = json.loads((GOLDEN / "index.json").read_text())
        stale = [n for n in tensors if committed.get(n) != index[n]]
        for name, tensor in tensors.items():
            path = GOLDEN / index[name]["file"]
            if name not in stale and (
                not path.exists() or path.read_bytes() != tensor.astype("<f4").tobytes()
            ):
                stale.append(name)
        stale += [n for n in committed if n not in tensors]
        if stale:
            print(f"stale goldens: {', '.join(sorted(stale))}", file=sys.stderr)
            return 1
        print(f"{len(tensors)} goldens are current")
        return 0
    GOLDEN.mkdir(exist_ok=True)
    for old in GOLDEN.glob("*.bin"):
        old.unlink()
    for name, tensor in tensors.items():
        (GOLDEN / index[name]["file"]).write_bytes(tensor.astype("<f4").tobytes())
    (GOLDEN / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    (GOLDEN / "resample.json").write_text(resample_json)
    (GOLDEN / "resample.bin").write_bytes(resample_blob)
    print(f"wrote {len(tensors)} goldens to {GOLDEN.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

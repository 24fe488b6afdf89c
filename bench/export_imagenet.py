"""Export full-size ImageNet AlphaNet architectures (random weights) as a zoo, for serving benchmarks.

The benchmark needs the real compute of AlphaNet-A0/A4/A6 (203–709 MFLOPs, 224 px input resized
in the graph to 192/256/288), not their accuracy, so the networks are built from the ImageNet
search space with randomly initialised weights — no data and no checkpoint — and exported with the
training package's own exporter (BN folded, dynamic batch, verified graph). Their manifest entries
carry the reference's published ImageNet top-1 (77.87 / 80.01 / 80.78 %) so that load-aware
selection sees the family's real accuracy ordering; ``evaluation.dataset`` says these are published
figures, not measured on these weights. Files are written once and reused (bench/.cache/).

Usage (from the repository root):
    /usr/bin/python3 bench/export_imagenet.py --out-dir bench/.cache/imagenet-zoo [--archs a0,a4,a6]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "training"))

import torch  # noqa: E402

from alphanet.export.manifest import build_manifest, build_model_entry, write_manifest  # noqa: E402
from alphanet.export.onnx import DEFAULT_OPSET, export_onnx  # noqa: E402
from alphanet.models import StaticAlphaNet, complexity  # noqa: E402
from alphanet.space import load_space  # noqa: E402

# Published ImageNet top-1 of the reference's models (facebookresearch/AlphaNet README).
PUBLISHED_TOP1 = {
    "a0": 0.7787,
    "a1": 0.7894,
    "a2": 0.7920,
    "a3": 0.7979,
    "a4": 0.8001,
    "a5": 0.8029,
    "a6": 0.8078,
}
SEED = 20261128


def export(out_dir: Path, archs: list[str]) -> Path:
    space = load_space("imagenet")
    data = space.data
    labels = [f"class_{i:03d}" for i in range(space.num_classes)]
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for label in archs:
        if label not in PUBLISHED_TOP1:
            raise SystemExit(f"unknown arch '{label}' (choose from {', '.join(PUBLISHED_TOP1)})")
        name = f"alphanet-{label}"
        path = out_dir / f"{name}.onnx"
        arch = space.named(label)
        if not path.exists():
            torch.manual_seed(SEED)
            net = StaticAlphaNet(space, arch).eval()
            print(f"exporting {name} ({arch.resolution} px) -> {path}", flush=True)
            export_onnx(
                net, path, channels=space.in_channels, size=int(data["input_size"]), opset=DEFAULT_OPSET
            )
        cx = complexity(space, arch, space.num_classes)
        entries.append(
            build_model_entry(
                name=name,
                onnx_file=path,
                mflops=cx.mflops,
                params=cx.params,
                data=data,
                resolution=arch.resolution,
                labels=labels,
                space_name=space.name,
                arch=arch,
                opset=DEFAULT_OPSET,
                top1=PUBLISHED_TOP1[label],
                evaluation={
                    "dataset": "imagenet (published reference top-1; these weights are random)",
                    "split": "val",
                    "samples": 50000,
                },
            )
        )
    manifest = build_manifest(
        zoo_name="alphanet-imagenet-bench",
        description="Full-size AlphaNet architectures with random weights, for serving benchmarks only.",
        models=entries,
        source={"space": "imagenet", "checkpoint": "random-init", "seed": SEED},
        default_model=entries[-1]["name"],
    )
    manifest_path = out_dir / "manifest.json"
    write_manifest(manifest_path, manifest)
    print(json.dumps({"zoo": str(out_dir), "models": [e["name"] for e in entries]}))
    return manifest_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / ".cache" / "imagenet-zoo")
    parser.add_argument("--archs", default="a0,a4,a6", help="comma-separated named archs (default a0,a4,a6)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    export(args.out_dir, [a.strip() for a in args.archs.split(",") if a.strip()])


if __name__ == "__main__":
    main()

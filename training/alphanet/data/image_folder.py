"""A labelled image tree: ``root/<class name>/<image>``; classes sorted by name are labels 0..K-1."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ..errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class ImageFolder(Dataset):
    """PIL images converted to RGB (3 channels) or luminance (1 channel), with integer labels."""

    def __init__(self, root: str | Path, channels: int = 3):
        root = Path(root)
        if not root.is_dir():
            raise UserError(f"image folder not found: {root}")
        if channels not in (1, 3):
            raise UserError(f"image folder: channels must be 1 or 3, got {channels}")
        self.root = root
        self.mode = "RGB" if channels == 3 else "L"
        self.classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not self.classes:
            raise UserError(f"image folder {root} has no class sub-directories")
        self.samples: list[tuple[Path, int]] = []
        for label, name in enumerate(self.classes):
            files = sorted(
                p for p in (root / name).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
            )
            self.samples += [(p, label) for p in files]
        if not self.samples:
            raise UserError(f"image folder {root} contains no images ({', '.join(IMAGE_EXTENSIONS)})")
        self.targets = [label for _, label in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Image.Image, int]:
        path, label = self.samples[index]
        try:
            with Image.open(path) as img:
                return img.convert(self.mode), label
        except (OSError, UnidentifiedImageError) as exc:
            raise UserError(f"cannot read image {path}: {exc}") from None

"""Datasets (Fashion-MNIST IDX, ImageFolder), transforms and resumable sharded loaders."""

from .fashion_mnist import FashionMNIST, read_idx
from .image_folder import ImageFolder
from .loader import TransformedDataset, build_dataset, build_loader
from .sampler import ShardedEpochSampler
from .transforms import build_transforms

__all__ = [
    "FashionMNIST",
    "ImageFolder",
    "ShardedEpochSampler",
    "TransformedDataset",
    "build_dataset",
    "build_loader",
    "build_transforms",
    "read_idx",
]

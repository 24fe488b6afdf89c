"""Supernet (weight-sharing, dynamic) and static (plain, exportable) AlphaNet models."""

from .complexity import Complexity, complexity
from .static_net import StaticAlphaNet
from .supernet import AlphaNetSupernet

__all__ = ["AlphaNetSupernet", "StaticAlphaNet", "Complexity", "complexity"]

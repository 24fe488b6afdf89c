"""AlphaNet: weight-sharing supernet, sandwich-rule training with adaptive alpha-divergence,
BN recalibration, sub-network extraction/search and ONNX export.

Run the command line with ``python3 -m alphanet <subcommand> --help``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

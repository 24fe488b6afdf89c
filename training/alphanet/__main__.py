"""``python3 -m alphanet <subcommand>``: subcommands are the modules of `alphanet.cli`.

Each ``alphanet/cli/<name>.py`` defines ``add_parser(subparsers)`` and ``run(args) -> int``.
A `UserError` is printed as one line on stderr with exit status 2 (no traceback).
"""

from __future__ import annotations

import os

# Before torch (and its OpenMP runtime) loads: idle OpenMP threads sleep instead of spinning.
# On a shared CPU (several trainings / test runs on 2 cores) spinning threads starve each other;
# measured: 15 s vs 2.6 s per Fashion-MNIST sandwich step at load ~8.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import importlib  # noqa: E402
import pkgutil  # noqa: E402
import sys  # noqa: E402

from . import __version__, cli  # noqa: E402
from .allocator import tune_malloc  # noqa: E402
from .cli._command import parse_command_line  # noqa: E402
from .errors import UserError  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python3 -m alphanet",
        description="AlphaNet supernet training, BN calibration, evaluation, search and ONNX export.",
    )
    parser.add_argument("--version", action="version", version=f"alphanet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    subparsers.required = True
    for info in sorted(pkgutil.iter_modules(cli.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{cli.__name__}.{info.name}")
        if hasattr(module, "add_parser") and hasattr(module, "run"):
            before = set(subparsers.choices)
            module.add_parser(subparsers)
            for name in set(subparsers.choices) - before:
                subparsers.choices[name].set_defaults(func=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    tune_malloc()  # training steps on CPU are up to 6x faster (alphanet/allocator.py)
    parser = build_parser()
    args = parse_command_line(parser, argv)
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

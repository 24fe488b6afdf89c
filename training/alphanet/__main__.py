"""``python3 -m alphanet <subcommand>``: subcommands are the modules of `alphanet.cli`.

Each ``alphanet/cli/<name>.py`` defines ``add_parser(subparsers)`` and ``run(args) -> int``.
A `UserError` is printed as one line on stderr with exit status 2 (no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from . import __version__, cli
from .errors import UserError


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
    parser = build_parser()
    args = parser.parse_args(argv)
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

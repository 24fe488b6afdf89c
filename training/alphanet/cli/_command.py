"""What every subcommand's parser shares: its title block, and ``KEY=VALUE`` overrides that may
stand anywhere among its options."""

from __future__ import annotations

import argparse

from ..settings import OVERRIDE_RE


def add_command(subparsers, name: str, summary: str, description: str, doc: str | None = None):
    """A subcommand parser; ``doc`` (the module docstring) supplies the examples after ``Examples::``."""
    extra = {}
    if doc and "Examples::" in doc:
        extra = {
            "formatter_class": argparse.RawDescriptionHelpFormatter,
            "epilog": "examples:" + doc.split("Examples::", 1)[1],
        }
    return subparsers.add_parser(name, help=summary, description=description, **extra)


def add_overrides(parser: argparse.ArgumentParser, help_text: str) -> None:
    """Config overrides; `parse_command_line` also collects those that follow other options."""
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=help_text)


def parse_command_line(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse, letting ``KEY=VALUE`` overrides stand anywhere among a command's options (argparse
    alone takes them only as one contiguous run), in the order given."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        if hasattr(args, "overrides") and all(OVERRIDE_RE.match(token) for token in extra):
            args.overrides = [*(args.overrides or []), *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args

"""``KEY=VALUE`` overrides may stand anywhere among a command's options, for every subcommand."""

from __future__ import annotations

import pytest

from alphanet.__main__ import build_parser
from alphanet.cli._command import parse_command_line

# Each command with its required options, an override before, between and after other options.
COMMANDS = {
    "train": ["--config", "c.yaml", "a.b=1", "--run-dir", "r", "data.root=X", "--no-progress", "c=3"],
    "export": ["--checkpoint", "c", "a.b=1", "--out-dir", "z", "data.root=X", "--labels", "F", "c=3"],
    "evaluate": ["--checkpoint", "c", "a.b=1", "--arch", "min", "data.root=X", "--recalibrate", "c=3"],
    "calibrate": ["--checkpoint", "c", "a.b=1", "--arch", "min", "data.root=X", "--out", "o.pt", "c=3"],
    "search": ["s.yaml", "a.b=1", "data.root=X", "c=3"],
    "cascades": [
        "--zoo-dir",
        "z",
        "a.b=1",
        "--training-config",
        "t.yaml",
        "data.root=X",
        "--no-model-card",
        "c=3",
    ],
    "pipeline": ["--config", "p.yaml", "a.b=1", "--run-dir", "r", "data.root=X", "--zoo-dir", "z", "c=3"],
    "ablation": ["--config", "p.yaml", "a.b=1", "--seeds", "0", "data.root=X", "--no-train", "c=3"],
    "import-official": ["official.pth", "a.b=1", "--out", "o.pt", "data.root=X", "--space", "in", "c=3"],
}


def test_every_command_with_overrides_is_covered():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    with_overrides = {
        name
        for name, sub in subparsers.choices.items()
        if any(action.dest == "overrides" for action in sub._actions)
    }
    assert with_overrides == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_overrides_anywhere_keep_their_order(command):
    args = parse_command_line(build_parser(), [command, *COMMANDS[command]])
    assert args.overrides == ["a.b=1", "data.root=X", "c=3"]


def test_an_unknown_option_is_still_an_error(capsys):
    with pytest.raises(SystemExit) as exc:
        parse_command_line(build_parser(), ["train", "--config", "c.yaml", "--bogus", "a.b=1"])
    assert exc.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err

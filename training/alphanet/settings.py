"""The one config mechanism of training, search and the pipeline.

A config kind is a `Schema`: a tree of sections whose leaves are `Key`s (default, one-line
comment, the type of a non-null value when the default is null, whether the key is a path). The
schema loads a YAML file onto its defaults, applies ``KEY=VALUE`` overrides (values parsed as
YAML: ``0.1``, ``true``, ``null``, ``[a, b]``), type-checks every key by its declaration and runs
the kind's own cross-key checks. Resolved configs are plain nested dicts (they are stored in
checkpoints and reports as they are). The YAML files under ``training/configs/`` carry the same
comments for the user; a test keeps both in step.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

from .errors import UserError
from .paths import repo_path

# A token of a command line that is a config override rather than an option or its value.
OVERRIDE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*=")
_TYPE_NAMES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list"}


@dataclass(frozen=True)
class Key:
    """One config key: its default, a one-line comment, and what a value must be."""

    default: Any
    doc: str
    kind: type | None = None  # the type of a non-null value when the default is null
    path: bool = False  # a file or directory: made absolute against the schema's path base

    @property
    def nullable(self) -> bool:
        return self.default is None

    @property
    def type(self) -> type:
        return self.kind if self.kind is not None else type(self.default)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sections -> ``{"section.key": leaf}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def get(cfg: dict[str, Any], key: str) -> Any:
    """The value of dotted ``key`` in a resolved config."""
    node: Any = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _put(cfg: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = cfg
    for part in parents:
        node = node[part]
    node[leaf] = value


# YAML 1.1 (PyYAML) reads an exponent without a dot or without a sign, "5e-4" or "1.0e5", as text;
# a number key takes it as the number a user means (in a file or on the command line).
_EXPONENT_LITERAL = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def parse_value(raw: str) -> Any:
    """A command-line value as YAML (``0.1`` -> float, ``[a, b]`` -> list); unparsable text stays text."""
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


class Schema:
    """Defaults, loader, override parser and checks of one config kind."""

    def __init__(
        self,
        label: str,
        tree: dict[str, Any],
        check: Callable[[dict[str, Any]], None] | None = None,
        path_base: Path | None = None,
    ):
        self.label, self.tree, self.check, self.path_base = label, tree, check, path_base
        self.keys: dict[str, Key] = flatten(tree)
        self.sections = {k.rsplit(".", 1)[0] for k in self.keys if "." in k}

    def defaults(self) -> dict[str, Any]:
        def build(tree: dict[str, Any]) -> dict[str, Any]:
            return {k: build(v) if isinstance(v, dict) else copy.deepcopy(v.default) for k, v in tree.items()}

        return build(self.tree)

    def error(self, message: str) -> UserError:
        return UserError(f"{self.label}: {message}")

    def coerce(self, key: str, value: Any) -> Any:
        """``value`` as key ``key`` takes it (ints widen to floats), or a `UserError` naming the key."""
        spec = self.keys[key]
        if value is None:
            if spec.nullable:
                return None
            raise self.error(f"{key} must not be null")
        expected = spec.type
        if expected is float and isinstance(value, str) and _EXPONENT_LITERAL.fullmatch(value.strip()):
            value = float(value)
        ok = {
            bool: lambda v: isinstance(v, bool),
            float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            int: lambda v: isinstance(v, int) and not isinstance(v, bool),
            str: lambda v: isinstance(v, (str, Path)),
        }.get(expected, lambda v: isinstance(v, expected))
        if not ok(value):
            name = _TYPE_NAMES.get(expected, expected.__name__)
            raise self.error(f"{key} must be {name}, got {value!r}")
        if expected is float:
            return float(value)
        return str(value) if expected is str else value

    def set(self, cfg: dict[str, Any], key: str, value: Any) -> None:
        if key not in self.keys:
            if key in self.sections or any(k.startswith(key + ".") for k in self.keys):
                raise self.error(f"'{key}' is a section; set its keys ({key}.<key>=...)")
            raise self.error(f"unknown key '{key}'")
        _put(cfg, key, self.coerce(key, value))

    def merge(self, cfg: dict[str, Any], raw: dict[str, Any], prefix: str = "") -> None:
        """Apply a nested mapping (a YAML file, a stored config) key by key."""
        for key, value in raw.items():
            dotted = f"{prefix}{key}"
            if dotted in self.keys:
                self.set(cfg, dotted, value)
            elif dotted in self.sections or any(k.startswith(dotted + ".") for k in self.keys):
                if not isinstance(value, dict):
                    raise self.error(f"'{dotted}' must be a mapping, got {value!r}")
                self.merge(cfg, value, dotted + ".")
            else:
                raise self.error(f"unknown key '{dotted}'")

    def parse_override(self, text: str) -> tuple[str, Any]:
        """``a.b=value`` -> (``a.b``, the value parsed as YAML); the key must exist."""
        if "=" not in text:
            raise UserError(f"override '{text}' is not KEY=VALUE")
        key, raw = text.split("=", 1)
        key = key.strip()
        if key not in self.keys and key not in self.sections:
            raise self.error(f"unknown key '{key}' in override '{text}'")
        return key, parse_value(raw)

    def shown_override(self, text: str) -> str:
        """``text`` as a report shows it: the value of a path key relative to the repository root
        (where it lies inside it), so reproduce commands name no directory of the machine."""
        key, _, raw = text.partition("=")
        spec = self.keys.get(key.strip())
        value = parse_value(raw) if spec is not None and spec.path else None
        return f"{key}={repo_path(value)}" if isinstance(value, str) else text

    def apply_overrides(self, cfg: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
        """A copy of ``cfg`` with the overrides applied, made absolute where paths and checked."""
        cfg = copy.deepcopy(cfg)
        for text in overrides:
            self.set(cfg, *self.parse_override(text))
        return self.finish(cfg)

    def from_dict(self, raw: dict[str, Any]) -> dict[str, Any]:
        """A stored config (a checkpoint's, a report's) resolved onto the current defaults."""
        cfg = self.defaults()
        self.merge(cfg, raw)
        return self.finish(cfg)

    def load(
        self, path: str | Path | None, overrides: Iterable[str] = (), values: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Defaults <- YAML file (optional) <- ``KEY=VALUE`` overrides <- ``values`` (dotted keys
        with typed values, as a caller that holds objects sets them); checked."""
        cfg = self.defaults()
        if path is not None:
            raw = read_yaml(Path(path), self.label)
            if raw is not None:
                if not isinstance(raw, dict):
                    raise UserError(f"{self.label} {path}: top level must be a mapping")
                self.merge(cfg, raw)
        for text in overrides:
            self.set(cfg, *self.parse_override(text))
        for key, value in (values or {}).items():
            self.set(cfg, key, value)
        return self.finish(cfg)

    def finish(self, cfg: dict[str, Any]) -> dict[str, Any]:
        if self.path_base is not None:
            for key, spec in self.keys.items():
                value = get(cfg, key)
                if spec.path and value is not None:
                    _put(cfg, key, str(resolve_path(value, self.path_base)))
        if self.check is not None:
            self.check(cfg)
        return cfg

    def with_repo_paths(self, cfg: dict[str, Any]) -> dict[str, Any]:
        """A copy of a resolved config for reports: path keys relative to the repository root."""
        shown = copy.deepcopy(cfg)
        for key, spec in self.keys.items():
            if spec.path and get(shown, key) is not None:
                _put(shown, key, repo_path(get(shown, key)))
        return shown

    def documented_keys(self, text: str) -> dict[str, str]:
        """``{dotted key: comment}`` of a YAML file written like the bundled configs."""
        found: dict[str, str] = {}
        stack: list[tuple[int, str]] = []
        for line in text.splitlines():
            match = re.match(r"^(\s*)([A-Za-z_][A-Za-z0-9_]*):(.*)$", line)
            if not match:
                continue
            indent, name, rest = len(match.group(1)), match.group(2), match.group(3)
            while stack and stack[-1][0] >= indent:
                stack.pop()
            dotted = ".".join([s[1] for s in stack] + [name])
            value, _, comment = rest.partition("#")
            if value.strip():
                found[dotted] = comment.strip()
            else:
                stack.append((indent, name))
        return found


def read_yaml(path: Path, what: str) -> Any:
    """The YAML document in ``path``; a missing or unparsable file is a `UserError` naming ``what``."""
    if not path.is_file():
        raise UserError(f"{what} file not found: {path}")
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"cannot parse {what} {path}: {exc}") from None


def resolve_path(value: str | Path, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path).resolve()


def check_overrides(value: Any, key: str, label: str) -> None:
    """A config value that is itself a list of ``KEY=VALUE`` strings (applied later, elsewhere)."""
    if not isinstance(value, list) or not all(isinstance(x, str) and "=" in x for x in value):
        raise UserError(f"{label}: {key} must be a list of KEY=VALUE strings, got {value!r}")

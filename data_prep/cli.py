"""`key=value` overrides parsed into typed dataclass configs: the one config parser of qatune.

Every command line of the project (`python -m data_prep`, `python -m qamodels.train`,
`python -m search.run`) is a dataclass of plain values; this module turns `key=value`
arguments into an instance, with an error that lists the valid keys for an unknown key and
names the key and the expected type for a bad value.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A bad `key=value` argument; the message says what to write instead."""


def fail(error: BaseException, code: int) -> int:
    """Print a command's one-line error and return its exit code."""
    print(f"error: {error}", file=sys.stderr)
    return code


def _convert(key: str, raw: str, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if raw.lower() in ("none", "null", "") and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _convert(key, raw, option)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{key}={raw!r}: expected {_type_name(hint)}")
    if origin in (tuple, list):
        item = args[0] if args else str
        items = [v.strip() for v in raw.split(",") if v.strip()]
        values = [_convert(key, v, item) for v in items]
        return tuple(values) if origin is tuple else values
    if hint is bool:
        if raw.lower() in ("true", "1", "yes", "on"):
            return True
        if raw.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{key}={raw!r}: expected a bool (true/false)")
    if hint in (int, float):
        try:
            value = hint(raw)
        except ValueError:
            raise ConfigError(f"{key}={raw!r}: expected {hint.__name__}") from None
        if hint is int and "." in raw:
            raise ConfigError(f"{key}={raw!r}: expected int")
        return value
    if hint is str:
        return raw
    raise ConfigError(f"{key}: unsupported config type {hint!r}")


def _type_name(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def parse_overrides(cls: type[T], args: typing.Sequence[str], base: T | None = None) -> T:
    """Build `cls` from `key=value` strings (on top of `base` when given)."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for arg in args:
        if "=" not in arg:
            raise ConfigError(f"argument {arg!r} is not key=value; valid keys: {', '.join(names)}")
        key, raw = arg.split("=", 1)
        key = key.strip().lstrip("-").replace("-", "_")
        if key not in hints or key not in names:
            raise ConfigError(f"unknown key {key!r}; valid keys: {', '.join(names)}")
        values[key] = _convert(key, raw.strip(), hints[key])
    start = base if base is not None else cls()
    return dataclasses.replace(start, **values)  # type: ignore[type-var]


def help_text(cls: type, title: str) -> str:
    """Every key with its type and default, for `--help`."""
    hints = typing.get_type_hints(cls)
    lines = [title, "", "keys (key=value):"]
    for field in dataclasses.fields(cls):
        default = (
            field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
        )
        if isinstance(default, tuple | list):
            default = ",".join(map(str, default))
        lines.append(f"  {field.name:<22} {_type_name(hints[field.name]):<22} = {default}")
    return "\n".join(lines)


def as_dict(config: Any) -> dict[str, Any]:
    """A JSON-friendly dict of a config dataclass (tuples become lists)."""
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
    }


def split_overrides(args: typing.Sequence[str], *classes: type, rest: bool = False) -> tuple:
    """Route each `key=value` to the first config class that has the key; one instance each.
    An unknown key is an error that lists the keys of every class, unless `rest`: then the
    unrouted arguments come last in the result (e.g. an architecture's own parameters)."""
    names = [[f.name for f in dataclasses.fields(c)] for c in classes]
    routed: list[list[str]] = [[] for _ in classes]
    unrouted: list[str] = []
    for arg in args:
        key = arg.split("=", 1)[0].strip().lstrip("-").replace("-", "_")
        owner = next((i for i, keys in enumerate(names) if key in keys), None)
        if owner is not None and "=" in arg:
            routed[owner].append(arg)
        elif rest:
            unrouted.append(arg)
        else:
            valid = ", ".join(k for keys in names for k in keys)
            raise ConfigError(f"unknown key or not key=value: {arg!r}; valid keys: {valid}")
    configs = tuple(parse_overrides(c, a) for c, a in zip(classes, routed, strict=True))
    return (*configs, unrouted) if rest else configs


def from_dict(cls: type[T], values: dict[str, Any]) -> T:
    """The inverse of as_dict (lists back to tuples)."""
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

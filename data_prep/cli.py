"""`key=value` overrides parsed into typed dataclass configs: the one config parser of qatune.

Every command line of the project (data_prep, qamodels.train, qamodels.lm / mlm,
qamodels.baseline, search.run, search.predict, search.evaluate) is one or more dataclasses of
plain values whose fields are declared with `arg(default, help, choices=, min=, above=)`.
This module turns `key=value` arguments into instances, checks every field against its
declaration, and prints `--help` from the same declarations. An unknown key lists the valid
keys; a bad value names the key and what it takes. All errors are one line (ConfigError).
Kept as our own: argparse would make every key a `--flag`, and HF's HfArgumentParser would
bring transformers along; `key=value` is the form Ray and Hydra users already type.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
import sys
import types
import typing
from typing import Any, TypeVar

from data_prep.errors import QatuneError

T = TypeVar("T")


class ConfigError(QatuneError, ValueError):
    """A bad `key=value` argument; the message says what to write instead."""


def arg(
    default: Any,
    help: str,
    *,
    choices: typing.Sequence[Any] | None = None,
    min: float | None = None,
    above: float | None = None,
    below: float | None = None,
    max: float | None = None,
) -> Any:
    """A config field: its default, its one-line help, and what values it accepts (every
    item of a tuple field must be among `choices`; numbers finite, >= `min`, > `above`,
    < `below`, <= `max`)."""
    metadata = {"help": help, "choices": choices, "min": min, "above": above, "below": below,
                "max": max}  # fmt: skip
    return dataclasses.field(default=default, metadata=metadata)


def _check_value(key: str, value: Any, meta: typing.Mapping[str, Any]) -> None:
    items = value if isinstance(value, tuple | list) else (value,)
    choices = meta.get("choices")
    for item in items:
        if choices is not None and item not in choices:
            raise ConfigError(f"{key}={item!r}: use one of {', '.join(map(str, choices))}")
        if isinstance(item, bool) or not isinstance(item, int | float):
            continue
        if not math.isfinite(item):  # nan passes every comparison below
            raise ConfigError(f"{key}={item!r}: must be a finite number")
        if meta.get("max") is not None and item > meta["max"]:
            raise ConfigError(f"{key}={item!r}: must be <= {meta['max']:g}")
        if meta.get("min") is not None and item < meta["min"]:
            raise ConfigError(f"{key}={item!r}: must be >= {meta['min']:g}")
        if meta.get("above") is not None and item <= meta["above"]:
            raise ConfigError(f"{key}={item!r}: must be > {meta['above']:g}")
        if meta.get("below") is not None and item >= meta["below"]:
            raise ConfigError(f"{key}={item!r}: must be < {meta['below']:g}")


def check_fields(config: Any) -> Any:
    """Check every field of a config (nested configs too) against its `arg` declaration."""
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value):
            check_fields(value)
        else:
            _check_value(field.name, value, field.metadata)
    return config


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes (a main run in-process, by tests
    or a notebook, may have replaced it since)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def configure_logging() -> None:
    """Each command's one logging setup: what data_prep, qamodels and search say at INFO
    (reused or prepared data, dropped rows) reaches the user's console, on stderr; Ray and
    Optuna keep their own handlers and levels. Calling it again changes nothing."""
    for name in ("data_prep", "qamodels", "search"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        if not any(isinstance(h, _Stderr) for h in logger.handlers):
            handler = _Stderr()
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
            logger.addHandler(handler)


def fail(error: QatuneError) -> int:
    """Print a command's one-line error; its exit code: 2 for a bad key or value, else 1."""
    print(f"error: {error}", file=sys.stderr)
    return 2 if isinstance(error, ConfigError) else 1


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
        key, raw = key_of(arg), arg.split("=", 1)[1]
        if key not in hints or key not in names:
            raise ConfigError(f"unknown key {key!r}; {suggest(key, names)}")
        values[key] = _convert(key, raw.strip(), hints[key])
    start = base if base is not None else cls()
    return check_fields(dataclasses.replace(start, **values))  # type: ignore[type-var]


def help_text(cls: type, title: str) -> str:
    """Every key with its type, default and help, for `--help` (nested configs skipped:
    their keys are listed under their own title)."""
    hints = typing.get_type_hints(cls)
    lines = [title]
    for field in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[field.name]):
            continue
        default = (
            field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
        )
        if isinstance(default, tuple | list):
            default = ",".join(map(str, default))
        shown = f"{field.name}={default}"
        lines.append(f"  {shown:<34} {_type_name(hints[field.name]):<16} {_help(field)}")
    return "\n".join(lines) + "\n"


def _help(field: dataclasses.Field) -> str:
    text = field.metadata.get("help", "")
    if field.metadata.get("choices") is not None:
        text += f" [{'|'.join(map(str, field.metadata['choices']))}]"
    return text


def as_dict(config: Any) -> dict[str, Any]:
    """A JSON-friendly dict of a config dataclass (tuples become lists)."""
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
    }


def suggest(key: str, names: typing.Sequence[str]) -> str:
    """'did you mean ...?' for the nearest keys, then every valid key (--help has them all)."""
    names = list(dict.fromkeys(n for n in names if n != "train"))  # once each; no nested one
    near = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(near)}? " if near else ""
    return f"{hint}valid keys: {', '.join(names)}"


def key_of(arg: str) -> str:
    """The key of a `key=value` argument as the configs name it (--batch-size -> batch_size)."""
    return arg.split("=", 1)[0].strip().lstrip("-").replace("-", "_")


def typed_keys(args: typing.Sequence[str]) -> set[str]:
    """The keys a command line gave (key=value)."""
    return {key_of(a) for a in args if "=" in a}


def split_overrides(args: typing.Sequence[str], *classes: type, rest: bool = False) -> tuple:
    """Route each `key=value` to the first config class that has the key; one instance each.
    An unknown key is an error that lists the keys of every class, unless `rest`: then the
    unrouted arguments come last in the result (e.g. an architecture's own parameters)."""
    names = [[f.name for f in dataclasses.fields(c)] for c in classes]
    routed: list[list[str]] = [[] for _ in classes]
    unrouted: list[str] = []
    for arg in args:
        key = key_of(arg)
        owner = next((i for i, keys in enumerate(names) if key in keys), None)
        if owner is not None and "=" in arg:
            routed[owner].append(arg)
        elif rest:
            unrouted.append(arg)
        elif owner is not None:  # a known key without its value
            raise ConfigError(f"{key}: give it a value, {key}=<value> (--help shows each key)")
        else:
            valid = suggest(key, [k for keys in names for k in keys])
            raise ConfigError(f"unknown key or not key=value: {arg!r}; {valid}")
    configs = tuple(parse_overrides(c, a) for c, a in zip(classes, routed, strict=True))
    return (*configs, unrouted) if rest else configs


def from_dict(cls: type[T], values: dict[str, Any]) -> T:
    """The inverse of as_dict (lists back to tuples, nested configs rebuilt)."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        if dataclasses.is_dataclass(hints.get(key)) and isinstance(value, dict):
            value = from_dict(hints[key], value)
        kwargs[key] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)

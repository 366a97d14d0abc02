"""Frozen configs from plain data, and their identity: shared by every track's run config.

`build(cls, data, where)` makes a frozen dataclass from a mapping (a TOML table, a JSON record),
checking every key and type; an error names the place and the dotted key and says what is allowed
("suite.toml: finetune.lr: expected a number, got 'fast'"). `digest(obj)` = the first 20 hex
digits of sha256 over the canonical JSON of `obj` (sorted keys, no spaces): a run's id is the
digest of its config's identity.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from typing import Any, Mapping

from shrinkbench.core.errors import ConfigError
from shrinkbench.core.params import Params


def check(cond: bool, message: str) -> None:
    """Raise a one-line ConfigError with `message` unless `cond` holds."""
    if not cond:
        raise ConfigError(message)


def digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def jsonable(obj: Any) -> Any:
    if isinstance(obj, Params):
        return obj.to_dict()
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


# ---------------------------------------------------------------- building from plain data

def build(cls: type, data: Mapping[str, Any], where: str, prefix: str = "") -> Any:
    """Instantiate dataclass `cls` from a mapping, checking keys and types.

    Errors name the place (`where`, e.g. "suite.toml") and the dotted key, and say what is
    allowed: "suite.toml: finetune.lr: expected a number, got 'fast'".
    """
    here = f"{where}: {prefix.rstrip('.')}" if prefix else where
    if not isinstance(data, Mapping):
        raise ConfigError(f"{here}: expected a table of settings, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown setting {prefix + unknown[0]!r}; allowed here: {', '.join(fields)}")
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    values = {}
    for name, value in data.items():
        default = defaults[name]
        if dataclasses.is_dataclass(default) and isinstance(value, Mapping):
            # a partly given nested table keeps the field's own defaults for the rest
            value = {**{f.name: getattr(default, f.name) for f in dataclasses.fields(default)}, **value}
        values[name] = _convert(value, hints[name], where, prefix + name)
    try:
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError(f"{here}: {exc}") from None
    except TypeError as exc:  # a required setting is missing
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        missing = [f for f in required if f not in data]
        raise ConfigError(f"{here}: missing required setting(s) {', '.join(missing) or exc}") from None


def _convert(value: Any, hint: Any, where: str, key: str) -> Any:
    def fail(expected: str):
        raise ConfigError(f"{where}: {key}: expected {expected}, got {value!r}")

    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], where, key)
    if dataclasses.is_dataclass(hint):
        if dataclasses.is_dataclass(value):
            return value
        return build(hint, value, where, key + ".")
    if hint is Params:
        return value if isinstance(value, Params) else Params(value, f"{where}: {key}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            fail("a list")
        return tuple(_convert(v, args[0], where, key) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            fail("true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            fail("an integer")
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail("a number")
        return float(value)
    if hint is str and not isinstance(value, str):
        fail("a string")
    return value

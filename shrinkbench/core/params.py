"""`Params`: the parameters a strategy is constructed with, as an immutable, hashable mapping.

A method's hyperparameters decide its numbers, so they are part of a run's identity: they
live in the frozen `RunConfig` (`strategy_params`), are hashed into its run id in canonical
form (keys sorted), and are passed to the strategy's constructor as keyword arguments.
Values are JSON scalars (booleans, integers, finite floats, strings) or lists of them; a
parameter named in a suite's table, on the command line (`--param name=value`) or in a
JSON config is checked here, with one-line errors that say what is allowed.
"""
from __future__ import annotations

import json
import math
from typing import Any, Iterator, Mapping

from shrinkbench.core.errors import ConfigError

Scalar = bool | int | float | str


def _freeze(value: Any, where: str) -> Any:
    if isinstance(value, bool) or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{where}: must be a finite number, got {value!r}")
        return value
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v, f"{where}[{i}]") for i, v in enumerate(value))
    raise ConfigError(f"{where}: a parameter must be a boolean, number, string or a list of them, "
                      f"got {type(value).__name__}")


def _thaw(value: Any) -> Any:
    return [_thaw(v) for v in value] if isinstance(value, tuple) else value


class Params(Mapping[str, Any]):
    """An immutable mapping name -> value (JSON scalars or lists of them), sorted by name."""

    __slots__ = ("_items",)

    def __init__(self, values: Mapping[str, Any] | None = None, where: str = "strategy parameters"):
        if values is not None and not isinstance(values, Mapping):
            raise ConfigError(f"{where}: expected a table of name = value, got {values!r}")
        items = {}
        for key, value in dict(values or {}).items():
            if not isinstance(key, str) or not key.isidentifier():
                raise ConfigError(f"{where}: parameter names must be Python identifiers, got {key!r}")
            items[key] = _freeze(value, f"{where}.{key}")
        self._items: tuple[tuple[str, Any], ...] = tuple(sorted(items.items()))

    def __getitem__(self, key: str) -> Any:
        for name, value in self._items:
            if name == key:
                return _thaw(value)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Params):
            return self._items == other._items
        return isinstance(other, Mapping) and self.to_dict() == dict(other)

    def __repr__(self) -> str:
        return f"Params({self.to_dict()!r})"

    def __deepcopy__(self, memo) -> "Params":
        return self  # immutable

    def to_dict(self) -> dict[str, Any]:
        return {name: _thaw(value) for name, value in self._items}

    def text(self) -> str:
        """`power=3, scope='global'`: the parameters as a method's label shows them."""
        return ", ".join(f"{k}={json.dumps(v)}" for k, v in self.to_dict().items())


def parse_assignments(pairs: list[str] | None, where: str = "--param") -> Params:
    """`["power=3", "mode=fast", "ks=[1, 2]"]` -> Params: each value is read as JSON where it
    parses (numbers, true/false, lists, quoted strings), else taken as a plain string."""
    values: dict[str, Any] = {}
    for pair in pairs or []:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{where} {pair!r}: expected NAME=VALUE, e.g. --param power=3")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        values[name.strip()] = value
    return Params(values, where)


def constructor_parameters(cls: type) -> list[dict[str, Any]]:
    """What a registered class takes, read from its constructor so a listing cannot drift from the
    code: one {name, default, range} per keyword parameter, `default` from the signature (None
    where there is none) and `range` from the class's `parameter_ranges` (name -> text; "" where
    it states none)."""
    import inspect

    ranges = getattr(cls, "parameter_ranges", {}) or {}
    try:
        signature = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return []
    out = []
    for p in list(signature.parameters.values())[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        default = None if p.default is p.empty else _thaw(p.default) if isinstance(p.default, tuple) else p.default
        out.append({"name": p.name, "default": default, "range": ranges.get(p.name, "")})
    return out


def parameters_text(cls: type) -> str:
    """`m=5.0 (> 0), lam=0.08 (> 0 and ...)`: `constructor_parameters` on one line ("" for none)."""
    parts = []
    for p in constructor_parameters(cls):
        default = json.dumps(p["default"]) if isinstance(p["default"], (list, str)) else p["default"]
        default = "true" if default is True else "false" if default is False else "unset" if default is None else default
        parts.append(f"{p['name']}={default}" + (f" ({p['range']})" if p["range"] else ""))
    return ", ".join(parts)

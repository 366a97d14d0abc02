"""A small, strict name -> object registry.

Used for models, datasets, strategies, metrics and executors. Registering a name twice is
an error (no silent overwrite); looking up an unknown name raises `UnknownNameError` with
the closest registered names, so typos are answered with a suggestion.
"""
from __future__ import annotations

import difflib
import fnmatch
from typing import Callable, Generic, Iterator, TypeVar

from shrinkbench.core.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names (and optional aliases) to objects of one kind."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, obj: T, aliases: tuple[str, ...] = ()) -> T:
        for key in (name, *aliases):
            if key in self._items or key in self._aliases:
                raise ValueError(f"{self.kind} {key!r} is already registered")
        self._items[name] = obj
        for alias in aliases:
            self._aliases[alias] = name
        return obj

    def decorator(self, name: str | None = None, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        """`@registry.decorator()` registers a function or class under its own name."""

        def wrap(obj: T) -> T:
            self.register(name or obj.__name__, obj, aliases)  # type: ignore[attr-defined]
            return obj

        return wrap

    def remove(self, name: str) -> None:
        """Forget `name` and its aliases (an in-process registration undone, e.g. by a test)."""
        self._items.pop(name, None)
        for alias in [a for a, target in self._aliases.items() if target == name]:
            del self._aliases[alias]

    def canonical(self, name: str) -> str:
        """The registered name for `name` or one of its aliases."""
        if name in self._items:
            return name
        if name in self._aliases:
            return self._aliases[name]
        raise UnknownNameError(self.unknown_message(name))

    def get(self, name: str) -> T:
        return self._items[self.canonical(name)]

    def unknown_message(self, name: str) -> str:
        keys = list(self._items) + list(self._aliases)
        close = difflib.get_close_matches(name, keys, n=4, cutoff=0.5)
        lowered = [k for k in keys if name.lower() in k.lower() and k not in close]
        hint = close + lowered[: max(0, 4 - len(close))]
        if hint:
            return f"unknown {self.kind} {name!r}; did you mean {', '.join(map(repr, hint))}?"
        return f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"

    def aliases(self, name: str) -> tuple[str, ...]:
        """The aliases registered for `name` (canonical or alias), in registration order."""
        canonical = self.canonical(name)
        return tuple(a for a, target in self._aliases.items() if target == canonical)

    def names(self, pattern: str = "*") -> list[str]:
        return [n for n in self._items if fnmatch.fnmatch(n, pattern)]

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def items(self):
        return self._items.items()

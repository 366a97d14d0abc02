"""Turn a `--strategy` value into a Strategy instance.

Accepted forms:
    global_magnitude / GlobalMagWeight   a registered name or alias
    mypkg.mymethod:MyMethod              a class in an importable module (on sys.path)
    path/to/file.py:MyMethod             a class in a Python file (imported from its path)
The class must subclass `Strategy` and take no constructor arguments. Every failure is a
one-line `ShrinkBenchError` saying which part was wrong.
"""
from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from shrinkbench.errors import ConfigError, UnknownNameError
from shrinkbench.pruning.strategies import STRATEGIES, Strategy


def _one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def _import_file(path_text: str) -> ModuleType:
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"strategy file {path_text!r} does not exist")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    module_name = f"shrinkbench_user_strategy_{path.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"strategy file {path_text!r} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the user's code failed: report it on one line
        del sys.modules[module_name]
        raise ConfigError(f"importing strategy file {path_text!r} failed: {_one_line(error)}") from None
    return module


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name and name.startswith(error.name):
            raise ConfigError(f"strategy module {name!r} not found: is its folder on sys.path "
                              f"(PYTHONPATH)? or give a file: path/to/file.py:ClassName") from None
        raise ConfigError(f"importing strategy module {name!r} failed: {_one_line(error)}") from None
    except Exception as error:
        raise ConfigError(f"importing strategy module {name!r} failed: {_one_line(error)}") from None


def _strategy_class(module: ModuleType, where: str, class_name: str) -> type[Strategy]:
    candidates = [n for n, v in vars(module).items()
                  if isinstance(v, type) and issubclass(v, Strategy) and v is not Strategy]
    cls = getattr(module, class_name, None)
    if cls is None:
        close = difflib.get_close_matches(class_name, candidates, n=3, cutoff=0.5)
        hint = (f"did you mean {', '.join(map(repr, close))}?" if close else
                f"its Strategy subclasses: {', '.join(candidates) or 'none'}")
        raise ConfigError(f"{where} has no class {class_name!r}; {hint}")
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(f"{where}:{class_name} is not a subclass of shrinkbench.pruning.Strategy")
    return cls


def _instantiate(factory, label: str) -> Strategy:
    try:
        strategy = factory()
    except Exception as error:
        raise ConfigError(f"strategy {label} could not be constructed without arguments: "
                          f"{_one_line(error)}") from None
    if not isinstance(strategy, Strategy):
        raise ConfigError(f"strategy {label} did not produce a shrinkbench.pruning.Strategy")
    return strategy


def resolve_strategy(spec: str) -> Strategy:
    """A Strategy instance for a registered name/alias, `module:Class` or `file.py:Class`."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"strategy must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if ":" not in spec:
        try:
            factory = STRATEGIES.get(spec)
        except UnknownNameError as error:
            raise UnknownNameError(f"{error} (or give your own as module:ClassName or "
                                   f"path/to/file.py:ClassName)") from None
        strategy = _instantiate(factory, repr(spec))
        strategy.name = STRATEGIES.canonical(spec)  # what a record stores, resolvable again
        return strategy
    target, _, class_name = spec.rpartition(":")
    if not target or not class_name.isidentifier():
        raise ConfigError(f"strategy {spec!r} must look like module:ClassName or "
                          f"path/to/file.py:ClassName")
    if target.endswith(".py") or "/" in target or "\\" in target:
        module, where = _import_file(target), f"strategy file {target!r}"
    else:
        module, where = _import_module(target), f"strategy module {target!r}"
    return _instantiate(_strategy_class(module, where, class_name), repr(spec))

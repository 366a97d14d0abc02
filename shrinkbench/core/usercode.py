"""A user's code: turn a `--strategy` value (and its parameters) into an instance of a track's
strategy class, and identify that code by the sha256 of its file. Shared by every track: each
passes its own registry of named strategies and its own base class.

Accepted forms:
    global_magnitude / GlobalMagWeight   a registered name or alias
    mypkg.mymethod:MyMethod              a class in an importable module (on sys.path)
    path/to/file.py:MyMethod             a class in a Python file (imported from its path)
The class must subclass the track's base class (vision: `Strategy`, language models: `LLMStrategy`); its constructor receives the run's `strategy_params` as
keyword arguments (none by default). Every failure is a one-line `ShrinkBenchError` saying
which part was wrong; user code that raises, or calls `sys.exit`, while it is imported or
built cannot end the command silently.

A user's strategy is identified by its code: `strategy_source(spec)` gives the path and the
sha256 of the ONE file that defines it (the `.py` file named, or the file of the module named),
and `validate_config` puts that hash into the run's identity, so an edited file makes new
runs instead of reusing old records. Code the file imports from other files is not hashed;
keep a method in one file, or change that file when its helpers change.
"""
from __future__ import annotations

import contextlib
import os
import difflib
import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Mapping

from shrinkbench.core.errors import ConfigError, UnknownNameError


def _one_line(error: BaseException) -> str:
    if isinstance(error, SystemExit):
        return f"it called sys.exit({error.code!r})"
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _is_file_spec(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def _split(spec: str) -> tuple[str, str]:
    target, _, class_name = spec.rpartition(":")
    if not target or not class_name.isidentifier():
        raise ConfigError(f"strategy {spec!r} must look like module:ClassName or path/to/file.py:ClassName")
    return target, class_name


def _import_file(path_text: str) -> ModuleType:
    path = Path(path_text).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"strategy file {path_text!r} does not exist")
    # the module's name carries the file's content: an edited file is imported afresh
    digest = hashlib.sha256(str(path).encode() + _file_sha256(path).encode()).hexdigest()[:12]
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
    except KeyboardInterrupt:
        del sys.modules[module_name]
        raise
    except BaseException as error:  # the user's code failed or exited: report it on one line
        del sys.modules[module_name]
        raise ConfigError(f"importing strategy file {path_text!r} failed: {_one_line(error)}") from None
    return module


_MODULE_HASHES: dict[str, str] = {}


def _import_module(name: str) -> ModuleType:
    try:
        module = importlib.import_module(name)
        source = getattr(module, "__file__", None)
        if source and Path(source).is_file():  # re-import a module whose file changed meanwhile
            digest = _file_sha256(Path(source))
            if _MODULE_HASHES.setdefault(name, digest) != digest:
                module = importlib.reload(module)
                _MODULE_HASHES[name] = digest
        return module
    except KeyboardInterrupt:
        raise
    except ModuleNotFoundError as error:
        if error.name and name.startswith(error.name):
            raise ConfigError(f"strategy module {name!r} not found: is its folder on sys.path "
                              f"(PYTHONPATH)? or give a file: path/to/file.py:ClassName") from None
        raise ConfigError(f"importing strategy module {name!r} failed: {_one_line(error)}") from None
    except BaseException as error:
        raise ConfigError(f"importing strategy module {name!r} failed: {_one_line(error)}") from None


def _strategy_class(module: ModuleType, where: str, class_name: str, base: type) -> type:
    candidates = [n for n, v in vars(module).items()
                  if isinstance(v, type) and issubclass(v, base) and v is not base]
    cls = getattr(module, class_name, None)
    if cls is None:
        close = difflib.get_close_matches(class_name, candidates, n=3, cutoff=0.5)
        hint = (f"did you mean {', '.join(map(repr, close))}?" if close else
                f"its {base.__name__} subclasses: {', '.join(candidates) or 'none'}")
        raise ConfigError(f"{where} has no class {class_name!r}; {hint}")
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"{where}:{class_name} is not a subclass of {base.__module__}.{base.__qualname__}")
    return cls


def _check_parameters(factory, params: Mapping, label: str) -> None:
    """Every parameter must be a keyword the constructor takes."""
    if not params:
        return
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return
    accepted = [p.name for p in signature.parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
        return
    unknown = [k for k in params if k not in accepted]
    if unknown:
        takes = f"it takes {', '.join(accepted)}" if accepted else "it takes no parameters"
        raise ConfigError(f"strategy {label} has no parameter {unknown[0]!r}; {takes}")


def _instantiate(factory, label: str, params: Mapping, base: type):
    _check_parameters(factory, params, label)
    try:
        strategy = factory(**dict(params))
    except KeyboardInterrupt:
        raise
    except BaseException as error:
        how = f"with {dict(params)}" if params else "without arguments"
        raise ConfigError(f"strategy {label} could not be constructed {how}: {_one_line(error)}") from None
    if not isinstance(strategy, base):
        raise ConfigError(f"strategy {label} did not produce a {base.__module__}.{base.__qualname__}")
    return strategy


def resolve_strategy(spec: str, params: Mapping | None = None, *, registry, base: type):
    """An instance of `base` for a name/alias in `registry`, `module:Class` or `file.py:Class`,
    constructed with `params` as keyword arguments (each track passes its registry and base class:
    `shrinkbench.vision.pruning.resolve_strategy`, `shrinkbench.llm.methods.resolve_llm_strategy`)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"strategy must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    params = dict(params or {})
    if ":" not in spec:
        try:
            factory = registry.get(spec)
        except UnknownNameError as error:
            raise UnknownNameError(f"{error} (or give your own as module:ClassName or "
                                   f"path/to/file.py:ClassName)") from None
        strategy = _instantiate(factory, repr(spec), params, base)
        strategy.name = registry.canonical(spec)  # what a record stores, resolvable again
        return strategy
    target, class_name = _split(spec)
    if _is_file_spec(target):
        module, where = _import_file(target), f"strategy file {target!r}"
    else:
        module, where = _import_module(target), f"strategy module {target!r}"
    return _instantiate(_strategy_class(module, where, class_name, base), repr(spec), params, base)


def strategy_source(spec: str) -> tuple[str, str] | None:
    """(path, sha256) of the file defining a user's strategy `module:Class` or
    `file.py:Class`; None for a registered name. Imports the module if needed."""
    if ":" not in spec:
        return None
    target, _ = _split(spec.strip())
    if _is_file_spec(target):
        path = Path(target).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"strategy file {target!r} does not exist")
    else:
        source = getattr(_import_module(target), "__file__", None)
        if not source:
            raise ConfigError(f"strategy module {target!r} has no source file to identify it by")
        path = Path(source).resolve()
    return str(path), _file_sha256(path)


def checked_strategy_source(cfg) -> dict[str, str]:
    """For a run of a user strategy, the path and sha256 of its source file, which must still be
    the file the config was validated with (its hash, `cfg.strategy_sha256`, is part of the run
    id). `cfg` is any track's config with `strategy`, `strategy_sha256` and `is_dense`."""
    found = None if cfg.is_dense else strategy_source(cfg.strategy)
    if found is None:
        return {}
    path, sha = found
    if cfg.strategy_sha256 is not None and sha != cfg.strategy_sha256:
        raise ConfigError(f"strategy file {path} changed since this run was planned (sha256 {sha[:12]}, the run "
                          f"was planned with {cfg.strategy_sha256[:12]}); start the sweep again")
    return {"strategy_source": path, "strategy_source_sha256": sha}


class ExitCalled(BaseException):
    """A strategy called `os._exit` (see `no_process_exit`)."""

    def __str__(self) -> str:
        return f"it called os._exit({self.args[0] if self.args else ''})"


@contextlib.contextmanager
def no_process_exit():
    """`os._exit` raises `ExitCalled` inside the block (user code cannot end the process)."""
    real = os._exit

    def refuse(status=0):
        raise ExitCalled(status)

    os._exit = refuse
    try:
        yield
    finally:
        os._exit = real

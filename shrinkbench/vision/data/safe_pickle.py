"""A restricted unpickler for data files that are pickles of plain numpy arrays.

CIFAR's "python version" batches are pickled dicts of a numpy uint8 array and lists of
ints and strings (written by Python 2's cPickle). Unpickling runs whatever callables the
file names, so this reader allows only the globals that rebuild numpy arrays and dtypes
and refuses every other one with a one-line `DataFormatError`. Python 2 byte strings are
decoded as latin-1, the documented way to read such files in Python 3.
"""
from __future__ import annotations

import pickle
from pathlib import Path

from shrinkbench.vision.data.spec import DataFormatError, one_line

ALLOWED_GLOBALS = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),  # pickle protocol 5
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    }
)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise _Forbidden(f"{module}.{name}")
        return super().find_class(module, name)


class _Forbidden(Exception):
    pass


def load_numpy_pickle(path: Path) -> object:
    """Unpickle `path` allowing only numpy arrays, dtypes and builtin containers."""
    try:
        with open(path, "rb") as handle:
            return _NumpyOnlyUnpickler(handle, encoding="latin1").load()
    except _Forbidden as err:
        raise DataFormatError(
            f"{path}: refusing to unpickle: it calls {err}, but a data pickle may only hold numpy arrays, dicts, lists, numbers and strings"
        ) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, OverflowError) as err:
        raise DataFormatError(f"{path}: not a readable data pickle ({type(err).__name__}: {one_line(err)})") from None

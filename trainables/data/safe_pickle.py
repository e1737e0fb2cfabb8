"""Loading data pickles without running their code: plain numeric numpy arrays in tuples and lists only.

numpy's own unpickling trusts the pickle's dtype and bytes (a forged object dtype makes it read bytes as
pointers and crash), so arrays are rebuilt here from their checked shape, dtype and bytes instead.
"""
from __future__ import annotations

import pickle
from typing import IO, Any

import numpy as np

# dtypes a data pickle may hold: plain numbers and booleans; object, structured and sub-array dtypes never
# (an object dtype would make numpy read the pickle's bytes as pointers)
_PLAIN_DTYPES = frozenset("?bBhHiIlLqQefdg")


class _DTypeStandIn:
    """Stands for numpy.dtype while unpickling: holds its spec and state, so it can be checked before it is built."""

    def __init__(self, spec: Any = None, align: Any = False, copy: Any = False) -> None:
        self.spec, self.state = spec, None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def real(self) -> np.dtype:
        state: tuple[Any, ...] = self.state if isinstance(self.state, tuple) else ()
        extras: tuple[Any, ...] = state[2:5] if len(state) >= 5 else ()
        if not isinstance(self.spec, str) or any(extra is not None for extra in extras):
            raise pickle.UnpicklingError(f"refused dtype {self.spec!r}: only plain numeric dtypes are admitted")
        dtype = np.dtype(self.spec)
        if dtype.char not in _PLAIN_DTYPES:
            raise pickle.UnpicklingError(f"refused dtype {self.spec!r}: only plain numeric dtypes are admitted")
        order = state[1] if len(state) > 1 else "|"
        return dtype.newbyteorder("<" if order == "<" else ">") if order in ("<", ">") else dtype


class _ArrayStandIn:
    """Stands for numpy.ndarray while unpickling; `real()` builds a copy of the array from checked parts."""

    def __init__(self, *args: Any) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def real(self) -> np.ndarray:
        state = self.state if isinstance(self.state, tuple) else ()
        parts = state[1:] if len(state) == 5 else state
        if len(parts) != 4 or not isinstance(parts[1], _DTypeStandIn):
            raise pickle.UnpicklingError("refused array: not a plain numpy array pickle")
        shape, dt, fortran, raw = parts
        dtype = dt.real()
        raw = raw.encode("latin1") if isinstance(raw, str) else raw
        if not isinstance(raw, (bytes, bytearray)) or not all(isinstance(n, int) and n >= 0 for n in shape):
            raise pickle.UnpicklingError("refused array: its data is not raw bytes of a valid shape")
        if len(raw) != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise pickle.UnpicklingError("refused array: its data does not match its shape and dtype")
        return np.frombuffer(bytes(raw), dtype=dtype).reshape(shape, order="F" if fortran else "C").copy()


def _reconstruct(*args: Any) -> _ArrayStandIn:
    return _ArrayStandIn()


def _realise(obj: Any) -> Any:
    """Replace the stand-ins in an unpickled structure by checked numpy arrays (tuples and lists walked)."""
    if isinstance(obj, _ArrayStandIn):
        return obj.real()
    if isinstance(obj, (tuple, list)):
        return type(obj)(_realise(x) for x in obj)
    if isinstance(obj, _DTypeStandIn):
        return obj.real()
    return obj


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that admits only plain numeric numpy arrays in tuples and lists; anything else is refused.
    Arrays are rebuilt from their checked shape, dtype and bytes: no numpy code runs on the pickle's state."""

    def find_class(self, module: str, name: str) -> Any:
        """Resolve only the three numpy globals an array pickle needs, as stand-ins."""
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return _reconstruct
        if module == "numpy" and name == "ndarray":
            return _ArrayStandIn
        if module == "numpy" and name == "dtype":
            return _DTypeStandIn
        raise pickle.UnpicklingError(f"refused global {module}.{name}: only numpy arrays are admitted")


def restricted_load(fh: IO[bytes]) -> Any:
    """Load a (Python 2 or 3) pickle of plain numpy arrays with RestrictedUnpickler."""
    return _realise(RestrictedUnpickler(fh, encoding="latin1").load())

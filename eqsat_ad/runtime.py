"""Run-time support shared by the reference interpreter and the NumPy backend.

* :func:`bind_inputs` turns the inputs of a call (positional in parameter order, or by
  keyword) into values of the right kind -- ``real`` -> ``float``, ``(vec n)``/``(mat m n)``
  -> C-ordered ``float64`` arrays, ``index``/``size`` -> ``int``, ``bool`` -> ``bool``,
  ``(pair a b)`` -> a tuple -- checks ranks and sizes against the parameter types, and binds
  the size names (``n`` in ``(vec n)``) to ints.  Every problem is a :class:`ShapeError`
  that names the parameter, the expected type and what was given.
* :func:`estimate_bytes` / :func:`check_alloc` refuse to allocate an array larger than
  :data:`MAX_ARRAY_BYTES` (2 GiB unless changed with :func:`set_max_array_bytes` or the
  :func:`array_limit` context manager) with a :class:`ResourceLimitError` giving the
  estimate.  Both executors call them before they allocate a ``build``.

>>> from eqsat_ad.lang.ast import Program, Param, Var
>>> from eqsat_ad.lang.types import vec
>>> p = Program((Param("x", vec("n")), Param("w", vec("n"))), Var("x"))
>>> env = bind_inputs(p, ([1.0, 2.0],), {"w": [3.0, 4.0]})
>>> env["n"], env["w"].dtype
(2, dtype('float64'))
>>> bind_inputs(p, (), {"x": [1.0, 2.0], "w": [1.0]})
Traceback (most recent call last):
...
eqsat_ad.errors.ShapeError: input 'w' should be (vec n) with n=2 (from 'x'), got shape (1,)
"""
from __future__ import annotations

import contextlib
import operator
from typing import Any, Iterator

import numpy as np

from .errors import ResourceLimitError, ShapeError
from .lang.types import (ArrayT, BoolT, IndexT, PairT, RealT, SizeT, Type, array_rank,
                         scalar_leaf, show_type)

__all__ = ["bind_inputs", "convert_input", "estimate_bytes", "check_alloc", "MAX_ARRAY_BYTES",
           "set_max_array_bytes", "array_limit", "fp_ignore", "to_output"]

#: Largest array (in bytes) either executor will allocate; see :func:`set_max_array_bytes`.
MAX_ARRAY_BYTES: int = 2 * 2 ** 30


# --------------------------------------------------------------------------------------
# resource guard
# --------------------------------------------------------------------------------------
def set_max_array_bytes(limit: int) -> int:
    """Set the largest array (bytes) the executors may allocate; returns the old limit.

    >>> old = set_max_array_bytes(1 << 20); _ = set_max_array_bytes(old)
    """
    global MAX_ARRAY_BYTES
    old, MAX_ARRAY_BYTES = MAX_ARRAY_BYTES, int(limit)
    return old


@contextlib.contextmanager
def array_limit(limit: int) -> Iterator[None]:
    """Temporarily change :data:`MAX_ARRAY_BYTES`.

    >>> with array_limit(1024):
    ...     check_alloc((1000,), "build")
    Traceback (most recent call last):
    ...
    eqsat_ad.errors.ResourceLimitError: build would allocate 7.8 KiB (1000 elements of 8 bytes), more than the limit of 1.0 KiB (see eqsat_ad.runtime.set_max_array_bytes)
    """
    old = set_max_array_bytes(limit)
    try:
        yield
    finally:
        set_max_array_bytes(old)


def estimate_bytes(shape: "tuple[int, ...] | int", itemsize: int = 8) -> int:
    """Bytes an array of ``shape`` (or of that many elements) takes.

    >>> estimate_bytes((1000, 1000))
    8000000
    """
    if isinstance(shape, (int, np.integer)):
        count = max(int(shape), 0)
    else:
        count = 1
        for s in shape:
            count *= max(int(s), 0)
    return count * itemsize


def _human(nbytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.0f} bytes" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} EiB"  # pragma: no cover


def check_alloc(shape: "tuple[int, ...] | int", what: str = "array", itemsize: int = 8,
                limit: int | None = None) -> None:
    """Raise :class:`ResourceLimitError` if an array of ``shape`` would exceed the limit.

    >>> check_alloc((10, 10))          # fine: returns None
    """
    lim = MAX_ARRAY_BYTES if limit is None else limit
    nbytes = estimate_bytes(shape, itemsize)
    if nbytes > lim:
        count = nbytes // itemsize
        raise ResourceLimitError(
            f"{what} would allocate {_human(nbytes)} ({count} elements of {itemsize} bytes), "
            f"more than the limit of {_human(lim)} (see eqsat_ad.runtime.set_max_array_bytes)")


# --------------------------------------------------------------------------------------
# floating-point error state
# --------------------------------------------------------------------------------------
try:  # numpy >= 2: the error state is a context variable; setting it directly is ~10x
    from numpy._core.umath import _extobj_contextvar as _FP_CV  # cheaper than np.errstate
    from numpy._core.umath import _make_extobj as _make_extobj
    FP_IGNORE_OBJ = _make_extobj(all="ignore")
except Exception:  # pragma: no cover - older numpy
    _FP_CV = None
    FP_IGNORE_OBJ = None


@contextlib.contextmanager
def fp_ignore() -> Iterator[None]:
    """Context manager: NumPy floating-point warnings off (division by zero gives inf,
    log of a negative number nan, ... silently, as IEEE 754 says).

    >>> with fp_ignore():
    ...     float(np.float64(1.0) / 0.0)
    inf
    """
    if _FP_CV is not None:
        tok = _FP_CV.set(FP_IGNORE_OBJ)
        try:
            yield
        finally:
            _FP_CV.reset(tok)
    else:  # pragma: no cover
        with np.errstate(all="ignore"):
            yield


# --------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------
def _shape_of(v: Any) -> tuple:
    try:
        return tuple(np.shape(v))
    except Exception:   # ragged nested lists
        return ("ragged",)


def _describe(v: Any) -> str:
    if isinstance(v, tuple) and not isinstance(v, np.ndarray):
        return f"a tuple of {len(v)}"
    shp = _shape_of(v)
    if shp == ("ragged",):
        return "a ragged nested list"
    if shp == ():
        return f"a scalar ({type(v).__name__})"
    return f"shape {shp}"


def convert_input(name: str, t: Type, v: Any, sizes: dict[str, tuple[int, str]]) -> Any:
    """Convert one input ``v`` for parameter ``name : t`` (see :func:`bind_inputs`).

    ``sizes`` maps size names already bound to ``(value, parameter it came from)`` and is
    updated with the size names ``t`` binds.
    """
    if isinstance(t, RealT):
        if isinstance(v, (float, int)) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, (tuple, list)) or np.ndim(v) != 0:
            raise ShapeError(f"input '{name}' should be real (a scalar), got {_describe(v)}")
        try:
            return float(v)
        except (TypeError, ValueError):
            raise ShapeError(f"input '{name}' should be real (a number), got {type(v).__name__}") from None
    if isinstance(t, (IndexT, SizeT)):
        try:
            if isinstance(v, (float, np.floating)) and float(v).is_integer():
                return int(v)
            return operator.index(v)
        except TypeError:
            raise ShapeError(f"input '{name}' should be {show_type(t)} (an integer), "
                             f"got {type(v).__name__}") from None
    if isinstance(t, BoolT):
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        raise ShapeError(f"input '{name}' should be bool, got {type(v).__name__}")
    if isinstance(t, PairT):
        if not (isinstance(v, (tuple, list)) and len(v) == 2):
            raise ShapeError(f"input '{name}' should be {show_type(t)} (a tuple of 2), "
                             f"got {_describe(v)}")
        return (convert_input(name + ".fst", t.fst, v[0], sizes),
                convert_input(name + ".snd", t.snd, v[1], sizes))
    if isinstance(t, ArrayT):
        leaf = scalar_leaf(t)
        rank = array_rank(t)
        if isinstance(leaf, RealT):
            dtype = np.float64
        elif isinstance(leaf, (IndexT, SizeT)):
            dtype = np.int64
        elif isinstance(leaf, BoolT):
            dtype = np.bool_
        else:
            raise ShapeError(f"input '{name}': parameters of type {show_type(t)} are not supported "
                             f"(arrays of pairs: pass the components as separate arrays)")
        try:
            arr = np.ascontiguousarray(v, dtype=dtype)
        except (ValueError, TypeError) as exc:
            raise ShapeError(f"input '{name}' should be {show_type(t)}, got {_describe(v)} "
                             f"({exc})") from None
        if dtype is np.int64 and np.asarray(v).dtype.kind == "f":
            if not np.array_equal(arr, np.asarray(v)):
                raise ShapeError(f"input '{name}' should be {show_type(t)} (integers), got non-integral values")
        if arr.ndim != rank:
            raise ShapeError(f"input '{name}' should be {show_type(t)} (rank {rank}), "
                             f"got {_describe(v)}")
        tt: Type = t
        for axis in range(rank):
            assert isinstance(tt, ArrayT)
            want, got = tt.size, arr.shape[axis]
            if isinstance(want, int) and not isinstance(want, bool):
                if got != want:
                    raise ShapeError(f"input '{name}' should be {show_type(t)}, got shape {arr.shape}")
            elif isinstance(want, str):
                if want in sizes:
                    val, src = sizes[want]
                    if val != got:
                        frm = "" if src == name else f" (from '{src}')"
                        raise ShapeError(f"input '{name}' should be {show_type(t)} with "
                                         f"{want}={val}{frm}, got shape {arr.shape}")
                else:
                    sizes[want] = (got, name)
            tt = tt.elem
        return arr
    raise ShapeError(f"input '{name}': unsupported parameter type {t!r}")


def bind_inputs(prog, args: tuple = (), kwargs: "dict[str, Any] | None" = None) -> dict[str, Any]:
    """Bind the inputs of a call of ``prog`` (a :class:`~eqsat_ad.lang.ast.Program`).

    Inputs come positionally (parameter order) and/or by keyword.  Returns a dict with one
    entry per parameter (converted value) and per size name (an ``int``).  Raises
    :class:`ShapeError` for missing, unknown or duplicated inputs, a wrong rank, or sizes
    that disagree with the parameter types.

    >>> from eqsat_ad.lang.ast import Program, Param, Var
    >>> from eqsat_ad.lang.types import mat, REAL
    >>> p = Program((Param("A", mat("m", 3)), Param("s", REAL)), Var("A"))
    >>> env = bind_inputs(p, (), {"A": np.zeros((2, 3)), "s": 1})
    >>> env["m"], env["s"], env["A"].shape
    (2, 1.0, (2, 3))
    """
    kwargs = kwargs or {}
    params = prog.params
    names = [p.name for p in params]
    if len(args) > len(params):
        raise ShapeError(f"too many inputs: the program takes {len(params)} "
                         f"({', '.join(names) or 'none'}), got {len(args)} positional")
    given: dict[str, Any] = {}
    for p, a in zip(params, args):
        given[p.name] = a
    for k, v in kwargs.items():
        if k not in names:
            raise ShapeError(f"unknown input '{k}'; the program's inputs are "
                             f"{', '.join(names) or '(none)'}")
        if k in given:
            raise ShapeError(f"input '{k}' given twice (positionally and by keyword)")
        given[k] = v
    for p in params:
        if p.name not in given:
            raise ShapeError(f"missing input '{p.name}' of type {show_type(p.type)}")
    sizes: dict[str, tuple[int, str]] = {}
    env: dict[str, Any] = {}
    for p in params:
        env[p.name] = convert_input(p.name, p.type, given[p.name], sizes)
    for n, (val, _src) in sizes.items():
        if n not in env:
            env[n] = val
    return env


# --------------------------------------------------------------------------------------
# outputs
# --------------------------------------------------------------------------------------
def to_output(v: Any) -> Any:
    """Canonical form of a result: ``float`` / ``int`` / ``bool`` scalars, NumPy arrays
    (``float64`` for reals), tuples for pairs; an array of pairs becomes a pair of arrays
    (one per component, "struct of arrays"); ragged arrays stay Python lists.

    >>> to_output([(1.0, 2), (3.0, 4)])
    (array([1., 3.]), array([2, 4]))
    """
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v
    if isinstance(v, tuple):
        return tuple(to_output(x) for x in v)
    if isinstance(v, list):
        if v and all(isinstance(x, tuple) for x in v):
            return (to_output(pack([x[0] for x in v])), to_output(pack([x[1] for x in v])))
        packed = pack(v)
        if isinstance(packed, np.ndarray):
            return packed
        return [to_output(x) for x in v]
    return v


def pack(items: list) -> Any:
    """A list of element values as an ndarray when it is rectangular and of one scalar
    kind (reals -> float64, ints -> int64, bools -> bool), else the list itself.

    >>> pack([1.0, 2.0]), pack([np.ones(2), np.zeros(2)]).shape, pack([np.ones(2), np.ones(3)])[1].shape
    (array([1., 2.]), (2, 2), (3,))
    """
    if not items:
        return np.zeros(0)
    first = items[0]
    if isinstance(first, (bool, np.bool_)):
        if all(isinstance(x, (bool, np.bool_)) for x in items):
            return np.array(items, dtype=np.bool_)
        return items
    if isinstance(first, (int, np.integer)):
        if all(isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) for x in items):
            return np.array(items, dtype=np.int64)
        return items
    if isinstance(first, (float, np.floating)):
        if all(isinstance(x, (float, np.floating)) for x in items):
            return np.array(items, dtype=np.float64)
        return items
    if isinstance(first, np.ndarray):
        shp, dt = first.shape, first.dtype
        if all(isinstance(x, np.ndarray) and x.shape == shp and x.dtype == dt for x in items):
            return np.stack(items)
        return items
    return items

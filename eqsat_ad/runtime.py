"""Run-time support shared by the reference interpreter and the NumPy backend.

* :func:`bind_inputs` turns the inputs of a call (positional in parameter order, or by
  keyword) into values of the right kind -- ``real`` -> ``float``, ``(vec n)``/``(mat m n)``
  -> C-ordered ``float64`` arrays, ``index``/``size`` -> ``int``, ``bool`` -> ``bool``,
  ``(pair a b)`` -> a tuple -- checks ranks and sizes against the parameter types, and binds
  the size names (``n`` in ``(vec n)``) to ints.  Every problem is a :class:`ShapeError`
  that names the parameter, the expected type and what was given.

  **Dtype policy.**  All real computation is in ``float64``: real inputs of any real or
  integer dtype (``float32``, ``float16``, ``int64``, ``uint8``, ...) are converted to
  ``float64`` and real results are ``float64`` whatever came in (a ``float32`` input gives a
  ``float64`` result).  Inputs that would lose information silently are refused: complex
  numbers (the imaginary part), booleans and strings for reals, a scalar where an array is
  expected (and the reverse), non-integral values for ``index``/``size``, integers beyond
  the 64-bit range, and negative values for ``size``.
* :func:`estimate_bytes` / :func:`check_alloc` refuse to allocate an array larger than
  :func:`max_array_bytes` (2 GiB unless changed) with a :class:`ResourceLimitError` giving
  the estimate.  Both executors call them before they allocate a ``build``.  The limit is
  a process-wide default (:func:`set_max_array_bytes`) that :func:`array_limit` overrides
  for the current thread / context only (a :mod:`contextvars` variable), so one thread's
  tighter limit never affects another's.
* :func:`check_sizes` validates the ``sizes`` given for a program's size names (positive
  integers, names the program knows).

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
import contextvars
import math
import operator
from typing import Any, Iterator

import numpy as np

from .errors import EqsatError, ResourceLimitError, ShapeError
from .lang.types import (ArrayT, BoolT, IndexT, PairT, RealT, SizeT, Type, array_rank,
                         scalar_leaf, show_type, size_names)

# MAX_ARRAY_BYTES is served by the module's __getattr__ (the limit in force in this context)
__all__ = ["bind_inputs", "convert_input", "estimate_bytes", "check_alloc", "MAX_ARRAY_BYTES",  # noqa: F822
           "max_array_bytes", "set_max_array_bytes", "array_limit", "fp_ignore", "to_output",
           "check_sizes", "MAX_SIZE"]

# The process-wide default of the largest array (in bytes) either executor will allocate
# (see set_max_array_bytes), and the per-context override set by array_limit.  Reading
# ``eqsat_ad.runtime.MAX_ARRAY_BYTES`` gives the limit in force in the current context
# (module __getattr__ below).
_default_max_array_bytes: int = 2 * 2 ** 30
_context_max_array_bytes: contextvars.ContextVar = contextvars.ContextVar(
    "eqsat_ad_max_array_bytes", default=None)

#: Largest value of a size (and of an ``index``/``size`` input): egglog's i64 range.
MAX_SIZE = 2 ** 63 - 1


def __getattr__(name: str):
    if name == "MAX_ARRAY_BYTES":
        return max_array_bytes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------------------
# resource guard
# --------------------------------------------------------------------------------------
def _limit_value(limit) -> int:
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0:
        raise ValueError(f"an array limit must be a non-negative number of bytes, got {limit!r}")
    return int(limit)


def max_array_bytes() -> int:
    """The largest array (bytes) the executors may allocate here: the innermost
    :func:`array_limit` of the current thread/context, else the process default.

    >>> max_array_bytes() == 2 * 2 ** 30
    True
    """
    v = _context_max_array_bytes.get()
    return _default_max_array_bytes if v is None else v


def set_max_array_bytes(limit: int) -> int:
    """Set the process-wide default of the largest array (bytes) the executors may
    allocate; returns the old default.  An :func:`array_limit` in force in a thread or
    context still takes precedence there.

    >>> old = set_max_array_bytes(1 << 20); _ = set_max_array_bytes(old)
    """
    global _default_max_array_bytes
    old, _default_max_array_bytes = _default_max_array_bytes, _limit_value(limit)
    return old


@contextlib.contextmanager
def array_limit(limit: int) -> Iterator[None]:
    """Temporarily change the array limit for the current thread (or asyncio task /
    :mod:`contextvars` context) only; other threads keep theirs.

    >>> with array_limit(1024):
    ...     check_alloc((1000,), "build")
    Traceback (most recent call last):
    ...
    eqsat_ad.errors.ResourceLimitError: build would allocate 7.8 KiB (1000 elements of 8 bytes), more than the limit of 1.0 KiB (see eqsat_ad.runtime.set_max_array_bytes)
    """
    tok = _context_max_array_bytes.set(_limit_value(limit))
    try:
        yield
    finally:
        _context_max_array_bytes.reset(tok)


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
    lim = max_array_bytes() if limit is None else limit
    nbytes = estimate_bytes(shape, itemsize)
    if nbytes > lim:
        count = nbytes // itemsize
        raise ResourceLimitError(
            f"{what} would allocate {_human(nbytes)} ({count} elements of {itemsize} bytes), "
            f"more than the limit of {_human(lim)} (see eqsat_ad.runtime.set_max_array_bytes)")


# --------------------------------------------------------------------------------------
# sizes for the cost model
# --------------------------------------------------------------------------------------
def known_size_names(prog) -> list[str]:
    """The names ``sizes`` may give a value for: the size names of the parameter types
    (``n`` in ``(vec n)``) and the parameters of type ``size``."""
    names: list[str] = []
    for p in prog.params:
        for n in size_names(p.type):
            if n not in names:
                names.append(n)
    for p in prog.params:
        if isinstance(p.type, SizeT) and p.name not in names:
            names.append(p.name)
    return names


def size_value(name: str, v: Any, what: str = "size") -> int:
    """``v`` as a size: a positive integer (an integral float such as ``1e3`` is fine) of at
    most :data:`MAX_SIZE`; anything else is an :class:`EqsatError` naming ``name``."""
    if isinstance(v, (bool, np.bool_)):
        raise EqsatError(f"{what} {name}={v!r}: expected a positive integer, got a bool")
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f) or not f.is_integer():
            raise EqsatError(f"{what} {name}={v!r}: expected a positive integer")
        if abs(f) > MAX_SIZE:
            raise EqsatError(f"{what} {name}={v!r} is too large (at most 2**63-1)")
        v = int(f)
    try:
        iv = operator.index(v)
    except TypeError:
        raise EqsatError(f"{what} {name}={v!r}: expected a positive integer, "
                         f"got {type(v).__name__}") from None
    if iv < 1:
        raise EqsatError(f"{what} {name}={iv}: a size must be a positive integer")
    if iv > MAX_SIZE:
        raise EqsatError(f"{what} {name}={iv if iv < 10 ** 30 else '(' + str(len(str(iv))) + ' digits)'} "
                         f"is too large (at most 2**63-1)")
    return int(iv)


def check_sizes(prog, sizes: "dict | None", what: str = "size", strict: bool = False) -> dict[str, int]:
    """Validate ``sizes`` (size name -> value) for ``prog``: every value must be a positive
    integer, and a name the program does not know (:func:`known_size_names`) is an error
    when one of the program's own size names is left without a value (a typo such as ``N``
    for ``n``) -- or always, with ``strict``.  Otherwise extra names are ignored, so that one
    ``sizes`` dict can serve several programs.  Returns the program's sizes as ints; raises
    :class:`EqsatError` naming the bad entry and the known names.

    >>> from eqsat_ad.lang.ast import Program, Param, Var
    >>> from eqsat_ad.lang.types import vec
    >>> p = Program((Param("x", vec("n")),), Var("x"))
    >>> check_sizes(p, {"n": 1e3, "m": 5})
    {'n': 1000}
    >>> check_sizes(p, {"N": 10})
    Traceback (most recent call last):
    ...
    eqsat_ad.errors.EqsatError: unknown size name 'N'; the program's size names are: n
    """
    if sizes is None:
        return {}
    if not isinstance(sizes, dict):
        raise EqsatError(f"sizes must be a dict of size name -> positive integer, got "
                         f"{type(sizes).__name__}")
    known = known_size_names(prog)
    missing = [n for n in known if n not in sizes]
    out: dict[str, int] = {}
    for k, v in sizes.items():
        if not isinstance(k, str):
            raise EqsatError(f"size names are strings, got {k!r}")
        val = size_value(k, v, what)
        if k in known:
            out[k] = val
        elif strict or missing:
            raise EqsatError(f"unknown size name {k!r}; the program's size names are: "
                             f"{', '.join(known) if known else '(none)'}")
    return out


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


_REAL_KINDS = "iuf"


def _kind_word(kind: str) -> str:
    return {"i": "integer", "u": "unsigned integer", "f": "float", "c": "complex", "b": "bool", "U": "string", "S": "bytes", "O": "object",
            "M": "datetime", "m": "timedelta", "V": "structured"}.get(kind, kind)


def _bad_leaf(v: Any) -> "str | None":
    """What is wrong with a nested list/tuple of numbers for an array parameter: the first
    leaf that is a bool, a complex number or a string, else None (linear scan)."""
    stack = [v]
    while stack:
        x = stack.pop()
        if isinstance(x, (list, tuple)):
            stack.extend(x)
        elif isinstance(x, (bool, np.bool_)):
            return "bool"
        elif isinstance(x, (complex, np.complexfloating)):
            return "complex"
        elif isinstance(x, (str, bytes)):
            return "string"
        elif isinstance(x, np.ndarray) and x.dtype.kind not in _REAL_KINDS:
            return _kind_word(x.dtype.kind)
    return None


def _scalar_real(name: str, v: Any) -> float:
    if type(v) is float:
        return v
    if isinstance(v, (bool, np.bool_)):
        raise ShapeError(f"input '{name}' should be real (a number), got a bool ({v!r})")
    if isinstance(v, (int, np.integer)):
        try:
            return float(v)
        except OverflowError:
            raise ShapeError(f"input '{name}' should be real, got an integer too large for "
                             f"a float64") from None
    if isinstance(v, (float, np.floating)):
        return float(v)
    if isinstance(v, (complex, np.complexfloating)):
        raise ShapeError(f"input '{name}' should be real, got a complex number ({v!r}); "
                         f"complex inputs are not supported")
    if isinstance(v, (str, bytes)):
        raise ShapeError(f"input '{name}' should be real (a number), got a string ({v!r})")
    if isinstance(v, (tuple, list)) or np.ndim(v) != 0:
        raise ShapeError(f"input '{name}' should be real (a scalar), got {_describe(v)}")
    if isinstance(v, np.ndarray):          # a 0-d array
        if v.dtype.kind not in _REAL_KINDS:
            raise ShapeError(f"input '{name}' should be real, got a 0-d {_kind_word(v.dtype.kind)} "
                             f"array")
        return float(v)
    raise ShapeError(f"input '{name}' should be real (a number), got {type(v).__name__}")


def _scalar_int(name: str, t: Type, v: Any) -> int:
    what = show_type(t)
    if isinstance(v, (bool, np.bool_)):
        raise ShapeError(f"input '{name}' should be {what} (an integer), got a bool ({v!r})")
    if isinstance(v, np.ndarray) and v.ndim == 0:
        v = v[()]
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not (math.isfinite(f) and f.is_integer()):
            raise ShapeError(f"input '{name}' should be {what} (an integer), got {v!r}")
        v = int(f)
    try:
        iv = operator.index(v)
    except TypeError:
        raise ShapeError(f"input '{name}' should be {what} (an integer), "
                         f"got {_describe(v) if np.ndim(v) else type(v).__name__}") from None
    if not -MAX_SIZE - 1 <= iv <= MAX_SIZE:
        raise ShapeError(f"input '{name}' should be {what}: the integer is out of the 64-bit range")
    if isinstance(t, SizeT) and iv < 0:
        raise ShapeError(f"input '{name}' should be size (a non-negative integer), got {iv}")
    return int(iv)


def convert_input(name: str, t: Type, v: Any, sizes: dict[str, tuple[int, str]]) -> Any:
    """Convert one input ``v`` for parameter ``name : t`` (see :func:`bind_inputs` and the
    dtype policy in the module docstring).

    ``sizes`` maps size names already bound to ``(value, parameter it came from)`` and is
    updated with the size names ``t`` binds.

    >>> from eqsat_ad.lang.types import vec, REAL
    >>> convert_input("x", vec("n"), np.ones(2, np.float32), {}).dtype
    dtype('float64')
    >>> convert_input("s", REAL, 1 + 2j, {})
    Traceback (most recent call last):
    ...
    eqsat_ad.errors.ShapeError: input 's' should be real, got a complex number ((1+2j)); complex inputs are not supported
    >>> convert_input("x", vec("n"), 3.0, {})
    Traceback (most recent call last):
    ...
    eqsat_ad.errors.ShapeError: input 'x' should be (vec n) (rank 1), got a scalar (float)
    """
    if isinstance(t, RealT):
        return _scalar_real(name, v)
    if isinstance(t, (IndexT, SizeT)):
        return _scalar_int(name, t, v)
    if isinstance(t, BoolT):
        if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind == "b":
            return bool(v)
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
            dtype, kinds = np.float64, _REAL_KINDS
        elif isinstance(leaf, (IndexT, SizeT)):
            dtype, kinds = np.int64, "iuf"          # integral floats are checked below
        elif isinstance(leaf, BoolT):
            dtype, kinds = np.bool_, "b"
        else:
            raise ShapeError(f"input '{name}': parameters of type {show_type(t)} are not supported "
                             f"(arrays of pairs: pass the components as separate arrays)")
        if isinstance(v, (list, tuple)) and dtype is not np.bool_:
            bad = _bad_leaf(v)
            if bad:
                raise ShapeError(f"input '{name}' should be {show_type(t)}, got a list with "
                                 f"{'a' if bad != 'object' else 'an'} {bad} element")
        if isinstance(v, (str, bytes)):
            raise ShapeError(f"input '{name}' should be {show_type(t)}, got a string")
        try:
            src = v if isinstance(v, np.ndarray) else np.asarray(v)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ShapeError(f"input '{name}' should be {show_type(t)}, got {_describe(v)} "
                             f"({exc})") from None
        if src.dtype.kind not in kinds:
            if src.dtype.kind == "O":
                raise ShapeError(f"input '{name}' should be {show_type(t)}, got {_describe(v)} "
                                 f"(not a rectangular array of 64-bit numbers)")
            want = "bool" if dtype is np.bool_ else "numbers"
            raise ShapeError(f"input '{name}' should be {show_type(t)} ({want}), got an array "
                             f"of {_kind_word(src.dtype.kind)} (dtype {src.dtype})")
        if src.ndim != rank:
            raise ShapeError(f"input '{name}' should be {show_type(t)} (rank {rank}), "
                             f"got {_describe(v)}")
        if dtype is np.int64 and src.dtype.kind == "f":
            if not np.all(np.isfinite(src)) or not np.array_equal(src, np.round(src)):
                raise ShapeError(f"input '{name}' should be {show_type(t)} (integers), got "
                                 f"non-integral values")
        if dtype is np.int64 and src.dtype.kind in "uf" and src.size:
            if float(src.max()) > MAX_SIZE or float(src.min()) < -MAX_SIZE - 1:
                raise ShapeError(f"input '{name}' should be {show_type(t)}: a value is out of the "
                                 f"64-bit range")
        try:
            arr = np.ascontiguousarray(src, dtype=dtype)
        except (ValueError, TypeError, OverflowError) as exc:  # pragma: no cover - checked above
            raise ShapeError(f"input '{name}' should be {show_type(t)}, got {_describe(v)} "
                             f"({exc})") from None
        tt: Type = t
        for axis in range(rank):
            assert isinstance(tt, ArrayT)
            want, got = tt.size, arr.shape[axis]
            if isinstance(want, int) and not isinstance(want, bool):
                if got != want:
                    raise ShapeError(f"input '{name}' should be {show_type(t)}, got shape {arr.shape}")
            elif isinstance(want, str):
                if want in sizes:
                    val, src_name = sizes[want]
                    if val != got:
                        frm = "" if src_name == name else f" (from '{src_name}')"
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

"""The NumPy backend's generated code on another array namespace (Dask, JAX, CuPy).

The code generator of :mod:`eqsat_ad.backend.numpy_backend` calls NumPy only through the
names of its globals table (``_addr`` = ``np.add.reduce``, ``_exp``, ``_where``, the helpers
of :mod:`._helpers`, ...) and through methods every NumPy-like array has (``.transpose``,
``.reshape``, ``.astype``, slicing with ``None``).  So the same source runs on any array
library once every global is bound to that library's equivalent: :func:`globals_table`
does that from the library's Python array API namespace (``array_api_compat``), with a
few functions the standard lacks (``einsum``) taken from the library itself.  The source is
generated with ``portable=True`` (results leave through the namespace's output functions
instead of NumPy's ``float()`` and ``.base`` tests; loops index vectors instead of reading
Python lists).

What stays on the host: scalars that do not depend on array data (sizes, literals, Python
floats computed from real inputs) are computed by NumPy exactly as in the NumPy backend; an
elementwise function receives a namespace array only when one of its operands is one.

A backend is a :class:`Namespace` (how its arrays are recognised, made from NumPy, and
brought back; whether they are mutable; loop and memory limits).  :func:`compile_for`
compiles a program for it: the result (:class:`XpProgram`) takes the namespace's arrays or
NumPy arrays / lists (validated like the NumPy backend's inputs, then converted) and returns
the namespace's arrays; a scalar result is a 0-d array (``float(r)`` gives the number).
What a namespace cannot run is found before anything runs: the program then runs with the
NumPy backend on the inputs brought to NumPy, and ``.fallback`` says why.  An error of the
array library while running is reported as an :class:`~eqsat_ad.errors.EvalError` naming
the backend, not as the library's traceback.

>>> import pytest; da = pytest.importorskip("dask.array")   # the machinery is shared; Dask runs it here
>>> from eqsat_ad.lang.syntax import parse
>>> from eqsat_ad.backend import dask_backend
>>> f = dask_backend.compile(parse("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))"))
>>> r = f(da.arange(4.0, chunks=2))
>>> type(r).__name__, r.ndim, float(r)
('Array', 0, 14.0)
"""
from __future__ import annotations

import builtins
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import runtime as _runtime
from ..errors import EqsatError, EvalError, ShapeError
from ..lang.primitives import ARG_EXTREMES, REAL_FNS
from ..lang.types import (
    ArrayT,
    BoolT,
    IndexT,
    PairT,
    RealT,
    SizeT,
    array_rank,
    array_sizes,
    scalar_leaf,
    show_type,
)
from . import _helpers as H

__all__ = ["Namespace", "XpProgram", "array_api", "compile_for", "generate_source", "globals_table"]

#: the array API names of the real functions whose NumPy ufunc is called otherwise
_ARRAY_API_NAME = {"absolute": "abs", "power": "pow", "true_divide": "divide"}


def array_api(backend: str, extra: str) -> Callable:
    """``array_api_compat.array_namespace``: the array API names a library's own module may
    lack (Dask's: ``concat``, ``permute_dims``, ``astype``, ``pow``, ...)."""
    try:
        from array_api_compat import array_namespace
    except ImportError:
        raise EqsatError(f"the {backend} backend needs array-api-compat "
                         f"(pip install 'eqsat-ad[{extra}]')") from None
    return array_namespace


@dataclass
class Namespace:
    """One array library the generated code can run on.

    ``xp``: its array API namespace; ``native``: the library's own module (functions the
    standard lacks, e.g. ``einsum``); ``array_type``: the type of its arrays (the generated
    prologue lets them through unconverted); ``stage``: NumPy inputs -> its arrays (all of a
    call's inputs at once, with the size names of their axes and the sizes: a chunking
    decision needs them); ``to_numpy``: one of its arrays -> NumPy (may compute);
    ``mutable``: results must not share memory with inputs; ``check_alloc``: refuse
    intermediates over :data:`eqsat_ad.runtime.MAX_ARRAY_BYTES` (off for Dask: chunks bound
    the memory, not the array); ``max_loop_iterations``: refuse longer sequential loops (each
    iteration adds to a task graph); ``unsupported``: ``(regex, reason)`` pairs of generated
    code it cannot run; ``context``: a context manager entered around a call (JAX's 64-bit
    mode); ``options``: the options of the backend's ``compile`` (a pickled program is
    compiled again with them)."""
    name: str
    xp: Any
    native: Any
    array_type: type
    stage: Callable[[dict, dict, dict], dict]
    to_numpy: Callable[[Any], np.ndarray]
    mutable: bool = False
    check_alloc: bool = True
    max_loop_iterations: int | None = None
    unsupported: tuple = ()
    context: Callable[[], Any] | None = None
    options: dict = field(default_factory=dict)
    #: the block lengths of a call's inputs by extent (Dask): arrays the code creates along
    #: an axis of that extent (aranges, fills) are cut the same way, so blocks line up
    blocks: Callable[[dict], dict] | None = None
    #: how a compiled program's function is called (JAX: traced by jax.jit): (program, inputs)
    call: Callable[[Any, list], Any] | None = None
    #: index ranges (``arange``) are NumPy arrays on the host, so that index arithmetic and
    #: its bounds checks stay concrete under tracing (JAX); not for Dask (a range along the
    #: data axis is as long as the data) nor CuPy (its operators refuse NumPy operands)
    host_indices: bool = False
    #: the value of one of its arrays for a decision in Python (Dask: an array computed from
    #: index ranges alone is computed here, without the cluster; one that reads the inputs
    #: with the active scheduler): (array, the call's inputs) -> NumPy value
    concrete: Callable[[Any, dict], Any] | None = None
    #: while a call is traced (JAX), loops are unrolled: one longer than this stops the trace
    max_traced_loop: int | None = None
    tracing: bool = False
    _blocks_now: dict = field(default_factory=dict)
    _inputs_now: dict = field(default_factory=dict)

    def is_array(self, v: Any) -> bool:
        return isinstance(v, self.array_type)

    def note_inputs(self, values: dict) -> None:
        self._inputs_now = values
        if self.blocks is not None:
            self._blocks_now = self.blocks(values)

    def value(self, v: Any) -> Any:
        """``v`` (an array of the namespace) as NumPy, for a decision in Python."""
        if self.concrete is not None:
            return self.concrete(v, self._inputs_now)
        return self.to_numpy(v)

    def arange(self, n: int):
        """``0 .. n-1`` (int64), cut like the inputs' axes of extent ``n``."""
        n = int(n)
        if self.host_indices:
            return np.arange(n, dtype=np.int64)
        chunks = self._blocks_now.get(n)
        if chunks is None:
            return self.xp.arange(n, dtype=np.dtype(np.int64))
        return self.native.arange(n, dtype=np.dtype(np.int64), chunks=chunks)

    def full(self, shape, value, dtype=None):
        """``np.full``, cut like the inputs' axes of the same extents."""
        shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)
        if not any(s in self._blocks_now for s in shape):
            return self.xp.full(shape, value, dtype=dtype)
        chunks = tuple(self._blocks_now.get(s, s) for s in shape)
        if dtype is None:
            dtype = np.asarray(value).dtype
        return self.native.full(shape, value, dtype=dtype, chunks=chunks)


# --------------------------------------------------------------------------------------
# the globals table
# --------------------------------------------------------------------------------------
def globals_table(ns: Namespace) -> dict[str, Any]:
    """Every global of the NumPy backend's code, bound for ``ns`` (plus the output functions
    of portable code).  ``tests/test_xp_backends.py`` checks that no name is missing."""
    from .numpy_backend import _GLOBALS
    xp, is_array = ns.xp, ns.is_array
    f64, i64 = np.dtype(np.float64), np.dtype(np.int64)

    h = _Helpers(ns)
    arr = h.arr

    def elementwise(np_fn: Callable, xp_fn: Callable) -> Callable:
        """``xp_fn`` when an operand is an array of the namespace, else NumPy's (host scalars)."""
        def call(*args):
            if any(is_array(a) for a in args):
                return xp_fn(*args)
            return np_fn(*args)
        call.__name__ = getattr(np_fn, "__name__", "fn")
        return call

    def xp_fn(np_fn: Callable) -> Callable:
        name = np_fn.__name__
        fn = getattr(xp, _ARRAY_API_NAME.get(name, name), None)
        if fn is None:
            raise EqsatError(f"the {ns.name} backend: its array namespace has no {name!r}")
        return fn

    def reduction(xp_name: str) -> Callable:
        fn = getattr(xp, xp_name)

        def reduce(x, axis):
            return fn(arr(x), axis=axis)
        return reduce

    def extreme(is_max: bool, skip_nan: bool) -> Callable:
        """``np.fmax.reduce`` (NaN skipped) / ``np.maximum.reduce`` (NaN wins) with an
        ``initial``; an empty axis gives ``initial`` (the array API's max refuses it)."""
        fn, combine = (xp.max, xp.maximum) if is_max else (xp.min, xp.minimum)

        def reduce(x, axis, initial):
            x = arr(x)
            axes = (axis,) if isinstance(axis, int) else tuple(axis)
            keep = tuple(s for k, s in enumerate(x.shape) if k not in axes)
            if any(x.shape[k] == 0 for k in axes):
                return ns.full(keep, initial, dtype=x.dtype)
            if skip_nan:
                x = xp.where(xp.isnan(x), initial, x)
            return combine(fn(x, axis=axis), initial)
        return reduce

    def dot(a, b):
        """``np.dot``: the last axis of ``a`` with the first (vector) or second-to-last of ``b``."""
        a, b = arr(a), arr(b)
        return xp.tensordot(a, b, axes=((a.ndim - 1,), (max(b.ndim - 2, 0),)))

    def where(c, a, b):
        if not any(is_array(v) for v in (c, a, b)):
            return np.where(c, a, b)
        kind = np.result_type(*(v.dtype if is_array(v) else np.asarray(v).dtype for v in (a, b)))
        return xp.where(arr(c), arr(a, kind), arr(b, kind))

    def full(shape, value):
        if is_array(value):
            out = xp.broadcast_to(value, (shape,) if isinstance(shape, int) else tuple(shape))
            return xp.asarray(out, copy=True) if ns.mutable else out
        return ns.full(shape, value)

    def broadcast_to(v, shape):
        return xp.broadcast_to(arr(v), tuple(shape))

    def pow_(a, b):
        if not (is_array(a) or is_array(b)):
            return np.float_power(a, b)
        return xp.pow(arr(a, f64), arr(b, f64) if is_array(b) else float(b))

    def matmul(a, b):
        return xp.matmul(arr(a), arr(b))

    def moveaxis(a, src, dst):
        return xp.moveaxis(arr(a), src, dst)

    def einsum(subscripts, a, b):
        fn = getattr(xp, "einsum", None) or getattr(ns.native, "einsum", None)
        if fn is None:   # pragma: no cover - dask, JAX and CuPy all have it
            raise EvalError(f"the {ns.name} backend has no einsum for the contraction {subscripts}")
        return fn(subscripts, arr(a), arr(b))

    def arg_extreme(is_max: bool) -> Callable:
        """``argmax``/``argmin`` along the first axis; 0 where the vector is empty
        (:func:`eqsat_ad.lang.primitives._arg_extreme`)."""
        fn = xp.argmax if is_max else xp.argmin

        def f(a):
            a = arr(a, f64)
            if a.shape[0] == 0:
                return xp.zeros(a.shape[1:], dtype=i64) if a.ndim > 1 else 0
            return xp.astype(fn(a, axis=0), i64)
        return f

    def int_division(np_fn: Callable, xp_fn: Callable) -> Callable:
        """``div``/``mod`` (:func:`._helpers.floordiv`): 0 where the divisor is 0 (masked out
        by a guard; the generated check raises where a zero divisor is needed)."""
        def call(a, b):
            if not (is_array(a) or is_array(b)):
                return np_fn(a, b)
            b = arr(b, i64)
            zero = b == 0
            return xp.where(zero, xp.zeros((), dtype=i64), xp_fn(arr(a, i64), xp.where(zero, xp.ones((), dtype=i64), b)))
        return call

    table: dict[str, Any] = dict(_GLOBALS)
    table.update({
        "_np": _NumpyLike(h), "_nd": ns.array_type,
        "_shape": lambda v: tuple(v.shape) if is_array(v) else np.shape(v),
        "_size": lambda v: math.prod(v.shape) if is_array(v) else np.size(v), "_arange": ns.arange,
        "_full": full, "_broadcast_to": broadcast_to, "_where": where, "_div": elementwise(np.true_divide, xp.divide),
        "_pow": pow_, "_dot": dot, "_matmul": matmul, "_moveaxis": moveaxis,
        "_addr": reduction("sum"), "_mulr": reduction("prod"),
        "_fmaxr": extreme(True, True), "_fminr": extreme(False, True),
        "_maxr": extreme(True, False), "_minr": extreme(False, False),
        "_contract": einsum,
        "_gather": h.gather, "_take_rows": h.take_rows, "_diag_where": h.diag_where, "_oob": h.oob, "_needed": h.needed,
        "_span_needed": h.span_needed, "_edge_rows": h.edge_rows, "_raise_oob": h.raise_oob,
        "_clip_idx": h.clip_idx, "_arange_at": h.arange_at, "_expand": h.expand, "_mul_n": h.mul_n,
        "_max_extent": h.max_extent, "_fold_extreme": h.fold_extreme,
        "_check_elems": H.check_elems if ns.check_alloc else (lambda count, what: None),
        "_out_array": h.out_array, "_unalias": h.out_array, "_float": h.out_real,
        "_out_scalar": h.out_scalar, "_out_array_xp": h.out_array,
        "_floordiv": int_division(H.floordiv, xp.floor_divide), "_mod": int_division(H.mod, xp.remainder),
    })
    for p in REAL_FNS.values():
        table[p.numpy_name] = elementwise(p.interp, xp_fn(p.interp))
    for p in ARG_EXTREMES.values():
        table[p.numpy_name] = arg_extreme(p.name == "argmax")
    if ns.max_loop_iterations is not None or ns.max_traced_loop is not None:
        # the generated code's sequential loops are its only `range` calls: each iteration
        # of one adds its operations to the namespace's graph, or to the trace
        table["range"] = _bounded_range(ns)
    return table


class LoopTooLongToTrace(Exception):
    """A sequential loop longer than :attr:`Namespace.max_traced_loop` met while tracing."""


def _bounded_range(ns: Namespace) -> Callable:
    limit = ns.max_loop_iterations

    def bounded_range(n):
        n = int(n)
        if ns.tracing and ns.max_traced_loop is not None and n > ns.max_traced_loop:
            raise LoopTooLongToTrace(f"a sequential loop of {n} iterations (more than "
                                     f"max_traced_loop={ns.max_traced_loop} to unroll)")
        if limit is not None and n > limit:
            raise EvalError(
                f"this program has a sequential loop of {n} iterations; on {ns.name} every "
                f"iteration adds its operations to the task graph, and the limit is "
                f"max_loop_iterations={limit}.  Raise it (compile(..., max_loop_iterations=...)) "
                f"or run the program with the NumPy or Numba backend.")
        return builtins.range(n)
    return bounded_range


class _Accumulate:
    """``_np.<ufunc>.accumulate`` along axis 0 (a scan's states) from cumulative sums/products."""

    def __init__(self, h: _Helpers, ufunc: str):
        self.h, self.ufunc = h, ufunc

    def accumulate(self, x):
        native, x = self.h.ns.native, self.h.arr(x)
        if self.ufunc == "add":
            return native.cumsum(x, axis=0)
        if self.ufunc == "multiply":
            return native.cumprod(x, axis=0)
        if self.ufunc == "subtract":        # x0, x0 - x1, x0 - x1 - x2, ...
            return self.h.xp.concat([x[:1], x[:1] - native.cumsum(x[1:], axis=0)], axis=0)
        raise EvalError(f"the {self.h.ns.name} backend cannot accumulate with {self.ufunc}")


class _NumpyLike:
    """What the generated code calls as ``_np.<name>`` (e.g. a scan's states), on the
    namespace: lists of scalars become arrays of it; other names are the library's own."""

    def __init__(self, h: _Helpers):
        self._h = h

    def _stack(self, items, dtype=None):
        h = self._h
        vals = [h.arr(v) for v in items]
        dtype = dtype if dtype is not None else np.result_type(*(v.dtype for v in vals)) if vals else np.float64
        if not vals:
            return h.xp.zeros((0,), dtype=np.dtype(dtype))
        return h.xp.stack([h.arr(v, np.dtype(dtype)) for v in vals], axis=0)

    def concatenate(self, parts):
        h = self._h
        arrays = [self._stack(p) if isinstance(p, list) else h.arr(p) for p in parts]
        dtype = np.result_type(*(a.dtype for a in arrays))
        return h.xp.concat([h.arr(a, dtype) for a in arrays], axis=0)

    def array(self, items, dtype=None):
        return self._stack(items, None if dtype is None else np.dtype(dtype)) if isinstance(items, list) \
            else self._h.arr(items, None if dtype is None else np.dtype(dtype))

    def empty(self, shape, dtype=float):
        return self._h.ns.native.empty(tuple(shape), dtype=np.dtype(dtype))

    def __getattr__(self, name: str):
        if name in ("add", "multiply", "subtract"):
            return _Accumulate(self._h, name)
        return getattr(self._h.ns.native, name)


class _Helpers:
    """The run-time helpers of :mod:`._helpers`, on the namespace's arrays.  Where a helper
    must decide something in Python (is an index out of range? is a masked read needed?)
    the value is computed by :meth:`Namespace.value` -- for Dask, when the function is
    called (locally when it comes from index ranges alone)."""

    def __init__(self, ns: Namespace):
        self.ns, self.xp, self.is_array = ns, ns.xp, ns.is_array

    def arr(self, v: Any, dtype=None) -> Any:
        """``v`` as an array of the namespace (a scalar: 0-d), of ``dtype`` if given."""
        if self.is_array(v):
            return v if dtype is None or v.dtype == dtype else self.xp.astype(v, dtype)
        if dtype is None:
            dtype = np.asarray(v).dtype
        return self.xp.asarray(np.asarray(v, dtype=dtype))

    def gather(self, a, k, r: int, pa: int, pk: int):
        """:func:`._helpers.gather`: ``result[rest, axes] = a[k[axes], rest, axes]``."""
        xp = self.xp
        a, k = self.arr(a), self.arr(k)
        p = max(pa, pk)
        if pa < p:
            a = xp.reshape(a, a.shape[:r] + (1,) * (p - pa) + a.shape[r:])
        am = xp.moveaxis(a, 0, -1)
        kk = xp.reshape(k, (1,) * (r - 1) + (1,) * (p - pk) + tuple(k.shape) + (1,))
        take = getattr(xp, "take_along_axis", None) or getattr(self.ns.native, "take_along_axis", None)
        shape = np.broadcast_shapes(am.shape[:-1] + (1,), tuple(kk.shape))
        kk = xp.broadcast_to(xp.astype(kk, np.dtype(np.int64)), shape)
        am = xp.broadcast_to(am, shape[:-1] + (am.shape[-1],))
        if take is not None:
            return take(am, kk, axis=-1)[..., 0]
        # no take_along_axis (Dask): select with a one-hot mask along the gathered axis
        hot = self.ns.arange(am.shape[-1]).reshape((1,) * (len(shape) - 1) + (am.shape[-1],)) == kk
        return xp.sum(xp.where(hot, am, xp.zeros((), dtype=am.dtype)), axis=-1)

    def take_rows(self, a, k):
        """``a[k]`` of NumPy (rows of ``a`` picked by the index array ``k``: shape
        ``k.shape + a.shape[1:]``), moved so that ``a``'s other axes come first -- the layout
        of ``a.transpose(1, .., 0)[..., k]`` -- through a one-dimensional take, which every
        namespace has (Dask indexes with a one-dimensional array of indices only)."""
        xp = self.xp
        a, k = self.arr(a), self.arr(k)
        rows = xp.take(a, xp.reshape(k, (-1,)), axis=0)
        out = xp.reshape(rows, tuple(k.shape) + tuple(a.shape[1:]))
        if a.ndim == 1:
            return out
        nk, rest = k.ndim, a.ndim - 1
        return xp.permute_dims(out, tuple(range(nk, nk + rest)) + tuple(range(nk)))

    def diag_where(self, on, off, pi: int, pj: int, shape: tuple):
        """:func:`._helpers.diag_where` without writing into an array: a mask of the diagonal."""
        xp = self.xp
        n = len(shape)
        ii = self.ns.arange(shape[pi]).reshape(tuple(shape[pi] if k == pi else 1 for k in range(n)))
        jj = self.ns.arange(shape[pj]).reshape(tuple(shape[pj] if k == pj else 1 for k in range(n)))
        f64 = np.dtype(np.float64)
        return xp.broadcast_to(xp.where(ii == jj, self.arr(on, f64), self.arr(off, f64)), tuple(shape))

    def oob(self, k, n: int) -> bool:
        if self.is_array(k):
            return k.size != 0 and bool(self.ns.value(self.xp.any((k < 0) | (k >= n))))
        return H.oob(k, n)

    def needed(self, bad, *guards) -> bool:
        """:func:`._helpers.needed`: is a bad index read where every guard holds?"""
        if not (self.is_array(bad) or any(self.is_array(g) for g in guards)):
            return H.needed(bad, *guards)
        m = bad
        for g in guards:
            if getattr(g, "ndim", 0) == 0 and not g:
                return False
            m = m & g
        return bool(self.ns.value(self.xp.any(self.arr(m))))

    def span_needed(self, off: int, n: int, length: int, d: int, *guards) -> bool:
        """:func:`._helpers.span_needed` (the guards cut to the rows out of range)."""
        if not any(self.is_array(g) for g in guards):
            return H.span_needed(off, n, length, d, *guards)
        lo = min(n, max(0, -off))
        hi = max(lo, min(n, length - off))
        for start, stop in ((0, lo), (hi, n)):
            if stop <= start:
                continue
            m: Any = True
            for g in guards:
                if getattr(g, "ndim", 0):
                    if g.ndim >= d and g.shape[-d] > 1:
                        g = g[(Ellipsis, slice(start, stop)) + (slice(None),) * (d - 1)]
                    m = m & g
                elif not g:
                    m = False
                    break
            if m is True or (m is not False and bool(self.ns.value(self.xp.any(self.arr(m))))):
                return True
        return False

    def edge_rows(self, a, off: int, n: int):
        """:func:`._helpers.edge_rows`: slices and the edge rows repeated, concatenated."""
        xp = self.xp
        length = a.shape[0]
        rest = tuple(a.shape[1:])
        if length == 0:
            return xp.zeros((n,) + rest, dtype=a.dtype)
        lo = min(n, max(0, -off))
        hi = max(lo, min(n, length - off))
        parts = []
        if lo:
            parts.append(xp.broadcast_to(a[0:1], (lo,) + rest))
        if hi > lo:
            parts.append(a[off + lo:off + hi])
        if n > hi:
            parts.append(xp.broadcast_to(a[length - 1:length], (n - hi,) + rest))
        if not parts:
            return xp.zeros((0,) + rest, dtype=a.dtype)
        return parts[0] if len(parts) == 1 else xp.concat(parts, axis=0)

    def raise_oob(self, k, n: int, where: str) -> None:
        H.raise_oob(self.ns.value(k) if self.is_array(k) else k, n, where)

    def clip_idx(self, k, a):
        xp = self.xp
        n = a.shape[0]
        if n == 0:
            a = xp.zeros((1,) + tuple(a.shape[1:]), dtype=a.dtype)
            n = 1
        if self.is_array(k):
            return xp.clip(k, 0, n - 1), a
        return H.clip_idx(k, np.zeros(n))[0], a

    def arange_at(self, n: int, d: int):
        return self.ns.arange(n).reshape((int(n),) + (1,) * (d - 1))      # (host or namespace)

    def expand(self, v, r: int, pv: int, axes_shape: tuple):
        xp = self.xp
        v = self.arr(v)
        s = tuple(v.shape)
        if pv < len(axes_shape):
            v = xp.reshape(v, s[:r] + (1,) * (len(axes_shape) - pv) + s[r:])
        return xp.broadcast_to(v, s[:r] + tuple(axes_shape))

    def mul_n(self, b, n: int):
        if n > 0:
            return b * n
        return self.xp.zeros_like(b) if self.is_array(b) else H.mul_n(b, n)

    def max_extent(self, s) -> int:
        if self.is_array(s):
            return max(int(self.ns.value(self.xp.max(s))), 0) if s.size else 0
        return H.max_extent(s)

    def fold_extreme(self, init, red, is_max: bool):
        if not (self.is_array(init) or self.is_array(red)):
            return H.fold_extreme(init, red, is_max)
        xp = self.xp
        pick = xp.maximum if is_max else xp.minimum
        red = self.arr(red)
        out = xp.where(xp.isnan(red), init, pick(init, red))      # np.fmax: a NaN element loses
        return xp.where(xp.isnan(self.arr(init)), init, out)        # a NaN init is never replaced

    def out_array(self, v, inputs: tuple = ()):
        """A result array: the namespace's, never memory of an input or of another part of
        the result where arrays are mutable (CuPy)."""
        v = self.arr(v)
        if self.ns.mutable:
            shares = getattr(self.ns.native, "may_share_memory", None)
            if any(v is a or (shares is not None and self.is_array(a) and shares(v, a)) for a in inputs) \
                    or 0 in getattr(v, "strides", (1,)):
                v = self.xp.asarray(v, copy=True)
        return v

    def out_scalar(self, v, kind: str):
        """A scalar result: a 0-d array of the namespace (float64, int64 or bool)."""
        dtype = {"f": np.float64, "i": np.int64, "b": np.bool_}[kind]
        return self.arr(v, np.dtype(dtype))

    def out_real(self, v):
        return self.out_scalar(v, "f")


# --------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------
_DTYPES = {"f": np.dtype(np.float64), "i": np.dtype(np.int64), "b": np.dtype(np.bool_)}


class _Host:
    """A NumPy input to be staged onto the namespace, with the size names of its axes."""
    __slots__ = ("array", "dims")

    def __init__(self, array: np.ndarray, dims: tuple):
        self.array, self.dims = array, dims


def convert_input(ns: Namespace, name: str, t, v: Any, sizes: dict, stage_later: bool = False) -> Any:
    """One input for parameter ``name : t``: an array of the namespace is checked (rank,
    kind of numbers, sizes -- recorded in ``sizes`` as :func:`eqsat_ad.runtime.convert_input`
    does) and cast to the dtype of the type, without computing it; anything else is
    converted by the runtime (NumPy) and, with ``stage_later``, returned as a ``_Host`` for
    :meth:`Namespace.stage`."""
    if isinstance(t, PairT):
        if not (isinstance(v, (tuple, list)) and len(v) == 2):
            return _runtime.convert_input(name, t, v, sizes)     # raises its error
        return (convert_input(ns, name + ".fst", t.fst, v[0], sizes, stage_later),
                convert_input(ns, name + ".snd", t.snd, v[1], sizes, stage_later))
    if isinstance(t, ArrayT) and ns.is_array(v):
        leaf = scalar_leaf(t)
        kind = "f" if isinstance(leaf, RealT) else "i" if isinstance(leaf, (IndexT, SizeT)) else \
            "b" if isinstance(leaf, BoolT) else None
        rank = array_rank(t)
        if kind is None:
            return _runtime.convert_input(name, t, v, sizes)     # raises its error
        kinds = {"f": "biuf", "i": "iu", "b": "b"}[kind]
        if v.dtype.kind not in kinds:
            raise ShapeError(f"input '{name}' should be {show_type(t)}, got a {ns.name} array of "
                             f"dtype {v.dtype}" + (" (pass integers)" if kind == "i" else ""))
        if v.ndim != rank:
            raise ShapeError(f"input '{name}' should be {show_type(t)} (rank {rank}), got a "
                             f"{ns.name} array of shape {tuple(v.shape)}")
        for axis, want in enumerate(array_sizes(t)):
            got = v.shape[axis]
            if isinstance(got, float) and math.isnan(got):
                raise ShapeError(f"input '{name}': a {ns.name} array of unknown shape "
                                 f"{tuple(v.shape)}; compute its chunk sizes first "
                                 f"(compute_chunk_sizes())")
            if isinstance(want, int) and not isinstance(want, bool):
                if got != want:
                    raise ShapeError(f"input '{name}' should be {show_type(t)}, got shape {tuple(v.shape)}")
            elif isinstance(want, str):
                if want in sizes and sizes[want][0] != got:
                    val, frm = sizes[want]
                    frm = "" if frm == name else f" (from '{frm}')"
                    raise ShapeError(f"input '{name}' should be {show_type(t)} with {want}={val}{frm}, "
                                     f"got shape {tuple(v.shape)}")
                sizes.setdefault(want, (int(got), name))
        return v if v.dtype == _DTYPES[kind] else ns.xp.astype(v, _DTYPES[kind])
    out = _runtime.convert_input(name, t, v, sizes)
    if stage_later and isinstance(out, np.ndarray):
        return _Host(out, tuple(array_sizes(t)))
    if isinstance(out, np.ndarray):
        return ns.stage({name: out}, {name: tuple(array_sizes(t))}, {k: s for k, (s, _) in sizes.items()})[name]
    return out


def _staged(ns: Namespace, values: dict, sizes: dict) -> dict:
    """The ``_Host`` leaves of ``values`` staged onto the namespace (all at once)."""
    hosts: dict = {}

    def collect(v, path):
        if isinstance(v, tuple):
            for k, x in enumerate(v):
                collect(x, path + (k,))
        elif isinstance(v, _Host):
            hosts[path] = v
    for name, v in values.items():
        collect(v, (name,))
    if not hosts:
        return values
    keys = {path: "/".join(map(str, path)) for path in hosts}
    staged = ns.stage({keys[p]: h.array for p, h in hosts.items()}, {keys[p]: h.dims for p, h in hosts.items()},
                      {k: s for k, (s, _) in sizes.items()})

    def rebuild(v, path):
        if isinstance(v, tuple):
            return tuple(rebuild(x, path + (k,)) for k, x in enumerate(v))
        return staged[keys[path]] if isinstance(v, _Host) else v
    return {name: rebuild(v, (name,)) for name, v in values.items()}


# --------------------------------------------------------------------------------------
# compiled programs
# --------------------------------------------------------------------------------------
class XpProgram:
    """A program compiled for an array namespace: call it with the inputs, positionally or
    by keyword (the namespace's arrays, NumPy arrays, lists, numbers).  ``source``: the
    generated Python; ``program``: the elaborated program; ``fallback``: None, or why it
    runs with the NumPy backend; ``backend``: the backend's name."""
    source: str
    program: Any
    fallback: str | None
    backend: str
    namespace: Namespace

    def __call__(self, *args, **kwargs):
        ns = self.namespace
        given = _given(self.program, args, kwargs)
        with ns.context() if ns.context is not None else _nullcontext():
            sizes: dict = {}
            values = {p.name: convert_input(ns, p.name, p.type, given[p.name], sizes, stage_later=True)
                      for p in self.program.params}
            values = _staged(ns, values, sizes)
            ns.note_inputs(values)
            if self.fallback is not None:
                return self._run_on_numpy(values)
            try:
                vals = [values[p.name] for p in self.program.params]
                return ns.call(self, vals) if ns.call is not None else self._fn(self, *vals)
            except EqsatError:
                raise
            except Exception as exc:   # noqa: BLE001 - an array library's error, reported plainly
                raise EvalError(f"the {ns.name} backend could not run this program "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                                f"the NumPy backend runs every program "
                                f"(ea.compile(prog, backend='numpy'))") from None

    def _run_on_numpy(self, values: dict):
        ns = self.namespace
        host = {k: _map_leaves(v, lambda a: ns.to_numpy(a) if ns.is_array(a) else a) for k, v in values.items()}
        out = self._numpy(**host)
        h = _Helpers(ns)

        def back(v):
            if isinstance(v, list):         # a ragged array: a list of the namespace's arrays
                return [back(x) for x in v]
            if isinstance(v, np.ndarray):
                return ns.stage({"r": v}, {"r": (None,) * v.ndim}, {})["r"]
            return h.out_scalar(v, "b" if isinstance(v, bool) else "i" if isinstance(v, int) else "f")
        return _map_leaves(out, back)

    # the bound prologue calls these on inputs it does not accept; _given/convert_input
    # have checked everything before, so they are reached only by inconsistent inputs
    def _bad_inputs(self, args: tuple, kwargs: dict) -> None:
        raise ShapeError("inputs do not match the parameter types")

    def _recall(self, vals: tuple, more: tuple, extra: dict):   # pragma: no cover - called positionally
        raise ShapeError("inputs do not match the parameters")

    _generic = _recall

    def __repr__(self) -> str:
        names = ", ".join(p.name for p in self.program.params)
        return f"<{self.backend} program ({names})" + (" on NumPy>" if self.fallback else ">")

    # pickle and copy: the generated function is not picklable, so a copy is compiled again
    # from the program with the same options (``Namespace.options``: those of ``compile``)
    def __reduce__(self):
        from .registry import compile_for as compile_with
        return (_compiled, (compile_with, self._input_program, self.backend, dict(self.namespace.options)))


def _compiled(compile_with, prog, backend: str, options: dict):
    return compile_with(prog, backend, **options)


def _map_leaves(v, fn):
    if isinstance(v, tuple):
        return tuple(_map_leaves(x, fn) for x in v)
    return fn(v)


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _given(prog, args: tuple, kwargs: dict) -> dict:
    """Inputs by parameter name; a missing, unknown or repeated one is the runtime's error."""
    names = [p.name for p in prog.params]
    given = dict(zip(names, args))
    if len(args) > len(names) or any(k not in names or k in given for k in kwargs) or \
            len(given) + len(kwargs) != len(names):
        _runtime.bind_inputs(prog, args, kwargs)      # raises the detailed error
    given.update(kwargs)
    return given


_IN_PLACE = re.compile(r"^\s*[A-Za-z_]\w*\[[^\n]*\] = ", re.MULTILINE)

#: constructs of generated code an immutable namespace cannot run: (pattern, reason)
IMMUTABLE = ((_IN_PLACE, "the generated code writes into an array in place (the states of a scan "
                         "or a loop's stores), and these arrays are immutable"),)


def generate_source(ns: Namespace, prog) -> tuple[str, dict[str, Any]]:
    """The ``(source, globals)`` that run ``prog`` on ``ns`` (the portable NumPy source)."""
    from .numpy_backend import generate_source as numpy_source
    src, glb = numpy_source(prog, portable=True)
    return src, _bind(ns, glb)


def _bind(ns: Namespace, glb: dict) -> dict:
    """The namespace's globals table with the program's own constants of ``glb`` and the
    namespace's input conversion."""
    from .numpy_backend import _GLOBALS
    table = globals_table(ns)
    table.update({k: v for k, v in glb.items() if k not in _GLOBALS})   # the program's constants
    table["_cin"] = lambda name, t, v, sizes: convert_input(ns, name, t, v, sizes)
    return table


def compile_for(ns: Namespace, prog) -> XpProgram:
    """``prog`` compiled for the namespace ``ns`` (see the module docstring)."""
    from ..lang.typecheck import elaborate
    from ._values import _Unsupported
    from .numpy_backend import compile as np_compile
    from .numpy_backend import generate_source
    obj = XpProgram.__new__(XpProgram)
    obj.namespace, obj.backend, obj.program = ns, ns.name, elaborate(prog)
    obj._input_program = prog
    fallback = None
    try:
        src, glb = generate_source(prog, portable=True)
    except _Unsupported as exc:
        fallback = f"the vectorised code cannot express it ({exc})"
        src = ""
    if fallback is None:
        for pattern, reason in ns.unsupported:
            if pattern.search(src):
                fallback = reason
                break
    if fallback is not None:
        obj._numpy = np_compile(prog)
        runner = "the reference interpreter" if obj._numpy.fallback else "the NumPy backend"
        obj.fallback = f"{fallback}; it runs with {runner} on the inputs copied to NumPy"
        obj.source = f"# The {ns.name} backend cannot run this program: {fallback}.\n" \
                     f"# It runs with {runner} (inputs copied to NumPy, results back).\n"
        return obj
    table = _bind(ns, glb)
    scope: dict[str, Any] = {}
    exec(builtins.compile(src, f"<eqsat_ad generated: {ns.name}>", "exec"), table, scope)  # noqa: S102
    obj._fn = scope["_run"]
    obj.source, obj.fallback = src, None
    obj.call_state = {}           # what ns.call keeps between calls (JAX: the traced functions)
    return obj

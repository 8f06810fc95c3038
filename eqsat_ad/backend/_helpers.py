"""Run-time helpers called by generated NumPy code (see :mod:`eqsat_ad.backend.numpy_backend`).

Everything on the fast path of a generated function is inline NumPy; these helpers are for
the rarer shapes of computation (a ``get`` whose array and index both vary along index
axes, a broadcast to a joint layout) and for the error paths (an index out of range,
a too-large allocation, bad inputs).

Layout reminder: a value of array rank ``r`` that depends on index variables at depths
``S`` is an ndarray of shape ``data dims (r) + axis dims (p = max S)``, the axis of depth
``d`` being at position ``-d``; depths not in ``S`` have extent 1.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import runtime as _runtime
from ..cost.semantics import einsum_planned   # when planning pays off: declared with its cost
from ..errors import EvalError, ResourceLimitError


def gather(a: np.ndarray, k: Any, r: int, pa: int, pk: int) -> np.ndarray:
    """``get a k`` where both the array ``a`` (rank ``r``, ``pa`` axis dims) and the index
    ``k`` (``pk`` axis dims) vary along index axes: result[rest, axes] = a[k[axes], rest, axes].

    >>> A = np.arange(6.).reshape(3, 2)      # data (3,), one axis of extent 2 (depth 1)
    >>> gather(A, np.array([2, 0]), 1, 1, 1)  # element j of column j: A[2,0], A[0,1]
    array([4., 1.])
    """
    p = max(pa, pk)
    if pa < p:
        a = a.reshape(a.shape[:r] + (1,) * (p - pa) + a.shape[r:])
    am = np.moveaxis(a, 0, -1)
    kk = np.reshape(k, (1,) * (r - 1) + (1,) * (p - pk) + np.shape(k) + (1,))
    return np.take_along_axis(am, kk.astype(np.intp, copy=False), axis=-1)[..., 0]


def contract(subscripts: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.einsum`` of two operands; large ones go through BLAS (``optimize``), small ones
    skip the planning overhead."""
    return np.einsum(subscripts, a, b, optimize=einsum_planned(a.size, b.size))


def diag_where(on: Any, off: Any, pi: int, pj: int, shape: tuple) -> np.ndarray:
    """``where(i == j, on, off)`` over the axes at positions ``pi``, ``pj`` (of equal extent)
    of an array of ``shape``: ``off`` broadcast into a fresh array, then the diagonal set
    from ``on`` (which may have extent 1 along one of the two axes).

    >>> diag_where(np.array([1., 2.]), 0.0, 0, 1, (2, 2))
    array([[1., 0.],
           [0., 2.]])
    """
    if type(off) is float and off == 0.0:
        out = np.zeros(shape)
    else:
        out = np.empty(shape)
        out[...] = off
    if len(shape) == 2 and type(on) is np.ndarray and on.size == shape[0]:
        # the common case (a Jacobian): the diagonal of a matrix is a strided view of it
        out.reshape(-1)[::shape[0] + 1] = on.reshape(-1)
        return out
    k = np.arange(shape[pi])
    idx: list = [slice(None)] * len(shape)
    idx[pi] = idx[pj] = k
    out[tuple(idx)] = np.broadcast_to(on, shape)[tuple(idx)]
    return out


def oob(k: Any, n: int) -> bool:
    """Is some index in ``k`` outside ``0 <= k < n``?  (Vectorised: min and max.)"""
    if isinstance(k, np.ndarray):
        if k.size == 0:
            return False
        return bool(k.min() < 0 or k.max() >= n)
    return not 0 <= k < n


def badmask(k: Any, n: int) -> Any:
    return (k < 0) | (k >= n)


def needed(bad: Any, *guards: Any) -> bool:
    """Is a bad index needed, i.e. not masked out by every guard (conditions of enclosing
    vectorised ``if`` branches, ``n > 0`` of enclosing loops)?

    A scalar guard is tested once, not per element; the array guards are tested only at
    the positions (along each axis the bad mask varies on) that hold a bad index, so a
    guard varying along other axes is not broadcast against the whole index range."""
    arrays = []
    for g in guards:
        if isinstance(g, np.ndarray) and g.ndim:
            arrays.append(g)
        elif not g:
            return False
    if not np.any(bad):
        return False
    if not arrays:
        return True
    if isinstance(bad, np.ndarray) and bad.ndim:
        axes = range(-bad.ndim, 0)          # layouts align at the end (axis of depth d at -d)
        for ax in axes:
            if bad.shape[ax] == 1:
                continue
            others = tuple(x for x in axes if x != ax)
            keep = np.flatnonzero(np.any(bad, axis=others) if others else bad)
            if keep.size == bad.shape[ax]:
                continue
            bad = np.take(bad, keep, axis=ax)
            arrays = [np.take(g, keep, axis=ax) if g.ndim >= -ax and g.shape[ax] > 1 else g
                      for g in arrays]
    m = bad
    for g in arrays:
        m = np.logical_and(m, g)
    return bool(np.any(m))


def span_needed(off: int, n: int, length: int, d: int, *guards: Any) -> bool:
    """Is an out-of-range row of ``get a (i + off)``, ``i = 0 .. n-1`` along the axis of
    depth ``d`` and ``a`` of ``length`` rows, needed, i.e. read where every guard holds?

    Only the positions of the axis whose row is out of range (a few at the ends) are
    tested: a guard is cut to them before the guards are combined.

    >>> span_needed(-1, 4, 4, 1, np.array([False, True, True, True]))  # i = 0 is masked
    False
    >>> span_needed(-1, 4, 4, 1, np.array([True, True, True, False]))
    True
    """
    lo = min(n, max(0, -off))                # rows i < lo read before row 0
    hi = max(lo, min(n, length - off))       # rows i >= hi read past the last row
    for start, stop in ((0, lo), (hi, n)):
        if stop <= start:
            continue
        m: Any = True
        for g in guards:
            if isinstance(g, np.ndarray) and g.ndim:
                if g.ndim >= d and g.shape[-d] > 1:
                    g = g[(Ellipsis, slice(start, stop)) + (slice(None),) * (d - 1)]
                m = np.logical_and(m, g)
            elif not g:
                m = False
                break
        if np.any(m):
            return True
    return False


def edge_rows(a: np.ndarray, off: int, n: int) -> np.ndarray:
    """Rows ``off .. off + n - 1`` of ``a``, a row out of range replaced by the nearest
    edge row (a guarded read whose out-of-range rows are masked out: their values are
    thrown away).  A copy of whole rows, not an element-wise gather.

    >>> edge_rows(np.array([1., 2., 3.]), -1, 3)
    array([1., 1., 2.])
    """
    if a.shape[0] == 0:
        a = np.zeros((1,) + a.shape[1:], dtype=a.dtype)
    # slices, not np.take(..., mode="clip"): a gather is ~10x slower than a copy of rows
    length = a.shape[0]
    lo = min(n, max(0, -off))                # rows before row 0
    hi = max(lo, min(n, length - off))       # rows from here on are past the last row
    out = np.empty((n,) + a.shape[1:], dtype=a.dtype)
    out[lo:hi] = a[off + lo:off + hi]
    out[:lo] = a[0]
    out[hi:] = a[length - 1]
    return out


def range_mask(lo: int, hi: int, n: int, d: int) -> np.ndarray:
    """``lo <= i < hi`` for ``i = 0 .. n-1`` along the axis of depth ``d`` (shape ``(n, 1, ..,
    1)``): the guard of a range-guarded ``if``'s other branch, made only where a check of that
    branch fails (the fast path has no mask).

    >>> range_mask(1, 3, 4, 1)
    array([False,  True,  True, False])
    """
    k = np.arange(n)
    return ((k >= lo) & (k < hi)).reshape((n,) + (1,) * (d - 1))


def cut_axis(g: Any, lo: int, hi: int, d: int) -> Any:
    """A guard ``g`` (a bool, or an array over index axes) on the positions ``lo .. hi - 1``
    of the axis of depth ``d`` -- for a check inside the sub-range of a range-guarded ``if``.

    >>> cut_axis(np.array([True, False, True]), 1, 3, 1)
    array([False,  True])
    >>> cut_axis(True, 1, 3, 1)
    True
    """
    if isinstance(g, np.ndarray) and g.ndim >= d and g.shape[-d] > 1:
        return g[(Ellipsis, slice(lo, hi)) + (slice(None),) * (d - 1)]
    return g


def window(a: np.ndarray, start: int, shape: tuple, depths: tuple, where: str, *guards: Any) -> np.ndarray:
    """``get a (+ i k)`` for index axes of the given depths (extents in ``shape``, the layout's
    axis dims; ``start``: the sum of their shifts) and a vector ``a``: a sliding window of it
    (a strided view, copied), no index array.  Where an index is out of range it is an error if a
    guard needs it, else clipped (the general guarded read).

    >>> window(np.arange(5.0), 0, (3, 2), (2, 1), "w")       # [k, i] = a[i + k]
    array([[0., 1.],
           [1., 2.],
           [2., 3.]])
    """
    L = a.shape[0]
    p = len(shape)
    exts = [shape[p - d] for d in depths]
    if min(exts) <= 0:
        return np.zeros(shape, dtype=a.dtype)
    if start < 0 or start + sum(exts) - len(exts) >= L:
        k: Any = start
        for ext, d in zip(exts, depths):
            k = k + arange_at(ext, d)
        if needed(badmask(k, L), *guards):
            raise_oob(k, L, where)
        k, aa = clip_idx(k, a)
        return np.broadcast_to(aa[k], shape)
    strides = tuple(a.strides[0] if (p - pos) in depths else 0 for pos in range(p))
    # copied into a fresh C-ordered array: a matrix product of the strided view itself would
    # not go to BLAS (15x slower than the copy and the BLAS call at 5 x 10^4 elements)
    return np.ascontiguousarray(np.lib.stride_tricks.as_strided(a[start:], shape=shape, strides=strides,
                                                                writeable=False))


def floordiv(a: Any, b: Any) -> Any:
    """``a // b`` (floor) where ``b`` may hold zeros at positions masked out by a guard: a zero
    divisor gives 0 there (the check before the call raises where one is needed).

    >>> floordiv(np.array([-7, 7, 3]), np.array([2, 0, -2]))
    array([-4,  0, -2])
    """
    if isinstance(b, np.ndarray):
        return np.where(b == 0, 0, np.floor_divide(a, np.where(b == 0, 1, b)))
    return a // b if b else a * 0


def mod(a: Any, b: Any) -> Any:
    """``a % b`` (the divisor's sign), 0 where ``b`` is 0 (as :func:`floordiv`).

    >>> mod(np.array([-7, 7, 3]), np.array([2, 0, -2]))
    array([ 1,  0, -1])
    """
    if isinstance(b, np.ndarray):
        return np.where(b == 0, 0, np.remainder(a, np.where(b == 0, 1, b)))
    return a % b if b else a * 0


def raise_zero_div(where: str) -> None:
    raise EvalError(f"integer division by zero in {where}")


def raise_oob(k: Any, n: int, where: str) -> None:
    """Raise the interpreter's out-of-range message for the first bad index in ``k``."""
    if isinstance(k, np.ndarray):
        bad = k[(k < 0) | (k >= n)]
        k = bad.flat[0] if bad.size else k.flat[0]
    raise EvalError(f"index {int(k)} out of range for array of length {n} in {where}")


def clip_idx(k: Any, a: np.ndarray) -> tuple[Any, np.ndarray]:
    """Clip indices into range (used where a bad index is masked out); an empty array gets
    one dummy element so that the (discarded) read succeeds."""
    n = a.shape[0]
    if n == 0:
        a = np.zeros((1,) + a.shape[1:], dtype=a.dtype)
        n = 1
    if isinstance(k, np.ndarray):
        return np.clip(k, 0, n - 1), a
    return min(max(int(k), 0), n - 1), a


def arange_at(n: int, d: int) -> np.ndarray:
    """``0..n-1`` laid out along the axis of depth ``d``: shape ``(n, 1, ..., 1)``."""
    return np.arange(n).reshape((n,) + (1,) * (d - 1))


def expand(v: Any, r: int, pv: int, axes_shape: tuple) -> Any:
    """Broadcast ``v`` (rank ``r``, ``pv`` axis dims) to the axis extents ``axes_shape``."""
    s = np.shape(v)
    if pv < len(axes_shape):
        v = np.reshape(v, s[:r] + (1,) * (len(axes_shape) - pv) + s[r:])
    return np.broadcast_to(v, s[:r] + tuple(axes_shape))


def mul_n(b: Any, n: int) -> Any:
    """``sum n (lambda (i) b)`` for ``b`` not depending on ``i``."""
    if n > 0:
        return b * n
    return np.zeros_like(b) if isinstance(b, np.ndarray) else 0.0


def max_extent(s: Any) -> int:
    """Largest of an array of sizes (0 when empty or all negative)."""
    if isinstance(s, np.ndarray):
        return max(int(s.max()), 0) if s.size else 0
    return max(int(s), 0)


def fold_extreme(init: Any, red: Any, is_max: bool) -> Any:
    """Combine the ``init`` of a max/min ``ifold`` with the reduction of its elements: a
    NaN element never wins a comparison (so it is skipped, as ``fmax`` does), a NaN init
    is never replaced."""
    f = np.fmax if is_max else np.fmin
    out = f(init, red)
    if isinstance(out, np.ndarray):
        return np.where(init != init, init, out)
    return init if init != init else out


def check_elems(count: int, what: str) -> None:
    """Refuse to allocate more than :data:`eqsat_ad.runtime.MAX_ARRAY_BYTES`."""
    if count * 8 > _runtime.MAX_ARRAY_BYTES:
        _runtime.check_alloc(count, what)


def ragged(where: str) -> None:
    raise EvalError(f"the branches of a vectorised if have arrays of different lengths "
                    f"(a ragged array) in {where}")


def out_array(v: np.ndarray) -> np.ndarray:
    """A result array the caller may write to."""
    if not v.flags.writeable:
        return np.array(v)
    return v


def unalias(v: np.ndarray, inputs: tuple) -> np.ndarray:
    """A result array the caller may write to without changing an input: a copy when it
    is read-only (a broadcast view) or may share memory with an input, else ``v`` itself."""
    if not v.flags.writeable or any(np.may_share_memory(v, a) for a in inputs):
        return np.array(v)
    return v


def out_real(v: Any) -> Any:
    if isinstance(v, np.ndarray):       # a result that is a 0-d array
        return float(v)
    return float(v)


__all__ = ["gather", "diag_where", "oob", "badmask", "needed", "span_needed", "edge_rows", "range_mask", "cut_axis", "window", "raise_oob", "clip_idx", "arange_at", "expand",
           "mul_n", "max_extent", "fold_extreme", "check_elems", "ragged", "out_array", "unalias",
           "ResourceLimitError"]

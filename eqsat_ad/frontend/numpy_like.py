"""NumPy's names for traced code: reductions (``sum``, ``mean``, ``max``, ``min`` with
``axis=``), element-wise functions (``exp``, ``log``, ``tanh``, ``sqrt``, ``abs``,
``maximum``, ``minimum``, ``where``, ``sigmoid``) and products (``dot``, ``matmul``,
``outer``, ``transpose``), so a loss written for NumPy traces as it is::

    def loss(w, X, y):
        p = ea.sigmoid(X @ w)
        return -ea.mean(y * ea.log(p) + (1 - y) * ea.log(1 - p))

Everything here is written with the language's own forms (``build``, ``sum``, ``ifold``,
``if``), so it differentiates and optimises like hand-written programs.  The element-wise
functions of the language, ``sum``/``where`` and the operators of
:class:`~eqsat_ad.frontend.trace.Sym` are defined in :mod:`eqsat_ad.frontend.trace`, the
primitives ``max``/``min``/``abs``/``log1p``/``sign`` in :mod:`eqsat_ad.frontend.prims`;
this module gives them NumPy's names and behaviour (element-wise, broadcasting) and adds the
rest.

>>> from eqsat_ad.frontend.trace import trace
>>> from eqsat_ad.lang.syntax import show_expr
>>> import numpy as np
>>> p = trace(lambda x: max(x), x=np.zeros(3))
>>> show_expr(p.body)
'(ifold (lambda (acc i) (max acc (get x i))) (get x 0) n)'
"""
from __future__ import annotations

from typing import Any

from ..errors import TypeCheckError
from ..lang.types import REAL, ArrayT, array_rank
from .prims import abs_, log1p as _log1p, max_, min_, sign as _sign
from .trace import (Sym, _elementwise, _extent, _is_array, _shape_text, as_sym, build,
                    cos, exp, expand_dims, get, ifold, log, matmul, power, real, reduce, sin,
                    sqrt, sum, tan, tanh, where)

#: the names of this module, as in NumPy (also on ``eqsat_ad``: ``ea.sum``, ``ea.exp``, ...)
__all__ = ["sum", "mean", "max", "min", "exp", "log", "log1p", "sin", "cos", "tan", "tanh",
           "sqrt", "abs", "sign", "maximum", "minimum", "where", "sigmoid", "power", "dot",
           "matmul", "outer", "transpose", "expand_dims"]


def _count(a: Sym, axis: int | None) -> Sym:
    """The number of elements a reduction over ``axis`` adds up, as a real."""
    extents, s = [], a
    while isinstance(s.type, ArrayT):
        extents.append(_extent(s))
        s = get(s, 0)
    if axis is not None:
        extents = [extents[axis % len(extents)]]
    n = extents[0]
    for e in extents[1:]:
        n = n * e
    return real(n)


def mean(a: Any, axis: int | None = None, keepdims: bool = False) -> Sym:
    """The mean of the elements (along ``axis``), as ``np.mean``."""
    s = as_sym(a)
    if not isinstance(s.type, ArrayT):
        return s
    return sum(s, axis=axis, keepdims=keepdims) / _count(s, axis)


def _extreme(greater: bool):
    def fold(size: Sym, body) -> Sym:
        # the first element, then (max acc e): the fold the NumPy backend reduces with
        # np.maximum.reduce and whose dual the rules of extreme.egg turn into an argmax and
        # a gather (linear, not one sequential pass per input direction); ties go to acc,
        # the earlier element
        pick = max_ if greater else min_
        return ifold(lambda acc, i: pick(acc, body(i)), body(0), size)
    return fold


def max(a: Any, axis: int | None = None, keepdims: bool = False) -> Sym:  # noqa: A001
    """The largest element (along ``axis``), as ``np.max``; an empty array fails when run.
    Its derivative is the tangent of the first largest element."""
    return reduce(a, _extreme(True), axis, "max", keepdims)


def min(a: Any, axis: int | None = None, keepdims: bool = False) -> Sym:  # noqa: A001
    """The smallest element (along ``axis``), as ``np.min``."""
    return reduce(a, _extreme(False), axis, "min", keepdims)


def _elementwise_prim(fn, name: str, doc: str):
    def numpy_fn(*args: Any) -> Sym:
        return _elementwise(fn, *args)
    numpy_fn.__name__ = numpy_fn.__qualname__ = name
    numpy_fn.__doc__ = doc
    return numpy_fn


maximum = _elementwise_prim(max_, "maximum", "Element-wise maximum with broadcasting, as "
                            "``np.maximum``: ``(max a b)``; its derivative takes the tangent "
                            "of ``a`` where ``a >= b``.")
minimum = _elementwise_prim(min_, "minimum", "Element-wise minimum with broadcasting, as "
                            "``np.minimum``: ``(min a b)``; ties go to ``a``.")
abs = _elementwise_prim(abs_, "abs", "Element-wise absolute value, as ``np.abs``: ``(abs a)`` "  # noqa: A001
                        "(derivative ``sign(a)``, 0 at 0).")
log1p = _elementwise_prim(_log1p, "log1p", "Element-wise ``log(1 + a)``, as ``np.log1p``.")
sign = _elementwise_prim(_sign, "sign", "Element-wise sign (-1, 0 or 1), as ``np.sign``.")


def sigmoid(a: Any) -> Sym:
    """Element-wise logistic function ``1 / (1 + exp(-a))``."""
    return 1.0 / (1.0 + exp(-as_sym(a, REAL)))


def dot(a: Any, b: Any) -> Sym:
    """``np.dot``: a product with a scalar, else ``a @ b`` (vectors and matrices)."""
    if not (_is_array(a) and _is_array(b)):
        return as_sym(a) * b if isinstance(a, Sym) else a * as_sym(b)
    return matmul(a, b)


def outer(a: Any, b: Any) -> Sym:
    """``np.outer`` of two vectors: the matrix ``a[i] * b[j]``."""
    sa, sb = as_sym(a), as_sym(b)
    if array_rank(sa.type) != 1 or array_rank(sb.type) != 1:
        raise TypeCheckError(f"outer needs two vectors, got {_shape_text(sa.type)} and "
                             f"{_shape_text(sb.type)}")
    return build(_extent(sa), lambda i: build(_extent(sb), lambda j: sa[i] * sb[j]))


def transpose(a: Any) -> Sym:
    """``np.transpose`` of a matrix (``a.T``): ``build cols (λi. build rows (λj. a[j][i]))``."""
    sa = as_sym(a)
    if array_rank(sa.type) != 2:
        raise TypeCheckError(f"transpose needs a matrix, got {_shape_text(sa.type)}")
    return build(_extent(get(sa, 0)), lambda i: build(_extent(sa), lambda j: sa[j][i]))

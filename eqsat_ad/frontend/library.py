"""The dF~ M~ library (vectors and matrices) written in the language itself.

Every function works on symbolic values inside :func:`~eqsat_ad.frontend.trace.trace` and is
also a text-level library function of the program syntax (registered with
:func:`eqsat_ad.lang.macros.register`), e.g. ``(dot u w)``, ``(matvec A x)``, ``(vsum v)``,
``(map v (lambda (a) (* a a)))``.  The definitions keep dF~'s structure (``dot`` is the sum
of an element-wise product, ``matmul`` goes through a transpose) so that the optimiser sees
the loops it has to fuse.  Non-trivial arguments used more than once or inside a loop are
let-bound (as dF~'s funToLet would do), so an argument is computed once.

>>> from eqsat_ad.frontend.trace import trace, Vec
>>> from eqsat_ad.lang.syntax import show_expr
>>> print(show_expr(trace(lambda x: vsum(vmap(x, lambda a: a * a)), x=Vec("n")).body))  # doctest: +ELLIPSIS
(let ((v (build (length x) (lambda (...) (* (get x ...) (get x ...))))))
  (sum (length v) (lambda (...) (get v ...))))

Differences from the dF~ vector library (Shaikhha et al., ICFP 2019) as transcribed:

- ``outer(u, v)`` is the real outer product ``u vᵀ`` (an m×n matrix), not the 1×1 matrix of
  the transcription's ``vectorOutProd``.
- ``vsum`` and ``trace`` use the language's ``sum`` (a vectorisable reduction) rather than
  ``ifold``; ``vrange n`` is ``[0.0, 1.0, ...]`` (reals, so it is a ``(vec n)``).
- ``mat_map(M, f)`` applies ``f`` to every element (dF~'s ``matrixMap`` maps rows: use
  ``vmap(M, f)`` for that).
- ``logsumexp`` is the naive ``log (sum (exp v))`` (the language has no ``max``).
"""
from __future__ import annotations

from typing import Any, Callable

from ..lang.ast import BoolLit, Fst, Get, Int, Length, Num, Snd, Var
from ..lang.types import ArrayT, REAL
from .trace import (Sym, _apply, as_sym, build, eq, exp, if_, length, let, log, real, sqrt,
                    sum as _sum, lift_fn)

__all__ = ["vsum", "dot", "add", "sub", "emul", "scale", "vmap", "vmap2", "onehot", "fill",
           "vrange", "norm", "sqnorm", "outer", "matvec", "matmul", "transpose", "eye", "trace",
           "mat_trace", "mat_add", "mat_map", "zeros", "sigmoid", "logsumexp", "rows", "cols",
           "LIBRARY"]


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def _cheap(e) -> bool:
    while True:
        if isinstance(e, (Var, Num, Int, BoolLit)):
            return True
        if isinstance(e, (Length, Fst, Snd)):
            e = e.pair if isinstance(e, (Fst, Snd)) else e.array
        elif isinstance(e, Get):
            if not _cheap(e.index):
                return False
            e = e.array
        else:
            return False


def _shared(value: Any, base: str, body: Callable[[Sym], Sym]) -> Sym:
    """``body(value)``, let-binding ``value`` first unless it is cheap to repeat."""
    v = as_sym(value)
    if _cheap(v.expr):
        return as_sym(body(v))
    return let(v, body, name=base)


def call(fn: Any, *args: Any) -> Sym:
    """Apply a Python function or a text-level ``(lambda ...)`` to symbolic values."""
    return _apply(fn, [as_sym(a) for a in args])


def rows(M: Any) -> Sym:
    """Number of rows: ``(length M)``."""
    return length(M)


def cols(M: Any) -> Sym:
    """Number of columns: ``(length (get M 0))``."""
    return length(as_sym(M)[0])


# --------------------------------------------------------------------------------------
# vectors
# --------------------------------------------------------------------------------------
def vsum(v: Any) -> Sym:
    """Sum of the elements: ``sum (length v) (λi. v[i])``."""
    return _shared(v, "v", lambda v: _sum(length(v), lambda i: v[i]))


def vmap(v: Any, f: Any) -> Sym:
    """``build (length v) (λi. f v[i])`` (dF~'s vectorMap)."""
    return _shared(v, "v", lambda v: build(length(v), lambda i: call(f, v[i])))


def vmap2(u: Any, w: Any, f: Any) -> Sym:
    """``build (length u) (λi. f u[i] w[i])`` (dF~'s vectorMap2)."""
    return _shared(u, "u", lambda u: _shared(
        w, "w", lambda w: build(length(u), lambda i: call(f, u[i], w[i]))))


def add(u: Any, w: Any) -> Sym:
    """Element-wise sum."""
    return vmap2(u, w, lambda a, b: a + b)


def sub(u: Any, w: Any) -> Sym:
    """Element-wise difference."""
    return vmap2(u, w, lambda a, b: a - b)


def emul(u: Any, w: Any) -> Sym:
    """Element-wise product."""
    return vmap2(u, w, lambda a, b: a * b)


def scale(v: Any, s: Any) -> Sym:
    """``v * s`` element-wise (dF~'s vectorSMul v s); ``scale(s, v)`` is accepted too when
    the types (or a literal scalar, as in ``(scale 2.0 v)``) say which is the vector."""
    sv, ss = as_sym(v), as_sym(s)
    if (isinstance(ss.type, ArrayT) and not isinstance(sv.type, ArrayT)) \
            or (isinstance(sv.expr, (Num, Int)) and not isinstance(ss.expr, (Num, Int))):
        sv, ss = ss, sv
    return _shared(ss, "s", lambda s: vmap(sv, lambda a: a * s))


def dot(u: Any, w: Any) -> Sym:
    """``vsum (emul u w)`` (dF~'s vectorDot: the product array is fused by the optimiser)."""
    return vsum(emul(u, w))


def sqnorm(v: Any) -> Sym:
    """``dot v v``."""
    return _shared(v, "v", lambda v: dot(v, v))


def norm(v: Any) -> Sym:
    """``sqrt (dot v v)``."""
    return sqrt(sqnorm(v))


def onehot(n: Any, i: Any) -> Sym:
    """``build n (λj. if i = j then 1.0 else 0.0)`` (dF~'s vectorHot)."""
    return _shared(i, "k", lambda i: build(n, lambda j: if_(eq(i, j), 1.0, 0.0)))


def fill(n: Any, e: Any) -> Sym:
    """``build n (λi. e)``."""
    return _shared(e, "c", lambda e: build(n, lambda i: e))


def vrange(n: Any) -> Sym:
    """``[0.0, 1.0, ..., n-1]``: ``build n (λi. real i)``."""
    return build(n, lambda i: real(i))


def zeros(m: Any, n: Any = None) -> Sym:
    """A zero vector ``zeros(n)`` or matrix ``zeros(m, n)``."""
    if n is None:
        return fill(m, 0.0)
    return build(m, lambda i: fill(n, 0.0))


def sigmoid(x: Any) -> Sym:
    """``1 / (1 + exp (-x))`` (a scalar)."""
    return 1.0 / (1.0 + exp(-as_sym(x, REAL)))


def logsumexp(v: Any) -> Sym:
    """``log (vsum (vmap v exp))`` (naive: no max shift)."""
    return log(vsum(vmap(v, exp)))


# --------------------------------------------------------------------------------------
# matrices
# --------------------------------------------------------------------------------------
def outer(u: Any, w: Any) -> Sym:
    """The outer product ``u wᵀ``: ``build (length u) (λi. build (length w) (λj. u[i] * w[j]))``."""
    return _shared(u, "u", lambda u: _shared(w, "w", lambda w: build(
        length(u), lambda i: build(length(w), lambda j: u[i] * w[j]))))


def matvec(A: Any, x: Any) -> Sym:
    """``A x``: ``build (rows A) (λi. dot A[i] x)``."""
    return _shared(A, "A", lambda A: _shared(x, "x", lambda x: build(
        length(A), lambda i: dot(A[i], x))))


def transpose(M: Any) -> Sym:
    """``build (cols M) (λi. build (rows M) (λj. M[j][i]))`` (dF~'s matrixTranspose)."""
    return _shared(M, "M", lambda M: build(cols(M), lambda i: build(length(M), lambda j: M[j][i])))


def matmul(A: Any, B: Any) -> Sym:
    """``let BT = transpose B in build (rows A) (λi. build (cols B) (λj. dot A[i] BT[j]))``."""
    return _shared(A, "A", lambda A: _shared(B, "B", lambda B: let(
        transpose(B), lambda BT: build(length(A), lambda i: build(
            cols(B), lambda j: dot(A[i], BT[j]))))))


def eye(n: Any) -> Sym:
    """Identity matrix: ``build n (λi. onehot n i)``."""
    return build(n, lambda i: onehot(n, i))


def trace(M: Any) -> Sym:
    """Sum of the diagonal: ``sum (rows M) (λi. M[i][i])``."""
    return _shared(M, "M", lambda M: _sum(length(M), lambda i: M[i][i]))


mat_trace = trace


def mat_add(A: Any, B: Any) -> Sym:
    """Element-wise sum of matrices (dF~'s ``matrixMap2 A B vectorAdd``)."""
    return vmap2(A, B, add)


def mat_map(M: Any, f: Any) -> Sym:
    """``f`` applied to every element of a matrix."""
    return vmap(M, lambda row: vmap(row, f))


# --------------------------------------------------------------------------------------
# registration as text-level library functions
# --------------------------------------------------------------------------------------
LIBRARY: dict[str, tuple[Callable, "int | tuple[int, ...]", str]] = {
    "vsum": (vsum, 1, "(vsum v): sum of the elements of v"),
    "dot": (dot, 2, "(dot u w): sum of u[i]*w[i]"),
    "add": (add, 2, "(add u w): element-wise u + w"),
    "sub": (sub, 2, "(sub u w): element-wise u - w"),
    "emul": (emul, 2, "(emul u w): element-wise u * w"),
    "scale": (scale, 2, "(scale v s): every element of v times s"),
    "map": (vmap, 2, "(map v (lambda (a) e)): build (length v) (λi. e[a := v[i]])"),
    "vmap": (vmap, 2, "(vmap v (lambda (a) e)): same as map"),
    "map2": (vmap2, 3, "(map2 u w (lambda (a b) e)): element-wise e over u and w"),
    "vmap2": (vmap2, 3, "(vmap2 u w (lambda (a b) e)): same as map2"),
    "onehot": (onehot, 2, "(onehot n i): 1.0 at i, 0.0 elsewhere"),
    "fill": (fill, 2, "(fill n e): n copies of e"),
    "vrange": (vrange, 1, "(vrange n): [0.0, 1.0, ..., n-1]"),
    "norm": (norm, 1, "(norm v): sqrt (dot v v)"),
    "sqnorm": (sqnorm, 1, "(sqnorm v): dot v v"),
    "outer": (outer, 2, "(outer u w): the matrix u[i]*w[j]"),
    "matvec": (matvec, 2, "(matvec A x): A x"),
    "matmul": (matmul, 2, "(matmul A B): A B"),
    "transpose": (transpose, 1, "(transpose M): M^T"),
    "eye": (eye, 1, "(eye n): the n x n identity"),
    "trace": (trace, 1, "(trace M): sum of the diagonal of M"),
    "mat_add": (mat_add, 2, "(mat_add A B): element-wise A + B"),
    "mat_map": (mat_map, 2, "(mat_map M (lambda (a) e)): e applied to every element"),
    "zeros": (zeros, (1, 2), "(zeros n) or (zeros m n): zero vector or matrix"),
    "sigmoid": (sigmoid, 1, "(sigmoid x): 1 / (1 + exp (- x))"),
    "logsumexp": (logsumexp, 1, "(logsumexp v): log (vsum (map v exp))"),
}


def _register_all() -> None:
    from ..lang import macros
    for name, (fn, arity, doc) in LIBRARY.items():
        macros.register(name, lift_fn(fn), arity=arity, doc=doc)


_register_all()

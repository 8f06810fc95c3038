"""The Python front end: write a program as a Python function over symbolic values.

``trace(fn, x=Vec("n"), ...)`` calls ``fn`` with one symbolic value per parameter and turns
what it computes into a :class:`~eqsat_ad.lang.ast.Program` (type-checked, elaborated, with
unique readable binder names).  Loops are written with the combinators ``build``, ``sum``,
``ifold``; branches with ``if_`` (Python's ``if`` cannot look at a symbolic value).

>>> from eqsat_ad.frontend.trace import trace, program, Vec, sum, length
>>> def sumsq(x):
...     return sum(length(x), lambda i: x[i] * x[i])
>>> print(trace(sumsq, x=Vec("n")))
(fun ((x (vec n)))
  (sum (length x) (lambda (i) (* (get x i) (get x i)))))
>>> @program(x=Vec("n"), w=Vec("n"))
... def dot(x, w):
...     return sum("n", lambda i: x[i] * w[i])
>>> from eqsat_ad.lang.syntax import show_expr
>>> show_expr(dot.body)
'(sum n (lambda (i) (* (get x i) (get w i))))'

Symbolic values support ``+ - * / ** @``, unary ``-``, ``< > <= >=`` (``eq(a, b)`` for
equality: ``==`` stays Python equality), ``&  |  ~`` on booleans, and indexing ``x[i]``
(``M[i, j]`` for ``M[i][j]``, ``x[-1]``, slices ``x[1:]``, ``M[:, j]``); Python numbers mix
in freely.  On arrays the operators and the functions ``exp``, ``log``, ... work element
by element with NumPy's broadcasting (``u - v``, ``2.0 * x``, ``M + b`` for a row ``b``);
:mod:`eqsat_ad.frontend.numpy_like` adds NumPy's reductions and products.
"""
from __future__ import annotations

import inspect
import itertools
from typing import Any, Callable

from ..errors import TypeCheckError
from ..lang import types as _t
from ..lang.ast import (Build, BoolLit, Expr, Fst, Get, If, IFold, Int, Length, Let, Num, Pair,
                        Param, Prim, Program, Snd, Sum, Var)
from ..lang.binders import all_names, fresh, rename_unique, subst
from ..lang.types import BOOL, INDEX, REAL, SIZE, ArrayT, PairT, Type, array_rank

__all__ = ["Sym", "trace", "program", "Vec", "Mat", "Real", "Index", "Size", "Array",
           "build", "sum", "ifold", "get", "length", "if_", "where", "let", "pair", "fst",
           "snd", "eq", "and_", "or_", "not_", "real", "exp", "log", "sin", "cos", "tan",
           "sqrt", "tanh", "power", "matmul", "reduce", "expand_dims", "example_types", "as_expr",
           "as_sym",
           "lift_fn"]

# parameter types -----------------------------------------------------------------------
Vec = _t.vec            # Vec("n")      -> (vec n)
Mat = _t.mat            # Mat("m", "n") -> (mat m n)
Real = REAL
Index = INDEX
Size = SIZE


def Array(elem: Type, size) -> ArrayT:
    """``(array elem size)``."""
    return ArrayT(elem, size)


# --------------------------------------------------------------------------------------
# symbolic values
# --------------------------------------------------------------------------------------
class Sym:
    """A symbolic value: an expression and (when known) its type.

    Inside :func:`trace` every value has a type; library functions used as text macros
    work on untyped values (``type is None``) and the type checker decides later.
    """

    __slots__ = ("expr", "type")

    def __init__(self, expr: Expr, type: Type | None = None):
        self.expr = expr
        self.type = type

    # arithmetic --------------------------------------------------------------------
    def __add__(self, o): return _arith("+", self, o)
    def __radd__(self, o): return _arith("+", o, self)
    def __sub__(self, o): return _arith("-", self, o)
    def __rsub__(self, o): return _arith("-", o, self)
    def __mul__(self, o): return _arith("*", self, o)
    def __rmul__(self, o): return _arith("*", o, self)
    def __truediv__(self, o): return _arith("/", self, o)
    def __rtruediv__(self, o): return _arith("/", o, self)
    def __pow__(self, o): return power(self, o)
    def __rpow__(self, o): return power(o, self)
    def __matmul__(self, o): return matmul(self, o)
    def __rmatmul__(self, o): return matmul(o, self)
    def __neg__(self): return _unary("neg", self)
    def __pos__(self): return self

    # comparisons (== stays Python equality: use eq(a, b)) -----------------------------
    def __lt__(self, o): return _compare("<", self, o)
    def __gt__(self, o): return _compare(">", self, o)
    def __le__(self, o): return _compare("<=", self, o)
    def __ge__(self, o): return _compare(">=", self, o)

    # logic on booleans -------------------------------------------------------------
    def __and__(self, o): return and_(self, o)
    def __rand__(self, o): return and_(o, self)
    def __or__(self, o): return or_(self, o)
    def __ror__(self, o): return or_(o, self)
    def __invert__(self): return not_(self)

    # arrays -------------------------------------------------------------------------
    def __getitem__(self, idx):
        return _subscript(self, idx if isinstance(idx, tuple) else (idx,))

    def __iter__(self):
        raise TypeError("a symbolic array cannot be iterated in Python; use build/sum/ifold")

    def __len__(self):
        raise TypeError("len() of a symbolic array is not a Python int; use length(a)")

    def __bool__(self):
        raise TypeError("a symbolic value has no Python truth value: use if_(cond, a, b) "
                        "instead of if/and/or/not, and eq(a, b) instead of ==")

    def __float__(self):
        raise TypeError("a symbolic value cannot be converted to a Python float")

    __index__ = __float__
    __int__ = __float__

    @property
    def T(self) -> "Sym":
        """Transpose (a matrix), as NumPy's ``a.T``."""
        if array_rank(self.type) == 2:
            from .numpy_like import transpose
        else:                       # untyped (a library function used as a text macro)
            from .library import transpose
        return transpose(self)

    # NumPy's array methods -----------------------------------------------------------
    def sum(self, axis: int | None = None, keepdims: bool = False) -> "Sym":
        return sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | None = None, keepdims: bool = False) -> "Sym":
        from .numpy_like import mean
        return mean(self, axis, keepdims)

    def max(self, axis: int | None = None, keepdims: bool = False) -> "Sym":
        from .numpy_like import max
        return max(self, axis, keepdims)

    def min(self, axis: int | None = None, keepdims: bool = False) -> "Sym":
        from .numpy_like import min
        return min(self, axis, keepdims)

    def dot(self, other: Any) -> "Sym":
        from .numpy_like import dot
        return dot(self, other)

    @property
    def ndim(self) -> int:
        """Number of array axes (0 for a scalar), as in NumPy."""
        return array_rank(self.type)

    @property
    def shape(self) -> tuple:
        """The extents of the array axes, as symbolic sizes (``x.shape[0]`` is ``n`` for
        ``x : (vec n)``); usable wherever a size is (``build``, ``sum``, arithmetic)."""
        out, s, t = [], self, self.type
        while isinstance(t, ArrayT):
            out.append(_extent(s))
            s, t = get(s, 0), t.elem
        return tuple(out)

    def __repr__(self) -> str:
        from ..lang.syntax import show_flat
        ty = "" if self.type is None else f" : {_t.show_type(self.type)}"
        return f"<Sym {show_flat(self.expr, 200)}{ty}>"


def as_sym(v: Any, like: Type | None = None) -> Sym:
    """A Python value as a symbolic value: numbers become literals (an ``int`` next to a
    real becomes a real literal), 2-tuples become pairs, expressions are wrapped.

    >>> as_sym(2).expr, as_sym(2, REAL).expr, as_sym(1.5).expr
    (Int(value=2), Num(value=2.0), Num(value=1.5))
    """
    if isinstance(v, Sym):
        return v
    if isinstance(v, Expr):
        return Sym(v, None)
    if isinstance(v, (bool,)):
        return Sym(BoolLit(bool(v)), BOOL)
    if isinstance(v, int) or (hasattr(v, "dtype") and getattr(v, "shape", None) == ()
                              and "int" in str(v.dtype)):
        v = int(v)
        if like == REAL:
            return Sym(Num(float(v)), REAL)
        return Sym(Int(v), INDEX if like is None or like == INDEX else like)
    if isinstance(v, float) or (hasattr(v, "dtype") and getattr(v, "shape", None) == ()):
        return Sym(Num(float(v)), REAL)
    if isinstance(v, tuple) and len(v) == 2:
        return pair(v[0], v[1])
    from ..lang.macros import Lambda
    if isinstance(v, Lambda):
        raise TypeError("a lambda is not a value here")
    raise TypeError(f"cannot use {type(v).__name__} {v!r} as a value of the array language")


def as_expr(v: Any) -> Expr:
    """The expression of a symbolic value or Python number."""
    return as_sym(v).expr


def _type(v: Any) -> Type | None:
    return v.type if isinstance(v, Sym) else None


def _numeric_join(ts) -> Type | None:
    if any(t is None for t in ts):
        return REAL if REAL in ts else None
    from ..lang.typecheck import numeric_join
    out = ts[0]
    for t in ts[1:]:
        if out not in _t.NUMERIC or t not in _t.NUMERIC:
            return None
        out = numeric_join(out, t)
    return out


def _arith(op: str, a: Any, b: Any) -> Sym:
    if _is_array(a) or _is_array(b):
        return _elementwise(lambda x, y: _arith(op, x, y), a, b)
    ta, tb = _type(a), _type(b)
    sa, sb = as_sym(a, tb), as_sym(b, ta)
    if op in ("/", "pow"):
        t = REAL
    else:
        t = _numeric_join([sa.type, sb.type])
    return Sym(Prim(op, (sa.expr, sb.expr)), t)


def _unary(op: str, a: Any) -> Sym:
    if _is_array(a):
        return _elementwise(lambda x: _unary(op, x), a)
    if isinstance(a, (int, float)) and not isinstance(a, bool):
        a = Num(float(a))
    s = as_sym(a)
    t = (s.type if s.type in _t.NUMERIC else None) if op == "neg" else REAL
    if op == "neg" and s.type is None:
        t = None
    return Sym(Prim(op, (s.expr,)), t)


def _compare(op: str, a: Any, b: Any) -> Sym:
    if _is_array(a) or _is_array(b):
        return _elementwise(lambda x, y: _compare(op, x, y), a, b)
    sa, sb = as_sym(a, _type(b)), as_sym(b, _type(a))
    return Sym(Prim(op, (sa.expr, sb.expr)), BOOL)


# --------------------------------------------------------------------------------------
# arrays as in NumPy: element-wise operations with broadcasting
# --------------------------------------------------------------------------------------
def _is_array(v: Any) -> bool:
    if isinstance(v, Sym):
        return isinstance(v.type, ArrayT)
    if hasattr(v, "shape") and hasattr(v, "dtype") and getattr(v, "shape", ()) != ():
        raise TypeError(f"a NumPy array (shape {v.shape}) cannot be a constant of a traced "
                        "program: pass it as a parameter")
    return False


def _extent(a: Sym) -> Sym:
    """The length of the array ``a`` as a size: its size name or literal when the type
    has one (``n`` rather than ``(length x)``: shorter programs, and sizes the type checker
    can compare), else ``(length a)``."""
    size = a.type.size if isinstance(a.type, ArrayT) else None
    if isinstance(size, str):
        return Sym(Var(size), SIZE)
    if isinstance(size, int) and not isinstance(size, bool):
        return Sym(Int(size), SIZE)
    if type(a.expr) is Build:         # a slice x[1:]: (- n 1), not (length (build ...))
        return Sym(a.expr.size, None)
    return length(a)


def _shape_text(t: Type | None) -> str:
    return "a scalar" if not isinstance(t, ArrayT) else _t.show_type(t)


def _elementwise(fn: Callable[..., Sym], *args: Any) -> Sym:
    """``fn`` (on scalars) applied element by element, with NumPy's broadcasting: the
    trailing axes line up, an operand with fewer axes (a scalar, a vector against a matrix)
    is repeated along the leading ones, and an axis of the literal size 1 (``keepdims=True``,
    ``x[:, None]``) is stretched; other axes that line up must have the same size.

    ``u - v`` for two ``(vec n)`` is ``(build n (lambda (i) (- (get u i) (get v i))))``: one
    ``build`` per axis of the result, so the optimiser sees the loops it fuses."""
    ranks = [array_rank(_type(a)) for a in args]
    r = max(ranks)
    if r == 0:
        return fn(*args)
    lead = [a for a, k in zip(args, ranks) if k == r]
    sizes = [a.type.size for a in lead]
    # an axis of size 1 stretches to the others' size (read at index 0), as in NumPy
    stretched = [z == 1 and not isinstance(z, bool) and any(y != 1 for y in sizes) for z in sizes]
    known = [z for z, st in zip(sizes, stretched) if z is not None and not st]
    if any(z != known[0] for z in known):
        shapes = " and ".join(_shape_text(_type(a)) for a in args)
        raise TypeCheckError(f"cannot combine {shapes} element by element: the sizes "
                             f"{' and '.join(map(str, dict.fromkeys(known)))} of the leading axis differ")
    first = next((a for a, z, st in zip(lead, sizes, stretched) if z is not None and not st),
                 next(a for a, st in zip(lead, stretched) if not st))
    stretch = {id(a) for a, st in zip(lead, stretched) if st}

    def element(i: Sym) -> Sym:
        return _elementwise(fn, *[a if k < r else _element(a, 0 if id(a) in stretch else i)
                                  for a, k in zip(args, ranks)])
    return build(_extent(first), element)


def expand_dims(a: Any, axis: int) -> Sym:
    """``a`` with an axis of size 1 inserted at position ``axis`` (``np.expand_dims``;
    ``x[:, None]`` and ``keepdims=True`` use it)."""
    s = as_sym(a)
    r = array_rank(s.type)
    if isinstance(axis, bool) or not isinstance(axis, int) or not -r - 1 <= axis <= r:
        raise TypeCheckError(f"expand_dims(a, {axis!r}): a has {r} axes")
    axis %= r + 1
    if axis == 0:
        return build(1, lambda _: s)
    return build(_extent(s), lambda i: expand_dims(_element(s, i), axis - 1))


def power(a: Any, b: Any) -> Sym:
    """``a ** b`` element-wise.  As NumPy's ``ndarray.__pow__`` does, a literal exponent 2
    is a product (``a * a``: one node, used twice), 1 is ``a``, 0.5 ``sqrt a`` and -1
    ``1 / a``; other exponents are ``(pow a b)``."""
    if isinstance(b, (int, float)) and not isinstance(b, bool) and isinstance(a, Sym):
        if b == 2:
            return a * a
        if b == 1:
            return a
        if b == 0.5:
            return sqrt(a)
        if b == -1:
            return 1.0 / a
    return _arith("pow", a, b)


def matmul(a: Any, b: Any) -> Sym:
    """``a @ b`` as in NumPy: vector·vector is the dot product, matrix·vector and
    vector·matrix the products, matrix·matrix the matrix product, as loops over the named
    sizes (``A @ x`` is ``(build m (lambda (i) (sum n (lambda (j) (* A[i][j] x[j])))))``).
    An operand computed by the traced code is bound by a ``let`` first: each of its
    elements is read once per row or column of the result."""
    sa, sb = as_sym(a), as_sym(b)
    ra, rb = array_rank(sa.type), array_rank(sb.type)
    if ra == 0 or rb == 0 or ra > 2 or rb > 2:
        raise TypeCheckError(f"@ needs vectors or matrices, got {_shape_text(sa.type)} @ "
                             f"{_shape_text(sb.type)}")
    inner_a = sa.type.size if ra == 1 else sa.type.elem.size
    inner_b = sb.type.size
    if inner_a is not None and inner_b is not None and inner_a != inner_b:
        raise TypeCheckError(f"{_shape_text(sa.type)} @ {_shape_text(sb.type)}: the inner sizes "
                             f"{inner_a} and {inner_b} differ")

    def product(A: Sym, B: Sym) -> Sym:
        k_extent = _extent(B)
        if ra == 1 and rb == 1:
            return sum(k_extent, lambda k: A[k] * B[k])
        if ra == 2 and rb == 1:
            return build(_extent(A), lambda i: sum(k_extent, lambda k: A[i][k] * B[k]))
        cols = _extent(get(B, 0))
        if ra == 1:
            return build(cols, lambda j: sum(k_extent, lambda k: A[k] * B[k][j]))
        return build(_extent(A), lambda i: build(cols, lambda j: sum(
            k_extent, lambda k: A[i][k] * B[k][j])))
    return _bound_once(sa, "a", lambda A: _bound_once(sb, "b", lambda B: product(A, B)))


def _bound_once(v: Sym, base: str, body: Callable[[Sym], Sym]) -> Sym:
    """``body(v)``, with ``v`` let-bound first unless it is a parameter or a part of one
    (cheap to read again)."""
    e = v.expr
    while type(e) is Get:
        e = e.array
    if type(e) is Var:
        return body(v)
    return let(v, body, name=base)


def _subscript(a: Sym, idx: tuple) -> Sym:
    """``a[idx]``: integers and symbolic indices select (a negative Python int counts from
    the end), slices ``lo:hi`` (step 1) are ``build``s of the selected elements."""
    if not idx:
        return a
    k, rest = idx[0], idx[1:]
    if k is Ellipsis:
        raise TypeError("indexing with ... is not supported in traced code")
    if k is None:                     # np.newaxis: an axis of size 1 here
        return build(1, lambda _: _subscript(a, rest))
    if isinstance(a.type, ArrayT) or a.type is None:
        pass
    else:
        raise TypeCheckError(f"cannot index a value of type {_t.show_type(a.type)}")
    if isinstance(k, slice):
        if k.step not in (None, 1):
            raise TypeError("slices with a step are not supported in traced code (only lo:hi)")
        n = _extent(a)
        lo = _bound(k.start, n, 0)
        hi = _bound(k.stop, n, None)
        size = n if hi is None else hi
        if not (isinstance(lo, int) and lo == 0):
            size = _arith("-", size, lo)
        return build(size, lambda j: _subscript(get(a, j if isinstance(lo, int) and lo == 0
                                                    else _arith("+", j, lo)), rest))
    if isinstance(k, int) and not isinstance(k, bool) and k < 0:
        k = _arith("+", _extent(a), k)
    return _subscript(get(a, k), rest)


def _bound(v: Any, n: Sym, default: Any) -> Any:
    """A slice bound: None -> ``default``, a negative Python int counts from the end."""
    if v is None:
        return default
    if isinstance(v, int) and not isinstance(v, bool):
        if v < 0:
            return _arith("+", n, v)
        if isinstance(n.expr, Int):
            return min(v, n.expr.value)
        return v
    return v


# --------------------------------------------------------------------------------------
# scalar functions and logic
# --------------------------------------------------------------------------------------
def _unary_fn(op: str) -> Callable[[Any], Sym]:
    def fn(a):
        return _unary(op, a)
    fn.__name__ = op
    fn.__doc__ = f"``({op} a)``"
    return fn


exp, log, sin, cos, tan, sqrt, tanh = (_unary_fn(o) for o in
                                       ("exp", "log", "sin", "cos", "tan", "sqrt", "tanh"))


def real(a: Any) -> Sym:
    """Cast an index or size to real: ``(real i)``."""
    s = as_sym(a)
    return Sym(Prim("real", (s.expr,)), REAL)


def eq(a: Any, b: Any) -> Sym:
    """``(= a b)`` (Python's ``==`` on symbolic values stays object equality)."""
    return _compare("=", a, b)


def and_(a: Any, b: Any) -> Sym:
    if _is_array(a) or _is_array(b):
        return _elementwise(and_, a, b)
    return Sym(Prim("and", (as_expr(a), as_expr(b))), BOOL)


def or_(a: Any, b: Any) -> Sym:
    if _is_array(a) or _is_array(b):
        return _elementwise(or_, a, b)
    return Sym(Prim("or", (as_expr(a), as_expr(b))), BOOL)


def not_(a: Any) -> Sym:
    if _is_array(a):
        return _elementwise(not_, a)
    return Sym(Prim("not", (as_expr(a),)), BOOL)


def if_(cond: Any, then: Any, else_: Any) -> Sym:
    """``(if cond then else)``; both branches are traced (symbolic), only one runs.

    >>> if_(Sym(Var("c"), BOOL), 1.0, 0.0).expr
    If(cond=Var(name='c'), then=Num(value=1.0), else_=Num(value=0.0))
    """
    sc = as_sym(cond)
    if sc.type is not None and sc.type != BOOL:
        raise TypeCheckError(f"if_: the condition must be a bool, got {_t.show_type(sc.type)}")
    st, se = as_sym(then, _type(else_)), as_sym(else_, _type(then))
    t = st.type if st.type == se.type else (_numeric_join([st.type, se.type])
                                            if st.type in _t.NUMERIC and se.type in _t.NUMERIC
                                            else st.type or se.type)
    return Sym(If(sc.expr, st.expr, se.expr), t)


def where(cond: Any, a: Any, b: Any) -> Sym:
    """NumPy's ``where``: ``a`` where ``cond`` holds, else ``b``, element by element (with
    broadcasting) when any of them is an array; ``if_`` on scalars.

    >>> from eqsat_ad.lang.syntax import show_expr
    >>> show_expr(trace(lambda x: where(x > 0.0, x, 0.0), x=Vec("n")).body)
    '(build n (lambda (i) (if (> (get x i) 0.0) (get x i) 0.0)))'
    """
    if _is_array(cond) or _is_array(a) or _is_array(b):
        return _elementwise(if_, cond, a, b)
    return if_(cond, a, b)


# --------------------------------------------------------------------------------------
# arrays and pairs
# --------------------------------------------------------------------------------------
def get(a: Any, i: Any) -> Sym:
    """``(get a i)``; ``i`` may be a Python int."""
    sa, si = as_sym(a), as_sym(i, INDEX)
    t = sa.type.elem if isinstance(sa.type, ArrayT) else None
    if sa.type is not None and not isinstance(sa.type, ArrayT):
        raise TypeCheckError(f"cannot index a value of type {_t.show_type(sa.type)}")
    return Sym(Get(sa.expr, si.expr), t)


def _element(a: Any, i: Sym) -> Sym:
    """``a[i]`` for a loop that reads each element of ``a`` once, at its own index ``i``
    (element-wise operations, reductions): an array built by the traced code itself
    (``(x > 0)`` inside ``where``) gives its element directly, as the normaliser would fuse
    it, so the trace is as short as the NumPy code it comes from.  Not for a read inside
    another loop (a matrix product): that would compute the element once per iteration."""
    sa, si = as_sym(a), as_sym(i, INDEX)
    if type(sa.expr) is Build and type(si.expr) is Var:
        # the same array read at the same index gives the same Python object, so a value
        # used twice (d * d) stays one node that trace() binds once
        key = (id(sa.expr), si.expr)
        hit = _FUSED.get(key)
        if hit is not None and hit[0] is sa.expr:
            return hit[1]
        t = sa.type.elem if isinstance(sa.type, ArrayT) else None
        from ..lang.normalize import rename_free
        body = rename_free(sa.expr.body, sa.expr.var, si.expr.name)   # keeps a DAG a DAG
        out = Sym(body if body is not None else subst(sa.expr.body, sa.expr.var, si.expr), t)
        if len(_FUSED) > 100_000:
            _FUSED.clear()
        _FUSED[key] = (sa.expr, out)
        return out
    return get(sa, si)


#: (id of a Build, index) -> (the Build, its element): see _element; emptied by trace()
_FUSED: dict[tuple[int, Expr], tuple[Expr, Sym]] = {}


def length(a: Any) -> Sym:
    """``(length a)``: a size."""
    return Sym(Length(as_expr(a)), SIZE)


def pair(a: Any, b: Any) -> Sym:
    sa, sb = as_sym(a), as_sym(b)
    t = PairT(sa.type, sb.type) if sa.type is not None and sb.type is not None else None
    return Sym(Pair(sa.expr, sb.expr), t)


def fst(p: Any) -> Sym:
    sp = as_sym(p)
    return Sym(Fst(sp.expr), sp.type.fst if isinstance(sp.type, PairT) else None)


def snd(p: Any) -> Sym:
    sp = as_sym(p)
    return Sym(Snd(sp.expr), sp.type.snd if isinstance(sp.type, PairT) else None)


# --------------------------------------------------------------------------------------
# binders: a unique placeholder while the body is traced, then a readable fresh name
# --------------------------------------------------------------------------------------
_placeholders = itertools.count()


def _placeholder(base: str) -> str:
    return f"\0{base}#{next(_placeholders)}"


def _readable(base: str) -> str:
    return base if base.isidentifier() else "v"


def _param_names(fn: Any, n: int, defaults: tuple[str, ...]) -> tuple[str, ...]:
    """Base names for the binders: the lambda's own parameter names when it has them."""
    from ..lang.macros import Lambda
    if isinstance(fn, Lambda):
        names = tuple(fn.params)
    else:
        try:
            names = tuple(p.name for p in inspect.signature(fn).parameters.values()
                          if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
        except (TypeError, ValueError):
            names = ()
    if len(names) < n:
        names = names + defaults[len(names):]
    return tuple(_readable(b) for b in names[:n])


def _apply(fn: Any, args: list[Sym]) -> Sym:
    """Call a Python function or a text-level ``Lambda`` on symbolic arguments."""
    from ..lang.macros import Lambda
    if isinstance(fn, Lambda):
        return Sym(fn(*[a.expr for a in args]), None)
    if not callable(fn):
        raise TypeError(f"expected a function (lambda), got {type(fn).__name__}")
    return as_sym(fn(*args))


def _close(body: Expr, holes: list[str], bases: tuple[str, ...], outside: tuple[Expr, ...] = ()):
    """Replace placeholder binder names by readable names free in ``body`` (no capture)."""
    from ..lang.normalize import rename_free
    avoid = set(all_names(body))
    for e in outside:
        avoid |= all_names(e)
    names = []
    for hole, base in zip(holes, bases):
        name = fresh(base, avoid)
        avoid.add(name)
        names.append(name)
        # a DAG (a Python value used twice) stays one: rebuilt once per shared node
        renamed = rename_free(body, hole, name)
        body = renamed if renamed is not None else subst(body, hole, Var(name))
    return body, names


def _size(n: Any) -> Sym:
    """A size argument: a size name (``"n"``), a Python int, or a symbolic size."""
    if isinstance(n, str):
        if not n.isidentifier():
            raise TypeCheckError(f"{n!r} is not a size name")
        return Sym(Var(n), SIZE)
    if isinstance(n, bool):
        raise TypeError("a size cannot be a bool")
    if isinstance(n, int):
        if n < 0:
            raise TypeCheckError(f"negative size {n}")
        return Sym(Int(n), SIZE)
    s = as_sym(n)
    if s.type is not None and s.type not in (SIZE, INDEX):
        raise TypeCheckError(f"a size must be a size or index, got {_t.show_type(s.type)}")
    return s


def _size_value(s: Sym):
    if isinstance(s.expr, Int):
        return s.expr.value
    if isinstance(s.expr, Var) and s.type == SIZE:
        return s.expr.name
    return None


def build(n: Any, fn: Callable) -> Sym:
    """``(build n (lambda (i) fn(i)))``: the array ``[fn(0), ..., fn(n-1)]``.

    >>> build(3, lambda i: real(i) * 2.0).expr.var
    'i'
    """
    sn = _size(n)
    (base,) = _param_names(fn, 1, ("i",))
    hole = _placeholder(base)
    body = _apply(fn, [Sym(Var(hole), INDEX)])
    expr, (name,) = _close(body.expr, [hole], (base,), (sn.expr,))
    t = ArrayT(body.type, _size_value(sn)) if body.type is not None else None
    return Sym(Build(sn.expr, name, expr), t)


def sum(n: Any, fn: Callable | None = None, *, axis: int | None = None,  # noqa: A001
        keepdims: bool = False) -> Sym:
    """``(sum n (lambda (i) fn(i)))``, the language's sum; or, without ``fn``, NumPy's
    ``sum``: ``sum(v)`` adds every element of an array (a vector, a matrix, ...),
    ``sum(M, axis=0)`` / ``sum(M, axis=1)`` (or ``-1``) adds along one axis.

    >>> sum(4, lambda i: real(i)).expr.var
    'i'
    >>> from eqsat_ad.lang.syntax import show_expr
    >>> show_expr(trace(lambda M: sum(M, axis=0), M=Mat("m", "n")).body)
    '(build n (lambda (j) (sum m (lambda (i) (get (get M i) j)))))'
    """
    if fn is None:
        return reduce(n, lambda size, body: sum(size, body), axis, "sum", keepdims)
    if axis is not None:
        raise TypeError("sum(n, fn) is the language's loop; axis= goes with sum(array)")
    sn = _size(n)
    (base,) = _param_names(fn, 1, ("i",))
    hole = _placeholder(base)
    body = _apply(fn, [Sym(Var(hole), INDEX)])
    expr, (name,) = _close(body.expr, [hole], (base,), (sn.expr,))
    return Sym(Sum(sn.expr, name, expr), body.type)


def reduce(a: Any, fold: Callable[[Sym, Callable[[Sym], Sym]], Sym], axis: int | None,
           what: str, keepdims: bool = False) -> Sym:
    """A reduction of an array, as NumPy's ``axis=``: ``fold(size, body)`` reduces the
    values ``body(i)`` for ``i < size``; ``axis=None`` reduces every axis, ``axis=k`` only
    axis ``k`` (negative counts from the end); ``keepdims`` keeps the reduced axes with size 1."""
    s = as_sym(a)
    if keepdims and isinstance(s.type, ArrayT):
        r = array_rank(s.type)
        out = reduce(s, fold, axis, what)
        for ax in (range(r) if axis is None else [axis % r if isinstance(axis, int) else axis]):
            out = expand_dims(out, ax)
        return out
    if s.type is not None and not isinstance(s.type, ArrayT):
        if axis is not None:
            raise TypeCheckError(f"{what}(a, axis={axis}): a is a scalar")
        return s
    r = array_rank(s.type)
    if axis is None:
        return fold(_extent(s), lambda i: reduce(_element(s, i), fold, None, what)
                    if r > 1 else _element(s, i))
    if isinstance(axis, bool) or not isinstance(axis, int) or not -r <= axis < r:
        raise TypeCheckError(f"{what}(a, axis={axis!r}): a has {r} axes ({_shape_text(s.type)})")
    axis %= r
    if axis == 0:
        if r == 1:
            return fold(_extent(s), lambda i: _element(s, i))
        # the result's axes are a's other axes: build over them, reduce along the first
        if r == 2:
            return build(_extent(get(s, 0)), lambda j: fold(
                _extent(s), lambda i: _element(_element(s, i), j)))
        return build(_extent(get(s, 0)), lambda j: reduce(
            build(_extent(s), lambda i: _element(_element(s, i), j)), fold, 0, what))
    return build(_extent(s), lambda i: reduce(_element(s, i), fold, axis - 1, what))


def ifold(fn: Callable, init: Any, n: Any) -> Sym:
    """``(ifold (lambda (acc i) fn(acc, i)) init n)``: ``acc = init; for i < n: acc = fn(acc, i)``.

    >>> ifold(lambda acc, i: acc + real(i), 0.0, 3).expr.acc
    'acc'
    """
    sz = as_sym(init)
    sn = _size(n)
    acc_base, i_base = _param_names(fn, 2, ("acc", "i"))
    holes = [_placeholder(acc_base), _placeholder(i_base)]
    body = _apply(fn, [Sym(Var(holes[0]), sz.type), Sym(Var(holes[1]), INDEX)])
    if sz.type is not None and body.type is not None and sz.type != body.type \
            and sz.type in _t.NUMERIC and body.type in _t.NUMERIC:
        t = _numeric_join([sz.type, body.type])
    else:
        t = sz.type if sz.type is not None else body.type
    expr, (acc, i) = _close(body.expr, holes, (acc_base, i_base), (sz.expr, sn.expr))
    return Sym(IFold(acc, i, expr, sz.expr, sn.expr), t)


def let(value: Any, fn: Callable, name: str | None = None) -> Sym:
    """``(let ((x value)) fn(x))``: name an intermediate value (computed once).  The bound
    name is based on ``name`` or on the parameter name of ``fn``.

    >>> let(2.0, lambda y: y * y).expr.name
    'y'
    """
    sv = as_sym(value)
    (base,) = (_readable(name),) if name else _param_names(fn, 1, ("v",))
    hole = _placeholder(base)
    body = _apply(fn, [Sym(Var(hole), sv.type)])
    expr, (name,) = _close(body.expr, [hole], (base,), (sv.expr,))
    return Sym(Let(name, sv.expr, expr), body.type)


# --------------------------------------------------------------------------------------
# tracing whole programs
# --------------------------------------------------------------------------------------
def _as_type(name: str, t: Any) -> Type:
    if isinstance(t, Type):
        return t
    if isinstance(t, str):
        try:
            from ..lang.syntax import parse_type
        except ImportError:  # pragma: no cover
            parse_type = None
        if parse_type is not None:
            return parse_type(t)
    raise TypeError(f"parameter {name!r}: expected a type such as Vec('n'), Mat('m', 'n') or "
                    f"Real, or an example array, got {t!r}")


#: size names given to the extents of example arrays, in order of first appearance
SIZE_NAMES = ("n", "m", "k", "l", "p", "q")


def is_example(v: Any) -> bool:
    """Is ``v`` an example value (a NumPy array, a Python/NumPy number, a list of numbers)
    rather than a type?"""
    if isinstance(v, (Type, str)):
        return False
    if isinstance(v, bool):
        return False
    return isinstance(v, (int, float, list)) or (hasattr(v, "shape") and hasattr(v, "dtype"))


def example_shape(name: str, v: Any) -> tuple[int, ...]:
    """The shape of an example value of parameter ``name`` (a real array or number);
    a clear error for anything else."""
    import numpy as np
    try:
        arr = v if isinstance(v, np.ndarray) else np.asarray(v)
    except (TypeError, ValueError) as e:
        raise TypeError(f"parameter {name!r}: {type(v).__name__} is not an array of numbers "
                        f"({e})") from None
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"parameter {name!r}: an array of {arr.dtype} is not an array of real "
                        f"numbers (float or int)")
    return tuple(int(d) for d in arr.shape)


def example_types(shapes: dict[str, tuple[int, ...]], avoid=()) -> dict[str, Type]:
    """Parameter types for arrays of these shapes: ``()`` is ``real``, ``(3,)`` a ``(vec n)``,
    ``(3, 2)`` a ``(mat n m)``, more axes nested arrays.  Equal extents get one size name
    (``n``, ``m``, ``k``, ... in order of first appearance; never a parameter's name nor a
    name in ``avoid``), so arrays whose axes match can be combined element by element.

    >>> {k: _t.show_type(t) for k, t in example_types({"X": (5, 3), "y": (5,), "w": (3,), "c": ()}).items()}
    {'X': '(mat n m)', 'y': '(vec n)', 'w': '(vec m)', 'c': 'real'}
    """
    names: dict[int, str] = {}
    taken = set(shapes) | set(avoid)
    pool = [n for n in SIZE_NAMES if n not in taken]
    extra = itertools.count(1)

    def size_name(extent: int) -> str:
        if extent not in names:
            if pool:
                names[extent] = pool.pop(0)
            else:
                names[extent] = next(f"n{k}" for k in extra if f"n{k}" not in taken)
        return names[extent]
    out: dict[str, Type] = {}
    for pname, shape in shapes.items():
        sizes = [size_name(e) for e in shape]      # outermost first
        t: Type = REAL
        for z in reversed(sizes):
            t = ArrayT(t, z)
        out[pname] = t
    return out


def trace(fn: Callable, **param_types: Any) -> Program:
    """Trace ``fn`` into a type-checked, elaborated :class:`Program`.

    ``param_types`` gives every parameter of ``fn`` a type (``Vec("n")``, ``Mat("m", "n")``,
    ``Real``, or text such as ``"(vec n)"``) or an example value (a NumPy array or a number:
    its type is read from its shape, see :func:`example_types`); parameters appear in the
    order of ``fn``'s signature.  The result may be a
    symbolic value, a Python number, or a 2-tuple (a pair).  Raises
    :class:`~eqsat_ad.errors.TypeCheckError` if the traced program is ill-typed.

    >>> from eqsat_ad.frontend.library import dot
    >>> p = trace(lambda u, w: dot(u, w), u=Vec("n"), w=Vec("n"))
    >>> [q.name for q in p.params]
    ['u', 'w']
    """
    try:
        sig = inspect.signature(fn)
        order = [p.name for p in sig.parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    except (TypeError, ValueError):
        order = list(param_types)
    missing = [n for n in order if n not in param_types]
    if missing:
        raise TypeError(f"trace: no type given for parameter(s) {', '.join(missing)} of "
                        f"{getattr(fn, '__name__', 'the function')}")
    extra = [n for n in param_types if n not in order]
    if extra:
        raise TypeError(f"trace: {getattr(fn, '__name__', 'the function')} has no parameter(s) "
                        f"{', '.join(extra)}")
    examples = {n: example_shape(n, v) for n, v in param_types.items() if is_example(v)}
    given = {n: _as_type(n, v) for n, v in param_types.items() if n not in examples}
    taken = set(order) | {z for t in given.values() for z in _t.size_names(t)}
    types = {**given, **(example_types(examples, taken) if examples else {})}
    params = tuple(Param(n, types[n]) for n in order)
    args = {p.name: Sym(Var(p.name), p.type) for p in params}
    try:
        out = fn(**args)
    finally:
        _FUSED.clear()
    body = as_expr(out)
    from ..lang.normalize import has_sharing, share
    if has_sharing(body):       # a Python value used twice is one node: let-bound once
        body = share(body, {p.name for p in params})
    prog = rename_unique(Program(params, body))
    from ..lang.typecheck import elaborate
    try:
        return elaborate(prog)
    except TypeCheckError as e:
        name = getattr(fn, "__name__", "function")
        raise TypeCheckError(f"traced {name} is ill-typed: {e}") from None


def program(**param_types: Any) -> Callable[[Callable], Program]:
    """Decorator form of :func:`trace`: ``@program(x=Vec("n"))`` turns the function into
    its traced :class:`Program`."""
    def deco(fn: Callable) -> Program:
        return trace(fn, **param_types)
    return deco


def lift_fn(fn: Callable) -> Callable[..., Expr]:
    """Wrap a function over symbolic values so it takes and returns expressions (for
    registering it as a text macro); ``macros.Lambda`` arguments pass through as functions."""
    from ..lang.macros import Lambda

    def on_exprs(*args):
        conv = [a if isinstance(a, Lambda) else Sym(a, None) for a in args]
        return as_expr(fn(*conv))
    on_exprs.__name__ = getattr(fn, "__name__", "macro")
    on_exprs.__doc__ = fn.__doc__
    return on_exprs


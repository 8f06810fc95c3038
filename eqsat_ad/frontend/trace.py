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

Symbolic values support ``+ - * / **``, unary ``-``, ``< > <= >=`` (``eq(a, b)`` for
equality: ``==`` stays Python equality), ``&  |  ~`` on booleans, and indexing ``x[i]``
(``M[i, j]`` for ``M[i][j]``); Python numbers mix in freely.
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
from ..lang.types import BOOL, INDEX, REAL, SIZE, ArrayT, PairT, Type

__all__ = ["Sym", "trace", "program", "Vec", "Mat", "Real", "Index", "Size", "Array",
           "build", "sum", "ifold", "get", "length", "if_", "where", "let", "pair", "fst",
           "snd", "eq", "and_", "or_", "not_", "real", "exp", "log", "sin", "cos", "tan",
           "sqrt", "tanh", "as_expr", "as_sym", "lift_fn"]

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
    def __pow__(self, o): return _arith("pow", self, o)
    def __rpow__(self, o): return _arith("pow", o, self)
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
        if isinstance(idx, tuple):
            out = self
            for k in idx:
                out = get(out, k)
            return out
        return get(self, idx)

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
        """Transpose (a matrix)."""
        from .library import transpose
        return transpose(self)

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
    ta, tb = _type(a), _type(b)
    sa, sb = as_sym(a, tb), as_sym(b, ta)
    if op in ("/", "pow"):
        t = REAL
    else:
        t = _numeric_join([sa.type, sb.type])
    return Sym(Prim(op, (sa.expr, sb.expr)), t)


def _unary(op: str, a: Any) -> Sym:
    if isinstance(a, (int, float)) and not isinstance(a, bool):
        a = Num(float(a))
    s = as_sym(a)
    t = (s.type if s.type in _t.NUMERIC else None) if op == "neg" else REAL
    if op == "neg" and s.type is None:
        t = None
    return Sym(Prim(op, (s.expr,)), t)


def _compare(op: str, a: Any, b: Any) -> Sym:
    sa, sb = as_sym(a, _type(b)), as_sym(b, _type(a))
    return Sym(Prim(op, (sa.expr, sb.expr)), BOOL)


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
    return Sym(Prim("and", (as_expr(a), as_expr(b))), BOOL)


def or_(a: Any, b: Any) -> Sym:
    return Sym(Prim("or", (as_expr(a), as_expr(b))), BOOL)


def not_(a: Any) -> Sym:
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


where = if_


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


def sum(n: Any, fn: Callable | None = None) -> Sym:  # noqa: A001 - the language's sum
    """``(sum n (lambda (i) fn(i)))``, or ``sum(v)`` for the sum of a vector's elements.

    >>> sum(4, lambda i: real(i)).expr.var
    'i'
    """
    if fn is None:
        v = as_sym(n)
        if v.type is not None and not isinstance(v.type, ArrayT):
            raise TypeCheckError(f"sum(v) needs a vector, got {_t.show_type(v.type)}")
        return sum(length(v), lambda i: v[i])
    sn = _size(n)
    (base,) = _param_names(fn, 1, ("i",))
    hole = _placeholder(base)
    body = _apply(fn, [Sym(Var(hole), INDEX)])
    expr, (name,) = _close(body.expr, [hole], (base,), (sn.expr,))
    return Sym(Sum(sn.expr, name, expr), body.type)


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
                    f"Real, got {t!r}")


def trace(fn: Callable, **param_types: Any) -> Program:
    """Trace ``fn`` into a type-checked, elaborated :class:`Program`.

    ``param_types`` gives every parameter of ``fn`` a type (``Vec("n")``, ``Mat("m", "n")``,
    ``Real``); parameters appear in the order of ``fn``'s signature.  The result may be a
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
    params = tuple(Param(n, _as_type(n, param_types[n])) for n in order)
    args = {p.name: Sym(Var(p.name), p.type) for p in params}
    out = fn(**args)
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


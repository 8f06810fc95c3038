"""The primitive operators, declared once.

Every ``Prim`` operator of the language has one :class:`Primitive` row here; the other
tables are derived from it:

* the parser's arities and the printer's core forms (``ast.PRIM_ARITY``, ``syntax.CORE_FORMS``);
* the type checker's typing rule (``typing``);
* the reference interpreter's function (``interp``) for the real functions;
* the dual-number derivative rule, one line each (``jvp``: the tangent of ``op(p...)`` from
  the primals ``p`` and tangents ``d``, as in autograd's ``defjvp``) -- ``ad.dual.JVP_UNARY``
  and ``JVP_BINARY``;
* the e-graph constructor (``ctor``): ``egraph.constructors.CONSTRUCTORS`` / ``PRIM_TO_CTOR``,
  and from those the generated e-graph tables (``tools/gen_egg_tables.py``: the constructor
  declarations and ``real-term`` facts in ``egraph/schema.egg``, ``egraph/fv.egg``,
  ``rules/subst.egg``);
* the cost model's default per-element cost (``cost``);
* the NumPy backend's function (``numpy``: bound in the generated code as ``_<name>``).

``tests/test_primitives.py`` checks that every consumer agrees with this table and that the
generated files are in sync.  Adding a real function (``(erf a)``, say) is one row here plus
``python tools/gen_egg_tables.py``.

Typing (``typing``):
  ``real``     operands are converted to ``real``, the result is ``real`` (``/ pow exp max ...``)
  ``join``     operands and result of the numeric join (``+ - *``: index + index is an index)
  ``compare``  numeric operands (or two bools for ``=``), a ``bool`` result
  ``logic``    ``bool`` operands and result
  ``cast``     an index/size operand, a ``real`` result (``real``)
  ``argext``   a vector of reals, an ``index`` result: the position of its first largest
               (``argmax``) or smallest (``argmin``) element (NumPy's: a NaN counts as the
               extreme, the first one wins); 0 for an empty vector.  No tangent.
  ``intdiv``   integer (index/size) operands and an integer result (a size when both are
               sizes, else an index): ``div`` and ``mod`` with floor semantics, as Python's
               ``//`` and ``%`` (``(div -7 2)`` is -4, ``(mod -7 2)`` is 1: the remainder
               has the divisor's sign).  A zero divisor is an ``EvalError`` naming the
               expression.  No tangent.  (A packed triangle's row and column, a flat index's
               coordinates: ``(div k n)``, ``(mod k n)``.)

The arithmetic, comparison, logic and integer-division operators keep hand-written code in the interpreter and
the backend (integer arithmetic, short-circuits, exact division and small integer powers);
their rows give the name, arity, typing, constructor, cost and derivative.  The *real
functions* (``typing == "real"`` with an ``interp``) are handled by every consumer from the
table alone.

Non-smooth points (subgradient convention, ``docs/ad.md``): ``abs'(0) = 0`` (the tangent is
``d * sign(p)``); ``max(a, b)`` takes the tangent of ``a`` when ``a >= b`` (ties go to the
first operand), ``min(a, b)`` the tangent of ``a`` when ``a <= b``; ``sign`` has tangent 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .ast import Expr, If, Num, Prim


def _p(op: str, *args: Expr) -> Prim:
    return Prim(op, tuple(args))


def _add(a, b): return _p("+", a, b)
def _sub(a, b): return _p("-", a, b)
def _mul(a, b): return _p("*", a, b)
def _div(a, b): return _p("/", a, b)
def _neg(a): return _p("neg", a)


ONE, TWO, ZERO = Num(1.0), Num(2.0), Num(0.0)


def _arg_extreme(find: Callable) -> Callable:
    """``argmax``/``argmin`` along the first axis (the vector's; the backend's further axes
    are loop axes), 0 where the vector is empty."""
    def fn(a):
        a = np.asarray(a, dtype=np.float64)
        if a.shape[0] == 0:
            return np.zeros(a.shape[1:], dtype=np.int64) if a.ndim > 1 else 0
        return find(a, axis=0)
    fn.__name__ = find.__name__
    return fn


@dataclass(frozen=True)
class Primitive:
    name: str                    # the operator in program text: (name a ...)
    arity: int
    typing: str                  # real | join | compare | logic | cast | argext | intdiv (docstring)
    ctor: str | None             # e-graph constructor; None: encoded through another one
    cost: float = 1.0            # default cost per element (float add = 1); opcosts.json overrides
    interp: Callable | None = None   # NumPy function of the real function (interpreter and backend)
    jvp: Callable | None = None  # tangent: (p, d) for arity 1, (p1, d1, p2, d2) for arity 2
    doc: str = ""

    @property
    def is_real_fn(self) -> bool:
        """A real function: every consumer handles it from this row alone."""
        return self.typing == "real" and self.interp is not None

    @property
    def numpy_name(self) -> str:
        """The name the generated NumPy code calls it by (bound in the backend's globals)."""
        return f"_{self.name}"


_ROWS = [
    # arithmetic (hand-written in the interpreter and backend: integers, exact division, powers)
    Primitive("+", 2, "join", "Add", 1.0, jvp=lambda p1, d1, p2, d2: _add(d1, d2), doc="sum"),
    Primitive("-", 2, "join", "Sub", 1.0, jvp=lambda p1, d1, p2, d2: _sub(d1, d2), doc="difference"),
    Primitive("*", 2, "join", "Mul", 1.0,
              jvp=lambda p1, d1, p2, d2: _add(_mul(d1, p2), _mul(p1, d2)), doc="product"),
    Primitive("/", 2, "real", "Div", 1.5,
              jvp=lambda p1, d1, p2, d2: _div(_sub(_mul(d1, p2), _mul(p1, d2)), _mul(p2, p2)),
              doc="real division"),
    Primitive("pow", 2, "real", "Pow", 15.0,
              jvp=lambda p1, d1, p2, d2: _mul(_p("pow", p1, p2),
                                              _add(_mul(d2, _p("log", p1)), _div(_mul(p2, d1), p1))),
              doc="power (a constant exponent gets c * p^(c-1) * d, ad/dual.py)"),
    # comparisons ((> a b) and (>= a b) are encoded as Lt/Le with the operands swapped)
    Primitive("=", 2, "compare", "Eq", 1.0, doc="equality"),
    Primitive("<", 2, "compare", "Lt", 1.0, doc="less than"),
    Primitive("<=", 2, "compare", "Le", 1.0, doc="at most"),
    Primitive(">", 2, "compare", None, 1.0, doc="greater than: (Lt b a)"),
    Primitive(">=", 2, "compare", None, 1.0, doc="at least: (Le b a)"),
    # logic (not: after real, keeping the generated e-graph tables in their order)
    Primitive("and", 2, "logic", "And", 1.0, doc="conjunction (short-circuits)"),
    Primitive("or", 2, "logic", "Or", 1.0, doc="disjunction (short-circuits)"),
    # the real functions: handled everywhere from their row
    Primitive("neg", 1, "real", "Neg", 1.0, np.negative, lambda p, d: _neg(d), "negation"),
    Primitive("exp", 1, "real", "Exp", 6.0, np.exp, lambda p, d: _mul(d, _p("exp", p)), "e^a"),
    Primitive("log", 1, "real", "Log", 6.0, np.log, lambda p, d: _div(d, p), "natural logarithm"),
    Primitive("sin", 1, "real", "Sin", 8.0, np.sin, lambda p, d: _mul(d, _p("cos", p)), "sine"),
    Primitive("cos", 1, "real", "Cos", 8.0, np.cos, lambda p, d: _neg(_mul(d, _p("sin", p))), "cosine"),
    # d / cos^2 p (not Coconut's d*cos^2 p)
    Primitive("tan", 1, "real", "Tan", 10.0, np.tan,
              lambda p, d: _div(d, _mul(_p("cos", p), _p("cos", p))), "tangent"),
    Primitive("sqrt", 1, "real", "Sqrt", 2.0, np.sqrt,
              lambda p, d: _div(d, _mul(TWO, _p("sqrt", p))), "square root"),
    Primitive("tanh", 1, "real", "Tanh", 8.0, np.tanh,
              lambda p, d: _mul(d, _sub(ONE, _mul(_p("tanh", p), _p("tanh", p)))), "hyperbolic tangent"),
    # casts (inserted by the type checker's elaboration)
    Primitive("real", 1, "cast", "ToReal", 1.0, doc="index/size -> real"),
    Primitive("not", 1, "logic", "Not", 1.0, doc="logical negation"),
    # added with the table (issue 11)
    Primitive("log1p", 1, "real", "Log1p", 6.0, np.log1p,
              lambda p, d: _div(d, _add(ONE, p)), "log(1 + a), exact for small a"),
    Primitive("abs", 1, "real", "Abs", 1.0, np.abs,
              lambda p, d: _mul(d, _p("sign", p)), "absolute value; abs'(0) = 0"),
    Primitive("sign", 1, "real", "Sign", 1.0, np.sign,
              lambda p, d: ZERO, "-1.0, 0.0 or 1.0 (nan for nan); tangent 0"),
    Primitive("max", 2, "real", "Maximum", 1.0, np.maximum,
              lambda p1, d1, p2, d2: If(_p(">=", p1, p2), d1, d2),
              "the larger operand (nan if either is nan); ties take the first operand's tangent"),
    Primitive("min", 2, "real", "Minimum", 1.0, np.minimum,
              lambda p1, d1, p2, d2: If(_p("<=", p1, p2), d1, d2),
              "the smaller operand (nan if either is nan); ties take the first operand's tangent"),
    Primitive("argmax", 1, "argext", "Argmax", 1.0, _arg_extreme(np.argmax),
              doc="the index of the first largest element of a vector (0 if empty)"),
    Primitive("argmin", 1, "argext", "Argmin", 1.0, _arg_extreme(np.argmin),
              doc="the index of the first smallest element of a vector (0 if empty)"),
    # integer division on indices (issue 12): hand-written in the interpreter and backends
    # (the zero-divisor check); an integer division costs about as much as a float division
    Primitive("div", 2, "intdiv", "FloorDiv", 1.5, doc="integer division rounding down (Python's //)"),
    Primitive("mod", 2, "intdiv", "Mod", 1.5, doc="remainder of div, the divisor's sign (Python's %)"),
]

PRIMITIVES: dict[str, Primitive] = {p.name: p for p in _ROWS}
REAL_FNS: dict[str, Primitive] = {p.name: p for p in _ROWS if p.is_real_fn}
PRIM_ARITY: dict[str, int] = {p.name: p.arity for p in _ROWS}
PRIM_TO_CTOR: dict[str, str] = {p.name: p.ctor for p in _ROWS if p.ctor is not None}
CTOR_TO_PRIM: dict[str, str] = {c: o for o, c in PRIM_TO_CTOR.items()}
COMPARISONS = tuple(p.name for p in _ROWS if p.typing == "compare")
LOGIC = tuple(p.name for p in _ROWS if p.typing == "logic")
CASTS = tuple(p.name for p in _ROWS if p.typing == "cast")
BINARY_ARITH = tuple(p.name for p in _ROWS if p.arity == 2 and p.typing in ("join", "real")
                     and not p.is_real_fn)
UNARY_REAL = tuple(p.name for p in _ROWS if p.is_real_fn and p.arity == 1)
BINARY_REAL = tuple(p.name for p in _ROWS if p.is_real_fn and p.arity == 2)
ARG_EXTREMES: dict[str, Primitive] = {p.name: p for p in _ROWS if p.typing == "argext"}
INT_DIVISION = tuple(p.name for p in _ROWS if p.typing == "intdiv")
# The operators whose operands are converted to real and whose result is real.
REAL_RESULT = tuple(p.name for p in _ROWS if p.typing == "real")

"""Python functions for the real functions of the primitive table added after the tracer's
hand-written ones (``log1p``, ``sign``, ``abs_``, ``max_``, ``min_``), derived from
:mod:`eqsat_ad.lang.primitives`.  ``abs``, ``max`` and ``min`` get a trailing ``_`` so that
Python's builtins stay usable next to ``from eqsat_ad.frontend import *``.

>>> from eqsat_ad.frontend import trace, Vec, max_, get
>>> from eqsat_ad.lang.syntax import show_expr
>>> show_expr(trace(lambda x: max_(get(x, 0), 0.0), x=Vec("n")).body)
'(max (get x 0) 0.0)'
"""
from __future__ import annotations

from typing import Any, Callable

from ..lang.ast import Prim
from ..lang.primitives import REAL_FNS
from ..lang.types import REAL
from .trace import Sym, as_sym

_TRACED_BY_HAND = ("neg", "exp", "log", "sin", "cos", "tan", "sqrt", "tanh")
_BUILTIN = ("abs", "max", "min")


def python_name(op: str) -> str:
    return op + "_" if op in _BUILTIN else op


def _fn(op: str, arity: int) -> Callable[..., Sym]:
    def fn(*args: Any) -> Sym:
        if len(args) != arity:
            raise TypeError(f"{python_name(op)} takes {arity} argument{'s' if arity != 1 else ''}, "
                            f"got {len(args)}")
        return Sym(Prim(op, tuple(as_sym(a, REAL).expr for a in args)), REAL)
    fn.__name__ = python_name(op)
    fn.__doc__ = f"``({op} {' '.join('ab'[:arity])})``: {REAL_FNS[op].doc}"
    return fn


FUNCTIONS: dict[str, Callable[..., Sym]] = {
    python_name(op): _fn(op, p.arity) for op, p in REAL_FNS.items() if op not in _TRACED_BY_HAND}
globals().update(FUNCTIONS)
__all__ = sorted(FUNCTIONS)

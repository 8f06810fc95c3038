"""Shapes of ``ifold`` bodies shared by the backend and the cost model."""
from __future__ import annotations

from typing import Callable

from .ast import Expr, Let
from .binders import free_vars


def peel_lets(body: Expr, acc: str, fv: Callable[[Expr], "frozenset | tuple"] = free_vars):
    """Split the lets at the top of a fold body that do not read the accumulator.

    Returns ``(core, wrap)``: the body under those lets, and a function that puts the same
    lets back around another expression (so a rewritten core keeps its bindings).

    >>> from eqsat_ad.lang.syntax import parse_expr, show_expr
    >>> core, wrap = peel_lets(parse_expr("(let ((t (* 2.0 i))) (+ acc t))"), "acc")
    >>> show_expr(core), show_expr(wrap(core))
    ('(+ acc t)', '(let ((t (* 2.0 i))) (+ acc t))')
    """
    lets = []
    b = body
    while isinstance(b, Let) and b.name != acc and acc not in fv(b.value):
        lets.append(b)
        b = b.body

    def wrap(x: Expr) -> Expr:
        for lt in reversed(lets):
            x = Let(lt.name, lt.value, x)
        return x

    return b, wrap

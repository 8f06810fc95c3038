"""Program text: parsing and printing (s-expressions).  Placeholder: printing only."""
from __future__ import annotations

from .ast import (Build, BoolLit, Expr, Fst, Get, If, IFold, Int, Length, Let, Num, Pair, Prim,
                  Program, Snd, Sum, Var)
from .types import show_type


def _float_text(v: float) -> str:
    return repr(float(v))


def _form(e: Expr):
    """One level of the printed form of ``e``: an atom string, or a list of items where an
    item is an atom string, a nested list, or a sub-expression still to be printed."""
    if isinstance(e, Num):
        return _float_text(e.value)
    if isinstance(e, Int):
        return str(int(e.value))
    if isinstance(e, BoolLit):
        return "true" if e.value else "false"
    if isinstance(e, Var):
        return e.name
    if isinstance(e, Prim):
        return [e.op, *e.args]
    if isinstance(e, If):
        return ["if", e.cond, e.then, e.else_]
    if isinstance(e, Let):
        binds = []
        while True:
            binds.append([e.name, e.value])
            if not isinstance(e.body, Let):
                break
            e = e.body
        return ["let", binds, e.body]
    if isinstance(e, Build):
        return ["build", e.size, ["lambda", [e.var], e.body]]
    if isinstance(e, Sum):
        return ["sum", e.size, ["lambda", [e.var], e.body]]
    if isinstance(e, IFold):
        return ["ifold", ["lambda", [e.acc, e.var], e.body], e.init, e.size]
    if isinstance(e, Get):
        return ["get", e.array, e.index]
    if isinstance(e, Length):
        return ["length", e.array]
    if isinstance(e, Pair):
        return ["pair", e.fst, e.snd]
    if isinstance(e, Fst):
        return ["fst", e.pair]
    if isinstance(e, Snd):
        return ["snd", e.pair]
    raise TypeError(f"not an expression: {e!r}")


def show_flat(e: Expr, limit: int | None = None) -> str:
    """``e`` on one line; with ``limit``, cut to at most ``limit`` characters (ending
    in ``...``).

    >>> show_flat(Prim("+", (Var("x"), Num(1.0))))
    '(+ x 1.0)'
    """
    parts: list[str] = []
    length = 0
    stack: list = [e]
    need_space = False
    while stack:
        it = stack.pop()
        if isinstance(it, Expr):
            it = _form(it)
        if it == ")":
            parts.append(")")
            length += 1
            need_space = True
        elif isinstance(it, str):
            if need_space:
                parts.append(" ")
                length += 1
            parts.append(it)
            length += len(it)
            need_space = True
        else:
            if need_space:
                parts.append(" ")
                length += 1
            parts.append("(")
            length += 1
            need_space = False
            stack.append(")")
            stack.extend(reversed(it))
        if limit is not None and length > limit:
            return "".join(parts)[: max(limit - 3, 0)] + "..."
    return "".join(parts)


def show_expr(e: Expr) -> str:
    return show_flat(e)


def show_program(p: Program) -> str:
    ps = " ".join(f"({q.name} {show_type(q.type)})" for q in p.params)
    return f"(fun ({ps})\n  {show_expr(p.body)})"

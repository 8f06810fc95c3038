"""Reference interpreter: slow, plain, obviously right.  The ground truth every other
executor (and every optimised program) is compared with.

Values
    ``real`` -> ``numpy.float64``; ``index``/``size`` -> ``int``; ``bool`` -> ``bool``;
    an array -> a NumPy array when it is rectangular with scalar elements (``float64``
    for reals, ``int64`` for indices, ``bool``), else a Python list (arrays of pairs,
    ragged arrays); a pair -> a tuple.

Semantics (``docs/language.md``)
    ``build n f = [f 0 .. f (n-1)]``; ``sum n f = f 0 + ... + f (n-1)`` (left to right,
    0.0 for ``n <= 0``); ``ifold f z n`` is the loop ``acc = z; for i in 0..n-1: acc = f acc i``;
    ``scan f z n`` is the list of every ``acc`` of that loop, ``z`` first (``n + 1`` states);
    ``get a i`` is ``a[i]`` and an index outside ``0 <= i < length a`` is an
    :class:`EvalError` (no wrap-around); ``let`` binds sequentially; ``if`` evaluates only
    the branch taken; ``and``/``or`` short-circuit.

Floating point follows IEEE 754 as NumPy does it: ``(/ 1.0 0.0)`` is ``inf``,
``(log 0.0)`` is ``-inf``, ``(log -1.0)`` and ``(sqrt -1.0)`` are ``nan``, overflow gives
``inf`` -- never an exception, and no NumPy warnings are printed (they are switched off
while a program runs).  ``/``, ``pow`` and the unary operators always give a real, also on
indices; ``+ - *`` on two indices give an index; ``div``/``mod`` take and give indices
(floor semantics, Python's ``//`` and ``%``; a zero divisor is an :class:`EvalError`).

>>> from eqsat_ad.lang.ast import Program, Param, Sum, Get, Var, Prim, Length
>>> from eqsat_ad.lang.types import vec
>>> x, i = Var("x"), Var("i")
>>> p = Program((Param("x", vec("n")),), Sum(Length(x), "i", Prim("*", (Get(x, i), Get(x, i)))))
>>> evaluate(p, x=[1.0, 2.0, 3.0])
14.0
"""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

from ..errors import EvalError
from ..runtime import bind_inputs, check_alloc, fp_ignore, pack, to_output
from .primitives import ARG_EXTREMES, INT_DIVISION, REAL_FNS
from .ast import (Build, BoolLit, Expr, Fst, Get, If, IFold, Int, Length, Let, Num, Pair,
                  Prim, Program, Scan, Snd, Sum, Var)

__all__ = ["evaluate", "eval_expr", "show"]

_F = np.float64
_REAL_FNS = {name: p.interp for name, p in REAL_FNS.items()}


def show(e: Expr, limit: int = 100) -> str:
    """An expression as program text on one line (for error messages).

    >>> show(Get(Var("x"), Prim("+", (Var("i"), Int(2)))))
    '(get x (+ i 2))'
    """
    try:
        from .syntax import show_flat
        return show_flat(e, limit=limit)
    except Exception:  # pragma: no cover - printer unavailable
        r = repr(e)
        return r if len(r) <= limit else r[: limit - 3] + "..."


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _as_index(v: Any, e: Expr) -> int:
    if _is_int(v):
        return int(v)
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return int(v)
    raise EvalError(f"index {v!r} is not an integer in {show(e)}")


def _real(v: Any, e: Expr) -> np.float64:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise EvalError(f"expected a number, got {type(v).__name__} in {show(e)}")
    return _F(v)


def _size(v: Any, e: Expr) -> int:
    if _is_int(v):
        return int(v)
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return int(v)
    raise EvalError(f"size {v!r} is not an integer in {show(e)}")


def _elem(v: Any) -> Any:
    """Normalise an element read from an ndarray to the interpreter's scalar values."""
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


def _length(a: Any, e: Expr) -> int:
    if isinstance(a, np.ndarray):
        if a.ndim == 0:
            raise EvalError(f"length of a non-array in {show(e)}")
        return a.shape[0]
    if isinstance(a, list):
        return len(a)
    raise EvalError(f"length of a non-array ({type(a).__name__}) in {show(e)}")


def _prim(e: Prim, env: dict) -> Any:
    op, args = e.op, e.args
    if op == "and":
        a = eval_expr(args[0], env)
        return bool(a) and bool(eval_expr(args[1], env))
    if op == "or":
        a = eval_expr(args[0], env)
        return bool(a) or bool(eval_expr(args[1], env))
    vals = [eval_expr(a, env) for a in args]
    if op == "not":
        return not vals[0]
    if op in ARG_EXTREMES:
        a = vals[0]
        if not isinstance(a, (np.ndarray, list)):
            raise EvalError(f"{op} of a non-array in {show(e)}")
        return int(ARG_EXTREMES[op].interp(np.asarray(a, dtype=np.float64)))
    if op in _REAL_FNS:
        return _F(_REAL_FNS[op](*(_real(v, e) for v in vals)))
    if op == "real":
        return _real(vals[0], e)
    a, b = vals
    if op in ("+", "-", "*"):
        if _is_int(a) and _is_int(b):
            a, b = int(a), int(b)
            return a + b if op == "+" else a - b if op == "-" else a * b
        a, b = _real(a, e), _real(b, e)
        return a + b if op == "+" else a - b if op == "-" else a * b
    if op in INT_DIVISION:
        a, b = _as_index(a, e), _as_index(b, e)
        if b == 0:
            raise EvalError(f"integer division by zero in {show(e)}")
        return a // b if op == "div" else a % b
    if op == "/":
        return _real(a, e) / _real(b, e)
    if op == "pow":
        return np.power(_real(a, e), _real(b, e))
    if op in ("=", "<", ">", "<=", ">="):
        if isinstance(a, (bool, np.bool_)) or isinstance(b, (bool, np.bool_)):
            if op != "=":
                raise EvalError(f"cannot order booleans in {show(e)}")
            return bool(a) == bool(b)
        if not _is_int(a):
            a = _real(a, e)
        if not _is_int(b):
            b = _real(b, e)
        if op == "=":
            return bool(a == b)
        if op == "<":
            return bool(a < b)
        if op == ">":
            return bool(a > b)
        if op == "<=":
            return bool(a <= b)
        return bool(a >= b)
    raise EvalError(f"unknown operator {op!r} in {show(e)}")


def _add(a: Any, b: Any, e: Expr) -> Any:
    if _is_int(a) and _is_int(b):
        return int(a) + int(b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.add(a, b)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return tuple(_add(x, y, e) for x, y in zip(a, b))
    return _real(a, e) + _real(b, e)


def eval_expr(e: Expr, env: dict[str, Any]) -> Any:
    """Evaluate expression ``e`` with the free names bound in ``env``.

    Call :func:`evaluate` for whole programs: it also binds inputs, switches NumPy
    floating-point warnings off and guards against very deep expressions.

    >>> eval_expr(Prim("+", (Var("a"), Num(1.0))), {"a": 2.0})
    np.float64(3.0)
    """
    t = type(e)
    if t is Num:
        return _F(e.value)
    if t is Int:
        return int(e.value)
    if t is BoolLit:
        return bool(e.value)
    if t is Var:
        try:
            return env[e.name]
        except KeyError:
            raise EvalError(f"unbound variable '{e.name}'") from None
    if t is Prim:
        return _prim(e, env)
    if t is If:
        c = eval_expr(e.cond, env)
        if not isinstance(c, (bool, np.bool_)):
            raise EvalError(f"condition is not a bool ({type(c).__name__}) in {show(e)}")
        return eval_expr(e.then if c else e.else_, env)
    if t is Let:
        v = eval_expr(e.value, env)
        env2 = dict(env)
        env2[e.name] = v
        return eval_expr(e.body, env2)
    if t is Build:
        n = _size(eval_expr(e.size, env), e)
        check_alloc(max(n, 0), f"build of {n} elements")
        items = []
        env2 = dict(env)
        for k in range(n):
            env2[e.var] = k
            items.append(eval_expr(e.body, env2))
            if k == 0 and isinstance(items[0], np.ndarray):
                check_alloc((n,) + items[0].shape, f"build of {n} arrays of shape {items[0].shape}")
        return pack(items)
    if t is Sum:
        n = _size(eval_expr(e.size, env), e)
        total: Any = None
        env2 = dict(env)
        for k in range(n):
            env2[e.var] = k
            v = eval_expr(e.body, env2)
            total = v if total is None else _add(total, v, e)
        return _F(0.0) if total is None else total
    if t is IFold:
        acc = eval_expr(e.init, env)
        n = _size(eval_expr(e.size, env), e)
        env2 = dict(env)
        for k in range(n):
            env2[e.acc] = acc
            env2[e.var] = k
            acc = eval_expr(e.body, env2)
        return acc
    if t is Scan:
        acc = eval_expr(e.init, env)
        n = _size(eval_expr(e.size, env), e)
        check_alloc(max(n, 0) + 1, f"scan of {max(n, 0) + 1} states")
        states = [acc]
        env2 = dict(env)
        for k in range(n):
            env2[e.acc] = acc
            env2[e.var] = k
            acc = eval_expr(e.body, env2)
            states.append(acc)
        return pack(states)
    if t is Get:
        a = eval_expr(e.array, env)
        k = _as_index(eval_expr(e.index, env), e)
        n = _length(a, e)
        if not 0 <= k < n:
            raise EvalError(f"index {k} out of range for array of length {n} in {show(e)}")
        return _elem(a[k])
    if t is Length:
        return _length(eval_expr(e.array, env), e)
    if t is Pair:
        return (eval_expr(e.fst, env), eval_expr(e.snd, env))
    if t is Fst or t is Snd:
        p = eval_expr(e.pair, env)
        if not isinstance(p, tuple):
            raise EvalError(f"{'fst' if t is Fst else 'snd'} of a non-pair ({type(p).__name__}) in {show(e)}")
        return p[0] if t is Fst else p[1]
    raise EvalError(f"cannot evaluate {e!r}")


def evaluate(prog: Program, /, *args: Any, **inputs: Any) -> Any:   # any parameter name, even 'prog'
    """Run ``prog`` on inputs given positionally (parameter order) or by keyword.

    Returns ``float``/``int``/``bool`` for scalars, a NumPy array for an array (2-D for
    nested builds), a tuple for a pair and a pair of arrays for an array of pairs (see
    :func:`eqsat_ad.runtime.to_output`).  Raises :class:`~eqsat_ad.errors.ShapeError` for bad
    inputs and :class:`~eqsat_ad.errors.EvalError` for run-time errors such as an index out
    of range.

    >>> from eqsat_ad.lang.ast import Param, Build, Get, Var, Length, Prim, Int
    >>> from eqsat_ad.lang.types import vec
    >>> x = Var("x")
    >>> shift = Program((Param("x", vec("n")),), Build(Length(x), "i", Get(x, Prim("+", (Var("i"), Int(1))))))
    >>> evaluate(shift, [1.0, 2.0, 3.0])
    Traceback (most recent call last):
    ...
    eqsat_ad.errors.EvalError: index 3 out of range for array of length 3 in (get x (+ i 1))
    """
    env = bind_inputs(prog, args, inputs)
    old = sys.getrecursionlimit()
    if old < 100000:
        sys.setrecursionlimit(100000)
    try:
        with fp_ignore():
            v = eval_expr(prog.body, env)
    except RecursionError:
        raise EvalError("program too deep to interpret (nesting beyond the recursion limit)") from None
    finally:
        if old < 100000:
            sys.setrecursionlimit(old)
    return _own(to_output(v))


def _own(out: Any) -> Any:
    """``out`` with every array copied: a result never shares memory with an input (also
    inside pairs: ``(pair 1.0 x)``, ``(get M 0)``)."""
    if isinstance(out, np.ndarray):
        return np.array(out, copy=True)
    if isinstance(out, tuple):
        return tuple(_own(x) for x in out)
    if isinstance(out, list):
        return [_own(x) for x in out]
    return out

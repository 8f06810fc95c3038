"""The dual-number transformation D[[.]] (forward-mode AD by source transformation).

Dual types (type-directed; see ``docs/ad.md``)::

    D[real]          = (pair real real)          ; (primal, tangent)
    D[index], D[size], D[bool] = unchanged       ; no tangent (dF~ pairs them with 0: we do not)
    D[(array T n)]   = (array D[T] n)
    D[(pair A B)]    = (pair D[A] D[B])

Every variable whose type carries a tangent is renamed to a fresh dual name (``x`` becomes
``x_d``); index, size and bool variables keep their names.  The output is the faithful,
naive dual program: no ``fst``/``snd`` simplification, no fusion (the e-graph optimiser does
that).  Operands are let-bound only when a derivative rule uses them more than once and they
are not already cheap (a variable, a literal, ``get`` of those, ...), so the output has no
exponential blow-up and no gratuitous lets.

>>> from eqsat_ad.lang.ast import Var, Prim
>>> from eqsat_ad.lang.types import REAL
>>> de, t = dual_expr(Prim("sin", (Var("x"),)), {"x": REAL})
>>> de
Pair(fst=Prim(op='sin', args=(Fst(pair=Var(name='x_d')),)), snd=Prim(op='*', args=(Snd(pair=Var(name='x_d')), Prim(op='cos', args=(Fst(pair=Var(name='x_d')),)))))
"""
from __future__ import annotations

import re
from typing import Callable, Iterable, Mapping

from ..errors import ADError
from ..lang.ast import (Build, BoolLit, Expr, Fst, Get, If, IFold, Int, Length, Let, Num, Pair,
                        Prim, Scan, Snd, Sum, Var, COMPARISONS, LOGIC)
from ..lang.primitives import ARG_EXTREMES, PRIMITIVES, REAL_FNS
# the expression helpers (tiny constructors, so the rule tables read like math), declared once
from ..lang.primitives import ONE, TWO, ZERO, _add, _div, _mul, _neg, _p, _sub  # noqa: F401
from ..lang.binders import all_names, call_deep, free_vars
from ..lang.types import (BOOL, INDEX, REAL, SIZE, ArrayT, PairT, RealT, Type)

__all__ = ["dual_type", "has_tangent", "dual_expr", "Dualizer", "NameSupply", "JVP_UNARY",
           "JVP_BINARY", "DUAL_SUFFIX"]

DUAL_SUFFIX = "_d"          # x  ->  x_d   (the paper's x~)
_SUFFIX_RE = re.compile(r"^(.*?)_(\d+)$")



# --------------------------------------------------------------------------------------
# the derivative rules, one line each, declared with the primitives (lang/primitives.py):
# op -> tangent of op(p) (or op(p1, p2)) given the primal(s) p and tangent(s) d.  The
# primal is always op applied to the primal(s).
# --------------------------------------------------------------------------------------
JVP_UNARY: dict[str, Callable[[Expr, Expr], Expr]] = {
    name: p.jvp for name, p in PRIMITIVES.items() if p.arity == 1 and p.jvp is not None}
JVP_BINARY: dict[str, Callable[[Expr, Expr, Expr, Expr], Expr]] = {
    name: p.jvp for name, p in PRIMITIVES.items() if p.arity == 2 and p.jvp is not None}


def _jvp_pow_const(p: Expr, d: Expr, c: Expr) -> Expr:
    """Tangent of ``p ** c`` for an exponent c without tangent: ``c * p^(c-1) * d``, and 0
    where c = 0 (``p ** 0`` is the constant 1; ``0 * 0^-1`` would be NaN at p = 0, e.g. the
    i = 0 term of a polynomial ``sum_i c_i t^i`` at t = 0)."""
    if isinstance(c, Num):
        return ZERO if c.value == 0.0 else _mul(_mul(c, _p("pow", p, Num(c.value - 1.0))), d)
    return If(_p("=", c, ZERO), ZERO, _mul(_mul(c, _p("pow", p, _sub(c, ONE))), d))


# How often each rule mentions its primal / tangent arguments (decides let-binding).
def _uses(rule: Callable, n_args: int) -> list[int]:
    holes = [Var(f"\0{k}") for k in range(2 * n_args)]
    out = rule(*holes)
    counts = [0] * len(holes)
    stack = [out]
    while stack:
        e = stack.pop()
        if isinstance(e, Var) and e.name.startswith("\0"):
            counts[int(e.name[1:])] += 1
        stack.extend(e.children())
    for k in range(0, 2 * n_args, 2):   # the primal result op(p...) uses each primal once more
        counts[k] += 1
    return counts


_USES_UNARY = {op: _uses(r, 1) for op, r in JVP_UNARY.items()}
_USES_BINARY = {op: _uses(r, 2) for op, r in JVP_BINARY.items()}
_USES_POW_CONST = [2, 1]              # p: primal + tangent; d: once (c handled separately)


# --------------------------------------------------------------------------------------
# types
# --------------------------------------------------------------------------------------
def has_tangent(t: Type | None) -> bool:
    """Does a value of type ``t`` carry a tangent (is there a ``real`` inside)?

    >>> from eqsat_ad.lang.types import vec, INDEX
    >>> has_tangent(vec("n")), has_tangent(INDEX)
    (True, False)
    """
    if isinstance(t, RealT):
        return True
    if isinstance(t, ArrayT):
        return has_tangent(t.elem)
    if isinstance(t, PairT):
        return has_tangent(t.fst) or has_tangent(t.snd)
    return False


def dual_type(t: Type) -> Type:
    """D[t]: reals become (primal, tangent) pairs; index, size and bool are unchanged.

    >>> from eqsat_ad.lang.types import vec, show_type
    >>> show_type(dual_type(vec("n")))
    '(array (pair real real) n)'
    """
    if isinstance(t, RealT):
        return PairT(REAL, REAL)
    if isinstance(t, ArrayT):
        return ArrayT(dual_type(t.elem), t.size)
    if isinstance(t, PairT):
        return PairT(dual_type(t.fst), dual_type(t.snd))
    return t


def _size_of(e: Expr, env_types: Mapping[str, Type]):
    if isinstance(e, Int):
        return e.value
    if isinstance(e, Var) and env_types.get(e.name) == SIZE:
        return e.name
    return None


# --------------------------------------------------------------------------------------
# fresh names
# --------------------------------------------------------------------------------------
class NameSupply:
    """Fresh, readable names that avoid every name seen so far (``t``, ``t_1``, ...).

    >>> s = NameSupply({"x", "x_d"})
    >>> s.fresh("x_d"), s.fresh("x_d")
    ('x_d_1', 'x_d_2')
    """

    def __init__(self, avoid: Iterable[str] = ()):
        self.used: set[str] = set(avoid)
        self._next: dict[str, int] = {}      # stem -> first suffix worth trying (O(1) amortised)

    def fresh(self, base: str) -> str:
        if base and base not in self.used:
            self.used.add(base)
            return base
        # keep a trailing _d (x_d -> x_d_1, not x_1) so dual names stay recognisable;
        # otherwise follow binders.fresh: i -> i_1, i_4 -> i_1, ...
        stem = base
        if not base.endswith(DUAL_SUFFIX):
            m = _SUFFIX_RE.match(base)
            stem = m.group(1) if m and m.group(1) else (base or "v")
        k = self._next.get(stem, 1)
        while f"{stem}_{k}" in self.used:
            k += 1
        self._next[stem] = k + 1
        name = f"{stem}_{k}"
        self.used.add(name)
        return name

    def avoid(self, names: Iterable[str]) -> None:
        self.used.update(names)


# --------------------------------------------------------------------------------------
# the transformation
# --------------------------------------------------------------------------------------
def _cheap(e: Expr) -> bool:
    """Cheap to duplicate: variables, literals and projections/indexing/length of those."""
    while True:
        if isinstance(e, (Var, Num, Int, BoolLit)):
            return True
        if isinstance(e, (Fst, Snd)):
            e = e.pair
        elif isinstance(e, Length):
            e = e.array
        elif isinstance(e, Get):
            return _cheap(e.index) and _cheap(e.array)
        elif isinstance(e, Prim) and e.op == "real":
            e = e.args[0]
        else:
            return False


def _literal_dual(value: float) -> Pair:
    return Pair(Num(float(value)), ZERO)


class Dualizer:
    """D[[.]] with an environment ``name -> (primal type, name of the value in the output)``.

    ``expr(e, env)`` returns ``(D[[e]], type of e)``.  It is syntax-directed and computes
    the primal types itself (the input should be type-checked; Int literals and index
    expressions met in real context are lifted as the elaborator would do).
    """

    def __init__(self, names: NameSupply):
        self.names = names

    # -- helpers ---------------------------------------------------------------------
    def dual_name(self, x: str) -> str:
        return self.names.fresh(x + DUAL_SUFFIX)

    def lift(self, de: Expr, t: Type) -> Expr:
        """A non-real numeric dual (index/size expression, Int literal) used as a real."""
        if isinstance(de, Int):
            return _literal_dual(de.value)
        return Pair(_p("real", de), ZERO)

    def split(self, de: Expr, uses_p: int, uses_d: int, binds: list) -> tuple[Expr, Expr]:
        """Primal and tangent parts of a real dual ``de``, let-binding what is used twice."""
        if isinstance(de, Pair):
            p, d = de.fst, de.snd
            if uses_p > 1 and not _cheap(p):
                name = self.names.fresh("p")
                binds.append((name, p))
                p = Var(name)
            if uses_d > 1 and not _cheap(d):
                name = self.names.fresh("dp")
                binds.append((name, d))
                d = Var(name)
            return p, d
        if not _cheap(de):
            name = self.names.fresh("t")
            binds.append((name, de))
            de = Var(name)
        return Fst(de), Snd(de)

    @staticmethod
    def primal_part(de: Expr) -> Expr:
        return de.fst if isinstance(de, Pair) else Fst(de)

    @staticmethod
    def wrap(binds: list, body: Expr) -> Expr:
        for name, value in reversed(binds):
            body = Let(name, value, body)
        return body

    # -- the rules -------------------------------------------------------------------
    def expr(self, e: Expr, env: Mapping[str, tuple[Type, str]]) -> tuple[Expr, Type]:
        if isinstance(e, Num):
            return _literal_dual(e.value), REAL
        if isinstance(e, Int):
            return e, INDEX
        if isinstance(e, BoolLit):
            return e, BOOL
        if isinstance(e, Var):
            try:
                t, name = env[e.name]
            except KeyError:
                raise ADError(f"unbound variable {e.name!r} in the program to differentiate") from None
            return (e if name == e.name else Var(name)), t
        if isinstance(e, Prim):
            return self.prim(e, env)
        if isinstance(e, If):
            c, _ = self.expr(e.cond, env)
            a, ta = self.expr(e.then, env)
            b, tb = self.expr(e.else_, env)
            if isinstance(ta, RealT) != isinstance(tb, RealT):   # unelaborated int/real branches
                a = a if isinstance(ta, RealT) else self.lift(a, ta)
                b = b if isinstance(tb, RealT) else self.lift(b, tb)
                ta = REAL
            return If(c, a, b), ta
        if isinstance(e, Let):
            v, tv = self.expr(e.value, env)
            name = self.dual_name(e.name) if has_tangent(tv) else e.name
            body, tb = self.expr(e.body, {**env, e.name: (tv, name)})
            return Let(name, v, body), tb
        if isinstance(e, Build):
            n, _ = self.expr(e.size, env)
            body, tb = self.expr(e.body, {**env, e.var: (INDEX, e.var)})
            sizes = {k: t for k, (t, _) in env.items()}
            return Build(n, e.var, body), ArrayT(tb, _size_of(e.size, sizes))
        if isinstance(e, Sum):
            return self.sum(e, env)
        if isinstance(e, (IFold, Scan)):
            # a scan's states are the fold's: the dual of every state, (array D[T] ?)
            init, tz = self.expr(e.init, env)
            n, _ = self.expr(e.size, env)
            acc = self.dual_name(e.acc) if has_tangent(tz) else e.acc
            body, tb = self.expr(e.body, {**env, e.acc: (tz, acc), e.var: (INDEX, e.var)})
            if isinstance(tz, RealT) != isinstance(tb, RealT):
                raise ADError(f"{'scan' if isinstance(e, Scan) else 'ifold'}: accumulator and body "
                              "have different types; elaborate the program first")
            if isinstance(e, Scan):
                return Scan(acc, e.var, body, init, n), ArrayT(tz, None)
            return IFold(acc, e.var, body, init, n), tz
        if isinstance(e, Get):
            a, ta = self.expr(e.array, env)
            i, _ = self.expr(e.index, env)
            if not isinstance(ta, ArrayT):
                raise ADError(f"get of a non-array ({ta})")
            return Get(a, i), ta.elem
        if isinstance(e, Length):
            a, _ = self.expr(e.array, env)
            return Length(a), SIZE
        if isinstance(e, Pair):
            a, ta = self.expr(e.fst, env)
            b, tb = self.expr(e.snd, env)
            return Pair(a, b), PairT(ta, tb)
        if isinstance(e, (Fst, Snd)):
            p, tp = self.expr(e.pair, env)
            if not isinstance(tp, PairT):
                raise ADError(f"fst/snd of a non-pair ({tp})")
            return (Fst(p), tp.fst) if isinstance(e, Fst) else (Snd(p), tp.snd)
        raise ADError(f"cannot differentiate {type(e).__name__} nodes")

    def sum(self, e: Sum, env) -> tuple[Expr, Type]:
        n, _ = self.expr(e.size, env)
        body, tb = self.expr(e.body, {**env, e.var: (INDEX, e.var)})
        if not has_tangent(tb):
            return Sum(n, e.var, body), tb
        if not isinstance(tb, RealT):
            raise ADError("sum over non-scalar values cannot be differentiated")
        # D[sum n (λi. e)] = (sum n (λi. fst D[e]), sum n (λi. snd D[e])).  The two sums are
        # siblings over the same extent and may share the binder name (as in dF~); when D[e]
        # is not a literal pair it appears twice, identically, and an e-graph shares it.
        if isinstance(body, Pair):
            return Pair(Sum(n, e.var, body.fst), Sum(n, e.var, body.snd)), REAL
        return Pair(Sum(n, e.var, Fst(body)), Sum(n, e.var, Snd(body))), REAL

    def prim(self, e: Prim, env) -> tuple[Expr, Type]:
        op = e.op
        duals = [self.expr(a, env) for a in e.args]
        if op in ARG_EXTREMES:
            # an index: no tangent; the position of the extreme of the primal vector
            (d, t), = duals
            if has_tangent(t):
                k = self.names.fresh("k")
                d = Build(Length(d), k, Fst(Get(d, Var(k))))
            return Prim(op, (d,)), INDEX
        if op in COMPARISONS or op in LOGIC:
            args = [self.primal_part(d) if isinstance(t, RealT) else d for d, t in duals]
            return Prim(op, tuple(args)), BOOL
        if op == "real":
            (d, t), = duals
            return self.lift(d, t), REAL
        if not any(isinstance(t, RealT) for _, t in duals):
            # index / size arithmetic: no tangent
            ts = [t for _, t in duals]
            t = INDEX if INDEX in ts else (ts[0] if ts else INDEX)
            if op in REAL_FNS and op != "neg":
                # a real function applied to an integer (unelaborated): lift it
                duals = [(self.lift(d, t), REAL) for d, t in duals]
            else:
                return Prim(op, tuple(d for d, _ in duals)), t
        duals = [(d if isinstance(t, RealT) else self.lift(d, t)) for d, t in duals]
        binds: list = []
        if op in JVP_UNARY:
            (d0,) = duals
            up, ud = _USES_UNARY[op]
            p, d = self.split(d0, up, ud, binds)
            return self.wrap(binds, Pair(_p(op, p), JVP_UNARY[op](p, d))), REAL
        if op == "pow" and self.constant_exponent(e.args[1], env):
            p, d = self.split(duals[0], *_USES_POW_CONST, binds)
            c = self.primal_part(duals[1])
            if not _cheap(c):
                name = self.names.fresh("c")
                binds.append((name, c))
                c = Var(name)
            return self.wrap(binds, Pair(_p("pow", p, c), _jvp_pow_const(p, d, c))), REAL
        if op in JVP_BINARY:
            u1p, u1d, u2p, u2d = _USES_BINARY[op]
            p1, d1 = self.split(duals[0], u1p, u1d, binds)
            p2, d2 = self.split(duals[1], u2p, u2d, binds)
            return self.wrap(binds, Pair(_p(op, p1, p2), JVP_BINARY[op](p1, d1, p2, d2))), REAL
        raise ADError(f"no derivative rule for primitive {op!r}")

    @staticmethod
    def constant_exponent(e: Expr, env) -> bool:
        """An exponent whose free variables carry no tangent (a literal, an index, ...)."""
        return all(not has_tangent(env[v][0]) for v in free_vars(e) if v in env)


def dual_expr(e: Expr, types: Mapping[str, Type], names: NameSupply | None = None,
              rename: Mapping[str, str] | None = None) -> tuple[Expr, Type]:
    """D[[e]] for an expression whose free variables have the given primal ``types``.

    Free variables with a tangent are referred to by their dual names: ``rename[x]`` if
    given, else a fresh ``x_d``.  Returns ``(D[[e]], primal type of e)``.

    >>> from eqsat_ad.lang.ast import Var, Prim
    >>> dual_expr(Prim("+", (Var("x"), Var("y"))), {"x": REAL, "y": REAL})[0]
    Pair(fst=Prim(op='+', args=(Fst(pair=Var(name='x_d')), Fst(pair=Var(name='y_d')))), snd=Prim(op='+', args=(Snd(pair=Var(name='x_d')), Snd(pair=Var(name='y_d')))))
    """
    if names is None:
        names = NameSupply(all_names(e) | set(types))
    rename = dict(rename or {})
    env = {}
    for x, t in types.items():
        if x not in rename:
            rename[x] = names.fresh(x + DUAL_SUFFIX) if has_tangent(t) else x
        env[x] = (t, rename[x])
    names.avoid(rename.values())
    return call_deep(Dualizer(names).expr, e, env, what="program")

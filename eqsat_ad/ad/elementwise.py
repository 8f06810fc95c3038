"""Reverse mode over a let chain of element-wise builds and reductions whose reductions feed
back (issue 11: the 60-node chain).

``let u = build n (λi. tanh (w_i v_i + s)); s' = mean (u * u); v' = u / sqrt (s' + 1); ...``:
every reduction of a vector that depends on ``x`` feeds the next layer.  A dual-number
gradient carries, per input direction ``j``, a one-hot tangent plus a dense tangent times
``∂s/∂x_j`` through every layer; after K layers the optimiser would have to factor a rank-one
term out of K nested sums, which it does not do within its limits (the gradient stays
O(n²)).  Here the chain is differentiated backwards, binding by binding, the classic way:
with ``c̄`` the cotangent of a binding,

* a vector binding ``b = build n (λi. e)``: ``v̄ += build n (λi. b̄_i ∂e/∂v_i)`` for every
  vector ``v`` read as ``v_i``, and ``s̄ += Σ_i b̄_i ∂e/∂s`` for every real ``s`` it reads;
* a real binding (or the result) ``r = E(s..., Σ_i e_k)``: ``s̄ += r̄ ∂E/∂s`` and
  ``v̄ += build n (λi. r̄ ∂E/∂σ_k ∂e_k/∂v_i)``,

each partial derivative the tangent of one primitive's rule (``lang.primitives``' ``jvp``)
with a single seed.  The result is a let chain of element-wise builds and sums: O(n) per
binding, a constant times the function.

It applies only to such chains (every vector read is ``(get v i)`` at the loop's own index,
every loop over the size of ``wrt``, no folds, no matrices) and, in ``grad``'s ``auto`` mode,
only where a reduction of a vector that depends on ``wrt`` depends on an earlier such
reduction (:func:`feedback_depth` >= 2): one level of feedback (a vector normalised by its
norm, layer normalisation) is what the rewrite rules already make O(n), and those programs
keep their forward-mode gradient.

>>> import numpy as np, eqsat_ad as ea
>>> from eqsat_ad.ad.api import prepare
>>> p = ea.parse('''(fun ((x (vec n)))
...   (let ((s1 (sum n (lambda (i) (* (get x i) (get x i)))))
...         (u (build n (lambda (i) (tanh (* s1 (get x i))))))
...         (s2 (sum n (lambda (i) (* (get u i) (get u i))))))
...     (* s2 s1)))''')
>>> feedback_depth(prepare(p), "x")
2
>>> g = grad_elementwise(prepare(p), "x")
>>> x = np.array([0.3, -0.2, 0.5])
>>> f = lambda x: (lambda s1: np.sum(np.tanh(s1 * x) ** 2) * s1)(x @ x)
>>> fd = np.array([(f(x + 1e-6 * e) - f(x - 1e-6 * e)) / 2e-6 for e in np.eye(3)])
>>> bool(np.allclose(ea.evaluate(g, x=x), fd, rtol=1e-6))
True
"""
from __future__ import annotations

from collections.abc import Callable

from ..lang.ast import (BoolLit, Build, Expr, Fst, Get, If, IFold, Int, Length, Let, Num, Pair, Prim,
                        Program, Scan, Snd, Sum, Var, iter_nodes)
from ..lang.binders import all_names, free_vars, fresh, subst_all
from ..lang.primitives import ONE, PRIMITIVES, ZERO
from .dual import _jvp_pow_const
from ..lang.types import ArrayT, RealT

__all__ = ["feedback_depth", "grad_elementwise"]

_ZERO, _ONE = ZERO, ONE


# -- expressions with the zeros and ones folded (the partials are mostly 0 or 1) ---------------
def _is(e: Expr, v: float) -> bool:
    return isinstance(e, Num) and e.value == v


def _add(a: Expr, b: Expr) -> Expr:
    return b if _is(a, 0.0) else a if _is(b, 0.0) else Prim("+", (a, b))


def _mul(a: Expr, b: Expr) -> Expr:
    if _is(a, 0.0) or _is(b, 0.0):
        return _ZERO
    return b if _is(a, 1.0) else a if _is(b, 1.0) else Prim("*", (a, b))


def _total(terms: list[Expr]) -> Expr:
    out: Expr = _ZERO
    for t in terms:
        out = _add(out, t)
    return out


def _tangent(e: Expr, seed: Callable[[Expr], Expr | None]) -> Expr:
    """The tangent of a real expression ``e`` with ``seed(x)`` the tangent of a leaf (a
    variable or a vector read), 0 elsewhere; each primitive by its ``jvp`` rule."""
    s = seed(e)
    if s is not None:
        return s
    if isinstance(e, (Num, Int, BoolLit, Var, Get)):      # a constant, another vector's read
        return _ZERO
    if isinstance(e, If):
        a, b = _tangent(e.then, seed), _tangent(e.else_, seed)
        return _ZERO if _is(a, 0.0) and _is(b, 0.0) else If(e.cond, a, b)
    if isinstance(e, Prim):
        row = PRIMITIVES[e.op]
        if row.jvp is None:                   # comparisons, casts: no tangent
            return _ZERO
        ds = [_tangent(a, seed) for a in e.args]
        if all(_is(d, 0.0) for d in ds):
            return _ZERO
        if e.op == "pow" and _is(ds[1], 0.0):        # a constant exponent: c p^(c-1) d, 0 for c = 0
            return _jvp_pow_const(e.args[0], ds[0], e.args[1])
        if e.op == "*":
            return _add(_mul(ds[0], e.args[1]), _mul(e.args[0], ds[1]))
        if e.op == "/" and _is(ds[1], 0.0):
            return Prim("/", (ds[0], e.args[1]))
        if e.op in ("+", "-") and any(_is(d, 0.0) for d in ds):
            if _is(ds[1], 0.0):
                return ds[0]
            return ds[1] if e.op == "+" else Prim("neg", (ds[1],))
        args = [x for p, d in zip(e.args, ds) for x in (p, d)]
        return row.jvp(*args)
    raise _NotElementwise(f"no tangent for {type(e).__name__}")


class _NotElementwise(Exception):
    pass


# -- the chain ------------------------------------------------------------------------------------
class _Chain:
    """The program's let chain, checked: vector bindings are builds over ``n`` whose bodies
    read vectors only at their own index; real bindings and the result are real expressions
    of reals and such sums."""

    def __init__(self, prog: Program, wrt: str):
        t = {p.name: p.type for p in prog.params}[wrt]
        if not (isinstance(t, ArrayT) and isinstance(t.elem, RealT) and isinstance(t.size, str)):
            raise _NotElementwise("wrt is not a vector of reals with a size name")
        self.n = t.size
        self.vectors = {p.name for p in prog.params
                        if isinstance(p.type, ArrayT) and p.type.size == self.n and isinstance(p.type.elem, RealT)}
        self.reals = {p.name for p in prog.params if isinstance(p.type, RealT)}
        self.binds: list[tuple[str, Expr]] = []
        e = prog.body
        seen = {p.name for p in prog.params}
        while isinstance(e, Let):
            if e.name in seen:
                raise _NotElementwise("a let shadows a name")
            seen.add(e.name)
            if isinstance(e.value, Build):
                self._loop_body(e.value)
                self.vectors.add(e.name)
            else:
                self._real(e.value)
                self.reals.add(e.name)
            self.binds.append((e.name, e.value))
            e = e.body
        self._real(e)
        self.core = e

    def _loop_body(self, loop: Expr) -> None:
        if loop.size != Var(self.n):
            raise _NotElementwise("a loop over another extent")
        i = loop.var
        for x in iter_nodes(loop.body):
            if isinstance(x, (Build, Sum, Let, IFold, Scan, Pair, Fst, Snd, Length)):
                raise _NotElementwise(f"a {type(x).__name__} in a loop body")
            if isinstance(x, Get):
                if not (isinstance(x.array, Var) and x.array.name in self.vectors and x.index == Var(i)):
                    raise _NotElementwise("a read that is not (get v i)")
            elif isinstance(x, Var) and x.name != i and x.name not in self.reals and x.name not in self.vectors \
                    and x.name != self.n:
                raise _NotElementwise(f"{x.name} is not a real or a vector of the chain")

    def _real(self, e: Expr) -> None:
        stack = [e]
        while stack:
            x = stack.pop()
            if isinstance(x, Sum):
                self._loop_body(x)
                continue
            if isinstance(x, Var):
                if x.name not in self.reals and x.name != self.n:
                    raise _NotElementwise(f"{x.name} is not a real")
                continue
            if not isinstance(x, (Prim, If, Num, Int, BoolLit)):
                raise _NotElementwise(f"a {type(x).__name__} in a real binding")
            stack.extend(x.children())

    def depends(self, wrt: str) -> set[str]:
        dep = {wrt}
        for name, val in self.binds:
            if free_vars(val) & dep:
                dep.add(name)
        return dep


def feedback_depth(prog: Program, wrt: str) -> int:
    """How many reductions of ``wrt``-dependent vectors are chained (a reduction reads a
    vector computed from an earlier one): 0 when the program is not such a chain."""
    try:
        ch = _Chain(prog, wrt)
    except _NotElementwise:
        return 0
    dep = ch.depends(wrt)
    depth = {wrt: 0}
    best = 0
    for name, val in ch.binds:
        if name not in dep:
            continue
        reads = [v for v in free_vars(val) if v in depth]
        if isinstance(val, Build):
            depth[name] = max(depth[v] for v in reads)
        else:
            sums = [x for x in iter_nodes(val) if isinstance(x, Sum)]
            through = [depth[v] + 1 for s in sums for v in free_vars(s.body) if v in depth and v in ch.vectors]
            depth[name] = max([depth[v] for v in reads] + through)
            best = max(best, depth[name])
    return best


def grad_elementwise(prog: Program, wrt: str) -> Program | None:
    """The gradient of ``prog`` (prepared, real-valued) w.r.t. the vector ``wrt`` by reverse
    mode over its let chain, or None where the program is not such a chain."""
    try:
        return _grad(prog, wrt)
    except _NotElementwise:
        return None


def _grad(prog: Program, wrt: str) -> Program:
    ch = _Chain(prog, wrt)
    used = set(all_names(prog.body)) | {p.name for p in prog.params} | {ch.n}

    def name(base: str) -> str:
        nm = fresh(base, used)
        used.add(nm)
        return nm

    n = Var(ch.n)
    dep = ch.depends(wrt)
    vec_terms: dict[str, list] = {}        # vector -> [(index name, per-element contribution)]
    real_terms: dict[str, list[Expr]] = {}
    out_lets: list[tuple[str, Expr]] = []

    def leaf_seed(target: Expr):
        return lambda x: _ONE if x == target else None

    def contribute_loop(body: Expr, i: str, cot_i: Expr) -> None:
        """Σ_i cot_i * e_i, for the loop body e over i: to the vectors read (v_i) and the
        reals read."""
        for v in sorted(x for x in free_vars(body) if x in ch.vectors and x in dep):
            d = _tangent(body, leaf_seed(Get(Var(v), Var(i))))
            if not _is(d, 0.0):
                vec_terms.setdefault(v, []).append((i, _mul(cot_i, d)))
        for s in sorted(x for x in free_vars(body) if x in ch.reals and x in dep):
            d = _tangent(body, leaf_seed(Var(s)))
            if not _is(d, 0.0):
                real_terms.setdefault(s, []).append(Sum(n, i, _mul(cot_i, d)))

    def contribute_real(e: Expr, cot: Expr) -> None:
        # the sums of e are leaves (atoms) of E; E's partials w.r.t. its reals and its sums
        sums = [x for x in iter_nodes(e) if isinstance(x, Sum) and free_vars(x) & dep]
        for s in sorted(x for x in free_vars(e) if x in ch.reals and x in dep):
            d = _tangent(e, lambda x, s=s: _ONE if x == Var(s) else (_ZERO if isinstance(x, Sum) else None))
            if not _is(d, 0.0):
                real_terms.setdefault(s, []).append(_mul(cot, d))
        for k, sm in enumerate(dict.fromkeys(sums)):
            d = _tangent(e, lambda x, sm=sm: _ONE if x == sm else (_ZERO if isinstance(x, Sum) else None))
            if _is(d, 0.0):
                continue
            c = name("sb")
            out_lets.append((c, _mul(cot, d)))
            contribute_loop(sm.body, sm.var, Var(c))

    contribute_real(ch.core, _ONE)
    for b, val in reversed(ch.binds):
        if b not in dep:
            continue
        if isinstance(val, Build):
            terms = vec_terms.pop(b, [])
            if not terms:
                continue
            if len(terms) == 1 and isinstance(terms[0][1], Get) and terms[0][1].index == Var(terms[0][0]) \
                    and isinstance(terms[0][1].array, Var):
                bb = terms[0][1].array.name         # b̄ is another cotangent as it is: no copy
            else:
                bb, i = name(b + "_bar"), name("i")
                out_lets.append((bb, Build(n, i, _total([_rename_index(t, j, i) for j, t in terms]))))
            k = name("i")
            contribute_loop(_rename_index(val.body, val.var, k), k, Get(Var(bb), Var(k)))
        else:
            terms = real_terms.pop(b, [])
            if not terms:
                continue
            bb = name(b + "_bar")
            out_lets.append((bb, _total(terms)))
            contribute_real(val, Var(bb))
    i = name("i")
    grad = Build(n, i, _total([_rename_index(t, j, i) for j, t in vec_terms.get(wrt, [])]))
    body: Expr = grad
    for nm, val in reversed(ch.binds + out_lets):
        body = Let(nm, val, body)
    return Program(prog.params, body)


def _rename_index(e: Expr, old: str, new: str) -> Expr:
    """``e`` with the loop index ``old`` read as ``new`` (loop bodies have no binders)."""
    if old == new:
        return e
    return subst_all(e, {old: Var(new)})

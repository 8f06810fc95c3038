"""Reverse mode over loop nests: the gradient of a program of ``build``/``sum``/``let`` at a
constant times the cost of the program, however many parameters (issue 12: GradBench's gmm).

Forward mode runs one tangent per input direction; one-hot folding in the e-graph removes that
factor only where it can see through every read of the parameter.  A gather at a computed
index (a packed triangle's ``c d - c (c+1)/2 + r - c - 1``, a row picked by ``argmax``) or a
parameter read deep inside nested products and sums of several layers is where it does not,
and the gradient stays (parameters) x (function).  Here the program is differentiated
backwards instead, the way array compilers do it (Futhark's and Dex's reverse mode, JAX's
``vmap``-ed transposition), in two steps:

1. **Flatten** (:class:`_Flatten`): every ``let``, ``build`` and ``sum`` becomes a top-level
   *statement* ``s[l1]..[lp] = Σ_r body`` -- a loop nest over the loops it depends on (a
   ``let`` inside ``sum n (λi. ..)`` is stored for every ``i`` it reads, and computed once if
   it reads none: loop-invariant code motion), at most one reduction, and a scalar body of
   primitives, conditionals and reads ``(get .. (get X e1) .. eq)`` of earlier statements and
   parameters.  Index-valued lets (an ``argmax``) are inlined.

2. **Transpose** (:func:`_adjoints`), statements last first: with ``s̄`` the cotangent of a
   statement (1 for the result), every read ``X[e1..eq]`` in its body with partial
   derivative ``∂`` (the primitives' ``jvp`` rules with one seed: :func:`_tangent`) adds

       X̄[p1..pq] += Σ_{the statement's other loops} [e_k = p_k for the computed e_k] s̄ ∂

   where a read at the statement's own loop index (``e_k`` a loop variable) is collapsed --
   the loop variable *is* ``p_k`` -- and only a computed index (the packed triangle, the
   ``argmax``) keeps a test.  Each contribution is a loop nest over the statement's own
   iteration space, so the adjoint of a statement costs a constant times the statement
   (times the extent of a computed index's axis, for the tests).  ``X̄`` is bound once, as
   the sum of its contributions, before the statements that read it are transposed.

The result is an ordinary :class:`Program` (the primal statements, the adjoints, the
gradients) that the e-graph optimises and the cost model prices.  It applies to programs of
``let``, ``build``, ``sum``, ``get``, ``if`` and primitives over reals and arrays of reals of
any rank, with loop extents that do not depend on an enclosing loop; a program with a fold,
a pair or an array-valued ``if`` is left to :func:`eqsat_ad.ad.api.grad`'s other modes
(:func:`grad_loopnest` returns None).

>>> import numpy as np, eqsat_ad as ea
>>> p = ea.parse('''(fun ((W (mat h d)) (x (mat n d)))
...   (sum n (lambda (i) (let ((z (build h (lambda (j) (tanh (sum d (lambda (c)
...                                  (* (get (get W j) c) (get (get x i) c)))))))))
...     (get z (argmax z))))))''')
>>> g = grad_loopnest(p, "W")
>>> rng = np.random.default_rng(0); W, x = rng.normal(size=(3, 2)), rng.normal(size=(5, 2))
>>> f = lambda W: np.tanh(x @ W.T).max(axis=1).sum()
>>> fd = np.array([[(f(W + 1e-6 * E) - f(W - 1e-6 * E)) / 2e-6 for E in row] for row in np.eye(6).reshape(3, 2, 3, 2)])
>>> bool(np.allclose(ea.evaluate(g, W=W, x=x), fd, atol=1e-6))
True
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..lang.ast import (BoolLit, Build, Expr, Fst, Get, If, IFold, Int, Length, Let, Num, Pair, Prim, Program,
                        Scan, Snd, Sum, Var, iter_nodes)
from ..lang.binders import all_names, free_vars, subst_all
from ..lang.primitives import ARG_EXTREMES, ONE, PRIMITIVES, ZERO
from ..lang.types import INDEX, ArrayT, PairT, RealT, Type, size_names
from .dual import NameSupply
from .elementwise import _NotElementwise, _add, _is, _mul, _tangent

__all__ = ["grad_loopnest"]


class _Unsupported(Exception):
    """A form this reverse mode does not handle (the caller falls back)."""


@dataclass
class _Stmt:
    """``name[l1]..[lp] = Σ_{red} body`` (no ``red``: the body itself); ``loops`` are
    ``(variable, extent)`` pairs, outermost first."""
    name: str
    loops: list[tuple[str, Expr]]
    red: tuple[str, Expr] | None
    body: Expr

    def value(self) -> Expr:
        return _builds(self.loops, self.body if self.red is None else Sum(self.red[1], self.red[0], self.body))

    def ref(self) -> Expr:
        return _read(Var(self.name), [Var(v) for v, _ in self.loops])


def _read(base: Expr, idx: Sequence[Expr]) -> Expr:
    for i in idx:
        base = Get(base, i)
    return base


def _get_chain(e: Expr) -> tuple[Expr, list[Expr]]:
    """``e`` as ``_read(base, idx)``: the array read and its indices, outermost first."""
    idx = []
    while isinstance(e, Get):
        idx.append(e.index)
        e = e.array
    return e, idx[::-1]


def _builds(axes: Sequence[tuple[str, Expr]], body: Expr) -> Expr:
    """``body`` built over ``axes`` (``(variable, extent)``, outermost first)."""
    for v, n in reversed(axes):
        body = Build(n, v, body)
    return body


def _size_expr(s) -> Expr:
    if isinstance(s, int):
        return Int(s)
    if isinstance(s, str):
        return Var(s)
    raise _Unsupported(f"an array whose size is {s!r}")


# -- 1. flatten ------------------------------------------------------------------------------
class _Flatten:
    """The program as a list of statements (see the module docstring) and its result."""

    def __init__(self, prog: Program, names: NameSupply):
        from ..lang.typecheck import program_env
        self.names = names
        self.stmts: list[_Stmt] = []
        self.tenv = program_env(prog)          # types of the original names in scope
        out = self.scalar(prog.body, [], {}, self.tenv)
        self.out = self.emit(names.fresh("out"), [], None, out, force=True)

    def emit(self, name: str, loops: list, red, body: Expr, force: bool = False, dims: Sequence = ()) -> Expr:
        """A statement over the enclosing ``loops`` its body reads, then ``dims`` (an array's
        own axes), reduced over ``red``; returned as its read at those enclosing loops."""
        fv = free_vars(body)
        used = [(v, n) for v, n in loops if v in fv]
        if not force and red is None and not used and not dims and isinstance(body, (Num, Var)):
            return body
        self.stmts.append(_Stmt(name, used + list(dims), red, body))
        return _read(Var(name), [Var(v) for v, _ in used])

    def _extent(self, n: Expr, loops: list, sub: dict, tenv: dict) -> Expr:
        if isinstance(n, Length):               # a row's length: the array type's size (rectangular)
            t = self._type(n.array, tenv)
            if isinstance(t, ArrayT) and isinstance(t.size, (int, str)):
                return _size_expr(t.size)
        ext = self.scalar(n, loops, sub, tenv)
        if free_vars(ext) & {v for v, _ in loops}:
            raise _Unsupported("a loop whose extent depends on an enclosing loop")
        return ext

    def _type(self, e: Expr, tenv: dict) -> Type:
        from ..lang.typecheck import type_of
        return type_of(e, tenv)

    def scalar(self, e: Expr, loops: list, sub: dict, tenv: dict) -> Expr:
        """``e`` (a real, index or bool) inside ``loops``, as a statement body."""
        t = type(e)
        if t in (Num, Int, BoolLit):
            return e
        if t is Var:
            return sub.get(e.name, e)
        if t is Prim:                           # (argmax/argmin take a vector; the rest scalars)
            arg = self.array if e.op in ARG_EXTREMES else self.scalar
            return Prim(e.op, tuple(arg(a, loops, sub, tenv) for a in e.args))
        if t is If:
            return If(*(self.scalar(x, loops, sub, tenv) for x in (e.cond, e.then, e.else_)))
        if t is Get:
            return Get(self.array(e.array, loops, sub, tenv), self.scalar(e.index, loops, sub, tenv))
        if t is Length:
            return Length(self.array(e.array, loops, sub, tenv))
        if t is Let:
            sub, tenv = self.let(e, loops, sub, tenv)
            return self.scalar(e.body, loops, sub, tenv)
        if t is Sum:
            if not isinstance(self._type(e, tenv), RealT):
                raise _Unsupported("a sum of arrays")
            n = self._extent(e.size, loops, sub, tenv)
            r = self.names.fresh(e.var)
            body = self.scalar(e.body, loops + [(r, n)], {**sub, e.var: Var(r)}, {**tenv, e.var: INDEX})
            return self.emit(self.names.fresh("s"), loops, (r, n), body)
        raise _Unsupported(f"a {t.__name__}")

    def let(self, e: Let, loops: list, sub: dict, tenv: dict) -> tuple[dict, dict]:
        vt = self._type(e.value, tenv)
        if isinstance(vt, ArrayT):
            val = self.array(e.value, loops, sub, tenv)
        elif isinstance(vt, RealT):
            body = self.scalar(e.value, loops, sub, tenv)
            val = body if _is_read(body) else self.emit(self.names.fresh(e.name), loops, None, body)
        elif isinstance(vt, PairT):
            raise _Unsupported("a pair")
        else:                                   # an index or a bool: inlined where it is read
            val = self.scalar(e.value, loops, sub, tenv)
        return {**sub, e.name: val}, {**tenv, e.name: vt}

    def array(self, e: Expr, loops: list, sub: dict, tenv: dict) -> Expr:
        """A read of the array ``e`` (a parameter's or a statement's, maybe indexed)."""
        t = type(e)
        if t is Var:
            return sub.get(e.name, e)
        if t is Get:
            return Get(self.array(e.array, loops, sub, tenv), self.scalar(e.index, loops, sub, tenv))
        if t is Let:
            sub, tenv = self.let(e, loops, sub, tenv)
            return self.array(e.body, loops, sub, tenv)
        if t is Build:
            dims: list[tuple[str, Expr]] = []
            while isinstance(e, Build):
                n = self._extent(e.size, loops + dims, sub, tenv)
                r = self.names.fresh(e.var)
                dims.append((r, n))
                sub, tenv = {**sub, e.var: Var(r)}, {**tenv, e.var: INDEX}
                e = e.body
            et = self._type(e, tenv)
            if isinstance(et, ArrayT):          # build n (λi. <an array>): read it element-wise
                base = self.array(e, loops + dims, sub, tenv)
                while isinstance(et, ArrayT):
                    r = self.names.fresh("p")
                    dims.append((r, _size_expr(et.size)))
                    base, et = Get(base, Var(r)), et.elem
                body = base
            else:
                body = self.scalar(e, loops + dims, sub, tenv)
            if not isinstance(et, RealT):
                raise _Unsupported("an array of indices or booleans")
            return self.emit(self.names.fresh("b"), loops, None, body, dims=dims)
        raise _Unsupported(f"an array-valued {t.__name__}")


def _is_read(e: Expr) -> bool:
    return isinstance(_get_chain(e)[0], (Var, Num))


# -- 2. transpose -----------------------------------------------------------------------------
def _reads(body: Expr, active: set[str]) -> list[tuple[Expr, str, list[Expr]]]:
    """Every differentiable read of an active array or real in ``body``: (the read, the name,
    its indices), once per distinct read."""
    out: dict[Expr, tuple[str, list[Expr]]] = {}

    def walk(e: Expr) -> None:
        if isinstance(e, Get):
            base, idx = _get_chain(e)
            if isinstance(base, Var) and base.name in active:
                out.setdefault(e, (base.name, idx))
            return
        if isinstance(e, Var):
            if e.name in active:
                out.setdefault(e, (e.name, []))
            return
        if isinstance(e, Length) or (isinstance(e, Prim) and PRIMITIVES[e.op].jvp is None):
            return                                  # no tangent flows through these
        if isinstance(e, If):                       # nor through a condition
            walk(e.then)
            walk(e.else_)
            return
        for c in e.children():
            walk(c)
    walk(body)
    return [(r, nm, idx) for r, (nm, idx) in out.items()]


def _partial(body: Expr, read: Expr) -> Expr:
    def seed(x: Expr):
        if x == read:
            return ONE
        if isinstance(x, Length):
            return ZERO
        return None
    try:
        return _tangent(body, seed)
    except _NotElementwise as err:                  # pragma: no cover - flattened bodies have no binders
        raise _Unsupported(str(err)) from None


def _grad(prog: Program, wrts: list[str]) -> Expr:
    names = NameSupply(set(all_names(prog.body)) | {p.name for p in prog.params}
                       | {s for p in prog.params for s in size_names(p.type)})
    flat = _Flatten(prog, names)
    dims: dict[str, list[Expr]] = {}
    for p in prog.params:
        if p.name in wrts:
            ds, t = [], p.type
            while isinstance(t, ArrayT):
                ds.append(_size_expr(t.size))
                t = t.elem
            if not isinstance(t, RealT):
                raise _Unsupported(f"{p.name} is not a real or an array of reals")
            dims[p.name] = ds
    for s in flat.stmts:
        dims[s.name] = [n for _, n in s.loops]
    active = set(wrts)
    for s in flat.stmts:
        if free_vars(s.body) & active or (s.red and free_vars(s.red[1]) & active):
            active.add(s.name)
    contrib: dict[str, list[tuple[list[str], Expr]]] = {}
    lets: list[tuple[str, Expr]] = [(s.name, s.value()) for s in flat.stmts]

    def total(x: str) -> tuple[list[str], Expr]:
        """X̄'s element at fresh indices: the sum of its contributions."""
        ps = [names.fresh("p") for _ in dims[x]]
        terms = [subst_all(body, {q: Var(p) for q, p in zip(qs, ps)}) for qs, body in contrib.pop(x, [])]
        out: Expr = ZERO
        for t in terms:
            out = _add(out, t)
        return ps, out

    for s in reversed(flat.stmts):
        if s.name not in active:
            continue
        if s is flat.stmts[-1]:
            sbar: Expr = ONE
        else:
            if not contrib.get(s.name):
                continue
            ps, body = total(s.name)
            if not s.loops and isinstance(body, Num):     # a constant cotangent (the result's sum)
                sbar = body
            else:
                # s̄'s axes in the statement's loop order, except that the loops a read of its
                # body is solved for go last: s̄ is read at (.., v, .., solved(v, ..)), and a
                # gather at a computed index after the plain ones stays on the axes they share
                # (read the other way, NumPy gathers an outer product, then its diagonal)
                late = _solved_loops(s, active, dims)
                order = [k for k, (v, _) in enumerate(s.loops) if v not in late] + \
                        [k for k, (v, _) in enumerate(s.loops) if v in late]
                bn = names.fresh(s.name + "_bar")
                lets.append((bn, _builds([(ps[k], dims[s.name][k]) for k in order], body)))
                dims[bn] = [dims[s.name][k] for k in order]
                sbar = _read(Var(bn), [Var(s.loops[k][0]) for k in order])
        loops = s.loops + ([s.red] if s.red else [])
        extent = dict(loops)
        for read, x, idx in _reads(s.body, active):
            if len(idx) != len(dims[x]):
                raise _Unsupported(f"a read of {x} that is not an element")
            d = _partial(s.body, read)
            if _is(d, 0.0):
                continue
            val = _mul(sbar, d)
            qs = [names.fresh("q") for _ in idx]
            mapping, where = _match(idx, qs, [v for v, _ in loops])
            conds: list[Expr] = []
            for (q, e, v), n in zip(where, dims[x]):
                if v is None:                   # a computed index: tested per element
                    conds.append(Prim("=", (subst_all(e, mapping), Var(q))))
                    continue
                at = mapping[v]                 # loop v reads element q at v = at
                if at != Var(q):                # a shifted read: v = at must be in the loop's range
                    conds.append(Prim("<=", (Int(0), at)))
                if at != Var(q) or extent[v] != n:
                    conds.append(Prim("<", (at, extent[v])))
            body = subst_all(val, mapping)
            summed = [(v, n) for v, n in loops if v not in mapping]
            # a test that reads no summed loop goes outside the sums (an argmax's pick inside a
            # sum over the vector: tested once, not once per element)
            inner = [c for c in conds if free_vars(c) & {v for v, _ in summed}]
            outer = [c for c in conds if c not in inner]
            if summed and TRANSPOSE_CONTRACTIONS:
                body = _contiguous_sums(body, summed, qs, dims, names, lets)
            body = _guard(inner, body)
            for v, n in reversed(summed):
                body = Sum(n, v, body)
            contrib.setdefault(x, []).append((qs, _guard(outer, body)))
    grads = []
    for w in wrts:
        ps, body = total(w)
        grads.append(_builds(list(zip(ps, dims[w])), body))
    out = grads[-1]
    for g in reversed(grads[:-1]):
        out = Pair(g, out)
    return _drop_dead(lets, out)


#: store a transposed copy of an array that a contribution reads re-used across its loops
#: with a summed loop on an outer axis (:func:`_contiguous_sums`)
TRANSPOSE_CONTRACTIONS = True


def _contiguous_sums(body: Expr, summed: list, qs: list[str], dims: dict, names, lets: list) -> Expr:
    """``body`` (inside the sums over ``summed``, in a loop nest over ``qs``) with every read
    of an array that (a) is indexed by plain loop variables only, (b) does not read every
    loop (so each element is read again in the loops it does not read) and (c) has a summed
    loop on an axis before one that is not, read from a copy whose summed axes come last.  The
    sum then walks both factors of a contraction (``Σ_i A[i][j][r] B[i][j][c]``, gmm's packed
    factor's adjoint) with unit stride: a loop backend's inner loop vectorises instead of
    striding over the other axes (Numba: 4-17x on that sum); NumPy's einsum is unaffected."""
    sv = {v for v, _ in summed}
    allv = sv | set(qs)
    copies: dict[Expr, Expr] = {}

    def visit(e: Expr) -> Expr:
        if isinstance(e, Get):
            base, idx = _get_chain(e)
            if (isinstance(base, Var) and base.name in dims and len(idx) == len(dims[base.name])
                    and all(isinstance(i, Var) and i.name in allv for i in idx)):
                names_ = [i.name for i in idx]
                kinds = [n in sv for n in names_]
                if len(set(names_)) == len(names_) and set(names_) != allv \
                        and any(a and not b for a, b in zip(kinds, kinds[1:])):
                    if e not in copies:
                        order = [k for k, a in enumerate(kinds) if not a] + [k for k, a in enumerate(kinds) if a]
                        ps = [names.fresh("p") for _ in order]
                        value = _builds([(p, dims[base.name][k]) for p, k in zip(ps, order)],
                                        _read(base, [Var(ps[order.index(k)]) for k in range(len(idx))]))
                        tn = names.fresh(base.name + "_t")
                        lets.append((tn, value))
                        dims[tn] = [dims[base.name][k] for k in order]
                        copies[e] = _read(Var(tn), [idx[k] for k in order])
                    return copies[e]
            return e
        if isinstance(e, (Var, Num, Int, BoolLit, Length)):
            return e
        return e.with_children([visit(c) for c in e.children()])
    return visit(body)


def _match(idx: list[Expr], qs: list[str], loops: list[str]) -> tuple[dict[str, Expr], list]:
    """A read at ``idx`` written as the element at ``qs``: the loops it fixes (loop -> its
    value: ``q`` itself, or ``q - c`` for a shifted index, :func:`_solve`) and, per index,
    ``(q, index, the loop it fixes or None)`` -- None: a computed index, tested per element."""
    mapping: dict[str, Expr] = {}
    where = []
    for q, e in zip(qs, idx):
        solved = _solve(e, Var(q), loops, mapping)
        if solved is not None:
            mapping[solved[0]] = solved[1]
        where.append((q, e, solved[0] if solved is not None else None))
    return mapping, where


def _solved_loops(s: _Stmt, active: set[str], dims: dict) -> set[str]:
    """The loops of ``s`` that a read in its body is solved for at a shifted position
    (``v = q - c``, not ``v = q``): the axes of ``s̄`` read at computed indices."""
    loops = [v for v, _ in s.loops] + ([s.red[0]] if s.red else [])
    out: set[str] = set()
    for _, _, idx in _reads(s.body, active):
        mapping, where = _match(idx, [f"_q{k}" for k in range(len(idx))], loops)
        out |= {v for q, _, v in where if v is not None and mapping[v] != Var(q)}
    return out


def _guard(conds: list[Expr], body: Expr) -> Expr:
    """``body`` where every condition holds, 0 elsewhere."""
    if not conds:
        return body
    c = conds[0]
    for more in conds[1:]:
        c = Prim("and", (c, more))
    return If(c, body, ZERO)


def _terms(e: Expr, sign: int = 1) -> list[tuple[int, Expr]]:
    """``e`` as a signed sum of terms (through ``+`` and ``-``)."""
    if isinstance(e, Prim) and e.op in ("+", "-") and len(e.args) == 2:
        return _terms(e.args[0], sign) + _terms(e.args[1], sign if e.op == "+" else -sign)
    return [(sign, e)]


def _solve(e: Expr, q: Expr, loops: list[str], mapping: dict) -> tuple[str, Expr] | None:
    """A loop variable ``v`` (not yet mapped) and the expression at which ``v`` makes the
    index ``e`` equal to ``q``, where ``e`` is ``±v`` plus terms free of ``v`` -- the shifted
    reads of stencils, windows and reversals (``x[i+1]``, ``x[i+j]``, ``x[n-1-i]``); the
    outermost such loop is solved for (a window's inner loop stays a sum).  None otherwise:
    the read is tested per element."""
    terms = _terms(e)
    for v in loops:
        if v in mapping:
            continue
        hits = [k for k, (_, t) in enumerate(terms) if v in free_vars(t)]
        if len(hits) != 1 or terms[hits[0]][1] != Var(v):
            continue
        sign = terms[hits[0]][0]
        rest: Expr | None = None
        for k, (sg, t) in enumerate(terms):
            if k == hits[0]:
                continue
            t = subst_all(t, mapping)
            rest = (t if sg > 0 else Prim("neg", (t,))) if rest is None else Prim("+" if sg > 0 else "-", (rest, t))
        if rest is None:
            at = q if sign > 0 else None
        else:
            at = Prim("-", (q, rest)) if sign > 0 else Prim("-", (rest, q))
        if at is None:
            continue                            # e = -v: not an index
        return v, at
    return None


def _drop_dead(lets: list[tuple[str, Expr]], body: Expr) -> Expr:
    need = set(free_vars(body))
    keep = []
    for name, val in reversed(lets):
        if name in need:
            keep.append((name, val))
            need |= free_vars(val)
    for name, val in keep:
        body = Let(name, val, body)
    return body


def grad_loopnest(prog: Program, wrt: str | Sequence[str]) -> Program | None:
    """The gradient of the real-valued ``prog`` w.r.t. ``wrt`` (a name, or several: right-nested
    pairs, as :func:`eqsat_ad.ad.api.grad`) by reverse mode over its loop nests, or None where
    the program has a form this does not handle (a fold, a pair, an array-valued ``if``, a
    loop whose extent depends on an enclosing loop)."""
    from .api import _check_wrt, _output_type, prepare
    prog = prepare(prog)
    wrts = [wrt] if isinstance(wrt, str) else list(wrt)
    if not wrts or len(set(wrts)) != len(wrts):
        return None
    for w in wrts:
        _check_wrt(prog, w)
    if not isinstance(_output_type(prog), RealT):
        return None
    if any(isinstance(x, (IFold, Scan, Pair, Fst, Snd)) for x in iter_nodes(prog.body)):
        return None
    try:
        body = _grad(prog, wrts)
    except _Unsupported:
        return None
    return Program(prog.params, body)

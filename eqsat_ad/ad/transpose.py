"""Gradients through sequential folds at a constant times the cost of the fold: the tangent
recurrence of a fold, transposed (issue 12; the design is in ``docs/ad.md``).

A dual-number gradient w.r.t. a ``(vec m)`` runs the fold once per input direction, and no
rewrite folds a one-hot seed into a loop whose accumulator feeds itself.  But the tangent
half of a fold step is linear: with ``p_i`` the state before step ``i``,
``da_{i+1} = A_i da_i + B_i dx`` (``A_i = ∂e/∂a``, ``B_i = ∂e/∂x`` at ``p_i``).  For a real
output ``y = C(p_n)`` the gradient is

    ∇x y = ∇x C  +  Σ_i B_iᵀ λ_{i+1}  +  (∂z/∂x)ᵀ λ_0,     λ_n = ∇_h C,  λ_i = A_iᵀ λ_{i+1}

one backward recurrence over the stored states.  Every piece is an ordinary *forward-mode*
gradient of a program without that fold, built by :func:`eqsat_ad.ad.api.grad` and inlined:

* ``∇_h C``, ``∇x C``: the program with the fold replaced by a parameter ``h``;
* ``A_iᵀ λ = ∇_a <e(a, i), λ>`` -- one direction per state component (one for a real state),
  which the optimiser's one-hot folding makes a vector-Jacobian product;
* ``Σ_i B_iᵀ λ_{i+1} = ∇x Σ_i <e(p_i, i), λ_{i+1}>`` with the states and adjoints fixed: a
  ``sum``, not a fold, so one-hot folding makes it O(n);
* ``(∂z/∂x)ᵀ λ_0 = ∇x <z, λ_0>``.

The states are a ``scan`` (``p_0 .. p_n``), the adjoints a second ``scan`` that runs the
index backwards (``i = n - 1 - j``).  Each piece is built by :func:`grad_reverse` again, so
other folds in ``C``, in the fold's body or in its initial value are transposed too.

>>> import numpy as np, eqsat_ad as ea
>>> poly = ea.parse("(fun ((c (vec n)) (t real)) (ifold (lambda (a i) (+ (* a t) (get c i))) 0.0 n))")
>>> g = grad_reverse(poly, "c")                 # (vec n): t^(n-1-i), through two scans
>>> sorted({type(x).__name__ for x in ea.lang.ast.iter_nodes(g.body)} & {"Scan", "IFold"})
['Scan']
>>> np.allclose(ea.evaluate(g, c=[1.0, 2.0, 3.0], t=2.0), [4.0, 2.0, 1.0])
True
"""
from __future__ import annotations

from typing import Sequence

from ..cost.semantics import fold_shape
from ..errors import ADError
from ..lang.ast import (Build, Expr, Fst, Get, If, IFold, Int, Length, Let, Pair, Param, Prim, Program,
                        Num, Scan, Snd, Sum, Var, map_expr, scoped_children)
from ..lang.binders import all_names, call_deep, free_vars, free_vars_table, fresh, subst_all
from ..lang.folds import peel_lets
from ..lang.types import INDEX, SIZE, ArrayT, PairT, RealT, SizeT, Type, array_sizes, size_names

__all__ = ["grad_reverse", "transposable_fold", "FORWARD_SHAPES"]

#: Fold bodies whose gradient the forward form already computes in O(f) after rewriting
#: (:func:`eqsat_ad.cost.semantics.fold_shape`): additive folds (one-hot folding, a ``sum``),
#: max/min folds (``rules/extreme.egg``: an argmax and a gather).  Every other body -- a
#: product (vectorised as a value, sequential as a dual number) or a genuinely sequential
#: recurrence (``None``) -- is transposed.
FORWARD_SHAPES = frozenset({"identity", "sum", "sub", "max", "min", "maximum", "minimum"})


def _state_ok(t: Type) -> bool:
    """A real or an array of reals of any rank (the types ``grad`` differentiates with
    respect to), or a pair of such states."""
    if isinstance(t, PairT):
        return _state_ok(t.fst) and _state_ok(t.snd)
    while isinstance(t, ArrayT):
        t = t.elem
    return isinstance(t, RealT)


def _folds_in_context(body: Expr, outer: set[str]):
    """Every ``ifold`` of ``body`` (outermost first) with its *closed* version: the fold with
    the values of the enclosing ``let`` bindings it reads substituted (when those read only
    parameters and size names, transitively), or None when it reads a loop index, an
    accumulator or a ``let`` that does.  (Free variables come from one table; a ``let``'s
    closed value is built only when a fold reads it.)"""
    fv = free_vars_table(body)
    closed_values: dict[int, Expr] = {}

    def close(e: Expr, env: dict) -> Expr:
        """``e`` with the closed values of the lets in ``env`` it reads substituted."""
        reads = {k: env[k] for k in fv[id(e)] if k in env}
        mapping = {}
        for k, (let, let_env) in reads.items():
            if id(let) not in closed_values:
                closed_values[id(let)] = close(let.value, let_env)
            mapping[k] = closed_values[id(let)]
        return subst_all(e, mapping) if mapping else e

    stack = [(body, {}, frozenset())]
    while stack:
        e, env, bound = stack.pop()
        if type(e) is IFold:
            f = fv[id(e)]
            yield e, (close(e, env) if not (f & bound) and f <= outer | env.keys() else None)
        kids = []
        for c, names in scoped_children(e):
            if type(e) is Let and names:
                f = fv[id(e.value)]
                if not (f & bound) and f <= outer | env.keys():   # a let of parameters: closed
                    kids.append((c, {**env, e.name: (e, env)}, bound - {e.name}))
                    continue
            kids.append((c, {k: x for k, x in env.items() if k not in names} if names else env,
                         bound | set(names)))
        stack.extend(reversed(kids))


def transposable_fold(prog: Program, wrt: str, always: bool = False) -> IFold | None:
    """The first fold (outermost first) of ``prog`` (elaborated) whose gradient w.r.t. ``wrt``
    this module computes by transposition, in its closed form (:func:`_folds_in_context`), or
    None.  Such a fold reads only parameters, size names and ``let`` bindings of those (no
    enclosing loop index or accumulator), depends on ``wrt``, has a real or array-of-reals
    state (any rank, or pairs of them), and a body the forward form cannot make O(f)
    (:data:`FORWARD_SHAPES`); unless ``always``, its state also has fewer components than
    ``wrt`` (:func:`_fewer_components`) or its body is a chain of lets (:func:`_straight_line`).
    A fold whose result another such fold reads (:func:`_feeds_fold`) comes first, whatever
    its size, the innermost of a chain first."""
    from ..lang.typecheck import program_env, type_of
    env = program_env(prog)
    folds = [node for _, node in _folds_in_context(prog.body, set(env)) if _sequential(node, env, wrt)]
    feeders = [f for f in folds if _feeds_fold(f, folds)]
    for node in feeders:                  # innermost first: the reader transposes the rest
        if not any(g != node and _contains(node, g) for g in feeders):
            return node
    for node in folds:
        state = type_of(node, env)
        if always or _fewer_components(state, env[wrt]) or _straight_line(prog, env, node, state):
            return node
    return None


def _sequential(node: IFold | None, env: dict, wrt: str) -> bool:
    """Is ``node`` (a closed fold, or None) one that depends on ``wrt``, has a state the
    transposition handles and a body the forward form cannot make O(f)?"""
    from ..lang.typecheck import type_of
    if node is None or wrt not in free_vars(node.body) | free_vars(node.init):  # (a size has no tangent)
        return False
    core, _ = peel_lets(node.body, node.acc)
    shape = fold_shape(core, node.acc, lambda x, a=node.acc: a not in free_vars(x))
    return not (shape is not None and shape.kind in FORWARD_SHAPES) and _state_ok(type_of(node, env))


def _contains(f: IFold, g: IFold) -> bool:
    """Does the closed fold ``f`` contain the closed fold ``g``?"""
    from ..lang.ast import iter_nodes
    return any(type(x) is IFold and x == g for x in iter_nodes(f))


def _feeds_fold(node: IFold, folds: list) -> bool:
    """Is the result of ``node`` read by another of the sequential ``folds`` (``U = fold(A)``,
    then a fold over ``U``: Gaussian elimination, then the product of the diagonal)?  That
    fold's closed form contains ``node`` (substituted from its ``let``, or loop-invariant in
    its body, or its initial value); picked instead, its scans would recompute ``node`` at
    every step and its pieces differentiate ``node`` in forward mode, one direction per
    component of ``wrt``.  Transposed first, ``node`` leaves the other fold to ``C``,
    transposed in turn by ``∇_h C``: so ``node`` is picked even when its state is as large as
    ``wrt``."""
    return any(f != node and _contains(f, node) for f in folds)


def _straight_line(prog: Program, env: dict, fold: IFold, state: Type) -> bool:
    """Is the fold's body a chain of lets, one at least of a value with reals (an RK4 step's
    stages, an LSTM cell's gates)?  Its adjoint step is then built binding by binding
    (:class:`_Chain`): one VJP per binding, each folded to the cost of that binding, so the
    transposed gradient costs a constant times the fold whatever the sizes of the state and of
    ``wrt`` (the rule ``auto`` mode adds to the component count of :func:`_fewer_components`)."""
    if not isinstance(fold.body, Let):
        return False
    names = _Names(prog)
    la, li = names("a"), names("i")
    body = subst_all(fold.body, {fold.acc: Var(la), fold.var: Var(li)})
    chain = _Chain(prog, env, la, li, _with_sizes(state, names, {}), body, names, False)
    return chain.ok and len(chain.diff) > 1


def _components(t: Type) -> list[list]:
    """The real components of a value of type ``t``: one list of dimension sizes per array
    leaf (``[]`` for a real)."""
    if isinstance(t, PairT):
        return _components(t.fst) + _components(t.snd)
    return [array_sizes(t)]


def _count(dims: list, other: list, big: int = 1000) -> float:
    """The number of elements of an array of ``dims`` beside one of ``other``, compared
    symbolically: a size both share cancels, a constant counts as itself, any other size as
    ``big`` (a large extent)."""
    rest = list(other)
    c = 1.0
    for d in dims:
        if d in rest and d is not None:
            rest.remove(d)
        else:
            c *= d if isinstance(d, int) and not isinstance(d, bool) else big
    return c


def _fewer_components(state: Type, wrt: Type) -> bool:
    """Does the state have fewer real components than ``wrt`` has directions?  The adjoint
    step is a forward-mode gradient with one direction per state component: at worst (when
    the optimiser cannot fold its one-hot seeds) it costs (state components) x (a step),
    against (directions) x (a step) for the forward form.  Sizes are compared symbolically:
    a shared size name cancels, and any other size counts as a large extent."""
    (w,) = _components(wrt)
    parts = _components(state)
    return all(_count(p, w) * len(parts) < _count(w, p) for p in parts)


def _no_larger(t: Type, state: Type) -> bool:
    """Is every array (or real) in ``t`` no larger than some component of ``state``?  Sizes are
    compared as in :func:`_fewer_components` (a shared size name cancels, any other counts as
    large): the tape (:meth:`_Chain.tape`) then holds a constant times the states the forward
    ``scan`` stores, not (say) an outer product of the state per step."""
    parts = _components(state)
    return all(any(_count(b, p) <= _count(p, b) for p in parts) for b in _components(t))


def _replace_fold(body: Expr, outer: set[str], closed: IFold, h: str) -> Expr:
    """``body`` with every fold whose closed form is ``closed`` replaced by ``Var(h)``."""
    hits = {id(e) for e, c in _folds_in_context(body, outer) if c == closed}
    return map_expr(body, lambda x: Var(h) if id(x) in hits else x)


# -- small builders ----------------------------------------------------------------------------
class _Names:
    """Fresh names, distinct from every name of the programs involved and from each other."""

    def __init__(self, *progs: Program):
        self.used: set[str] = set()
        for p in progs:
            self.add(p)

    def add(self, p: Program) -> None:
        self.used.update(all_names(p.body))
        for q in p.params:
            self.used.add(q.name)
            self.used.update(size_names(q.type))

    def __call__(self, base: str) -> str:
        name = fresh(base, self.used)
        self.used.add(name)
        return name


def _dot(v: Expr, w: Expr, t: Type, names: _Names) -> Expr:
    """``<v, w>`` for two values of type ``t`` (reals, arrays of reals, pairs of those)."""
    if isinstance(t, RealT):
        return Prim("*", (v, w))
    if isinstance(t, PairT):
        vn = names("v")
        return Let(vn, v, Prim("+", (_dot(Fst(Var(vn)), Fst(w), t.fst, names),
                                     _dot(Snd(Var(vn)), Snd(w), t.snd, names))))
    assert isinstance(t, ArrayT)
    vn, q = names("v"), names("q")
    return Let(vn, v, Sum(Length(Var(vn)), q, _dot(Get(Var(vn), Var(q)), Get(w, Var(q)), t.elem, names)))


def _add(terms: list[Expr], t: Type, names: _Names) -> Expr:
    """The elementwise sum of values of type ``t`` (each read once)."""
    if len(terms) == 1:
        return terms[0]
    if isinstance(t, RealT):
        out = terms[0]
        for x in terms[1:]:
            out = Prim("+", (out, x))
        return out
    if isinstance(t, PairT):
        vs = [names("g") for _ in terms]
        out = Pair(_add([Fst(Var(v)) for v in vs], t.fst, names), _add([Snd(Var(v)) for v in vs], t.snd, names))
        for v, x in reversed(list(zip(vs, terms))):
            out = Let(v, x, out)
        return out
    assert isinstance(t, ArrayT)
    vs = [names("g") for _ in terms]
    k = names("k")
    body = _add([Get(Var(v), Var(k)) for v in vs], t.elem, names)
    out: Expr = Build(Length(Var(vs[0])), k, body)
    for v, x in reversed(list(zip(vs, terms))):
        out = Let(v, x, out)
    return out


def _with_sizes(t: Type, names: _Names, sizes: dict[str, str]) -> Type:
    """``t`` with every unknown size (``?``) replaced by a fresh size name (parameters need
    named sizes); ``sizes`` collects the new names."""
    if isinstance(t, ArrayT):
        s = t.size
        if s is None:
            s = names("s")
            sizes[s] = s
        return ArrayT(_with_sizes(t.elem, names, sizes), s)
    if isinstance(t, PairT):
        return PairT(_with_sizes(t.fst, names, sizes), _with_sizes(t.snd, names, sizes))
    return t


def _leaf_paths(t: Type, path: tuple = ()) -> list[tuple[tuple, Type]]:
    """The non-pair components of ``t`` with their paths (0: fst, 1: snd), left to right."""
    if isinstance(t, PairT):
        return _leaf_paths(t.fst, path + (0,)) + _leaf_paths(t.snd, path + (1,))
    return [(path, t)]


def _project(x: Expr, path: tuple) -> Expr:
    for bit in path:
        x = Fst(x) if bit == 0 else Snd(x)
    return x


def _tree(t: Type, parts: dict, path: tuple = ()) -> Expr:
    """A value of pair structure ``t`` from its components ``parts[path]``."""
    if isinstance(t, PairT):
        return Pair(_tree(t.fst, parts, path + (0,)), _tree(t.snd, parts, path + (1,)))
    return parts[path]


def _grad_state(params: tuple, body: Expr, x: str, t: Type, value: Expr, args: dict,
                names: _Names, always: bool, tidy=lambda q, g: g) -> Expr:
    """``∇_x body`` at ``x = value`` (a state of type ``t``), the other parameters ``args``:
    :func:`grad_reverse` of the program ``(fun (params... (x t)) body)``, inlined.  A pair
    state is differentiated component by component (``grad`` takes no pair parameter) and the
    adjoint put back together in the state's structure."""
    leaves = _leaf_paths(t)
    if len(leaves) == 1:
        q = Program(params + (Param(x, t),), body)
        return _inline(tidy(q, grad_reverse(q, x, always)), {x: value, **args})
    leaf_names = [names(x) for _ in leaves]
    q = Program(params + tuple(Param(nm, lt) for (_, lt), nm in zip(leaves, leaf_names)),
                subst_all(body, {x: _tree(t, {p: Var(nm) for (p, _), nm in zip(leaves, leaf_names)})}))
    names.add(q)
    g = grad_reverse(q, leaf_names, always)    # right-nested pairs, one per component
    vn, gn = names("st"), names("g")
    comps = {nm: _project(Var(vn), p) for (p, _), nm in zip(leaves, leaf_names)}
    parts = {p: _nth(Var(gn), k, len(leaves)) for k, (p, _) in enumerate(leaves)}
    return Let(vn, value, Let(gn, _inline(tidy(q, g), {**comps, **args}), _tree(t, parts)))


def _inline(q: Program, args: dict[str, Expr]) -> Expr:
    """The body of ``q`` with its parameters (and size names) replaced by ``args``; the
    parameters not in ``args`` are the caller's own (same names)."""
    return subst_all(q.body, args)


def _last(a: Expr) -> Expr:
    return Get(a, Prim("-", (Length(a), Int(1))))


def _nth(t: Expr, k: int, count: int) -> Expr:
    """Component ``k`` of ``t``, a right-nested tuple of ``count`` components
    (``(pair c0 (pair c1 c2))``): ``(fst (snd^k t))``, the last one ``(snd^k t)``."""
    for _ in range(k):
        t = Snd(t)
    return Fst(t) if k < count - 1 else t


# -- the transposition ---------------------------------------------------------------------------
def grad_reverse(prog: Program, wrt: str | Sequence[str], always: bool = False) -> Program:
    """The gradient of a real-valued program, with every fold that :func:`transposable_fold`
    picks transposed (states by a ``scan``, adjoints by a backward ``scan``); the rest is
    :func:`eqsat_ad.ad.api.grad`'s forward form.  Same result and type as ``grad``.
    ``always``: transpose also where the state has as many components as ``wrt``."""
    from .api import _check_wrt, _several, grad, prepare
    if not isinstance(wrt, str):
        shared = _shared(prog, wrt, always)
        if shared is not None:
            return shared
    several = _several(lambda p, w: grad_reverse(p, w, always), prog, wrt)
    if several is not None:
        return several
    prog = prepare(prog)
    _check_wrt(prog, wrt)
    fold = call_deep(transposable_fold, prog, wrt, always, what="program")
    if fold is None:
        return grad(prog, wrt, mode="forward")
    return Program(prog.params, _transpose(prog, wrt, fold, always))


def _shared(prog: Program, wrts: Sequence[str], always: bool) -> Program | None:
    """The gradients w.r.t. several names (right-nested pairs, as ``grad``) through one
    transposition of their fold -- one states ``scan``, one backward fold whose state carries
    the adjoint and every name's accumulated gradient -- instead of one transposition per name.
    Only where every name's gradient goes through the same fold, its body is a chain of lets
    and every name read by the body accumulates (:func:`_transpose`'s rule); None otherwise."""
    from .api import _check_wrt, prepare
    wrts = list(wrts)
    if len(wrts) < 2 or len(set(wrts)) != len(wrts) or not all(isinstance(w, str) for w in wrts):
        return None
    prog = prepare(prog)
    for w in wrts:
        _check_wrt(prog, w)
    folds = [call_deep(transposable_fold, prog, w, always, what="program") for w in wrts]
    if folds[0] is None or any(f != folds[0] for f in folds):
        return None
    out = _transpose(prog, wrts, folds[0], always, shared_only=True)
    return None if out is None else Program(prog.params, out)


#: keep the primal bindings of a let-chain fold body on a tape (:meth:`_Chain.tape`) instead
#: of recomputing them in the backward step.  Off: a trade measured both ways (NumPy backend,
#: RK4 over 1000 steps, side by side): with 16 coefficients the taped gradient ran 0.76x the
#: recomputing one (per-call overhead saved), with 1000 coefficients 1.5x (the tape, 7 arrays
#: of steps x n, is written and read back from memory where the recomputation stays in
#: cache); GradBench's LSTM ran 3.5x slower with it (n = 1000, side by side: its steps' tape
#: holds every split gate and the layers, a fold computed again one step at a time to fill it)
TAPE = False

#: split a binding that maps an elementwise expression into one binding per costly call
#: (:func:`_split_map`)
SPLIT = True

#: optimise the gradient of what reads the fold's result (``λ_n = ∇_h C``) on its own, as a
#: binding's VJP (:func:`_tidy`): its one-hot seeds (one per state component) are folded in a
#: small e-graph; left to the e-graph of the whole transposed program they were not (RK4's
#: ``(get yT (- n 1))``: an n x n identity matrix built to read one row of it)
TIDY_ENDS = True

#: limits of the optimisation of one binding's VJP (:func:`_tidy`)
PIECE_LIMITS = dict(seconds=20.0, nodes=20_000)
_TIDY_CACHE: dict = {}
_TIDY_CACHE_MAX = 1024


def _tidy(q: Program) -> Program:
    """One binding's VJP (a forward-mode gradient of a single binding of a fold body),
    optimised on its own: the one-hot folding that makes it a VJP is local to the binding, and
    done in a small e-graph it does not have to happen in the e-graph of the whole transposed
    program, where the composed bindings (each stage of an RK4 step reads the one before,
    through shifted indices) grew past the node limit before it was done.  The result is
    checked by the optimiser (the reference interpreter on random inputs); the input is kept
    where nothing cheaper was found."""
    from ..lang.syntax import show_program
    key = show_program(q)
    if len(_TIDY_CACHE) > _TIDY_CACHE_MAX:
        _TIDY_CACHE.clear()
    if key not in _TIDY_CACHE:
        from ..lang.normalize import normalize_program
        from ..optimize import optimize
        try:
            # normalised first: where the optimiser finds nothing cheaper it returns its input,
            # and the model prices a dead dual seed (a one-hot over every direction of a
            # component the binding does not read) at nothing, which the backend computes
            n = normalize_program(q)
            _TIDY_CACHE[key] = optimize(n, limits=PIECE_LIMITS).program
        except Exception:                                  # pragma: no cover - keep the input
            _TIDY_CACHE[key] = q
    return _TIDY_CACHE[key]


def _scans(e: Expr) -> int:
    from ..lang.ast import iter_nodes
    return sum(type(x) is Scan for x in iter_nodes(e))


def _tidy_vjp(q: Program, g: Program) -> Program:
    """``_tidy(g)`` for ``g``, the gradient of ``q`` -- unless ``g`` transposes a fold of ``q``
    (it has a states ``scan`` that ``q`` has not): its pieces were tidied one by one, and
    optimised as one program the optimiser inlined each binding's VJP into every piece that
    reads it, the primal values recomputed in each (an LSTM's layers: 2x the time)."""
    return g if _scans(g.body) > _scans(q.body) else _tidy(g)


def _ends(q: Program, g: Program) -> Program:
    """The gradients at the ends of a transposed fold (what reads its result, what its initial
    value reads, a step's body summed over the steps), tidied where :data:`TIDY_ENDS`."""
    return _tidy_vjp(q, g) if TIDY_ENDS else g


def _has_real(t: Type) -> bool:
    if isinstance(t, PairT):
        return _has_real(t.fst) or _has_real(t.snd)
    while isinstance(t, ArrayT):
        t = t.elem
    return isinstance(t, RealT)


def _zeros_like(t: Type, v: Expr, names: _Names) -> Expr:
    """A value of type ``t`` with the shape of ``v`` and every real 0.0."""
    if isinstance(t, RealT):
        return Num(0.0)
    if isinstance(t, PairT):
        return Pair(_zeros_like(t.fst, Fst(v), names), _zeros_like(t.snd, Snd(v), names))
    assert isinstance(t, ArrayT)
    k = names("k")
    size = t.size if isinstance(t.size, int) and not isinstance(t.size, bool) else None
    return Build(Int(size) if size is not None else Length(v), k, _zeros_like(t.elem, Get(v, Var(k)), names))


def _size_args(t: Type, fresh: dict, v: Expr) -> dict[str, Expr]:
    """The fresh size names (``fresh``) of a named type ``t``, read off a value ``v``."""
    out: dict[str, Expr] = {}
    if isinstance(t, ArrayT):
        if t.size in fresh:
            out[t.size] = Length(v)
        out.update(_size_args(t.elem, fresh, Get(v, Int(0))))
    elif isinstance(t, PairT):
        out.update(_size_args(t.fst, fresh, Fst(v)))
        out.update(_size_args(t.snd, fresh, Snd(v)))
    return out


def _params_read(params, reads: set, keep: set = frozenset(), others: tuple = ()) -> list[Param]:
    """The program parameters a piece reads (or must keep): a piece's zero seeds are made for
    its parameters, and one for a large input the binding does not read (an LSTM's whole text,
    c x b, in every backward step) would cost O(that input) per step.  A size name of a
    dropped parameter's type that the piece still needs becomes a ``size`` parameter."""
    kept = [p for p in params if p.name in reads or p.name in keep or isinstance(p.type, SizeT)]
    have = {p.name for p in kept} | {n for p in list(kept) + list(others) for n in size_names(p.type)}
    for p in params:
        if p in kept:
            continue
        for nm in size_names(p.type):
            if nm not in have:
                kept.append(Param(nm, SIZE))
                have.add(nm)
    return kept


def _split_ops() -> frozenset:
    from ..lang.primitives import REAL_FNS
    return frozenset(p.name for p in REAL_FNS.values() if p.arity == 1 and p.cost > 1.0)


def _split_map(v: str, val: Expr, names: _Names) -> list[tuple[str, Expr]]:
    """The binding ``v = val`` as a chain: where ``val`` is a ``build`` of an elementwise
    expression, every call of a unary real function that costs more than an add (exp, tanh,
    log, ...) on the build's index becomes a binding of its own, a ``build`` over the same
    extent, read back by index -- reverse mode over the elementwise graph: the backward step
    keeps each such value (an LSTM gate) in a binding that every VJP piece reads, where one
    piece per binding recomputed them all (and the optimiser copied them into every use: a
    cell's gates, in each of the four slices of the weight gradient).  Calls under an ``if``
    or a short-circuit ``and``/``or`` (a value a test guards, log x for x > 0), in a comparison
    (no tangent) or under a binder of the body stay in place."""
    if type(val) is not Build:
        return [(v, val)]
    from ..lang.primitives import COMPARISONS, LOGIC
    ops, k, out, tests = _split_ops(), val.var, [], frozenset(COMPARISONS + LOGIC)

    def walk(e: Expr) -> Expr:
        if type(e) in (If, Let, Build, Sum, IFold, Scan) or (type(e) is Prim and e.op in tests):
            return e
        kids = e.children()
        if kids:
            new = tuple(walk(c) for c in kids)
            if any(a is not b for a, b in zip(new, kids)):
                e = e.with_children(new)
        if type(e) is Prim and e.op in ops and k in free_vars(e):
            (arg,) = e.args
            if type(arg) not in (Get, Var):     # the argument too: its VJP reads the call's
                e = Prim(e.op, (keep(arg),))    # cotangent, not the call recomputed
            return keep(e)
        return e

    def keep(e: Expr) -> Expr:
        nm = names(v)
        out.append((nm, Build(val.size, k, e)))
        return Get(Var(nm), Var(k))
    body = walk(val.body)
    return out + [(v, Build(val.size, k, body) if out else val)]


class _Chain:
    """A fold body ``let v1 = e1; ...; vK = eK in core`` read as straight-line code, and its
    vector-Jacobian products built binding by binding (reverse mode over the lets): with the
    cotangent ``c`` of the core, ``v̄_K = ∇_{vK} <core, c>``, ..., and for every binding the
    contributions ``∇_u <e_b, v̄_b>`` to the variables ``u`` it reads (the state, earlier
    bindings, ``wrt``).  Each contribution is an ordinary forward-mode gradient of one binding
    (:func:`grad_reverse`, so a fold inside a binding is transposed in turn), which one-hot
    folding makes a VJP of that binding alone -- instead of one gradient of the whole body,
    whose one-hots sit in nested products of the stages (an RK4 step: k4 reads y3 reads k3 ...)
    and which the optimiser does not collapse."""

    def __init__(self, prog: Program, env: dict, la: str, li: str, h_t: Type, body: Expr,
                 names: _Names, always: bool):
        from ..lang.typecheck import type_of
        self.ok = False
        binds: list[tuple[str, Expr]] = []
        e = body
        while isinstance(e, Let):
            binds += _split_map(e.name, e.value, names) if SPLIT else [(e.name, e.value)]
            e = e.body
        self.core = e
        if not binds:
            return
        taken = set(env) | {la, li}
        self.env = {**env, la: h_t, li: INDEX}
        self.types: dict[str, Type] = {}
        self.fresh: dict[str, str] = {}
        self.named: dict[str, Type] = {la: h_t}
        self.diff: set[str] = {la}
        for v, val in binds:
            if v in taken:                        # a let shadowing a name: not a plain chain
                return
            taken.add(v)
            t = type_of(val, self.env)
            self.env[v] = t
            self.types[v] = t
            if _state_ok(t):
                self.diff.add(v)
            elif _has_real(t):                    # a real inside a pair with an index, ...
                return
            self.named[v] = _with_sizes(t, names, self.fresh)
        self.core_t = type_of(self.core, self.env)
        self.binds, self.prog, self.la, self.li, self.h_t = binds, prog, la, li, h_t
        self.names, self.always = names, always
        self.ok = True

    def terms(self):
        """(expression, its type (named), the name of its cotangent or None for the core)."""
        yield self.core, self.h_t, None
        for v, val in reversed(self.binds):
            yield val, self.named[v], v

    def reads_fold(self, wrt: str) -> bool:
        """Does a binding (or the core) that reads ``wrt`` contain a fold?"""
        from ..lang.ast import iter_nodes
        return any(wrt in free_vars(e) and any(type(x) in (IFold, Scan) for x in iter_nodes(e))
                   for e, _, _ in self.terms())

    def _piece(self, term: Expr, term_t: Type, cot: Expr, u: str) -> Expr:
        """``∇_u <term, cot>``: ``grad_reverse`` of a program whose parameters are the
        program's, the state, the step index, the bindings ``term`` reads and the cotangent;
        inlined (its parameters read the enclosing lets of the same names)."""
        names = self.names
        cn = names("ct")
        fv = free_vars(term)
        own = [(self.la, self.h_t), (self.li, INDEX)] + [(v, self.named[v]) for v, _ in self.binds]
        mine = [Param(v, t) for v, t in own if v in fv or v == u] + [Param(cn, term_t)]
        params = _params_read(self.prog.params, fv, {u}, mine) + mine[:-1]
        params.append(Param(cn, term_t))
        args: dict[str, Expr] = {cn: cot}
        args.update(_size_args(term_t, self.fresh, cot))
        for v, t in own:
            if v in fv or v == u:
                args.update(_size_args(t, self.fresh, Var(v)))
        body = _dot(term, Var(cn), term_t, names)
        if u in {p.name for p in self.prog.params}:
            q = Program(tuple(params), body)
            names.add(q)
            return _inline(_tidy_vjp(q, grad_reverse(q, u, self.always)), args)
        t = next(t for v, t in own if v == u)
        rest = tuple(p for p in params if p.name != u)
        names.add(Program(tuple(params), body))
        return _grad_state(rest, body, u, t, Var(u), {k: x for k, x in args.items() if k != u},
                           names, self.always, _tidy_vjp)

    def _pieces(self, term: Expr, term_t: Type, cot: Expr, us: list[str]) -> dict[str, Expr]:
        """``∇_u <term, cot>`` for every ``u`` of ``us``, in one program (:func:`grad_reverse`
        of several names, optimised as one by :func:`_tidy`): what the pieces have in common
        -- the gates of an LSTM cell, recomputed from the stored state -- is computed once, and
        a binding that contains a fold (the LSTM's layers) is transposed once for all of them
        (:func:`_shared`: its states and adjoints shared)."""
        if len(us) < 2:
            return {u: self._piece(term, term_t, cot, u) for u in us}
        names = self.names
        cn = names("ct")
        fv = free_vars(term)
        own = [(self.la, self.h_t), (self.li, INDEX)] + [(v, self.named[v]) for v, _ in self.binds]
        params = _params_read(self.prog.params, fv, set(us),
                              [Param(v, t) for v, t in own if v in fv or v in us] + [Param(cn, term_t)])
        args: dict[str, Expr] = {cn: cot, **_size_args(term_t, self.fresh, cot)}
        leaves_of: dict[str, list] = {}
        sub: dict[str, Expr] = {}
        for v, t in own:
            if v not in fv and v not in us:
                continue
            args.update(_size_args(t, self.fresh, Var(v)))
            if v in us and len(_leaf_paths(t)) > 1:       # a pair: one parameter per component
                leaves = [(path, lt, names(v)) for path, lt in _leaf_paths(t)]
                leaves_of[v] = leaves
                params += [Param(nm, lt) for _, lt, nm in leaves]
                sub[v] = _tree(t, {path: Var(nm) for path, _, nm in leaves})
                args.update({nm: _project(Var(v), path) for path, _, nm in leaves})
            else:
                params.append(Param(v, t))
        params.append(Param(cn, term_t))
        body = subst_all(_dot(term, Var(cn), term_t, names), sub)
        order = [nm for u in us for nm in ([x[2] for x in leaves_of[u]] if u in leaves_of else [u])]
        q = Program(tuple(params), body)
        names.add(q)
        g = _tidy_vjp(q, grad_reverse(q, order, self.always))
        gn = names("g")
        self.extra_lets.append((gn, _inline(g, args)))
        comp = {nm: _nth(Var(gn), k, len(order)) for k, nm in enumerate(order)}
        out = {}
        for u in us:
            if u in leaves_of:
                t = next(t for v, t in own if v == u)
                out[u] = _tree(t, {path: comp[nm] for path, _, nm in leaves_of[u]})
            else:
                out[u] = comp[u]
        return out

    def taped(self) -> list[str]:
        """The bindings kept on the tape (:meth:`tape`): those of reals (a real, arrays of
        reals, pairs of them) whose sizes are known (a size of the program or a constant: the
        tape is a rectangular array over the steps) and whose value is computed, not a read
        (``(get X t)``, ``(fst s)``: a view, as cheap to take again as to store)."""
        def known(t: Type) -> bool:
            if isinstance(t, PairT):
                return known(t.fst) and known(t.snd)
            if isinstance(t, ArrayT):
                return t.size is not None and known(t.elem)
            return True

        def read(e: Expr) -> bool:
            while type(e) in (Get, Fst, Snd):
                e = e.array if type(e) is Get else e.pair
            return type(e) is Var
        return [v for v, val in self.binds
                if v in self.diff and known(self.types[v]) and not read(val)
                and _no_larger(self.types[v], self.h_t)]

    def tape(self, hs: Expr, n: Expr) -> tuple[Expr, list[str]] | None:
        """The tape: the step's bindings (:meth:`taped`) at every step, one build over the
        steps reading the stored states ``hs`` -- vectorised over the steps, where the backward
        fold recomputed them one step at a time (and the optimiser inlined each binding into
        every piece that reads it, each a copy computed again: an LSTM cell's gates).  The
        backward step reads them off the tape.  None: nothing to keep."""
        taped = self.taped()
        if not taped:
            return None
        k = self.names("k")
        tup: Expr = Var(taped[-1])
        for v in reversed(taped[:-1]):
            tup = Pair(Var(v), tup)
        body = Let(self.la, Get(hs, Var(k)), Let(self.li, Var(k), _lets(self.binds, tup)))
        return Build(n, k, body), taped

    def backward(self, state: Expr, index: Expr, cot: Expr, wrts: Sequence[str] = (),
                 tape: tuple[Expr, list[str]] | None = None):
        """The lets of one backward step at ``state`` (the stored state before the step) and
        ``index``, with ``cot`` the cotangent of the step's result: returns ``(lets, abar,
        xbars)`` -- the lets (the primal bindings read off the ``tape`` -- ``(tape, names)``,
        :meth:`tape` -- or recomputed, then the cotangents of the bindings, last first), the
        state's adjoint ``A_iᵀ cot`` and, for each of ``wrts``, the step's contribution
        ``B_iᵀ cot`` to its gradient (None when no binding reads it)."""
        names = self.names
        primal = list(self.binds)
        if tape is not None:
            tv, taped = tape
            at = {v: _nth(Get(tv, index), k, len(taped)) for k, v in enumerate(taped)}
            primal = [(v, at.get(v, val)) for v, val in primal]
        lets: list[tuple[str, Expr]] = [(self.la, state), (self.li, index)] + primal
        cn = names("c")
        lets.append((cn, cot))
        contrib: dict[str, list[Expr]] = {}
        wterms: dict[str, list[Expr]] = {w: [] for w in wrts}
        for term, term_t, v in self.terms():
            if v is None:
                c = Var(cn)
            else:
                if v not in self.diff or not contrib.get(v):
                    continue
                vb = names("vb")
                lets.append((vb, _add(contrib.pop(v), self.types[v], names)))
                c = Var(vb)
            fv = free_vars(term)
            us = [u for u in [self.la] + [b for b, _ in self.binds] if u in fv and u in self.diff]
            ws = [w for w in wrts if w in fv]
            self.extra_lets = []
            pieces = self._pieces(term, term_t, c, us + ws)
            lets += self.extra_lets
            for u in us:
                contrib.setdefault(u, []).append(pieces[u])
            for w in ws:
                wterms[w].append(pieces[w])
        abar = (_add(contrib[self.la], self.h_t, names) if contrib.get(self.la)
                else _zeros_like(self.h_t, Var(cn), names))
        xbars = {w: _add(ts, self.prog.param(w).type, names) if ts else None for w, ts in wterms.items()}
        return _share_states(lets, names), abar, xbars


def _share_states(lets: list[tuple[str, Expr]], names: _Names) -> list[tuple[str, Expr]]:
    """``lets`` with a primal binding that is a fold whose transposition (in a later let: its
    states ``scan``, the same fold) runs it again computed once: the states ``scan`` bound
    first, the fold's value its last state, the later ``scan`` read from that binding (an LSTM
    step's layers: the backward step ran them twice).  Matched structurally; the later lets
    bind fresh names only, so the ``scan`` reads the same bindings where it stands."""
    from ..lang.ast import iter_nodes
    out: list[tuple[str, Expr]] = []
    for k in range(len(lets)):
        v, val = lets[k]
        if type(val) is IFold:
            scan = Scan(val.acc, val.var, val.body, val.init, val.size)
            if any(type(x) is Scan and x == scan for _, e in lets[k + 1:] for x in iter_nodes(e)):
                hs = names("hs")
                out += [(hs, scan), (v, _last(Var(hs)))]
                lets = lets[:k + 1] + [(u, map_expr(e, lambda x: Var(hs) if type(x) is Scan and x == scan else x))
                                       for u, e in lets[k + 1:]]
                continue
        out.append((v, val))
    return out


def _lets(binds: list[tuple[str, Expr]], body: Expr) -> Expr:
    for name, value in reversed(binds):
        body = Let(name, value, body)
    return body


def _transpose(prog: Program, wrt: str | list, fold: IFold, always: bool, shared_only: bool = False) -> Expr | None:
    """The transposed gradient's body; with a list ``wrt`` (``shared_only``) the gradients of
    every name through one backward fold (right-nested pairs), or None where that does not
    apply (see :func:`_shared`)."""
    from ..lang.typecheck import program_env, type_of
    env = program_env(prog)
    wrts = [wrt] if isinstance(wrt, str) else list(wrt)
    state_t = type_of(fold, env)
    names = _Names(prog)
    sizes: dict[str, str] = {}
    h_t = _with_sizes(state_t, names, sizes)
    a, i, n = fold.acc, fold.var, fold.size
    h, hs, lams = names("h"), names("hs"), names("lam")
    # C: the program with the fold replaced by a parameter h
    c_body = _replace_fold(prog.body, set(env), fold, h)
    pc = Program(prog.params + (Param(h, h_t),), c_body)
    def state_sizes(x: Expr) -> dict[str, Expr]:
        """The fresh size names of the state type, read off a state ``x``."""
        out: dict[str, Expr] = {}

        def walk(t: Type, v: Expr) -> None:
            if isinstance(t, ArrayT):
                if t.size in sizes:
                    out[t.size] = Length(v)
                walk(t.elem, Get(v, Int(0)))
            elif isinstance(t, PairT):
                walk(t.fst, Fst(v))
                walk(t.snd, Snd(v))
        walk(h_t, x)
        return out
    binds: list[tuple[str, Expr]] = [(hs, Scan(a, i, fold.body, fold.init, n)),
                                     (h, _last(Var(hs)))]
    # λ_n = ∇_h C
    lam_n = _grad_state(prog.params, c_body, h, h_t, Var(h), state_sizes(Var(h)), names, always,
                        _ends)
    # the backward recurrence: lam[j] = λ_{n-j};  λ_i = ∇_a <e(a, i), λ_{i+1}> at a = p_i
    la, li, ll = names("a"), names("i"), names("l")
    j, lv = names("j"), names("l")
    back_i = Prim("-", (Prim("-", (n, Int(1))), Var(j)))
    chain = _Chain(prog, env, la, li, h_t, subst_all(fold.body, {a: Var(la), i: Var(li)}), names, always)
    # the step's contributions to the gradient accumulated in the backward fold itself (a
    # pair state (λ, x̄)) where wrt is no larger than the state -- an O(|wrt|) addition per
    # step then costs no more than the step -- or where a binding that reads wrt is itself a
    # fold (a sum over the steps of its transposed gradient is not a one-hot sum)
    reading = [w for w in wrts if w in free_vars(fold.body)]
    acc_ok = {w: chain.ok and (chain.reads_fold(w) or not _fewer_components(h_t, prog.param(w).type))
              for w in reading}
    if shared_only:
        if not chain.ok or not all(acc_ok.values()):
            return None
    terms_of: dict[str, list[Expr]] = {w: [] for w in wrts}
    for w in wrts:
        if w in free_vars(c_body):
            terms_of[w].append(_inline(_ends(pc, grad_reverse(pc, w, always)), state_sizes(Var(h))))
    wrt = wrts[0]
    terms = terms_of[wrt]
    body_reads = wrt in free_vars(fold.body)
    accumulate = bool(reading) and all(acc_ok.values())
    tape = None
    if chain.ok and TAPE:
        t = chain.tape(Var(hs), n)
        if t is not None:
            tn = names("tape")
            binds.append((tn, t[0]))
            tape = (Var(tn), t[1])
    if accumulate:
        back = names("back")
        lets, abar, xbars = chain.backward(Get(Var(hs), back_i), back_i, Fst(Var(lv)), reading, tape)
        new_xs, zeros, reads = [], [], []
        for k, w in enumerate(reading):           # the accumulators: right-nested pairs
            acc_x = _nth(Snd(Var(lv)), k, len(reading))
            w_t = prog.param(w).type
            new_xs.append(acc_x if xbars[w] is None else _add([acc_x, xbars[w]], w_t, names))
            zeros.append(_zeros_like(w_t, Var(w), names))
            reads.append(_nth(Snd(Var(back)), k, len(reading)))
        nest = lambda xs: xs[0] if len(xs) == 1 else Pair(xs[0], nest(xs[1:]))   # noqa: E731
        step = _lets(lets, Pair(abar, nest(new_xs)))
        binds.append((back, IFold(lv, j, step, Pair(lam_n, nest(zeros)), n)))
        lam_0: Expr = Fst(Var(back))
        for w, r in zip(reading, reads):
            terms_of[w].append(r)
    else:
        if chain.ok:
            lets, abar, _ = chain.backward(Get(Var(hs), back_i), back_i, Var(lv), (), tape)
            step_body = _lets(lets, abar)
        else:
            # optimised on its own (_tidy_vjp), as a binding's VJP is: in the e-graph of the whole
            # program the one-hots of a matrix state's step (det's elimination) were not folded
            step_body = _grad_state(prog.params + (Param(ll, h_t), Param(li, INDEX)),
                                    _dot(subst_all(fold.body, {a: Var(la), i: Var(li)}), Var(ll), h_t, names),
                                    la, h_t, Get(Var(hs), back_i),
                                    {ll: Var(lv), li: back_i, **state_sizes(Var(lv))}, names, always, _tidy_vjp)
        binds.append((lams, Scan(lv, j, step_body, lam_n, n)))
        lam_0 = _last(Var(lams))
    # ∇x: through C directly, through every step's body, through the initial value
    hs_t = ArrayT(h_t, names("s"))
    if body_reads and not accumulate:
        ps, pl, k = names("hs"), names("lam"), names("i")    # (k: n cannot mention it)
        adj = Get(Var(pl), Prim("-", (Prim("-", (n, Int(1))), Var(k))))
        body = _dot(subst_all(fold.body, {a: Get(Var(ps), Var(k)), i: Var(k)}), adj, h_t, names)
        pb = Program(prog.params + (Param(ps, hs_t), Param(pl, hs_t)), Sum(n, k, body))
        names.add(pb)
        gb = _ends(pb, grad_reverse(pb, wrt, always))
        terms.append(_inline(gb, {ps: Var(hs), pl: Var(lams), hs_t.size: Length(Var(hs)),
                                  **state_sizes(Get(Var(hs), Int(0)))}))
    outs = []
    for w in wrts:
        if w in free_vars(fold.init):
            l0 = names("lam0")
            pz = Program(prog.params + (Param(l0, h_t),), _dot(fold.init, Var(l0), h_t, names))
            names.add(pz)
            terms_of[w].append(_inline(_ends(pz, grad_reverse(pz, w, always)), {l0: lam_0, **state_sizes(lam_0)}))
        if not terms_of[w]:    # pragma: no cover - transposable_fold requires wrt free in the fold
            raise ADError(f"the fold does not depend on {w!r}")
        outs.append(_add(terms_of[w], prog.param(w).type, names))
    out = outs[-1]
    for x in reversed(outs[:-1]):
        out = Pair(x, out)
    for name, value in reversed(binds):
        out = Let(name, value, out)
    return out


"""Derivative programs: ``jvp``, ``derivative`` (dF~'s ``deriv``), ``grad`` and ``jacobian``.

Each function takes a :class:`~eqsat_ad.lang.ast.Program` and returns a new, ordinary
``Program`` (it prints, parses, type-checks and evaluates like any other).  The programs are
the *naive* dual-number programs: a gradient w.r.t. a ``(vec n)`` runs the dual program
once per input direction (O(n^2) work); the e-graph optimiser brings them back to O(n).

>>> from eqsat_ad.lang.ast import Program, Param, Sum, Var, Get, Prim, Length
>>> from eqsat_ad.lang.types import vec
>>> x = Var("x")
>>> sumsq = Program((Param("x", vec("n")),),
...                 Sum(Var("n"), "i", Prim("*", (Get(x, Var("i")), Get(x, Var("i"))))))
>>> g = grad(sumsq, "x")
>>> [p.name for p in g.params]
['x']
>>> [p.name for p in jvp(sumsq, "x").params]
['x', 'dx']
"""
from __future__ import annotations

from typing import Iterable, Sequence

from ..errors import ADError
from ..lang.ast import (Build, Expr, Fst, Get, Int, Length, Let, Num, Pair, Param, Prim,
                        Program, Snd, Var)
from ..lang.binders import all_names, call_deep
from ..lang.types import REAL, ArrayT, PairT, RealT, Type, show_type, size_names
from .dual import DUAL_SUFFIX, Dualizer, NameSupply, _cheap, has_tangent

__all__ = ["jvp", "derivative", "grad", "jacobian", "dual_program", "prepare"]

ONE, ZERO = Num(1.0), Num(0.0)


# --------------------------------------------------------------------------------------
# preparation: type-check and elaborate (coercions explicit) when the checker is available
# --------------------------------------------------------------------------------------
def prepare(prog: Program) -> Program:
    """Type-check ``prog`` and make its coercions explicit (``elaborate``).

    Raises :class:`~eqsat_ad.errors.TypeCheckError` for an ill-typed program.
    """
    if not isinstance(prog, Program):
        raise ADError(f"expected a Program, got {type(prog).__name__}")
    try:
        from ..lang import typecheck
    except ImportError:          # pragma: no cover - during bring-up only
        return prog
    elaborate = getattr(typecheck, "elaborate", None)
    if elaborate is not None:
        prog = elaborate(prog)
    else:                        # pragma: no cover
        typecheck.check_program(prog)
    return prog


def _names_of(prog: Program) -> NameSupply:
    used = set(all_names(prog.body))
    for p in prog.params:
        used.add(p.name)
        used.update(size_names(p.type))
    return NameSupply(used)


def _param_env(prog: Program) -> dict[str, Type]:
    from ..lang.types import SIZE
    env: dict[str, Type] = {}
    for p in prog.params:
        for n in size_names(p.type):
            env.setdefault(n, SIZE)
    for p in prog.params:
        env[p.name] = p.type
    return env


def _size_expr(size, fallback: Expr) -> Expr:
    if isinstance(size, str):
        return Var(size)
    if isinstance(size, int) and not isinstance(size, bool):
        return Int(size)
    return fallback


# --------------------------------------------------------------------------------------
# seeds: dual values for the parameters
# --------------------------------------------------------------------------------------
def _zip_seed(x: Expr, t: Type, tangent, names: NameSupply, path: tuple = ()) -> Expr:
    """The dual value of ``x : t`` whose tangent at index path ``path`` is ``tangent(path)``.

    Arrays become ``build n (λk. ...)`` over ``get x k``; pairs are handled per component.
    """
    if isinstance(t, RealT):
        return Pair(x, tangent(path))
    if isinstance(t, ArrayT):
        k = names.fresh("k")
        body = _zip_seed(Get(x, Var(k)), t.elem, tangent, names, path + (Var(k),))
        return Build(_size_expr(t.size, Length(x)), k, body)
    if isinstance(t, PairT):
        return Pair(_zip_seed(Fst(x), t.fst, lambda p: tangent(p + ("fst",)), names, path),
                    _zip_seed(Snd(x), t.snd, lambda p: tangent(p + ("snd",)), names, path))
    return x


def _zero_seed(x: Expr, t: Type, names: NameSupply) -> Expr:
    """``(y, 0.0)`` for a real, zipped zeros for arrays; index/size values are unchanged."""
    return _zip_seed(x, t, lambda path: ZERO, names)


def _one_hot(path: tuple, dirs: tuple[str, ...]) -> Expr:
    """``if k = r then 1.0 else 0.0`` (``(and (= k r) (= l c) ...)``, one test per axis, for
    arrays of rank 2 and more)."""
    from .loopnest import _guard
    return _guard([Prim("=", (k, Var(r))) for k, r in zip(path, dirs)], ONE)


# --------------------------------------------------------------------------------------
# reading tangents (and primals) out of a dual result
# --------------------------------------------------------------------------------------
def _part(de: Expr, t: Type, which: str, names: NameSupply) -> Expr:
    """The primal (``which="fst"``) or tangent (``"snd"``) part of a dual value of primal type t."""
    if isinstance(t, RealT):
        if isinstance(de, Pair):
            return de.fst if which == "fst" else de.snd
        return Fst(de) if which == "fst" else Snd(de)
    if not has_tangent(t):
        if which == "snd":
            raise ADError(f"a value of type {show_type(t)} has no tangent")
        return de
    if isinstance(t, ArrayT):
        if not _cheap(de):
            name = names.fresh("y" + DUAL_SUFFIX)
            return Let(name, de, _part(Var(name), t, which, names))
        j = names.fresh("j")
        return Build(Length(de), j, _part(Get(de, Var(j)), t.elem, which, names))
    if isinstance(t, PairT):
        if isinstance(de, Pair):
            return Pair(_part(de.fst, t.fst, which, names), _part(de.snd, t.snd, which, names))
        if not _cheap(de):
            name = names.fresh("y" + DUAL_SUFFIX)
            return Let(name, de, _part(Var(name), t, which, names))
        return Pair(_part(Fst(de), t.fst, which, names), _part(Snd(de), t.snd, which, names))
    raise ADError(f"cannot take the {which} part of type {show_type(t)}")


def _tangent_type_ok(t: Type) -> bool:
    """Every leaf is real (so the output has a tangent everywhere)."""
    if isinstance(t, RealT):
        return True
    if isinstance(t, ArrayT):
        return _tangent_type_ok(t.elem)
    if isinstance(t, PairT):
        return _tangent_type_ok(t.fst) and _tangent_type_ok(t.snd)
    return False


# --------------------------------------------------------------------------------------
# the core: D[[body]] under seeds
# --------------------------------------------------------------------------------------
def dual_program(prog: Program, seeds: dict[str, Expr] | None = None,
                 names: NameSupply | None = None) -> tuple[Expr, Type, dict[str, str], NameSupply]:
    """D[[body]] of ``prog``: returns ``(dual body, primal output type, dual names, names)``.

    ``dual_names[x]`` is the name the dual body uses for parameter ``x`` (parameters without
    a tangent keep their names).  The caller binds the dual names (``let x_d = seed in ...``).
    """
    names = names or _names_of(prog)
    env_types = _param_env(prog)
    dual_names: dict[str, str] = {}
    env = {}
    for x, t in env_types.items():
        dual_names[x] = names.fresh(x + DUAL_SUFFIX) if has_tangent(t) else x
        env[x] = (t, dual_names[x])
    body, out_t = call_deep(Dualizer(names).expr, prog.body, env, what="program")
    return body, out_t, dual_names, names


def _array_rank_of_reals(t: Type) -> int | None:
    """The rank of ``t`` when it is real (0) or an array of any rank of reals, else None."""
    rank = 0
    while isinstance(t, ArrayT):
        t, rank = t.elem, rank + 1
    return rank if isinstance(t, RealT) else None


def _check_wrt(prog: Program, wrt: str, max_rank: int | None = None) -> Type:
    """The type of parameter ``wrt``: real or an array of reals of any rank (at most
    ``max_rank``); one input direction per real of it."""
    if not isinstance(wrt, str):
        raise ADError(f"wrt must be a parameter name, got {wrt!r}")
    try:
        t = prog.param(wrt).type
    except KeyError:
        have = ", ".join(p.name for p in prog.params) or "none"
        raise ADError(f"unknown parameter {wrt!r} to differentiate with respect to "
                      f"(parameters: {have})") from None
    rank = _array_rank_of_reals(t)
    if rank is None or (max_rank is not None and rank > max_rank):
        expected = ("real or an array of reals (vec, mat, (array (mat m n) k), ...)" if max_rank is None
                    else "real or vec")
        raise ADError(f"cannot differentiate with respect to {wrt!r} of type {show_type(t)}: "
                      f"expected {expected}")
    return t


def _bind_seeds(prog: Program, dual_names: dict[str, str], seeds: dict[str, Expr],
                names: NameSupply, skip: Iterable[str] = ()) -> list[tuple[str, Expr]]:
    """``[(x_d, seed)]`` for every parameter with a tangent: ``seeds[x]`` or a zero seed."""
    out = []
    for p in prog.params:
        if p.name in skip or not has_tangent(p.type):
            continue
        seed = seeds.get(p.name)
        if seed is None:
            seed = _zero_seed(Var(p.name), p.type, names)
        out.append((dual_names[p.name], seed))
    return out


def _lets(binds: list[tuple[str, Expr]], body: Expr) -> Expr:
    for name, value in reversed(binds):
        body = Let(name, value, body)
    return body


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------
def jvp(prog: Program, wrt: str | Sequence[str], tangent: str | Sequence[str] | None = None,
        with_primal: bool = False) -> Program:
    """Directional derivative (Jacobian-vector product) as a program.

    Adds one parameter per ``wrt`` (default name ``d<wrt>``, same type) holding the
    direction; the result is the tangent of the output (same type as the output), or
    ``(pair value tangent)`` with ``with_primal=True``.

    >>> from eqsat_ad.lang.ast import Program, Param, Var, Prim
    >>> f = Program((Param("x", REAL),), Prim("sin", (Var("x"),)))
    >>> str(jvp(f, "x")).split()[:3]
    ['(fun', '((x', 'real)']
    """
    prog = prepare(prog)
    wrts = [wrt] if isinstance(wrt, str) else list(wrt)
    if not wrts:
        raise ADError("jvp needs at least one parameter to differentiate with respect to")
    if len(set(wrts)) != len(wrts):
        raise ADError(f"repeated parameter in wrt: {wrts}")
    if tangent is None:
        tangents = [None] * len(wrts)
    else:
        tangents = [tangent] if isinstance(tangent, str) else list(tangent)
        if len(tangents) != len(wrts):
            raise ADError("give one tangent name per wrt parameter")
    types = [_check_wrt(prog, w) for w in wrts]
    names = _names_of(prog)
    dir_names = []
    for w, tn in zip(wrts, tangents):
        if tn is None:
            tn = names.fresh("d" + w)
        elif tn in names.used:
            raise ADError(f"tangent parameter name {tn!r} is already used in the program")
        names.used.add(tn)
        dir_names.append(tn)
    body, out_t, dual_names, names = dual_program(prog, names=names)
    if not with_primal and not has_tangent(out_t):
        raise ADError(f"the program returns {show_type(out_t)}, which has no tangent")
    seeds = {}
    for w, t, dn in zip(wrts, types, dir_names):
        seeds[w] = _zip_seed(Var(w), t, lambda path, dn=dn: _index(Var(dn), path), names)
    binds = _bind_seeds(prog, dual_names, seeds, names)
    if with_primal:
        if not _cheap(body):
            res = names.fresh("res" + DUAL_SUFFIX)
            binds.append((res, body))
            body = Var(res)
        out = Pair(_part(body, out_t, "fst", names), _part(body, out_t, "snd", names))
    else:
        out = _part(body, out_t, "snd", names)
    params = prog.params + tuple(Param(dn, t) for dn, t in zip(dir_names, types))
    return Program(params, _lets(binds, out))


def _index(x: Expr, path: tuple) -> Expr:
    for k in path:
        x = Fst(x) if k == "fst" else Snd(x) if k == "snd" else Get(x, k)
    return x


def _several(fn, prog: Program, wrt) -> Program | None:
    """``fn`` for each name of a sequence ``wrt``: the results as right-nested pairs."""
    if isinstance(wrt, str):
        return None
    wrts = list(wrt)
    if not wrts or len(set(wrts)) != len(wrts) or not all(isinstance(w, str) for w in wrts):
        raise ADError(f"wrt must be a parameter name or a sequence of distinct names, got {wrt!r}")
    parts = [fn(prog, w) for w in wrts]
    body = parts[-1].body
    for part in reversed(parts[:-1]):
        body = Pair(part.body, body)
    return Program(parts[0].params, body)


def derivative(prog: Program, wrt: str | Sequence[str]) -> Program:
    """dF~'s ``deriv``: the tangent of the output for every input direction of ``wrt``.

    Seeds are type-directed: ``wrt : real`` gets ``(x, 1.0)``; ``wrt : (vec n)`` gives
    ``build n (λr. <tangent with x_d = build n (λk. (x[k], if k = r then 1.0 else 0.0))>)``;
    ``(mat m n)`` two nested builds with a matrix one-hot, and so on for any rank (an array
    of matrices: three).  Every other parameter gets a zero
    seed.  Result shape = shape(wrt) + shape(output).  With a sequence of names, the
    derivatives w.r.t. each, as (right-nested) pairs.

    >>> from eqsat_ad.lang.ast import Program, Param, Var, Prim
    >>> f = Program((Param("x", REAL),), Prim("*", (Var("x"), Var("x"))))
    >>> derivative(f, "x").body
    Let(name='x_d', value=Pair(fst=Var(name='x'), snd=Num(value=1.0)), body=Prim(op='+', args=(Prim(op='*', args=(Snd(pair=Var(name='x_d')), Fst(pair=Var(name='x_d')))), Prim(op='*', args=(Fst(pair=Var(name='x_d')), Snd(pair=Var(name='x_d')))))))
    """
    several = _several(derivative, prog, wrt)
    if several is not None:
        return several
    prog = prepare(prog)
    t = _check_wrt(prog, wrt)
    body, out_t, dual_names, names = dual_program(prog)
    if not has_tangent(out_t):
        raise ADError(f"the program returns {show_type(out_t)}, which has no tangent")
    x = Var(wrt)
    # input directions: one index per axis of wrt (r, then c, c_1, ... for rank 2 and more)
    dirs: list[tuple[str, Expr]] = []
    level_t: Type = t
    level_x: Expr = x
    while isinstance(level_t, ArrayT):
        r = names.fresh("r" if not dirs else "c")
        dirs.append((r, _size_expr(level_t.size, Length(level_x))))
        level_x = Get(level_x, Var(r))
        level_t = level_t.elem
    dir_names = tuple(r for r, _ in dirs)
    seed = _zip_seed(x, t, lambda path: _one_hot(path, dir_names), names)
    outer = _bind_seeds(prog, dual_names, {}, names, skip=(wrt,))
    inner = _lets([(dual_names[wrt], seed)], _part(body, out_t, "snd", names))
    for r, size in reversed(dirs):
        inner = Build(size, r, inner)
    return Program(prog.params, _lets(outer, inner))


GRAD_MODES = ("auto", "forward", "reverse")


def grad(prog: Program, wrt: str | Sequence[str], mode: str = "auto") -> Program:
    """Gradient of a real-valued program: a program with the type of ``wrt``.

    ``mode="forward"`` is dF~'s ``grad`` (``derivative`` with a real output): the naive O(n^2)
    program, one dual-number pass per input direction.  ``mode="reverse"`` transposes the
    sequential folds the gradient goes through (:mod:`eqsat_ad.ad.transpose`: states by a
    ``scan``, adjoints by a backward ``scan``), where one pass per direction would cost
    (number of directions) x (the fold).  ``"auto"`` (the default) is ``"forward"`` for a
    real ``wrt`` (a single direction is already as cheap as the function) and for a fold
    whose state has as many components as ``wrt`` has directions, unless the fold's body is
    a chain of lets (an RK4 step's stages, an LSTM cell's gates: its adjoint step is then
    built binding by binding, see :func:`eqsat_ad.ad.transpose._straight_line`) or its
    result is read by another sequential fold (:func:`eqsat_ad.ad.transpose._feeds_fold`);
    ``"reverse"`` otherwise.  A program without folds, pairs or array-valued ``if`` is
    differentiated by reverse mode over its loop nests (:mod:`eqsat_ad.ad.loopnest`) with
    ``mode="reverse"``, and in ``"auto"`` mode where a parameter taken is a matrix or of
    higher rank (:func:`_by_loopnest`).
    ``grad(prog, ["x", "w"])`` returns ``(pair grad_x grad_w)``.

    >>> from eqsat_ad.lang.ast import Program, Param, Var, Prim, Pair
    >>> f = Program((Param("x", REAL),), Pair(Var("x"), Var("x")))
    >>> grad(f, "x")
    Traceback (most recent call last):
    ...
    eqsat_ad.errors.ADError: grad needs a program returning real; this one returns (pair real real) (use jacobian or derivative)
    """
    if mode not in GRAD_MODES:
        raise ADError(f"grad mode must be one of {', '.join(GRAD_MODES)}; got {mode!r}")
    if (mode != "forward" and not isinstance(wrt, str) and all(isinstance(w, str) for w in wrt)
            and len(set(wrt)) == len(wrt) > 1):
        # several names through one fold: one transposition for all (transpose._shared)
        from .transpose import _shared
        p0 = prepare(prog)
        if isinstance(_output_type(p0), RealT) and (
                mode == "reverse" or all(isinstance(_check_wrt(p0, w), ArrayT) for w in wrt)):
            shared = _shared(p0, wrt, always=mode == "reverse")
            if shared is not None:
                return shared
    g = _by_loopnest(prog, wrt, mode) if mode != "forward" else None
    if g is not None:
        return g
    several = _several(lambda p, w: grad(p, w, mode), prog, wrt)
    if several is not None:
        return several
    prog = prepare(prog)
    t = _check_wrt(prog, wrt)
    out_t = _output_type(prog)
    if not isinstance(out_t, RealT):
        raise ADError(f"grad needs a program returning real; this one returns {show_type(out_t)} "
                      f"(use jacobian or derivative)")
    if mode == "reverse" or (mode == "auto" and isinstance(t, ArrayT)):
        from .elementwise import feedback_depth, grad_elementwise
        if feedback_depth(prog, wrt) >= 2:        # reductions feeding back through layers
            g = grad_elementwise(prog, wrt)
            if g is not None:
                return g
        from .transpose import grad_reverse
        return grad_reverse(prog, wrt, always=mode == "reverse")
    return derivative(prog, wrt)


def _by_loopnest(prog: Program, wrt, mode: str = "auto") -> Program | None:
    """The gradient ``grad`` takes by reverse mode over loop nests (:mod:`eqsat_ad.ad.loopnest`),
    or None where it takes another: tried always for ``mode="reverse"``, in ``"auto"`` mode
    where a parameter has rank 2 or
    more (a weight matrix, a batch of matrices): one-hot folding must then collapse one-hot
    matrices through every layer that reads them, which it does not where a parameter is
    read at a computed index (GradBench gmm's packed triangle) or several matrices are taken
    at once -- and reverse mode is O(f) by construction.  Vectors keep their forward-mode
    gradient, which the rules make O(f) (and whose stencil forms the backend runs fastest);
    None also where the program has a form loop-nest reverse mode does not handle."""
    from .loopnest import grad_loopnest
    if mode != "reverse":
        names = [wrt] if isinstance(wrt, str) else list(wrt)
        if not all(isinstance(w, str) for w in names):
            return None
        types = {q.name: q.type for q in prepare(prog).params}
        if not any(isinstance(t, ArrayT) and isinstance(t.elem, ArrayT) for t in map(types.get, names)):
            return None
    return grad_loopnest(prog, wrt)


def jacobian(prog: Program, wrt: str) -> Program:
    """Jacobian of a program returning ``(vec m)``: a ``(mat m n)`` for ``wrt : (vec n)``
    (rows = outputs), a ``(vec m)`` for ``wrt : real``.  Written as a transpose-by-build of
    :func:`derivative`: ``let d = <derivative> in build m (λi. build n (λj. d[j][i]))``.

    For a real-valued program this is the gradient.
    """
    prog = prepare(prog)
    out_t = _output_type(prog)
    if isinstance(out_t, RealT):
        return derivative(prog, wrt)
    t = _check_wrt(prog, wrt, max_rank=1)
    if not (isinstance(out_t, ArrayT) and out_t.elem == REAL):
        raise ADError(f"jacobian needs a program returning real or (vec m); this one returns "
                      f"{show_type(out_t)} (use derivative)")
    d = derivative(prog, wrt)
    if isinstance(t, RealT):
        return d
    names = _names_of(d)
    dname = names.fresh("jac")
    dv = Var(dname)
    i, j = names.fresh("i"), names.fresh("j")
    m = _size_expr(out_t.size, Length(Get(dv, Int(0))))
    n = _size_expr(t.size, Length(dv))
    body = Let(dname, d.body, Build(m, i, Build(n, j, Get(Get(dv, Var(j)), Var(i)))))
    return Program(d.params, body)


def _output_type(prog: Program) -> Type:
    try:
        from ..lang.typecheck import check_program
    except ImportError:          # pragma: no cover - during bring-up only
        return dual_program(prog)[1]
    return check_program(prog)

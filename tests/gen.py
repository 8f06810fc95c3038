"""Hypothesis strategies for random *well-typed* programs of the array language, with inputs.

Used by tests that compare two ways of running a program (interpreter vs NumPy backend,
original vs optimised), derivatives against finite differences, and rewrite-rule fuzzing.

Usage::

    from hypothesis import given, settings
    from tests.gen import programs, real_programs_of_vector, expressions

    @settings(max_examples=100, deadline=None)
    @given(programs())                       # (Program, {"x": ndarray, "w": float, ...})
    def test_backend_agrees(case):
        prog, inputs = case
        assert np.allclose(ea.compile(prog)(**inputs), ea.evaluate(prog, **inputs))

    @given(programs(real_result=True, smooth=True))     # scalar result, no if/comparisons
    def test_grad_matches_fd(case): ...

    @given(real_programs_of_vector())        # f : (vec n) -> real, inputs {"x": ndarray}
    def test_grad_vector(case): ...

Options of :func:`programs`:

* ``real_result=True``: the body is a scalar ``real`` (for gradients);
* ``smooth=True``: no ``if`` and no comparisons (differentiable everywhere; for finite
  differences);
* ``max_depth``: nesting budget (default 4; 2–3 gives small, fast programs);
* ``params``: a fixed parameter list (tuple of ``Param``) instead of a random one;
* ``sizes``: fixed sizes, e.g. ``{"n": 3, "m": 2}`` (default: each drawn in 1..4).

What the programs contain: real arithmetic, ``neg sin cos tanh`` anywhere; ``exp log sqrt
tan pow /`` only in safe shapes (``(exp (tanh e))``, ``(exp (neg (* e e)))``,
``(log (+ 1.0 (* e e)))``, ``(sqrt (+ 1.0 (* e e)))``, ``(tan (* 0.5 (tanh e)))``,
``(pow (+ 1.0 (* e e)) c)``, ``(/ e (+ 1.0 (* d d)))``); ``build``/``sum``/``ifold`` over
size names or ``(length a)`` (nested loops, reductions, vector accumulators), ``get`` with
indices that are always in range (a loop variable over the same size, or an ``Int``
literal smaller than the drawn size), ``length``, ``let`` (names are sometimes reused, so
shadowing happens), ``if`` on comparisons (including one-hot tests ``(= i j)``), pairs with
``fst``/``snd``, index-to-real casts and ``Int`` literals in real contexts.  Inputs are
float64 arrays with entries in [-2, 2]; scalars are Python floats.

Programs are only guaranteed in range for the drawn sizes (an ``Int`` index literal is
smaller than the drawn size), and for larger ones.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from eqsat_ad.lang.ast import (Build, Expr, Fst, Get, If, IFold, Int, Length, Let, Num, Pair,  # noqa: F401
                               Param, Prim, Program, Snd, Sum, Var)
from eqsat_ad.lang.types import REAL, ArrayT, PairT, Type, mat, size_names, vec

__all__ = ["programs", "real_programs_of_vector", "expressions", "inputs_for", "param_sets",
           "tiny_eval", "program_env_values"]

_LITERALS = (1.0, 0.5, 2.0, -1.0, -0.5, 1.5, 3.0, 0.25)
_INDEX_NAMES = ("i", "j", "k", "r")
_ACC_NAMES = ("acc", "s")
_LET_NAMES = ("a", "b", "c", "t")


class _Ctx:
    """What is in scope: typed variables, loop index variables (with the size they range
    over), and the concrete sizes (for in-range index literals)."""

    def __init__(self, values: dict[str, Type], indices: dict[str, object], sizes: dict):
        self.values, self.indices, self.sizes = values, indices, sizes

    def bind_value(self, name: str, t: Type) -> "_Ctx":
        v = dict(self.values)
        v[name] = t
        ix = {k: s for k, s in self.indices.items() if k != name}
        return _Ctx(v, ix, self.sizes)

    def bind_index(self, name: str, size) -> "_Ctx":
        v = {k: t for k, t in self.values.items() if k != name}
        ix = dict(self.indices)
        ix[name] = size
        return _Ctx(v, ix, self.sizes)

    def concrete(self, s) -> int:
        return s if isinstance(s, int) else self.sizes[s]


class _Gen:
    def __init__(self, draw, smooth: bool):
        self.draw, self.smooth = draw, smooth

    # -- helpers -----------------------------------------------------------------------
    def pick(self, options: list):
        return options[self.draw(st.integers(0, len(options) - 1))]

    def lit(self) -> Expr:
        return Num(self.pick(list(_LITERALS)))

    def size_names(self, ctx: _Ctx) -> list:
        return [s for s in ctx.sizes if isinstance(s, str) and s in ctx.values] or [3]

    def size_expr(self, s, ctx: _Ctx) -> Expr:
        """An expression for size ``s``: the size name, ``(length a)``, or an Int."""
        if isinstance(s, int):
            return Int(s)
        opts: list[Expr] = [Var(s)]
        for name, t in sorted(ctx.values.items()):
            if isinstance(t, ArrayT):
                if t.size == s:
                    opts.append(Length(Var(name)))
                if isinstance(t.elem, ArrayT) and t.elem.size == s:
                    opts.append(Length(Get(Var(name), Int(0))))
        return self.pick(opts)

    def index(self, s, ctx: _Ctx) -> Expr:
        """An index certainly in range for arrays of size ``s``."""
        opts: list[Expr] = [Var(n) for n, sz in sorted(ctx.indices.items()) if sz == s]
        opts = opts * 3 + [Int(k) for k in range(min(ctx.concrete(s), 3))]
        return self.pick(opts)

    def pos(self, ctx: _Ctx, d: int) -> Expr:
        """A real expression that is >= 1: ``(+ 1.0 (* e e))``."""
        e = self.real(ctx, d - 1)
        return Prim("+", (Num(1.0), Prim("*", (e, e))))

    # -- by type -----------------------------------------------------------------------
    def gen(self, t: Type, ctx: _Ctx, d: int) -> Expr:
        if t == REAL:
            return self.real(ctx, d)
        if isinstance(t, ArrayT):
            return self.array(t, ctx, d)
        if isinstance(t, PairT):
            return self.pair(t, ctx, d)
        raise ValueError(f"cannot generate {t}")

    def wrappers(self, t: Type, ctx: _Ctx, d: int) -> list:
        """Forms that produce any type ``t``: let, if, fst/snd of a pair, ifold."""
        out = [lambda: self.let(t, ctx, d), lambda: self.ifold(t, ctx, d),
               lambda: Fst(Pair(self.gen(t, ctx, d - 1), self.real(ctx, 0))),
               lambda: Snd(Pair(self.real(ctx, 0), self.gen(t, ctx, d - 1)))]
        if not self.smooth:
            out.append(lambda: If(self.cond(ctx, d - 1), self.gen(t, ctx, d - 1),
                                  self.gen(t, ctx, d - 1)))
        return out

    def let(self, t: Type, ctx: _Ctx, d: int) -> Expr:
        name = self.pick(list(_LET_NAMES))
        vt = self.value_type(ctx)
        value = self.gen(vt, ctx, d - 1)
        return Let(name, value, self.gen(t, ctx.bind_value(name, vt), d - 1))

    def value_type(self, ctx: _Ctx) -> Type:
        names = self.size_names(ctx)
        opts: list[Type] = [REAL, REAL] + [vec(s) for s in names]
        if len(names) > 1:
            opts.append(mat(names[0], names[1]))
        return self.pick(opts)

    # -- reals -------------------------------------------------------------------------
    def real_leaf(self, ctx: _Ctx) -> Expr:
        opts: list = [self.lit, self.lit]
        reals = [n for n, t in sorted(ctx.values.items()) if t == REAL]
        if reals:
            opts += [lambda: Var(self.pick(reals))] * 4
        vecs = [(n, t.size) for n, t in sorted(ctx.values.items())
                if isinstance(t, ArrayT) and t.elem == REAL]
        if vecs:
            def get_vec():
                n, s = self.pick(vecs)
                return Get(Var(n), self.index(s, ctx))
            opts += [get_vec] * 5
        mats = [(n, t.size, t.elem.size) for n, t in sorted(ctx.values.items())
                if isinstance(t, ArrayT) and isinstance(t.elem, ArrayT)]
        if mats:
            def get_mat():
                n, s1, s2 = self.pick(mats)
                return Get(Get(Var(n), self.index(s1, ctx)), self.index(s2, ctx))
            opts += [get_mat] * 3
        if ctx.indices:
            opts.append(lambda: Prim("real", (Var(self.pick(sorted(ctx.indices))),)))
        return self.pick(opts)()

    def real(self, ctx: _Ctx, d: int) -> Expr:
        if d <= 0:
            return self.real_leaf(ctx)
        r = lambda: self.real(ctx, d - 1)          # noqa: E731
        binop = lambda op: lambda: Prim(op, (r(), r()))   # noqa: E731
        opts: list = [lambda: self.real_leaf(ctx)] * 2 + [binop("+"), binop("*"), binop("-")]
        # an Int literal in a real context (elaboration turns it into a Num)
        opts.append(lambda: Prim(self.pick(["*", "+"]), (Int(self.pick([1, 2, 3])), r())))
        opts += [
            lambda: Prim(self.pick(["neg", "sin", "cos", "tanh"]), (r(),)),
            lambda: Prim("exp", (Prim("tanh", (r(),)),)),
            lambda: Prim("exp", (Prim("neg", (Prim("*", (self.real(ctx, d - 2),) * 2),)),)),
            lambda: Prim("log", (self.pos(ctx, d),)),
            lambda: Prim("sqrt", (self.pos(ctx, d),)),
            lambda: Prim("tan", (Prim("*", (Num(0.5), Prim("tanh", (r(),)))),)),
            lambda: Prim("pow", (self.pos(ctx, d), Num(self.pick([2.0, 0.5, 3.0, -1.0])))),
            lambda: Prim("/", (r(), self.pos(ctx, d))),
            lambda: self.sum(ctx, d), lambda: self.sum(ctx, d),
            lambda: self.get_of_array(ctx, d),
        ]
        opts += self.wrappers(REAL, ctx, d)
        return self.pick(opts)()

    def sum(self, ctx: _Ctx, d: int) -> Expr:
        s = self.pick(self.size_names(ctx))
        i = self.pick(list(_INDEX_NAMES))
        return Sum(self.size_expr(s, ctx), i, self.real(ctx.bind_index(i, s), d - 1))

    def get_of_array(self, ctx: _Ctx, d: int) -> Expr:
        """``(get <vector expression> i)``: the pattern get-of-build rewrites."""
        s = self.pick(self.size_names(ctx))
        return Get(self.array(vec(s), ctx, d - 1), self.index(s, ctx))

    def cond(self, ctx: _Ctx, d: int) -> Expr:
        opts: list = [lambda: Prim(self.pick(["<", ">", "<=", ">="]),
                                   (self.real(ctx, d), self.real(ctx, d)))]
        idx = sorted(ctx.indices.items())
        if idx:
            def onehot():
                n, s = self.pick(idx)
                return Prim("=", (Var(n), self.index(s, ctx)))
            opts += [onehot] * 2
        if d > 0:
            opts += [lambda: Prim(self.pick(["and", "or"]), (self.cond(ctx, d - 1),
                                                             self.cond(ctx, d - 1))),
                     lambda: Prim("not", (self.cond(ctx, d - 1),))]
        return self.pick(opts)()

    # -- arrays --------------------------------------------------------------------------
    def array(self, t: ArrayT, ctx: _Ctx, d: int) -> Expr:
        same = [Var(n) for n, u in sorted(ctx.values.items()) if u == t]
        rows = [(n, u.size) for n, u in sorted(ctx.values.items())
                if isinstance(u, ArrayT) and u.elem == t]
        opts: list = []
        if same:
            opts += [lambda: self.pick(same)] * 3
        if rows:
            def row():
                n, s = self.pick(rows)
                return Get(Var(n), self.index(s, ctx))
            opts += [row] * 2
        i = self.pick(list(_INDEX_NAMES))
        opts.append(lambda: Build(self.size_expr(t.size, ctx), i,
                                  self.gen(t.elem, ctx.bind_index(i, t.size), d - 1)))
        if d > 0:
            opts.append(opts[-1])
            opts += self.wrappers(t, ctx, d)
        return self.pick(opts)()

    def pair(self, t: PairT, ctx: _Ctx, d: int) -> Expr:
        opts: list = [lambda: Pair(self.gen(t.fst, ctx, d - 1), self.gen(t.snd, ctx, d - 1))]
        if d > 0:
            opts += self.wrappers(t, ctx, d)
        return self.pick(opts)()

    def ifold(self, t: Type, ctx: _Ctx, d: int) -> Expr:
        s = self.pick(self.size_names(ctx))
        acc, i = self.pick(list(_ACC_NAMES)), self.pick(list(_INDEX_NAMES))
        if i == acc:
            i = "i"
        # (an Int init would make the fold index-typed when the body only adds the accumulator
        # to itself: acc + acc; real inits keep the result real)
        init = self.gen(t, ctx, d - 2) if t != REAL else self.pick(
            [lambda: Num(0.0), lambda: self.real(ctx, d - 2)])()
        inner = ctx.bind_value(acc, t).bind_index(i, s)
        if t == REAL:
            e = lambda: self.real(inner, d - 1)    # noqa: E731
            body = self.pick([
                lambda: Prim("+", (Var(acc), e())),
                lambda: Prim("+", (Var(acc), e())),
                lambda: Prim("*", (Var(acc), Prim("cos", (e(),)))),
                lambda: Prim("+", (Prim("*", (Num(0.5), Var(acc))), e())),
                lambda: Prim("tanh", (Prim("+", (Var(acc), e())),)),
            ])()
        elif isinstance(t, ArrayT) and t.elem == REAL:
            j = self.pick([n for n in _INDEX_NAMES if n != i] + ["q"])
            inner2 = inner.bind_index(j, t.size)
            body = Build(self.size_expr(t.size, inner), j,
                         Prim("+", (Get(Var(acc), Var(j)), self.real(inner2, d - 2))))
        else:
            body = self.gen(t, inner, d - 1)
        return IFold(acc, i, body, init, self.size_expr(s, ctx))


# ======================================================================================
# public strategies
# ======================================================================================
@st.composite
def param_sets(draw) -> tuple[Param, ...]:
    """A random parameter list: always ``x : (vec n)``, plus some of ``y : (vec n)``,
    ``z : (vec m)``, ``M : (mat m n)``, ``w : real``, ``v : real``."""
    params = [Param("x", vec("n"))]
    for p in (Param("y", vec("n")), Param("w", REAL), Param("M", mat("m", "n")),
              Param("z", vec("m")), Param("v", REAL)):
        if draw(st.booleans()):
            params.append(p)
    return tuple(params)


def _values(t: Type, sizes: dict):
    if t == REAL:
        return st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)
    shape = []
    while isinstance(t, ArrayT):
        shape.append(t.size if isinstance(t.size, int) else sizes[t.size])
        t = t.elem
    if t != REAL:
        raise ValueError("only real, vector and matrix parameters are generated")
    return arrays(np.float64, tuple(shape),
                  elements=st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False))


def inputs_for(params: tuple[Param, ...], sizes: dict[str, int]):
    """Strategy of input dictionaries for ``params`` with the given concrete sizes.

    >>> from hypothesis import find
    >>> d = find(inputs_for((Param("x", vec("n")),), {"n": 3}), lambda d: True)
    >>> d["x"].shape
    (3,)
    """
    return st.fixed_dictionaries({p.name: _values(p.type, sizes) for p in params})


def _sizes_strategy(params, sizes):
    names = []
    for p in params:
        names += [n for n in size_names(p.type) if n not in names]
    if sizes is not None:
        return st.just({n: sizes[n] for n in names})
    return st.fixed_dictionaries({n: st.integers(1, 4) for n in names})


def expressions(params: tuple[Param, ...], result_type: Type, sizes: dict[str, int],
                smooth: bool = False, max_depth: int = 4):
    """Strategy of expressions of type ``result_type`` over ``params`` (their size names
    in scope too), in range for the concrete ``sizes``; handy for rule fuzzing.

    >>> from hypothesis import find
    >>> from eqsat_ad.lang.typecheck import type_of, program_env
    >>> ps = (Param("x", vec("n")),)
    >>> e = find(expressions(ps, REAL, {"n": 2}), lambda e: True)
    >>> type_of(e, program_env(Program(ps, e))) == REAL
    True
    """
    @st.composite
    def strat(draw):
        values: dict[str, Type] = {p.name: p.type for p in params}
        for p in params:
            for n in size_names(p.type):
                values.setdefault(n, "size")  # type: ignore[arg-type]
        from eqsat_ad.lang.types import SIZE
        values = {k: (SIZE if v == "size" else v) for k, v in values.items()}
        ctx = _Ctx(values, {}, dict(sizes))
        return _Gen(draw, smooth).gen(result_type, ctx, max_depth)
    return strat()


@st.composite
def programs(draw, real_result: bool = False, smooth: bool = False, max_depth: int = 4,
             params: tuple[Param, ...] | None = None, sizes: dict[str, int] | None = None):
    """Strategy of ``(Program, inputs)``: a random well-typed program and a dictionary of
    inputs (NumPy float64 arrays for vectors/matrices, floats for reals).

    >>> from hypothesis import find
    >>> from eqsat_ad.lang.typecheck import check_program
    >>> prog, inputs = find(programs(real_result=True), lambda c: True)
    >>> check_program(prog) == REAL and set(inputs) == {p.name for p in prog.params}
    True
    """
    ps = params if params is not None else draw(param_sets())
    szs = draw(_sizes_strategy(ps, sizes))
    if real_result:
        result: Type = REAL
    else:
        names = sorted(szs)
        opts: list[Type] = [REAL, REAL] + [vec(n) for n in names] + [PairT(REAL, vec(names[0]))] \
            if names else [REAL]
        if len(names) > 1:
            opts.append(mat(names[0], names[1]))
        result = draw(st.sampled_from(opts))
    body = draw(expressions(ps, result, szs, smooth=smooth, max_depth=max_depth))
    inputs = draw(inputs_for(ps, szs))
    return Program(ps, body), inputs


def real_programs_of_vector(smooth: bool = True, max_depth: int = 4,
                            sizes: dict[str, int] | None = None):
    """Strategy of ``(Program, {"x": ndarray})`` for ``f : (vec n) -> real`` (smooth by
    default, for gradient tests).

    >>> from hypothesis import find
    >>> prog, inputs = find(real_programs_of_vector(), lambda c: True)
    >>> [p.name for p in prog.params], inputs["x"].ndim
    (['x'], 1)
    """
    return programs(real_result=True, smooth=smooth, max_depth=max_depth,
                    params=(Param("x", vec("n")),), sizes=sizes)


# ======================================================================================
# a tiny evaluator, only for the generator's own checks (in-range indices, finite values)
# and for binder tests; the real reference interpreter lives in the library.
# ======================================================================================
def tiny_eval(e: Expr, env: dict):
    """Evaluate ``e`` with Python floats/ints and nested lists (NumPy inputs are converted).
    Raises IndexError for an index out of range.  Meant for tests of this package only.

    >>> tiny_eval(Sum(Int(3), "i", Prim("real", (Var("i"),))), {})
    3.0
    """
    import math
    from eqsat_ad.lang.ast import BoolLit
    from eqsat_ad.lang.binders import call_deep

    un = {"neg": lambda a: -a, "exp": math.exp, "log": math.log, "sin": math.sin,
          "cos": math.cos, "tan": math.tan, "sqrt": math.sqrt, "tanh": math.tanh,
          "real": float, "not": lambda a: not a}
    bi = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
          "/": lambda a, b: a / b, "pow": lambda a, b: float(a) ** b,
          "=": lambda a, b: a == b, "<": lambda a, b: a < b, ">": lambda a, b: a > b,
          "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
          "and": lambda a, b: a and b, "or": lambda a, b: a or b}

    def get(a, i):
        if not (0 <= i < len(a)):
            raise IndexError(f"index {i} out of range for length {len(a)}")
        return a[i]

    def ev(e, env):
        if isinstance(e, (Num, Int, BoolLit)):
            return e.value
        if isinstance(e, Var):
            return env[e.name]
        if isinstance(e, Prim):
            args = [ev(a, env) for a in e.args]
            return un[e.op](*args) if len(args) == 1 else bi[e.op](*args)
        if isinstance(e, If):
            return ev(e.then, env) if ev(e.cond, env) else ev(e.else_, env)
        if isinstance(e, Let):
            return ev(e.body, {**env, e.name: ev(e.value, env)})
        if isinstance(e, Build):
            return [ev(e.body, {**env, e.var: k}) for k in range(ev(e.size, env))]
        if isinstance(e, Sum):
            tot = 0
            for k in range(ev(e.size, env)):
                tot = tot + ev(e.body, {**env, e.var: k})
            return tot
        if isinstance(e, IFold):
            acc = ev(e.init, env)
            for k in range(ev(e.size, env)):
                acc = ev(e.body, {**env, e.acc: acc, e.var: k})
            return acc
        if isinstance(e, Get):
            return get(ev(e.array, env), ev(e.index, env))
        if isinstance(e, Length):
            return len(ev(e.array, env))
        if isinstance(e, Pair):
            return (ev(e.fst, env), ev(e.snd, env))
        if isinstance(e, Fst):
            return ev(e.pair, env)[0]
        if isinstance(e, Snd):
            return ev(e.pair, env)[1]
        raise TypeError(e)

    env = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in env.items()}
    return call_deep(ev, e, env)


def program_env_values(prog: Program, inputs: dict) -> dict:
    """Inputs plus the size names bound to the sizes of the input arrays."""
    env = dict(inputs)
    for p in prog.params:
        t, v = p.type, np.asarray(inputs[p.name])
        axis = 0
        while isinstance(t, ArrayT):
            if isinstance(t.size, str):
                env[t.size] = v.shape[axis]
            t, axis = t.elem, axis + 1
    return env

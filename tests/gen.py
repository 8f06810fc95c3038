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

What the programs contain: see :mod:`eqsat_ad.random_programs` (the generator is shared with
the seeded fuzzers of :mod:`eqsat_ad.fuzz`; here hypothesis drives it, so failures shrink).
Inputs are float64 arrays with entries in [-2, 2]; scalars are Python floats.

Programs are only guaranteed in range for the drawn sizes (an ``Int`` index literal is
smaller than the drawn size), and for larger ones.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from eqsat_ad.lang.ast import (Build, Expr, Fst, Get, If, IFold, Int, Length, Let, Num, Pair,  # noqa: F401
                               Param, Prim, Program, Scan, Snd, Sum, Var)
from eqsat_ad.lang.types import REAL, ArrayT, PairT, Type, mat, size_names, vec
from eqsat_ad.random_programs import choose_params, generate

__all__ = ["programs", "real_programs_of_vector", "expressions", "inputs_for", "param_sets",
           "tiny_eval", "program_env_values"]


def _chooser(draw):
    """The generator's ``choose(k)``: a number in ``range(k)``, drawn by hypothesis."""
    return lambda k: draw(st.integers(0, k - 1))


# ======================================================================================
# public strategies
# ======================================================================================
@st.composite
def param_sets(draw) -> tuple[Param, ...]:
    """A random parameter list: always ``x : (vec n)``, plus some of ``y : (vec n)``,
    ``w : real``, ``M : (mat m n)``, ``z : (vec m)``, ``v : real``."""
    return choose_params(_chooser(draw))


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
        return generate(_chooser(draw), params, result_type, sizes, smooth=smooth, max_depth=max_depth,
                        int_division=True)
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
          "real": float, "not": lambda a: not a, "log1p": math.log1p, "abs": abs,
          "sign": lambda a: a if math.isnan(a) else float((a > 0) - (a < 0))}
    nan2 = lambda f: lambda a, b: math.nan if math.isnan(a) or math.isnan(b) else f(a, b)  # noqa: E731

    def arg_extreme(better):
        def fn(a):     # the first extreme; a nan counts as the extreme (NumPy's rule); 0 if empty
            a = [float(v) for v in a]
            nans = [k for k, v in enumerate(a) if math.isnan(v)]
            if nans:
                return nans[0]
            best = 0
            for k, v in enumerate(a):
                if better(v, a[best]):
                    best = k
            return best
        return fn
    un["argmax"] = arg_extreme(lambda v, w: v > w)
    un["argmin"] = arg_extreme(lambda v, w: v < w)
    bi = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
          "/": lambda a, b: a / b, "pow": lambda a, b: float(a) ** b,
          "=": lambda a, b: a == b, "<": lambda a, b: a < b, ">": lambda a, b: a > b,
          "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
          "and": lambda a, b: a and b, "or": lambda a, b: a or b,
          "max": nan2(max), "min": nan2(min),
          "div": lambda a, b: a // b, "mod": lambda a, b: a % b}

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
        if isinstance(e, Scan):         # every state of the fold, the initial one first
            states = [ev(e.init, env)]
            for k in range(ev(e.size, env)):
                states.append(ev(e.body, {**env, e.acc: states[-1], e.var: k}))
            return states
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

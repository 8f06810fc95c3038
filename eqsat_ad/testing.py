"""Gradient checking in the style of autograd's ``check_grads``.

Every derivative program is compared with **central finite differences** of the reference
interpreter (float64): ``jvp`` along random directions, and ``derivative`` / ``grad`` /
``jacobian`` contracted with the same direction.  ``order=2`` also checks second
derivatives (the jvp of the jvp program, and the derivative of the gradient).

>>> from eqsat_ad.lang.ast import Program, Param, Var, Prim
>>> from eqsat_ad.lang.types import REAL
>>> f = Program((Param("x", REAL),), Prim("sin", (Var("x"),)))
>>> check_grads(f, inputs={"x": 0.3}, order=2)
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping

import numpy as np

from .lang.ast import Program
from .lang.types import REAL, ArrayT, BoolT, IndexT, PairT, RealT, SizeT, Type, show_type

__all__ = ["check_grads", "central_difference", "random_inputs", "flatten_value",
           "differentiable_params", "assert_matches_interpreter"]

DEFAULT_SIZE = 3


def _evaluator(evaluate: Callable | None) -> Callable:
    if evaluate is not None:
        return evaluate
    from .lang.interp import evaluate as ev
    return ev


# --------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------
def _shape(t: Type, sizes: Mapping[str, int]) -> tuple[int, ...]:
    shape = []
    while isinstance(t, ArrayT):
        s = t.size
        if isinstance(s, str):
            s = sizes.get(s, DEFAULT_SIZE)
        elif s is None:
            s = DEFAULT_SIZE
        shape.append(int(s))
        t = t.elem
    return tuple(shape)


def random_inputs(prog: Program, sizes: Mapping[str, int] | None = None, seed: int = 0,
                  low: float = -1.0, high: float = 1.0) -> dict:
    """Random float64 inputs for every parameter (uniform in ``[low, high)``).

    Size names not in ``sizes`` get 3.  Index parameters get 0; size parameters their size;
    pairs are tuples; arrays of reals are ndarrays, other arrays lists.

    >>> from eqsat_ad.lang.ast import Program, Param, Var
    >>> from eqsat_ad.lang.types import vec
    >>> random_inputs(Program((Param("x", vec("n")),), Var("x")), {"n": 2})["x"].shape
    (2,)
    """
    sizes = dict(sizes or {})
    rng = np.random.default_rng(seed)

    def value(name: str, t: Type):
        leaf = t
        while isinstance(leaf, ArrayT):
            leaf = leaf.elem
        if isinstance(leaf, RealT):
            shape = _shape(t, sizes)
            v = rng.uniform(low, high, size=shape)
            return float(v) if shape == () else v
        if isinstance(t, ArrayT):
            return [value(name, t.elem) for _ in range(_shape(t, sizes)[0])]
        if isinstance(t, PairT):
            return (value(name, t.fst), value(name, t.snd))
        if isinstance(t, IndexT):
            return 0
        if isinstance(t, SizeT):
            return int(sizes.get(name, DEFAULT_SIZE))
        if isinstance(t, BoolT):
            return bool(rng.integers(2))
        raise ValueError(f"random_inputs: cannot make a value of type {show_type(t)} for {name!r}")

    return {p.name: value(p.name, p.type) for p in prog.params}


def differentiable_params(prog: Program) -> list[str]:
    """Names of the parameters one can differentiate with respect to: real, or an array of
    reals of any rank.

    >>> from eqsat_ad.lang.syntax import parse
    >>> differentiable_params(parse("(fun ((T (array (mat n k) m)) (i index) (w real)) w)"))
    ['T', 'w']
    """
    out = []
    for p in prog.params:
        t = p.type
        while isinstance(t, ArrayT):
            t = t.elem
        if isinstance(t, RealT):
            out.append(p.name)
    return out


# --------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------
def flatten_value(v) -> np.ndarray:
    """A result of ``evaluate`` (number, array, nested pairs/tuples) as a flat float64 vector."""
    if isinstance(v, (tuple, list)) and not isinstance(v, np.ndarray):
        parts = [flatten_value(x) for x in v]
        return np.concatenate(parts) if parts else np.zeros(0)
    a = np.asarray(v)
    if a.dtype == object:
        return np.concatenate([flatten_value(x) for x in a.ravel()]) if a.size else np.zeros(0)
    return a.astype(np.float64).ravel()


def finite_difference_gradient(f: Callable, x, eps: float = 1e-6) -> np.ndarray:
    """The gradient of a scalar Python function ``f`` of one array at ``x`` (any shape), by
    central differences, one coordinate at a time.

    >>> g = finite_difference_gradient(lambda v: float(v @ v), np.array([1.0, -2.0]))
    >>> np.round(g, 6).tolist()
    [2.0, -4.0]
    """
    x = np.asarray(x, dtype=np.float64)
    g = np.zeros_like(x)
    for k in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[k] = eps
        g[k] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


def central_difference(prog: Program, wrt: str, inputs: Mapping, direction, eps: float = 1e-6,
                       evaluate: Callable | None = None) -> np.ndarray:
    """``(f(x + eps*v) - f(x - eps*v)) / (2*eps)`` with ``x = inputs[wrt]``, flattened.

    >>> from eqsat_ad.lang.ast import Program, Param, Var, Prim
    >>> from eqsat_ad.lang.types import REAL
    >>> f = Program((Param("x", REAL),), Prim("*", (Var("x"), Var("x"))))
    >>> round(float(central_difference(f, "x", {"x": 3.0}, 1.0)[0]), 6)
    6.0
    """
    ev = _evaluator(evaluate)
    x = np.asarray(inputs[wrt], dtype=np.float64)
    v = np.asarray(direction, dtype=np.float64)
    if v.shape != x.shape:
        raise ValueError(f"direction shape {v.shape} differs from {wrt!r}'s shape {x.shape}")

    def at(xv):
        args = dict(inputs)
        args[wrt] = float(xv) if xv.shape == () else xv
        return flatten_value(ev(prog, **args))

    return (at(x + eps * v) - at(x - eps * v)) / (2 * eps)


# --------------------------------------------------------------------------------------
# the check
# --------------------------------------------------------------------------------------
def _compare(what: str, got: np.ndarray, want: np.ndarray, scale: float, rtol: float,
             atol: float, context: str) -> None:
    got = np.asarray(got, dtype=np.float64).ravel()
    want = np.asarray(want, dtype=np.float64).ravel()
    if got.shape != want.shape:
        raise AssertionError(f"{what}: shape {got.shape} but finite differences give "
                             f"{want.shape}\n{context}")
    tol = atol * scale + rtol * np.abs(want)
    bad = ~(np.abs(got - want) <= tol)
    if bad.any():
        k = int(np.argmax(np.where(bad, np.abs(got - want) - tol, -np.inf)))
        raise AssertionError(
            f"{what} disagrees with central finite differences at {int(bad.sum())} of "
            f"{got.size} entries; worst entry {k}: AD {got[k]!r} vs FD {want[k]!r} "
            f"(|diff| {abs(got[k] - want[k]):.3g} > tol {tol[k]:.3g})\n"
            f"AD: {np.array2string(got, precision=8, threshold=20)}\n"
            f"FD: {np.array2string(want, precision=8, threshold=20)}\n{context}")


def check_grads(prog: Program, wrt: str | Iterable[str] | None = None, inputs: Mapping | None = None,
                order: int = 1, eps: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-6,
                seed: int = 0, sizes: Mapping[str, int] | None = None,
                modes: Iterable[str] = ("jvp", "derivative", "grad", "jacobian"),
                evaluate: Callable | None = None) -> None:
    """Check every derivative program of ``prog`` against central finite differences.

    For each ``wrt`` parameter (default: every real or array-of-reals parameter) and a random
    direction ``v`` (seeded by ``seed``):

    - ``jvp``: ``jvp(prog, w)`` evaluated at ``(inputs, v)``  ==  FD along ``v``;
    - ``derivative``: ``derivative(prog, w)`` contracted with ``v`` over the wrt axes;
    - ``grad`` (real output) / ``jacobian`` (vec output): likewise.

    Tolerance: ``|AD - FD| <= atol * scale + rtol * |FD|`` with ``scale = max(1, |f(x)|_inf)``.
    ``order=2`` repeats the check on ``jvp(prog, w)`` (with the direction fixed) and on
    ``grad(prog, w)`` / ``jacobian``, i.e. second derivatives, Hessian-vector products.
    Raises ``AssertionError`` with a report on mismatch, ``ValueError`` if ``f`` is not
    finite at the inputs.
    """
    from .ad import derivative, grad, jacobian, jvp
    from .lang.syntax import show_program
    ev = _evaluator(evaluate)
    modes = tuple(modes)
    if inputs is None:
        inputs = random_inputs(prog, sizes, seed)
    inputs = dict(inputs)
    wrts = differentiable_params(prog) if wrt is None else ([wrt] if isinstance(wrt, str) else list(wrt))
    f0 = flatten_value(ev(prog, **inputs))
    if not np.all(np.isfinite(f0)):
        raise ValueError("check_grads: the program is not finite at these inputs")
    scale = max(1.0, float(np.max(np.abs(f0))) if f0.size else 1.0)
    rng = np.random.default_rng(seed + 7919)
    out_t = _out_type(prog)

    def context(extra: str = "") -> str:
        shown = show_program(prog)
        if len(shown) > 2000:
            shown = shown[:2000] + " ..."
        ins = {k: (np.round(v, 6).tolist() if isinstance(v, np.ndarray) else v)
               for k, v in inputs.items()}
        return f"program: {shown}\ninputs: {ins}{extra}"

    for w in wrts:
        x = np.asarray(inputs[w], dtype=np.float64)
        v = rng.standard_normal(x.shape)
        v_in = float(v) if v.shape == () else v
        fd = central_difference(prog, w, inputs, v, eps, evaluate=ev)
        ctx = context(f"\nwrt: {w}, direction: {np.round(v, 6).tolist()}")
        jp = None
        if "jvp" in modes or order > 1:
            jp = jvp(prog, w)
            dname = jp.params[-1].name
        if "jvp" in modes:
            got = flatten_value(ev(jp, **inputs, **{dname: v_in}))
            _compare(f"jvp w.r.t. {w}", got, fd, scale, rtol, atol, ctx)
        plain_out = _tangent_array_type(out_t)
        if "derivative" in modes and plain_out:
            d = np.asarray(ev(derivative(prog, w), **inputs), dtype=np.float64)
            got = np.tensordot(v, d, axes=v.ndim) if v.ndim else v * d
            _compare(f"derivative w.r.t. {w} (contracted with the direction)",
                     got, fd, scale, rtol, atol, ctx)
        if "grad" in modes and out_t == REAL:
            g = np.asarray(ev(grad(prog, w), **inputs), dtype=np.float64)
            _compare(f"grad w.r.t. {w} (dotted with the direction)",
                     np.sum(g * v), fd, scale, rtol, atol, ctx)
        if "jacobian" in modes and isinstance(out_t, ArrayT) and out_t.elem == REAL and x.ndim <= 1:
            jac = np.asarray(ev(jacobian(prog, w), **inputs), dtype=np.float64)
            got = jac @ v if x.ndim == 1 else jac * v
            _compare(f"jacobian w.r.t. {w} (times the direction)", got, fd, scale, rtol, atol, ctx)
        if order > 1:
            check_grads(jp, wrt=w, inputs={**inputs, dname: v_in}, order=order - 1, eps=eps,
                        rtol=rtol * 10, atol=atol * 10, seed=seed + 1, modes=("jvp", "derivative"),
                        evaluate=ev)
            if out_t == REAL:
                check_grads(grad(prog, w), wrt=w, inputs=inputs, order=order - 1, eps=eps,
                            rtol=rtol * 10, atol=atol * 10, seed=seed + 2,
                            modes=("jvp", "jacobian"), evaluate=ev)


def assert_matches_interpreter(prog: Program, fn: Callable, args: Mapping, rtol: float = 1e-12,
                               atol: float = 1e-12, err_msg: str = "") -> None:
    """A compiled ``fn`` of ``prog`` against the reference interpreter on ``args``: the same
    values (an empty result: empty too, the interpreter cannot know the shape of an empty
    build), or the interpreter's error (``EvalError``, the same message up to where it names
    the expression); the result aliases no input and is writeable.

    >>> import eqsat_ad as ea
    >>> p = ea.parse("(fun ((x (vec n)) (k index)) (build n (lambda (i) (get x (+ i k)))))")
    >>> f = ea.compile(p)
    >>> assert_matches_interpreter(p, f, {"x": np.arange(3.0), "k": 0})
    >>> assert_matches_interpreter(p, f, {"x": np.arange(3.0), "k": 1})     # both raise
    """
    from .errors import EvalError
    try:
        want = _evaluator(None)(prog, **args)
    except EvalError as err:
        expected = str(err).split(" in ")[0]
        try:
            fn(**args)
        except EvalError as got_err:
            assert expected in str(got_err), (str(got_err), expected, err_msg)
            return
        raise AssertionError(f"the interpreter raised {err!s}; the compiled function did not {err_msg}")
    got = fn(**args)
    if np.size(want) == 0:
        assert np.size(got) == 0, (got, err_msg)
        return
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, err_msg=err_msg)
    assert not any(isinstance(a, np.ndarray) and np.shares_memory(got, a) for a in args.values()), err_msg
    assert not isinstance(got, np.ndarray) or got.flags.writeable, err_msg


def _out_type(prog: Program) -> Type:
    try:
        from .lang.typecheck import check_program
    except ImportError:  # pragma: no cover - during bring-up only
        from .ad import dual_program
        return dual_program(prog)[1]
    return check_program(prog)


def _tangent_array_type(t: Type) -> bool:
    """real or (nested) arrays of real: derivative results are plain float arrays."""
    while isinstance(t, ArrayT):
        t = t.elem
    return isinstance(t, RealT)

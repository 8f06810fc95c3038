"""The NumPy-like front end: every traced function gives what the same NumPy code gives, and
its derivatives agree with central finite differences."""
from __future__ import annotations

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.errors import TypeCheckError
from eqsat_ad.frontend.trace import Mat, Vec, example_types, trace
from eqsat_ad.lang.interp import evaluate
from eqsat_ad.lang.types import show_type
from eqsat_ad.testing import check_grads

RNG = np.random.default_rng(7)
X = RNG.normal(size=(5, 3))
M = RNG.normal(size=(5, 3))
W = RNG.normal(size=(3, 4))
y = RNG.normal(size=5)
w = RNG.normal(size=3)
S = RNG.normal(size=(3, 3))


# (name, function of (np-like module, *arrays), arrays): the function is run once with NumPy
# and traced once with eqsat_ad's names
CASES = [
    ("mse", lambda m, w, X, y: m.mean((X @ w - y) ** 2), (w, X, y)),
    ("logistic", lambda m, w, X, y: -m.mean(y * m.log(1.0 / (1.0 + m.exp(-(X @ w))))
                                            + (1 - y) * m.log(1 - 1.0 / (1.0 + m.exp(-(X @ w))))),
     (w, X, np.abs(np.sign(y)))),
    ("tanh-layer-sum-axis0", lambda m, X, W: m.sum(m.tanh(X @ W), axis=0), (X, W)),
    ("max-axis1", lambda m, X, W: m.max(X @ W, axis=1), (X, W)),
    ("min-axis0", lambda m, X: m.min(X, axis=0), (X,)),
    ("where", lambda m, X, M: m.where(X > M, X - M, 2.0 * M), (X, M)),
    ("differences", lambda m, y: y[1:] - y[:-1], (y,)),
    ("column", lambda m, X: X[:, 1] * X[-1, 0], (X,)),
    ("row-slice", lambda m, X: X[1:3], (X,)),
    ("normal-equations", lambda m, X, w: X.T @ (X @ w), (X, w)),
    ("dot-plus-scalar", lambda m, w: w @ w + 1, (w,)),
    ("vec-mat", lambda m, y, X: y @ X, (y, X)),
    ("mat-mat", lambda m, X, W: X @ W, (X, W)),
    ("relu-broadcast-row", lambda m, X, w: m.maximum(X + w, 0.0), (X, w)),
    ("abs-min-mean", lambda m, X: m.abs(X).sum() + m.min(X) + m.mean(X, axis=0).sum(), (X,)),
    ("outer", lambda m, X: m.outer(X[0], X[1]), (X,)),
    ("softplus", lambda m, y: m.log1p(m.exp(-y)).sum(), (y,)),
    ("powers", lambda m, w: w ** 2 + w ** 1 + m.abs(w) ** 0.5 + 1.0 / (w ** 2 + 1.0) ** -1 + 2.0 ** w, (w,)),
    ("unary-minus-and-division", lambda m, w, y: -w / (1.0 + w * w) - y.mean(), (w, y)),
    ("square-matrix", lambda m, S: m.sum(S * S.T) + (S @ S).max(), (S,)),
    ("comparison-logic", lambda m, w: m.where((w > 0.0) & ~(w > 1.0), w, -w), (w,)),
    ("mean-of-matrix", lambda m, X: X.mean() + X.sum(axis=1).max() + X.sum(axis=-1).min(), (X,)),
    ("logsumexp-max-shifted", lambda m, X: m.log(m.sum(m.exp(X - X.max(axis=1, keepdims=True)),
                                                       axis=1)) + X.max(axis=1), (X,)),
    ("newaxis-outer", lambda m, y, w: y[:, None] * w[None, :], (y, w)),
    ("centred-keepdims", lambda m, X: (X - X.mean(axis=0, keepdims=True)) / X.sum(keepdims=True), (X,)),
    ("row-sums-keepdims", lambda m, X: m.sum(X, axis=1, keepdims=True) * X + X.min(axis=0, keepdims=True), (X,)),
    ("sigmoid-tanh-sqrt", lambda m, w: m.sqrt(1.0 + w * w) + m.tanh(w) + m.exp(m.log(w * w + 1.0)), (w,)),
]


def _param_names(fn):
    import inspect
    return list(inspect.signature(fn).parameters)[1:]


def _traced(fn, arrays):
    names = _param_names(fn)
    return trace(_named(fn, names), **dict(zip(names, arrays))), names


def _named(fn, names):
    """``fn(ea, ...)`` as a function whose parameters have the names ``names``."""
    src = f"lambda {', '.join(names)}: fn(ea, {', '.join(names)})"
    return eval(src, {"fn": fn, "ea": ea})          # noqa: S307 - test helper, fixed text


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_traced_function_computes_what_numpy_computes(name, fn, arrays):
    prog, names = _traced(fn, arrays)
    got = evaluate(prog, **dict(zip(names, arrays)))
    want = fn(np, *arrays)
    np.testing.assert_allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float),
                               rtol=1e-12, atol=1e-12)
    fast = ea.compile(prog)
    np.testing.assert_allclose(np.asarray(fast(*arrays), dtype=float), np.asarray(want, dtype=float),
                               rtol=1e-10, atol=1e-12)


SMOOTH = ["mse", "logistic", "tanh-layer-sum-axis0", "normal-equations", "dot-plus-scalar",
          "vec-mat", "mat-mat", "softplus", "unary-minus-and-division", "mean-of-matrix",
          "sigmoid-tanh-sqrt", "where", "differences", "column", "outer",
          # non-smooth, but the random inputs are away from the kinks and ties
          "max-axis1", "min-axis0", "abs-min-mean", "relu-broadcast-row", "square-matrix",
          "logsumexp-max-shifted", "newaxis-outer", "centred-keepdims", "row-sums-keepdims"]


@pytest.mark.parametrize("name", SMOOTH)
def test_derivatives_of_traced_functions_match_finite_differences(name):
    _, fn, arrays = next(c for c in CASES if c[0] == name)
    prog, names = _traced(fn, arrays)
    # the random inputs are generic: away from the kinks of where, max, abs
    check_grads(prog, inputs=dict(zip(names, arrays)), modes=("jvp", "grad", "jacobian"))


def test_a_python_value_used_twice_stays_one_node():
    def f(x):
        d = ea.exp(x) - 1.0             # used twice: one array, computed once
        return ea.sum(d * d)
    p = trace(f, x=Vec("n"))
    text = ea.show_program(p)
    assert text.count("exp") == 1, text


def test_example_arrays_name_sizes_by_extent():
    types = example_types({"X": (5, 3), "y": (5,), "w": (3,), "c": ()})
    assert {k: show_type(t) for k, t in types.items()} == \
        {"X": "(mat n m)", "y": "(vec n)", "w": "(vec m)", "c": "real"}
    # a parameter called n keeps its name; the sizes take others
    types = example_types({"n": (2,), "x": (3,)})
    assert show_type(types["n"]) == "(vec m)" and show_type(types["x"]) == "(vec k)"
    # mixed with given types, the given sizes are not reused for other extents
    p = trace(lambda a, b: a.sum() + b.sum(), a=Vec("n"), b=np.zeros(4))
    assert show_type(p.params[1].type) == "(vec m)"


def test_shape_and_ndim():
    p = trace(lambda A: ea.sum(A) / ea.power(1.0 * A.shape[0] * A.shape[1], 1.0) + 0 * A.ndim,
              A=Mat("m", "n"))
    A = RNG.normal(size=(2, 3))
    assert evaluate(p, A=A) == pytest.approx(A.mean())


def test_errors_name_what_is_wrong():
    with pytest.raises(TypeCheckError, match="sizes n and m of the leading axis differ"):
        trace(lambda u, v: u - v, u=Vec("n"), v=Vec("m"))
    with pytest.raises(TypeCheckError, match="inner sizes n and k differ"):
        trace(lambda A, x: A @ x, A=Mat("m", "n"), x=Vec("k"))
    with pytest.raises(TypeCheckError, match="@ needs vectors or matrices"):
        trace(lambda a, x: a @ x, a=ea.REAL, x=Vec("k"))
    with pytest.raises(TypeCheckError, match="axis=2"):
        trace(lambda A: ea.sum(A, axis=2), A=Mat("m", "n"))
    with pytest.raises(TypeError, match="pass it as a parameter"):
        data = np.ones(3)
        trace(lambda x: x * data, x=Vec("n"))
    with pytest.raises(TypeCheckError, match="sizes n and m of the leading axis differ"):
        trace(lambda X: X - X.sum(axis=0, keepdims=True).T, X=Mat("n", "m"))
    with pytest.raises(TypeError, match="step"):
        trace(lambda x: x[::2], x=Vec("n"))
    with pytest.raises(TypeError, match="parameter 'x'.*not an array of real numbers"):
        trace(lambda x: x, x=np.array(["a", "b"]))


def test_ea_exports_numpy_names():
    for name in ("sum", "mean", "max", "min", "exp", "log", "log1p", "tanh", "sqrt", "abs",
                 "maximum", "minimum", "where", "sigmoid", "dot", "matmul", "outer", "transpose",
                 "grad_fn", "value_and_grad_fn", "jvp_fn"):
        assert callable(getattr(ea, name)), name

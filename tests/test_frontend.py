"""The Python front end: tracing functions over symbolic values into programs."""
from __future__ import annotations

import numpy as np
import pytest

from eqsat_ad import frontend as fe
from eqsat_ad.ad import grad, jacobian, jvp
from eqsat_ad.errors import TypeCheckError
from eqsat_ad.frontend import (Mat, Real, Vec, build, eq, exp, fst, get, if_, ifold, length, let,
                               pair, program, real, snd, sqrt, sum, tanh, trace, where)
from eqsat_ad.lang.ast import IFold, Let, iter_nodes
from eqsat_ad.lang.binders import bound_names, rename_unique
from eqsat_ad.lang.interp import evaluate
from eqsat_ad.lang.syntax import parse, show_program
from eqsat_ad.lang.typecheck import check_program
from eqsat_ad.lang.types import show_type
from eqsat_ad.testing import check_grads

RNG = np.random.default_rng(7)


def ev(prog, **inputs):
    return np.asarray(evaluate(prog, **inputs), dtype=np.float64)


def binders(e):
    out = []
    for n in iter_nodes(e):
        out.extend(n.binds())
    return out


def test_trace_sum_of_squares_and_its_gradient():
    p = trace(lambda x: sum("n", lambda i: x[i] ** 2), x=Vec("n"))
    assert show_type(check_program(p)) == "real"
    x = RNG.normal(size=4)
    assert float(ev(p, x=x)) == pytest.approx(x @ x)
    np.testing.assert_allclose(ev(grad(p, "x"), x=x), 2 * x, rtol=1e-12)


def test_decorator_form_and_parameter_order():
    @program(w=Vec("n"), x=Vec("n"))
    def f(x, w):
        return sum(length(x), lambda i: x[i] * w[i])
    assert [q.name for q in f.params] == ["x", "w"]          # the function's order
    x, w = RNG.normal(size=3), RNG.normal(size=3)
    assert float(ev(f, x=x, w=w)) == pytest.approx(x @ w)


def test_python_numbers_mix_in():
    p = trace(lambda x, s: sum("n", lambda i: 2 * x[i] + 1 - s / 2 + 3 ** s + x[i] ** 2 / 4),
              x=Vec("n"), s=Real)
    x, s = RNG.normal(size=3), 0.3
    want = np.sum(2 * x + 1 - s / 2 + 3**s + x**2 / 4)
    assert float(ev(p, x=x, s=s)) == pytest.approx(want)
    check_grads(p, inputs={"x": x, "s": s}, order=2)


def test_unary_minus_functions_and_index_casts():
    p = trace(lambda x: build("n", lambda i: -tanh(x[i]) * real(i) + sqrt(exp(x[i])) + i),
              x=Vec("n"))
    x = RNG.normal(size=4)
    i = np.arange(4)
    np.testing.assert_allclose(ev(p, x=x), -np.tanh(x) * i + np.sqrt(np.exp(x)) + i, rtol=1e-12)


def test_comparisons_if_and_where():
    relu = trace(lambda x: build(length(x), lambda i: if_(x[i] > 0, x[i], 0.0)), x=Vec("n"))
    x = np.array([-1.0, 2.0, -0.5, 3.0])
    np.testing.assert_allclose(ev(relu, x=x), np.maximum(x, 0))
    np.testing.assert_allclose(ev(jacobian(relu, "x"), x=x), np.diag((x > 0).astype(float)))
    p = trace(lambda x: build("n", lambda i: where(eq(i, 0) | (x[i] <= -1.0), 1.0, x[i])),
              x=Vec("n"))
    np.testing.assert_allclose(ev(p, x=x), [1.0, 2.0, -0.5, 3.0])
    p = trace(lambda x: build("n", lambda i: where(~(x[i] >= 0) & (x[i] < -0.7), 1.0, 0.0)),
              x=Vec("n"))
    np.testing.assert_allclose(ev(p, x=x), [1.0, 0.0, 0.0, 0.0])


def test_python_truth_value_and_iteration_are_refused():
    with pytest.raises(TypeError, match="if_"):
        trace(lambda x: x[0] if x[0] > 0 else 0.0, x=Vec("n"))
    with pytest.raises(TypeError, match="build/sum/ifold"):
        trace(lambda x: [a for a in x], x=Vec("n"))
    with pytest.raises(TypeError, match="length"):
        trace(lambda x: len(x), x=Vec("n"))


def test_double_equals_stays_python_equality():
    seen = {}

    def f(x):
        a = x[0]
        seen["eq"] = (a == a, a == x[0])
        return a
    trace(f, x=Vec("n"))
    assert seen["eq"] == (True, False)     # identity, not a symbolic comparison


def test_matrix_indexing_and_sizes():
    p = trace(lambda M, x: build("m", lambda i: sum("n", lambda j: M[i, j] * x[j])),
              M=Mat("m", "n"), x=Vec("n"))
    M, x = RNG.normal(size=(2, 3)), RNG.normal(size=3)
    np.testing.assert_allclose(ev(p, M=M, x=x), M @ x, rtol=1e-12)
    assert show_type(check_program(p)) == "(vec m)"
    q = trace(lambda M: build(3, lambda i: get(get(M, i), 0)), M=Mat(3, 2))
    assert show_type(check_program(q)) == "(vec 3)"


def test_sum_of_a_vector_and_symbolic_sizes():
    p = trace(lambda x: sum(x) + sum(length(x), lambda k: x[k]), x=Vec("n"))
    x = RNG.normal(size=5)
    assert float(ev(p, x=x)) == pytest.approx(2 * x.sum())


def test_ifold_let_and_pairs():
    def f(x):
        acc = ifold(lambda acc, i: pair(fst(acc) + x[i], snd(acc) * x[i]), (0.0, 1.0), "n")
        return let(acc, lambda p: fst(p) + snd(p))
    p = trace(f, x=Vec("n"))
    x = RNG.uniform(0.5, 1.5, size=4)
    assert float(ev(p, x=x)) == pytest.approx(x.sum() + x.prod())
    assert any(isinstance(n, IFold) for n in iter_nodes(p.body))
    assert any(isinstance(n, Let) for n in iter_nodes(p.body))
    check_grads(p, inputs={"x": x}, order=2)


def test_ifold_with_int_init_becomes_real():
    p = trace(lambda x: ifold(lambda s, i: s + x[i], 0, "n"), x=Vec("n"))
    assert show_type(check_program(p)) == "real"
    assert float(ev(p, x=np.ones(3))) == 3.0


def test_pair_output():
    p = trace(lambda x: (sum(x), x[0] * x[1]), x=Vec("n"))
    assert show_type(check_program(p)) == "(pair real real)"
    check_grads(p, inputs={"x": RNG.normal(size=3)})


def test_binder_names_are_readable_unique_and_from_the_lambdas():
    def f(x):
        a = build("n", lambda i: x[i] * 2.0)
        b = build("n", lambda i: sum("n", lambda j: a[j] * x[i]))
        return sum("n", lambda k: b[k] + sum("n", lambda i: a[i]))
    p = trace(f, x=Vec("n"))
    names = binders(p.body)
    assert len(names) == len(set(names))                      # unique
    assert set(names) >= {"i", "j", "k"} and "i_1" in names   # readable
    assert rename_unique(p) == p
    x = RNG.normal(size=3)
    assert float(ev(p, x=x)) == pytest.approx(np.sum(2 * x.sum() * x + 2 * x.sum()))


def test_closures_over_outer_binders_do_not_capture():
    # the inner lambda reuses the name i while referring to the outer index via o
    def f(x):
        return build("n", lambda i: (lambda o: sum("n", lambda i: x[o] * x[i]))(i))
    p = trace(f, x=Vec("n"))
    x = RNG.normal(size=3)
    np.testing.assert_allclose(ev(p, x=x), x * x.sum(), rtol=1e-12)


def test_constant_program_and_printing_round_trip():
    p = trace(lambda x: 3, x=Real)
    assert float(ev(p, x=1.0)) == 3.0
    q = trace(lambda x: sum("n", lambda i: exp(x[i]) / (1 + x[i] ** 2)), x=Vec("n"))
    assert parse(show_program(q)) == q


def test_type_errors_are_clear():
    with pytest.raises(TypeCheckError, match="ill-typed"):
        trace(lambda x, y: if_(x > 0.0, x, y), x=Real, y=Vec("n"))
    with pytest.raises(TypeCheckError, match="sizes n and m of the leading axis differ"):
        trace(lambda x, y: x + y, x=Vec("n"), y=Vec("m"))
    with pytest.raises(TypeCheckError):
        trace(lambda x: x[0][0], x=Vec("n"))
    with pytest.raises(TypeCheckError, match="condition must be a bool"):
        trace(lambda x: if_(x, 1.0, 0.0), x=Real)
    with pytest.raises(TypeCheckError):
        trace(lambda x: sum("k", lambda i: x[i]), x=Vec("n"))      # unknown size name
    with pytest.raises(TypeError, match="no type given"):
        trace(lambda x, y: x, x=Real)
    with pytest.raises(TypeError, match="has no parameter"):
        trace(lambda x: x, x=Real, z=Real)
    with pytest.raises(TypeError, match="expected a type"):
        trace(lambda x: x, x={})            # (x=3 is an example value: a real)


def test_types_as_text():
    p = trace(lambda x: x[0], x="(vec n)")
    assert show_type(p.params[0].type) == "(vec n)"


def test_frontend_exports():
    for name in ["trace", "program", "Vec", "Mat", "Real", "build", "sum", "ifold", "get",
                 "length", "if_", "where", "let", "pair", "fst", "snd", "eq", "exp", "log",
                 "sin", "cos", "tan", "sqrt", "tanh", "dot", "matvec", "outer"]:
        assert hasattr(fe, name), name


def test_trace_then_jvp_and_grad_agree():
    p = trace(lambda W, x, b: sum("m", lambda i: tanh(sum("n", lambda j: W[i][j] * x[j]) + b[i])),
              W=Mat("m", "n"), x=Vec("n"), b=Vec("m"))
    W, x, b = RNG.normal(size=(2, 3)), RNG.normal(size=3), RNG.normal(size=2)
    dW = RNG.normal(size=(2, 3))
    gW = ev(grad(p, "W"), W=W, x=x, b=b)
    jv = float(ev(jvp(p, "W"), W=W, x=x, b=b, dW=dW))
    assert jv == pytest.approx(float(np.sum(gW * dW)), rel=1e-10)
    check_grads(p, inputs={"W": W, "x": x, "b": b})
    assert bound_names(p.body) == {"i", "j"}

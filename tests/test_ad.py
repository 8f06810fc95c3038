"""Dual-number AD: closed-form gradients, the rule table, nesting, structure, errors,
and random smooth programs against central finite differences."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings

from eqsat_ad.ad import derivative, dual_expr, grad, jacobian, jvp, JVP_UNARY
from eqsat_ad.errors import ADError, EqsatError
from eqsat_ad.lang.ast import (Build, Get, If, Int, Let, Num, Pair, Param,
                               Prim, Program, Snd, Sum, Var, iter_nodes)
from eqsat_ad.lang.binders import free_vars
from eqsat_ad.lang.interp import evaluate
from eqsat_ad.lang.syntax import parse, show_program
from eqsat_ad.lang.typecheck import check_program, elaborate
from eqsat_ad.lang.types import INDEX, REAL, SIZE, show_type, vec
from eqsat_ad.testing import (central_difference, check_grads, differentiable_params,
                              random_inputs)

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
RNG = np.random.default_rng(1234)


def example(name: str) -> Program:
    return parse((EXAMPLES / f"{name}.ad").read_text(), file=f"{name}.ad")


def ev(prog, **inputs):
    return np.asarray(evaluate(prog, **inputs), dtype=np.float64)


def P(op, *args):
    return Prim(op, tuple(args))


def backend_agrees(prog, inputs, want):
    """Cross-check with the NumPy backend when it is available."""
    try:
        from eqsat_ad.backend import compile as np_compile
    except ImportError:
        return
    got = np.asarray(np_compile(prog)(**inputs), dtype=np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------------------
# closed-form gradients of the example programs
# --------------------------------------------------------------------------------------
def test_grad_sumsq_is_2x():
    x = RNG.normal(size=5)
    g = grad(example("sumsq"), "x")
    np.testing.assert_allclose(ev(g, x=x), 2 * x, rtol=1e-12)
    backend_agrees(g, {"x": x}, 2 * x)


def test_grad_dot_is_the_other_vector():
    u, w = RNG.normal(size=4), RNG.normal(size=4)
    prog = example("dot")                      # (fun ((x (vec n)) (w (vec n))) x . w)
    np.testing.assert_allclose(ev(grad(prog, "x"), x=u, w=w), w, rtol=1e-12)
    np.testing.assert_allclose(ev(grad(prog, "w"), x=u, w=w), u, rtol=1e-12)


def test_grad_sigmoid_sum():
    x = RNG.normal(size=6)
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(ev(grad(example("sigmoid_sum"), "x"), x=x), s * (1 - s), rtol=1e-10)


def test_grad_logsumexp_is_softmax():
    x = RNG.normal(size=5)
    soft = np.exp(x) / np.exp(x).sum()
    g = grad(example("logsumexp"), "x")
    np.testing.assert_allclose(ev(g, x=x), soft, rtol=1e-10)
    backend_agrees(g, {"x": x}, soft)


def test_grad_polynomial():
    x = RNG.normal(size=5)
    np.testing.assert_allclose(ev(grad(example("poly"), "x"), x=x), 3 * x**2 + 6 * x + 1,
                               rtol=1e-10)


def test_grad_mlp_wrt_W_is_an_outer_product():
    W, x, b = RNG.normal(size=(3, 4)), RNG.normal(size=4), RNG.normal(size=3)
    prog = example("mlp")
    t = np.tanh(W @ x + b)
    gW = grad(prog, "W")
    assert show_type(check_program(gW)) == "(mat m n)"
    np.testing.assert_allclose(ev(gW, W=W, x=x, b=b), np.outer(1 - t**2, x), rtol=1e-10)
    np.testing.assert_allclose(ev(grad(prog, "b"), W=W, x=x, b=b), 1 - t**2, rtol=1e-10)
    np.testing.assert_allclose(ev(grad(prog, "x"), W=W, x=x, b=b), W.T @ (1 - t**2), rtol=1e-10)
    backend_agrees(gW, {"W": W, "x": x, "b": b}, np.outer(1 - t**2, x))


def test_jacobian_of_matvec_is_A():
    A, x = RNG.normal(size=(3, 4)), RNG.normal(size=4)
    prog = example("matvec")
    J = jacobian(prog, "x")
    assert show_type(check_program(J)) == "(mat m n)"
    np.testing.assert_allclose(ev(J, A=A, x=x), A, rtol=1e-12)
    # derivative has one row per input direction: A^T
    np.testing.assert_allclose(ev(derivative(prog, "x"), A=A, x=x), A.T, rtol=1e-12)
    backend_agrees(J, {"A": A, "x": x}, A)


def test_jacobian_wrt_matrix_is_refused_but_derivative_works():
    A, x = RNG.normal(size=(2, 3)), RNG.normal(size=3)
    prog = example("matvec")
    with pytest.raises(ADError, match="expected real or vec"):
        jacobian(prog, "A")
    d = ev(derivative(prog, "A"), A=A, x=x)          # shape (m, n, m): d (Ax)_k / d A_ij
    assert d.shape == (2, 3, 2)
    want = np.zeros((2, 3, 2))
    for i in range(2):
        want[i, :, i] = x
    np.testing.assert_allclose(d, want, rtol=1e-12)


def test_jvp_with_and_without_primal():
    x, dx = RNG.normal(size=4), RNG.normal(size=4)
    prog = example("sumsq")
    j = jvp(prog, "x")
    assert [p.name for p in j.params] == ["x", "dx"]
    np.testing.assert_allclose(float(ev(j, x=x, dx=dx)), 2 * x @ dx, rtol=1e-12)
    jp = jvp(prog, "x", with_primal=True)
    val, tan = evaluate(jp, x=x, dx=dx)
    np.testing.assert_allclose([val, tan], [x @ x, 2 * x @ dx], rtol=1e-12)
    named = jvp(prog, "x", tangent="v")
    assert named.params[-1] == Param("v", vec("n"))


def test_jvp_of_several_parameters():
    u, w, du, dw = (RNG.normal(size=3) for _ in range(4))
    j = jvp(example("dot"), ["x", "w"])
    assert [p.name for p in j.params] == ["x", "w", "dx", "dw"]
    np.testing.assert_allclose(float(ev(j, x=u, w=w, dx=du, dw=dw)), du @ w + u @ dw, rtol=1e-12)


def test_scalar_wrt_in_a_vector_program():
    prog = parse("(fun ((x (vec n)) (s real)) (sum n (lambda (i) (* s (sin (get x i))))))")
    x, s = RNG.normal(size=4), 0.7
    np.testing.assert_allclose(float(ev(grad(prog, "s"), x=x, s=s)), np.sin(x).sum(), rtol=1e-12)
    np.testing.assert_allclose(ev(grad(prog, "x"), x=x, s=s), s * np.cos(x), rtol=1e-12)


# --------------------------------------------------------------------------------------
# the rule table, one primitive at a time
# --------------------------------------------------------------------------------------
UNARY_CLOSED_FORMS = {
    "neg": lambda x: -1.0,
    "exp": math.exp,
    "log": lambda x: 1 / x,
    "sin": math.cos,
    "cos": lambda x: -math.sin(x),
    "tan": lambda x: 1 / math.cos(x) ** 2,          # not Coconut's cos^2
    "sqrt": lambda x: 0.5 / math.sqrt(x),
    "tanh": lambda x: 1 - math.tanh(x) ** 2,
    "log1p": lambda x: 1 / (1 + x),
    "abs": lambda x: math.copysign(1.0, x),       # away from the kink at 0
    "sign": lambda x: 0.0,
}


@pytest.mark.parametrize("op", sorted(JVP_UNARY))
def test_unary_rules(op):
    f = Program((Param("x", REAL),), P(op, Var("x")))
    for x in (0.3, 1.1):
        got = float(ev(grad(f, "x"), x=x))
        assert got == pytest.approx(UNARY_CLOSED_FORMS[op](x), rel=1e-12)
    check_grads(f, inputs={"x": 0.7}, order=2)


@pytest.mark.parametrize("op,dx,dy", [
    ("+", lambda x, y: 1.0, lambda x, y: 1.0),
    ("-", lambda x, y: 1.0, lambda x, y: -1.0),
    ("*", lambda x, y: y, lambda x, y: x),
    ("/", lambda x, y: 1 / y, lambda x, y: -x / y**2),
    ("pow", lambda x, y: y * x ** (y - 1), lambda x, y: x**y * math.log(x)),
    ("max", lambda x, y: 1.0, lambda x, y: 0.0),    # x > y here; ties: tests/test_primitives.py
    ("min", lambda x, y: 0.0, lambda x, y: 1.0),
])
def test_binary_rules(op, dx, dy):
    f = Program((Param("x", REAL), Param("y", REAL)), P(op, Var("x"), Var("y")))
    x, y = 1.3, 0.6
    assert float(ev(grad(f, "x"), x=x, y=y)) == pytest.approx(dx(x, y), rel=1e-12)
    assert float(ev(grad(f, "y"), x=x, y=y)) == pytest.approx(dy(x, y), rel=1e-12)
    check_grads(f, inputs={"x": x, "y": y}, order=2)


def test_pow_with_constant_exponent_works_for_negative_base():
    # the general rule would take log of a negative number; the constant-exponent rule does not
    prog = parse("(fun ((x real)) (pow x 3))")
    assert float(ev(grad(prog, "x"), x=-2.0)) == pytest.approx(12.0)
    g = grad(prog, "x")
    assert not any(isinstance(n, Prim) and n.op == "log" for n in iter_nodes(g.body))
    # an index-valued exponent is constant too
    prog = parse("(fun ((x (vec n))) (sum n (lambda (i) (pow (get x i) i))))")
    x = np.array([-1.5, -2.0, 3.0])
    np.testing.assert_allclose(ev(grad(prog, "x"), x=x), [0.0, 1.0, 2 * 3.0], rtol=1e-12)


def test_real_cast_and_index_arithmetic_have_no_tangent():
    prog = parse("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (+ i 1)))))")
    x = RNG.normal(size=4)
    np.testing.assert_allclose(ev(grad(prog, "x"), x=x), [1.0, 2.0, 3.0, 4.0])


def test_if_gives_the_derivative_of_the_branch_taken():
    prog = parse("(fun ((x real)) (if (> x 0.0) (* x x) (neg x)))")
    assert float(ev(grad(prog, "x"), x=1.5)) == pytest.approx(3.0)
    assert float(ev(grad(prog, "x"), x=-1.5)) == pytest.approx(-1.0)
    # at the kink: the branch taken (else) decides
    assert float(ev(grad(prog, "x"), x=0.0)) == pytest.approx(-1.0)


def test_ifold_with_real_and_vector_accumulators():
    prod = parse("(fun ((x (vec n))) (ifold (lambda (acc i) (* acc (get x i))) 1.0 n))")
    x = RNG.uniform(0.5, 1.5, size=4)
    want = np.array([np.prod(np.delete(x, k)) for k in range(4)])
    np.testing.assert_allclose(ev(grad(prod, "x"), x=x), want, rtol=1e-12)
    # vector accumulator: repeated elementwise scaling, result summed
    vacc = parse("""(fun ((x (vec n)) (s real))
        (let ((v (ifold (lambda (acc i) (build n (lambda (j) (* s (+ (get acc j) (get x i))))))
                        (build n (lambda (j) 0.0)) 3)))
          (sum n (lambda (j) (get v j)))))""")
    check_grads(vacc, inputs={"x": RNG.normal(size=3), "s": 0.8}, order=2)


def test_pairs_lets_and_pair_outputs():
    prog = parse("""(fun ((x real) (y real))
        (let ((p (pair (* x y) (sin x)))) (pair (+ (fst p) (snd p)) (snd p))))""")
    check_grads(prog, inputs={"x": 0.4, "y": -1.2}, order=2)
    val, tan = evaluate(jvp(prog, "x", with_primal=True), x=0.4, y=-1.2, dx=1.0)
    assert tan[0] == pytest.approx(-1.2 + math.cos(0.4))
    assert tan[1] == pytest.approx(math.cos(0.4))


def test_index_and_size_parameters_get_no_seed():
    prog = Program((Param("x", vec("n")), Param("k", INDEX)),
                   P("*", Get(Var("x"), Var("k")), Get(Var("x"), Var("k"))))
    x = RNG.normal(size=4)
    np.testing.assert_allclose(ev(grad(prog, "x"), x=x, k=2), [0, 0, 2 * x[2], 0])


# --------------------------------------------------------------------------------------
# nesting: second derivatives
# --------------------------------------------------------------------------------------
def test_hessian_vector_product_of_logsumexp():
    x, v = RNG.normal(size=4), RNG.normal(size=4)
    s = np.exp(x) / np.exp(x).sum()
    H = np.diag(s) - np.outer(s, s)
    hvp = jvp(grad(example("logsumexp"), "x"), "x")
    np.testing.assert_allclose(ev(hvp, x=x, dx=v), H @ v, rtol=1e-10, atol=1e-14)
    hess = derivative(grad(example("logsumexp"), "x"), "x")
    np.testing.assert_allclose(ev(hess, x=x), H, rtol=1e-10, atol=1e-14)


def test_second_derivative_of_a_scalar_function():
    f = parse("(fun ((x real)) (* (sin x) (exp x)))")
    d2 = grad(grad(f, "x"), "x")
    x = 0.9
    assert float(ev(d2, x=x)) == pytest.approx(2 * math.cos(x) * math.exp(x), rel=1e-12)
    d3 = derivative(d2, "x")
    want = 2 * math.exp(x) * (math.cos(x) - math.sin(x))
    assert float(ev(d3, x=x)) == pytest.approx(want, rel=1e-12)


def test_check_grads_order_two_on_examples():
    for name in ("sumsq", "dot", "sigmoid_sum", "logsumexp", "poly", "matvec"):
        prog = example(name)
        check_grads(prog, sizes={"n": 3, "m": 2}, order=2, seed=3)
    check_grads(example("mlp"), sizes={"n": 2, "m": 2}, order=1, seed=3)


# --------------------------------------------------------------------------------------
# structure of the generated programs
# --------------------------------------------------------------------------------------
def test_grad_programs_are_well_typed_elaborated_and_round_trip():
    for name in ("sumsq", "dot", "logsumexp", "poly", "mlp", "matvec"):
        prog = example(name)
        outs = []
        for p in prog.params:
            outs += [jvp(prog, p.name), derivative(prog, p.name)]
            if show_type(check_program(prog)) == "real":
                outs.append(grad(prog, p.name))
        for d in outs:
            check_program(d)
            assert elaborate(d).body is d.body          # coercions already explicit
            assert parse(show_program(d)) == d          # prints and parses back
            names = {q.name for q in d.params} | {"n", "m"}
            assert free_vars(d.body) <= names


def test_naive_gradient_shape_is_build_over_one_hot_seed():
    """grad of vsum: build n (λr. let x_d = build n (λk. (x[k], if k = r ...)) in snd (sum ...))."""
    g = grad(example("sumsq"), "x")
    assert isinstance(g.body, Build) and g.body.var == "r"
    seed = g.body.body
    assert isinstance(seed, Let) and seed.name == "x_d"
    assert isinstance(seed.value, Build)
    pair = seed.value.body
    assert pair == Pair(Get(Var("x"), Var("k")),
                        If(P("=", Var("k"), Var("r")), Num(1.0), Num(0.0)))
    # the tangent sum survives unsimplified: fst/snd projections of the seed are kept
    assert any(isinstance(n, Snd) for n in iter_nodes(seed.body))
    assert any(isinstance(n, Sum) for n in iter_nodes(seed.body))


def test_dual_of_sum_keeps_primal_and_tangent_sums():
    e = Sum(Var("n"), "i", P("sin", Get(Var("x"), Var("i"))))
    de, t = dual_expr(e, {"x": vec("n"), "n": SIZE})
    assert t == REAL and isinstance(de, Pair)
    assert isinstance(de.fst, Sum) and isinstance(de.snd, Sum)


def test_no_exponential_blowup_in_nested_products():
    # x^(2^k) by repeated squaring: lets keep D linear in the size of the program
    body = Var("x")
    for _ in range(12):
        body = Let("y", body, P("*", Var("y"), Var("y")))
    prog = Program((Param("x", REAL),), body)
    g = grad(prog, "x")
    assert sum(1 for _ in iter_nodes(g.body)) < 40 * sum(1 for _ in iter_nodes(prog.body))
    assert float(ev(g, x=1.0001)) == pytest.approx(4096 * 1.0001 ** 4095, rel=1e-9)


def test_deep_programs_do_not_hit_the_recursion_limit():
    body = Var("x")
    for _ in range(3000):
        body = P("+", P("sin", body), Num(0.1))
    prog = Program((Param("x", REAL),), body)
    jvp(prog, "x")


def test_binders_are_fresh_and_do_not_capture():
    # the program already uses the names the transform likes (r, k, x_d, dx, t)
    prog = parse("""(fun ((x (vec n)) (r real))
        (let ((x_d (* r r)))
          (sum n (lambda (k) (let ((t (get x k))) (* (* t t) x_d))))))""")
    x = RNG.normal(size=3)
    for d in (grad(prog, "x"), grad(prog, "r"), jvp(prog, "x")):
        check_program(d)
    np.testing.assert_allclose(ev(grad(prog, "x"), x=x, r=0.5), 2 * x * 0.25, rtol=1e-12)
    check_grads(prog, inputs={"x": x, "r": 0.5}, order=2)


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------
def test_grad_of_a_non_scalar_program_is_an_error():
    with pytest.raises(ADError, match="grad needs a program returning real.*jacobian"):
        grad(example("matvec"), "x")


def test_unknown_wrt_is_an_error():
    with pytest.raises(ADError, match="unknown parameter 'y'.*parameters: x"):
        grad(example("sumsq"), "y")
    with pytest.raises(ADError):
        jvp(example("sumsq"), ["x", "x"])


def test_wrt_of_index_type_is_an_error():
    prog = Program((Param("x", vec("n")), Param("k", INDEX)), Get(Var("x"), Var("k")))
    with pytest.raises(ADError, match="cannot differentiate with respect to 'k' of type index"):
        grad(prog, "k")


def test_program_without_tangent_output_and_ill_typed_input():
    prog = parse("(fun ((x (vec n))) (length x))")
    with pytest.raises(ADError, match="no tangent"):
        jvp(prog, "x")
    bad = Program((Param("x", REAL),), Get(Var("x"), Int(0)))
    with pytest.raises(EqsatError):
        grad(bad, "x")


def test_tangent_name_clash_is_an_error():
    with pytest.raises(ADError, match="already used"):
        jvp(example("dot"), "x", tangent="w")


def test_check_grads_reports_a_wrong_derivative(monkeypatch):
    import eqsat_ad.ad.dual as dual
    monkeypatch.setitem(dual.JVP_UNARY, "tan",
                        lambda p, d: P("*", d, P("*", P("cos", p), P("cos", p))))  # Coconut's bug
    f = parse("(fun ((x real)) (tan x))")
    with pytest.raises(AssertionError, match="disagrees with central finite differences"):
        check_grads(f, inputs={"x": 0.8})


def test_central_difference_and_random_inputs():
    prog = example("sumsq")
    ins = random_inputs(prog, {"n": 4}, seed=5)
    assert ins["x"].shape == (4,)
    v = np.ones(4)
    fd = central_difference(prog, "x", ins, v)
    assert fd[0] == pytest.approx(2 * ins["x"].sum(), rel=1e-8)


# --------------------------------------------------------------------------------------
# random smooth programs (tests/gen.py) against finite differences
# --------------------------------------------------------------------------------------
try:
    from tests.gen import programs
except ImportError:  # pragma: no cover
    from gen import programs  # type: ignore


def _finite(prog, inputs) -> bool:
    try:
        out = evaluate(prog, **inputs)
    except EqsatError:
        return False
    from eqsat_ad.testing import flatten_value
    v = flatten_value(out)
    return bool(np.all(np.isfinite(v))) and float(np.max(np.abs(v), initial=0.0)) < 1e6


SLOW = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@SLOW
@given(programs(real_result=True, smooth=True, max_depth=3))
def test_random_real_programs_grad_and_jvp(case):
    prog, inputs = case
    assume(_finite(prog, inputs))
    check_grads(prog, inputs=inputs, rtol=1e-5, atol=1e-6)
    for w in differentiable_params(prog)[:1]:          # the NumPy backend runs them too
        g = grad(prog, w)
        want = ev(g, **inputs)
        if np.all(np.isfinite(want)):
            backend_agrees(g, inputs, want)


@SLOW
@given(programs(smooth=True, max_depth=3))
def test_random_programs_jvp_and_jacobian(case):
    prog, inputs = case
    assume(_finite(prog, inputs))
    check_grads(prog, inputs=inputs, rtol=1e-5, atol=1e-6)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(programs(real_result=True, smooth=True, max_depth=2))
def test_random_programs_second_derivatives(case):
    prog, inputs = case
    assume(_finite(prog, inputs))
    check_grads(prog, inputs=inputs, order=2, eps=1e-5, rtol=1e-4, atol=1e-5)


@SLOW
@given(programs(real_result=True, smooth=False, max_depth=3))
def test_random_programs_with_branches(case):
    """if/comparisons: the derivative of the branch taken (finite differences agree away
    from the branch boundaries, i.e. almost surely at random inputs)."""
    prog, inputs = case
    inputs = _jitter(inputs)       # hypothesis likes exact branch boundaries (v = 0.0)
    assume(_finite(prog, inputs))
    check_grads(prog, inputs=inputs, rtol=1e-5, atol=1e-6, modes=("jvp", "grad"))


def _jitter(inputs: dict, scale: float = 1e-3) -> dict:
    """Move real inputs off the measure-zero set where a branch condition flips."""
    rng = np.random.default_rng(len(inputs))
    out = {}
    for k, v in inputs.items():
        if isinstance(v, float):
            out[k] = v + scale * rng.uniform(0.5, 1.0)
        elif isinstance(v, np.ndarray) and v.dtype.kind == "f":
            out[k] = v + scale * rng.uniform(0.5, 1.0, size=v.shape)
        else:
            out[k] = v
    return out


def test_grad_with_respect_to_several_parameters():
    u, w = RNG.normal(size=3), RNG.normal(size=3)
    g = grad(example("dot"), ["x", "w"])
    assert show_type(check_program(g)) == "(pair (vec n) (vec n))"
    gu, gw = evaluate(g, x=u, w=w)
    np.testing.assert_allclose(gu, w)
    np.testing.assert_allclose(gw, u)
    with pytest.raises(ADError, match="distinct"):
        grad(example("dot"), ["x", "x"])


def test_pow_with_an_exponent_that_is_zero_has_tangent_zero():
    """d/dt sum_i c_i t^i at t = 0 is c_1: the i = 0 term's tangent ``0 * 0^-1`` must not
    make it NaN (the exponent-constant rule gives 0 where the exponent is 0)."""
    import numpy as np
    import eqsat_ad as ea
    prog = ea.parse("(fun ((t real) (c (vec n))) (sum n (lambda (i) (* (get c i) (pow t i)))))")
    g = ea.grad(prog, wrt="t")
    c = np.array([1.0, 2.0, 3.0, 4.0])
    for t in (0.0, 0.5, -1.5):
        want = sum(i * c[i] * t ** (i - 1) for i in range(1, len(c)))
        assert np.isclose(ea.evaluate(g, t, c), want)
        assert np.isclose(ea.compile(g)(t, c), want)
        assert np.isclose(ea.compile(ea.optimize(g, sizes={"n": 4}).program)(t, c), want)
    lit = ea.grad(ea.parse("(fun ((t real)) (pow t 0.0))"), wrt="t")
    assert ea.compile(lit)(0.0) == 0.0

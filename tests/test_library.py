"""The M~ library: every function vs NumPy, traced and as a text-level library function."""
from __future__ import annotations

import numpy as np
import pytest

from eqsat_ad.ad import grad, jacobian
from eqsat_ad.frontend import Mat, Real, Vec, trace
from eqsat_ad.frontend import library as L
from eqsat_ad.lang import macros
from eqsat_ad.lang.interp import evaluate
from eqsat_ad.lang.syntax import parse, show_program
from eqsat_ad.lang.typecheck import check_program
from eqsat_ad.lang.types import show_type
from eqsat_ad.testing import check_grads

RNG = np.random.default_rng(11)
u, w = RNG.normal(size=4), RNG.normal(size=4)
A, B = RNG.normal(size=(3, 4)), RNG.normal(size=(4, 2))
S = RNG.normal(size=(3, 3))
s = 0.7


def ev(prog, **inputs):
    return np.asarray(evaluate(prog, **inputs), dtype=np.float64)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# name, traced function, parameter types, inputs, NumPy reference, text form
CASES = [
    ("vsum", lambda u: L.vsum(u), dict(u=Vec("n")), dict(u=u), lambda: u.sum(), "(vsum u)"),
    ("dot", lambda u, w: L.dot(u, w), dict(u=Vec("n"), w=Vec("n")), dict(u=u, w=w),
     lambda: u @ w, "(dot u w)"),
    ("add", lambda u, w: L.add(u, w), dict(u=Vec("n"), w=Vec("n")), dict(u=u, w=w),
     lambda: u + w, "(add u w)"),
    ("sub", lambda u, w: L.sub(u, w), dict(u=Vec("n"), w=Vec("n")), dict(u=u, w=w),
     lambda: u - w, "(sub u w)"),
    ("emul", lambda u, w: L.emul(u, w), dict(u=Vec("n"), w=Vec("n")), dict(u=u, w=w),
     lambda: u * w, "(emul u w)"),
    ("scale", lambda u, s: L.scale(u, s), dict(u=Vec("n"), s=Real), dict(u=u, s=s),
     lambda: u * s, "(scale u s)"),
    ("scale_swapped", lambda u, s: L.scale(s, u), dict(u=Vec("n"), s=Real), dict(u=u, s=s),
     lambda: u * s, "(scale u s)"),
    ("vmap", lambda u: L.vmap(u, lambda a: a * a + 1.0), dict(u=Vec("n")), dict(u=u),
     lambda: u * u + 1, "(map u (lambda (a) (+ (* a a) 1.0)))"),
    ("vmap2", lambda u, w: L.vmap2(u, w, lambda a, b: a * b - a), dict(u=Vec("n"), w=Vec("n")),
     dict(u=u, w=w), lambda: u * w - u, "(map2 u w (lambda (a b) (- (* a b) a)))"),
    ("onehot", lambda u: L.emul(u, L.onehot("n", 2)), dict(u=Vec("n")), dict(u=u),
     lambda: u * np.eye(4)[2], "(emul u (onehot n 2))"),
    ("fill", lambda u, s: L.add(u, L.fill("n", s)), dict(u=Vec("n"), s=Real), dict(u=u, s=s),
     lambda: u + s, "(add u (fill n s))"),
    ("vrange", lambda u: L.emul(u, L.vrange("n")), dict(u=Vec("n")), dict(u=u),
     lambda: u * np.arange(4), "(emul u (vrange n))"),
    ("norm", lambda u: L.norm(u), dict(u=Vec("n")), dict(u=u), lambda: np.linalg.norm(u),
     "(norm u)"),
    ("sqnorm", lambda u: L.sqnorm(u), dict(u=Vec("n")), dict(u=u), lambda: u @ u, "(sqnorm u)"),
    ("outer", lambda u, w: L.outer(u, w), dict(u=Vec("n"), w=Vec("n")), dict(u=u, w=w),
     lambda: np.outer(u, w), "(outer u w)"),
    ("matvec", lambda A, u: L.matvec(A, u), dict(A=Mat("m", "n"), u=Vec("n")), dict(A=A, u=u),
     lambda: A @ u, "(matvec A u)"),
    ("matmul", lambda A, B: L.matmul(A, B), dict(A=Mat("m", "n"), B=Mat("n", "k")),
     dict(A=A, B=B), lambda: A @ B, "(matmul A B)"),
    ("transpose", lambda A: L.transpose(A), dict(A=Mat("m", "n")), dict(A=A), lambda: A.T,
     "(transpose A)"),
    ("eye", lambda S: L.mat_add(S, L.eye("n")), dict(S=Mat("n", "n")), dict(S=S),
     lambda: S + np.eye(3), "(mat_add S (eye n))"),
    ("trace", lambda S: L.trace(S), dict(S=Mat("n", "n")), dict(S=S), lambda: np.trace(S),
     "(trace S)"),
    ("mat_add", lambda A: L.mat_add(A, A), dict(A=Mat("m", "n")), dict(A=A), lambda: 2 * A,
     "(mat_add A A)"),
    ("mat_map", lambda A: L.mat_map(A, lambda a: a * a), dict(A=Mat("m", "n")), dict(A=A),
     lambda: A * A, "(mat_map A (lambda (a) (* a a)))"),
    ("zeros_vec", lambda u: L.add(u, L.zeros("n")), dict(u=Vec("n")), dict(u=u), lambda: u,
     "(add u (zeros n))"),
    ("zeros_mat", lambda A: L.mat_add(A, L.zeros("m", "n")), dict(A=Mat("m", "n")), dict(A=A),
     lambda: A, "(mat_add A (zeros m n))"),
    ("sigmoid", lambda s: L.sigmoid(s), dict(s=Real), dict(s=s), lambda: sigmoid(s),
     "(sigmoid s)"),
    ("logsumexp", lambda u: L.logsumexp(u), dict(u=Vec("n")), dict(u=u),
     lambda: np.log(np.exp(u).sum()), "(logsumexp u)"),
]
IDS = [c[0] for c in CASES]


def _header(types: dict) -> str:
    return " ".join(f"({k} {show_type(t)})" for k, t in types.items())


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_traced_library_function_matches_numpy(case):
    name, fn, types, inputs, ref, _ = case
    prog = trace(fn, **types)
    check_program(prog)
    np.testing.assert_allclose(ev(prog, **inputs), ref(), rtol=1e-12, atol=1e-14)
    assert parse(show_program(prog)) == prog


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_text_library_function_matches_numpy(case):
    name, fn, types, inputs, ref, text = case
    prog = parse(f"(fun ({_header(types)}) {text})")
    check_program(prog)
    np.testing.assert_allclose(ev(prog, **inputs), ref(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", [c for c in CASES if c[0] not in ("vrange",)], ids=lambda c: c[0])
def test_library_derivatives_match_finite_differences(case):
    name, fn, types, inputs, ref, _ = case
    check_grads(trace(fn, **types), inputs=inputs)


def test_every_library_function_is_registered():
    for name in L.LIBRARY:
        m = macros.lookup(name)
        assert m is not None and m.doc
    for name in ["vsum", "dot", "add", "sub", "emul", "scale", "map", "onehot", "fill", "vrange",
                 "norm", "sqnorm", "outer", "matvec", "matmul", "transpose", "eye", "trace",
                 "mat_add", "mat_map", "zeros", "sigmoid", "logsumexp"]:
        assert macros.lookup(name) is not None, name


def test_scale_accepts_a_literal_first():
    prog = parse("(fun ((u (vec n))) (scale 2.0 u))")
    np.testing.assert_allclose(ev(prog, u=u), 2 * u)


def test_outer_is_the_fixed_outer_product():
    prog = trace(lambda a, b: L.outer(a, b), a=Vec("m"), b=Vec("n"))
    assert show_type(check_program(prog)) == "(mat m n)"
    a, b = RNG.normal(size=2), RNG.normal(size=3)
    assert ev(prog, a=a, b=b).shape == (2, 3)


def test_expansions_do_not_capture_argument_variables():
    # arguments named like the library's own binders (i, j, v, u, w, x, A, k, a)
    text = """(fun ((i (vec n)) (j (vec n)) (v (vec n)) (a real))
        (+ (dot (add i j) (map v (lambda (w) (* w a))))
           (vsum (map i (lambda (k) (* k (dot v j)))))))"""
    prog = parse(text)
    check_program(prog)
    i, j, v, a = RNG.normal(size=3), RNG.normal(size=3), RNG.normal(size=3), 0.3
    want = (i + j) @ (v * a) + np.sum(i * (v @ j))
    assert float(ev(prog, i=i, j=j, v=v, a=a)) == pytest.approx(want)


def test_lambda_bodies_referring_to_outer_names():
    prog = parse("""(fun ((x (vec n)) (i real))
        (vsum (map x (lambda (a) (* a i)))))""")
    x = RNG.normal(size=3)
    assert float(ev(prog, x=x, i=2.0)) == pytest.approx(2 * x.sum())


def test_arguments_are_computed_once():
    # a non-trivial argument used twice is let-bound, not duplicated
    prog = trace(lambda u, w: L.sqnorm(L.add(u, w)), u=Vec("n"), w=Vec("n"))
    text = show_program(prog)
    assert text.count("(+ (get u") == 1
    assert float(ev(prog, u=u, w=w)) == pytest.approx((u + w) @ (u + w))


def test_library_gradients_in_closed_form():
    g = grad(trace(lambda u, w: L.dot(u, w), u=Vec("n"), w=Vec("n")), "u")
    np.testing.assert_allclose(ev(g, u=u, w=w), w, rtol=1e-12)
    g = grad(trace(lambda u: L.logsumexp(u), u=Vec("n")), "u")
    np.testing.assert_allclose(ev(g, u=u), np.exp(u) / np.exp(u).sum(), rtol=1e-12)
    J = jacobian(trace(lambda A, u: L.matvec(A, u), A=Mat("m", "n"), u=Vec("n")), "u")
    np.testing.assert_allclose(ev(J, A=A, u=u), A, rtol=1e-12)
    g = grad(trace(lambda u: L.norm(u), u=Vec("n")), "u")
    np.testing.assert_allclose(ev(g, u=u), u / np.linalg.norm(u), rtol=1e-12)
    g = grad(trace(lambda S: L.trace(L.matmul(S, S)), S=Mat("n", "n")), "S")
    np.testing.assert_allclose(ev(g, S=S), 2 * S.T, rtol=1e-12)


def test_mlp_from_the_library():
    prog = trace(lambda W, x, b: L.vsum(L.vmap(L.add(L.matvec(W, x), b), lambda a: L.sigmoid(a))),
                 W=Mat("m", "n"), x=Vec("n"), b=Vec("m"))
    W, x, b = RNG.normal(size=(2, 3)), RNG.normal(size=3), RNG.normal(size=2)
    sg = sigmoid(W @ x + b)
    np.testing.assert_allclose(ev(grad(prog, "W"), W=W, x=x, b=b), np.outer(sg * (1 - sg), x),
                               rtol=1e-10)

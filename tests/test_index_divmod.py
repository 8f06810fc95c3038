"""Integer ``div``/``mod`` on indices (issue 12): floor semantics as Python's ``//``/``%`` in the
interpreter and every backend, a zero divisor an EvalError naming the expression (unless a
guard masks it out), no tangent, index facts in rules/index.egg that the rule checker proves."""
from __future__ import annotations

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.errors import EvalError, TypeCheckError
from eqsat_ad.lang.interp import evaluate
from eqsat_ad.lang.syntax import parse
from eqsat_ad.lang.typecheck import check_program
from eqsat_ad.lang.types import INDEX, SIZE
from eqsat_ad.rulecheck import check_rules
from eqsat_ad.egraph.session import rules_dir
from eqsat_ad.testing import finite_difference_gradient

PAIRS = [(a, b) for a in (-7, -6, -1, 0, 1, 5, 7, 12) for b in (-3, -2, -1, 1, 2, 3, 5)]


@pytest.mark.parametrize("op, py", [("div", lambda a, b: a // b), ("mod", lambda a, b: a % b)])
def test_floor_semantics_scalar_and_vectorised(op, py):
    """Scalars (one call per pair) and vectorised (every pair in one build) agree with Python
    in the interpreter and the compiled program."""
    scalar = parse(f"(fun ((a (array index n)) (b (array index n))) ({op} (get a 0) (get b 0)))")
    for a, b in PAIRS:
        args = dict(a=np.array([a]), b=np.array([b]))
        assert evaluate(scalar, **args) == py(a, b)
        assert ea.compile(scalar)(**args) == py(a, b)
    vec = parse(f"(fun ((a (array index n)) (b (array index n))) "
                f"(build n (lambda (i) ({op} (get a i) (get b i)))))")
    a, b = (np.array(v) for v in zip(*PAIRS))
    want = [py(x, y) for x, y in PAIRS]
    assert list(evaluate(vec, a=a, b=b)) == want
    assert list(ea.compile(vec)(a=a, b=b)) == want
    # a literal divisor (compiled inline) and a loop index as the dividend
    lit = parse(f"(fun ((x (vec n))) (build n (lambda (i) ({op} (- i 4) -3))))")
    assert list(ea.compile(lit)(x=np.zeros(9))) == [py(i - 4, -3) for i in range(9)] \
        == list(evaluate(lit, x=np.zeros(9)))


def test_types():
    env = "(fun ((x (vec n)) (k index)) "
    assert check_program(parse(env + "(div k 2))")) == INDEX
    assert check_program(parse(env + "(mod n (length x)))")) == SIZE   # size with size: a size
    assert check_program(parse(env + "(div n k))")) == INDEX
    # a size result is an extent: a build over half of x
    half = parse("(fun ((x (vec n))) (build (div n 2) (lambda (i) (get x (* 2 i)))))")
    assert list(ea.compile(half)(x=np.arange(7.0))) == [0.0, 2.0, 4.0] == list(evaluate(half, x=np.arange(7.0)))
    for bad in ("(div 1.5 2)", "(mod k (get x 0))", "(div k true)"):
        with pytest.raises(TypeCheckError, match="an index"):
            check_program(parse(env + bad + ")"))


@pytest.mark.parametrize("body", [
    "(div 5 (- k 3))",                                                    # scalar
    "(sum n (lambda (i) (* (get x i) (real (mod 5 (- i 3))))))",          # vectorised
])
def test_zero_divisor_is_an_eval_error_naming_the_expression(body):
    prog = parse(f"(fun ((x (vec n)) (k index)) {body})")
    args = dict(x=np.arange(6.0), k=3)
    text = "(div 5 (- k 3))" if "div" in body else "(mod 5 (- i 3))"
    for run in (lambda: evaluate(prog, **args), lambda: ea.compile(prog)(**args)):
        with pytest.raises(EvalError, match=r"division by zero in " + text.replace("(", r"\(").replace(")", r"\)")):
            run()


def test_a_zero_divisor_masked_by_a_guard_is_not_evaluated():
    prog = parse("(fun ((x (vec n)) (k index)) (+ (sum n (lambda (i) (if (= i 2) 0.0 (* (get x i) "
                 "(real (div 7 (- i 2))))))) (if (= k 0) 1.0 (real (mod 7 k)))))")
    for k in (0, 3):
        args = dict(x=np.arange(1.0, 6.0), k=k)
        want = evaluate(prog, **args)
        assert ea.compile(prog)(**args) == want


def test_no_tangent_and_gradient_through_computed_indices():
    """The derivative of a program that reads x at positions computed with div/mod: checked
    against central differences, naive and optimised, interpreted and compiled."""
    prog = parse("(fun ((x (vec n)))"
                 " (sum n (lambda (i) (* (get x (mod (* 3 i) n))"
                 "                       (sin (* (real (div (- i 2) 3)) (get x (div i 2))))))))")
    x = np.random.default_rng(0).uniform(-1, 1, size=7)
    g = ea.grad(prog, "x")
    want = finite_difference_gradient(lambda v: evaluate(prog, x=v), x)
    np.testing.assert_allclose(evaluate(g, x=x), want, rtol=1e-6, atol=1e-8)
    res = ea.optimize(g, sizes={"n": 7})
    np.testing.assert_allclose(ea.compile(res.program)(x=x), evaluate(g, x=x), rtol=1e-12, atol=1e-12)
    # jvp: the tangent of an index is no part of the program
    d = ea.jvp(prog, "x")
    dx = np.random.default_rng(1).uniform(-1, 1, size=7)
    assert evaluate(d, x=x, dx=dx) == pytest.approx(float(want @ dx), rel=1e-6)


def test_one_hot_collapses_through_a_division_by_a_literal():
    """sum_j (if j = r div 2 then e else 0) collapses: (div r 2) is index arithmetic that
    cannot fail (iarith-div-const), so the gradient of x[i div 2] is O(n)."""
    prog = parse("(fun ((x (vec n)) (y (vec m))) (sum m (lambda (i) (* (get y i) (get x (div i 2))))))")
    g = ea.grad(prog, "y")
    res = ea.optimize(g, sizes={"n": 5, "m": 10})
    assert "sum" not in ea.show_program(res.program)
    x, y = np.arange(5.0), np.ones(10)
    assert list(ea.compile(res.program)(x=x, y=y)) == list(evaluate(g, x=x, y=y)) == [v // 2 for v in range(10)]


def test_index_facts_are_sound():
    rules = ["iarith-div-const", "iarith-mod-const", "mod-nonneg", "mod-below-divisor"]
    rep = check_rules([rules_dir() / "index.egg"], examples=60, rules=rules)
    assert {r.name for r in rep.results} == set(rules)
    assert all(r.status in ("sound", "no equation") for r in rep.results), rep


def test_jax_backend_agrees():
    pytest.importorskip("jax")
    prog = parse("(fun ((x (vec n))) (build n (lambda (i) (* (get x (mod (* 3 i) n)) (real (div (- i 4) 3))))))")
    x = np.arange(1.0, 8.0)
    from eqsat_ad.backend.registry import to_numpy
    assert list(to_numpy(ea.compile(prog, backend="jax")(x=x))) == list(evaluate(prog, x=x))
    bad = parse("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (real (div 5 (- i 3)))))))")
    with pytest.raises(EvalError, match="division by zero"):
        to_numpy(ea.compile(bad, backend="jax")(x=x))


def test_numba_backend_agrees_or_falls_back():
    pytest.importorskip("numba")
    prog = parse("(fun ((x (vec n))) (sum n (lambda (i) (* (get x (mod (* 3 i) n)) (real (div (- i 4) 3))))))")
    x = np.arange(1.0, 8.0)
    f = ea.compile(prog, backend="numba")
    assert f(x=x) == evaluate(prog, x=x)
    if getattr(f, "fallback", None):
        assert "div" in f.fallback or "mod" in f.fallback

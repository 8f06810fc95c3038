"""The ``scan`` form (every state of a fold) and gradients through folds by transposition
(``eqsat_ad/ad/transpose.py``): each checked against the reference interpreter and central
finite differences."""
from __future__ import annotations

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.cost.model import default_cost_model
from eqsat_ad.errors import TypeCheckError
from eqsat_ad.lang.ast import Scan, iter_nodes
from eqsat_ad.lang.normalize import normalize_program
from eqsat_ad.lang.typecheck import check_program
from eqsat_ad.testing import check_grads

POLY_SCAN = "(fun ((c (vec n)) (t real)) (scan (lambda (a i) (+ (* a t) (get c i))) 0.0 n))"

SCANS = [
    POLY_SCAN,
    "(fun ((c (vec n)) (t real)) (scan (lambda (a i) (+ a (get c i))) t n))",
    "(fun ((c (vec n)) (t real)) (scan (lambda (a i) (* (get c i) a)) t n))",
    "(fun ((c (vec n)) (t real)) (scan (lambda (a i) (- a (exp (get c i)))) t n))",
    "(fun ((c (vec n)) (t real)) (scan (lambda (a i) (if (> (get c i) 0.0) (+ a i) a)) 0 n))",
    "(fun ((c (vec n)) (t real)) (build 3 (lambda (j) (scan (lambda (a i) (+ (* a (real j)) (get c i))) t n))))",
    "(fun ((c (vec n)) (t real)) (build 3 (lambda (j) (get (scan (lambda (a i) (+ (* a t) (get c i))) (real j) n) j))))",
    "(fun ((c (vec n)) (t real)) (scan (lambda (a i) (pair (+ (fst a) (snd a)) (* (snd a) t))) (pair 0.0 1.0) n))",
    "(fun ((c (vec n)) (t real)) (scan (lambda (a i) (build n (lambda (k) (tanh (+ (get a k) (* t (get c i))))))) c n))",
    "(fun ((c (vec n)) (t real)) (length (scan (lambda (a i) (+ (* a t) (get c i))) 0.0 (- n 1))))",
]


def _same(a, b) -> bool:
    if isinstance(a, tuple):
        return all(_same(x, y) for x, y in zip(a, b))
    return np.asarray(a).shape == np.asarray(b).shape and np.allclose(a, b, rtol=1e-12, atol=1e-12)


# -- the scan form ------------------------------------------------------------------------
def test_scan_states_and_type():
    p = ea.parse(POLY_SCAN)
    assert str(check_program(p)) == "(vec ?)"
    states = ea.evaluate(p, c=[1.0, 2.0, 3.0], t=2.0)
    assert list(states) == [0.0, 1.0, 4.0, 11.0]         # init first, then every step
    assert ea.parse(str(p)) == p                          # prints and parses back
    assert str(check_program(ea.parse(
        "(fun ((c (vec n))) (scan (lambda (a i) (+ a (get c i))) 0.0 3))"))) == "(vec 4)"


def test_scan_type_errors():
    with pytest.raises(TypeCheckError, match="the body of scan"):
        check_program(ea.parse("(fun ((c (vec n))) (scan (lambda (a i) (pair a a)) 0.0 n))"))
    with pytest.raises(ea.ParseError, match="scan"):
        ea.parse("(fun ((c (vec n))) (scan (lambda (a) a) 0.0 n))")


@pytest.mark.parametrize("text", SCANS)
def test_scan_backend_matches_interpreter(text):
    p = ea.parse(text)
    rng = np.random.default_rng(0)
    for n in (0, 1, 5):
        c, t = rng.normal(size=n), 0.7
        fn = ea.compile(p)
        assert fn.fallback is None
        try:
            want = ea.evaluate(p, c=c, t=t)
        except ea.EvalError:                  # out of range for this n: the same error
            with pytest.raises(ea.EvalError):
                fn(c=c, t=t)
            continue
        assert _same(fn(c=c, t=t), want)
        assert normalize_program(p) is not None


def test_scalar_scans_are_numpy_accumulates():
    src = ea.compile(ea.parse(SCANS[2])).source
    assert "multiply.accumulate" in src and "for " not in src
    assert "add.accumulate" in ea.compile(ea.parse(SCANS[1])).source
    assert "for " in ea.compile(ea.parse(POLY_SCAN)).source     # affine: a loop storing states


def test_scan_cost():
    m = default_cost_model()
    loop = ea.parse(POLY_SCAN.replace("scan", "ifold"))
    cum = ea.parse(SCANS[2])
    assert m.dag_cost(ea.parse(POLY_SCAN), {"n": 1000}) > m.dag_cost(loop, {"n": 1000})
    assert m.dag_cost(cum, {"n": 1000}) < m.dag_cost(loop, {"n": 1000}) / 10


def test_scan_derivatives():
    p = ea.parse("(fun ((c (vec n)) (t real)) (let ((s (scan (lambda (a i) (+ (* a t) (get c i))) 0.0 n)))"
                 " (sum (length s) (lambda (k) (* (get s k) (get s k))))))")
    check_grads(p)


def test_scan_through_the_optimiser():
    p = ea.parse("(fun ((c (vec n)) (t real)) (let ((s (scan (lambda (a i) (+ (* a t) (get c i))) 0.0 n)))"
                 " (sum n (lambda (k) (* (get s k) (get c k))))))")
    res = ea.optimize(p, sizes={"n": 50})
    assert any(isinstance(x, Scan) for x in iter_nodes(res.program.body))
    c = np.linspace(-1, 1, 7)
    assert np.isclose(ea.compile(res.program)(c=c, t=0.3), ea.evaluate(p, c=c, t=0.3))


def test_random_programs_with_scans():
    """The fuzzer's programs read scans; backend and interpreter agree on them."""
    from eqsat_ad.fuzz import backend_case
    found = 0
    for seed in range(200):
        prog, _, problems, _, _ = backend_case(seed)
        if any(isinstance(x, Scan) for x in iter_nodes(prog.body)):
            found += 1
            assert not problems, (seed, problems)
    assert found >= 5

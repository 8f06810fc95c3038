"""Affine and ranged indices (rules/index.egg): gradients of programs that read x[i+1],
x[i-1], x[n-1-i], or sum over a sub-range collapse to O(n), agree with the reference
interpreter, with central finite differences, and their model cost grows like the function's."""
from __future__ import annotations

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.egraph.session import rules_dir
from eqsat_ad.lang.interp import evaluate
from eqsat_ad.testing import finite_difference_gradient

# A difference of shifted reads has the tangent (onehot - onehot) * c; it needs the one-hot
# distributivity of rules/distrib.egg (issue 11 item 1) before it can collapse.
NEEDS_DISTRIB = pytest.mark.skipif(not (rules_dir() / "distrib.egg").exists(),
                                   reason="needs the one-hot distributivity ruleset rules/distrib.egg")

PROGRAMS = {
    # first differences: x[i+1] - x[i] over n-1 terms
    "first-difference": "(fun ((x (vec n))) (sum (- n 1) (lambda (i) (pow (- (get x (+ i 1)) (get x i)) 2.0))))",
    # second differences: x[i+2] - 2 x[i+1] + x[i] over n-2 terms
    "second-difference": "(fun ((x (vec n))) (sum (- n 2) (lambda (i) (pow (+ (- (get x (+ i 2)) "
                         "(* 2.0 (get x (+ i 1)))) (get x i)) 2.0))))",
    # a backward difference x[i] - x[i-1] over i = 1..n-1, written with the shift on the seed side
    "backward-difference": "(fun ((x (vec n))) (sum (- n 1) (lambda (i) (* (get x i) (get x (- (+ i 1) 1))))))",
    # a reversed read x[n-1-i]
    "reverse": "(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x (- (- n 1) i))))))",
    # a sub-range sum: the first n-1 terms only
    "prefix": "(fun ((x (vec n))) (sum (- n 1) (lambda (i) (exp (get x i)))))",
}


def _fd(f, x, h=1e-6):
    return finite_difference_gradient(lambda v: evaluate(f, x=v), x, h)


@pytest.mark.parametrize("name", [pytest.param(n, marks=NEEDS_DISTRIB) if n.endswith("-difference") and
                                  n != "backward-difference" else n for n in sorted(PROGRAMS)])
def test_gradient_collapses_and_is_right(name):
    f = ea.parse(PROGRAMS[name])
    g = ea.grad(f, "x")
    small = ea.optimize(g, sizes={"n": 100})
    # O(n) like the function: from n = 10^6 to 10^7 (where the fixed cost of each NumPy call no
    # longer dominates and the arrays no longer fit in cache, so a cost per element is the same
    # at both sizes) the model cost of gradient / function grows by at most 1.5x (O(n^2): 10x)
    ratios = []
    for n in (10**6, 10**7):
        big = ea.optimize(g, sizes={"n": n}, check=False)
        ratios.append(big.cost / ea.optimize(f, sizes={"n": n}, check=False).cost)
    assert ratios[1] / ratios[0] <= 1.5, ratios
    rng = np.random.default_rng(3)
    fast = ea.compile(small.program)
    for n in (0, 1, 2, 3, 7):
        x = rng.uniform(-1, 1, size=n)
        want = evaluate(g, x=x)
        assert np.allclose(fast(x=x), want)
        assert np.allclose(evaluate(small.program, x=x), want)
        if n:
            assert np.allclose(want, _fd(f, x), atol=1e-5)


@pytest.mark.parametrize("cond", [
    "(if (= r (* 2 j)) 1.0 0.0)",                                        # row 2j of M
    "(if (= r (* 2 j)) 0.0 (if (= r (+ (* 2 j) 1)) 1.0 0.0))",           # row 2j+1 unless 2j
])
def test_onehot_on_an_index_parameter_collapses(cond):
    """A one-hot on an index passed as a parameter (a transposed fold's backward step reads
    its layer's rows 2j, 2j+1): the sum over the rows collapses to a guarded read, no loop;
    the result agrees with the interpreter, j in and out of range."""
    from eqsat_ad.lang.ast import Sum, iter_nodes
    prog = ea.parse(f"(fun ((M (mat m n)) (j index)) (build n (lambda (i) "
                    f"(sum m (lambda (r) (* {cond} (get (get M r) i)))))))")
    res = ea.optimize(prog, sizes={"m": 4, "n": 7})
    assert not any(isinstance(x, Sum) for x in iter_nodes(res.program.body)), res.program
    fn = ea.compile(res.program)
    M = np.random.default_rng(0).normal(size=(4, 7))
    for j in (0, 1, 2):
        assert np.allclose(fn(M=M, j=j), evaluate(prog, M=M, j=j))

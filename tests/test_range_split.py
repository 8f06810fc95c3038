"""A range guard whose range starts at 0 or ends at n (``(if (= i 0) a b)``, ``(if (>= i 1) b a)``,
``(if (< i (- n 1)) a b)``): both branches are computed on their own sub-range, so a shifted read
in the other branch, ``(get y (- i 1))``, is a slice -- no mask of the range, no padded copy
(``_codegen.range_split``).  In a fold body (an RK4 step) that was a mask and a clamped copy per
stage per step.  Values against the reference interpreter (and its errors), gradients against
central differences; structure, not timing."""
import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.errors import EvalError
from eqsat_ad.gradbench.programs import ODE, ode_objective
from eqsat_ad.testing import central_difference


@pytest.mark.parametrize("text, ok", [
    # the range at the start, its complement to the end
    ("(fun ((x (vec n))) (build n (lambda (i) (if (= i 0) (get x i) (* (get x i) (get x (- i 1)))))))", True),
    ("(fun ((x (vec n))) (build n (lambda (i) (if (< i 2) 5.0 (+ (get x (- i 2)) (get x i))))))", True),
    # the range at the end, its complement from the start
    ("(fun ((x (vec n))) (build n (lambda (i) (if (>= i 1) (get x (- i 1)) 7.0))))", True),
    ("(fun ((x (vec n))) (build n (lambda (i) (if (< i (- n 1)) (get x (+ i 1)) (get x i)))))", True),
    # a second axis: the guard on the inner one, the outer one read in both branches
    ("(fun ((x (vec n))) (build n (lambda (j) (build n (lambda (i) "
     "(if (= i 0) (get x j) (* (get x j) (get x (- i 1)))))))))", True),
    ("(fun ((x (vec n))) (build n (lambda (j) (build n (lambda (i) "
     "(if (= j 0) (get x i) (- (get x (- j 1)) (get x i))))))))", True),
    # array-valued branches: np.where as before
    ("(fun ((x (vec n))) (build n (lambda (i) (if (= i 0) (build 2 (lambda (k) 0.0)) "
     "(build 2 (lambda (k) (get x (- i 1))))))))", True),
    # a read out of range in the complement is needed: the interpreter's error
    ("(fun ((x (vec n))) (build n (lambda (i) (if (= i 0) 0.0 (get x (+ i 1))))))", False),
    ("(fun ((x (vec n))) (build n (lambda (i) (if (>= i 2) 0.0 (get x (+ i 2))))))", False),
])
@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_split_ranges_agree_with_the_interpreter(text, ok, n):
    p = ea.parse(text)
    x = np.arange(1.0, n + 1)
    fn = ea.compile(p)
    try:
        want = ea.evaluate(p, x=x)
    except EvalError:
        with pytest.raises(EvalError):
            fn(x=x)
        assert not ok or n == 0
        return
    got, want = np.asarray(fn(x=x)), np.asarray(want)
    if n == 0:         # an empty nested array: the interpreter's has no inner axis
        assert got.size == want.size == 0
        return
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_guarded_shift_in_a_fold_body_is_a_slice():
    """GradBench's ODE (an RK4 step per fold iteration, four stages ``(if (= i 0) x_0 (x_i y_{i-1}))``):
    no range mask is made, and the compiled primal agrees with the interpreter."""
    p = ea.parse(ODE)
    fn = ea.compile(p)
    assert "_range_mask(" not in fn.source
    for n, s in ((1, 3), (2, 1), (6, 4)):
        x = np.linspace(0.3, 0.9, n)
        np.testing.assert_allclose(fn(x=x, s=s), ea.evaluate(p, x=x, s=s), rtol=1e-12)


def test_transposed_rk4_gradient_compiled_matches_fd():
    """The optimised RK4 gradient (transposed, its stages' VJPs guarded shifted reads in the
    backward fold): no range mask, and it agrees with central differences of the interpreter."""
    p = ea.parse(ode_objective("(get yT (- n 1))"))
    res = ea.optimize(ea.grad(p, "x"), sizes={"n": 16, "s": 100})
    fn = ea.compile(res.program)
    assert "_range_mask(" not in fn.source
    x = np.linspace(0.2, 0.8, 6)
    got = fn(x=x, s=5)
    for k in range(6):
        e = np.zeros(6)
        e[k] = 1.0
        assert got[k] == pytest.approx(central_difference(p, "x", {"x": x, "s": 5}, e), rel=1e-6, abs=1e-9)

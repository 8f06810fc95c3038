"""NumPy backend lowerings of issue 11 item 3 (structure and values, no timing): a read
``x[i + k]`` over two index axes is a sliding-window view (no index array, no gather), and the
sum of the elements of a let-bound build is the sum of its body (a dot / matrix-vector
product, not the product array reduced)."""
import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.testing import assert_matches_interpreter

CONV = ("(fun ((x (vec n)) (w (vec K))) (build (+ (- n K) 1) (lambda (i)"
        " (sum K (lambda (k) (* (get w k) (get x (+ i k))))))))")


@pytest.mark.parametrize("text, gather_free", [
    (CONV, True),
    # no guard: x[i + k] out of range for k > 0 at the last rows -- the interpreter's error
    ("(fun ((x (vec n)) (w (vec K))) (build n (lambda (i) (sum K (lambda (k) (get x (+ i k)))))))", True),
    # guarded by a condition on both indices (np.where): the bad indices are masked, clipped
    ("(fun ((x (vec n)) (w (vec K))) (build n (lambda (i) (sum K (lambda (k)"
     " (if (< (+ i k) n) (* (get w k) (get x (+ i k))) 0.0))))))", True),
    # a window of a 2-D layout inside another build
    ("(fun ((x (vec n)) (w (vec K))) (build K (lambda (j) (build (- n K) (lambda (i)"
     " (* (get w j) (get x (+ i j))))))))", True),
])
@pytest.mark.parametrize("n, K", [(0, 0), (1, 1), (3, 1), (5, 2), (8, 3), (2, 4)])
def test_window_read_agrees_with_the_interpreter(text, gather_free, n, K):
    p = ea.parse(text)
    fn = ea.compile(p)
    # a window view, or (a guarded sum whose range moves with k) a loop over the taps adding
    # shifted slices (backend/_taps.py): no index array either way
    assert ("_window(" in fn.source or "] += " in fn.source) and "_gather(" not in fn.source
    assert "_arange(" not in fn.source or "(if (<" in text
    rng = np.random.default_rng(n * 10 + K)
    x, w = rng.standard_normal(n), rng.standard_normal(K)
    assert_matches_interpreter(p, fn, {"x": x, "w": w})


def test_window_is_a_view_not_an_index_array():
    fn = ea.compile(ea.parse(CONV))
    assert "_gather(" not in fn.source and "_oob(" not in fn.source


LOGREG = ("(fun ((X (mat N d)) (y (vec N)) (w (vec d))) (sum N (lambda (n) (let ((z (let ((v (build"
          " (length (get X n)) (lambda (i) (* (get (get X n) i) (get w i)))))) (sum (length v) (lambda (i)"
          " (get v i)))))) (- (log (+ 1.0 (exp z))) (* (get y n) z))))))")


def test_sum_of_a_let_bound_build_is_a_matrix_vector_product():
    p = ea.parse(LOGREG)
    fn = ea.compile(p)
    assert "_dot(X, w)" in fn.source and "transpose" not in fn.source
    rng = np.random.default_rng(0)
    for N, d in [(0, 2), (1, 1), (4, 3)]:
        X, y, w = rng.standard_normal((N, d)), rng.standard_normal(N), rng.standard_normal(d)
        assert fn(X=X, y=y, w=w) == pytest.approx(ea.evaluate(p, X=X, y=y, w=w), rel=1e-12, abs=1e-12)


def test_sum_of_a_let_bound_build_of_another_length_is_not_rewritten():
    # the sum runs over fewer elements than the build has: a plain reduction of the build
    p = ea.parse("(fun ((x (vec n))) (let ((v (build n (lambda (i) (* (get x i) (get x i))))))"
                 " (sum (- n 1) (lambda (i) (get v i)))))")
    fn = ea.compile(p)
    x = np.arange(1.0, 5.0)
    assert fn(x=x) == pytest.approx(ea.evaluate(p, x=x))

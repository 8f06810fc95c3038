"""Results come back in the layout hand-written NumPy would use (issue 10, item 5): nested
builds of elementwise results are computed C-ordered (not returned as transposed views),
``(if (= i j) a b)`` over two axes of one extent is a diagonal fill, not an n^2 mask and
``where``.  Every compiled result is checked against the reference interpreter."""
import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.lang.interp import evaluate


def _check(src: str, shapes: dict, seed: int = 0):
    prog = ea.parse(src)
    rng = np.random.default_rng(seed)
    args = {k: rng.uniform(-1.5, 1.5, size=s) for k, s in shapes.items()}
    fn = ea.compile(prog)
    got = fn(**args)
    want = evaluate(prog, **args)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    for a in args.values():
        assert not np.may_share_memory(got, a)
    return fn, got


OUTER = "(fun ((u (vec m)) (v (vec n))) (build m (lambda (i) (build n (lambda (j) (* (exp (get u i)) (get v j)))))))"


def test_outer_product_is_c_ordered():
    fn, got = _check(OUTER, {"u": (4,), "v": (5,)})
    assert got.flags.c_contiguous and got.shape == (4, 5)
    assert ".transpose" not in fn.source


@pytest.mark.parametrize("src,shapes", [
    # a 3-deep build: two relayouts, the outer one of an already relaid value
    ("(fun ((a (vec p)) (u (vec m)) (v (vec n))) (build p (lambda (k) (build m (lambda (i) "
     "(build n (lambda (j) (+ (* (get a k) (get u i)) (tanh (get v j))))))))))",
     {"a": (2,), "u": (3,), "v": (4,)}),
    # an operand that is itself an elementwise result over both axes, divided by a scalar
    ("(fun ((u (vec m)) (v (vec n))) (let ((s (sum n (lambda (j) (get v j))))) (build m (lambda (i) "
     "(build n (lambda (j) (/ (- (get u i) (* (get u i) (get v j))) s)))))))", {"u": (3,), "v": (4,)}),
])
def test_nested_builds_come_back_c_ordered(src, shapes):
    _, got = _check(src, shapes)
    assert got.flags.c_contiguous


def test_a_transposed_input_keeps_numpys_order():
    # A.T * u[:, None]: NumPy follows the operands' order (as hand-written code would)
    _check("(fun ((A (mat n m)) (u (vec m))) (build m (lambda (i) (build n (lambda (j) "
           "(* (get (get A j) i) (get u i)))))))", {"A": (4, 3), "u": (3,)})


DIAG = "(fun ((x (vec n))) (build n (lambda (i) (build n (lambda (j) (if (= i j) (exp (get x j)) {off}))))))"


@pytest.mark.parametrize("off", ["0.0", "(* (get x i) (get x j))", "2.5"])
def test_diagonal_select_is_a_diagonal_fill(off):
    fn, got = _check(DIAG.format(off=off), {"x": (6,)})
    assert "_diag_where" in fn.source and "_where(" not in fn.source.replace("_diag_where(", "")
    assert got.flags.c_contiguous


def test_diagonal_select_of_unequal_extents_stays_a_where():
    src = "(fun ((x (vec n)) (y (vec m))) (build n (lambda (i) (build m (lambda (j) (if (= i j) (get x i) (get y j)))))))"
    fn, _ = _check(src, {"x": (3,), "y": (5,)})
    assert "_diag_where" not in fn.source


def test_diagonal_select_guards_the_off_diagonal_branch():
    # (get x (+ j 1)) is out of range only at j = n-1, i = n-1: on the diagonal, not taken
    src = ("(fun ((x (vec n))) (build n (lambda (i) (build n (lambda (j) "
           "(if (= i j) 1.0 (if (< j (- n 1)) (get x (+ j 1)) 0.0)))))))")
    _check(src, {"x": (4,)})
    src2 = ("(fun ((x (vec n))) (build n (lambda (i) (build n (lambda (j) "
            "(if (= i j) (get x i) (get x (- (- n 1) j))))))))")
    _check(src2, {"x": (4,)})


@pytest.mark.parametrize("body", ["(tanh (get x i))", "(* (get x i) (exp (get x i)))", "(pow (get x i) 3)"])
def test_elementwise_jacobians_are_diagonal_fills(body):
    g = ea.jacobian(ea.parse(f"(fun ((x (vec n))) (build n (lambda (i) {body})))"), "x")
    res = ea.optimize(g, sizes={"n": 100})
    fn = ea.compile(res.program)
    x = np.linspace(-1, 1, 7)
    np.testing.assert_allclose(fn(x=x), evaluate(res.program, x=x), rtol=1e-12, atol=1e-12)
    assert "_diag_where" in fn.source and fn(x=x).flags.c_contiguous


@pytest.mark.parametrize("src,shapes", [
    # a contraction whose result a build would transpose: einsum writes the output order
    ("(fun ((W (mat m n)) (X (mat k n))) (build k (lambda (r) (build m (lambda (i) "
     "(sum n (lambda (j) (* (get (get W i) j) (get (get X r) j)))))))))", {"W": (3, 4), "X": (2, 4)}),
    # a diagonal select inside a third build (relaid twice), and under an elementwise op
    ("(fun ((a (vec p)) (x (vec n))) (build p (lambda (k) (build n (lambda (i) (build n (lambda (j) "
     "(* (get a k) (if (= i j) (exp (get x i)) (get x j))))))))))", {"a": (2,), "x": (3,)}),
    ("(fun ((a (vec p)) (x (vec n))) (build n (lambda (i) (build p (lambda (k) (build n (lambda (j) "
     "(if (= j i) (* (get a k) (get x i)) 0.0))))))))", {"a": (2,), "x": (3,)}),
])
def test_contractions_and_diagonals_in_deeper_builds(src, shapes):
    _, got = _check(src, shapes)
    assert got.flags.c_contiguous


def test_matvec_inside_a_build_is_one_blas_call_on_the_matrix():
    src = ("(fun ((W (mat m n)) (x (vec n)) (c (vec k))) (build k (lambda (r) (build m (lambda (i) "
           "(* (get c r) (sum n (lambda (j) (* (get (get W i) j) (get x j))))))))))")
    fn, _ = _check(src, {"W": (3, 4), "x": (4,), "c": (2,)})
    assert "_dot(W, x)" in fn.source and "_moveaxis" not in fn.source

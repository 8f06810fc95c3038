"""Reference interpreter and input binding (eqsat_ad.lang.interp, eqsat_ad.runtime)."""
import math

import numpy as np
import pytest

from eqsat_ad.errors import EvalError, ResourceLimitError, ShapeError
from eqsat_ad.lang.ast import (Build, Get, IFold, Int, Length, Let, Num, Param, Prim, Program,
                               Sum, Var)
from eqsat_ad.lang.interp import eval_expr, evaluate
from eqsat_ad.lang.types import REAL, mat, vec
from eqsat_ad.runtime import array_limit, bind_inputs, check_alloc, to_output


def P(text):
    from eqsat_ad.lang.syntax import parse
    return parse(text)


RNG = np.random.default_rng(0)
X = RNG.standard_normal(5)
W = RNG.standard_normal(5)
A = RNG.standard_normal((3, 5))
B = RNG.standard_normal((5, 4))


def test_sum_of_squares_ast():
    x, i = Var("x"), Var("i")
    p = Program((Param("x", vec("n")),), Sum(Length(x), "i", Prim("*", (Get(x, i), Get(x, i)))))
    assert evaluate(p, x=X) == pytest.approx(float(X @ X))
    assert isinstance(evaluate(p, X), float)


def test_dot_ifold():
    p = P("(fun ((x (vec n)) (w (vec n))) (ifold (lambda (acc i) (+ acc (* (get x i) (get w i)))) 0.0 n))")
    assert evaluate(p, x=X, w=W) == pytest.approx(float(X @ W))
    assert evaluate(p, X, W) == pytest.approx(float(X @ W))


def test_matvec_matmul_transpose_outer():
    mv = P("(fun ((A (mat m n)) (x (vec n))) (build m (lambda (i) (sum n (lambda (j) (* (get (get A i) j) (get x j)))))))")
    np.testing.assert_allclose(evaluate(mv, A=A, x=X), A @ X)
    mm = P("(fun ((A (mat m n)) (B (mat n p))) (build m (lambda (i) (build p (lambda (j) "
           "(sum n (lambda (k) (* (get (get A i) k) (get (get B k) j)))))))))")
    np.testing.assert_allclose(evaluate(mm, A=A, B=B), A @ B)
    tr = P("(fun ((A (mat m n))) (build n (lambda (j) (build m (lambda (i) (get (get A i) j))))))")
    np.testing.assert_array_equal(evaluate(tr, A=A), A.T)
    op = P("(fun ((x (vec n)) (w (vec k))) (build n (lambda (i) (build k (lambda (j) (* (get x i) (get w j)))))))")
    np.testing.assert_allclose(evaluate(op, x=X, w=W[:3]), np.outer(X, W[:3]))


def test_logsumexp_sigmoid():
    lse = P("(fun ((x (vec n))) (let ((m (ifold (lambda (m i) (if (> (get x i) m) (get x i) m)) (get x 0) n))) "
            "(+ m (log (sum n (lambda (i) (exp (- (get x i) m))))))))")
    m = X.max()
    assert evaluate(lse, x=X) == pytest.approx(m + math.log(np.exp(X - m).sum()))
    sig = P("(fun ((x (vec n))) (build n (lambda (i) (/ 1.0 (+ 1.0 (exp (neg (get x i))))))))")
    np.testing.assert_allclose(evaluate(sig, x=X), 1 / (1 + np.exp(-X)))


def test_prefix_sum_and_pair_accumulator():
    # sequential: running maximum of prefix sums (acc = (running sum, best))
    p = P("(fun ((x (vec n))) (ifold (lambda (acc i) (pair (+ (fst acc) (get x i)) "
          "(if (> (+ (fst acc) (get x i)) (snd acc)) (+ (fst acc) (get x i)) (snd acc)))) (pair 0.0 -1000.0) n))")
    s, best = evaluate(p, x=X)
    assert s == pytest.approx(X.sum()) and best == pytest.approx(np.cumsum(X).max())
    ps = P("(fun ((x (vec n))) (build n (lambda (i) (sum (+ i 1) (lambda (j) (get x j))))))")
    np.testing.assert_allclose(evaluate(ps, x=X), np.cumsum(X))


def test_let_if_pairs_ints():
    p = P("(fun ((x (vec n))) (let ((a (get x 0)) (b (* a 2.0))) (pair (if (< a b) a b) (length x))))")
    a = X[0]
    assert evaluate(p, x=X) == (min(a, 2 * a), 5)
    arr_of_pairs = P("(fun ((x (vec n))) (build n (lambda (i) (pair (get x i) (* i i)))))")
    xs, sq = evaluate(arr_of_pairs, x=X)
    np.testing.assert_array_equal(xs, X)
    np.testing.assert_array_equal(sq, np.arange(5) ** 2)


def test_out_of_range_is_an_error():
    p = P("(fun ((x (vec n))) (build n (lambda (i) (get x (+ i 2)))))")
    with pytest.raises(EvalError, match=r"index 5 out of range for array of length 5 in \(get x \(\+ i 2\)\)"):
        evaluate(p, x=X)
    neg = P("(fun ((x (vec n))) (get x (- 0 1)))")
    with pytest.raises(EvalError, match="index -1 out of range"):
        evaluate(neg, x=X)


def test_ieee_semantics_no_warnings():
    import warnings
    p = P("(fun ((x real)) (pair (/ 1.0 x) (pair (log x) (sqrt (- x 1.0)))))")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = evaluate(p, x=0.0)
    assert r[0] == math.inf and r[1][0] == -math.inf and math.isnan(r[1][1])


def test_shape_errors():
    p = P("(fun ((x (vec n)) (w (vec n)) (A (mat n 3))) (get x 0))")
    with pytest.raises(ShapeError, match=r"input 'w' should be \(vec n\) with n=5 \(from 'x'\), got shape \(4,\)"):
        evaluate(p, x=X, w=W[:4], A=np.zeros((5, 3)))
    with pytest.raises(ShapeError, match=r"input 'A' should be \(mat n 3\)"):
        evaluate(p, x=X, w=W, A=np.zeros((5, 4)))
    with pytest.raises(ShapeError, match="missing input 'A'"):
        evaluate(p, x=X, w=W)
    with pytest.raises(ShapeError, match="unknown input 'q'"):
        evaluate(p, x=X, w=W, A=np.zeros((5, 3)), q=1)
    with pytest.raises(ShapeError, match="rank 1"):
        evaluate(p, x=A, w=W, A=np.zeros((5, 3)))
    with pytest.raises(ShapeError, match="given twice"):
        evaluate(p, X, x=X)


def test_bind_inputs_sizes_and_scalars():
    p = Program((Param("s", REAL), Param("M", mat("m", "n"))), Var("s"))
    env = bind_inputs(p, (2,), {"M": [[1, 2, 3]]})
    assert env["s"] == 2.0 and isinstance(env["s"], float)
    assert env["m"] == 1 and env["n"] == 3 and env["M"].dtype == np.float64
    with pytest.raises(ShapeError, match="should be real"):
        bind_inputs(p, (np.ones(2), np.ones((1, 1))))


def test_resource_limit():
    with pytest.raises(ResourceLimitError, match="GiB"):
        check_alloc((10 ** 6, 10 ** 6))
    p = P("(fun ((x (vec n))) (build 100000 (lambda (i) 1.0)))")
    with array_limit(1000):
        with pytest.raises(ResourceLimitError):
            evaluate(p, x=X)


def test_deep_program_does_not_crash():
    e = Num(0.0)
    for _ in range(5000):
        e = Prim("+", (e, Num(1.0)))
    from eqsat_ad.lang.binders import cache_hashes
    cache_hashes(e)
    p = Program((), e)
    assert evaluate(p) == 5000.0
    # a let chain 3000 deep: let v0 = 1 in let v1 = v0 + 1 in ...
    body = Var("v2999")
    for k in range(2999, 0, -1):
        body = Let(f"v{k}", Prim("+", (Var(f"v{k - 1}"), Num(1.0))), body)
    body = cache_hashes(Let("v0", Num(1.0), body))
    assert evaluate(Program((), body)) == 3000.0


def test_eval_expr_and_to_output():
    assert eval_expr(Prim("*", (Int(3), Int(4))), {}) == 12
    assert isinstance(eval_expr(Prim("/", (Int(3), Int(4))), {}), np.float64)
    assert to_output([(1.0, 2)]) [1].dtype == np.int64
    b = Build(Int(3), "i", IFold("a", "j", Prim("+", (Var("a"), Var("j"))), Int(0), Var("i")))
    np.testing.assert_array_equal(eval_expr(b, {}), [0, 0, 1])

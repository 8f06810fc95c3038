"""NumPy backend (eqsat_ad.backend): same values as the reference interpreter, vectorised."""
import math
import warnings

import numpy as np
import pytest

from eqsat_ad.backend import compile
from eqsat_ad.errors import EvalError, ResourceLimitError, ShapeError
from eqsat_ad.lang.ast import Build, Get, Int, Length, Num, Param, Prim, Program, Sum, Var
from eqsat_ad.lang.interp import evaluate
from eqsat_ad.lang.types import vec
from eqsat_ad.runtime import array_limit


def P(text):
    from eqsat_ad.lang.syntax import parse
    return parse(text)


RNG = np.random.default_rng(1)
X = RNG.standard_normal(6)
W = RNG.standard_normal(6)
A = RNG.standard_normal((4, 6))
B = RNG.standard_normal((6, 3))


def same(a, b):
    """Equal up to rounding, including nan/inf, recursively through tuples."""
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y)
        return
    assert type(a) is type(b) or (isinstance(a, float) and isinstance(b, float)), (type(a), type(b))
    if isinstance(a, np.ndarray):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True)
    elif isinstance(a, float):
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12)
    else:
        assert a == b


def check(text, *args, expect=None, **kwargs):
    p = P(text) if isinstance(text, str) else text
    f = compile(p)
    got = f(*args, **kwargs)
    ref = evaluate(p, *args, **kwargs)
    same(got, ref)
    if expect is not None:
        same(got, expect)
    return f, got


PROGRAMS = {
    "sumsq": ("(fun ((x (vec n))) (sum n (lambda (i) (* (get x i) (get x i)))))", dict(x=X), float(X @ X)),
    "sumsq_pow": ("(fun ((x (vec n))) (sum n (lambda (i) (pow (get x i) 2))))", dict(x=X), float(X @ X)),
    "dot": ("(fun ((x (vec n)) (w (vec n))) (ifold (lambda (acc i) (+ acc (* (get x i) (get w i)))) 0.0 (length x)))",
            dict(x=X, w=W), float(X @ W)),
    "matvec": ("(fun ((A (mat m n)) (x (vec n))) (build m (lambda (i) (sum n (lambda (j) (* (get (get A i) j) (get x j)))))))",
               dict(A=A, x=X), A @ X),
    "matmul": ("(fun ((A (mat m n)) (B (mat n p))) (build m (lambda (i) (build p (lambda (j) "
               "(sum n (lambda (k) (* (get (get A i) k) (get (get B k) j)))))))))", dict(A=A, B=B), A @ B),
    "transpose": ("(fun ((A (mat m n))) (build n (lambda (j) (build m (lambda (i) (get (get A i) j))))))",
                  dict(A=A), A.T),
    "transpose2": ("(fun ((A (mat m n))) (build m (lambda (i) (build n (lambda (j) "
                   "(get (get (build n (lambda (a) (build m (lambda (b) (get (get A b) a))))) j) i))))))",
                   dict(A=A), A),
    "outer": ("(fun ((x (vec n)) (w (vec k))) (build n (lambda (i) (build k (lambda (j) (* (get x i) (get w j)))))))",
              dict(x=X, w=W[:4]), np.outer(X, W[:4])),
    "logsumexp": ("(fun ((x (vec n))) (let ((m (ifold (lambda (m i) (if (> (get x i) m) (get x i) m)) (get x 0) n))) "
                  "(+ m (log (sum n (lambda (i) (exp (- (get x i) m))))))))",
                  dict(x=X), float(X.max() + np.log(np.exp(X - X.max()).sum()))),
    "sigmoid": ("(fun ((x (vec n))) (build n (lambda (i) (/ 1.0 (+ 1.0 (exp (neg (get x i))))))))",
                dict(x=X), 1 / (1 + np.exp(-X))),
    "poly": ("(fun ((x (vec n))) (sum n (lambda (i) (let ((v (get x i))) (+ (+ (pow v 3) (* 3.0 (pow v 2))) v)))))",
             dict(x=X), float(np.sum(X ** 3 + 3 * X ** 2 + X))),
    "trace": ("(fun ((M (mat n n))) (sum n (lambda (i) (get (get M i) i))))", dict(M=A[:, :4]),
              float(np.trace(A[:, :4]))),
    "prefix_seq": ("(fun ((x (vec n))) (ifold (lambda (acc i) (+ (* 0.5 acc) (get x i))) 0.0 n))", dict(x=X), None),
    "prefix_tri": ("(fun ((x (vec n))) (build n (lambda (i) (sum (+ i 1) (lambda (j) (get x j))))))",
                   dict(x=X), np.cumsum(X)),
    "pair_acc": ("(fun ((x (vec n)) (w (vec n))) (ifold (lambda (acc i) (pair (+ (fst acc) (get x i)) "
                 "(+ (snd acc) (* (get x i) (get w i))))) (pair 0.0 1.0) n))", dict(x=X, w=W),
                 (float(X.sum()), float(1 + X @ W))),
    "pair_acc_dual": ("(fun ((x (vec n))) (ifold (lambda (acc i) (pair (* (fst acc) (get x i)) "
                      "(+ (* (snd acc) (get x i)) (fst acc)))) (pair 1.0 0.0) n))", dict(x=X), None),
    "pair_acc_mixed": ("(fun ((x (vec n))) (ifold (lambda (acc i) (pair (+ (fst acc) (get x i)) "
                       "(if (> (+ (fst acc) (get x i)) (snd acc)) (+ (fst acc) (get x i)) (snd acc)))) "
                       "(pair 0.0 -1000.0) n))", dict(x=X), (float(X.sum()), float(np.cumsum(X).max()))),
    "nested_hoist": ("(fun ((x (vec n)) (w (vec n))) (build n (lambda (i) (build n (lambda (j) "
                     "(* (get x j) (sum n (lambda (k) (* (get w k) (get w k))))))))))",
                     dict(x=X, w=W), np.tile(X * (W @ W), (6, 1))),
    "lets_ifs": ("(fun ((x (vec n)) (s real)) (let ((a (* s 2.0))) (build n (lambda (i) "
                 "(if (> (get x i) 0.0) (* a (get x i)) (if (< s 0.0) 1.0 (neg a)))))))",
                 dict(x=X, s=0.5), np.where(X > 0, X, -1.0)),
    "scalar_if_arrays": ("(fun ((x (vec n)) (s real)) (if (> s 0.0) (build n (lambda (i) (get x i))) "
                         "(build n (lambda (i) 1.0))))", dict(x=X, s=-1.0), np.ones(6)),
    "onehot": ("(fun ((v (vec n))) (build n (lambda (r) (ifold (lambda (a i) (+ a (* (get v i) "
               "(if (= r i) 1.0 0.0)))) 0.0 n))))", dict(v=X), X),
    "grad_sum_naive": ("(fun ((v (vec n))) (build n (lambda (r) (snd (ifold (lambda (x i) (pair (+ (fst x) (get v i)) "
                       "(+ (snd x) (if (= r i) 1.0 0.0)))) (pair 0.0 0.0) n)))))", dict(v=X), np.ones(6)),
    "stencil": ("(fun ((x (vec n))) (build (- n 2) (lambda (i) (- (+ (get x i) (get x (+ i 2))) (* 2.0 (get x (+ i 1)))))))",
                dict(x=X), X[:-2] + X[2:] - 2 * X[1:-1]),
    "computed_index": ("(fun ((x (vec n))) (build n (lambda (i) (get x (- (- n 1) i)))))", dict(x=X), X[::-1]),
    "index_arith": ("(fun ((x (vec n))) (build n (lambda (i) (* (real (* i i)) (get x i)))))", dict(x=X),
                    np.arange(6.) ** 2 * X),
    "array_of_pairs": ("(fun ((x (vec n))) (build n (lambda (i) (pair (get x i) (* 2.0 (get x i))))))",
                       dict(x=X), (X, 2 * X)),
    "get_of_pairs": ("(fun ((x (vec n))) (let ((ps (build n (lambda (i) (pair (get x i) i))))) "
                     "(sum n (lambda (i) (* (fst (get ps (- (- n 1) i))) (real (snd (get ps i))))))))",
                     dict(x=X), float(X[::-1] @ np.arange(6.))),
    "vector_acc": ("(fun ((A (mat m n))) (ifold (lambda (acc i) (build n (lambda (j) (+ (get acc j) "
                   "(get (get A i) j))))) (build n (lambda (j) 0.0)) m))", dict(A=A), A.sum(axis=0)),
    "seq_vector_acc": ("(fun ((A (mat m n))) (ifold (lambda (acc i) (build n (lambda (j) (* 0.5 (+ (get acc j) "
                       "(get (get A i) j)))))) (build n (lambda (j) 0.0)) m))", dict(A=A), None),
    "seq_in_build": ("(fun ((x (vec n)) (w (vec k))) (build k (lambda (j) (ifold (lambda (a i) "
                     "(+ (* a (get w j)) (get x i))) 0.0 n))))", dict(x=X, w=W[:3]), None),
    "and_or_guard": ("(fun ((x (vec n))) (build n (lambda (i) (if (and (< (+ i 1) n) (> (get x (+ i 1)) 0.0)) 1.0 0.0))))",
                     dict(x=X), np.append((X[1:] > 0).astype(float), 0.0)),
    "guarded_get": ("(fun ((x (vec n))) (build n (lambda (i) (if (< i 1) 0.0 (get x (- i 1))))))",
                    dict(x=X), np.concatenate([[0.0], X[:-1]])),
    "guarded_scalar_get": ("(fun ((x (vec n))) (build n (lambda (i) (if (> i 100) (get x 1000) (get x i)))))",
                           dict(x=X), X),
    "prod_fold": ("(fun ((x (vec n))) (ifold (lambda (a i) (* a (get x i))) 2.0 n))", dict(x=X), float(2 * np.prod(X))),
    "min_fold": ("(fun ((x (vec n))) (ifold (lambda (a i) (if (< (get x i) a) (get x i) a)) 100.0 n))",
                 dict(x=X), float(X.min())),
    "cond_sum_fold": ("(fun ((x (vec n))) (ifold (lambda (a i) (if (> (get x i) 0.0) (+ a (get x i)) a)) 0.0 n))",
                      dict(x=X), float(X[X > 0].sum())),
    "sizes_and_ints": ("(fun ((x (vec n)) (A (mat m n))) (pair (length x) (pair m (* n 2))))",
                       dict(x=X, A=A), (6, (4, 12))),
    "bools": ("(fun ((x (vec n))) (build n (lambda (i) (not (> (get x i) 0.0)))))", dict(x=X), ~(X > 0)),
    "int_array": ("(fun ((x (vec n))) (build n (lambda (i) (* i 3))))", dict(x=X), np.arange(6) * 3),
    "sum_of_const": ("(fun ((x (vec n))) (sum n (lambda (i) 2.5)))", dict(x=X), 15.0),
    "build_const": ("(fun ((x (vec n))) (build 3 (lambda (i) x)))", dict(x=X), np.tile(X, (3, 1))),
    "diag_matrix": ("(fun ((x (vec n))) (build n (lambda (i) (build n (lambda (j) (if (= i j) (get x i) 0.0))))))",
                    dict(x=X), np.diag(X)),
    "tri_nested": ("(fun ((A (mat n n))) (build n (lambda (i) (sum i (lambda (j) (get (get A i) j))))))",
                   dict(A=A[:, :4]), np.array([A[i, :i].sum() for i in range(4)])),
    "masked_loop": ("(fun ((x (vec n))) (build n (lambda (i) (ifold (lambda (a j) (+ (* a 0.5) (get x j))) 0.0 i))))",
                    dict(x=X), None),
    "empty_input": ("(fun ((x (vec n))) (pair (sum n (lambda (i) (get x i))) (build n (lambda (i) (get x i)))))",
                    dict(x=np.zeros(0)), (0.0, np.zeros(0))),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_program(name):
    text, inputs, expect = PROGRAMS[name]
    f, _ = check(text, expect=expect, **inputs)
    compile(P(text))  # compiles twice the same way
    assert f.fallback is None


def test_positional_and_keyword_calls():
    f = compile(P(PROGRAMS["dot"][0]))
    assert f(X, W) == pytest.approx(float(X @ W))
    assert f(X, w=W) == pytest.approx(float(X @ W))
    assert f(w=list(W), x=list(X)) == pytest.approx(float(X @ W))
    assert f(X.astype(np.float32), W) == pytest.approx(float(X.astype(np.float32) @ W))


def test_vectorised_no_python_loops_in_source():
    for name in ("sumsq", "matvec", "matmul", "transpose", "outer", "logsumexp", "sigmoid", "poly",
                 "prefix_tri", "pair_acc", "onehot", "grad_sum_naive", "nested_hoist", "stencil",
                 "cond_sum_fold", "min_fold", "prod_fold"):
        src = compile(P(PROGRAMS[name][0])).source
        assert "for " not in src, (name, src)
    for name in ("prefix_seq", "pair_acc_dual", "seq_in_build", "seq_vector_acc"):
        assert "for " in compile(P(PROGRAMS[name][0])).source


def test_hoisting_and_powers():
    src = compile(P(PROGRAMS["nested_hoist"][0])).source
    assert src.count("_dot(") == 1 and "_arange" not in src
    src = compile(P(PROGRAMS["poly"][0])).source
    assert "_pow" not in src and "power" not in src
    assert src.count("(x * x)") == 1          # x*x shared between x^2 and x^3


def test_out_of_range_get_raises_in_both():
    text = "(fun ((x (vec n))) (build n (lambda (i) (get x (+ i 2)))))"
    msg = r"index 6 out of range for array of length 6 in \(get x \(\+ i 2\)\)"
    with pytest.raises(EvalError, match=msg):
        evaluate(P(text), x=X)
    with pytest.raises(EvalError, match=msg):
        compile(P(text))(x=X)
    for t in ("(fun ((x (vec n))) (get x n))",
              "(fun ((x (vec n))) (build n (lambda (i) (get x (- i 1)))))",
              "(fun ((x (vec n))) (build n (lambda (i) (get x (* i 2)))))",
              "(fun ((x (vec n))) (ifold (lambda (a i) (+ (* a 2.0) (get x (+ i 1)))) 0.0 n))",
              "(fun ((x (vec n))) (build n (lambda (i) (if (> (get x 0) -100.0) (get x (+ i 3)) 0.0))))"):
        with pytest.raises(EvalError, match="out of range"):
            evaluate(P(t), x=X)
        with pytest.raises(EvalError, match="out of range"):
            compile(P(t))(x=X)


def test_wrong_shapes():
    f = compile(P("(fun ((x (vec n)) (w (vec n)) (A (mat n 3))) (sum n (lambda (i) (* (get x i) (get w i)))))"))
    with pytest.raises(ShapeError, match=r"input 'w' should be \(vec n\) with n=6 \(from 'x'\), got shape \(4,\)"):
        f(x=X, w=W[:4], A=np.zeros((6, 3)))
    with pytest.raises(ShapeError, match=r"input 'A' should be \(mat n 3\)"):
        f(x=X, w=W, A=np.zeros((6, 4)))
    with pytest.raises(ShapeError, match="missing input 'A'"):
        f(x=X, w=W)
    with pytest.raises(ShapeError, match="unknown input 'q'"):
        f(x=X, w=W, A=np.zeros((6, 3)), q=1)
    with pytest.raises(ShapeError, match="too many inputs"):
        f(X, W, np.zeros((6, 3)), 4)
    with pytest.raises(ShapeError, match="rank 1"):
        f(x=A, w=W, A=np.zeros((6, 3)))


def test_division_by_zero_like_numpy():
    text = "(fun ((x (vec n)) (s real)) (pair (/ 1.0 s) (pair (log s) (build n (lambda (i) (/ (get x i) s))))))"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f, got = check(text, x=np.array([1.0, -1.0, 0.0]), s=0.0)
    assert got[0] == math.inf and got[1][0] == -math.inf
    assert got[1][1][0] == math.inf and got[1][1][1] == -math.inf and math.isnan(got[1][1][2])


def test_resource_limit_guard():
    f = compile(P("(fun ((x (vec n))) (build n (lambda (i) (build n (lambda (j) (* (get x i) (get x j)))))))"))
    with array_limit(8 * 30):
        with pytest.raises(ResourceLimitError, match="limit"):
            f(x=X)
    np.testing.assert_allclose(f(x=X), np.outer(X, X))


def test_results_are_writeable_and_sources_readable():
    f = compile(P("(fun ((x (vec n))) (build n (lambda (i) 1.0)))"))
    out = f(x=X)
    out[0] = 5.0
    f = compile(P(PROGRAMS["build_const"][0]))
    f(x=X)[0, 0] = 1.0
    assert compile(P(PROGRAMS["matvec"][0])).program.params[0].name == "A"


def test_ast_built_program_and_unusual_names():
    x, i = Var("x"), Var("i")
    p = Program((Param("x", vec("n")),), Sum(Length(x), "i", Prim("*", (Get(x, i), Num(2.0)))))
    assert compile(p)(x=X) == pytest.approx(2 * X.sum())
    p2 = Program((Param("lambda", vec("n")),), Build(Int(2), "i", Get(Var("lambda"), Var("i"))))
    f = compile(p2)
    np.testing.assert_array_equal(f(X), X[:2])
    np.testing.assert_array_equal(f(**{"lambda": X}), X[:2])


def test_ragged_build_falls_back_to_interpreter():
    text = "(fun ((x (vec n))) (sum n (lambda (i) (length (build i (lambda (j) (get x j)))))))"
    f = compile(P(text))
    assert f.fallback and "ragged" in f.fallback
    assert f(x=X) == evaluate(P(text), x=X)


# ---------------------------------------------------------------------------------------
# property: compiled == interpreted on random well-typed programs (tests/gen.py)
# ---------------------------------------------------------------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

try:
    from tests.gen import programs
except ImportError:  # pragma: no cover - run from inside tests/
    from gen import programs  # type: ignore


def _agree(prog, inputs):
    ref = evaluate(prog, **inputs)
    f = compile(prog)
    got = f(**inputs)
    try:
        same(got, ref)
    except AssertionError as exc:      # show the program and the generated code
        raise AssertionError(f"{exc}\nprogram:\n{prog}\nsource:\n{f.source}") from None


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(programs(max_depth=4))
def test_compiled_matches_interpreter_random(case):
    _agree(*case)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(programs(max_depth=3, sizes={"n": 1, "m": 3}))
def test_compiled_matches_interpreter_random_small_sizes(case):
    _agree(*case)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(-3, 3), st.integers(-3, 3), st.integers(0, 5), st.integers(1, 6),
       st.sampled_from(["<", ">", "<=", ">="]), st.booleans())
def test_guarded_shifted_gets_random(off1, off2, cut, n, cmp, vectorised):
    """Shifted gets under (possibly vectorised) conditions: out-of-range reads in branches
    that are not taken never raise, those that are taken raise in both executors."""
    cond = f"({cmp} i {cut})" if vectorised else f"({cmp} (length x) {cut})"
    text = (f"(fun ((x (vec n))) (build n (lambda (i) (if {cond} "
            f"(get x (+ i {off1})) (* 2.0 (get x (- i {-off2})))))))")
    x = np.arange(1.0, n + 1)
    p = P(text)
    try:
        ref = evaluate(p, x=x)
    except EvalError:
        with pytest.raises(EvalError, match="out of range"):
            compile(p)(x=x)
        return
    same(compile(p)(x=x), ref)


def test_empty_loops_do_not_evaluate_their_body():
    """A get that would be out of range inside a loop of extent 0 is never evaluated by the
    interpreter; the compiled code (which hoists it) must not raise either."""
    texts = ["(fun ((x (vec n)) (y (vec m))) (sum m (lambda (i) (get x 10))))",
             "(fun ((x (vec n)) (y (vec m))) (build m (lambda (i) (get x 10))))",
             "(fun ((x (vec n)) (y (vec m))) (ifold (lambda (a i) (* a (get x 10))) 1.0 m))",
             "(fun ((x (vec n)) (y (vec m))) (ifold (lambda (a i) (+ a (get x 10))) 1.0 m))"]
    for t in texts:
        check(t, x=X, y=np.zeros(0))
        with pytest.raises(EvalError, match="index 10 out of range"):
            compile(P(t))(x=X, y=np.ones(2))


def test_scalar_if_does_not_evaluate_the_other_branch():
    t = "(fun ((x (vec n)) (s real)) (if (> s 0.0) (get x 0) (get x 100)))"
    check(t, x=X, s=1.0)
    with pytest.raises(EvalError, match="index 100"):
        compile(P(t))(x=X, s=-1.0)


def test_reductions_of_vectors_and_matrix_results():
    check("(fun ((A (mat m n)) (B (mat n p))) (build p (lambda (j) (build m (lambda (i) "
          "(sum n (lambda (k) (* (get (get B k) j) (get (get A i) k)))))))))", A=A, B=B, expect=(A @ B).T)
    # a contraction where both factors carry extra axes and one is not the innermost
    check("(fun ((x (vec n)) (A (mat n n))) (build n (lambda (i) (build n (lambda (j) (sum n (lambda (k) "
          "(* (* (get x i) (get (get A k) j)) (get (get A i) k)))))))))", x=X[:4], A=A[:, :4],
          expect=X[:4, None] * (A[:, :4] @ A[:, :4]))


def test_pair_index_bool_and_square_parameters():
    from eqsat_ad.lang.ast import Fst, If, Snd
    from eqsat_ad.lang.types import BOOL, INDEX, REAL, PairT
    p = Program((Param("p", PairT(REAL, vec("n"))), Param("k", INDEX), Param("b", BOOL), Param("w", vec("n"))),
                If(Var("b"), Prim("*", (Fst(Var("p")), Get(Snd(Var("p")), Var("k")))),
                   Sum(Var("n"), "i", Get(Var("w"), Var("i")))))
    f = compile(p)
    for args in (((2.0, [1.0, 5.0]), 1, True, [1.0, 1.0]), ((2.0, [1.0, 5.0]), 1, False, [1.0, 3.0])):
        assert f(*args) == evaluate(p, *args)
    with pytest.raises(EvalError, match="index 2 out of range"):
        f((2.0, [1.0, 5.0]), 2, True, [1.0, 1.0])
    with pytest.raises(ShapeError, match=r"with n=2 \(from 'p.snd'\)"):
        f((2.0, [1.0, 5.0]), 1, True, [1.0, 1.0, 3.0])
    sq = compile(P("(fun ((M (mat n n))) (sum n (lambda (i) (get (get M i) i))))"))
    with pytest.raises(ShapeError, match=r"\(mat n n\)"):
        sq(M=np.zeros((2, 3)))


def test_one_index_subterm_is_shared_across_index_names_and_depths():
    # softmax: exp x[i] (over i) and exp x[j] (over j, inside the sum) are one array
    from eqsat_ad.lang.syntax import parse
    p = parse("(fun ((x (vec n))) (build n (lambda (i) (/ (exp (get x i)) "
              "(sum n (lambda (j) (exp (get x j))))))))")
    fn = compile(p)
    assert fn.source.count("_exp(") == 1, fn.source
    x = np.array([0.5, -1.0, 2.0, 0.0])
    np.testing.assert_allclose(fn(x=x), np.exp(x) / np.exp(x).sum())


# ---------------------------------------------------------------------------------------
# nested ifolds that read an outer pair accumulator (issue 13).  Regression: the names the
# backend gave the split components of a pair accumulator ("acc3", "acc4", ...) could be a
# program's own binder names, which then captured them: (ifold (lambda (acc3 j) (+ acc3
# (fst acc1))) ...) inside a fold over acc1 compiled to acc3 + acc3 (0.0 instead of 0.6), and
# other shapes crashed ("operator + applied to a pair").  72 shapes x 24 programs each.
# ---------------------------------------------------------------------------------------
import itertools  # noqa: E402

_READS = {"fst": "(fst acc1)", "snd": "(snd acc1)", "both": "(* (fst acc1) (snd acc1))",
          "k": "(real k)", "j": "(real j)", "none": "1.5"}
_FOLD_SHAPES = list(itertools.product(["fst", "snd", "pair"], ["inner-first", "inner-second"],
                                      ["other-kept", "other-updated"], sorted(_READS)))


def nested_fold_program(proj, slot, other, reads, acc, body, init, size, vectorised) -> str:
    """An ifold over a pair accumulator ``acc1`` (index ``k``) whose body is a pair: one
    component is an inner ifold (accumulator ``acc``, index ``j``, size ``size``) that reads
    ``reads``; the other keeps or updates its own part.  ``vectorised``: inside a build."""
    read = _READS[reads]
    if body == "add":          # a reduction pattern
        ib = f"(+ {acc} {read})"
    elif body == "seq":        # a sequential recurrence
        ib = f"(+ (* 0.5 {acc}) {read})"
    else:                      # a pair accumulator itself
        ib = f"(pair (+ (fst {acc}) {read}) (* (snd {acc}) 0.5))"
    iinit = "0.0" if init == "zero" else "(fst acc1)"
    if body == "pair":
        iinit = f"(pair {iinit} 1.0)"
    inner = f"(ifold (lambda ({acc} j) {ib}) {iinit} {size})"
    if body == "pair":
        inner = f"(fst {inner})"
    mine = "(fst acc1)" if slot == "inner-second" else "(snd acc1)"
    kept = mine if other == "other-kept" else f"(+ (* 0.5 {mine}) (get z 0))"
    pair = f"(pair {inner} {kept})" if slot == "inner-first" else f"(pair {kept} {inner})"
    start = "(get z r)" if vectorised else "(get z 0)"
    fold = f"(ifold (lambda (acc1 k) {pair}) (pair {start} 0.25) 3)"
    out = fold if proj == "pair" else f"({proj} {fold})"
    if vectorised:
        out = f"(build m (lambda (r) {out}))"
    return f"(fun ((z (vec m))) {out})"


def test_nested_fold_reported_in_issue_13():
    check("(fun ((z (vec m))) (snd (ifold (lambda (acc1 k) (pair (fst acc1) (ifold (lambda (acc3 j) "
          "(+ acc3 (fst acc1))) 0.0 2))) (pair (get z 0) 0.0) 2)))", z=[0.3, 0.1, 0.2], expect=0.6)


@pytest.mark.parametrize("proj,slot,other,reads", _FOLD_SHAPES, ids="-".join)
def test_nested_fold_reading_outer_pair_accumulator(proj, slot, other, reads):
    z = np.array([0.3, 0.1, 0.2])
    cases = [("acc3", body, init, size, False) for body, init, size in itertools.product(
        ["add", "seq", "pair"], ["zero", "outer"], ["2", "m", "k"])]
    cases += [("s", body, init, "k", True) for body, init in itertools.product(
        ["add", "seq", "pair"], ["zero", "outer"])]
    for acc, body, init, size, vectorised in cases:
        text = nested_fold_program(proj, slot, other, reads, acc, body, init, size, vectorised)
        try:
            check(text, z=z)
        except Exception as exc:
            raise AssertionError(f"{text}: {type(exc).__name__}: {exc}") from None


def test_generated_names_never_capture_program_names():
    # the placeholder of the one-index memo was the name '%axis', which a program may use
    check("(fun ((x (vec n))) (let ((%axis 1)) (pair (build n (lambda (i) (real (- i %axis)))) "
          "(build n (lambda (j) (real (- %axis j)))))))", x=np.zeros(3),
          expect=(np.array([-1.0, 0.0, 1.0]), np.array([1.0, 0.0, -1.0])))
    # a program whose names are those of the split accumulator components
    check("(fun ((z (vec m))) (ifold (lambda (p k) (pair (ifold (lambda (p.0 j) (+ p.0 (snd p))) 0.0 2) "
          "(ifold (lambda (p.1 j) (* p.1 (fst p))) 1.0 2))) (pair (get z 0) (get z 1)) 3))", z=[0.5, 2.0])


# ---------------------------------------------------------------------------------------
# results never share memory with an input (issue 13): the compiled gradient of dot(x, w)
# w.r.t. x was the caller's w itself, so `g /= norm(g)` changed w
# ---------------------------------------------------------------------------------------
_ALIASING = {
    "identity": ("(fun ((x (vec n))) x)", dict(x=X)),
    "build of gets": ("(fun ((x (vec n))) (build n (lambda (i) (get x i))))", dict(x=X)),
    "row": ("(fun ((A (mat m n))) (get A 1))", dict(A=A)),
    "transpose": ("(fun ((A (mat m n))) (build n (lambda (j) (build m (lambda (i) (get (get A i) j))))))",
                  dict(A=A)),
    "slice": ("(fun ((x (vec n))) (build (- n 1) (lambda (i) (get x (+ i 1)))))", dict(x=X)),
    "in a pair": ("(fun ((x (vec n)) (w (vec n))) (pair (sum n (lambda (i) (get w i))) x))", dict(x=X, w=W)),
    "pair parameter": ("(fun ((p (pair real (vec n)))) (snd p))", dict(p=(1.0, X))),
    "broadcast": ("(fun ((x (vec n))) (build 3 (lambda (i) x)))", dict(x=X)),
    "fold keeps its init": ("(fun ((x (vec n))) (ifold (lambda (a i) a) x 3))", dict(x=X)),
}


def _array_leaves(v):
    return [y for part in v for y in _array_leaves(part)] if isinstance(v, tuple) else \
        ([v] if isinstance(v, np.ndarray) else [])


def _input_arrays(inputs):
    return [a for v in inputs.values() for a in _array_leaves(v if isinstance(v, tuple) else (v,))]


@pytest.mark.parametrize("name", sorted(_ALIASING))
@pytest.mark.parametrize("executor", ["compiled", "interpreter"])
def test_results_never_share_memory_with_inputs(name, executor):
    text, inputs = _ALIASING[name]
    inputs = {k: (v[0], v[1].copy()) if isinstance(v, tuple) else v.copy() for k, v in inputs.items()}
    run = compile(P(text)) if executor == "compiled" else (lambda **kw: evaluate(P(text), **kw))
    out = run(**inputs)
    saved = [a.copy() for a in _input_arrays(inputs)]
    for o in _array_leaves(out if isinstance(out, tuple) else (out,)):
        assert o.flags.writeable
        for a in _input_arrays(inputs):
            assert not np.shares_memory(o, a)
        o *= 0.0                                   # the caller owns the result
    for a, b in zip(_input_arrays(inputs), saved):
        np.testing.assert_array_equal(a, b)


def test_gradient_and_jacobian_do_not_return_their_inputs():
    import eqsat_ad as ea
    dot = P("(fun ((x (vec n)) (w (vec n))) (sum n (lambda (i) (* (get x i) (get w i)))))")
    g = ea.compile(ea.optimize(ea.grad(dot, "x"), sizes={"n": 6}).program)
    x, w = X.copy(), W.copy()
    out = g(x=x, w=w)
    np.testing.assert_allclose(out, W)
    out /= np.linalg.norm(out)
    np.testing.assert_array_equal(w, W)
    matvec = P("(fun ((A (mat m n)) (x (vec n))) (build m (lambda (i) (sum n (lambda (j) "
               "(* (get (get A i) j) (get x j)))))))")
    jac = ea.compile(ea.optimize(ea.jacobian(matvec, "x"), sizes={"m": 4, "n": 6}).program)
    a = A.copy()
    J = jac(A=a, x=X)
    np.testing.assert_allclose(J, A)
    assert not np.shares_memory(J, a)


def test_fresh_results_are_not_copied():
    # the check costs two attribute tests; a result NumPy just computed is returned as is
    f = compile(P("(fun ((x (vec n))) (build n (lambda (i) (* 2.0 (get x i)))))"))
    assert "_unalias(" in f.source
    out = f(x=X)
    assert out.base is None and out.flags.writeable


@pytest.mark.parametrize("text", [
    "(fun ((x (vec n))) (let ((b (build n (lambda (i) (* 2.0 (get x i)))))) (pair b b)))",
    "(fun ((w real)) (let ((b (build 3 (lambda (i) (* (real i) w))))) (pair b (pair 1.0 b))))",
    "(fun ((x (vec n))) (let ((b (build n (lambda (j) (build n (lambda (i) (* 2.0 (get x i))))))))"
    " (pair b (get b 0))))",
])
def test_parts_of_a_result_never_share_memory(text):
    ins = {"x": X.copy()} if "(x " in text else {"w": 0.5}
    for out in (compile(P(text))(**ins), evaluate(P(text), **ins)):
        parts = _array_leaves(out)
        assert len(parts) == 2 and not np.shares_memory(parts[0], parts[1])


# ---------------------------------------------------------------------------------------
# found by the backend fuzzer at sizes 0 and 1 (issue 13)
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "(fun ((x (vec n))) (build (- n 2) (lambda (i) x)))",
    "(fun ((x (vec n))) (build (- n 2) (lambda (i) (get x 0))))",
    "(fun ((x (vec n))) (sum (- n 2) (lambda (i) (sum n (lambda (j) (* (get x j) (real i)))))))",
    "(fun ((x (vec n))) (sum (- n 2) (lambda (i) 1.5)))",
    "(fun ((x (vec n))) (ifold (lambda (a i) (* a 2.0)) 1.0 (- n 3)))",
    "(fun ((x (vec n))) (ifold (lambda (v i) (build n (lambda (j) (* 0.5 (get v j))))) x (- 1 n)))",
])
def test_negative_extents_are_empty_loops(text):
    # (- n 2) at n = 1 is -1: no iteration, as in the interpreter (it used to crash in a
    # broadcast with a negative shape)
    p = P(text)
    for n in (0, 1, 3):
        got, want = compile(p)(x=np.arange(1.0, n + 1)), evaluate(p, x=np.arange(1.0, n + 1))
        if isinstance(want, np.ndarray) and want.shape == (0,):
            assert got.size == 0       # (the interpreter cannot see an empty build's element shape)
        else:
            same(got, want)


def test_fold_that_keeps_its_accumulator_still_evaluates_its_size():
    # the size (length (get M 0)) is out of range when M has no rows: the interpreter raises,
    # the compiled fold returned its init without evaluating the size
    p = P("(fun ((M (mat m n))) (ifold (lambda (a i) a) 1.0 (length (get M 0))))")
    with pytest.raises(EvalError, match="index 0 out of range"):
        evaluate(p, M=np.zeros((0, 3)))
    with pytest.raises(EvalError, match="index 0 out of range"):
        compile(p)(M=np.zeros((0, 3)))
    assert compile(p)(M=np.zeros((2, 3))) == 1.0
    # lets around the accumulator are evaluated where the loop runs (and raise there)
    q = P("(fun ((x (vec n))) (ifold (lambda (a i) (let ((t (get x 5))) a)) 1.0 n))")
    check(q, x=np.zeros(0))
    with pytest.raises(EvalError, match="index 5 out of range"):
        compile(q)(x=np.zeros(2))


def test_empty_max_fold_keeps_the_axes_of_its_body():
    # the max over an empty inner loop of a value varying along the outer axis was the scalar
    # -inf: the outer axis (extent 0) collapsed, and the enclosing sum added one element
    p = P("(fun ((x (vec n))) (sum n (lambda (r) (if (>= (ifold (lambda (s j) (if (< s (get x r)) "
          "(get x r) s)) -1.0 n) 0.0) 1.0 0.0))))")
    for n in (0, 1, 3):
        check(p, x=np.linspace(-1.0, 1.0, n))
    q = P("(fun ((x (vec n))) (build n (lambda (r) (ifold (lambda (s j) (if (< s (get x r)) "
          "(get x r) s)) -1.0 (- n 1)))))")
    for n in (0, 1, 3):
        check(q, x=np.linspace(-1.0, 1.0, n))


@pytest.mark.parametrize("text", [
    "(fun ((x (vec n)) (w real)) (+ (if (> w 0.0) (fst (pair 1.0 (get x 10))) 2.0) (fst (pair 1.0 (get x 10)))))",
    "(fun ((x (vec n)) (w real)) (+ (if (> w 0.0) (let ((t (get x 10))) 1.0) 2.0) (let ((t (get x 10))) 1.0)))",
    "(fun ((x (vec n)) (w real)) (+ (if (> w 0.0) (real (length (get (build 2 (lambda (i) x)) 5))) 2.0) "
    "(real (length (get (build 2 (lambda (i) x)) 5)))))",
])
def test_a_term_reused_after_a_branch_still_checks_its_indices(text):
    # the value of (fst (pair 1.0 (get x 10))) is 1.0 whatever the branch; compiled once inside
    # the branch and reused after it, the bounds check stayed in the branch not taken
    p = P(text)
    for w in (1.0, -1.0):
        with pytest.raises(EvalError, match="out of range"):
            evaluate(p, x=np.zeros(3), w=w)
        with pytest.raises(EvalError, match="out of range"):
            compile(p)(x=np.zeros(3), w=w)

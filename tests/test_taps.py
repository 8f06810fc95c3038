"""A sum whose range guards move with its index -- the taps of a K-tap convolution's gradient,
``g_i = sum_j w_j (if (j <= i < j + m) r[i - j] 0)`` (issue 11, convk-signal) -- in the NumPy
backend and the cost model (``semantics.tap_sum`` / ``TAP_LOOP``): a Python loop over the taps,
each adding a shifted slice into the result, instead of a gather at ``i - j`` and ``where`` over
``K x n`` elements.  Values against the reference interpreter (errors too) and finite
differences; structure of the code and of the model's price, not timing."""
import random

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.bench import corpus as C
from eqsat_ad.cost import default_cost_model
from eqsat_ad.cost.semantics import tap_sum
from eqsat_ad.lang.binders import free_vars
from eqsat_ad.lang.syntax import parse_expr
from eqsat_ad.testing import assert_matches_interpreter, central_difference

# the K-tap convolution's gradient as the optimiser extracts it (both spellings of the guard)
CONVK_GRAD = """(fun ((x (vec n)) (w (vec K)) (t (vec n)))
  (let ((t0 (+ (- n K) 1)))
    (build n (lambda (i) (sum K (lambda (j)
      (* (get w j) {guard})))))))"""
READ = ("(get (build t0 (lambda (k) (- (sum K (lambda (l) (* (get w l) (get x (+ k l))))) (get t k))))"
        " (- i j))")
GUARDS = {
    "and": f"(if (and (<= j i) (< (- i t0) j)) {READ} 0.0)",
    "nested": f"(if (<= j i) (if (< (- i t0) j) {READ} 0.0) 0.0)",
}


def _tap(body: str, var: str = "j", axes=("i",)) -> bool:
    e = parse_expr(body)
    return tap_sum(e, var, lambda n: n if n in axes else None,
                   lambda x: not (free_vars(x) & set(axes)), free_vars)


def test_tap_sum_recognises_moving_range_guards_only():
    assert _tap("(* (get w j) (if (and (<= j i) (< (- i m) j)) (get r (- i j)) 0.0))")
    assert _tap("(+ (get x i) (if (<= (+ j 2) i) (get r (- i j)) 0.0))")
    assert _tap("(neg (* (if (< i (+ m j)) (get r i) 0.0) (get w j)))")
    # bounds that do not move with j: a range guard of the vectorised sum already
    assert not _tap("(* (get w j) (if (< i m) (get r i) 0.0))")
    # a guard over two axes, an else branch other than 0, no guard at all
    assert not _tap("(if (< j i) (get r (- i j)) 0.0)", axes=("i", "j"))
    assert not _tap("(if (<= j i) (get r (- i j)) 1.0)")
    assert not _tap("(* (get w j) (get r (+ i j)))")


@pytest.mark.parametrize("guard", sorted(GUARDS))
def test_convk_gradient_is_a_loop_of_slices(guard):
    p = ea.parse(CONVK_GRAD.format(guard=GUARDS[guard]))
    fn = ea.compile(p)
    src = fn.source
    assert "for _i" in src and "] += " in src
    assert "_where(" not in src and "_gather(" not in src and "_clip_idx(" not in src
    # the residual (loop-invariant) is computed once, before the loop
    assert src.index("_window(") < src.index("for _i")
    rng = np.random.default_rng(1)
    for n, K in [(0, 0), (1, 1), (3, 5), (5, 0), (6, 3), (9, 9), (12, 4)]:
        args = {"x": rng.standard_normal(n), "w": rng.standard_normal(K), "t": rng.standard_normal(n)}
        assert_matches_interpreter(p, fn, args)


@pytest.mark.parametrize("guard", sorted(GUARDS))
def test_the_model_prices_the_loop_not_a_where(guard):
    p = ea.parse(CONVK_GRAD.format(guard=GUARDS[guard]))
    m = default_cost_model()
    b = m.breakdown(p, {"n": 10_000, "K": 5})
    assert b.get("Loop", 0) > 0 and b.get("If", 0) == 0 and b.get("Window", 0) > 0
    # linear in n: 10x the signal is at most ~10x the cost (plus the fixed costs)
    small, big = m.dag_cost(p, {"n": 1000, "K": 5}), m.dag_cost(p, {"n": 10_000, "K": 5})
    assert big < 12 * small


def _random_tap_program(rng) -> str:
    """A build over i (1-D or the inner axis of a 2-D build) of a sum over taps j whose terms
    are guarded by a range of i that moves with j, reading a vector at i - j + c (sometimes a
    shift too far: then both executors must raise the same error), times a factor of j, plus
    now and then a plain term."""
    c = rng.choice([0, 0, 1, -1])
    oob = rng.random() < 0.15
    lo = f"(<= (+ j {c}) i)" if c >= 0 else f"(<= j (+ i {-c}))"
    hi_shift = c + (1 if oob else 0)
    hi = rng.choice([f"(< i (+ (+ j {hi_shift}) (length r)))", f"(< (- (- i j) {hi_shift}) (length r))"])
    read = f"(get r (- (- i j) {c}))" if c else "(get r (- i j))"
    if rng.random() < 0.5:
        g = f"(if (and {lo} {hi}) {read} 0.0)"
    else:
        g = f"(if {lo} (if {hi} {read} 0.0) 0.0)"
    term = rng.choice([g, f"(* (get w j) {g})", f"(* {g} (* 2.0 (get w j)))", f"(neg {g})"])
    if rng.random() < 0.3:
        term = f"(+ {term} (* 0.5 (get x i)))"
    if rng.random() < 0.3:
        term = f"(- (get w j) {term})"
    body = f"(sum (length w) (lambda (j) {term}))"
    if rng.random() < 0.3:
        return (f"(fun ((x (vec n)) (w (vec K)) (r (vec m)) (M (mat p n))) (build p (lambda (q) "
                f"(build n (lambda (i) (* (get (get M q) i) {body}))))))")
    return f"(fun ((x (vec n)) (w (vec K)) (r (vec m)) (M (mat p n))) (build n (lambda (i) {body})))"


@pytest.mark.parametrize("seed", range(40))
def test_tap_loops_agree_with_the_interpreter(seed):
    rng = random.Random(seed)
    text = _random_tap_program(rng)
    p = ea.parse(text)
    fn = ea.compile(p)
    assert fn.fallback is None
    assert "for _i" in fn.source, text
    nrng = np.random.default_rng(seed)
    for n, K, m, q in [(0, 0, 0, 0), (1, 1, 1, 1), (4, 2, 3, 2), (3, 5, 2, 1), (7, 3, 5, 2), (6, 3, 8, 1)]:
        args = {"x": nrng.standard_normal(n), "w": nrng.standard_normal(K), "r": nrng.standard_normal(m),
                "M": nrng.standard_normal((q, n))}
        assert_matches_interpreter(p, fn, args, err_msg=text)


def test_convk_signal_gradient_optimised_matches_fd_and_scales():
    e = C.get("convk-signal")
    f, g = C.program(e), C.derivative_program(e)
    m = default_cost_model()
    ratios = []
    for n in (100, 1000, 10_000):
        sz = {"n": n, "K": 5}
        res = ea.optimize(g, sizes=sz, check=False)
        ratios.append(res.cost / ea.optimize(f, sizes=sz, check=False).cost)
        if n == 1000:
            prog = res.program
    assert max(b / a for a, b in zip(ratios, ratios[1:])) <= 1.5, ratios
    fn = ea.compile(prog)
    assert "for _i" in fn.source and "_where(" not in fn.source
    args = C.inputs(e, {"n": 11, "K": 4})
    got = fn(**args)
    np.testing.assert_allclose(got, ea.evaluate(g, **args), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got, e.numpy_derivative(**args), rtol=1e-10, atol=1e-12)
    for k in (0, 3, 10):
        d = np.zeros(11)
        d[k] = 1.0
        assert got[k] == pytest.approx(central_difference(f, "x", args, d), rel=1e-6, abs=1e-8)
    assert m.dag_cost(prog, {"n": 1000, "K": 5}) < m.dag_cost(g, {"n": 1000, "K": 5})


def test_constant_width_guards_stay_vectorised():
    # a one-hot (= r i), a window of constant width: a step per element is no tap loop
    assert not _tap("(* (get v j) (if (= i j) 1.0 0.0))")
    assert not _tap("(if (and (<= j i) (< i (+ j 2))) (get r (- i j)) 0.0)")
    src = ea.compile(ea.parse("(fun ((v (vec n))) (build n (lambda (r) (sum n (lambda (i) "
                              "(* (get v i) (if (= r i) 1.0 0.0)))))))")).source
    assert "for " not in src


GUARDED = [
    # under a vectorised where
    "(fun ((x (vec n)) (w (vec K)) (r (vec m))) (build n (lambda (i) (if (< (get x i) 0.3) (sum K (lambda (j)"
    " (* (get w j) (if (and (<= j i) (< i (+ j (length r)))) (get r (- i j)) 0.0)))) (get x i)))))",
    # a shift one too far, needed only where the outer guard does not mask it
    "(fun ((x (vec n)) (w (vec K)) (r (vec m))) (build n (lambda (i) (if (< i 2) 1.0 (sum K (lambda (j)"
    " (* (get w j) (if (and (<= j i) (< i (+ (+ j 1) (length r)))) (get r (- i j)) 0.0))))))))",
    # the taps summed inside a scalar reduction
    "(fun ((x (vec n)) (w (vec K)) (r (vec m))) (sum n (lambda (i) (sum K (lambda (j) (* (get w j)"
    " (if (and (<= j i) (< i (+ j (length r)))) (* (get x i) (get r (- i j))) 0.0)))))))",
]


@pytest.mark.parametrize("text", GUARDED)
def test_tap_loops_under_guards_agree_with_the_interpreter(text):
    p = ea.parse(text)
    fn = ea.compile(p)
    assert "for _i" in fn.source
    rng = np.random.default_rng(0)
    for n, K, m in [(0, 0, 0), (1, 1, 1), (5, 2, 4), (6, 3, 2), (4, 6, 3), (8, 3, 6)]:
        args = {"x": rng.uniform(0, 1, n), "w": rng.standard_normal(K), "r": rng.standard_normal(m)}
        assert_matches_interpreter(p, fn, args)

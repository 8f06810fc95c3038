"""A guarded shifted read, (if (= i 0) a (.. (get y (- i 1)) ..)), in the NumPy backend
(issue 12): it reads the slice with its out-of-range row clamped to the edge (no element
gather), tests the guards only at the out-of-range positions of the axis (a scalar guard
once, an array guard cut to those positions, never broadcast against the whole range), and
still raises where an out-of-range row is needed.  Structure and array sizes, not timing."""
import tracemalloc

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.backend import _helpers as H
from eqsat_ad.errors import EvalError
from eqsat_ad.testing import central_difference

# y_t[i] = x[t] * (y_{t-1}[i] + y_{t-1}[i-1]) for i > 0, y_t[0] = x[t]: a sequential fold
# whose body reads the previous state one row up, guarded by i = 0
SMOOTH = ("(fun ((x (vec n))) (sum n (lambda (k) (get (ifold (lambda (y t) (build n (lambda (i)"
          " (if (= i 0) (get x t) (* (get x t) (+ (get y i) (get y (- i 1)))))))) x n) k))))")


def test_guarded_shift_reads_a_clamped_slice_not_a_gather():
    fn = ea.compile(ea.parse(SMOOTH))
    assert "_edge_rows(" in fn.source and "_span_needed(" in fn.source
    assert "_gather(" not in fn.source and "_clip_idx(" not in fn.source
    x = np.linspace(0.2, 0.9, 7)
    assert fn(x=x) == pytest.approx(ea.evaluate(ea.parse(SMOOTH), x=x), rel=1e-12)


def test_guarded_shift_gradient_optimised_compiled_matches_fd():
    p = ea.parse(SMOOTH)
    g = ea.grad(p, "x")
    res = ea.optimize(g, sizes={"n": 50})
    fn = ea.compile(res.program)
    assert "_gather(" not in fn.source
    x = np.linspace(0.2, 0.9, 6)
    got = fn(x=x)
    np.testing.assert_allclose(got, ea.evaluate(g, x=x), rtol=1e-10)
    for k in range(6):
        e = np.zeros(6)
        e[k] = 1.0
        assert got[k] == pytest.approx(central_difference(p, "x", {"x": x}, e), rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("text, ok", [
    # the masked row is the out-of-range one: no error
    ("(fun ((x (vec n))) (build n (lambda (i) (if (= i 0) 0.0 (get x (- i 1))))))", True),
    ("(fun ((x (vec n))) (build n (lambda (i) (if (= i (- n 1)) 0.0 (get x (+ i 1))))))", True),
    ("(fun ((x (vec n))) (build n (lambda (i) (if (< i 2) 0.0 (get x (- i 2))))))", True),
    # the out-of-range row is needed: the interpreter's error
    ("(fun ((x (vec n))) (build n (lambda (i) (if (= i 1) 0.0 (get x (- i 1))))))", False),
    ("(fun ((x (vec n))) (build n (lambda (i) (if (= i 0) 0.0 (get x (+ i 1))))))", False),
])
@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_guarded_shift_agrees_with_the_interpreter(text, ok, n):
    p = ea.parse(text)
    x = np.arange(1.0, n + 1)
    fn = ea.compile(p)
    try:
        want = ea.evaluate(p, x=x)
    except EvalError as err:
        assert not ok
        with pytest.raises(EvalError, match=str(err).split(" in ")[0]):
            fn(x=x)
        return
    np.testing.assert_array_equal(fn(x=x), want)


def test_shift_guard_on_an_unrelated_axis_is_cut_not_broadcast():
    """The guards of a read along the axis of depth 3 vary along depths 1 and 2 too: the
    check combines them over the one out-of-range position of depth 3 only (n^2 booleans),
    not over the whole n^3 block (8 MB at n = 200)."""
    n = 200
    rng = np.random.default_rng(0)
    g12 = rng.random((1, n, n)) < 0.5                  # depths 1 and 2
    g3 = (np.arange(n) != 0).reshape(n, 1, 1)           # depth 3: i != 0 masks row -1
    tracemalloc.start()
    try:
        assert not H.span_needed(-1, n, n, 3, True, g12, g3)
        g3_bad = (np.arange(n) != 5).reshape(n, 1, 1)    # i = 0 not masked any more
        assert H.span_needed(-1, n, n, 3, g12, g3_bad) == bool(g12.any())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n ** 3 // 4, peak


def test_needed_tests_guards_only_where_an_index_is_bad():
    n = 200
    rng = np.random.default_rng(1)
    k = (np.arange(n) - 1).reshape(n, 1, 1)             # one bad index, at position 0
    g12 = rng.random((1, n, n)) < 0.5
    tracemalloc.start()
    try:
        assert not H.needed(H.badmask(k, n), True, g12, (k != -1))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < n ** 3 // 4, peak
    assert not H.needed(H.badmask(k, n), False, g12)    # a false scalar guard: never needed


@pytest.mark.parametrize("seed", range(30))
def test_needed_and_span_needed_agree_with_the_broadcast_formula(seed):
    rng = np.random.default_rng(seed)
    n, L, off, d = rng.integers(0, 6), rng.integers(0, 6), int(rng.integers(-3, 4)), int(rng.integers(1, 4))
    shape = [1, 1, 1]
    shape[3 - d] = n
    k = np.arange(off, off + n).reshape(shape)
    guards = [bool(rng.random() < 0.8)] + [rng.random(tuple(int(rng.choice([1, max(n, 1)])) if a == 3 - d else
                                                            int(rng.choice([1, 3])) for a in range(3))) < 0.7
                                           for _ in range(int(rng.integers(0, 3)))]
    bad = (k < 0) | (k >= L)
    m = bad
    for g in guards:
        m = np.logical_and(m, g)
    want = bool(np.any(m))
    assert H.needed(bad, *guards) == want
    assert H.span_needed(off, n, L, d, *guards) == want

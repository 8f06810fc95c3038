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
from eqsat_ad.testing import assert_matches_interpreter, central_difference

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


# ---------------------------------------------------------------------------------------
# range guards (issue 11): (if c a b) where c holds on a range lo <= i < hi of a build
# index is a on that sub-range (slices, no index array, no mask, no where) and b elsewhere
# ---------------------------------------------------------------------------------------
FD_GRAD = ("(fun ((x (vec n))) (build n (lambda (i) (* 2.0 (- (if (<= 1 i) (- (get x i) (get x (- i 1))) 0.0)"
           " (if (< i (- n 1)) (- (get x (- i -1)) (get x i)) 0.0))))))")


def _no_slow_path(fn):
    """Make the index array, mask, where and padded-copy helpers of ``fn`` raise."""
    glb = type(fn).__call__.__globals__

    def boom(*a, **k):
        raise AssertionError("slow path taken")
    for name in ("_arange", "_where", "_edge_rows", "_gather", "_clip_idx", "_range_mask", "_badmask"):
        glb[name] = boom


def test_range_guard_is_slices_on_the_sub_range():
    fn = ea.compile(ea.parse(FD_GRAD))
    assert "_where(" not in fn.source and "_arange(" not in fn.source
    x = np.zeros(0)
    np.testing.assert_array_equal(fn(x=x), ea.evaluate(ea.parse(FD_GRAD), x=x))
    _no_slow_path(fn)      # from n = 1 on no check of a bound fails (at n = 0 an empty read does)
    for n in range(1, 6):
        x = np.arange(1.0, n + 1) ** 2
        np.testing.assert_array_equal(fn(x=x), ea.evaluate(ea.parse(FD_GRAD), x=x))


def test_let_shifted_index_reads_a_slice_not_a_gather():
    p = ea.parse("(fun ((x (vec n))) (build n (lambda (i) (let ((t (- i 1)))"
                 " (if (and (<= 1 i) (< t (- n 2))) (* (get x t) (get x (+ t 2))) 0.0)))))")
    fn = ea.compile(p)
    assert "_gather(" not in fn.source and "_where(" not in fn.source
    for n in range(7):
        if n == 4:       # from here on the sub-range is not empty: no check of a bound fails
            _no_slow_path(fn)
        x = np.linspace(0.5, 2.0, n)
        np.testing.assert_array_equal(fn(x=x), ea.evaluate(p, x=x))


def _cond(rng, v: str, lo: int, hi: int, size: str) -> str:
    """lo <= v < size - hi, in one of the spellings gradients have."""
    parts = []
    if lo or rng.random() < 0.3:
        parts.append(rng.choice([f"(<= {lo} {v})", f"(>= {v} {lo})", f"(> {v} {lo - 1})", f"(not (< {v} {lo}))"]))
    if hi or rng.random() < 0.3:
        parts.append(rng.choice([f"(< {v} (- {size} {hi}))", f"(< (+ {v} {hi}) {size})",
                                 f"(<= {v} (- {size} {hi + 1}))", f"(>= (- (- {size} 1) {v}) {hi})"]))
    if not parts:
        return f"(<= 0 {v})"
    return parts[0] if len(parts) == 1 else f"(and {parts[0]} {parts[1]})"


def _idx(rng, v: str, k: int) -> str:
    if k == 0:
        return v
    return rng.choice([f"(+ {v} {k})", f"(- {v} {-k})", f"(+ {k} {v})"])


def _range_program(rng) -> str:
    """A random build (1-D or 2-D, the guard on either axis, nested / complemented guards)
    whose guarded branch reads shifted rows exactly where they are in range -- or, now and
    then, one row too far (then both executors must raise the same error)."""
    kind = rng.randrange(4)
    lo, hi = rng.choice([0, 1, 2]), rng.choice([0, 1, 2])
    oob = rng.random() < 0.1                       # one read outside the guarded range
    ks = [rng.randint(-lo, hi) for _ in range(rng.randint(1, 3))]
    if oob:
        ks.append(rng.choice([-lo - 1, hi + 1]))
    other = rng.choice(["0.0", "(get x i)", "(* 0.5 (get x (- (- n 1) i)))"])
    if kind <= 1:                                  # 1-D (kind 1: nested / complement)
        reads = " ".join(f"(get x {_idx(rng, 'i', k)})" for k in ks)
        body = f"(+ 0.0 {reads})" if len(ks) == 1 else f"(* 0.5 (+ {reads}))" if len(ks) == 2 else f"(+ {reads})"
        if len(ks) > 3:
            body = "(+ " + " ".join(f"(get x {_idx(rng, 'i', k)})" for k in ks) + ")"
        c = _cond(rng, "i", lo, hi, "n")
        if kind == 1 and rng.random() < 0.5:
            e = f"(if (not {c}) {other} {body})"
        elif kind == 1:
            inner = _cond(rng, "i", lo + 1, 0, "n")
            e = f"(if {c} (+ {body} (if {inner} (get x {_idx(rng, 'i', -lo - 1)}) 1.0)) {other})"
        else:
            e = f"(if {c} {body} {other})"
        if rng.random() < 0.3:
            e = f"(let ((u (* 2.0 (get x i)))) (- u {e}))"
        return f"(fun ((x (vec n)) (M (mat m n))) (build n (lambda (i) {e})))"
    if kind == 2:                                  # 2-D, the inner axis guarded
        reads = " ".join(f"(get (get M r) {_idx(rng, 'i', k)})" for k in ks)
        c = _cond(rng, "i", lo, hi, "n")
        body = f"(* (get x i) (+ 0.0 {reads}))" if len(ks) < 3 else f"(+ {reads})"
        if len(ks) > 3:
            body = "(+ " + reads + ")"
        return (f"(fun ((x (vec n)) (M (mat m n))) (build m (lambda (r) (build n (lambda (i) "
                f"(if {c} {body} {other}))))))")
    # 2-D, the outer axis guarded (rows of M shifted), the if inside the inner build or a sum
    reads = " ".join(f"(get (get M {_idx(rng, 'r', k)}) i)" for k in ks)
    c = _cond(rng, "r", lo, hi, "m")
    body = f"(+ 1.0 {reads})" if len(ks) < 3 else f"(+ {reads})"
    if len(ks) > 3:
        body = "(+ " + reads + ")"
    outer = rng.choice(["build", "sum"])
    return (f"(fun ((x (vec n)) (M (mat m n))) (build m (lambda (r) ({outer} n (lambda (i) "
            f"(if {c} {body} {other}))))))")


def _stencil_gradient(rng) -> str:
    """The shape of a stencil's gradient: a sum over shifts s of the stencil f read at
    i - s under the guard where that read is in range (sometimes one shift too many: an
    error), times a factor, with 0.0 elsewhere; 1-D or along either axis of a 2-D build."""
    K = rng.randint(1, 3)
    coef = [rng.choice(["1.0", "-2.0", "0.5", "(get w 0)", "(get w 1)"]) for _ in range(K)]
    two_d = rng.random() < 0.3
    v, size = ("r", "m") if two_d and rng.random() < 0.5 else ("i", "n")
    inner_axis = two_d and v == "i"

    def read(k_expr: str) -> str:
        if not two_d:
            return f"(get x {k_expr})"
        return f"(get (get M r) {k_expr})" if inner_axis else f"(get (get M {k_expr}) i)"

    def f(shift: int) -> str:     # f(j) at j = v - shift
        rs = [f"(* {coef[k]} {read(_idx(rng, v, k - shift))})" for k in range(K)]
        return rs[0] if K == 1 else "(+ " + " ".join(rs[:2]) + ")" if K == 2 else \
            f"(+ (+ {rs[0]} {rs[1]}) {rs[2]})"
    terms = []
    shifts = list(range(K)) + ([K] if rng.random() < 0.15 else [])
    for sh in shifts:
        lo, hi = sh, K - 1 - sh
        c = _cond(rng, v, lo, max(hi, 0), size) if sh < K else f"(<= 0 {v})"
        body = f(sh)
        term = f"(if {c} {body} 0.0)" if rng.random() < 0.8 else f"(if (not {c}) 0.0 {body})"
        if rng.random() < 0.5:
            term = f"(* {rng.choice(['2.0', '(get w 1)', '(get x 0)'])} {term})"
        terms.append(term)
    e = terms[0]
    for t in terms[1:]:
        e = f"({rng.choice(['+', '-'])} {e} {t})"
    if rng.random() < 0.3:
        e = f"(- (* 0.5 (get x i)) {e})"
    params = "((x (vec n)) (w (vec 2)) (M (mat m n)))"
    if not two_d:
        return f"(fun {params} (build n (lambda (i) {e})))"
    return f"(fun {params} (build m (lambda (r) (build n (lambda (i) {e})))))"


@pytest.mark.parametrize("seed", range(160))
def test_range_guards_agree_with_the_interpreter(seed):
    import random
    rng = random.Random(seed)
    text = _range_program(rng) if seed < 100 else _stencil_gradient(rng)
    p = ea.parse(text)
    fn = ea.compile(p)
    assert fn.fallback is None
    nrng = np.random.default_rng(seed)
    names = {q.name for q in p.params}
    for n, m in [(0, 0), (1, 1), (2, 3), (3, 1), (5, 4), (7, 6)]:
        x, M = nrng.standard_normal(n), nrng.standard_normal((m, n))
        args = {k: v for k, v in {"x": x, "M": M, "w": np.array([0.5, -1.5])}.items() if k in names}
        assert_matches_interpreter(p, fn, args, err_msg=text)


def test_range_guards_are_lowered_in_the_random_programs():
    """The generated tests above do reach the new lowering (not only np.where)."""
    import random
    hits = sum("_empty(" in ea.compile(ea.parse(_range_program(random.Random(s)))).source for s in range(100))
    assert hits >= 80, hits
    srcs = [ea.compile(ea.parse(_stencil_gradient(random.Random(s)))).source for s in range(100, 160)]
    assert sum("] += " in s or "] -= " in s for s in srcs) >= 40           # summed into slices
    assert sum("a read out of range in the guarded range" in s for s in srcs) >= 30   # stencils

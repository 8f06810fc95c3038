"""The Numba backend on the shapes gradient programs have (eqsat_ad/backend/_numba_codegen.py):
a term of an inner index reached through let-bound values (llsq's residual inside the
build over weights), a loop-invariant ``scan`` that may raise (the transposed RK4's states,
read ``acc[l - 1]`` under ``l != 0``), a term of an inner index that may raise (gmm's
per-point log-likelihoods, which index the packed lower triangle).  Each is checked against
the reference interpreter -- results and errors -- and the generated kernel is inspected for
the structure that keeps it from being quadratic (loop nesting, one call of a speculated
term's function), never timed."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

import eqsat_ad as ea
from eqsat_ad.backend import numba_backend as nb
from eqsat_ad.errors import EvalError
from eqsat_ad.fuzz import check_backend


def _kernel(fn) -> str:
    return fn.source.split("# --- the Python wrapper")[0]


def _check(prog, inputs):
    fn = nb.compile(prog)
    assert fn.fallback is None, fn.fallback
    why = check_backend(prog, inputs, fn)
    assert not why, why
    return fn


def _depth_of(src: str, needle: str) -> int:
    """How many ``for`` loops enclose the first line containing ``needle`` (indentation)."""
    lines = src.splitlines()
    at = next(k for k, ln in enumerate(lines) if needle in ln)
    ind = len(lines[at]) - len(lines[at].lstrip())
    depth = 0
    for ln in reversed(lines[:at]):
        d = len(ln) - len(ln.lstrip())
        if ln.strip() and d < ind:
            ind = d
            depth += ln.lstrip().startswith("for ")
    return depth


# llsq's gradient: the residual r_j (a sum over m) reads j through a let-bound t_j; it is
# computed once per j, not once per (i, j)
LLSQ_GRAD = """
(fun ((x (vec m)) (n size))
  (build m (lambda (i)
    (neg (sum n (lambda (j)
      (let ((t0 (+ -1.0 (/ (* (real j) 2.0) (- (real n) 1.0)))))
        (* (if (= i 0) 1.0 (pow t0 (real i)))
           (- (if (< 0.0 t0) 1.0 -1.0)
              (sum m (lambda (k) (* (get x k) (if (= k 0) 1.0 (pow t0 (real k)))))))))))))))
"""


def test_a_term_of_an_inner_index_through_a_let_is_computed_once_per_index():
    p = ea.parse(LLSQ_GRAD)
    fn = _check(p, {"x": np.linspace(-1.0, 1.0, 4), "n": 7})
    src = _kernel(fn)
    # the sum over m (the residual's) is in a loop over n alone, before the build over m
    assert _depth_of(src, "for k in range(m)") == 1, src
    _check(p, {"x": np.ones(1), "n": 0})
    _check(p, {"x": np.ones(3), "n": 2})


# a loop-invariant scan that may raise (the index l - 1 is guarded by l = 0), read inside a
# build: computed once, by its own function, outside the loops
SCAN_IN_LOOP = """
(fun ((x (vec n)) (s size) (c (vec n)))
  (build n (lambda (j)
    (* (get c j)
       (if (= j 0) 1.0
           (get (get (scan (lambda (acc k)
                             (build n (lambda (l) (+ (get acc l) (if (= l 0) (get x l)
                                                                  (* (get x l) (get acc (- l 1))))))))
                           (build n (lambda (i) 0.0)) s)
                     s)
                (- j 1)))))))
"""


def test_a_loop_invariant_scan_that_may_raise_is_computed_once():
    p = ea.parse(SCAN_IN_LOOP)
    rng = np.random.default_rng(0)
    fn = _check(p, {"x": rng.standard_normal(6), "s": 3, "c": rng.standard_normal(6)})
    src = _kernel(fn)
    calls = [ln for ln in src.splitlines() if "= _spec" in ln]
    assert len(calls) == 1 and _depth_of(src, calls[0].strip()) == 0, src
    for n, s in ((1, 0), (0, 2), (2, 1)):
        _check(p, {"x": rng.standard_normal(n), "s": s, "c": rng.standard_normal(n)})


# the speculated term fails where the program evaluates it: the interpreter's error; where
# the program never evaluates it (the branch is not taken), no error
FAILING_SCAN = """
(fun ((x (vec n)) (s size) (c (vec n)) (o index))
  (build n (lambda (j)
    (if (< (get c j) 0.0)
        (sum s (lambda (k) (get (scan (lambda (acc t) (+ acc (get x (+ t o)))) 0.0 s) k)))
        1.0))))
"""


@pytest.mark.parametrize("offset", [0, 2])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_a_speculated_term_raises_only_where_the_program_evaluates_it(offset, sign):
    p = ea.parse(FAILING_SCAN)
    fn = nb.compile(p)
    assert fn.fallback is None, fn.fallback
    inputs = {"x": np.arange(4.0), "s": 3, "c": sign * np.ones(4), "o": offset}
    why = check_backend(p, inputs, fn)
    assert not why, why
    if offset == 2 and sign < 0:          # the scan reads x[4]: both raise the same error
        with pytest.raises(EvalError) as want:
            ea.evaluate(p, **inputs)
        with pytest.raises(EvalError) as got:
            fn(**inputs)
        assert str(got.value) == str(want.value)


# a term of the inner index that may raise (an index computed from it), inside a build over
# another index: computed once per element into an array, its error kept with the element
PER_ELEMENT = """
(fun ((x (vec n)) (w (vec m)) (o index))
  (build m (lambda (i)
    (sum n (lambda (j)
      (* (get w i) (exp (sum 2 (lambda (c) (get x (+ (+ j c) o)))))))))))
"""


@pytest.mark.parametrize("offset", [-1, 0, 5])
def test_a_term_of_an_inner_index_that_may_raise_keeps_its_error_per_element(offset):
    p = ea.parse(PER_ELEMENT)
    fn = nb.compile(p)
    assert fn.fallback is None, fn.fallback
    rng = np.random.default_rng(1)
    for n in (6, 1):
        inputs = {"x": rng.standard_normal(n), "w": rng.standard_normal(3), "o": offset}
        why = check_backend(p, inputs, fn)
        assert not why, why
    src = _kernel(fn)
    # the exp runs once per element, by a function called in a loop over n alone, not
    # inside the build over m
    kern = src.split("def _kernel")[1]
    assert src.count("_vexp(") == 1 and "_vexp(" not in kern, src
    assert _depth_of(kern, "= _spec") == 1, src
    # no output element is read: no error even where every element fails
    why = check_backend(p, {"x": rng.standard_normal(6), "w": np.zeros(0), "o": 9}, fn)
    assert not why, why


def test_an_ode_gradient_with_scans_and_pairs_matches_the_interpreter():
    """ea.grad's transposed ifold (two scans, pairs of arrays in the fold state), not
    optimised: the Numba kernel against the interpreter, and the gradient against finite
    differences."""
    src = """
    (fun ((x (vec n)) (s size))
      (let ((h (/ 1.0 (real s))))
        (sum n (lambda (q) (get (ifold (lambda (y step)
          (build n (lambda (i) (+ (get y i) (* h (if (= i 0) (get x i) (* (get x i) (get y (- i 1)))))))))
          (build n (lambda (i) 0.0)) s) q)))))
    """
    p = ea.parse(src)
    g = ea.grad(p, "x")
    rng = np.random.default_rng(2)
    x = rng.standard_normal(4)
    fn = _check(g, {"x": x, "s": 3})
    _check(g, {"x": rng.standard_normal(1), "s": 0})
    eps = 1e-6
    fd = [(ea.evaluate(p, x + eps * e, 3) - ea.evaluate(p, x - eps * e, 3)) / (2 * eps) for e in np.eye(4)]
    assert np.allclose(fn(x, 3), fd, atol=1e-6)


# a vector made per point and only indexed there (k-means' distances): one array for all
# points in a serial kernel; one per point under prange (threads would share it)
NEAREST = """
(fun ((P (mat n d)) (C (mat k d)))
  (build n (lambda (i)
    (let ((dist (build k (lambda (j) (sum d (lambda (c) (let ((z (- (get (get C j) c) (get (get P i) c)))) (* z z))))))))
      (get dist (argmin dist))))))
"""


@pytest.mark.parametrize("parallel", [False, True])
def test_a_per_iteration_scratch_vector_is_allocated_once_unless_threads_share_it(parallel):
    p = ea.parse(NEAREST)
    fn = nb.compile(p, parallel=parallel, cache=False)
    assert fn.fallback is None, fn.fallback
    rng = np.random.default_rng(3)
    for n, k in ((40, 5), (0, 3), (3, 0)):
        why = check_backend(p, {"P": rng.standard_normal((n, 2)), "C": rng.standard_normal((k, 2))}, fn)
        assert not why, why
    src = _kernel(fn).split("def _kernel")[1]
    alloc = next(ln.strip() for ln in src.splitlines() if "np.empty((k,)" in ln)
    assert _depth_of(src, alloc) == (1 if parallel else 0), src
    assert ("prange" in src) == parallel

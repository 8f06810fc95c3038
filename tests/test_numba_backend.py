"""The fused Numba backend (eqsat_ad/backend/numba_backend.py) against the reference
interpreter: random programs (the backend fuzzer's generator), suite and corpus gradients
(unoptimised and optimised for this backend's costs), hoisting, the error paths, the disk
cache (a second process loads the kernel) and the fallback to the NumPy backend.  Numba
compiles take ~0.1-1 s each, so the programs are few and small; the long differential run
is ``benchmarks/bench_fused.py --fuzz``.  No timing assertions."""
from __future__ import annotations

import os
import random
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("numba")

import eqsat_ad as ea
from eqsat_ad.backend import get_backend
from eqsat_ad.backend import numba_backend as nb
from eqsat_ad.bench import corpus as C
from eqsat_ad.bench import specs
from eqsat_ad.errors import EvalError, ResourceLimitError, ShapeError
from eqsat_ad.fuzz import check_backend, rich_program
from eqsat_ad.testing import random_inputs


def _check(prog, inputs, fn=None):
    fn = fn or nb.compile(prog)
    assert fn.fallback is None, fn.fallback
    why = check_backend(prog, inputs, fn)
    assert not why, why
    return fn


# ---------------------------------------------------------------------------------------
# differential: random programs
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(16))
def test_random_programs_match_the_interpreter(seed):
    rng = random.Random(seed)
    # every other seed with integer div/mod (a zero divisor: the interpreter's EvalError)
    prog, sizes = rich_program(rng, smooth=rng.random() < 0.2, int_division=seed % 2 == 1)
    nrng = np.random.default_rng(seed)
    fn = nb.compile(prog)
    assert fn.backend == "numba" and fn.fallback is None, fn.fallback
    # the drawn sizes, larger ones, and 0 or 1 (empty loops, indices out of range)
    for sz in (sizes, {k: v + 2 for k, v in sizes.items()}, {k: rng.choice([0, 1]) for k in sizes}):
        why = check_backend(prog, random_inputs(prog, sz, nrng), fn)
        assert not why, f"{why}\n{ea.show_program(prog)}"


# ---------------------------------------------------------------------------------------
# suite and corpus gradients
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sigmoid-sum", "logsumexp", "poly", "mlp"])
def test_suite_gradients_optimised_for_numba(name):
    spec = specs.get("suite", name)
    g = ea.grad(ea.parse(spec.text), spec.wrt)
    n = 40
    res = ea.optimize(g, sizes=spec.sizes(n), backend="numba", limits={"iterations": 60, "seconds": 10.0})
    args = specs.inputs(spec, n)
    fn = _check(res.program, args)
    assert specs.max_rel_error(fn(**args), specs.reference(spec, n, args)) < 1e-9


CORPUS_NAMES = ("logreg", "lse-hvp", "softmax-max", "rnn", "bundle-adjust", "kmeans")


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_corpus_derivatives(name):
    e = C.get(name)
    g = C.derivative_program(e)
    args = C.inputs(e, e.test_sizes)
    _check(g, args)                                       # the unoptimised derivative


@pytest.mark.parametrize("name", ["logreg", "layernorm", "lse-hvp"])
def test_corpus_derivatives_optimised_for_numba(name):
    e = C.get(name)
    g = C.derivative_program(e)
    res = ea.optimize(g, sizes=e.test_sizes, backend="numba", limits={"iterations": 80, "seconds": 10.0})
    args = C.inputs(e, e.test_sizes)
    fn = _check(res.program, args)
    want = e.numpy_derivative(**args)
    assert np.allclose(fn(**args), want, rtol=1e-8, atol=1e-10)


def test_gradient_agrees_with_finite_differences():
    f = ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (log (+ 1.0 (exp (* (get x i) (sin (get x i)))))))))")
    g = nb.compile(ea.optimize(ea.grad(f, "x"), sizes={"n": 8}, backend="numba").program)
    x = np.linspace(-1.0, 1.5, 8)
    fd = ea.testing.finite_difference_gradient(lambda v: ea.evaluate(f, v), x)
    assert np.allclose(g(x), fd, rtol=1e-6, atol=1e-8)


# ---------------------------------------------------------------------------------------
# code generation
# ---------------------------------------------------------------------------------------
def test_loop_invariant_sums_are_computed_once():
    p = ea.parse("(fun ((x (vec n)) (w (vec n))) (build n (lambda (i) "
                 "(/ (* (get w i) (exp (get x i))) (+ (sum n (lambda (j) (exp (get x j)))) "
                 "(sum n (lambda (k) (* (get w k) (get w k)))))))))")
    fn = _check(p, {"x": np.linspace(-1, 1, 7), "w": np.arange(7.0)})
    kernel = fn.source.split("# --- the Python wrapper")[0]
    build_loop = kernel.split("np.empty((n,), np.float64)")[1]
    # both sums are computed before the build's loop, which has no loop inside
    assert build_loop.count("for ") == 1 and kernel.count("_radd(") == 2


def test_a_chain_is_one_loop_without_temporary_arrays():
    p = ea.parse("(fun ((x (vec n))) (let ((a (build n (lambda (i) (tanh (get x i))))) "
                 "(b (build n (lambda (i) (* 2.0 (get a i)))))) (build n (lambda (i) (exp (get b i))))))")
    fn = nb.compile(ea.optimize(p, sizes={"n": 1000}, backend="numba").program)
    kernel = fn.source.split("# --- the Python wrapper")[0]
    assert kernel.count("np.empty") == 1 and kernel.count("for ") == 1
    x = np.linspace(-1, 1, 5)
    assert np.allclose(fn(x), np.exp(2 * np.tanh(x)))


def test_a_gradient_optimised_for_numba_does_not_pay_for_temporaries():
    """The extractor with the fused backend's costs: a term fused into its loop costs less
    than computing it into an array first."""
    model = get_backend("numba").cost_model()
    fused = ea.parse("(fun ((x (vec n))) (build n (lambda (i) (* 2.0 (exp (get x i))))))")
    staged = ea.parse("(fun ((x (vec n))) (let ((e (build n (lambda (i) (exp (get x i)))))) "
                      "(build n (lambda (i) (* 2.0 (get e i))))))")
    assert model.dag_cost(fused, {"n": 10 ** 5}) < model.dag_cost(staged, {"n": 10 ** 5})


def test_pairs_matrices_and_index_results():
    _check(ea.parse("(fun ((x (vec n))) (build n (lambda (i) (pair (get x i) (* 2.0 (get x i))))))"),
           {"x": np.arange(3.0)})
    _check(ea.parse("(fun ((A (mat m n)) (x (vec n))) (build m (lambda (i) (build n (lambda (j) "
                    "(* (get (get A i) j) (get x j)))))))"), {"A": np.arange(6.0).reshape(2, 3), "x": np.ones(3)})
    _check(ea.parse("(fun ((A (mat m n))) (build m (lambda (i) (get A (- (- m 1) i)))))"),
           {"A": np.arange(6.0).reshape(3, 2)})
    _check(ea.parse("(fun ((x (vec n)) (p (pair real (vec n)))) (pair (argmax x) (+ (fst p) (get (snd p) 0))))"),
           {"x": np.array([1.0, 3.0, 2.0]), "p": (1.5, np.ones(3))})


def test_results_never_alias_inputs():
    fn = nb.compile(ea.parse("(fun ((x (vec n)) (M (mat m n))) (pair x (get M 0)))"))
    x, M = np.ones(3), np.ones((2, 3))
    a, b = fn(x, M)
    assert not np.shares_memory(a, x) and not np.shares_memory(b, M)


def test_ieee_semantics():
    fn = nb.compile(ea.parse("(fun ((x (vec n))) (build n (lambda (i) (/ (log (get x i)) (get x i)))))"))
    out = fn(np.array([0.0, -1.0, 1.0]))       # log(0)/0 = -inf, log(-1) = nan: no exception
    assert out[0] == -np.inf and np.isnan(out[1]) and out[2] == 0.0


# ---------------------------------------------------------------------------------------
# inputs and errors
# ---------------------------------------------------------------------------------------
DOT = ea.parse("(fun ((x (vec n)) (w (vec n))) (sum n (lambda (i) (* (get x i) (get w i)))))")


def test_inputs_by_position_keyword_and_conversion():
    fn = nb.compile(DOT)
    assert fn([1, 2], [3.0, 4.0]) == fn(x=np.array([1.0, 2.0]), w=[3, 4]) == 11.0
    assert fn(np.arange(4.0)[::2], np.ones(2)) == 2.0                   # a strided view
    assert fn(np.ones(2, np.float32), w=np.ones(2)) == 2.0
    ro = np.ones(2)
    ro.flags.writeable = False                                           # e.g. a view of a JAX array
    assert fn(ro, np.broadcast_to(1.0, (2,))) == 2.0


def test_bad_inputs_are_shape_errors():
    fn = nb.compile(DOT)
    with pytest.raises(ShapeError, match="input 'w' should be"):
        fn(np.ones(3), np.ones(2))
    with pytest.raises(ShapeError, match="missing input 'w'"):
        fn(np.ones(3))
    with pytest.raises(ShapeError, match="unknown input 'q'"):
        fn(np.ones(3), np.ones(3), q=1)


def test_out_of_range_get_is_the_interpreters_error():
    p = ea.parse("(fun ((x (vec n))) (build n (lambda (i) (get x (+ i 2)))))")
    fn = nb.compile(p)
    with pytest.raises(EvalError) as want:
        ea.evaluate(p, np.ones(4))
    with pytest.raises(EvalError) as got:
        fn(np.ones(4))
    assert str(got.value) == str(want.value) == "index 4 out of range for array of length 4 in (get x (+ i 2))"


def test_the_array_limit_is_enforced():
    fn = nb.compile(ea.parse("(fun ((x (vec n))) (build n (lambda (i) (build n (lambda (j) (get x j))))))"))
    with ea.runtime.array_limit(1000), pytest.raises(ResourceLimitError, match="more than the limit"):
        fn(np.ones(100))


# ---------------------------------------------------------------------------------------
# fallback, cache, pickling
# ---------------------------------------------------------------------------------------
def test_ragged_programs_fall_back_to_numpy():
    p = ea.parse("(fun ((x (vec n))) (build n (lambda (i) (build i (lambda (j) (get x j))))))")
    fn = nb.compile(p)
    assert fn.fallback and "ragged" in fn.fallback and fn.backend == "numba"
    assert [list(r) for r in fn(np.arange(3.0))] == [list(r) for r in ea.evaluate(p, np.arange(3.0))]
    assert "NumPy backend" in fn.source
    # a build inside a loop whose size depends on the index is one array per iteration: fine
    q = ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (sum (length (build i (lambda (j) (get x j)))) "
                 "(lambda (k) 1.0)))))")
    _check(q, {"x": np.ones(4)})


def test_registry_and_ea_compile_reach_this_backend():
    fn = ea.compile(DOT, backend="numba")
    assert isinstance(fn, nb.NumbaProgram) and fn(np.ones(2), np.ones(2)) == 2.0
    assert get_backend("numba").array_namespace() is np


def test_pickle_compiles_again():
    import pickle
    fn = nb.compile(DOT)
    assert pickle.loads(pickle.dumps(fn))(np.ones(2), np.ones(2)) == 2.0


def test_kernels_are_cached_on_disk(tmp_path):
    src = ("import numpy as np, eqsat_ad as ea\n"
           "from eqsat_ad.backend import numba_backend as nb\n"
           "p = ea.parse('(fun ((x (vec n))) (sum n (lambda (i) (tanh (* 3.0 (get x i))))))')\n"
           "fn = nb.compile(p)\n"
           "d = fn._serial.stats\n"
           "print(fn(np.ones(3)), sum(d.cache_hits.values()), sum(d.cache_misses.values()))\n")
    env = {**os.environ, "EQSAT_AD_CACHE_DIR": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", src], env=env, capture_output=True, text=True, check=True)
    second = subprocess.run([sys.executable, "-c", src], env=env, capture_output=True, text=True, check=True)
    assert list((tmp_path / "numba").glob("k_*.py"))
    assert first.stdout.split()[1:] == ["0", "1"], first.stdout            # compiled
    assert second.stdout.split()[1:] == ["1", "0"], second.stdout          # loaded from the cache
    assert float(second.stdout.split()[0]) == float(first.stdout.split()[0])


def test_numba_start_up_without_scipy_linalg(tmp_path):
    """The first kernel of a process starts Numba without importing scipy.linalg
    (numba_backend._numba_start); Numba still finds BLAS (np.dot), and scipy.linalg and its
    cython_blas import as usual afterwards."""
    pytest.importorskip("scipy")
    src = ("import sys, numpy as np, numba\n"
           "from eqsat_ad.backend import numba_backend as nb\n"
           "import eqsat_ad as ea\n"
           "fn = nb.compile(ea.parse('(fun ((x (vec n))) (sum n (lambda (i) (exp (get x i)))))'))\n"
           "print(fn(np.zeros(3)), 'scipy.linalg' in sys.modules, 'scipy.linalg.cython_blas' in sys.modules)\n"
           "import numba.np.arraymath as am\n"
           "d = numba.njit(lambda a, b: np.dot(a, b))\n"
           "import scipy.linalg.cython_blas, scipy.linalg\n"
           "print(am._HAVE_BLAS, d(np.ones((2, 2)), np.ones(2)).tolist(), hasattr(scipy.linalg, 'cython_blas'),\n"
           "      scipy.linalg.solve(np.eye(2), np.ones(2)).tolist())\n")
    env = {**os.environ, "EQSAT_AD_CACHE_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", src], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["3.0 False False", "True [2.0, 2.0] True [1.0, 1.0]"], out.stdout


def test_without_a_cache_directory_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("EQSAT_AD_CACHE_DIR", "off")
    fn = nb.compile(ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (* 5.0 (get x i)))))"))
    assert fn(np.ones(2)) == 10.0
    assert nb.kernel_dir() is None


def test_vectorised_functions_agree_with_numpy():
    """_numba_math's exp, log and tanh: within a few ulp of NumPy's, the same at the edges."""
    from numba import njit

    from eqsat_ad.backend import _numba_math as M
    rng = np.random.default_rng(0)
    cases = {
        M.exp: (np.exp, np.concatenate([rng.uniform(-30, 30, 2000), [709.78, 709.79, -745.1, -745.2, -740.0]]), 3),
        M.log: (np.log, np.concatenate([rng.uniform(0, 5, 2000), np.geomspace(1e-320, 1e300, 500),
                                        1 + rng.uniform(-1e-3, 1e-3, 200)]), 3),
        M.tanh: (np.tanh, np.concatenate([rng.uniform(-5, 5, 2000), np.geomspace(1e-300, 30, 300),
                                          -np.geomspace(1e-300, 30, 300)]), 6),
    }
    edges = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -1.0, 1.0, 5e-324])
    for f, (ref, x, ulps) in cases.items():
        loop = njit(lambda v, f=f: np.array([f(t) for t in v]))
        with np.errstate(all="ignore"):
            want, got = ref(x), loop(x)
            assert np.all((got == want) | (np.abs(got - want) <= ulps * np.spacing(np.abs(want)))), f
            np.testing.assert_array_equal(loop(edges), ref(edges))


def test_an_expensive_term_of_an_inner_index_is_computed_once():
    """(exp (get x i)) inside a sum over i inside a build over j: one array, before the build."""
    p = ea.parse("(fun ((A (mat m n)) (x (vec n))) (build m (lambda (j) (sum n (lambda (i) "
                 "(* (exp (get x i)) (get (get A j) i)))))))")
    fn = _check(p, {"A": np.arange(12.0).reshape(3, 4) / 10, "x": np.linspace(-1, 1, 4)})
    kernel = fn.source.split("# --- the Python wrapper")[0]
    assert kernel.count("_vexp(") == 1 and kernel.index("_vexp(") < kernel.index("for j in range(m)")


def test_a_term_of_nested_indices_leaves_the_loop_around_them():
    """exp q[j][r] inside the loops over j and r inside a loop over points i: one k x d array,
    before the loop over i (GradBench's gmm) -- the values and the errors of the interpreter."""
    p = ea.parse("(fun ((q (mat k d)) (x (mat n d))) (sum n (lambda (i) (sum k (lambda (j) "
                 "(sum d (lambda (r) (* (exp (get (get q j) r)) (get (get x i) r)))))))))")
    rng = np.random.default_rng(1)
    for n, k, d in [(5, 3, 4), (0, 3, 4), (5, 0, 4), (5, 3, 0), (1, 1, 1)]:
        fn = _check(p, {"q": rng.normal(size=(k, d)), "x": rng.normal(size=(n, d))})
    kernel = _kernel_text(fn)
    assert kernel.count("_vexp(") == 1 and kernel.index("_vexp(") < kernel.index("range(n)")


@pytest.mark.parametrize("L, n", [(3, 4), (2, 4), (0, 4), (2, 0), (6, 1)])
def test_a_raising_term_of_nested_indices_raises_the_interpreters_error(L, n):
    """gmm's triangular factor (if (< c r) l[j][c d - c (c + 1) / 2 + r - c - 1] 0.0), a term of
    (j, r, c) whose get may fail, leaves the loop over points: computed once per (j, r, c), its
    errors stored, raised where the program reads a failing element (none when n = 0)."""
    from eqsat_ad.testing import assert_matches_interpreter
    p = ea.parse("(fun ((l (mat k L)) (x (mat n d))) (sum n (lambda (i) (sum k (lambda (j) (sum d (lambda (r) "
                 "(sum d (lambda (c) (* (if (< c r) (get (get l j) (+ (- (* c d) (div (* c (+ c 1)) 2)) "
                 "(- (- r c) 1))) 0.0) (get (get x i) c)))))))))))")
    fn = nb.compile(p, cache=False)
    kernel = _kernel_text(fn)
    assert fn.fallback is None and kernel.index("_spec") < kernel.index("range(n)")
    rng = np.random.default_rng(L)
    assert_matches_interpreter(p, fn, {"l": rng.normal(size=(2, L)), "x": rng.normal(size=(n, 3))})


def test_a_later_loop_reads_a_term_holding_a_loop():
    """A row's quadratic form, computed by a build over j and again in a later sum over j
    (a log-sum-exp of it, as GradBench's gmm): the later loop reads the earlier one's values."""
    q = "(sum d (lambda (c) (let ((v (- (get (get x i) c) (get (get mu j) c)))) (* v v))))"
    p = ea.parse(f"(fun ((x (mat n d)) (mu (mat k d))) (sum n (lambda (i) (let ((t (build k (lambda (j) {q})))) "
                 f"(+ (get t (argmax t)) (sum k (lambda (j) (exp {q}))))))))")
    rng = np.random.default_rng(2)
    for n, k, d in [(4, 3, 2), (0, 3, 2), (4, 1, 0), (3, 5, 7)]:
        fn = _check(p, {"x": rng.normal(size=(n, d)), "mu": rng.normal(size=(k, d))})
    assert _kernel_text(fn).count("range(d)") == 1


def test_a_sum_of_rows_read_at_the_build_index_is_interchanged():
    """(build d (λj. (sum n (λp. A[p][j] g[p])))) -- A^T g, a gradient's shape: the loop over p
    outside, the one over j inside (rows read contiguously, g[p] once per p); the same values."""
    p = ea.parse("(fun ((A (mat n d)) (g (vec n))) (build d (lambda (j) (sum n (lambda (p) "
                 "(* (exp (get g p)) (get (get A p) j)))))))")
    rng = np.random.default_rng(0)
    fn = _check(p, {"A": rng.normal(size=(5, 3)), "g": rng.normal(size=5)})
    kernel = fn.source.split("# --- the Python wrapper")[0]
    assert kernel.index("for p in range(n)") < kernel.index("+= ") and kernel.count("_vexp(") == 1
    _check(p, {"A": np.zeros((0, 3)), "g": np.zeros(0)})
    _check(p, {"A": np.zeros((4, 0)), "g": np.zeros(4)})
    # rows at j, elements at p: the loop over p is already the contiguous one -- not interchanged
    q = ea.parse("(fun ((A (mat d n)) (g (vec n))) (build d (lambda (j) (sum n (lambda (p) "
                 "(* (get g p) (get (get A j) p)))))))")
    assert "+= " not in nb.compile(q).source.split("# --- the Python wrapper")[0]


@pytest.mark.parametrize("rows, d", [([0, 3, 1], 2), ([0, 5, 1], 2), ([0, 5, 1], 0), ([4, 1, 7], 3)])
def test_an_interchanged_sum_raises_the_interpreters_error(rows, d):
    """A term of p alone that may raise (a row at a read index, as kmeans's C[argmin]) leaves
    the loop over j: the first failing p is the one the (j, p) order finds first, and nothing
    fails when j's loop is empty."""
    from eqsat_ad.testing import assert_matches_interpreter
    p = ea.parse("(fun ((A (mat m d)) (r (array index n)) (g (vec n))) (build d (lambda (j) (sum n (lambda (p) "
                 "(* (get g p) (- (get (get A (get r p)) j) (get g p))))))))")
    fn = nb.compile(p, cache=False)
    assert fn.fallback is None and "+= " in fn.source.split("# --- the Python wrapper")[0]
    args = {"A": np.arange(4.0 * d).reshape(4, d), "r": np.array(rows), "g": np.array([1.0, 2.0, 3.0])}
    assert_matches_interpreter(p, fn, args)
    # an index that depends on j may raise: not interchanged
    q = ea.parse("(fun ((A (mat m d)) (r (array index d)) (g (vec n))) (build d (lambda (j) (sum n (lambda (p) "
                 "(* (get g p) (get (get A p) (get r j))))))))")
    fq = nb.compile(q, cache=False)
    assert "+= " not in fq.source.split("# --- the Python wrapper")[0]
    assert_matches_interpreter(q, fq, {"A": np.ones((3, 2)), "r": np.array([0, 2]), "g": np.ones(3)})


def test_parallel_kernels():
    p = ea.parse("(fun ((x (vec n))) (build n (lambda (i) (/ (exp (get x i)) (sum n (lambda (j) (exp (get x j))))))))")
    fn = nb.compile(p, parallel=True, cache=False)
    assert "prange" in fn.source
    _check(p, {"x": np.linspace(-1, 1, 50)}, fn)


# ---------------------------------------------------------------------------------------
# loop fusion: sibling sums in one loop, a term of an earlier loop stored for a later one
# ---------------------------------------------------------------------------------------
def _kernel_text(fn) -> str:
    return fn.source.split("# --- the Python wrapper")[0]


def _sizes_check(p, make, sizes=(0, 1, 7, 256, 300, 600)):
    fn = None
    for n in sizes:
        fn = _check(p, make(n), fn)
    return fn


def _vecs(*names, m=None):
    def make(n):
        rng = np.random.default_rng(n)
        out = {k: rng.uniform(-2, 2, n) for k in names}
        if m is not None:
            out.update({k: rng.uniform(-2, 2, (n, m)) for k in m})
        return out
    return make


LSE_HVP = ("(fun ((x (vec n)) (dx (vec n))) (let ((t0 (sum n (lambda (i) (exp (get x i))))) "
           "(t1 (sum n (lambda (i) (* (get dx i) (exp (get x i)))))) (t2 (* t0 t0))) "
           "(build n (lambda (i) (/ (* (- (* t0 (get dx i)) t1) (exp (get x i))) t2)))))")


def test_sibling_sums_are_one_loop_and_the_build_reads_their_term():
    """lse-hvp's optimised Hessian-vector product: the two sums over n are one loop with two
    accumulators (exp computed once per element there), which also stores exp x_i for the
    build after it; the build reads it and writes its result into that array."""
    fn = _sizes_check(ea.parse(LSE_HVP), _vecs("x", "dx"))
    k = _kernel_text(fn)
    assert k.count("for ") == 2 and k.count("_radd(") == 2           # one loop for both sums
    assert k.count("_vexp(") == 1
    (store,) = [ln.split("=")[0].strip() for ln in k.splitlines() if "np.empty((n,)" in ln]
    assert f"= {store}\n" in k                     # the build's output is that array


def test_a_reduction_then_a_build_compute_the_shared_term_once():
    p = ea.parse("(fun ((x (vec n))) (let ((s (sum n (lambda (i) (exp (get x i)))))) "
                 "(build n (lambda (j) (/ (exp (get x j)) s)))))")
    p2 = ea.parse("(fun ((x (vec n))) (let ((s (sum n (lambda (i) (exp (get x i)))))) "
                  "(build n (lambda (i) (/ (exp (get x i)) s)))))")
    fn = _sizes_check(p2, _vecs("x"))
    assert _kernel_text(fn).count("_vexp(") == 1
    _sizes_check(p, _vecs("x"))                    # another index name: recomputed, still right


def test_a_row_loop_reads_what_a_loop_before_it_computed():
    """A loop over n nested in a loop over rows reads the exp that a loop over n before the
    row loop computed, also when it spells the term otherwise (another index name, the
    argument let-bound, under a branch) -- not once per row."""
    p = ea.parse("(fun ((x (vec n)) (w (vec m))) (let ((s (sum n (lambda (i) (exp (* 2.0 (get x i))))))) "
                 "(build m (lambda (r) (build n (lambda (j) (let ((y (* 2.0 (get x j)))) "
                 "(if (< 0.0 (get w r)) (* (get w r) (/ (exp y) s)) (get x j)))))))))")

    def make(n):
        rng = np.random.default_rng(n)
        return {"x": rng.uniform(-2, 2, n), "w": rng.uniform(-2, 2, 5)}
    fn = _sizes_check(p, make, sizes=(0, 1, 7, 300))
    assert _kernel_text(fn).count("_vexp(") == 1


def test_a_build_does_not_overwrite_sibling_values_a_nested_loop_reads():
    """The build over k reads exp(alpha_j - max) that the sum before it stored, at its own
    index and -- in the sum nested inside it -- at every index: its result must not be
    written into that array (it was: element p overwritten, then read for p + 1, ...)."""
    p = ea.parse("(fun ((alpha (vec k))) (let ((s (sum k (lambda (j) (exp (- (get alpha j) "
                 "(get alpha (argmax alpha)))))))) (build k (lambda (p) (+ (* 2.0 (exp (- (get alpha p) "
                 "(get alpha (argmax alpha))))) (sum k (lambda (j) (if (= (argmax alpha) p) "
                 "(* s (exp (- (get alpha j) (get alpha (argmax alpha))))) 0.0))))))))")

    def make(n):
        return {"alpha": np.random.default_rng(n).normal(size=n)}
    _sizes_check(p, make, sizes=(1, 5, 64))


def test_a_read_of_a_kernel_built_array_at_its_loop_index_leaves_the_inner_loop():
    """``(argmax C[i])`` of a let-bound build C, inside a sum over j: the row read is in range
    (i runs over C's own extent), so the argmax is computed once per i, not once per (i, j)
    (GradBench gmm's reverse-mode log-sum-exp: O(n k^2) otherwise)."""
    p = ea.parse("(fun ((B (mat n k))) (let ((C (build n (lambda (i) (build k (lambda (j) "
                 "(* 2.0 (get (get B i) j)))))))) (build n (lambda (i) (sum k (lambda (j) "
                 "(exp (- (get (get C i) j) (get (get C i) (argmax (get C i)))))))))))")

    def make(n):
        return {"B": np.random.default_rng(n).normal(size=(n, 4))}
    fn = _sizes_check(p, make, sizes=(0, 1, 7, 64))
    lines = _kernel_text(fn).splitlines()
    (am,) = [ln for ln in lines if "_argmax(" in ln and "=" in ln and "def " not in ln]
    inner = [ln for ln in lines if ln.strip().startswith("for ")][-1]
    assert len(am) - len(am.lstrip()) <= len(inner) - len(inner.lstrip())   # not inside the j loop


FUSION_CASES = {
    # the second sum reads the first: two loops (the second may read the first's exp)
    "dependent": "(fun ((x (vec n))) (let ((a (sum n (lambda (i) (exp (get x i))))) "
                 "(b (sum n (lambda (i) (* a (exp (get x i))))))) (+ a b)))",
    # the second sum may raise (x at i + 1): not fused, the interpreter's error
    "raising": "(fun ((x (vec n))) (let ((a (sum n (lambda (i) (exp (get x i))))) "
               "(b (sum n (lambda (i) (get x (+ i 1)))))) (+ a b)))",
    "other size": "(fun ((x (vec n)) (y (vec m))) (let ((a (sum n (lambda (i) (exp (get x i))))) "
                  "(b (sum m (lambda (i) (exp (get y i)))))) (* a b)))",
    # other index names; one whose body mentions the first's index name (bound outside): not fused
    "renamed": "(fun ((x (vec n)) (y (vec m))) (build m (lambda (i) (let ((a (sum n (lambda (j) "
               "(exp (get x j))))) (b (sum n (lambda (k) (* (get x k) (get y i)))))) (+ a b)))))",
    "capture": "(fun ((x (vec n)) (y (vec n))) (build n (lambda (j) (let ((a (sum n (lambda (j) "
               "(exp (get x j))))) (b (sum n (lambda (k) (* (exp (get x k)) (get y j)))))) (+ a b)))))",
    # two builds read the stored term: the first writes into it, the second gets its own
    "two readers": "(fun ((x (vec n))) (let ((s (sum n (lambda (i) (exp (get x i)))))) "
                   "(pair (build n (lambda (i) (/ (exp (get x i)) s))) "
                   "(build n (lambda (i) (* (exp (get x i)) 2.0))))))",
    "reader returns it": "(fun ((x (vec n))) (let ((s (sum n (lambda (i) (exp (get x i)))))) "
                         "(pair s (build n (lambda (i) (exp (get x i)))))))",
    "int beside real": "(fun ((x (vec n))) (let ((a (sum n (lambda (i) (exp (get x i))))) "
                       "(c (sum n (lambda (i) i)))) (+ a (real c))))",
    "nested reader": "(fun ((x (vec n))) (let ((s (sum n (lambda (i) (exp (get x i)))))) "
                     "(build n (lambda (i) (build 3 (lambda (k) (* (real k) (/ (exp (get x i)) s))))))))",
    "branch": "(fun ((x (vec n))) (let ((s (sum n (lambda (i) (if (> (get x i) 0.0) (exp (get x i)) 0.0))))) "
              "(build n (lambda (i) (if (> (get x i) 0.0) (/ (exp (get x i)) s) (log (exp (get x i))))))))",
}


@pytest.mark.parametrize("name", sorted(FUSION_CASES))
def test_fusion_keeps_the_interpreters_results(name):
    p = ea.parse(FUSION_CASES[name])
    names = [q.name for q in p.params]

    def make(n):
        rng = np.random.default_rng(n)
        out = {}
        for q in p.params:
            shape = (n + 1,) if q.name == "y" and name == "other size" else (n,)
            out[q.name] = rng.uniform(-2, 2, shape)
        return out
    assert names
    _sizes_check(p, make, sizes=(0, 1, 7, 300))


_TERMS = ["(exp (get x i))", "(* (get y i) (exp (get x i)))", "(log (+ 1.0 (* (get x i) (get x i))))",
          "(tanh (get y i))", "(/ 1.0 (+ 1.0 (exp (neg (get x i)))))", "(* (get x i) (get y i))"]


@pytest.mark.parametrize("seed", range(8))
def test_random_let_chains_of_sums_and_builds(seed):
    """Random let chains of sums over one range (some reading the earlier ones) and builds
    reading their terms and sums: fused or not, the interpreter's results."""
    rng = random.Random(seed)
    lets, names = [], []
    for k in range(rng.randint(2, 5)):
        t = rng.choice(_TERMS)
        if names and rng.random() < 0.3:
            t = f"(* {rng.choice(names)} {t})"
        lets.append(f"(a{k} (sum n (lambda (i) {t})))")
        names.append(f"a{k}")
    outs = []
    for _ in range(rng.randint(1, 3)):
        t = rng.choice(_TERMS)
        outs.append(f"(build n (lambda (i) (/ {t} (+ 1.0 (* {rng.choice(names)} {rng.choice(names)})))))")
    body = outs[0] if len(outs) == 1 else f"(pair {outs[0]} {outs[1]})"
    p = ea.parse(f"(fun ((x (vec n)) (y (vec n))) (let ({' '.join(lets)}) {body}))")
    _sizes_check(p, _vecs("x", "y"), sizes=(0, 5, 300))


# ---------------------------------------------------------------------------------------
# the pool: a call's arrays reused by the next call when nothing refers to them any more
# ---------------------------------------------------------------------------------------
SOFTMAX = ("(fun ((x (vec n))) (let ((s (sum n (lambda (i) (exp (get x i)))))) "
           "(build n (lambda (i) (/ (exp (get x i)) s)))))")


def _softmax(x):
    e = np.exp(x)
    return e / e.sum()


def test_the_pool_never_writes_a_result_still_referenced():
    fn = nb.compile(ea.parse(SOFTMAX))
    assert fn._kernel.pool and fn._kernel.pool[0][2] == 0       # the result is a pool slot
    x, y = np.linspace(-1, 1, 300), np.linspace(0, 2, 300)
    r1 = fn(x)
    r2 = fn(y)                                    # r1 is held: a new array
    assert not np.shares_memory(r1, r2)
    v = r2[3:]                                    # a view keeps r2's memory
    del r2
    r3 = fn(x)
    assert not np.shares_memory(r3, v)
    np.testing.assert_allclose(v, _softmax(y)[3:], rtol=1e-13)
    np.testing.assert_allclose(r1, _softmax(x), rtol=1e-13)
    base = r3.__array_interface__["data"][0]
    del r3
    r4 = fn(y)                                    # r3 dropped: its memory is reused
    assert r4.__array_interface__["data"][0] == base
    np.testing.assert_allclose(r4, _softmax(y), rtol=1e-13)
    r5 = fn(fn(x))                                # a result as the next call's input
    np.testing.assert_allclose(r5, _softmax(_softmax(x)), rtol=1e-13)
    r6 = fn(np.zeros(7))                          # another size: a new array
    np.testing.assert_allclose(r6, np.full(7, 1 / 7), rtol=1e-13)


def test_the_pool_keeps_scratch_arrays_out_of_the_result():
    fn = nb.compile(ea.parse(FUSION_CASES["dependent"]))
    assert any(where is None for _, _, where in fn._kernel.pool)      # a scratch array
    x = np.linspace(-1, 1, 300)
    want = np.exp(x).sum() * (1 + np.exp(x).sum())
    for _ in range(3):
        r = fn(x)
        assert isinstance(r, float) and abs(r - want) <= 1e-12 * abs(want)


def test_the_pool_under_threads():
    import threading
    fn = nb.compile(ea.parse(SOFTMAX))
    xs = [np.linspace(-k, k, 1000 + k) for k in range(1, 9)]
    bad = []

    def work(k):
        for _ in range(50):
            r = fn(xs[k])
            if not np.allclose(r, _softmax(xs[k]), rtol=1e-12):
                bad.append(k)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad


def test_fused_sums_shared_between_branches():
    """One let chain object (the optimiser's programs share nodes) in both branches of an if:
    the sums fused in one branch are not reused in the other."""
    from eqsat_ad.lang.ast import If, Program
    chain = ea.parse("(fun ((x (vec n))) (let ((a (sum n (lambda (i) (exp (get x i))))) "
                     "(b (sum n (lambda (i) (* (get x i) (exp (get x i))))))) (/ b a)))").body
    cond = ea.parse("(fun ((x (vec n))) (> (length x) 3))").body
    p0 = ea.parse("(fun ((x (vec n))) 0.0)")
    p = Program(p0.params, If(cond, chain, ea.parse("(fun ((x (vec n))) (+ 1.0 0.0))").body))
    p2 = Program(p0.params, If(cond, chain, chain))
    for prog in (p, p2):
        _sizes_check(prog, _vecs("x"), sizes=(0, 2, 5, 300))


def test_reassociated_sums_keep_the_special_values():
    """A real sum's accumulator may be reassociated (_numba_math.sum_add): the sums of inf,
    -inf, nan and of nothing are still the interpreter's."""
    fn = nb.compile(ea.parse("(fun ((x (vec n))) (sum n (lambda (i) (* 2.0 (get x i)))))"))
    inf, nan = np.inf, np.nan
    for xs in ([], [inf] + [1.0] * 40, [1.0] * 40 + [-inf], [inf, -inf] + [0.5] * 33, [nan] + [1.0] * 17,
               [-0.0] * 9, [1e308] * 3 + [0.0] * 30):
        _check(fn.program, {"x": np.array(xs, dtype=float)}, fn)

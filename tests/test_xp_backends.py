"""The backends that run the NumPy backend's generated code on another array namespace
(eqsat_ad/backend/_xp.py: Dask, JAX, CuPy), each against the reference interpreter: the
NumPy backend's test programs, random programs (eqsat_ad.random_programs, as
tests/test_backend_fuzz.py), and the corpus gradients (eqsat_ad/bench/corpus.py).  A backend
whose package is missing is skipped; CuPy also needs a GPU.  Dask-specific behaviour
(laziness, chunking, loops, the example) is in tests/test_dask_backend.py."""
from __future__ import annotations

import functools
import random
import re

import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.backend import get_backend
from eqsat_ad.backend.registry import to_numpy
from eqsat_ad.bench import corpus as C
from eqsat_ad.errors import EqsatError, EvalError
from eqsat_ad.fuzz import random_inputs, rich_program, same_value
from eqsat_ad.lang.interp import evaluate


def _gpu() -> bool:
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:   # noqa: BLE001 - no CUDA driver, no device: no GPU
        return False


def _available(name: str) -> bool:
    if get_backend(name).available() is not None:
        return False
    return name != "cupy" or _gpu()


XP_BACKENDS = [pytest.param(n, marks=pytest.mark.skipif(not _available(n), reason=f"{n} not usable here"))
               for n in ("dask", "jax", "cupy")]
# random programs per backend (about 2 s for 20 here): JAX traces and compiles each program
# for each new shape (or compiles each operation, where the program cannot be traced)
FUZZ_CASES = {"dask": 120, "jax": 20, "cupy": 100}
# JAX's first call at a shape compiles (0.1-1 s; later calls take microseconds): it runs a
# sample of the corpus that covers its shapes of computation
JAX_CORPUS = ("logreg", "mlp2", "softmax-jac", "rnn", "kmeans", "conv3-signal", "bundle-adjust")


def compiled(backend: str, prog):
    options = {"chunks": 2} if backend == "dask" else {}    # several blocks even at test sizes
    return ea.compile(prog, backend=backend, **options)


def run(fn, inputs: dict):
    """The backend's result in the NumPy backend's representation (computes Dask arrays)."""
    return to_numpy(fn(**inputs))


def check(backend: str, prog, inputs: dict, fn=None) -> str:
    """'' when the backend gives what the interpreter gives (or raises the same kind of error)."""
    fn = fn or compiled(backend, prog)
    try:
        want, werr = evaluate(prog, **inputs), None
    except EqsatError as e:
        want, werr = None, e
    try:
        got = run(fn, inputs)
    except EqsatError as e:
        if werr is not None and type(e) is type(werr):
            return ""
        interp = f"raises {type(werr).__name__}: {werr}" if werr else "does not"
        return f"{backend} raises {type(e).__name__}: {e}; the interpreter {interp}"
    if werr is not None:
        return f"{backend} gives a value; the interpreter raises {type(werr).__name__}: {werr}"
    why = same_value(got, want)
    return f"{backend} gives {why}" if why else ""


# --------------------------------------------------------------------------------------
# the machinery
# --------------------------------------------------------------------------------------
def _namespaces():
    from eqsat_ad.backend import dask_backend, jax_backend
    out = []
    if _available("dask"):
        out.append(dask_backend._namespace("auto", 10))
    if _available("jax"):
        out.append(jax_backend._namespace(None))
    return out


# globals that mean the same on every namespace: host scalars and dtypes, NumPy's error
# state (host arithmetic), the error helpers
HOST_GLOBALS = {"_f64", "_i64", "_inf", "_nan", "_fp_set", "_fp_reset", "_FP_IGNORE", "_errstate",
                "_badmask", "_ragged", "_check_elems", "_float", "_raise_zero_div"}


def test_every_numpy_global_has_a_namespace_binding():
    """A global added to the NumPy backend without a binding for the other namespaces would
    hand them NumPy's function: this lists it."""
    from eqsat_ad.backend._xp import globals_table
    from eqsat_ad.backend.numpy_backend import _GLOBALS
    for ns in _namespaces():
        table = globals_table(ns)
        unbound = [k for k, v in _GLOBALS.items() if k not in HOST_GLOBALS and table.get(k) is v]
        assert not unbound, (ns.name, unbound)
        assert "_out_scalar" in table and "_out_array_xp" in table and "_take_rows" in table


def test_the_portable_hook_leaves_the_numpy_source_as_it_is():
    """generate_source(portable=True) is a switch of its own: the NumPy source of every
    corpus derivative is the same with the switch off, before and after portable code was
    generated, and has none of the portable names; portable code has none of NumPy's
    output tests and list reads."""
    from eqsat_ad.backend.numpy_backend import generate_source
    for e in C.CORPUS:
        g = C.derivative_program(e)
        plain, _ = generate_source(g)
        port, _ = generate_source(g, portable=True)
        assert generate_source(g, portable=False)[0] == plain == generate_source(g)[0], e.name
        assert not re.search(r"_out_scalar|_out_array_xp|_take_rows", plain), e.name
        assert not re.search(r"\.base\b|\b_float\(|\.tolist\(\)", port), e.name


# --------------------------------------------------------------------------------------
# differential tests
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", XP_BACKENDS)
def test_backend_test_programs(backend):
    from tests.test_backend import PROGRAMS
    problems = []
    for name, (text, inputs, _) in sorted(PROGRAMS.items()):
        why = check(backend, ea.parse(text), inputs)
        if why:
            problems.append(f"{name}: {why}")
    assert not problems, problems


@pytest.mark.parametrize("backend", XP_BACKENDS)
def test_random_programs_match_the_interpreter(backend):
    """Random programs (pair accumulators, nested folds, guarded gets, argmax, scans, ...)
    on the drawn sizes, larger ones, and 0 or 1 (empty loops, out-of-range literals)."""
    problems, fallbacks = [], 0
    cases = FUZZ_CASES[backend]
    for seed in range(cases):
        rng = random.Random(seed)
        prog, sizes = rich_program(rng, smooth=rng.random() < 0.2)
        nrng = np.random.default_rng(seed)
        fn = compiled(backend, prog)
        fallbacks += fn.fallback is not None
        for sz in (sizes, {k: v + rng.choice([1, 2]) for k, v in sizes.items()},
                   {k: rng.choice([0, 1]) for k in sizes}):
            why = check(backend, prog, random_inputs(prog, sz, nrng), fn)
            if why:
                problems.append(f"seed {seed}, sizes {sz}: {why}\n  {ea.show_program(prog)}")
                break
    assert not problems, "\n".join(problems[:5])
    assert fallbacks <= cases // 10, fallbacks        # most programs run on the namespace


@functools.lru_cache(maxsize=None)
def _optimised(name: str):
    e = C.get(name)
    return ea.optimize(C.derivative_program(e), sizes=e.test_sizes,
                       limits={"iterations": 200, "nodes": 20_000, "seconds": 10.0}).program


@pytest.mark.parametrize("backend", XP_BACKENDS)
def test_corpus_derivatives_match_the_interpreter(backend):
    """Every corpus derivative (unoptimised, as the AD transform emits it; JAX: a sample) and
    two optimised gradients, on the corpus's test inputs."""
    problems = []
    for e in C.CORPUS:
        if backend == "jax" and e.name not in JAX_CORPUS:
            continue
        g = C.derivative_program(e)
        why = check(backend, g, C.inputs(e, e.test_sizes, seed=0))
        if why:
            problems.append(f"{e.label}: {why}")
    for name in ("logreg", "lse-max"):
        e = C.get(name)
        opt = _optimised(name)
        args = C.inputs(e, e.test_sizes, seed=1)
        why = check(backend, opt, args)
        if why:
            problems.append(f"{e.label} optimised: {why}")
        got = run(compiled(backend, opt), args)
        assert C.max_rel_error(got, e.numpy_derivative(**args)) < 1e-8, name
    assert not problems, problems


# --------------------------------------------------------------------------------------
# inputs, outputs, errors
# --------------------------------------------------------------------------------------
DOT = "(fun ((x (vec n)) (w (vec n))) (sum n (lambda (i) (* (get x i) (get w i)))))"


@pytest.mark.parametrize("backend", XP_BACKENDS)
def test_results_are_the_namespaces_arrays(backend):
    mod = get_backend(backend).implementation()
    xp = mod.array_namespace()
    f = compiled(backend, ea.parse(DOT))
    r = f([1.0, 2.0], w=np.array([3.0, 4.0]))          # lists and NumPy arrays are converted
    assert r.ndim == 0 and str(r.dtype) == "float64" and float(r) == 11.0
    assert f.backend == backend and f.fallback is None and "def _run" in f.source
    x = xp.asarray(np.array([1.0, 2.0]))
    v = compiled(backend, ea.parse("(fun ((x (vec n))) (build n (lambda (i) (* 2.0 (get x i)))))"))(x)
    assert type(v) is type(x) and np.allclose(to_numpy(v), [2.0, 4.0])
    pair = compiled(backend, ea.parse("(fun ((x (vec n))) (pair (length x) (> (get x 0) 0.0)))"))(x)
    assert isinstance(pair, tuple) and to_numpy(pair) == (2, True)


@pytest.mark.parametrize("backend", XP_BACKENDS)
def test_bad_inputs_are_clear_errors(backend):
    mod = get_backend(backend).implementation()
    xp = mod.array_namespace()
    f = compiled(backend, ea.parse(DOT))
    with pytest.raises(EvalError, match=r"input 'w' should be \(vec n\) with n=2"):
        f(xp.asarray(np.ones(2)), xp.asarray(np.ones(3)))
    with pytest.raises(EvalError, match=r"rank 1"):
        f(xp.asarray(np.ones((2, 2))), np.ones(2))
    with pytest.raises(EvalError, match="missing input 'w'"):
        f(np.ones(2))
    with pytest.raises(EvalError, match="should be"):
        f(["a", "b"], np.ones(2))
    g = compiled(backend, ea.parse("(fun ((x (vec n))) (get x 5))"))
    with pytest.raises(EvalError, match="index 5 out of range"):
        g(xp.asarray(np.ones(3)))


@pytest.mark.skipif(not _available("jax"), reason="jax not installed")
def test_jax_fallback_for_in_place_code_says_why():
    """JAX arrays are immutable: a scan whose states are written in place runs with NumPy."""
    prog = ea.parse("(fun ((x (vec n)) (z (vec m))) (scan (lambda (acc i) (build m (lambda (j) "
                    "(* (tanh (get acc j)) (get x i))))) z n))")
    f = ea.compile(prog, backend="jax")
    assert f.fallback and "in place" in f.fallback and "NumPy" in f.source
    x, z = np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0])
    r = f(x, z)
    assert type(r).__module__.startswith("jax") and np.allclose(np.asarray(r), evaluate(prog, x=x, z=z))


@pytest.mark.skipif(not _available("jax"), reason="jax not installed")
def test_jax_traces_with_jit_unless_the_code_decides_from_data():
    """jax.jit traces the generated function (sizes and scalar inputs static); code that takes
    a Python decision on array data runs op by op, with the same values."""
    scale = ea.parse("(fun ((x (vec n)) (s real)) (build n (lambda (i) (* s (exp (get x i))))))")
    f = ea.compile(scale, backend="jax")
    x = np.array([0.5, -1.0, 2.0])
    for s in (2.0, 3.0):
        assert np.allclose(np.asarray(f(x, s)), s * np.exp(x))
    assert "not_traced" not in f.call_state and len(f.call_state) == 1      # one trace, s static
    branch = ea.parse("(fun ((x (vec n))) (if (> (sum n (lambda (i) (get x i))) 0.0) (get x 0) (get x 1)))")
    g = ea.compile(branch, backend="jax")
    assert float(g(x)) == evaluate(branch, x=x) and "array data" in g.call_state["not_traced"]
    assert float(ea.compile(branch, backend="jax", jit=False)(-x)) == evaluate(branch, x=-x)
    # tracing unrolls a sequential loop: a long one runs op by op
    rec = ea.parse("(fun ((x (vec n))) (ifold (lambda (h i) (tanh (+ (* 0.5 h) (get x i)))) 0.0 n))")
    r = ea.compile(rec, backend="jax", max_traced_loop=5)
    for n in (4, 6):
        x = np.linspace(-1.0, 1.0, n)
        assert float(r(x)) == pytest.approx(evaluate(rec, x=x), rel=1e-12)
    assert "loop of 6 iterations" in r.call_state["not_traced"]


@pytest.mark.parametrize("backend", XP_BACKENDS)
def test_compiled_programs_pickle_with_their_options(backend):
    import copy
    import pickle
    options = {"chunks": 3, "max_loop_iterations": 7} if backend == "dask" else {}
    f = ea.compile(ea.parse(DOT), backend=backend, **options)
    for g in (pickle.loads(pickle.dumps(f)), copy.deepcopy(f)):
        assert g.backend == backend and g.namespace.options == f.namespace.options and g.source == f.source
        assert float(g([1.0, 2.0], [3.0, 4.0])) == 11.0


@pytest.mark.parametrize("backend", XP_BACKENDS)
def test_ragged_programs_run_with_the_interpreter_and_say_so(backend):
    prog = ea.parse("(fun ((x (vec n))) (build n (lambda (i) (build i (lambda (j) (get x j))))))")
    f = compiled(backend, prog)
    assert "ragged" in f.fallback and "reference interpreter" in f.fallback
    got = f(np.arange(3.0))
    assert isinstance(got, list) and len(got) == 3
    for a, b in zip(got, evaluate(prog, x=np.arange(3.0))):
        assert np.array_equal(to_numpy(a), b)

"""The Dask backend (eqsat_ad/backend/dask_backend.py): lazy in and out, chunked along the
data axes, sequential loops bounded, clear errors, and the example of docs/backend-dask.md
(a local distributed cluster) at a small size.  Values against the interpreter on random
programs and the corpus: tests/test_xp_backends.py."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import eqsat_ad as ea  # noqa: E402
from eqsat_ad.backend import dask_backend  # noqa: E402
from eqsat_ad.errors import EqsatError, EvalError, ShapeError  # noqa: E402
from eqsat_ad.lang.interp import evaluate  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LOGREG = ea.parse("""
(fun ((X (mat N d)) (y (vec N)) (w (vec d)))
  (sum N (lambda (i) (let ((z (sum d (lambda (j) (* (get (get X i) j) (get w j))))))
    (- (log1p (exp z)) (* (get y i) z))))))""")
SCALE = ea.parse("(fun ((y (vec N)) (s real)) (build N (lambda (i) (* s (get y i)))))")


def test_dask_inputs_stay_lazy_until_the_result_is_computed():
    calls = []

    def block(x):
        if x.size:                      # (Dask may call it on an empty array to learn its type)
            calls.append(1)
        return x
    rng = np.random.default_rng(0)
    X, y, w = rng.standard_normal((40, 3)), (rng.random(40) > 0.5) * 1.0, rng.standard_normal(3)
    Xd = da.from_array(X, chunks=(10, 3)).map_blocks(block, dtype=float)
    g = ea.compile(ea.optimize(ea.grad(LOGREG, "w"), sizes={"N": 40, "d": 3}).program, backend="dask")
    r = g(Xd, y, w)
    assert isinstance(r, da.Array) and not calls           # nothing ran yet
    np.testing.assert_allclose(r.compute(), evaluate(ea.grad(LOGREG, "w"), X=X, y=y, w=w), rtol=1e-10)
    assert len(calls) >= 4                                   # each block of X was read


def test_scalar_results_are_zero_dimensional_dask_arrays():
    f = ea.compile(LOGREG, backend="dask", chunks=5)
    rng = np.random.default_rng(1)
    X, y, w = rng.standard_normal((12, 2)), np.ones(12), rng.standard_normal(2)
    r = f(X, y, w)
    assert isinstance(r, da.Array) and r.shape == () and r.dtype == np.float64
    assert float(r) == pytest.approx(evaluate(LOGREG, X=X, y=y, w=w), rel=1e-12)


def test_numpy_inputs_are_chunked_along_the_data_axes():
    y = np.arange(10.0)
    assert dask_backend.compile(SCALE, chunks=4)(y, 2.0).chunks == ((4, 4, 2),)
    assert dask_backend.compile(SCALE, chunks={"N": 5})(y, 2.0).chunks == ((5, 5),)
    assert dask_backend.compile(SCALE, chunks="16B")(y, 2.0).chunks == ((2,) * 5,)
    # the data axis is N (the largest size): X is cut at the same rows as y, d stays whole
    assert dask_backend.data_chunks(3, {}, {}, {"N": 10, "d": 4}) == {"N": 3}
    gX = ea.compile(ea.grad(LOGREG, "X"), backend="dask", chunks=4)
    rng = np.random.default_rng(2)
    X, w = rng.standard_normal((10, 3)), rng.standard_normal(3)
    r = gX(X, np.ones(10), w)
    assert r.chunks == ((4, 4, 2), (3,))
    np.testing.assert_allclose(r.compute(), evaluate(ea.grad(LOGREG, "X"), X=X, y=np.ones(10), w=w), rtol=1e-10)
    # a dask input keeps its own chunks
    assert dask_backend.compile(SCALE, chunks=4)(da.from_array(y, chunks=3), 1.0).chunks == ((3, 3, 3, 1),)


def test_results_stream_to_disk(tmp_path):
    y = np.linspace(-1.0, 1.0, 25)
    r = dask_backend.compile(SCALE, chunks=10)(y, 3.0)
    da.to_npy_stack(str(tmp_path), r, axis=0)
    assert len(list(tmp_path.glob("*.npy"))) == 3
    np.testing.assert_array_equal(da.from_npy_stack(str(tmp_path)).compute(), 3.0 * y)


def test_sequential_loops_are_bounded():
    rec = ea.parse("(fun ((x (vec n))) (ifold (lambda (h i) (tanh (+ (* 0.5 h) (get x i)))) 0.0 n))")
    f = dask_backend.compile(rec, max_loop_iterations=8)
    x = np.linspace(-1.0, 1.0, 8)
    assert float(f(x)) == pytest.approx(evaluate(rec, x=x), rel=1e-12)
    with pytest.raises(EvalError, match=r"sequential loop of 9 iterations.*max_loop_iterations=8"):
        f(np.zeros(9))


def test_bad_options_and_inputs_are_clear_errors():
    for bad in (0, -3, "lots", {"N": 0}, 2.5, True):
        with pytest.raises(EqsatError, match="chunks must be"):
            dask_backend.compile(SCALE, chunks=bad)
    with pytest.raises(EqsatError, match="max_loop_iterations"):
        dask_backend.compile(SCALE, max_loop_iterations=-1)
    y = da.from_array(np.arange(6.0), chunks=2)
    unknown = y[y > 2.0]                                     # chunk sizes unknown until computed
    with pytest.raises(ShapeError, match="unknown shape"):
        dask_backend.compile(SCALE)(unknown, 1.0)
    with pytest.raises(ShapeError, match="dtype"):
        dask_backend.compile(SCALE)(da.from_array(np.array(["a", "b"])), 1.0)
    with pytest.raises(EqsatError, match="unknown backend"):
        ea.compile(SCALE, backend="dusk")


def test_the_registry_runs_the_dask_backend():
    from eqsat_ad.backend import get_backend
    b = get_backend("dask")
    assert b.array_namespace() is da and b.available() is None
    src, glb = b.generate_source(SCALE)
    assert "def _run" in src and "_out_array_xp" in glb
    assert np.allclose(ea.compile(SCALE, backend="dask")([1.0, 2.0], 2.0).compute(), [2.0, 4.0])


def test_the_example_runs_on_a_local_cluster_and_matches_numpy(tmp_path):
    pytest.importorskip("distributed")
    out = subprocess.run([sys.executable, str(ROOT / "docs" / "examples" / "dask_gradient.py"), "--small",
                          "--json", str(tmp_path / "r.json")], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    m = re.search(r"max relative difference ([0-9.e+-]+)", out.stdout)
    assert m and float(m.group(1)) < 1e-10, out.stdout
    assert "streamed to" in out.stdout and (tmp_path / "r.json").exists()


def test_decisions_on_index_ranges_read_no_data():
    """A guarded shifted read checks in Python whether a row out of range is needed; the
    guard comes from index ranges alone, so it is computed here, not by the scheduler (which
    would be a round trip to a cluster), and the call reads no data."""
    import dask
    prog = ea.parse("(fun ((x (vec n))) (build n (lambda (i) (if (> i 0) (get x (- i 1)) 0.0))))")
    f = dask_backend.compile(prog, chunks=2)
    assert "_span_needed(" in f.source
    runs = []

    def scheduler(dsk, keys, **kwargs):
        runs.append(1)
        return dask.get(dsk, keys, **kwargs)
    with dask.config.set(scheduler=scheduler):
        r = f(np.arange(5.0))
        assert not runs
        np.testing.assert_array_equal(r.compute(), [0.0, 0.0, 1.0, 2.0, 3.0])
        assert runs

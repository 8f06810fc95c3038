"""The backend interface: one table of backends (eqsat_ad/backend/registry.py), read by
``ea.compile``, ``ea.optimize`` and the CLI's ``--backend``."""
import numpy as np
import pytest

import eqsat_ad as ea
from eqsat_ad.backend import registry
from eqsat_ad.backend.registry import BACKENDS, Backend, get_backend
from eqsat_ad.cli import main
from eqsat_ad.errors import EqsatError

DOT = "(fun ((x (vec n)) (w (vec n))) (sum n (lambda (i) (* (get x i) (get w i)))))"


@pytest.fixture
def missing_backend(monkeypatch):
    """A backend row whose package is not installed, as if its extra were missing."""
    row = Backend("numba", ".numba_backend", "test row", requires=("eqsat_ad_no_such_package",), extra="numba")
    monkeypatch.setitem(BACKENDS, "numba", row)
    return row


def test_numpy_is_the_default_and_always_available():
    assert get_backend(None) is BACKENDS["numpy"] and get_backend("numpy").available() is None
    assert get_backend("numpy").array_namespace() is np
    f = ea.compile(ea.parse(DOT), backend="numpy")
    assert f.backend == "numpy" and f(x=[1.0, 2.0], w=[3.0, 4.0]) == 11.0


def test_unknown_backend_names_the_known_ones():
    with pytest.raises(EqsatError, match="unknown backend 'fortran'; the backends are: numpy, numba"):
        ea.compile(ea.parse(DOT), backend="fortran")


def test_every_row_names_a_module_and_a_cost_table():
    for b in BACKENDS.values():
        assert b.module.startswith(".") and b.summary
        if b.available() is None:     # installed: the module provides the three functions
            mod = b.implementation()
            assert all(callable(getattr(mod, f)) for f in ("compile", "generate_source", "array_namespace"))
            assert b.cost_model().dag_cost(ea.parse(DOT), {"n": 100}) > 0


def test_a_missing_extra_is_a_clear_error(missing_backend):
    why = missing_backend.available()
    assert why == ("the numba backend needs eqsat_ad_no_such_package "
                   "(pip install 'eqsat-ad[numba]')")
    with pytest.raises(EqsatError, match=r"pip install 'eqsat-ad\[numba\]'"):
        ea.compile(ea.parse(DOT), backend="numba")


def test_optimize_prices_with_the_backends_costs(monkeypatch):
    """``backend=`` without ``cost_model`` uses that backend's table."""
    seen = []
    model = get_backend("numpy").cost_model()

    class Spy(type(model)):
        def dag_cost(self, *a, **k):
            seen.append(1)
            return super().dag_cost(*a, **k)
    spy = Spy(model.opcost, overhead=model.overhead, call_overhead=model.call_overhead,
              scalar_overhead=model.scalar_overhead)
    monkeypatch.setattr(Backend, "cost_model", lambda self: spy)
    res = ea.optimize(ea.grad(ea.parse(DOT), "x"), backend="numpy", check=False)
    assert seen and res.cost <= res.cost_before
    assert registry.compile_for(res.program)(x=[1.0, 2.0], w=[3.0, 4.0]).tolist() == [3.0, 4.0]


def test_cli_backend_option(tmp_path, capsys, missing_backend):
    p = tmp_path / "dot.ad"
    p.write_text(DOT)
    assert main(["run", str(p), "-i", "x=[1,2]", "-i", "w=[3,4]", "--backend", "numpy"]) == 0
    assert capsys.readouterr().out.strip() == "11.0"
    assert main(["run", str(p), "-i", "x=[1,2]", "-i", "w=[3,4]", "--backend", "numba"]) == 1
    assert "pip install 'eqsat-ad[numba]'" in capsys.readouterr().err
    assert main(["optimize", str(p), "--grad", "x", "--emit", "code", "-q"]) == 0
    assert "def _run(" in capsys.readouterr().out
    assert main(["run", str(p), "--backend", "fortran"]) == 2
    assert "invalid choice: 'fortran'" in capsys.readouterr().err


def test_grad_fn_runs_on_the_backend_it_is_given(missing_backend):
    g = ea.grad_fn(lambda x: ea.sum(x * x), backend="numpy", cache=False)
    assert g(np.array([1.0, 2.0])).tolist() == [2.0, 4.0] and "def _run(" in g.source
    with pytest.raises(EqsatError, match="unknown backend 'fortran'"):
        ea.grad_fn(lambda x: ea.sum(x * x), backend="fortran")
    with pytest.raises(EqsatError, match=r"eqsat-ad\[numba\]"):
        ea.grad_fn(lambda x: ea.sum(x * x), backend="numba")


def test_gradbench_tool_takes_a_backend(capsys, missing_backend):
    from eqsat_ad.gradbench import main as gradbench_main
    from eqsat_ad.gradbench.tool import Tool
    assert Tool(backend="numpy").config()["backend"] == "numpy"
    assert gradbench_main(["--backend", "numba"]) == 2
    assert "pip install 'eqsat-ad[numba]'" in capsys.readouterr().err


def test_to_numpy_computes_lazy_and_copies_device_arrays():
    from eqsat_ad.backend.registry import to_numpy
    da = pytest.importorskip("dask.array")
    got = to_numpy((da.ones(3, chunks=2) * 2.0, da.ones(3, chunks=2).sum()))
    assert isinstance(got[0], np.ndarray) and got[0].tolist() == [2.0, 2.0, 2.0] and got[1] == 3.0
    assert to_numpy([[], [1.0]]) == [[], [1.0]]          # a ragged result stays a list
